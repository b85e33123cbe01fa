"""From YAML to a validated pydantic config, for every config the project reads: an
experiment's, the chat server's and the continuous learner's.

`Block` is the base of every config block (an unknown key is an error, an assignment is
validated). A config file is read through `collapselab.textio` (missing, binary, not UTF-8,
empty or broken YAML: one line naming the file), `--set key.path=value` overrides are
applied to the mapping, and a pydantic error becomes one line per problem that names the
file and the key path, with a "did you mean" for a mistyped key. Each caller passes the
error class of its own layer (`ConfigError`, `ServeConfigError`).
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from collapselab.errors import CollapselabError, ConfigError, ConfigErrors
from collapselab.textio import parse_yaml, read_text

M = TypeVar("M", bound=BaseModel)
ErrorClass = type[CollapselabError]


class Block(BaseModel):
    """Base of every config block: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


FOLDER_NAME_RULE = "a folder name: not empty, not '.' or '..', no '/' or '\\'"


def folder_name_problem(name: str) -> str | None:
    """Why `name` cannot be one folder of a path (an experiment, an arm, a sweep, a run id),
    or None. `../../etc` would put the run two folders above its root, an empty name straight
    into it."""
    if not name.strip() or name in (".", "..") or any(c in name for c in "/\\\0"):
        return f"must be {FOLDER_NAME_RULE}"
    return None


def _folder_name(name: str) -> str:
    problem = folder_name_problem(name)
    if problem is not None:
        raise ValueError(problem)
    return name


# A config value that becomes a folder under the run root.
FolderName = Annotated[str, AfterValidator(_folder_name)]


def load_model_file(
    model_cls: type[M], path: str | Path, overrides: Iterable[str] = (), *, error: ErrorClass = ConfigError, several: bool = False
) -> M:
    """Read a YAML config file, apply `key.path=value` overrides, validate it as `model_cls`.

    Args:
        model_cls: The config's root model (`ExperimentConfig`, `LearnerConfig`...).
        path: The YAML file.
        overrides: `--set` items, `key.path=value`, the value read as YAML; later ones win.
        error: The named error to raise.
        several: Several problems raise `ConfigErrors`, one problem a line (`model_from_dict`).

    Raises:
        error: The file is missing or unreadable, not a mapping, an override is malformed, or
            the config is invalid; one line naming the file (or override) and the key.
    """
    path = Path(path)
    data = read_config_file(path, error=error)
    for item in overrides:
        keys, value = parse_override(item, error=error)
        apply_override(data, keys, value, error=error)
    return model_from_dict(model_cls, data, str(path), error=error, several=several)


def read_config_file(path: Path, *, error: ErrorClass = ConfigError, empty_ok: bool = False) -> dict[str, Any]:
    """The mapping a YAML config file holds; `empty_ok`: an empty file is an empty mapping
    (a config whose every key has a default), else it is an error."""
    if not path.exists():
        raise error(f"{path}: config file does not exist")
    text = read_text(path, error=error)
    if empty_ok and not text.strip():
        return {}
    data = parse_yaml(text, where=str(path), error=error)
    if not isinstance(data, dict):
        raise error(f"{path}: top level must be a mapping of blocks, got {type(data).__name__}")
    return data


def model_from_dict(
    model_cls: type[M], data: dict[str, Any], source: str, *, error: ErrorClass = ConfigError, several: bool = False
) -> M:
    """Validate `data` as `model_cls`; errors name `source` (a file, "serve flags"...) and the key.

    `several`: more than one problem raises `ConfigErrors` (the CLI prints one line each under
    a headline, as for the checker's problems) instead of one `error` of `; `-joined clauses."""
    try:
        return model_cls.model_validate(data)
    except ValidationError as e:
        problems = validation_problems(e, model_cls)
        if several and len(problems) > 1:
            raise ConfigErrors(problems, source) from None
        raise error("; ".join(f"{source}: {p}" for p in problems)) from None


