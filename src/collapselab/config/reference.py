"""Markdown tables of a config model's keys: type, default and the help text its pydantic
field carries (the help text lives once, on the fields). `collapselab config reference` prints
an experiment config's; docs/reference/config.md (`collapselab.manual.config`) holds every
config file kind's.
"""

from __future__ import annotations

import types
import typing
from enum import Enum
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from collapselab.config import ExperimentConfig
from collapselab.config.loading import block_of


def type_name(annotation: Any) -> str:
    """A field's type as a reader writes it: `int`, `float or null`, `'sample' or 'greedy'`,
    `list[str]`, `block` (alternatives joined by "or": a pipe would split a table cell)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is type(None) or annotation is None:
        return "null"
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is typing.Literal:
        return " or ".join(repr(a.value if isinstance(a, Enum) else a) for a in args)
    if origin is typing.Union or isinstance(annotation, types.UnionType):
        return " or ".join(dict.fromkeys(type_name(a) for a in args))
    if origin in (list, tuple, set, dict):
        inner = ", ".join("..." if a is Ellipsis else type_name(a) for a in args)
        return f"{origin.__name__}[{inner}]" if inner else origin.__name__
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "block"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return " or ".join(repr(m.value) for m in annotation)
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _default(field: Any) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    value = field.default_factory() if field.default_factory is not None else field.default
    if isinstance(value, BaseModel):
        return "block"
    if value is None:
        return "null"
    return repr(value.value if isinstance(value, Enum) else value)


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")  # a pipe would split the table's cell


def reference_markdown(root: type[BaseModel] = ExperimentConfig, level: int = 3) -> str:
    """Markdown tables of every block under `root`: key, type, default, meaning. A block
    class met again (e.g. `training` after `model.pretrain`) refers back to its table."""

    out: list[str] = []
    seen: dict[type, str] = {}

    def walk(path: str, cls: type[BaseModel]) -> None:
        if cls in seen:
            out.append(f"\n{'#' * level} `{path}`\n\nThe same keys as `{seen[cls]}` above.")
            return
        seen[cls] = path
        out.append(f"\n{'#' * level} `{path}`\n\n| key | type | default | meaning |\n| --- | --- | --- | --- |")
        nested = []
        for name, f in cls.model_fields.items():
            sub = block_of(f.annotation)
            if sub is not None:
                nested.append((f"{path}.{name}" + ("[]" if typing.get_origin(f.annotation) is list else ""), sub))
            kind = _cell(type_name(f.annotation))
            out.append(f"| `{name}` | `{kind}` | `{_cell(_default(f))}` | {_cell(f.description or '')} |")
        for sub_path, sub in nested:
            walk(sub_path, sub)

    top = [(name, f) for name, f in root.model_fields.items()]
    loose = [(name, f) for name, f in top if block_of(f.annotation) is None]
    if loose:  # keys at the top of the file (a claim's name, paper, ...)
        seen[root] = "the top level"
        out.append(f"\n{'#' * level} top level\n\n| key | type | default | meaning |\n| --- | --- | --- | --- |")
        for name, f in loose:
            out.append(f"| `{name}` | `{_cell(type_name(f.annotation))}` | `{_cell(_default(f))}` | {_cell(f.description or '')} |")
    for name, f in top:
        sub = block_of(f.annotation)
        if sub is not None:
            walk(name + ("[]" if typing.get_origin(f.annotation) is list else ""), sub)
    return "\n".join(out).lstrip("\n") + "\n"
