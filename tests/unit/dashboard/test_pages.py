"""Every page of the dashboard, driven by AppTest on one database filled by real tiny engine
runs (lm, qa, three-arm refinery): selecting changes what is shown, and no page raises."""

from __future__ import annotations

import pytest

from collapselab.report.palette import arm_colors
from collapselab.results import load_run, run_from_store
from collapselab.rundir.generation import SYNTHETIC, TRAIN
from collapselab.store import Store

from .apptest import charts, fill, frames, legends, page, rerun, texts, titles


@pytest.fixture(scope="module")
def db(tmp_path_factory, tiny_lm_run, tiny_qa_run, tiny_three_arm_run) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('dashboard') / 'results.db'}"
    return fill(url, tiny_lm_run, tiny_qa_run, tiny_three_arm_run)


@pytest.fixture(scope="module")
def ids(tiny_lm_run, tiny_qa_run, tiny_three_arm_run) -> dict[str, str]:
    return {"lm": tiny_lm_run.run_dir.name, "qa": tiny_qa_run.run_dir.name, "three": tiny_three_arm_run.run_dir.name}


def test_runs_page_lists_status_and_compares_configs(db, ids, monkeypatch):
    at = page(monkeypatch, db, page="runs")
    (runs, _, diff) = frames(at)
    by_id = runs.set_index("run")
    assert set(by_id.index) == set(ids.values())
    assert by_id.loc[ids["lm"], "status"] == "done" and by_id.loc[ids["lm"], "generations"] == "8 of 8"
    assert by_id.loc[ids["qa"], "generations"] == "6 of 6" and by_id.loc[ids["three"], "G"] == 1
    assert by_id.loc[ids["lm"], "git SHA"] and by_id.loc[ids["lm"], "config hash"]
    at.selectbox(key="compare_a").select(ids["lm"])
    at.selectbox(key="compare_b").select(ids["qa"])
    keys = set(frames(rerun(at))[2]["key"])
    assert {"experiment.task", "experiment.name", "data.path"} <= keys
    assert "training.epochs" not in keys  # equal in both: hidden by default
    at.checkbox(key="all_keys").check()
    assert "training.epochs" in set(frames(rerun(at))[2]["key"])
    at.selectbox(key="experiment").select("tiny")
    assert list(frames(rerun(at))[0]["run"]) == [ids["lm"]]
    assert "One run only" in texts(at)


def test_generations_page_follows_arm_metric_and_seed(db, ids, monkeypatch):
    at = page(monkeypatch, db, page="generations", run=ids["lm"])
    # by default the task's headline metrics (tasks/lm.py main_metrics)
    assert titles(at) == ["perplexity (lower is better ↓)", "cross-entropy (lower is better ↓)"]
    table = frames(at)[-1]
    assert set(table.arm) == {"replace", "accumulate"} and set(table.generation) == {0, 1}
    assert set(table.seeds) == {2} and (table.ci_low <= table["mean"]).all() and (table["mean"] <= table.ci_high).all()
    with Store(db) as store:  # the mean is over the two seeds' recorded values
        values = [m["value"] for m in store.metrics(ids["lm"], arm="replace", generation=1, name="perplexity")]
    row = table[(table.metric == "perplexity") & (table.arm == "replace") & (table.generation == 1)]
    assert row["mean"].item() == pytest.approx(sum(values) / 2, rel=1e-6)
    assert "No collapse stage in this lm run" in texts(at)

    at.multiselect(key="arms").set_value(["replace"])
    at.multiselect(key="metrics").set_value(["perplexity", "distinct_2"])
    rerun(at)
    assert set(titles(at)) == {"perplexity (lower is better ↓)", "distinct-2 (higher is better ↑)"}
    assert set(frames(at)[-1].arm) == {"replace"} and set(frames(at)[-1].metric) == {"perplexity", "distinct_2"}
    layers = len(charts(at)[0]["layer"])
    at.checkbox(key="show_seeds").check()
    at.multiselect(key="seeds").set_value([1])
    rerun(at)
    assert len(charts(at)[0]["layer"]) == layers + 1  # a line per seed on demand
    one = frames(at)[-1]
    assert set(one.seeds) == {1} and (one.ci_low == one["mean"]).all()
    assert at.get("download_button")[0].proto.label == "Download CSV"


