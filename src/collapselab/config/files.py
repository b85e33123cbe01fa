"""Finding an experiment config: a YAML path, or the name of a ready config shipped with the package.

The ready configs live once, in the checkout's `configs/`; `src/collapselab/configs` links
to it, so an installed package carries the same files (package data) and
`collapselab run quickstart` works from any folder, installed or not.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from collapselab.config import ConfigError


def ready_dir() -> Path:
    """The folder of the ready configs inside the installed (or checked-out) package."""
    return Path(str(resources.files("collapselab") / "configs"))


def ready_configs() -> list[str]:
    """The names of the ready configs (file names without `.yaml`), sorted."""
    return sorted(p.stem for p in ready_dir().glob("*.yaml"))


def resolve_config(config: str | Path) -> Path:
    """The YAML file `config` names: an existing path, else a ready config by name.

    `quickstart`, `quickstart.yaml` and `configs/quickstart.yaml` all find the shipped
    quickstart when no such file is in the working folder, so the README's commands work
    outside a checkout too. A file in the working folder always wins.

    Raises:
        ConfigError: Neither a file nor a ready config; the message lists the ready ones.
    """
    path = Path(config)
    if path.exists():
        return path
    name = path.name.removesuffix(".yaml").removesuffix(".yml")
    # Only a bare name or the checkout's own `configs/<name>` spelling means a ready config:
    # a typo in some other folder must not silently run a shipped experiment instead.
    if path.parent in (Path("."), Path("configs")):
        shipped = ready_dir() / f"{name}.yaml"
        if shipped.is_file():
            return shipped
    raise ConfigError(f"{config}: config file does not exist; ready configs: {', '.join(ready_configs())}")
