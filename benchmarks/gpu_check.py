"""The GPU path in one run: bf16 LoRA and full fine-tuning of SmolLM2, vLLM against the own
decode loop on the same prompts, one generation of `selfplag-smollm2`; one table at the end.

Run it through `benchmarks/gpu_check.sh`, which installs what is missing first. Each case
runs in its own process (its own GPU memory peak, and vLLM's engine gone with it):

- train lora / train full: `train_supervised` on SQuAD v2 training questions in the qa
  task's chat format, the model loaded as the engine loads it (fp32 master weights,
  bf16 autocast on CUDA); one warm-up step, then `--steps` timed steps. Check: the loss of
  the last step is below the first's.
- generate transformers / generate vllm: the same `--questions` SQuAD v2 dev prompts (shared
  context prefixes), greedy, `QA_NEW_TOKENS` new tokens, through `generation.generate` with
  backend transformers and vllm; a warm-up call first (vLLM builds its engine there). Check:
  vLLM's outputs equal the own loop's, prompt for prompt.
- selfplag g0: `collapselab run selfplag-smollm2` with one generation, in a fresh folder.

`--tiny` is the CPU fall-back (also taken when no CUDA device is there): a tiny random Llama
in fp32 instead of SmolLM2 and random token ids instead of SQuAD, so every case but vLLM's
(which needs CUDA) runs through the same code in seconds; the selfplag case validates the
command it would run instead of running it. The exit status is 1 when a case failed or a
case the mode needs could not run (vLLM missing on a GPU).

    bash benchmarks/gpu_check.sh              # on a GPU machine: < 10 minutes
    python benchmarks/gpu_check.py --tiny     # the CPU fall-back, seconds
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SMOLLM2 = "smollm2-135m-instruct"
SQUAD_TRAIN = "squad_v2/train-v2.0.first10articles.json"
QA_NEW_TOKENS = 32
CASES = ("train lora", "train full", "generate transformers", "generate vllm", "selfplag g0")
TINY_VOCAB = 96


# ---------------------------------------------------------------- models and data


def tiny_model_folder(folder: Path) -> Path:
    """A tiny random Llama and a word-level tokenizer over its ids, saved as an HF folder."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {"<eos>": 0, "<pad>": 1} | {f"w{i}": i for i in range(2, TINY_VOCAB)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>")
    cfg = LlamaConfig(vocab_size=TINY_VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, max_position_embeddings=256, eos_token_id=0, pad_token_id=1,
                      tie_word_embeddings=True)
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def random_ids(n: int, length: int, seed: int) -> list[list[int]]:
    import random

    rng = random.Random(seed)
    return [[rng.randrange(2, TINY_VOCAB) for _ in range(length)] for _ in range(n)]


def train_pairs(tok, args) -> list[tuple[list[int], list[int]]]:
    """(prompt, target) pairs: SQuAD v2 training questions in the qa chat format, or random ids."""
    if args.tiny:
        return list(zip(random_ids(args.questions, 24, 1), random_ids(args.questions, 6, 2), strict=True))
    from collapselab.config import PromptsBlock
    from collapselab.models.prompts import prompt_format

    fmt = prompt_format(tok, PromptsBlock())
    data = json.loads((common.DATA / SQUAD_TRAIN).read_text(encoding="utf-8"))["data"]
    pairs = []
    for article in data:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                target = fmt.target(qa["answers"][0]["text"] if qa["answers"] else "", QA_NEW_TOKENS)
                pairs.append((fmt.qa(para["context"], qa["question"], 2048 - len(target)).ids, target))
    return pairs[: args.questions]


