"""Prompt formats, in one place: how a record becomes token ids, and generated text an answer.

Two formats, chosen by `prompts.format` (auto: `chat` when the tokenizer has a chat
template, else `plain`):

- plain (base and scratch models):  `Context: <c>` | `\\nQuestion: <q>\\nAnswer:`; the target
  is ` <answer>` then EOS, and an unanswerable question's target is EOS alone.
- chat (instruct models): the tokenizer's own chat template with a system instruction and
  one user turn `Context: <c>` | `\\n\\nQuestion: <q>`, then the assistant's turn; the target
  is the answer then the end-of-turn token, and an unanswerable question is answered with
  `prompts.unanswerable` ("unanswerable"), read back as the SQuAD v2 empty answer.

Conversations (the chat server): instruct models answer through their chat template; base
models, such as a scratch run's generation, get a plain transcript (`User: ...` /
`Assistant: ...`) and their reply is cut where they start the user's next turn
(`chat_stops`).

Every prompt is laid out shared part first (`|` above): the prefix (instruction + context)
is the same for every question about one context, so generation computes its KV cache once.
A context too long for the model is cut from the left; the question and the answer cue are
never cut. Generated answers are cut at the first line break and at EOS.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from collapselab.errors import ConfigError

if TYPE_CHECKING:
    from collapselab.config import PromptsBlock

_MARK_A, _MARK_B = "\x1ePART-A\x1e", "\x1ePART-B\x1e"


@dataclass(frozen=True, slots=True)
class Prompt:
    """A prompt as token ids: the shareable prefix, then the part of one example."""

    prefix: list[int]
    suffix: list[int]

    @property
    def ids(self) -> list[int]:
        return self.prefix + self.suffix


class PromptFormat:
    """One prompt format bound to a tokenizer (see the module docstring)."""

    def __init__(self, tokenizer: Any, block: PromptsBlock):
        self.tokenizer = tokenizer
        self.block = block
        fmt = block.format
        if fmt == "auto":
            fmt = "chat" if getattr(tokenizer, "chat_template", None) else "plain"
        if fmt == "chat" and not getattr(tokenizer, "chat_template", None):
            raise ConfigError("prompts.format: 'chat' needs a tokenizer with a chat template; this model has none (use plain or auto)")
        self.name = fmt
        self._chat: dict[str, tuple[str, str]] = {}

    # ---- what gets recorded in provenance

    def describe(self, kind: str) -> dict[str, str]:
        """The exact format of `kind` prompts (ANSWER "qa" or QUESTION "qg"), for the generator provenance."""
        k = _KINDS[kind]
        if self.name == "plain":
            return {"prompt_format": "plain", "template": k.plain.replace("{a}", "<context>").replace("{b}", f"<{k.given}>")}
        return {"prompt_format": "chat", "instruction": k.instruction(self.block).format(unanswerable=self.block.unanswerable),
                "user": k.chat_user, "unanswerable": self.block.unanswerable}

    # ---- prompts

    def qa(self, context: str, question: str, max_len: int) -> Prompt:
        """Answer `question` about `context` in at most `max_len` prompt tokens."""
        return self._build(ANSWER, context, question, max_len)

    def qg(self, context: str, answer: str, max_len: int) -> Prompt:
        """Write a question about `context` whose answer is `answer`."""
        return self._build(QUESTION, context, answer, max_len)

    def _build(self, kind: str, context: str, other: str, max_len: int) -> Prompt:
        tok = self.tokenizer
        if self.name == "plain":
            head_text, tail_text = "", ""
            ctx_text, rest = _KINDS[kind].plain.split("|")
            ctx_text, rest = ctx_text.format(a=context), rest.format(b=other)
        else:
            head_text, tail_text = self._chat_frame(kind)
            a, b = _KINDS[kind].chat_user.split("|")
            ctx_text, rest = a.format(a=context), b.format(b=other)
        head = tok(head_text, add_special_tokens=False)["input_ids"] if head_text else []
        ctx = tok(ctx_text, add_special_tokens=False)["input_ids"]
        suffix = tok(rest + tail_text, add_special_tokens=False)["input_ids"]
        keep = max(0, max_len - len(suffix) - len(head))
        if keep == 0:
            return Prompt([], (head + suffix)[-max_len:])
        return Prompt(head + ctx[-keep:], suffix)

    def _chat_frame(self, kind: str) -> tuple[str, str]:
        """The chat template's text before and after the user turn's content."""
        if kind not in self._chat:
            instruction = _KINDS[kind].instruction(self.block).format(unanswerable=self.block.unanswerable)
            text = self.tokenizer.apply_chat_template(
                [{"role": "system", "content": instruction}, {"role": "user", "content": _MARK_A + _MARK_B}],
                tokenize=False, add_generation_prompt=True,
            )
            head, _, rest = text.partition(_MARK_A)
            _, _, tail = rest.partition(_MARK_B)
            self._chat[kind] = (head, tail)
        return self._chat[kind]

    # ---- targets and answers

    def target(self, answer: str, max_tokens: int) -> list[int]:
        """Training target of an answer (or a generated question): its ids, then the end token."""
        tok = self.tokenizer
        if self.name == "plain":
            # An unanswerable question's target is nothing: the model learns to emit EOS at once.
            ids = tok(f" {answer}", add_special_tokens=False)["input_ids"] if answer else []
        else:
            ids = tok(answer or self.block.unanswerable, add_special_tokens=False)["input_ids"]
        return ids[:max_tokens] + [tok.eos_token_id]

    def answer(self, ids: list[int]) -> str:
        """Generated ids read as an answer: decoded, cut at the first line break, stripped;
        the unanswerable phrase (chat) is the empty answer."""
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        text = text.strip().split("\n", 1)[0].strip() if text.strip() else ""
        if self.name == "chat" and _words(text) == _words(self.block.unanswerable):
            return ""
        return text


@dataclass(frozen=True, slots=True)
class _Kind:
    """One kind of prompt: its plain template and chat user turn (`{a}` the context, `{b}`
    what is given), what is given, and the config's chat instruction for it."""

    plain: str
    chat_user: str
    given: str  # what `{b}` is, as provenance names it
    instruction: Callable[[PromptsBlock], str]


