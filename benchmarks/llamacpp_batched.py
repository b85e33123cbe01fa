"""llama.cpp's batched decoding on the same token ids (run by bench_pretrained.py in benchmarks/.venv-llamacpp).

Reads a JSON job on stdin ({gguf, prompts, new_tokens, greedy, threads, eos}) and prints one
JSON line ({prompts, tokens, seconds, tok_s, peak_rss_mib}). As in llama.cpp's `batched`
example: one sequence per prompt, in a KV stream of its own (`kv_unified` false, llama.cpp's
advice for sequences that share no prefix; `"kv_unified": true` in the job gives the single
buffer every sequence's attention then reads in full), all prompts prefilled in batches of
n_batch tokens, then one llama_decode per step holding every live sequence's next token;
tokens come from llama.cpp's own sampler (greedy, or the dist sampler at temperature 1).
"""

from __future__ import annotations

import json
import resource
import sys
import time

import llama_cpp as lc


def main() -> None:
    job = json.loads(sys.stdin.read())
    prompts, n_new = job["prompts"], job["new_tokens"]
    lc.llama_backend_init()
    mparams = lc.llama_model_default_params()
    model = lc.llama_model_load_from_file(job["gguf"].encode(), mparams)
    cparams = lc.llama_context_default_params()
    n_seq = len(prompts)
    unified = job.get("kv_unified", False)
    cparams.kv_unified = unified
    if unified:  # one buffer: every token's attention runs over all sequences' cells, masked
        cparams.n_ctx = sum(len(p) for p in prompts) + n_seq * n_new + 256
    else:  # a stream per sequence (n_ctx / n_seq cells each): attention reads its own cells only
        cparams.n_ctx = n_seq * (max(len(p) for p in prompts) + n_new + 8)
    cparams.n_batch = cparams.n_ubatch = 2048
    cparams.n_seq_max = n_seq
    cparams.n_threads = cparams.n_threads_batch = job["threads"]
    ctx = lc.llama_init_from_model(model, cparams)
    batch = lc.llama_batch_init(max(2048, n_seq), 0, 1)

    def sampler():
        chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
        lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_greedy() if job["greedy"] else lc.llama_sampler_init_dist(0))
        return chain

    def run(prompts: list[list[int]]) -> list[list[int]]:
        lc.llama_memory_clear(lc.llama_get_memory(ctx), True)
        chains = [sampler() for _ in prompts]
        # Prefill: every prompt's tokens, packed into batches; logits only at each prompt's
        # end, and each prompt's first token sampled right after the chunk it ended in
        # (a decode call overwrites the previous call's logits).
        next_tok: dict[int, int] = {}
        items = [(s, pos, tok) for s, p in enumerate(prompts) for pos, tok in enumerate(p)]
        for start in range(0, len(items), 2048):
            chunk = items[start : start + 2048]
            batch.n_tokens = len(chunk)
            ends = []
            for i, (s, pos, tok) in enumerate(chunk):
                batch.token[i], batch.pos[i], batch.n_seq_id[i] = tok, pos, 1
                batch.seq_id[i][0] = s
                batch.logits[i] = pos == len(prompts[s]) - 1
                if batch.logits[i]:
                    ends.append((s, i))
            if lc.llama_decode(ctx, batch) != 0:
                raise RuntimeError("llama_decode failed in prefill")
            for s, i in ends:
                next_tok[s] = lc.llama_sampler_sample(chains[s], ctx, i)
        outs: list[list[int]] = [[] for _ in prompts]
        live = list(range(len(prompts)))
        for step in range(n_new):
            live = [s for s in live if next_tok[s] != job["eos"]]
            for s in live:
                outs[s].append(next_tok[s])
            if step == n_new - 1 or not live:
                break
            batch.n_tokens = len(live)
            for i, s in enumerate(live):
                batch.token[i], batch.pos[i], batch.n_seq_id[i] = next_tok[s], len(prompts[s]) + step, 1
                batch.seq_id[i][0] = s
                batch.logits[i] = True
            if lc.llama_decode(ctx, batch) != 0:
                raise RuntimeError("llama_decode failed in a decode step")
            for i, s in enumerate(live):
                next_tok[s] = lc.llama_sampler_sample(chains[s], ctx, i)
        for chain in chains:
            lc.llama_sampler_free(chain)
        return outs

    run(prompts[:2])  # warm-up, as for every other case
    start = time.perf_counter()
    outs = run(prompts)
    seconds = time.perf_counter() - start
    tokens = sum(len(o) for o in outs)
    print(json.dumps({"prompts": len(prompts), "tokens": tokens, "seconds": seconds, "tok_s": tokens / seconds,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "outputs": outs if job["greedy"] else None}))


if __name__ == "__main__":
    main()
