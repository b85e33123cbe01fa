"""Sweep plans: grid parsing, one valid config and a stable run id per grid point, the errors
that name the bad key, and the comparison of finished trials."""

from __future__ import annotations

import pytest

from collapselab.config import ConfigError, config_from_dict
from collapselab.sweep.compare import TrialResult, comparison_rows, metric_by_key, swept_key
from collapselab.sweep.plan import parse_grid_option, plan_sweep, trial_progress


def _config(tmp_path, **sweep):
    return config_from_dict({
        "experiment": {"name": "tiny", "task": "lm", "generations": 2, "output_dir": str(tmp_path / "runs")},
        "data": {"dataset": "jsonl", "path": str(tmp_path), "train_size": 8, "block_tokens": 8},
        "model": {"scratch": {"max_positions": 64}, "pretrain": {"seq_len": 32}},
        "training": {"seq_len": 32},
        "arms": [{"name": "r", "mix": "ratio", "ratio": 0.5}, {"name": "acc", "mix": "accumulate"}],
        **({"sweep": sweep} if sweep else {}),
    })


def test_grid_option_splits_on_top_level_commas_and_reads_yaml():
    assert parse_grid_option("arms.0.ratio=0.25,0.5") == ("arms.0.ratio", [0.25, 0.5])
    assert parse_grid_option("experiment.seeds=[0,1],[2]") == ("experiment.seeds", [[0, 1], [2]])
    assert parse_grid_option('model.name="a,b",scratch') == ("model.name", ["a,b", "scratch"])
    assert parse_grid_option("training.compile=true,false") == ("training.compile", [True, False])
    for bad, why in (("arms.0.ratio", "expected KEY=V1"), ("=1,2", "empty key"), ("a.b=1,,2", "empty value")):
        with pytest.raises(ConfigError, match=why):
            parse_grid_option(bad)


def test_every_grid_point_is_one_trial_with_a_stable_id(tmp_path):
    cfg = _config(tmp_path, grid={"arms.0.ratio": [0.25, 0.75]}, num_cpus=2)
    plan = plan_sweep(cfg, ["experiment.seeds=[0],[1]"])
    assert [t.point for t in plan.trials] == [
        {"arms.0.ratio": r, "experiment.seeds": s} for r in (0.25, 0.75) for s in ([0], [1])]
    assert len({t.run_id for t in plan.trials}) == 4 and all(t.run_id.startswith(plan.name + "-") for t in plan.trials)
    for t in plan.trials:
        assert t.config.arms[0].ratio == t.point["arms.0.ratio"] and t.config.experiment.seeds == t.point["experiment.seeds"]
        assert t.config.sweep is None and t.run_dir == plan.folder / "runs" / "tiny" / t.run_id
    assert plan.folder == tmp_path / "runs" / "sweeps" / plan.name
    # The same base and grid give the same sweep and ids whatever the sweep block says
    # (resources, CLI vs YAML grid): running the command again finds its trials.
    again = plan_sweep(_config(tmp_path, num_cpus=1, resources={"cpus": 2}), ["arms.0.ratio=0.25,0.75", "experiment.seeds=[0],[1]"])
    assert (again.name, [t.run_id for t in again.trials]) == (plan.name, [t.run_id for t in plan.trials])
    # A trial's id depends on its point only: adding a value keeps the others' ids.
    wider = plan_sweep(cfg, ["experiment.seeds=[0],[1],[2]"])
    assert {t.run_id for t in plan.trials} < {t.run_id for t in wider.trials}
    # A different base is a different sweep.
    other = plan_sweep(config_from_dict({**cfg.model_dump(mode="json"), "training": {**cfg.training.model_dump(), "lr": 0.1}}))
    assert other.name != plan.name and other.name.startswith("tiny-")


def test_a_grid_does_not_change_the_base_config_hash(tmp_path):
    # `collapselab run` on a config that gained a sweep block resumes the same run.
    assert _config(tmp_path).config_hash() == _config(tmp_path, grid={"training.lr": [0.1, 0.2]}).config_hash()