# The kinds of prompt, by the name provenance records: answer a question, or write the
# question an answer answers (the refinery's question generation).
ANSWER, QUESTION = "qa", "qg"
_KINDS = {
    ANSWER: _Kind("Context: {a}|\nQuestion: {b}\nAnswer:", "Context: {a}|\n\nQuestion: {b}", "question",
                  lambda block: block.qa_instruction),
    QUESTION: _Kind("Context: {a}|\nAnswer: {b}\nQuestion:", "Context: {a}|\n\nAnswer: {b}", "answer",
                    lambda block: block.qg_instruction),
}


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def prompt_format(tokenizer: Any, block: PromptsBlock) -> PromptFormat:
    """The configured prompt format bound to `tokenizer`."""
    return PromptFormat(tokenizer, block)


# ---------------------------------------------------------------- conversations

USER, ASSISTANT = "User", "Assistant"
BASE_STOP = f"\n{USER}:"  # a base model that goes on to write the user's turn has finished


def is_instruct(tokenizer: Any) -> bool:
    """True when the tokenizer carries a chat template."""
    return bool(getattr(tokenizer, "chat_template", None))


def chat_prompt(tokenizer: Any, messages: Sequence[dict[str, str]]) -> list[int]:
    """Prompt ids for a conversation ending in a user turn; the model writes the next turn."""
    if is_instruct(tokenizer):
        ids = tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, tokenize=True, return_dict=False
        )
        return list(ids)
    lines = []
    for m in messages:
        role = {"user": USER, "assistant": ASSISTANT}.get(m["role"])
        if role is None:  # a system message is the transcript's preamble
            lines.append(m["content"])
        else:
            lines.append(f"{role}: {m['content']}")
    text = "\n".join(lines) + f"\n{ASSISTANT}:"
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def completion_prompt(tokenizer: Any, prompt: str) -> list[int]:
    """Prompt ids for a plain text continuation."""
    return tokenizer(prompt, add_special_tokens=False)["input_ids"]


def chat_stops(tokenizer: Any) -> list[str]:
    """Stop strings a chat reply is cut at (the template's EOS already stops decoding)."""
    return [] if is_instruct(tokenizer) else [BASE_STOP]