def test_generations_page_shows_the_collapse_stage_of_a_qa_run(db, ids, monkeypatch):
    at = page(monkeypatch, db, page="generations", run=ids["qa"])
    stages = frames(at)[0]
    assert list(stages.columns) == ["gen 0", "gen 1", "gen 2"]
    assert list(stages.index) == [("replace", 0), ("accumulate", 0)]  # arm, seed
    with Store(db) as store:  # what the engine recorded, not recomputed by the page
        recorded = {(d["arm"], d["generation"]): d["document"]["metrics"]["collapse_stage"]["details"]["stage"]
                    for d in store.documents(ids["qa"])}
    assert {(a, int(g.split()[1])): v[0] for (a, _), row in stages.iterrows() for g, v in row.items()} == recorded


def test_question_page_follows_question_search_and_arm(db, ids, monkeypatch):
    at = page(monkeypatch, db, page="question", run=ids["qa"])
    first = at.selectbox(key="question").value
    history = frames(at)[0]
    assert len(history) == 2 * 3 and set(history.arm) == {"replace", "accumulate"}  # arms x generations
    assert {"prediction", "exact_match", "f1"} <= set(history.columns)
    with Store(db) as store:
        h = store.question_history(ids["qa"], first)
    assert h["input"].partition("\n\n")[0] in texts(at)
    assert titles(at) == ["F1 (%) of this question per generation"]

    other = at.selectbox(key="question").options[5]
    at.selectbox(key="question").select(other)
    rerun(at)
    with Store(db) as store:
        question = store.question_history(ids["qa"], at.selectbox(key="question").value)["input"].partition("\n\n")[0]
    assert question in texts(at) and at.selectbox(key="question").value != first

    needle = " ".join(question.split()[:3])  # e.g. "Where does Anna"
    at.text_input(key="search").input(needle)
    rerun(at)
    found = at.selectbox(key="question").options
    assert found and all(needle in o for o in found) and len(found) < 12
    at.multiselect(key="arms").set_value(["accumulate"])
    at.selectbox(key="score").select("exact_match")
    rerun(at)
    assert set(frames(at)[0].arm) == {"accumulate"} and titles(at) == ["EM (%) of this question per generation"]



def test_runs_page_compares_two_runs_metrics(db, ids, tiny_lm_run, tiny_qa_run, monkeypatch):
    at = page(monkeypatch, db, page="runs", compare_a=ids["qa"], compare_b=ids["lm"])
    metrics = frames(at)[1]
    a, b = f"A: {ids['qa']} (gen 2)", f"B: {ids['lm']} (gen 1)"
    assert list(metrics.columns) == ["metric", "arm", a, b, "B - A"]
    by = metrics.set_index(["metric", "arm"])
    lm, qa = load_run(tiny_lm_run.run_dir), load_run(tiny_qa_run.run_dir)
    for arm in ("replace", "accumulate"):  # each run's last generation, mean over its seeds, arms paired by name
        ppl = lm.values(arm, 1, "perplexity")
        assert by.loc[("perplexity (test, current model)", arm), b] == pytest.approx(sum(ppl) / len(ppl))
        assert by.loc[("F1 (%)", arm), a] == pytest.approx(qa.values(arm, 2, "f1")[0])
        assert by.loc[("perplexity (test, current model)", arm), [a, "B - A"]].isna().all()  # the qa run has none
    assert "distinct-2 (synthetic, 0-1)" not in set(metrics.metric)  # the tasks' headline metrics by default
    at.checkbox(key="all_metrics").check()
    assert "distinct-2 (synthetic, 0-1)" in set(frames(rerun(at))[1].metric)
    same = page(monkeypatch, db, page="runs", compare_a=ids["lm"], compare_b=ids["lm"])
    assert (frames(same)[1]["B - A"] == 0).all()


