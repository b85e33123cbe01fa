"""Training throughput against the fp32 matmul peak and against the transformers Trainer.

Cases, each in its own process (its own peak RSS), one warm-up step, then timed steps:
- `collapselab lm` / `Trainer lm`: a scratch Llama (>= 5M parameters) on TinyStories,
  causal LM on packed `seq_len` blocks. Trainer gets the same packed blocks (its strongest
  setting: no padding at all).
- `collapselab qa-lora` / `Trainer qa-lora`, `collapselab qa-full` / `Trainer qa-full`:
  SmolLM2-135M-Instruct (the catalogue's fp32 folder) on SQuAD v2 training questions in the
  chat format the qa task trains on, loss on the answer tokens only; LoRA r 16 on all linear
  layers, and full fine-tuning. Trainer runs in its strongest CPU setting: length-grouped
  sampling (`train_sampling_strategy="group_by_length"`) with dynamic padding
  (`DataCollatorForSeq2Seq`), batches of as many examples as fit the same token budget on
  average, the same optimizer (fused AdamW, betas 0.9/0.95, weight decay 0.01).

FLOPs are the useful work of each step, counted the same way for both sides, from the real
(non-pad) tokens of the timed steps' rows: a trainable matmul weight costs 6 FLOPs per token
(forward, input gradient, weight gradient), a frozen one under LoRA 4 (no weight gradient) and
2 where no gradient has to flow into its input (layer 0's q/k/v projections read the frozen
embeddings); the LM head counts only on tokens that carry a loss (4 or 6 per weight); causal
attention 6 x d_model x n^2 per layer and sequence of n tokens. Padding and logits of prompt
tokens are not useful work: Trainer computes them, which is why its share of the peak is lower.

    python benchmarks/bench_training.py            # everything (about 4 minutes on 2 cores)
    python benchmarks/bench_training.py --quick    # a smoke test (about a minute on a quiet machine)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

SQUAD_TRAIN = "squad_v2/train-v2.0.first10articles.json"
SMOLLM2 = "smollm2-135m-instruct"
ANSWER_TOKENS = 32  # the qa task's default answer length (decoding.max_new_tokens)
CASES = "collapselab lm,Trainer lm,collapselab qa-lora,Trainer qa-lora,collapselab qa-full,Trainer qa-full"


# ---------------------------------------------------------------- data and models


def lm_setup(args):
    tok = common.tokenizer()
    blocks = [b.strip() for b in common.tinystories_text(800_000).split("\n\n") if b.strip()]
    docs = tok(blocks, add_special_tokens=False)["input_ids"]
    model = common.llama(tok, d_model=args.d_model, n_layers=args.layers, n_heads=args.d_model // 64, d_ff=args.d_ff)
    return tok, docs, model


def qa_setup(args, lora: bool):
    """SmolLM2 (LoRA-wrapped or not) and (prompt, target) pairs of SQuAD v2 training questions."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from collapselab.config import PromptsBlock
    from collapselab.models.catalogue import materialize
    from collapselab.models.prompts import prompt_format

    folder = materialize(SMOLLM2)
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="sdpa")
    fmt = prompt_format(tok, PromptsBlock())
    data = json.loads((common.DATA / SQUAD_TRAIN).read_text(encoding="utf-8"))["data"]
    pairs = []
    for article in data:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                answer = qa["answers"][0]["text"] if qa["answers"] else ""
                target = fmt.target(answer, ANSWER_TOKENS)
                pairs.append((fmt.qa(para["context"], qa["question"], 2048 - len(target)).ids, target))
    pairs = pairs[: args.questions]
    if lora:
        from peft import LoraConfig, get_peft_model

        torch.manual_seed(0)  # the same adapter init in every case's process: losses compare
        model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear"))
    return tok, pairs, model