def format_validation_error(err: ValidationError, source: str, root_model: type[BaseModel]) -> str:
    """One clause per problem, `; `-joined: `x.yaml: unknown key 'training.epochz' (did you
    mean 'epochs'?)`, `x.yaml: missing required key 'data'`, `x.yaml: training.lr: Input
    should be greater than 0 (got -1)`. `root_model` is the model `err` came from."""
    return "; ".join(f"{source}: {p}" for p in validation_problems(err, root_model))


def validation_problems(err: ValidationError, root_model: type[BaseModel]) -> list[str]:
    """One line per problem, each starting with its key: `unknown key 'training.epochz' (did
    you mean 'epochs'?)`, `missing required key 'data'`, `training.lr: Input should be
    greater than 0 (got -1)`. A block's own check (a model validator) names its keys itself,
    one problem a line."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "<root>"
        value = e.get("input")
        if e["type"] == "extra_forbidden":
            lines.append(f"unknown key '{loc}'{did_you_mean(root_model, e['loc'])}")
        elif e["type"] == "missing":
            lines.append(f"missing required key '{loc}'")
        elif e["type"] == "value_error" and isinstance(value, dict):  # a block's check across its keys
            # the root block's check names its keys itself; a nested block's is placed by its key
            prefix = "" if loc == "<root>" else f"{loc}: "
            lines += [prefix + line for line in e["msg"].removeprefix("Value error, ").split("\n")]
        else:
            msg = e["msg"].removeprefix("Value error, ")
            # a block or a list is shown only when short (an empty list, two names): the key names the rest
            shown = "" if isinstance(value, dict | list) and len(repr(value)) > 60 else f" (got {value!r})"
            lines.append(f"{loc}: {msg}{shown}" if loc != "<root>" else msg)
    return lines


def did_you_mean(root_model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """` (did you mean 'epochs'?)` for a mistyped key at `loc`, from the keys its block has;
    ` (known: a, b)` when none is close."""
    block: type[BaseModel] | None = root_model
    for part in loc[:-1]:
        if isinstance(part, int):  # a list index: arms.0.name
            continue
        field = block.model_fields.get(str(part)) if block is not None else None
        block = block_of(field.annotation) if field is not None else None
    if block is None:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), list(block.model_fields), n=1)
    return f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(block.model_fields)})"


def block_of(annotation: Any) -> type[BaseModel] | None:
    """The config block class inside an annotation (`Block`, `Block | None`, `list[Block]`)."""
    union_or_list = isinstance(annotation, types.UnionType) or typing.get_origin(annotation) in (typing.Union, list)
    for a in (annotation, *(typing.get_args(annotation) if union_or_list else ())):
        if isinstance(a, type) and issubclass(a, BaseModel):
            return a
    return None


def parse_override(text: str, *, error: ErrorClass = ConfigError) -> tuple[list[str], Any]:
    """Parse `key.path=value`; the value is read as YAML (numbers, bools, lists)."""
    if "=" not in text:
        raise error(f"--set {text!r}: expected key.path=value")
    key, raw = text.split("=", 1)
    if not key.strip():
        raise error(f"--set {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_override(
    data: dict[str, Any], path: list[str], value: Any, *, error: ErrorClass = ConfigError, name: str | None = None
) -> None:
    """Set `value` at the key path in a config mapping, creating missing blocks; a numeric
    part indexes a list (`arms.1.mix`). Errors name the override as `name` (default
    `--set key.path`)."""
    name = name or f"--set {'.'.join(path)}"
    node: Any = data
    for i, part in enumerate(path[:-1]):
        where = ".".join(path[: i + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise error(f"{name}: '{where}' is not an index of a list of {len(node)}")
            node = node[int(part)]
        else:
            node = node.setdefault(part, {})
            if not isinstance(node, dict | list):
                raise error(f"{name}: '{where}' is a value, not a block")
    last = path[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise error(f"{name}: '{last}' is not an index of a list of {len(node)}")
        node[int(last)] = value
    else:
        node[last] = value
