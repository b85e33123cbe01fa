"""collapselab as a user gets it: a wheel installed with pip into a fresh environment, run from a
folder that is not the checkout. The ready configs come with it and resolve by name."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A venv holding only the wheel; its dependencies are reached through a path entry to
    this environment's site-packages (no download, no copy of torch). Returns its bin/."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src-copy"  # build from a copy: the build leaves nothing in the checkout
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "src", "configs"):
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(REPO / name, src / name, **({"symlinks": True, "ignore": shutil.ignore_patterns("*.egg-info", "__pycache__")} if copy is shutil.copytree else {}))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(root / "dist"), str(src)], check=True, capture_output=True)
    (wheel,) = (root / "dist").glob("collapselab-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run([*pip, "--python", str(venv / "bin" / "python"), "install", "--no-deps", str(wheel)], check=True, capture_output=True)
    # The dependencies, appended after the venv's own site-packages: the editable checkout
    # installed there is not activated (its .pth hook only runs for a site directory).
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin"


def _run(bin_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(bin_dir / "collapselab"), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_installed_package_is_the_wheel_not_the_checkout(installed, tmp_path):
    out = subprocess.run([str(installed / "python"), "-c", "import collapselab.config.files as c; print(c.__file__); print(c.ready_dir())"],
                         cwd=tmp_path, check=True, capture_output=True, text=True).stdout.split()
    assert all(str(REPO) not in line for line in out), out
    assert Path(out[1]).is_dir() and not Path(out[1]).is_symlink()  # the files themselves, in site-packages


def test_quickstart_and_ready_configs_work_outside_the_checkout(installed, tmp_path):
    help_ = _run(installed, tmp_path, "quickstart", "--help")
    assert help_.returncode == 0 and "ready quickstart config" in help_.stdout
    ok = _run(installed, tmp_path, "config", "validate", "quickstart")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("quickstart: ok (quickstart, 3 arms, 4 generations, hash ") and "site-packages" not in ok.stderr
    for name in ("shumailov-wikitext2", "configs/refinery-squad.yaml"):
        assert _run(installed, tmp_path, "config", "validate", name).returncode == 0
    listed = _run(installed, tmp_path, "reproduce")  # the claim files are package data too
    assert listed.returncode == 0 and all(c in listed.stdout for c in ("shumailov", "gerstgrasser", "kazdan", "keisha")), listed.stderr
    bad = _run(installed, tmp_path, "run", "no-such-config")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("error: no-such-config: config file does not exist; ready configs: gerstgrasser-tinystories, ")