def test_question_page_shows_one_prompt_per_generation_of_an_lm_run(db, ids, tiny_lm_run, monkeypatch):
    at = page(monkeypatch, db, page="question", run=ids["lm"])
    run = load_run(tiny_lm_run.run_dir)
    prompt = at.selectbox(key="prompt").value
    human = {r.id: r.text for r in run.records(run.find("replace", 0)[0], TRAIN)}
    assert human[prompt].strip() in texts(at)
    table = frames(at)[0]
    assert len(table) == 2 * 2 * 2  # arms x seeds x generations
    for row in table.itertuples():
        g = [x for x in run.find(row.arm, row.generation) if x.seed == row.seed][0]
        written = {r.parent_id: r.text for r in run.records(g, SYNTHETIC)}
        assert row.continuation == written[prompt] and row.perplexity > 1
    side = at.table[0].value  # generation x arm, the first chosen seed
    assert list(side.columns) == ["replace", "accumulate"] and list(side.index) == ["generation 0", "generation 1"]
    assert titles(at) == ["Perplexity of this prompt's continuation under the generation-0 model"]
    fourth = at.selectbox(key="prompt").options[3].rsplit(" [", 1)[1].rstrip("]")  # options read "text… [id]"
    at.selectbox(key="prompt").select(fourth)
    at.multiselect(key="arms").set_value(["accumulate"])
    rerun(at)
    other = at.selectbox(key="prompt").value
    assert other != prompt and set(frames(at)[0].arm) == {"accumulate"} and human[other].strip() in texts(at)
    at.text_input(key="search").input("zzz-nothing")
    assert "No prompt contains" in texts(rerun(at))


VIEWS = [("runs", "lm", {}), ("generations", "lm", {"show_seeds": "1"}), ("generations", "qa", {}),
         ("question", "qa", {}), ("question", "lm", {}), ("synthetic", "lm", {}),
         ("refinery", "three", {"build": "C-synthetic / seed 0"})]


def test_every_chart_has_a_legend_naming_its_arms_in_their_colours(db, ids, monkeypatch):
    arms = {"lm": ["replace", "accumulate"], "qa": ["replace", "accumulate"],
            "three": ["A-human", "B-contaminated", "C-synthetic"]}
    drawn = 0
    for name, run, params in VIEWS:
        at = page(monkeypatch, db, page=name, run=ids[run], **params)
        for spec, title in zip(charts(at), titles(at), strict=True):
            drawn += 1
            found = legends(spec)
            assert found, (name, title)  # a legend, and no layer that hides it
            assert all(legend is not None for _, _, legend, _ in found), (name, title)
            colors = arm_colors(arms[run])
            for _, field, _, scale in found:
                if field == "arm":  # the arms shown, each in its run-wide colour
                    assert scale["domain"] and set(scale["domain"]) <= set(arms[run]), (name, title)
                    assert scale["range"] == [colors[a] for a in scale["domain"]], (name, title)
            if name == "generations" and params.get("show_seeds"):  # the seeds' dashes are named too
                assert {("color", "arm"), ("strokeDash", "seed")} <= {(c, f) for c, f, _, _ in found}
            assert spec.get("padding", {}).get("top", 0) > 0 and spec["title"]["limit"] == 0  # titles are not clipped
    assert drawn >= 9
    # hiding an arm keeps the other's colour
    at = page(monkeypatch, db, page="generations", run=ids["lm"], arms="accumulate")
    (_, _, _, scale) = [x for x in legends(charts(at)[0]) if x[1] == "arm"][0]
    assert scale == {"domain": ["accumulate"], "range": [arm_colors(arms["lm"])["accumulate"]]}


def test_synthetic_page_sorts_by_perplexity_and_draws_every_generation(db, ids, tiny_lm_run, monkeypatch):
    at = page(monkeypatch, db, page="synthetic", run=ids["lm"], arm="replace", seed="1", generation="1")
    records = frames(at)[0]
    assert len(records) == 24 and set(records.generation) == {1} and records.perplexity.notna().all()
    at.selectbox(key="order").select("perplexity, highest first")
    rerun(at)
    ppl = list(frames(at)[0].perplexity)
    assert ppl == sorted(ppl, reverse=True)
    (hist,) = [c for c, t in zip(charts(at), titles(at), strict=True) if "generation-0 model" in t]
    assert hist["encoding"]["x"]["scale"]["type"] == "log"
    assert "Parent" in texts(at) and "not in the run's human data" not in texts(at)  # provenance found
    at.selectbox(key="generation").select(0)
    rerun(at)
    assert set(frames(at)[0].generation) == {0}

    qa = page(monkeypatch, db, page="synthetic", run=ids["qa"])
    assert "question" in frames(qa)[0].columns
    assert "No per-sequence perplexity for this generation" in texts(qa)  # not computed for qa


