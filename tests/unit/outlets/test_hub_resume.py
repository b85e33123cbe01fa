"""A run resumes from generations found on the Hub when its run directory lacks them: the
generations another machine pushed are downloaded whole, not recomputed. A local folder
stands in for the Hub (the suite is offline)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tiny import tiny_config

import collapselab.engine as engine
from collapselab.config import config_from_dict
from collapselab.errors import RunError
from collapselab.lab.events import Message
from collapselab.outlets.hub import restore_generations, resume_from_hub
from collapselab.rundir.generation import GenerationFolder


class FolderHub:
    """The part of `huggingface_hub.HfApi` collapselab uses, over a local folder (repo id -> folder)."""

    root: Path

    def __init__(self, endpoint=None, token=None) -> None:
        pass

    def _repo(self, repo_id: str) -> Path:
        return self.root / repo_id

    def create_repo(self, repo_id, private=True, exist_ok=True):
        self._repo(repo_id).mkdir(parents=True, exist_ok=True)

    def list_repo_files(self, repo_id):
        repo = self._repo(repo_id)
        return sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file())

    def _put(self, repo_id, path_in_repo, source):
        dest = self._repo(repo_id) / path_in_repo
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)

    def create_commit(self, repo_id, operations, commit_message=""):
        for op in operations:
            self._put(repo_id, op.path_in_repo, op.path_or_fileobj)

    def upload_file(self, *, path_or_fileobj, path_in_repo, repo_id, commit_message=""):
        self._put(repo_id, path_in_repo, path_or_fileobj)

    def hf_hub_download(self, repo_id, filename, *, local_dir):
        dest = Path(local_dir) / filename
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self._repo(repo_id) / filename, dest)
        return str(dest)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    import huggingface_hub

    FolderHub.root = tmp_path / "hub"
    monkeypatch.setattr(huggingface_hub, "HfApi", FolderHub)
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    return FolderHub()


def _config(tiny_lm_data, tmp_path):
    cfg = tiny_config(tiny_lm_data, tmp_path / "runs", generations=2)
    cfg["arms"] = [cfg["arms"][0]]
    cfg["hub"] = {"repo_id": "lab/collapse", "drain_s": 60}
    return config_from_dict(cfg)


def _run(cfg, **kw):
    said: list[str] = []
    run_dir = engine.run_experiment(cfg, listeners=[lambda e: said.append(e.text) if isinstance(e, Message) else None],
                                    db_url=f"sqlite:///{Path(cfg.experiment.output_dir) / 'lab.db'}", **kw)
    return run_dir, said


def test_a_run_on_another_machine_resumes_from_the_generations_pushed_to_the_hub(tiny_lm_data, tmp_path, hub, monkeypatch):
    cfg = _config(tiny_lm_data, tmp_path)
    first, _ = _run(cfg)
    pushed = set(hub.list_repo_files("lab/collapse"))
    assert {"manifest.json", "replace/seed-0/gen-1/DONE", "replace/seed-0/gen-1/train.parquet", "replace/seed-0/gen-1/model/config.json"} <= pushed
    before = {g: GenerationFolder(first, "replace", 0, g).metrics.read_text() for g in (0, 1)}
    shutil.rmtree(first.parent)  # another machine: no run directory at all

    def no_training(*_args, **_kw):
        raise AssertionError("a generation found on the Hub was trained again")

    monkeypatch.setattr(engine, "train_generation", no_training)
    second, said = _run(cfg, fresh=True)
    assert "hub: resumed replace/seed-0/gen-0 from lab/collapse" in said and "hub: resumed replace/seed-0/gen-1 from lab/collapse" in said
    for g in (0, 1):
        folder = GenerationFolder(second, "replace", 0, g)
        assert folder.is_done() and folder.metrics.read_text() == before[g]
    from collapselab.store import Store

    with Store(f"sqlite:///{tmp_path / 'runs' / 'lab.db'}") as store:  # recorded as the run's own
        assert len(store.generations(second.name)) == 2


def test_only_generations_up_to_the_first_gap_are_restored(tiny_lm_data, tmp_path, hub):
    cfg = _config(tiny_lm_data, tmp_path)
    first, _ = _run(cfg)
    shutil.rmtree(first)
    shutil.rmtree(hub.root / "lab/collapse/replace/seed-0/gen-0")  # gen-1 alone would follow a recomputed gen-0
    run_dir = first.parent / "elsewhere"
    run_dir.mkdir()
    (run_dir / "manifest.json").write_text(json.dumps({"config_hash": cfg.config_hash()}))
    assert restore_generations(cfg, run_dir, "elsewhere") == []
    assert not (run_dir / "replace").exists()


def test_generations_of_another_config_are_refused(tiny_lm_data, tmp_path, hub):
    cfg = _config(tiny_lm_data, tmp_path)
    first, _ = _run(cfg)
    manifest = json.loads((first / "manifest.json").read_text())
    shutil.rmtree(first / "replace")
    (hub.root / "lab/collapse/manifest.json").write_text(json.dumps({**manifest, "config_hash": "0000000000000000"}))
    with pytest.raises(RunError, match=r"config 0000000000000000, this run's is [0-9a-f]{16}; give hub.prefix"):
        restore_generations(cfg, first, first.name)


def test_an_unreachable_hub_is_said_and_the_run_goes_on(tiny_lm_data, tmp_path, monkeypatch):
    import collapselab.outlets.hub as hub_module

    def offline(*_a, **_k):
        raise ConnectionError("the hub is offline")

    monkeypatch.setattr(hub_module, "restore_generations", offline)
    lines = resume_from_hub(_config(tiny_lm_data, tmp_path), tmp_path)
    assert lines == ["hub: could not look for generations to resume from on lab/collapse (ConnectionError: the hub is offline); "
                     "this run computes what it lacks"]
