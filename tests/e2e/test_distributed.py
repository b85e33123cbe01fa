"""`collapselab run` under `torchrun --nproc_per_node 2` (gloo, CPU): the training steps run
data-parallel, only rank 0 writes, and every training step's loss and the trained weights
equal a single-process run of the same config."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from tiny_lab import tiny_config, write_config, write_corpus

from collapselab.config import config_from_dict
from collapselab.engine import run_experiment
from collapselab.store import Store

pytestmark = pytest.mark.e2e


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


def test_a_run_under_torchrun_trains_data_parallel_and_equals_one_process(tmp_path, monkeypatch):
    data = write_corpus(tmp_path / "data")
    # Micro-batches of 4 blocks and 2 of them per optimizer step: each rank takes half the
    # rows of every micro-batch.
    recipe = {"epochs": 2, "lr": 0.01, "batch_tokens": 128, "seq_len": 32, "grad_accum": 2}
    cfg = tiny_config(data, tmp_path / "dp" / "runs")
    cfg["data"]["train_size"] = 16  # 4 blocks of 32 tokens: one micro-batch per epoch of the base
    cfg["model"]["pretrain"] = {**cfg["model"]["pretrain"], **recipe, "epochs": 4}
    cfg["training"] = {**cfg["training"], **recipe}
    env = {**os.environ, "COLLAPSELAB_CACHE": str(tmp_path / "dp" / "cache"), "COLLAPSELAB_DB": f"sqlite:///{tmp_path / 'dp' / 'db.sqlite'}"}
    launched = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "collapselab.cli", "run", str(write_config(cfg, tmp_path / "dp.yaml"))],
        env=env, capture_output=True, text=True, timeout=600)
    assert launched.returncode == 0, launched.stdout[-3000:] + launched.stderr[-3000:]
    # both training calls (the scratch base, generation 1) ran on both ranks
    assert launched.stderr.count("train_lm: data-parallel over 2 processes (gloo)") == 2, launched.stderr[-3000:]

    # the same config in one process, one thread as each rank had (torchrun's default)
    monkeypatch.setenv("COLLAPSELAB_CACHE", str(tmp_path / "single" / "cache"))
    single_cfg = {**cfg, "experiment": {**cfg["experiment"], "output_dir": str(tmp_path / "single" / "runs")}}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = run_experiment(config_from_dict(single_cfg), listeners=[])
    finally:
        torch.set_num_threads(threads)

    (dp,) = (tmp_path / "dp" / "runs" / "tiny").iterdir()  # one run: rank 1 ran no engine
    with Store(env["COLLAPSELAB_DB"]) as store:
        assert [r["run_id"] for r in store.list_runs()] == [dp.name] and len(store.generations(dp.name)) == 2
    for g in (0, 1):  # generation 0 is the pretrained scratch base, generation 1 a fine-tune of it
        a, b = single / f"ratio/seed-0/gen-{g}/model", dp / f"ratio/seed-0/gen-{g}/model"
        la, lb = (json.loads((x / "train_log.json").read_text()) for x in (a, b))
        assert lb["steps"] == la["steps"] >= 2 and lb["tokens"] == la["tokens"]
        assert lb["losses"] == pytest.approx(la["losses"], rel=1e-5, abs=1e-6)
        wa, wb = _weights(a), _weights(b)
        assert wa.keys() == wb.keys()
        # Two half-batch gradients summed differ from one whole-batch gradient in the last
        # float bits; AdamW divides by the gradient's running RMS, which turns those bits
        # into visible steps for the few weights whose gradient is nearly zero. So: every
        # weight within 1e-5 but a handful, and the whole difference tiny next to the weights.
        diff = torch.cat([(wa[k] - wb[k]).flatten() for k in wa])
        assert (diff.abs() > 1e-5).float().mean() < 1e-3
        assert diff.norm() < 1e-3 * torch.cat([wa[k].flatten() for k in wa]).norm()
