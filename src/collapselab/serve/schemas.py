"""Request bodies of the chat API and the OpenAI-compatible API, and the error shape.

Every error the server sends, whatever the route, is OpenAI's:
`{"error": {"message", "type", "param", "code"}}`, with `param` naming the field at fault.
Static ranges are checked by pydantic (422); limits that come from the config or the model
(reply length, prompt length) are checked against the request and answer 400.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


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
    # Unknown fields are ignored, as OpenAI's server does: clients send fields we need not read.
    model_config = ConfigDict(extra="ignore")


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


class ChatMessage(_Body):
    role: Literal["system", "user", "assistant", "developer"]
    content: str


class StreamOptions(_Body):
    include_usage: bool = False


class _OpenAISampling(_Body):
    model: str | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=0)
    max_tokens: int | None = Field(None, ge=1)
    n: int = Field(1, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None


class ChatCompletionRequest(_OpenAISampling):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)


class CompletionRequest(_OpenAISampling):
    prompt: str | list[str]
