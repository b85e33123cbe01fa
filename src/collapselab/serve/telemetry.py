"""The server's counters in the Prometheus text format (version 0.0.4), written by hand:
four kinds of series do not need a client library and its process-global registry."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


def _labels(pairs: tuple[tuple[str, str], ...]) -> str:
    if not pairs:
        return ""
    inner = ",".join(f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"' for k, v in pairs)
    return "{" + inner + "}"


class _Histogram:
    def __init__(self, buckets: tuple[float, ...]):
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.total = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        for i, b in enumerate(self.buckets):
            if value <= b:
                self.counts[i] += 1
        self.total += 1
        self.sum += value


class Telemetry:
    """Requests by route and status, tokens, request latency, batch sizes, and gauges read
    at scrape time (queue length, requests in flight, model reloads)."""

    def __init__(self, gauges: dict[str, tuple[str, Callable[[], float]]]):
        self._lock = threading.Lock()
        self.requests: dict[tuple[tuple[str, str], ...], int] = defaultdict(int)
        self.tokens: dict[str, int] = defaultdict(int)
        self.latency: dict[str, _Histogram] = {}
        self.batch = _Histogram(BATCH_BUCKETS)
        self.gauges = gauges  # name -> (help, read)

    def request(self, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(("route", route), ("status", str(status)))] += 1
            self.latency.setdefault(route, _Histogram(LATENCY_BUCKETS)).observe(seconds)

    def add_tokens(self, prompt: int, completion: int) -> None:
        with self._lock:
            self.tokens["prompt"] += prompt
            self.tokens["completion"] += completion

    def batch_done(self, size: int, seconds: float) -> None:
        with self._lock:
            self.batch.observe(size)

    def render(self) -> str:
        out: list[str] = []
        with self._lock:
            out += ["# HELP collapselab_requests_total HTTP requests answered, by route and status.",
                    "# TYPE collapselab_requests_total counter"]
            for labels, n in sorted(self.requests.items()):
                out.append(f"collapselab_requests_total{_labels(labels)} {n}")
            out += ["# HELP collapselab_tokens_total Tokens read (prompt) and written (completion).",
                    "# TYPE collapselab_tokens_total counter"]
            for kind in ("prompt", "completion"):
                out.append(f'collapselab_tokens_total{{kind="{kind}"}} {self.tokens[kind]}')
            out += ["# HELP collapselab_request_seconds Request latency, arrival to last byte.",
                    "# TYPE collapselab_request_seconds histogram"]
            for route, h in sorted(self.latency.items()):
                out += _histogram_lines("collapselab_request_seconds", (("route", route),), h)
            out += ["# HELP collapselab_batch_size Requests decoded together per batch.",
                    "# TYPE collapselab_batch_size histogram"]
            out += _histogram_lines("collapselab_batch_size", (), self.batch)
        for name, (help_text, read) in self.gauges.items():
            out += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {read()}"]
        return "\n".join(out) + "\n"


def _histogram_lines(name: str, labels: tuple[tuple[str, str], ...], h: _Histogram) -> list[str]:
    lines = []
    for b, n in zip(h.buckets, h.counts, strict=True):
        lines.append(f"{name}_bucket{_labels((*labels, ('le', f'{b:g}')))} {n}")
    lines.append(f"{name}_bucket{_labels((*labels, ('le', '+Inf')))} {h.total}")
    lines.append(f"{name}_sum{_labels(labels)} {h.sum}")
    lines.append(f"{name}_count{_labels(labels)} {h.total}")
    return lines
