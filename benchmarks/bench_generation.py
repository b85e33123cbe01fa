"""Generation throughput on the quickstart model: collapselab against the usual ways to call transformers.

Same model (seeded random init), same prompts (TinyStories blocks), same run. Each case runs in
its own process so its peak memory is its own. New tokens are counted up to EOS.

    python benchmarks/bench_generation.py [--rounds 3] [--prompts 256] [--new-tokens 64] [--batch-tokens 16384]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402


def _setup(n_prompts: int, prompt_tokens: int):
    tok = common.tokenizer()
    model = common.llama(tok)
    ids = tok(common.tinystories_text(), add_special_tokens=False)["input_ids"]
    prompts = [ids[i * prompt_tokens : (i + 1) * prompt_tokens] for i in range(n_prompts)]
    return tok, model, prompts


def _cut(ids: list[int], eos: int) -> list[int]:
    return ids[: ids.index(eos)] if eos in ids else ids


def _runner(name: str, model, tok, batch_tokens: int):
    """A function (prompts, new tokens) -> new token ids per prompt, cut at EOS, for one case."""
    import torch

    from collapselab.config import DecodingBlock
    from collapselab.generation import generate

    eos, pad = tok.eos_token_id, tok.pad_token_id
    greedy = "greedy" in name

    def ours(prompts, n_new):
        decoding = DecodingBlock(method="greedy" if greedy else "sample", batch_tokens=batch_tokens)
        return generate(model, tok, prompts, decoding, max_new_tokens=n_new, seed=0, progress=False)

    @torch.inference_mode()
    def per_example(prompts, n_new):
        outs = []
        for i, p in enumerate(prompts):
            torch.manual_seed(i)
            out = model.generate(
                torch.tensor([p]),
                attention_mask=torch.ones(1, len(p), dtype=torch.long),
                do_sample=not greedy,
                top_k=0,
                max_new_tokens=n_new,
                eos_token_id=eos,
                pad_token_id=pad,
            )
            outs.append(_cut(out[0, len(p) :].tolist(), eos))
        return outs

    def pipe(prompts, n_new):
        from transformers import pipeline

        batch_size = int(name.split("bs=")[1].rstrip(")"))
        texts = [tok.decode(p) for p in prompts]
        generator = pipeline("text-generation", model=model, tokenizer=tok, device="cpu")
        torch.manual_seed(0)
        res = generator(
            texts,
            batch_size=batch_size,
            do_sample=True,
            top_k=0,
            max_new_tokens=n_new,
            return_tensors=True,
            pad_token_id=pad,
        )
        outs = []
        for text, r in zip(texts, res, strict=True):
            n_prompt = len(tok(text, add_special_tokens=False)["input_ids"])
            outs.append(_cut(list(r[0]["generated_token_ids"][n_prompt:]), eos))
        return outs

    @torch.inference_mode()
    def batched(prompts, n_new):
        rows = int(name.split("bs=")[1].rstrip(")"))
        outs = []
        for s in range(0, len(prompts), rows):
            x = torch.tensor(prompts[s : s + rows])  # equal lengths: no padding needed
            torch.manual_seed(s)
            out = model.generate(
                x,
                attention_mask=torch.ones_like(x),
                do_sample=not greedy,
                top_k=0,
                max_new_tokens=n_new,
                eos_token_id=eos,
                pad_token_id=pad,
            )
            outs += [_cut(o, eos) for o in out[:, x.shape[1] :].tolist()]
        return outs

    if name.startswith("collapselab"):
        return ours
    if name.startswith("per-example"):
        return per_example
    if name.startswith("pipeline"):
        return pipe
    if name.startswith("model.generate"):
        return batched
    raise ValueError(name)


def _case(name: str, args: argparse.Namespace, queue: mp.Queue) -> None:
    from collapselab.config import DecodingBlock
    from collapselab.generation import generate

    tok, model, prompts = _setup(args.prompts, args.prompt_tokens)
    run = _runner(name, model, tok, args.batch_tokens)
    if name.startswith("per-example"):
        prompts = prompts[: args.per_example_prompts]
    run(prompts[:2], 4)  # warm-up: first-call costs (allocator, thread pool) are not throughput
    start = time.perf_counter()
    outs = run(prompts, args.new_tokens)
    seconds = time.perf_counter() - start
    result: dict = {"case": name}
    if name == "per-example greedy":  # the same prompts through collapselab, batched
        decoding = DecodingBlock(method="greedy", batch_tokens=args.batch_tokens)
        ours = generate(
            model, tok, prompts, decoding, max_new_tokens=args.new_tokens, seed=0, progress=False
        )
        result["identical"] = f"{sum(a == b for a, b in zip(ours, outs, strict=True))}/{len(outs)}"
    tokens = sum(len(o) for o in outs)
    result.update(
        prompts=len(outs),
        tokens=tokens,
        seconds=seconds,
        tok_s=tokens / seconds,
        peak_rss_mib=common.peak_rss_mib(),
    )
    queue.put(result)


def run_case(name: str, args: argparse.Namespace) -> dict:
    return common.run_in_own_process(_case, name, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--batch-tokens", type=int, default=16384, help="collapselab's budget (the config default)")
    parser.add_argument("--per-example-prompts", type=int, default=64, help="prompts of the per-example loop")
    parser.add_argument("--hf-batch-sizes", default="64,128,256", help="model.generate batch sizes tried (best kept)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (medians reported)")
    args = parser.parse_args()

    import statistics

    print(f"machine: {common.machine()}")
    print(f"fp32 matmul peak: {common.peak_text(common.matmul_peaks())}")
    print(f"quickstart model, {args.prompts} prompts x {args.prompt_tokens} tokens, {args.new_tokens} new tokens, "
          "temperature 1, no top-k/top-p (sample) or greedy\n")
    best = {}
    for mode in ("sample", "greedy"):
        sweep = [run_case(f"model.generate {mode} (bs={b})", args) for b in map(int, args.hf_batch_sizes.split(","))]
        for r in sweep:
            print(f"  sweep {r['case']}: {r['tok_s']:,.0f} tokens/s")
        best[mode] = max(sweep, key=lambda r: r["tok_s"])["case"]
    cases = ["collapselab sample", "collapselab greedy", best["sample"], best["greedy"], "per-example model.generate",
             "per-example greedy"]
    rounds = []
    for r in range(args.rounds):
        print(f"round {r + 1}: {common.machine().split('; ')[-1]}", flush=True)
        rounds.append({c: run_case(c, args) for c in cases})
    print("\n| case | prompts | new tokens | seconds (median) | tokens/s (median) | collapselab / case (median) | peak RSS (MiB) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for c in cases:
        runs = [r[c] for r in rounds]
        mine = "collapselab greedy" if "greedy" in c else "collapselab sample"
        ratio = statistics.median(r[mine]["tok_s"] / r[c]["tok_s"] for r in rounds)
        print(f"| {c} | {runs[0]['prompts']} | {runs[0]['tokens']} | {statistics.median(x['seconds'] for x in runs):.2f} | "
              f"{statistics.median(x['tok_s'] for x in runs):,.0f} | {ratio:.2f}x | {max(x['peak_rss_mib'] for x in runs):.0f} |")
    for c in cases:
        per_round = ", ".join(f"{r[c]['tok_s']:,.0f}" for r in rounds)
        print(f"  {c} tokens/s per round: {per_round}")
    print(f"greedy, batched collapselab vs one-at-a-time model.generate: {rounds[0]['per-example greedy']['identical']} identical")
    print(f"fp32 matmul peak at the end: {common.peak_text(common.matmul_peaks())}")
    print(f"machine at the end: {common.machine()}")


if __name__ == "__main__":
    main()
