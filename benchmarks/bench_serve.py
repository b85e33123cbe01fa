"""Load test of `collapselab serve`: N concurrent clients for T seconds against one server, the
batching scheduler against a one-request-at-a-time server (`--max-batch 1`) on the same model.

Loopback only, bounded in time: every client stops sending at the deadline and its last
request times out after `--request-timeout` seconds at worst. Prints, per server and run:
requests answered, the 429/503 refusals the limits promise, any other error (must be 0),
completion tokens per second over the whole test, and p50/p95 request latency.

    python benchmarks/bench_serve.py --model smollm2-135m-instruct --clients 50 --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

MESSAGES = [
    "What is the capital of France?", "Give me three tips for sleeping better.", "Why is the sky blue?",
    "Write a haiku about the sea.", "What does a model collapse mean in machine learning?",
    "Name a few uses of copper.", "How do plants make food?", "Tell me a fun fact about owls.",
]


def start_server(model: str, port: int, max_batch: int, max_queue: int, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "collapselab.cli", "serve", "--model", model, "--port", str(port),
           "--max-batch", str(max_batch), "--max-queue", str(max_queue)]
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("server did not start in 600 s")


async def load(url: str, clients: int, seconds: float, max_tokens: int, timeout: float) -> dict:
    results: list[tuple[int, float, int]] = []  # (status, seconds, completion tokens)
    deadline = time.monotonic() + seconds

    async def client(i: int, http: httpx.AsyncClient) -> None:
        n = 0
        while time.monotonic() < deadline:
            body = {"messages": [{"role": "user", "content": MESSAGES[(i + n) % len(MESSAGES)]}],
                    "max_tokens": max_tokens, "temperature": 0.7, "top_p": 0.95}
            t0 = time.monotonic()
            try:
                r = await http.post(f"{url}/v1/chat/completions", json=body)
                tokens = r.json()["usage"]["completion_tokens"] if r.status_code == 200 else 0
                results.append((r.status_code, time.monotonic() - t0, tokens))
                if r.status_code in (429, 503):  # what the limits promise: back off as told
                    await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
            except httpx.HTTPError as e:
                results.append((-1, time.monotonic() - t0, 0))
                print(f"client {i}: {e.__class__.__name__}: {e}", file=sys.stderr)
            n += 1

    started = time.monotonic()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as http:
        await asyncio.gather(*(client(i, http) for i in range(clients)))
    wall = time.monotonic() - started
    ok = [r for r in results if r[0] == 200]
    latencies = sorted(r[1] for r in ok)
    return {
        "ok": len(ok), "429": sum(r[0] == 429 for r in results), "503": sum(r[0] == 503 for r in results),
        "other_errors": sum(r[0] not in (200, 429, 503) for r in results),
        "tokens": sum(r[2] for r in ok), "wall": wall,
        "tokens_per_s": sum(r[2] for r in ok) / wall,
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p95": latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("nan"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m-instruct", help="model name or folder, as --model of collapselab serve")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--max-batch", type=int, default=16, help="the batching server's batch size")
    ap.add_argument("--max-queue", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=1, help="alternating runs of each server")
    ap.add_argument("--request-timeout", type=float, default=300)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    print(f"model {args.model}; {args.clients} clients for {args.seconds:g} s; max_tokens {args.max_tokens}; temperature 0.7, top_p 0.95")
    rows = []
    logs = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    for rep in range(args.repeats):
        for name, batch in (("batched", args.max_batch), ("one at a time", 1)):
            import socket

            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            proc = start_server(args.model, port, batch, args.max_queue, logs / f"{name}-{rep}.log")
            url = f"http://127.0.0.1:{port}"
            try:
                httpx.post(f"{url}/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}, timeout=120)
                r = asyncio.run(load(url, args.clients, args.seconds, args.max_tokens, args.request_timeout))
            finally:
                proc.terminate()
                proc.wait(60)
            r.update(server=f"{name} (max_batch {batch})", run=rep + 1)
            rows.append(r)
            print(f"{r['server']}, run {r['run']}: {r['ok']} ok, {r['429']} x 429, {r['503']} x 503, {r['other_errors']} other errors; "
                  f"{r['tokens']} tokens in {r['wall']:.1f} s = {r['tokens_per_s']:.1f} tokens/s; p50 {r['p50']:.2f} s, p95 {r['p95']:.2f} s", flush=True)
    print(f"machine at the end: {machine()}")
    print("\n| server | run | requests ok | 429 | 503 | other errors | completion tokens/s | p50 latency (s) | p95 latency (s) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['server']} | {r['run']} | {r['ok']} | {r['429']} | {r['503']} | {r['other_errors']} | {r['tokens_per_s']:.1f} | {r['p50']:.2f} | {r['p95']:.2f} |")
    batched = statistics.median(r["tokens_per_s"] for r in rows if r["server"].startswith("batched"))
    single = statistics.median(r["tokens_per_s"] for r in rows if r["server"].startswith("one"))
    print(f"\nbatching gain (median tokens/s): {batched / single:.2f}x")
    if any(r["other_errors"] for r in rows):
        raise SystemExit("errors other than the promised 429/503")


if __name__ == "__main__":
    main()
