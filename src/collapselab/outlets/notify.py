"""Notifications (`notify:` block): run started (with its key parameters), generation started /
finished (with its key metrics) / failed, and run finished, to a generic webhook (a JSON POST with a Slack-compatible `text`)
and to Telegram (a bot token and chat id from the environment).

Messages go out in the background (`collapselab.outlets.outbox`): a failed send is retried, then
reported; none fails or blocks the run. `max_messages` caps what one run sends: once it is
reached, generations' started/finished messages are held back (and counted in the run-finished
message); the run-started message, failures and the run-finished message are always sent.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from collapselab.config.operations import NotifyBlock
from collapselab.errors import ConfigError
from collapselab.lab.events import (
    Event,
    GenerationFailed,
    GenerationFinished,
    GenerationStarted,
    RunFinished,
    RunStarted,
)
from collapselab.outlets.outbox import Outbox

ALWAYS_SENT = ("run_started", "generation_failed", "run_finished")  # one each per run: never held back, never counted
# Shown in a finished-generation message when notify.metrics is not given, those present.
# Every name is a registered metric (a test holds them to the registry).
KEY_METRICS = ("perplexity", "reference_perplexity", "exact_match", "f1", "has_ans_f1", "mmlu_accuracy", "distinct_2")


class Notifier:
    """Listener that sends the run's events as messages (see the module docstring)."""

    def __init__(self, block: NotifyBlock, say: Callable[[str], None]) -> None:
        self.block, self.say = block, say
        self.senders: list[tuple[Outbox, Callable[[str, dict[str, Any]], None]]] = []
        if block.webhook is not None:
            hook = block.webhook.url or os.environ.get("COLLAPSELAB_WEBHOOK_URL")
            if not hook:
                raise ConfigError("notify.webhook.url: not given and $COLLAPSELAB_WEBHOOK_URL is not set")
            self.senders.append((Outbox("webhook", retries=block.retries), lambda text, fields: self._post(hook, {"text": text, "collapselab": fields})))
        if block.telegram is not None:
            t = block.telegram
            token, chat = os.environ.get(t.token_env), os.environ.get(t.chat_id_env)
            if not token or not chat:
                raise ConfigError(f"notify.telegram: ${t.token_env} and ${t.chat_id_env} must both be set")
            send_url = f"{t.api_url.rstrip('/')}/bot{token}/sendMessage"
            self.senders.append((Outbox("telegram", retries=block.retries), lambda text, _: self._telegram(send_url, chat, text)))
        self.sent = 0
        self.held_back = 0
        self.name = ""
        self.started: dict[tuple[str, int, int], float] = {}
        self.closed = False

    def __call__(self, event: Event) -> None:
        if self.closed:
            return
        if isinstance(event, RunStarted):
            self.name = f"{event.experiment}/{event.run_id}"
            how = "resumed" if event.resumed else "started"
            self._send("run_started", f"collapselab {self.name}: run {how}: {event.parameters()}", event)
        elif isinstance(event, GenerationStarted):
            self.started[(event.arm, event.seed, event.generation)] = time.monotonic()
            self._send("generation_started", f"{self._where(event)} started", event)
        elif isinstance(event, GenerationFinished):
            t0 = self.started.get((event.arm, event.seed, event.generation))
            took = f" in {time.monotonic() - t0:.0f} s" if t0 is not None else ""
            shown = self._key_metrics(event.metrics)
            values = ", ".join(f"{k} {v:.4g}" for k, v in shown.items())
            self._send("generation_finished", f"{self._where(event)} finished{took}" + (f": {values}" if values else ""), event, metrics=shown)
        elif isinstance(event, GenerationFailed):
            self._send("generation_failed", f"{self._where(event)} FAILED: {event.error}", event, error=event.error)
            self.closed = True
        elif isinstance(event, RunFinished):
            held = f" ({self.held_back} progress messages held back by notify.max_messages)" if self.held_back else ""
            self._send("run_finished", f"collapselab {self.name}: run finished{held}", event)
            self.closed = True

    def close(self) -> None:
        """Wait (at most `drain_s`) for queued messages and say what was not sent."""
        for outbox, _ in self.senders:
            for m in outbox.close(self.block.drain_s):
                self.say(f"notify: not sent to {outbox.name}: {m.what} ({m.error})")

    def _send(self, kind: str, text: str, event: Event, **extra: Any) -> None:
        if kind not in self.block.events:
            return
        if kind not in ALWAYS_SENT:
            if self.sent >= self.block.max_messages:
                self.held_back += 1
                return
            self.sent += 1
        fields = {"event": kind, "run": self.name, **{k: getattr(event, k) for k in ("arm", "seed", "generation") if hasattr(event, k)}, **extra}
        for outbox, send in self.senders:
            outbox.put(f"{kind} message '{text[:80]}'", lambda send=send: send(text, fields))

    def _where(self, event: Event) -> str:
        return f"collapselab {self.name}: {event.arm} seed {event.seed} generation {event.generation}"

    def _key_metrics(self, metrics: dict[str, float]) -> dict[str, float]:
        names = self.block.metrics or [m for m in KEY_METRICS if m in metrics]
        return {n: metrics[n] for n in names if metrics.get(n) is not None}

    def _post(self, url: str, payload: dict[str, Any]) -> bytes:
        request = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=self.block.timeout_s) as response:  # raises on non-2xx
            return response.read()

    def _telegram(self, url: str, chat_id: str, text: str) -> None:
        reply = json.loads(self._post(url, {"chat_id": chat_id, "text": text, "disable_web_page_preview": True}))
        if not reply.get("ok"):
            raise RuntimeError(f"Telegram answered {reply.get('description', reply)}")
