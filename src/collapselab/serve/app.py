"""The chat server: `create_app(cfg)` builds the FastAPI app; `serve(cfg)` runs it on uvicorn.

Routes: the page at `/`, `POST /chat` (the chatbot's own API), OpenAI-compatible
`POST /v1/chat/completions`, `POST /v1/completions` and `GET /v1/models`, `GET /health`
(open) and `GET /metrics` (Prometheus text). Every request becomes one or more `Job`s on the
scheduler; a route waits on its jobs' events, or streams them as server-sent events.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from collapselab.models.prompts import chat_prompt, chat_stops, completion_prompt
from collapselab.serve.config import ServeConfig
from collapselab.serve.guard import Guard, load_api_keys
from collapselab.serve.pool import ModelPool, Served, UnknownModel
from collapselab.serve.replies import (
    chat_logprobs,
    completion_logprobs,
    refuse_unsupported,
    total_usage,
)
from collapselab.serve.scheduler import (
    Delta,
    Done,
    Failed,
    Job,
    QueueFull,
    Sampling,
    Scheduler,
)
from collapselab.serve.schemas import (
    ApiError,
    ChatCompletionRequest,
    ChatRequest,
    CompletionRequest,
    error_body,
)
from collapselab.serve.sse import guarded, merged, sse
from collapselab.serve.stops import held_back
from collapselab.serve.telemetry import Telemetry

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("collapselab.serve")


class Service:
    """What the routes share: config, model pool, scheduler, counters, reload watcher."""

    def __init__(self, cfg: ServeConfig, pool: ModelPool | None = None):
        self.cfg = cfg
        self.pool = pool or ModelPool(cfg.source, cfg.batching.max_loaded_models)
        self.telemetry = Telemetry({
            "collapselab_queue_length": ("Requests waiting to be decoded.", lambda: self.scheduler.queue_length()),
            "collapselab_requests_in_flight": ("Requests waiting or decoding.", lambda: self.scheduler.in_flight()),
            "collapselab_model_reloads_total": ("Learner checkpoints swapped in.", lambda: self.pool.reloads),
        })
        self.scheduler = Scheduler(self.pool, cfg.batching, on_batch=self.telemetry.batch_done)
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        self.scheduler.start()
        if self.pool.kind == "learner":
            self.pool.refresh()
            self._watcher = threading.Thread(target=self._watch, name="collapselab-reload", daemon=True)
            self._watcher.start()
        else:
            self.pool.get(self.pool.default_id)  # load before the first request, fail at start

    def stop(self) -> None:
        self._stop.set()
        self.scheduler.stop()

    def _watch(self) -> None:
        while not self._stop.wait(self.cfg.batching.reload_interval_s):
            self.pool.refresh()

    # ------------------------------------------------------------ one request

    def resolve(self, model: str | None, generation: int | None = None) -> str:
        """The model id a request names (`model`, or a generation of the default arm)."""
        if generation is not None and model is None:
            if self.pool.kind == "run":
                model = f"{self.pool.default_id.rsplit('/gen-', 1)[0]}/gen-{generation}"
            elif self.pool.kind == "learner":
                model = f"step-{generation}"
            else:
                raise ApiError(400, "generation: this server serves one model, not a run", param="generation")
        model = model or self.pool.default_id
        if model not in self.pool.ids():
            raise ApiError(404, f"model {model!r} is not served here; GET /v1/models lists {self.pool.ids()}", param="model", code="model_not_found")
        return model

    async def served(self, model_id: str) -> Served:
        try:
            return await asyncio.to_thread(self.pool.get, model_id)
        except UnknownModel as e:
            raise ApiError(503, f"model {model_id!r} is not ready: {e.args[0]}", type_="server_error", code="model_not_ready", headers={"Retry-After": "5"}) from None

    def sampling(self, temperature: float | None, top_p: float | None, top_k: int | None, max_new: int | None, seed: int | None,
                 max_field: str, *, presence: float | None = None, frequency: float | None = None, logprobs: int | None = None) -> Sampling:
        d = self.cfg.sampling
        max_new = max_new or d.max_new_tokens
        if max_new > d.max_new_tokens_limit:
            raise ApiError(400, f"{max_field}: {max_new} is more than this server's limit of {d.max_new_tokens_limit} tokens", param=max_field)
        return Sampling(
            temperature=d.temperature if temperature is None else temperature,
            top_p=d.top_p if top_p is None else top_p,
            top_k=d.top_k if top_k is None else top_k,
            max_new_tokens=max_new,
            seed=seed,
            presence_penalty=presence or 0.0,
            frequency_penalty=frequency or 0.0,
            logprobs=logprobs,
        )

    def choices(self, sampling: Sampling, n: int, prompts: int, field: str) -> list[Sampling]:
        """The settings of a request's `n` choices per prompt: a seeded request's choice k
        decodes with seed + k, so each is reproducible and no two are the same draw."""
        if n * prompts > self.cfg.batching.max_queue:
            raise ApiError(400, f"{field}: {n} choices x {prompts} prompts is more than this server's queue of "
                           f"{self.cfg.batching.max_queue} requests", param=field)
        if sampling.seed is None:
            return [sampling] * n
        return [dataclasses.replace(sampling, seed=sampling.seed + k) for k in range(n)]

    def check_prompt(self, served: Served, ids: list[int], sampling: Sampling, field: str) -> None:
        limit = self.cfg.security.max_prompt_tokens
        if len(ids) > limit:
            raise ApiError(400, f"{field}: the prompt is {len(ids)} tokens, more than the limit of {limit}", param=field, code="context_length_exceeded")
        if len(ids) + sampling.max_new_tokens > served.max_positions:
            raise ApiError(400, f"{field}: the prompt ({len(ids)} tokens) plus max tokens ({sampling.max_new_tokens}) exceeds the model's {served.max_positions} positions", param=field, code="context_length_exceeded")
        if not ids:
            raise ApiError(400, f"{field}: the prompt is empty", param=field)

    def submit(self, model_id: str, ids: list[int], sampling: Sampling, stops: list[str]) -> asyncio.Queue:
        """Queue one job; its events arrive on the returned asyncio queue."""
        return self.submit_all(model_id, [(ids, sampling)], stops)[0]

    def submit_all(self, model_id: str, work: list[tuple[list[int], Sampling]], stops: list[str]) -> list[asyncio.Queue]:
        """Queue one request's jobs (prompt, setting), all or none; one event queue each."""
        loop = asyncio.get_running_loop()
        queues, jobs = [], []
        for ids, sampling in work:
            events: asyncio.Queue = asyncio.Queue()
            job = Job(model_id, ids, sampling, stops, sink=lambda ev, q=events: loop.call_soon_threadsafe(q.put_nowait, ev))
            events.job = job  # type: ignore[attr-defined]  # so a dropped client can cancel it
            queues.append(events)
            jobs.append(job)
        try:
            self.scheduler.submit(*jobs)
        except QueueFull as e:
            raise ApiError(503, f"the server is at capacity ({self.cfg.batching.max_queue} requests waiting); retry after {e.retry_after} s", type_="server_error", code="server_overloaded", headers={"Retry-After": str(e.retry_after)}) from None
        return queues

    async def result(self, events: asyncio.Queue) -> Done:
        try:
            while True:
                ev = await events.get()
                if isinstance(ev, Done):
                    self.telemetry.add_tokens(ev.prompt_tokens, ev.completion_tokens)
                    return ev
                if isinstance(ev, Failed):
                    raise ApiError(500, f"decoding failed: {ev.error.__class__.__name__}: {ev.error}", type_="server_error")
        except asyncio.CancelledError:
            events.job.cancelled = True  # type: ignore[attr-defined]
            raise

    async def stream(self, events: asyncio.Queue, stops: list[str]) -> AsyncIterator[Delta | Done]:
        """Deltas as they come (text that may start a stop string held back, with the logprobs
        of the tokens it completes when asked), then Done."""
        sent, held = "", []  # held: logprobs of text not sent yet
        try:
            while True:
                ev = await events.get()
                if isinstance(ev, Failed):
                    raise ApiError(500, f"decoding failed: {ev.error}", type_="server_error")
                if isinstance(ev, Delta):
                    held += ev.logprobs or []
                    text = sent + ev.text
                    ready = text[: len(text) - held_back(text, stops)]
                    if len(ready) > len(sent) or (held and not ev.text):
                        yield Delta(ready[len(sent):], held if ev.logprobs is not None else None)
                        sent, held = ready, []
                    continue
                if len(ev.text) > len(sent) or held:
                    yield Delta(ev.text[len(sent):], held if ev.logprobs is not None else None)
                self.telemetry.add_tokens(ev.prompt_tokens, ev.completion_tokens)
                yield ev
                return
        finally:
            events.job.cancelled = True  # type: ignore[attr-defined]  # no-op once it is done


