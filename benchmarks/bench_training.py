"""Training throughput: collapselab's packed / length-grouped training against the transformers Trainer.

A scratch Llama of >= 5M parameters on TinyStories paragraphs. Achieved FLOP/s is counted as
6 x (matmul weights, LM head included) + 6 x layers x d_model x seq_len (causal attention) per
token, and set against the best fp32 matmul FLOP/s measured in the same run. Each case runs in
its own process (its own peak memory) after one warm-up step; tokens/s counts real tokens
only, never padding.

    python benchmarks/bench_training.py [--steps 4] [--d-model 512] [--layers 4] [--seq-len 128]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402


def _docs(tok, seq_len: int) -> list[list[int]]:
    """Blank-line blocks of TinyStories as token-id documents, each cut to seq_len - 1 (room for EOS)."""
    blocks = [b.strip() for b in common.tinystories_text(800_000).split("\n\n") if b.strip()]
    return [ids[: seq_len - 1] for ids in tok(blocks, add_special_tokens=False)["input_ids"]]


def _model(tok, args):
    return common.llama(
        tok, d_model=args.d_model, n_layers=args.layers, n_heads=args.d_model // 64, d_ff=args.d_ff
    )


def _flops_per_token(model, args) -> float:
    matmul_weights = (
        sum(p.numel() for n, p in model.named_parameters() if p.dim() == 2 and "embed" not in n)
        + model.get_output_embeddings().weight.numel()
    )  # tied: the embedding is the LM head's matmul
    return 6 * matmul_weights + 6 * args.layers * args.d_model * args.seq_len


def _case(name: str, args: argparse.Namespace, queue: mp.Queue) -> None:
    import torch

    from collapselab.config import TrainingBlock

    tok = common.tokenizer()
    docs = _docs(tok, args.seq_len)
    model = _model(tok, args)
    result: dict = {
        "case": name,
        "params": common.n_params(model),
        "flops_per_token": _flops_per_token(model, args),
    }
    if name.startswith("collapselab"):
        from collapselab.training import train_lm, train_supervised

        cfg = TrainingBlock(
            max_steps=1,
            seq_len=args.seq_len,
            batch_tokens=args.batch_tokens,
            lr=1e-3,
            compile="compile" in name,
        )
        if "supervised" in name:  # prompt = first half of the paragraph, target = the rest
            pairs = [(d[: len(d) // 2], d[len(d) // 2 :]) for d in docs if len(d) >= 2]

            def train(c):
                return train_supervised(
                    model, pairs, c, pad_id=tok.pad_token_id, seed=0, progress=False
                )
        else:

            def train(c):
                return train_lm(model, docs, c, eos_id=tok.eos_token_id, seed=0, progress=False)

        start = time.perf_counter()
        train(cfg)  # warm-up (and, with compile, the compilation)
        result["warmup_s"] = time.perf_counter() - start
        cfg.max_steps = args.steps
        res = train(cfg)
        result.update(
            tokens=res.tokens, seconds=res.seconds, padded_tokens=res.tokens, loss=res.losses[-1]
        )
    elif name.startswith("Trainer"):
        from transformers import Trainer, TrainerCallback, TrainingArguments

        class StepClock(TrainerCallback):
            """Times the steps after the first, as the collapselab cases do."""

            def __init__(self):
                self.t0 = None
                self.end = None

            def on_step_end(self, args_, state, control, **kw):
                if state.global_step == 1:
                    self.t0 = time.perf_counter()
                self.end = time.perf_counter()

        supervised = "supervised" in name
        examples = []
        for d in docs:
            ids = (d + [tok.eos_token_id])[: args.seq_len]
            labels = list(ids)
            if supervised:
                labels[: len(d) // 2] = [-100] * (len(d) // 2)
            pad = args.seq_len - len(ids)
            examples.append(
                {
                    "input_ids": ids + [tok.pad_token_id] * pad,  # padding="max_length"
                    "attention_mask": [1] * len(ids) + [0] * pad,
                    "labels": labels + [-100] * pad,
                }
            )
        real_fraction = sum(sum(e["attention_mask"]) for e in examples) / (
            len(examples) * args.seq_len
        )
        rows = max(1, args.batch_tokens // args.seq_len)
        clock = StepClock()
        with tempfile.TemporaryDirectory() as out:
            targs = TrainingArguments(
                output_dir=out,
                max_steps=args.steps + 1,
                per_device_train_batch_size=rows,
                learning_rate=1e-3,
                report_to="none",
                save_strategy="no",
                logging_strategy="no",
                use_cpu=True,
                dataloader_num_workers=0,
                disable_tqdm=True,
                seed=0,
            )
            Trainer(model=model, args=targs, train_dataset=examples, callbacks=[clock]).train()
        padded = args.steps * rows * args.seq_len
        # Real tokens: the batches are random draws, so their share of real tokens is the data set's.
        result.update(
            tokens=round(padded * real_fraction),
            padded_tokens=padded,
            seconds=clock.end - clock.t0,
            warmup_s=0.0,
        )
        result["real_fraction"] = real_fraction
    else:
        raise ValueError(name)
    result["tok_s"] = result["tokens"] / result["seconds"]
    result["flop_s"] = result["padded_tokens"] * result["flops_per_token"] / result["seconds"]
    result["peak_rss_mib"] = common.peak_rss_mib()
    result["threads"] = torch.get_num_threads()
    queue.put(result)


def run_case(name: str, args: argparse.Namespace) -> dict:
    return common.run_in_own_process(_case, name, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="timed optimizer steps per case")
    parser.add_argument("--d-model", type=int, default=512)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--d-ff", type=int, default=1408)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch-tokens", type=int, default=8192)
    parser.add_argument(
        "--cases", default="collapselab lm,Trainer lm,collapselab supervised,Trainer supervised"
    )
    args = parser.parse_args()

    print(f"machine: {common.machine()}")
    peak = common.matmul_peak_flops()
    print(f"fp32 matmul peak (2048^3, best of 3 s): {peak / 1e9:.1f} GFLOP/s")
    print(
        f"Llama d_model {args.d_model}, {args.layers} layers, d_ff {args.d_ff}, seq_len {args.seq_len}, "
        f"{args.batch_tokens} tokens per step, {args.steps} timed steps after one warm-up step\n"
    )
    results = [run_case(c.strip(), args) for c in args.cases.split(",")]
    peak_end = common.matmul_peak_flops()
    print(
        "| case | params | real tokens/s | padded tokens/s | GFLOP/s | of peak | warm-up s | last loss | peak RSS (MiB) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(
            f"| {r['case']} | {r['params'] / 1e6:.1f}M | {r['tok_s']:,.0f} | {r['padded_tokens'] / r['seconds']:,.0f} | "
            f"{r['flop_s'] / 1e9:.1f} | {r['flop_s'] / peak:.0%} | {r['warmup_s']:.1f} | {r.get('loss', float('nan')):.3f} | "
            f"{r['peak_rss_mib']:.0f} |"
        )
    by = {r["case"]: r for r in results}
    for kind in ("lm", "supervised"):
        ours, theirs = by.get(f"collapselab {kind}"), by.get(f"Trainer {kind}")
        if ours and theirs:
            print(
                f"\n{kind}: collapselab {ours['tok_s'] / theirs['tok_s']:.1f}x the real tokens/s of Trainer "
                f"(Trainer batches are {theirs['real_fraction']:.0%} real tokens)"
            )
    print(f"\nfp32 matmul peak again at the end: {peak_end / 1e9:.1f} GFLOP/s")
    print(f"machine at the end: {common.machine()}")


if __name__ == "__main__":
    main()
