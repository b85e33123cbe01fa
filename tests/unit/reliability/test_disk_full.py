"""A full disk: every writer of a run (records, Parquet, JSON, model folders, cache entries)
fails with `DiskFull`, one line naming the file and the space the write needed; nothing
partial is left that a later run would trust; the same command continues once space is free.

The disk is filled by a writer that raises ENOSPC after writing part of its file (as a real
full disk does: the bytes before the error are on it), monkeypatched into the library that
writes; safetensors' own error (not an OSError) is raised as safetensors raises it."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
from tiny import tiny_config, write_config
from typer.testing import CliRunner

from collapselab.cache import filled
from collapselab.cli import app
from collapselab.errors import DiskFull
from collapselab.records import atomic_write_json, atomic_write_parquet
from collapselab.rundir.folders import temporaries

ENOSPC = OSError(errno.ENOSPC, "No space left on device")


def _half_then_full(real):
    """pyarrow.parquet.write_table that writes half the file, then finds the disk full."""

    def write_table(table, where, *args, **kwargs):
        real(table, where, *args, **kwargs)
        data = Path(where).read_bytes()
        Path(where).write_bytes(data[: len(data) // 2])
        raise ENOSPC

    return write_table


def test_a_full_disk_is_one_line_naming_the_file_and_the_space_and_leaves_nothing(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"text": ["x" * 1000] * 100})
    monkeypatch.setattr(pq, "write_table", _half_then_full(pq.write_table))
    with pytest.raises(DiskFull) as full:
        atomic_write_parquet(tmp_path / "train.parquet", table)
    message = str(full.value)
    assert message.startswith(f"{tmp_path / 'train.parquet'}: no space left on the device (this write needs about 100.")
    assert "free there" in message and "run the same command again" in message and "\n" not in message
    assert full.value.exit_code == 1
    assert list(tmp_path.iterdir()) == []  # neither the file nor its half-written temporary

    # JSON through os.write: the temporary goes too, and an older complete file stays as it was
    atomic_write_json(tmp_path / "metrics.json", {"old": 1})

    def full_fsync(fd):
        raise ENOSPC

    monkeypatch.setattr("os.fsync", full_fsync)
    with pytest.raises(DiskFull, match=r"metrics\.json: no space left on the device \(this write needs about 1[0-9] bytes"):
        atomic_write_json(tmp_path / "metrics.json", {"new": 2})
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"old": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_a_model_folder_or_cache_entry_on_a_full_disk_leaves_no_folder(tmp_path):
    from tiny import chat_model, chat_tokenizer

    from collapselab.models.loading import save_model

    tokenizer = chat_tokenizer(True)
    model = chat_model(tokenizer, 0)

    class SafetensorError(Exception):  # what safetensors raises: not an OSError, the OS error in its text
        pass

    def save_pretrained(folder, **kwargs):
        Path(folder).mkdir(exist_ok=True)
        (Path(folder) / "model.safetensors").write_bytes(b"\0" * 1000)  # the part that fitted
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    model.save_pretrained = save_pretrained
    with pytest.raises(DiskFull, match=rf"^{tmp_path / 'model'}: no space left on the device \(this write needs about [0-9.]+ (kB|MB)"):
        save_model(model, tokenizer, tmp_path / "model")
    assert list(tmp_path.iterdir()) == []

    def build(path: Path) -> None:
        path.write_bytes(b"partial")
        raise ENOSPC

    with pytest.raises(DiskFull, match="entry.bin: no space left on the device"):
        filled(tmp_path / "cache" / "entry.bin", build)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [".entry.bin.lock"]  # the lock file only


def test_run_on_a_full_disk_stops_with_one_line_then_the_same_command_continues(tiny_lm_data, tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    cfg = tiny_config(tiny_lm_data, tmp_path / "runs", generations=2)
    cfg["arms"] = cfg["arms"][:1]
    config = write_config(cfg, tmp_path / "c.yaml")
    real = pq.write_table

    def full_at_generation_1(table, where, *args, **kwargs):
        if "gen-1" in str(where) and ".synthetic.parquet." in str(where):
            return _half_then_full(real)(table, where, *args, **kwargs)
        return real(table, where, *args, **kwargs)

    monkeypatch.setattr(pq, "write_table", full_at_generation_1)
    runner = CliRunner()
    failed = runner.invoke(app, ["run", str(config), "--run-id", "r", "-q"])
    assert failed.exit_code == 1, failed.output
    errors = [line for line in failed.output.splitlines() if line.startswith("error:")]
    run_dir = tmp_path / "runs" / "tiny" / "r"
    gen1 = run_dir / "replace" / "seed-0" / "gen-1"
    assert len(errors) == 1 and errors[0].startswith(f"error: {gen1 / 'synthetic.parquet'}: no space left on the device (this write needs about")
    assert "Traceback" not in failed.output
    assert (gen1 / "model").is_dir() and not (gen1 / "synthetic.parquet").exists() and not (gen1 / "DONE").exists()
    assert temporaries(run_dir) == []

    monkeypatch.setattr(pq, "write_table", real)  # space freed
    again = runner.invoke(app, ["run", str(config), "--run-id", "r", "-q"])
    assert again.exit_code == 0, again.output
    assert (gen1 / "DONE").is_file() and json.loads((gen1 / "metrics.json").read_text())["metrics"]["perplexity"]["value"] > 1
    assert temporaries(run_dir) == []
