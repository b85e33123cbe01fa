"""Generation throughput on the quickstart model: collapselab against the usual ways to call transformers.

Same model (seeded random init), same prompts (TinyStories blocks), same run. Each case runs in
its own process so its peak memory is its own. New tokens are counted up to EOS.

    python benchmarks/bench_generation.py [--prompts 256] [--new-tokens 64] [--batch-tokens 16384]
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
        rows = max(1, batch_tokens // (len(prompts[0]) + n_new))
        outs = []
        for s in range(0, len(prompts), rows):
            x = torch.tensor(prompts[s : s + rows])  # equal lengths: no padding needed
            torch.manual_seed(s)
            out = model.generate(
                x,
                attention_mask=torch.ones_like(x),
                do_sample=True,
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
    if "greedy" in name:
        prompts = prompts[: args.greedy_check]
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
    parser.add_argument(
        "--batch-tokens", type=int, default=16384, help="collapselab's budget (the config default)"
    )
    parser.add_argument(
        "--greedy-check", type=int, default=32, help="prompts compared token for token under greedy"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs of the collapselab case (median kept)"
    )
    args = parser.parse_args()

    import torch

    print(f"machine: {common.machine()}")
    peak = common.matmul_peak_flops()
    print(f"fp32 matmul peak (2048^3, best of 3 s): {peak / 1e9:.1f} GFLOP/s")
    print(
        f"quickstart model, {args.prompts} prompts x {args.prompt_tokens} tokens, {args.new_tokens} new tokens, sampling (temperature 1, no top-k/top-p)\n"
    )

    cases = [
        "per-example model.generate",
        "pipeline (bs=1)",
        "pipeline (bs=32)",
        "model.generate (batched)",
    ]
    results = [run_case(c, args) for c in cases]
    ours = sorted(
        (run_case("collapselab", args) for _ in range(args.repeats)), key=lambda r: r["tok_s"]
    )
    results.append(ours[len(ours) // 2] | {"case": f"collapselab (median of {args.repeats})"})
    greedy_ours = run_case("collapselab greedy", args)  # on the --greedy-check prompts
    greedy_loop = run_case("per-example greedy", args)
    loop = results[0]["tok_s"]

    print(
        "| case | prompts | new tokens | seconds | tokens/s | vs per-example loop | peak RSS (MiB) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in [*results, greedy_ours, greedy_loop]:
        print(
            f"| {r['case']} | {r['prompts']} | {r['tokens']} | {r['seconds']:.2f} | {r['tok_s']:,.0f} | "
            f"{r['tok_s'] / loop:.1f}x | {r['peak_rss_mib']:.0f} |"
        )
    print(
        f"\ngreedy, batched collapselab vs one-at-a-time model.generate: {greedy_loop['identical']} prompts identical"
    )
    runs = ", ".join(f"{r['tok_s']:,.0f}" for r in ours)
    print(f"collapselab runs (tokens/s): {runs}")
    print(
        f"fp32 matmul peak again at the end: {common.matmul_peak_flops() / 1e9:.1f} GFLOP/s; torch threads {torch.get_num_threads()}"
    )
    print(f"machine at the end: {common.machine()}")


if __name__ == "__main__":
    main()
