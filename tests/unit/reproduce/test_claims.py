"""The shipped claim files: each loads, its checks read arms and generations its configs
run, its laptop config has seeds enough for a verdict; and a wrong claim is named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from collapselab.config import ConfigError, load_config
from collapselab.reproduce.claims import claim_names, claim_problems, claims_dir, load_claim
from collapselab.reproduce.verdicts import MIN_SEEDS

REPO_CLAIMS = Path(__file__).resolve().parents[3] / "configs" / "reproductions"
PAPERS = {"shumailov", "gerstgrasser", "kazdan", "feng", "selfplag", "keisha"}


def test_the_six_papers_of_the_issue_are_shipped_in_the_package():
    assert set(claim_names()) >= PAPERS
    assert claim_names() == sorted(p.stem for p in REPO_CLAIMS.glob("*.yaml"))
    for name in claim_names():
        assert (claims_dir() / f"{name}.yaml").read_bytes() == (REPO_CLAIMS / f"{name}.yaml").read_bytes()


@pytest.mark.parametrize("name", claim_names())
def test_every_claim_loads_and_its_configs_answer_its_checks(name):
    claim = load_claim(name)
    assert claim.name == name and claim.paper.year >= 2023 and claim.cost.cpu and claim.cost.gpu
    laptop, paper = load_config(claim.config_path()), load_config(claim.config_path(gpu=True))
    assert claim_problems(claim, laptop) == [] and claim_problems(claim, paper) == []
    assert len(laptop.experiment.seeds) >= MIN_SEEDS  # a verdict needs 3 seeds
    assert claim.config.startswith("repro-") and claim.paper_config == claim.config + "-gpu"
    assert paper.model.name != laptop.model.name or paper.model.scratch != laptop.model.scratch  # paper size is bigger
    # the metrics the checks read are computed by both configs
    computed = set(laptop.evaluation.metrics or []) & set(paper.evaluation.metrics or [])
    for c in claim.checks:
        for term, _ in c.linear.terms:
            name_ = (term.metric or c.metric or claim.metric).split(".")[0]
            assert name_ in computed, f"{c.id}: {term} reads {name_!r}, which {claim.config} does not compute"
    assert all(f.source for f in claim.figures) and all(c.paper is None or c.paper.source for c in claim.checks)


def _write(tmp_path: Path, **changes) -> Path:
    data = yaml.safe_load((REPO_CLAIMS / "gerstgrasser.yaml").read_text())
    data.update(changes)
    path = tmp_path / "claim.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_bad_expression_names_the_file_and_the_check(tmp_path):
    path = _write(tmp_path, checks=[{"id": "x", "claim": "c", "expr": "replace.g4 * accumulate.g4", "expect": "positive"}])
    with pytest.raises(ConfigError, match=rf"{path}: checks.0: check 'x': expr 'replace.g4 \* accumulate.g4': a product"):
        load_claim(path)
    with pytest.raises(ConfigError, match=r"unknown key 'checkz'"):
        load_claim(_write(tmp_path, checkz=[]))
    with pytest.raises(ConfigError, match=r"^nope: no such claim; the claims are feng, "):
        load_claim("nope")


def test_a_check_on_an_arm_or_generation_the_config_lacks_is_named(tmp_path):
    path = _write(tmp_path, checks=[{"id": "x", "claim": "c", "expr": "replace.g9 - ratio.g0", "expect": "positive"}])
    claim = load_claim(path)
    assert claim_problems(claim, load_config(claim.config_path())) == [
        f"{path}: check 'x': replace.g9: repro-gerstgrasser runs generations 0..4",
        f"{path}: check 'x': ratio.g0: no arm 'ratio' in repro-gerstgrasser (arms: ['accumulate', 'accumulate-subsample', 'replace'])",
    ]


VARIANTS = sorted((REPO_CLAIMS / "variants").glob("*.yaml"))


@pytest.mark.parametrize("path", VARIANTS, ids=lambda p: p.stem)
def test_a_smaller_variant_is_its_claim_on_a_smaller_config_and_says_so(path):
    # configs/reproductions/variants/: a shipped claim run on a documented smaller config
    # (what a measurement session could afford); not in the shipped list, run by path.
    variant = load_claim(path)
    shipped = load_claim(variant.name.removesuffix("-small"))
    assert variant.name not in claim_names() and "smaller variant" in variant.title
    assert [c.model_dump() for c in variant.checks] == [c.model_dump() for c in shipped.checks]
    assert variant.figures == shipped.figures and variant.paper == shipped.paper
    small, laptop = load_config(variant.config_path()), load_config(shipped.config_path())
    assert claim_problems(variant, small) == [] and len(small.experiment.seeds) >= MIN_SEEDS
    assert small.data.train_size < laptop.data.train_size and small.arms == laptop.arms
    assert variant.paper_config == shipped.paper_config