def test_grid_errors_name_the_key_and_the_point(tmp_path):
    cfg = _config(tmp_path)
    with pytest.raises(ConfigError, match="sweep.grid: no grid"):
        plan_sweep(cfg)
    with pytest.raises(ConfigError, match="sweep.grid.experiment.output_dir: a sweep cannot vary"):
        plan_sweep(cfg, ["experiment.output_dir=a,b"])
    with pytest.raises(ConfigError, match=r"sweep.grid.training.lr: repeated values"):
        plan_sweep(cfg, ["training.lr=0.1,0.1"])
    with pytest.raises(ConfigError, match=r"sweep point arms.1.ratio=0.5: arms.1.ratio: only meaningful with mix 'ratio'"):
        plan_sweep(cfg, ["arms.1.ratio=0.5"])
    with pytest.raises(ConfigError, match=r"sweep point arms.0.ratio=2: arms.0.ratio: Input should be less than or equal to 1"):
        plan_sweep(cfg, ["arms.0.ratio=0.5,2"])
    with pytest.raises(ConfigError, match=r"sweep.grid.arms.5.ratio: 'arms.5' is not an index of a list of 2"):
        plan_sweep(cfg, ["arms.5.ratio=0.5"])
    hub = config_from_dict({**cfg.model_dump(mode="json"), "hub": {"repo_id": "me/runs"}})
    with pytest.raises(ConfigError, match=r"hub.prefix: '' has no \{run_id\}, so a sweep's trials would overwrite each other"):
        plan_sweep(hub, ["training.lr=0.1,0.2"])


def test_trial_progress_counts_done_generations_in_engine_order(tmp_path):
    trial = plan_sweep(_config(tmp_path), ["experiment.seeds=[0, 1]"]).trials[0]
    assert trial_progress(trial) == (0, 8, "r/seed-0/gen-0")
    for g in (0, 1):
        (trial.run_dir / f"r/seed-0/gen-{g}").mkdir(parents=True)
        (trial.run_dir / f"r/seed-0/gen-{g}/DONE").write_text("{}")
    (trial.run_dir / "acc/seed-0/gen-0").mkdir(parents=True)
    (trial.run_dir / "acc/seed-0/gen-0/DONE").write_text("{}")
    assert trial_progress(trial) == (3, 8, "acc/seed-0/gen-1")


def _result(run_id, ratio, seed, ppl, done=2) -> TrialResult:
    final = {("r", seed[0]): {"perplexity": ppl, "cross_entropy": 1.0}} if done == 2 else {}
    return TrialResult(run_id, {"arms.0.ratio": ratio, "experiment.seeds": seed}, "lm", "perplexity", 2, final, done, 2)


def test_comparison_rows_and_the_metric_over_seeds_against_the_swept_key():
    trials = [_result("a", 0.25, [0], 10.0), _result("b", 0.25, [1], 12.0), _result("c", 0.75, [0], 20.0),
              _result("d", 0.75, [1], None, done=1)]
    rows = comparison_rows(trials)
    assert [(r["arms.0.ratio"], r["experiment.seeds"], r["status"], r["perplexity"]) for r in rows] == [
        (0.25, "[0]", "done", 10.0), (0.25, "[1]", "done", 12.0), (0.75, "[0]", "done", 20.0), (0.75, "[1]", "1/2 generations", None)]
    assert swept_key(trials) == "arms.0.ratio"
    assert metric_by_key(trials, "perplexity", "arms.0.ratio") == {"r": {0.25: [10.0, 12.0], 0.75: [20.0]}}


def test_trials_get_the_driver_variables_their_runs_and_outlets_read(tmp_path, monkeypatch):
    from collapselab.sweep.runner import trial_env

    for k, v in {"TELEGRAM_BOT_TOKEN": "t", "MY_CHAT": "42", "UNRELATED": "x", "COLLAPSELAB_DATA": "/d"}.items():
        monkeypatch.setenv(k, v)
    cfg = config_from_dict({**_config(tmp_path).model_dump(mode="json"),
                            "notify": {"telegram": {"chat_id_env": "MY_CHAT"}}})
    env = trial_env(cfg)
    assert {k: env[k] for k in ("TELEGRAM_BOT_TOKEN", "MY_CHAT", "COLLAPSELAB_DATA")} == {"TELEGRAM_BOT_TOKEN": "t", "MY_CHAT": "42", "COLLAPSELAB_DATA": "/d"}
    assert "UNRELATED" not in env