def test_refinery_page_funnel_rejections_and_verdict(db, ids, tiny_three_arm_run, monkeypatch):
    from collapselab.refinery.filters import REASONS
    from collapselab.report.criteria import three_arm_criteria
    from collapselab.report.outcomes import criteria_rows

    at = page(monkeypatch, db, page="refinery", run=ids["three"])
    summary = frames(at)[0]
    assert set(summary.build) == {"B-contaminated / seed 0", "C-synthetic / seed 0"}
    assert any("Filter funnel of" in t for t in titles(at)) and "Success rate per strategy" in titles(at)
    at.selectbox(key="build").select("C-synthetic / seed 0")
    rerun(at)
    rejected = [f for f in frames(at) if "reason" in f.columns][0]
    assert len(rejected) and set(rejected.reason) <= set(REASONS)
    # the verdict is the report's, computed on the same run read from its directory
    expected = criteria_rows(three_arm_criteria(load_run(tiny_three_arm_run.run_dir)), load_run(tiny_three_arm_run.run_dir).three_arm)
    verdict = [f for f in frames(at) if "criterion" in f.columns][0]
    assert verdict.values.tolist() == expected[1]
    assert "recovery" in verdict.criterion.iloc[2]

    lm = page(monkeypatch, db, page="refinery", run=ids["lm"])
    assert "No refinery in this run" in texts(lm) and "Not a three-arm refinery run" in texts(lm)


def test_the_selection_is_in_the_url_and_a_link_restores_it(db, ids, monkeypatch):
    at = page(monkeypatch, db, page="generations", run=ids["lm"])
    at.multiselect(key="arms").set_value(["accumulate"])
    at.multiselect(key="metrics").set_value(["cross_entropy"])
    rerun(at)
    link = dict(at.query_params)
    assert link["run"] == ids["lm"] and link["arms"] == "accumulate" and link["metrics"] == "cross_entropy"
    shared = page(monkeypatch, db, **link)  # someone opens the link
    assert shared.multiselect(key="arms").value == ["accumulate"]
    assert titles(shared) == ["cross-entropy (lower is better ↓)"]
    # leaving the page and coming back keeps the page's selection
    shared.radio(key="page").set_value("runs")
    rerun(shared)
    shared.radio(key="page").set_value("generations")
    rerun(shared)
    assert titles(shared) == ["cross-entropy (lower is better ↓)"]


def test_run_from_store_is_the_report_s_run(db, ids, tiny_three_arm_run):
    from collapselab.report.criteria import three_arm_criteria

    with Store(db) as store:
        stored = run_from_store(store, ids["three"])
        assert three_arm_criteria(stored) == three_arm_criteria(load_run(tiny_three_arm_run.run_dir))
        assert stored.records(stored.final("C-synthetic")[0], "rejected.parquet")


@pytest.mark.postgres
@pytest.mark.e2e
def test_every_page_shows_the_same_on_postgresql(db, ids, tiny_lm_run, tiny_qa_run, tiny_three_arm_run, monkeypatch):
    from unit.store.store_backends import pg_schema_url

    with pg_schema_url() as pg:
        fill(pg, tiny_lm_run, tiny_qa_run, tiny_three_arm_run)
        views = [("runs", None), ("generations", "lm"), ("generations", "qa"), ("question", "qa"),
                 ("synthetic", "lm"), ("refinery", "three")]
        for name, run in views:
            params = {"page": name, **({"run": ids[run]} if run else {})}
            on_sqlite, on_pg = page(monkeypatch, db, **params), page(monkeypatch, pg, **params)
            assert titles(on_pg) == titles(on_sqlite), name
            assert len(frames(on_pg)) == len(frames(on_sqlite)) > 0, name
            for a, b in zip(frames(on_pg), frames(on_sqlite), strict=True):
                assert a.equals(b), (name, a, b)