def _info(done: Done) -> dict[str, Any]:
    return {"generation": done.served.generation, "origin": done.served.origin, "batch_size": done.batch_size}


def create_app(cfg: ServeConfig, pool: ModelPool | None = None):
    """The FastAPI app for `cfg` (its lifespan starts the scheduler and loads the model)."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse
    from fastapi.staticfiles import StaticFiles
    from starlette.exceptions import HTTPException

    service = Service(cfg, pool)
    keys = load_api_keys(cfg.security)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await asyncio.to_thread(service.start)
        yield
        await asyncio.to_thread(service.stop)

    app = FastAPI(title="collapselab chat", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, e: ApiError):
        return JSONResponse(e.body(), status_code=e.status, headers=e.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError):
        first = e.errors()[0]
        if first["type"] == "json_invalid":  # not JSON at all: a malformed body, not a bad field
            return JSONResponse(error_body(f"body: not valid JSON ({first.get('ctx', {}).get('error', first['msg'])})", code="invalid_json"), status_code=400)
        loc = [str(p) for p in first["loc"] if p != "body"]
        param = ".".join(loc) or None
        return JSONResponse(error_body(f"{param or 'body'}: {first['msg']}", param=param, code="invalid_value"), status_code=422)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, e: HTTPException):
        return JSONResponse(error_body(str(e.detail), code=str(e.status_code)), status_code=e.status_code)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/")
    async def page():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": service.pool.default_id, "loaded": service.pool.loaded(), "queue": service.scheduler.queue_length(), "auth": bool(keys)}

    @app.get("/metrics")
    async def metrics():
        return PlainTextResponse(service.telemetry.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    async def models():
        data = []
        for model_id in service.pool.ids():
            d = service.pool.describe(model_id)
            data.append({"id": model_id, "object": "model", "created": 0, "owned_by": "collapselab", "generation": d["generation"], "origin": d["origin"], "default": model_id == service.pool.default_id})
        return {"object": "list", "data": data}

    @app.post("/chat")
    async def chat(body: ChatRequest):
        t0 = time.perf_counter()
        model_id = service.resolve(body.model, body.generation)
        sampling = service.sampling(body.temperature, body.top_p, body.top_k, body.max_length, body.seed, "max_length")
        served = await service.served(model_id)
        messages = _with_system(cfg, [t.model_dump() for t in body.history] + [{"role": "user", "content": body.message}])
        ids = chat_prompt(served.tokenizer, messages)
        service.check_prompt(served, ids, sampling, "history" if body.history else "message")
        done = await service.result(service.submit(model_id, ids, sampling, chat_stops(served.tokenizer)))
        return {
            "reply": done.text, "model": model_id, "generation": done.served.generation, "origin": done.served.origin,
            "prompt_tokens": done.prompt_tokens, "completion_tokens": done.completion_tokens,
            "finish_reason": done.finish_reason, "seconds": round(time.perf_counter() - t0, 4),
        }

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest):
        refuse_unsupported(body)
        if body.top_logprobs is not None and not body.logprobs:
            raise ApiError(400, "top_logprobs: needs logprobs: true", param="top_logprobs")
        model_id = service.resolve(body.model)
        max_new = body.max_completion_tokens or body.max_tokens
        field = "max_completion_tokens" if body.max_completion_tokens else "max_tokens"
        logprobs = (body.top_logprobs or 0) if body.logprobs else None
        sampling = service.sampling(body.temperature, body.top_p, body.top_k, max_new, body.seed, field,
                                    presence=body.presence_penalty, frequency=body.frequency_penalty, logprobs=logprobs)
        settings = service.choices(sampling, body.n, 1, "n")
        served = await service.served(model_id)
        messages = _with_system(cfg, [{"role": "system" if m.role == "developer" else m.role, "content": m.content} for m in body.messages])
        ids = chat_prompt(served.tokenizer, messages)
        service.check_prompt(served, ids, sampling, "messages")
        stops = chat_stops(served.tokenizer) + _stops(body.stop)
        queues = service.submit_all(model_id, [(ids, s) for s in settings], stops)
        rid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        if not body.stream:
            results = await asyncio.gather(*(service.result(q) for q in queues))
            choices = [{"index": k, "message": {"role": "assistant", "content": d.text}, "finish_reason": d.finish_reason,
                        "logprobs": chat_logprobs(served.tokenizer, d.logprobs) if logprobs is not None else None}
                       for k, d in enumerate(results)]
            return {
                "id": rid, "object": "chat.completion", "created": created, "model": model_id,
                "choices": choices, "usage": total_usage(results, prompts=1), "collapselab": _info(results[0]),
            }
        usage = body.stream_options is not None and body.stream_options.include_usage

        async def chunks() -> AsyncIterator[str]:
            head = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model_id}
            for k in range(len(queues)):
                yield sse({**head, "choices": [{"index": k, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})
            finished: list[Done] = []
            async for k, ev in merged([guarded(service.stream(q, stops)) for q in queues]):
                if isinstance(ev, dict):
                    yield sse(ev)
                elif isinstance(ev, Delta):
                    lp = {"logprobs": chat_logprobs(served.tokenizer, ev.logprobs)} if ev.logprobs is not None else {}
                    yield sse({**head, "choices": [{"index": k, "delta": {"content": ev.text}, "finish_reason": None, **lp}]})
                else:
                    finished.append(ev)
                    yield sse({**head, "choices": [{"index": k, "delta": {}, "finish_reason": ev.finish_reason}], "collapselab": _info(ev)})
            if usage and len(finished) == len(queues):
                yield sse({**head, "choices": [], "usage": total_usage(finished, prompts=1)})
            yield "data: [DONE]\n\n"

        return StreamingResponse(chunks(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest):
        refuse_unsupported(body)
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        if not prompts:
            raise ApiError(400, "prompt: no prompt given", param="prompt")
        if body.stream and len(prompts) > 1:
            raise ApiError(400, "prompt: streaming takes one prompt", param="prompt")
        model_id = service.resolve(body.model)
        sampling = service.sampling(body.temperature, body.top_p, body.top_k, body.max_tokens, body.seed, "max_tokens",
                                    presence=body.presence_penalty, frequency=body.frequency_penalty, logprobs=body.logprobs)
        settings = service.choices(sampling, body.n, len(prompts), "n")
        served = await service.served(model_id)
        stops = _stops(body.stop)
        all_ids = [completion_prompt(served.tokenizer, p) for p in prompts]
        for ids in all_ids:
            service.check_prompt(served, ids, sampling, "prompt")
        # OpenAI's order: the n choices of prompt 0, then those of prompt 1...
        queues = service.submit_all(model_id, [(ids, s) for ids in all_ids for s in settings], stops)
        rid, created = f"cmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        head = {"id": rid, "object": "text_completion", "created": created, "model": model_id}
        if not body.stream:
            results = await asyncio.gather(*(service.result(q) for q in queues))
            choices = [{"index": i, "text": d.text, "finish_reason": d.finish_reason,
                        "logprobs": completion_logprobs(served.tokenizer, d.logprobs, prompts[i // body.n]) if body.logprobs is not None else None}
                       for i, d in enumerate(results)]
            return {**head, "choices": choices, "usage": total_usage(results, prompts=len(prompts)), "collapselab": _info(results[0])}

        async def chunks() -> AsyncIterator[str]:
            sent = [prompts[0]] * len(queues)  # each choice's prompt + text so far: where its next token starts
            finished: list[Done] = []
            async for k, ev in merged([guarded(service.stream(q, stops)) for q in queues]):
                if isinstance(ev, dict):
                    yield sse(ev)
                elif isinstance(ev, Delta):
                    lp = completion_logprobs(served.tokenizer, ev.logprobs, sent[k]) if ev.logprobs is not None else None
                    sent[k] += ev.text
                    yield sse({**head, "choices": [{"index": k, "text": ev.text, "finish_reason": None, "logprobs": lp}]})
                else:
                    finished.append(ev)
                    last = len(finished) == len(queues)
                    yield sse({**head, "choices": [{"index": k, "text": "", "finish_reason": ev.finish_reason, "logprobs": None}],
                                **({"usage": total_usage(finished, prompts=1)} if last else {}), "collapselab": _info(ev)})
            yield "data: [DONE]\n\n"

        return StreamingResponse(chunks(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    if cfg.security.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=cfg.security.cors_origins, allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(Guard, security=cfg.security, telemetry=service.telemetry, keys=keys)
    return app


def _with_system(cfg: ServeConfig, messages: list[dict[str, str]]) -> list[dict[str, str]]:
    system = cfg.sampling.system_prompt
    if system and not any(m["role"] == "system" for m in messages):
        return [{"role": "system", "content": system}, *messages]
    return messages


def _stops(stop: str | list[str] | None) -> list[str]:
    if stop is None:
        return []
    return [stop] if isinstance(stop, str) else list(stop)




def serve(cfg: ServeConfig) -> None:
    """Run the server until interrupted (SIGINT/SIGTERM finish the batch in progress)."""
    import uvicorn

    logging.basicConfig(level=cfg.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(cfg)
    pool = app.state.service.pool
    if pool.kind != "learner":  # a model that cannot load fails here, as one line, not in uvicorn
        pool.get(pool.default_id)
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level=cfg.log_level, timeout_graceful_shutdown=30)
