"""benchmarks/gpu_check.sh, the GPU check run on the day a GPU is lent: its shell parses, and
its CPU fall-back runs every case it can through the real code (tiny random model, fp32) and
prints the one table, naming the vLLM case as not run rather than leaving it out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


def test_the_script_parses():
    done = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_cpu_fall_back_runs_every_case_and_prints_one_table():
    env = os.environ | {"PYTHON": sys.executable, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(["bash", str(SCRIPT), "--tiny"], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in done.stdout.splitlines()
            if line.startswith("| ") and not line.startswith(("| case", "| ---"))}
    assert list(rows) == ["train lora", "train full", "generate transformers", "generate vllm", "selfplag g0"]
    for case in ("train lora", "train full", "generate transformers", "selfplag g0"):
        assert rows[case][-1].rstrip(" |") == "ok", rows[case]
        assert rows[case][1] == "cpu"
    assert rows["train lora"][2] == "fp32"  # never bf16 on a CPU
    assert float(rows["generate transformers"][3].replace(",", "")) > 0  # tokens/s
    assert rows["generate vllm"][-1].rstrip(" |") == "not run: vLLM needs a CUDA GPU"
