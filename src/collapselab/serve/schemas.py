"""Request bodies of the chat API and the OpenAI-compatible API, and the error shape.

Every error the server sends, whatever the route, is OpenAI's:
`{"error": {"message", "type", "param", "code"}}`, with `param` naming the field at fault.
Static ranges are checked by pydantic (422); limits that come from the config or the model
(reply length, prompt length) are checked against the request and answer 400.

An OpenAI request parameter is honoured or refused, never silently dropped: the OpenAI
bodies keep the fields they do not know (`extra="allow"`), and `unsupported` names the first
one given a value (tools, response_format, logit_bias, echo...), which the routes answer with
400 and that name as `param`. A field sent as null is a field not given.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_CHOICES = 16  # `n`: choices of one request


def error_body(message: str, type_: str = "invalid_request_error", param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class ApiError(Exception):
    """An error answered in the OpenAI shape with `status`; raised by the route handlers."""

    def __init__(self, status: int, message: str, *, type_: str = "invalid_request_error", param: str | None = None, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)


class _Body(BaseModel):
    # The chat page's own API (/chat): unknown fields are ignored.
    model_config = ConfigDict(extra="ignore")


class _OpenAIBody(BaseModel):
    # Unknown fields are kept, to be refused by name (`unsupported`), never dropped.
    model_config = ConfigDict(extra="allow")


def unsupported(body: BaseModel, prefix: str = "") -> str | None:
    """The dotted name of the first field of `body` (or of a message in it) that this server
    does not implement and that was given a value; None when there is none."""
    for name, value in (body.model_extra or {}).items():
        if value is not None:
            return prefix + name
    for name in type(body).model_fields:
        value = getattr(body, name)
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            if isinstance(item, _OpenAIBody):
                where = f"{prefix}{name}.{i}." if isinstance(value, list) else f"{prefix}{name}."
                found = unsupported(item, where)
                if found is not None:
                    return found
    return None


class Turn(_Body):
    role: Literal["system", "user", "assistant"] = Field(description="Who said it.")
    content: str = Field(description="What was said.")


class ChatRequest(_Body):
    """POST /chat: one message, the earlier turns, the sampling settings."""

    message: str = Field(min_length=1, description="The user's new message.")
    history: list[Turn] = Field(default_factory=list, description="Earlier turns, oldest first.")
    temperature: float | None = Field(None, ge=0, le=2, description="0 = greedy.")
    max_length: int | None = Field(None, ge=1, description="Most reply tokens.")
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=0)
    seed: int | None = None
    model: str | None = Field(None, description="A model id from GET /v1/models (default: the server's).")
    generation: int | None = Field(None, ge=0, description="A generation of the served run's default arm (or a learner step).")


class ChatMessage(_OpenAIBody):
    role: Literal["system", "user", "assistant", "developer"]
    content: str


class StreamOptions(_OpenAIBody):
    include_usage: bool = False


class _OpenAISampling(_OpenAIBody):
    model: str | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=0)
    max_tokens: int | None = Field(None, ge=1)
    n: int = Field(1, ge=1, le=MAX_CHOICES, description="Choices per prompt, each its own sample (a seeded request: choice k decodes with seed + k).")
    presence_penalty: float | None = Field(None, ge=-2, le=2, description="Subtracted from the logit of every token the reply holds.")
    frequency_penalty: float | None = Field(None, ge=-2, le=2, description="Subtracted from a token's logit once per time the reply holds it.")
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None


class ChatCompletionRequest(_OpenAISampling):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool | None = Field(None, description="Return each reply token's log-probability under the model.")
    top_logprobs: int | None = Field(None, ge=0, le=20, description="With logprobs: also the most likely tokens at each position, this many.")


class CompletionRequest(_OpenAISampling):
    prompt: str | list[str]
    logprobs: int | None = Field(None, ge=0, le=5, description="Each token's log-probability and the most likely tokens at each position, this many.")
