"""One loader for every config: experiment, serve and learner configs are read, overridden and
reported the same way (the file and the key named, a mistyped key's nearest name)."""

from __future__ import annotations

import pytest
import yaml
from pydantic import BaseModel
from tiny import tiny_config

from collapselab.config import ConfigError, ExperimentConfig, load_config
from collapselab.config.loading import Block, apply_override
from collapselab.learner.config import LearnerConfig, load_learner_config
from collapselab.serve.config import ServeConfig, ServeConfigError, load_serve_config


def _learner() -> dict:
    return {"learner": {"name": "l", "steps": 2}, "source": {"kind": "wikitext2"}}


@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        ("experiment", {"training": {"epochz": 1}}, "unknown key 'training.epochz' (did you mean 'epochs'?)"),
        ("experiment", {"arms": [{"name": "a", "mixx": "replace"}]}, "unknown key 'arms.0.mixx' (did you mean 'mix'?)"),
        ("learner", {"learner": {"name": "l", "stepz": 2}}, "unknown key 'learner.stepz' (did you mean 'steps'?)"),
        ("serve", {"source": {"modle": "x"}}, "unknown key 'source.modle' (did you mean 'model'?)"),
        ("serve", {"sampling": {"zzz": 1}}, "unknown key 'sampling.zzz' (known: temperature, top_p, top_k, "),
    ],
)
def test_every_config_names_the_file_and_the_mistyped_key(tmp_path, kind, data, message):
    base = {"experiment": tiny_config(tmp_path, tmp_path), "learner": _learner(), "serve": {}}[kind]
    path = tmp_path / f"{kind}.yaml"
    path.write_text(yaml.safe_dump({**base, **data}))
    load, error = {
        "experiment": (lambda p: load_config(p), ConfigError),
        "learner": (lambda p: load_learner_config(p), ConfigError),
        "serve": (lambda p: load_serve_config(p, {}), ServeConfigError),
    }[kind]
    with pytest.raises(error) as e:
        load(path)
    assert str(e.value).startswith(f"{path}: {message}")


LOADERS = {
    "experiment": (load_config, ConfigError),
    "learner": (load_learner_config, ConfigError),
    "serve": (lambda p: load_serve_config(p, {}), ServeConfigError),
}


@pytest.mark.parametrize("kind", LOADERS)
def test_a_file_that_is_missing_or_not_a_mapping_is_named(tmp_path, kind):
    load, error = LOADERS[kind]
    path = tmp_path / "c.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(error) as e:
        load(path)
    assert str(e.value) == f"{path}: top level must be a mapping of blocks, got list"
    with pytest.raises(error) as e:
        load(tmp_path / "missing.yaml")
    assert str(e.value) == f"{tmp_path / 'missing.yaml'}: config file does not exist"


def test_an_empty_serve_file_is_all_defaults_and_flags_go_on_top(tmp_path):
    path = tmp_path / "serve.yaml"
    path.write_text("")
    assert load_serve_config(path, {}) == ServeConfig()
    assert load_serve_config(None, {"port": 9001, "host": None}).port == 9001
    with pytest.raises(ServeConfigError) as e:
        load_serve_config(None, {"batching.max_bach": 3})
    assert str(e.value) == "serve flags: unknown key 'batching.max_bach' (did you mean 'max_batch'?)"
    path.write_text("source: x\n")  # a value where the flag needs a block
    with pytest.raises(ServeConfigError, match="^serve flags: source.model: 'source' is a value, not a block$"):
        load_serve_config(path, {"source.model": "m"})


def test_overrides_reach_blocks_and_list_items_and_name_what_is_wrong():
    data = {"arms": [{"name": "a"}], "training": 3}
    apply_override(data, ["arms", "0", "mix"], "ratio")
    apply_override(data, ["decoding", "top_k"], 5)  # a missing block is created
    assert data["arms"][0]["mix"] == "ratio" and data["decoding"] == {"top_k": 5}
    with pytest.raises(ConfigError, match=r"^--set arms.1.mix: 'arms.1' is not an index of a list of 1$"):
        apply_override(data, ["arms", "1", "mix"], "replace")
    with pytest.raises(ConfigError, match=r"^--set training.lr: 'training' is a value, not a block$"):
        apply_override(data, ["training", "lr"], 0.1)


def _blocks(root: type[BaseModel]) -> set[type[BaseModel]]:
    from collapselab.config.loading import block_of

    seen, todo = set(), [root]
    while todo:
        cls = todo.pop()
        if cls not in seen:
            seen.add(cls)
            todo += [b for f in cls.model_fields.values() if (b := block_of(f.annotation)) is not None]
    return seen


@pytest.mark.parametrize("root", [ExperimentConfig, LearnerConfig, ServeConfig], ids=lambda c: c.__name__)
def test_every_block_is_a_block(root):
    blocks = _blocks(root)
    assert len(blocks) >= 5  # the walk reached the nested blocks
    assert [b.__name__ for b in blocks if not issubclass(b, Block)] == []


def test_a_block_forbids_unknown_keys_and_validates_assignments():
    from pydantic import Field, ValidationError

    class Small(Block):
        n: int = Field(1, ge=1)

    with pytest.raises(ValidationError, match="extra_forbidden|Extra inputs"):
        Small(m=2)
    small = Small()
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        small.n = 0