def flops(model, rows: list[int], targets: int) -> float:
    """Useful FLOPs of training on rows of `rows` real tokens with `targets` loss-bearing tokens."""
    head = model.get_output_embeddings().weight
    cfg = model.config
    body = 0.0
    for name, p in model.named_parameters():
        if p.dim() != 2 or p is head or "embed" in name:
            continue
        if p.requires_grad:
            body += 6 * p.numel()
        elif any(f"layers.0.self_attn.{x}_proj.base_layer" in name or name.endswith(f"layers.0.self_attn.{x}_proj.weight")
                 for x in "qkv"):
            body += 2 * p.numel()  # its input is the frozen embedding: no input gradient either
        else:
            body += 4 * p.numel()
    head_cost = (6 if head.requires_grad else 4) * head.numel()
    attention = 6 * cfg.num_hidden_layers * cfg.hidden_size * sum(n * n for n in rows)
    return body * sum(rows) + head_cost * targets + attention


# ---------------------------------------------------------------- one case


def _case(name: str, args: argparse.Namespace, queue) -> None:
    import torch

    from collapselab.models import kernels

    side, kind = name.split(" ")[:2]
    if "(MKL linear)" in name:  # collapselab on PyTorch's own F.linear: what the oneDNN linear is worth
        os.environ[kernels.ENV] = "torch"
    if kind == "lm":
        tok, docs, model = lm_setup(args)
        budget, seq_len = args.batch_tokens, args.seq_len
    else:
        tok, pairs, model = qa_setup(args, lora=kind == "qa-lora")
        budget, seq_len = args.qa_batch_tokens, None
    result = {"case": name, "params": common.n_params(model),
              "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad)}
    lr = 1e-3 if kind == "lm" else 3e-4
    if side == "collapselab":
        from collapselab.config import TrainingBlock
        from collapselab.training.loop import train_lm, train_supervised

        cfg = TrainingBlock(max_steps=1, seq_len=seq_len or 128, batch_tokens=budget, lr=lr, warmup_ratio=0.0)

        def train(c):
            if kind == "lm":
                return train_lm(model, docs, c, eos_id=tok.eos_token_id, seed=0, progress=False)
            return train_supervised(model, pairs, c, pad_id=tok.pad_token_id, seed=0, progress=False)

        train(cfg)  # warm-up
        cfg.max_steps = args.steps
        if args.profile and kind == "qa-lora":  # in its MKL A/B too: both then time the same model state
            _profile(train, cfg)
        res = train(cfg)
        result.update(tokens=res.tokens, seconds=res.seconds, loss=res.losses[-1],
                      flops=flops(model, res.row_tokens, res.target_tokens))
    else:
        result.update(_trainer(kind, tok, model, docs if kind == "lm" else pairs, budget, seq_len, lr, args))
    result["tok_s"] = result["tokens"] / result["seconds"]
    result["flop_s"] = result["flops"] / result["seconds"]
    result["peak_rss_mib"] = common.peak_rss_mib()
    result["threads"] = torch.get_num_threads()
    queue.put(result)


def _trainer(kind, tok, model, data, budget, seq_len, lr, args) -> dict:
    """Trainer's strongest CPU setting; the rows of every batch it trains on are recorded."""
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainerCallback, TrainingArguments

    if kind == "lm":  # packed blocks, as collapselab trains: no padding, labels = inputs
        stream = [t for d in data for t in (*d, tok.eos_token_id)]
        examples = [{"input_ids": stream[i : i + seq_len], "labels": stream[i : i + seq_len]}
                    for i in range(0, len(stream) - seq_len + 1, seq_len)]
        rows_per_batch = max(1, budget // seq_len)
    else:  # prompt + target, loss on the target only; padded per batch
        examples = [{"input_ids": [*p, *t], "labels": [-100] * len(p) + list(t)} for p, t in data]
        mean = sum(len(e["input_ids"]) for e in examples) / len(examples)
        rows_per_batch = max(1, round(budget / mean))
    pad = DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100)
    seen: list[tuple[list[int], int]] = []

    def collate(features):
        # HF shifts labels inside the model: a row's loss-bearing tokens are its labels but the first
        seen.append(([len(f["input_ids"]) for f in features],
                     sum(sum(x != -100 for x in f["labels"][1:]) for f in features)))
        return pad(features)

    class StepClock(TrainerCallback):
        """Times the steps after the first, as the collapselab cases time theirs after a warm-up."""

        t0 = end = 0.0

        def on_step_end(self, args_, state, control, **kw):
            if state.global_step == 1:
                self.t0 = time.perf_counter()
            self.end = time.perf_counter()

    clock = StepClock()
    with tempfile.TemporaryDirectory() as out:
        targs = TrainingArguments(
            output_dir=out, max_steps=args.steps + 1, per_device_train_batch_size=rows_per_batch,
            learning_rate=lr, weight_decay=0.01, adam_beta1=0.9, adam_beta2=0.95, optim="adamw_torch_fused",
            lr_scheduler_type="cosine", warmup_steps=0, max_grad_norm=1.0,
            train_sampling_strategy="group_by_length" if kind != "lm" else "random",
            report_to="none", save_strategy="no", logging_strategy="no", use_cpu=True,
            dataloader_num_workers=0, disable_tqdm=True, seed=0, remove_unused_columns=False,
        )
        Trainer(model=model, args=targs, train_dataset=examples, data_collator=collate, callbacks=[clock]).train()
    timed = seen[1 : args.steps + 1]
    rows = [n for lengths, _ in timed for n in lengths]
    targets = sum(t for _, t in timed)
    return {"tokens": sum(rows), "seconds": clock.end - clock.t0, "flops": flops(model, rows, targets),
            "rows_per_batch": rows_per_batch}


def _profile(train, cfg) -> None:
    """Where one SmolLM2 LoRA training step goes: torch.profiler, self CPU time per op."""
    from torch.profiler import ProfilerActivity, profile

    one = cfg.model_copy(update={"max_steps": 1})
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train(one)
    print("\nprofile of one SmolLM2 qa-lora training step (self CPU time per op):", flush=True)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12), flush=True)


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 timed step, small batches, 32 questions")
    parser.add_argument("--steps", type=int, default=3, help="timed optimizer steps per case")
    parser.add_argument("--d-model", type=int, default=512)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--d-ff", type=int, default=1408)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch-tokens", type=int, default=8192, help="lm: tokens per step")
    parser.add_argument("--qa-batch-tokens", type=int, default=2048, help="qa: token budget per step (SmolLM2)")
    parser.add_argument("--questions", type=int, default=600, help="qa: SQuAD v2 training questions in the pool")
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    parser.add_argument("--cases", default=CASES)
    args = parser.parse_args()
    if args.quick:
        args.steps, args.batch_tokens, args.qa_batch_tokens, args.questions = 1, 1024, 384, 32

    print(f"machine: {common.machine()}")
    peaks = common.matmul_peaks()
    peak = max(peaks.values())
    print(f"fp32 matmul peak: {common.peak_text(peaks)}")
    print(f"lm: scratch Llama d_model {args.d_model}, {args.layers} layers, d_ff {args.d_ff}, seq_len {args.seq_len}, "
          f"{args.batch_tokens} tokens per step; qa: {SMOLLM2}, {args.questions} SQuAD v2 questions, "
          f"{args.qa_batch_tokens}-token budget per step; {args.steps} timed steps after one warm-up step\n", flush=True)
    results = []
    for case in (c.strip() for c in args.cases.split(",")):
        results.append(common.run_in_own_process(_case, case, args))
        print(f"  {case}: {results[-1]['tok_s']:,.0f} tokens/s", flush=True)
    peaks_end = common.matmul_peaks()
    print("\n| case | params (trainable) | real tokens/s | GFLOP/s | of peak | last loss | peak RSS (MiB) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(f"| {r['case']} | {r['params'] / 1e6:.1f}M ({r['trainable'] / 1e6:.2f}M) | {r['tok_s']:,.0f} | "
              f"{r['flop_s'] / 1e9:.1f} | {r['flop_s'] / peak:.0%} | {r.get('loss', float('nan')):.3f} | "
              f"{r['peak_rss_mib']:.0f} |")
    by = {r["case"]: r for r in results}
    for kind in ("lm", "qa-lora", "qa-full"):
        ours, theirs = by.get(f"collapselab {kind}"), by.get(f"Trainer {kind}")
        if ours and theirs:
            print(f"{kind}: collapselab {ours['tok_s'] / theirs['tok_s']:.2f}x the real tokens/s of Trainer "
                  f"(Trainer: {theirs['rows_per_batch']} rows per batch)")
    print(f"\nfp32 matmul peak again at the end: {common.peak_text(peaks_end)}")
    print(f"machine at the end: {common.machine()}")


if __name__ == "__main__":
    main()
