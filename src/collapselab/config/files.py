"""Finding an experiment config: a YAML path, or the name of a ready config shipped with the package.

The ready configs live once, in the checkout's `configs/`; `src/collapselab/configs` links
to it, so an installed package carries the same files (package data) and
`collapselab run quickstart` works from any folder, installed or not. Only a bare name means
a ready config; a path is a file or an error.
"""

from __future__ import annotations

import difflib
from importlib import resources
from pathlib import Path

from collapselab.config import ConfigError


def ready_dir() -> Path:
    """The folder of the ready configs inside the installed (or checked-out) package."""
    return Path(str(resources.files("collapselab") / "configs"))


def ready_configs(folder: Path | None = None) -> list[str]:
    """The names of the ready configs in `folder` (default `ready_dir()`; file names without
    `.yaml`), sorted."""
    return sorted(p.stem for p in (folder or ready_dir()).glob("*.yaml"))


def serve_configs_dir() -> Path:
    """The ready configs of `collapselab serve` (`--config secure`), shipped with the package."""
    return ready_dir() / "serve"


def resolve_config(config: str | Path, *, ready: Path | None = None) -> Path:
    """The YAML file `config` names: an existing file, or a ready config named by its bare name.

    `quickstart` is the shipped quickstart (unless a file of that very name is in the
    working folder); anything that looks like a path (`configs/quickstart.yaml`,
    `quickstart.yml`) is only ever that file: a typo must not run a shipped experiment.

    Raises:
        ConfigError: No such file and no such ready config; the message names the nearest
            file beside the path or the nearest ready config ("did you mean ...?") and lists
            the ready ones.
    """
    folder = ready or ready_dir()  # the ready experiment configs, or `serve_configs_dir()`
    path = Path(config)
    if path.is_file():
        return path
    if is_ready_name(str(config)) and (folder / f"{config}.yaml").is_file():
        return folder / f"{config}.yaml"
    nearest = _nearest(path, folder)
    hint = f"; did you mean {nearest}?" if nearest else ""
    raise ConfigError(f"{config}: config file does not exist{hint}; ready configs: {', '.join(ready_configs(folder))}")


def is_ready_name(config: str) -> bool:
    """`config` is spelt as a ready config's name (no folder, no file extension)."""
    path = Path(config)
    return path.parent == Path(".") and path.suffix == "" and config == path.name


def _nearest(path: Path, ready: Path) -> str | None:
    """The YAML file beside `path` whose name is nearest to its name, else the ready config
    whose name is nearest to its stem (named as it would be run), else None."""
    stem = path.name.removesuffix(".yaml").removesuffix(".yml")
    folder = path.parent
    if folder.is_dir():
        files = {p.name.removesuffix(".yaml").removesuffix(".yml"): p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()}
        close = difflib.get_close_matches(stem, files, n=1, cutoff=0.6)
        if close:
            return str(files[close[0]])
    close = difflib.get_close_matches(stem, ready_configs(ready), n=1, cutoff=0.6)
    if not close:
        return None
    how = f"collapselab run {close[0]}" if ready == ready_dir() else f"--config {close[0]}"
    return f"the ready config {close[0]!r} ({how})"
