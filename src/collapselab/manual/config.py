"""The config reference page (docs/reference/config.md): every key of every config file the
lab reads, with its type, default and the help text its pydantic field carries. The help
text lives once, on the fields (tables: `collapselab.config.reference`); a test keeps the
committed page equal to this output (`python scripts/gen_reference.py`).
"""

from __future__ import annotations

from pydantic import BaseModel

from collapselab.config import ExperimentConfig
from collapselab.config.reference import reference_markdown

PAGE_HEAD = """# Config reference

Generated from the config models' field descriptions by `python scripts/gen_reference.py`
(a test fails when this page is not its current output). Keys are YAML paths; `--set
key.path=value` overrides any of them (list items by index, e.g. `--set arms.0.mix=accumulate`;
the value is read as YAML). Unknown keys are errors. A key whose type is a block is a table
of its own below; `block` as a default means the block with all its defaults, `null` none.
"""

# file kind -> (heading, what reads it, its root model, imported lazily: the faces' configs)
SECTIONS = [
    ("Experiment configs", "`collapselab run`, `collapselab sweep`, `collapselab.run()`: the files in `configs/`", "experiment"),
    ("Learner configs", "`collapselab learn` (`configs/learn-*.yaml`)", "learner"),
    ("Chat server configs", "`collapselab serve --config` (`configs/serve/*.yaml`); flags override them", "serve"),
    ("Reproduction claims", "`collapselab reproduce` (`configs/reproductions/*.yaml`)", "claim"),
]


def _root(kind: str) -> type[BaseModel]:
    if kind == "experiment":
        return ExperimentConfig
    if kind == "learner":
        from collapselab.learner.config import LearnerConfig

        return LearnerConfig
    if kind == "serve":
        from collapselab.serve.config import ServeConfig

        return ServeConfig
    from collapselab.reproduce.claims import Claim

    return Claim


def config_page() -> str:
    """docs/reference/config.md: every config file kind's keys."""
    out = [PAGE_HEAD]
    for heading, read_by, kind in SECTIONS:
        out += [f"## {heading}", "", f"Read by {read_by}.", "", reference_markdown(_root(kind))]
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    print(config_page(), end="")