def generation_prompts(tok, args) -> tuple[list[list[int]], list[int]]:
    """Prompts and their shared prefix lengths: SQuAD v2 dev questions (system + context shared),
    or random ids in groups of four sharing their first 16."""
    if args.tiny:
        heads = random_ids(-(-args.questions // 4), 16, 3)
        tails = random_ids(args.questions, 8, 4)
        return [heads[i // 4] + t for i, t in enumerate(tails)], [16] * args.questions
    from bench_pretrained import qa_prompts

    return qa_prompts(tok, args.questions)


# ---------------------------------------------------------------- the cases


def _case(name: str, args: argparse.Namespace, queue) -> None:
    """One case in its own process; puts a result row (or the error) on the queue."""
    try:
        queue.put(_run_case(name, args))
    except Exception as e:  # the table shows a failed case; the others still run
        traceback.print_exc()
        queue.put({"case": name, "status": "FAILED", "check": f"{type(e).__name__}: {e}".splitlines()[0][:120]})


def _run_case(name: str, args: argparse.Namespace) -> dict:
    import torch

    from collapselab.models.loading import load_model

    cuda = torch.cuda.is_available() and not args.tiny
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    kind = name.split(" ")[1]
    row = {"case": name, "device": "cuda" if cuda else "cpu"}
    if name.startswith("train"):
        loaded = load_model(args.model, for_training=True)
        model, tok = loaded.model, loaded.tokenizer
        if kind == "lora":
            from peft import LoraConfig, get_peft_model

            torch.manual_seed(0)
            model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear"))
        from collapselab.config import TrainingBlock
        from collapselab.training.loop import train_supervised

        pairs = train_pairs(tok, args)
        cfg = TrainingBlock(max_steps=1, batch_tokens=args.batch_tokens, lr=3e-4, warmup_ratio=0.0)
        train_supervised(model, pairs, cfg, pad_id=tok.pad_token_id, seed=0, progress=False)  # warm-up
        cfg.max_steps = args.steps
        res = train_supervised(model, pairs, cfg, pad_id=tok.pad_token_id, seed=0, progress=False)
        row |= {"dtype": "bf16 autocast" if cuda else "fp32", "tok_s": res.tokens / res.seconds, "seconds": res.seconds,
                "check": f"loss {res.losses[0]:.3f} -> {res.losses[-1]:.3f}",
                "status": "ok" if res.losses[-1] < res.losses[0] else "FAILED"}
    else:  # generate
        from collapselab.config import DecodingBlock
        from collapselab.generation import generate

        loaded = load_model(args.model, for_training=False)
        prompts, prefix = generation_prompts(loaded.tokenizer, args)
        decoding = DecodingBlock(method="greedy", backend=kind, batch_tokens=args.generate_batch_tokens)

        def run(p, k):
            return generate(loaded.model, loaded.tokenizer, p, decoding, max_new_tokens=QA_NEW_TOKENS, seed=0,
                            prefix_lengths=k, progress=False)

        run(prompts[:4], prefix[:4])  # warm-up (vLLM builds its engine here)
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        outs = run(prompts, prefix)
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        row |= {"dtype": loaded.dtype, "tok_s": sum(map(len, outs)) / seconds, "seconds": seconds, "outputs": outs,
                "status": "ok", "check": f"{len(outs)} prompts, {sum(map(len, outs))} tokens"}
    row["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30 if cuda else common.peak_rss_mib() / 1024
    return row


def selfplag(args: argparse.Namespace) -> dict:
    """One generation of selfplag-smollm2 through the CLI in a fresh folder; in the tiny mode
    the same command's config is validated instead (a run needs SmolLM2 and SQuAD)."""
    sets = ["experiment.generations=1"]
    cli = [sys.executable, "-c", "from collapselab.cli import app; app()"]
    with tempfile.TemporaryDirectory(prefix="gpu-check-selfplag-") as home:
        if args.tiny:
            command = [*cli, "config", "validate", "selfplag-smollm2", *(a for s in sets for a in ("--set", s))]
        else:
            command = [*cli, "run", "selfplag-smollm2", "--quiet", "--db", f"sqlite:///{home}/lab.db",
                       *(a for s in [*sets, f"experiment.output_dir={home}/runs"] for a in ("--set", s))]
        start = time.perf_counter()
        done = subprocess.run(command, cwd=home, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    last = (done.stdout.strip() or done.stderr.strip() or "(no output)").splitlines()[-1][:120]
    if done.returncode != 0:
        print(done.stdout, done.stderr, sep="\n", file=sys.stderr)
    return {"case": "selfplag g0", "device": "cpu" if args.tiny else "cuda", "dtype": "-", "seconds": seconds,
            "status": "ok" if done.returncode == 0 else "FAILED",
            "check": ("config valid (not run: tiny)" if args.tiny else last) if done.returncode == 0 else last}


def vllm_missing(args: argparse.Namespace) -> str | None:
    """Why the vLLM case cannot run here, or None."""
    import importlib.util

    import torch

    if args.tiny or not torch.cuda.is_available():
        return "not run: vLLM needs a CUDA GPU"
    if importlib.util.find_spec("vllm") is None:
        return "MISSING: the vllm package is not installed"
    return None


# ---------------------------------------------------------------- main


def table(rows: list[dict]) -> str:
    lines = ["| case | device | dtype | tokens/s | seconds | peak (GiB) | check | status |",
             "| --- | --- | --- | ---: | ---: | ---: | --- | --- |"]
    for r in rows:
        tok_s = f"{r['tok_s']:,.0f}" if "tok_s" in r else "-"
        secs = f"{r['seconds']:.1f}" if "seconds" in r else "-"
        peak = f"{r['peak_gib']:.2f}" if "peak_gib" in r else "-"
        lines.append(f"| {r['case']} | {r.get('device', '-')} | {r.get('dtype', '-')} | {tok_s} | {secs} | {peak} | "
                     f"{r.get('check', '')} | {r['status']} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="CPU fall-back: tiny random model, fp32, random ids")
    parser.add_argument("--model", default=SMOLLM2, help="model folder or catalogue name (GPU mode)")
    parser.add_argument("--steps", type=int, default=20, help="timed optimizer steps per training case")
    parser.add_argument("--batch-tokens", type=int, default=8192, help="training token budget per step")
    parser.add_argument("--questions", type=int, default=500, help="SQuAD v2 questions (train pool and prompts)")
    parser.add_argument("--generate-batch-tokens", type=int, default=65536)
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' weight bars, read at its import
    if args.tiny:  # the fall-back runs on the CPU even where a GPU is (the case processes inherit this)
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    import torch

    if not torch.cuda.is_available() and not args.tiny:
        print("no CUDA device: running the CPU fall-back (--tiny)", flush=True)
        args.tiny = True
    tmp = None
    if args.tiny:
        args.steps, args.batch_tokens, args.questions, args.generate_batch_tokens = 3, 256, 16, 4096
        tmp = tempfile.TemporaryDirectory(prefix="gpu-check-tiny-")
        args.model = str(tiny_model_folder(Path(tmp.name) / "model"))
    print(f"machine: {common.machine()}")
    if torch.cuda.is_available():
        print(f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    rows: list[dict] = []
    for case in (c.strip() for c in args.cases.split(",")):
        if case not in CASES:
            parser.error(f"--cases: unknown case {case!r} (known: {', '.join(CASES)})")
        if case == "generate vllm" and (why := vllm_missing(args)):
            rows.append({"case": case, "status": why})
        elif case == "selfplag g0":
            rows.append(selfplag(args))
        else:
            rows.append(common.run_in_own_process(_case, case, args))
        print(f"  {case}: {rows[-1]['status']}", flush=True)
    by = {r["case"]: r for r in rows}
    ours, theirs = by.get("generate transformers"), by.get("generate vllm")
    if ours and theirs and "outputs" in ours and "outputs" in theirs:
        same = sum(a == b for a, b in zip(ours["outputs"], theirs["outputs"], strict=True))
        theirs["check"] = f"{same}/{len(ours['outputs'])} outputs identical to transformers'"
        theirs["status"] = "ok" if same == len(ours["outputs"]) else "FAILED"
        print(f"vLLM / own loop tokens/s: {theirs['tok_s'] / ours['tok_s']:.2f}x")
    print("\n" + table(rows))
    if tmp is not None:
        tmp.cleanup()
    bad = [r["case"] for r in rows if r["status"] == "FAILED" or r["status"].startswith("MISSING")]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
