"""The chat server under pressure, for as long as asked: N clients on loopback send replies,
oversized bodies and malformed ones (tests/serve_load.py) to `collapselab serve`, while the
server's memory is sampled. Prints every status seen, the errors (must be 0: any answer but
a reply, 413 for the oversized body, 400 for the malformed one, or 429/503 with
Retry-After), the server's memory over time and its growth from the first half of the run to
the second (must stay near 0), and whether the server still answers afterwards.
tests/unit/serve/test_serve_load.py runs the same load for a few seconds.

    python benchmarks/bench_serve_load.py --clients 32 --seconds 120
    python benchmarks/bench_serve_load.py --model smollm2-135m-instruct --clients 16 --seconds 300
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from serve_load import run_load, start_server, stop_server  # noqa: E402
from tiny import save_chat_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="A model name or folder (default: a tiny random chat model built here).")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--max-queue", type=int, default=16)
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--max-body-bytes", type=int, default=8192)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = args.model or str(save_chat_model(folder / "tiny-chat", chat=True))
        proc, url = start_server(Path(model), folder, max_queue=args.max_queue, max_batch=args.max_batch,
                                 max_body_bytes=args.max_body_bytes)
        try:
            report = run_load(url, proc.pid, clients=args.clients, seconds=args.seconds, max_body_bytes=args.max_body_bytes,
                              sample_every=1.0)
            with httpx.Client(base_url=url, timeout=120) as http:
                after = http.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}).status_code
        finally:
            stop_server(proc)
    summary = {**report.summary(), "answers_after_load": after, "clients": args.clients, "seconds": args.seconds}
    print(json.dumps(summary, indent=1))
    print("server RSS (MB) every second:", [round(m) for _, m in report.rss_mb])
    for e in report.errors[:20]:
        print("error:", e)
    ok = not report.errors and after == 200 and report.growth_mb() < 40
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
