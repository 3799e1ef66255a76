"""The LLM protocol: chat requests in, completions out, many in flight at once.

Backends are driven by `submit` and `poll` rather than a blocking batch call so that a caller can keep every
slot of a continuously batching backend busy, and can submit a retry as soon as a bad output comes back, without
waiting for a whole batch. `generate` is the simple blocking form on top.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SamplingParams:
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 256
    seed: int = 0
    stop: tuple[str, ...] = ()
    json_schema: str | None = None  # JSON Schema (as JSON text) the reply must satisfy; see llm/structured.py
    top_logprobs: int = 0  # servers: ask for this many alternatives of each generated token with their logprobs


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One chat completion request. `id` is the caller's handle; it is not part of the cache key."""

    id: str
    messages: tuple[tuple[str, str], ...]  # (role, content) pairs; tuples so requests are hashable
    sampling: SamplingParams = field(default_factory=SamplingParams)

    @classmethod
    def of(cls, id: str, messages: list[dict[str, str]], sampling: SamplingParams) -> ChatRequest:
        return cls(id=id, messages=tuple((m["role"], m["content"]) for m in messages), sampling=sampling)

    def message_dicts(self) -> list[dict[str, str]]:
        return [{"role": r, "content": c} for r, c in self.messages]

    def cache_key(self, model_id: str) -> str:
        s = self.sampling
        blob = json.dumps(
            [model_id, self.messages, [s.temperature, s.top_p, s.max_tokens, s.seed, list(s.stop), s.json_schema]],
            ensure_ascii=False,
        )
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def split_prefill(messages: list[dict[str, str]]) -> tuple[list[dict[str, str]], str]:
    """(messages to render, prefill). A final assistant message is a reply prefill the model should continue."""
    if messages and messages[-1]["role"] == "assistant":
        return messages[:-1], messages[-1]["content"]
    return messages, ""


PRE_QUERY_MARK = "\x00sftforge-pre-query\x00"


def is_pre_query(messages: list[dict[str, str]]) -> bool:
    """Magpie's request: a conversation that ends in an empty user message asks the model to write that user turn
    itself, from the chat template's text up to the user's header (the pre-query template)."""
    return bool(messages) and messages[-1]["role"] == "user" and messages[-1]["content"] == ""


def render_pre_query(render: Callable[[list[dict[str, str]]], str], messages: list[dict[str, str]]) -> str:
    """The pre-query prompt: the conversation rendered by `render` (the template without a generation prompt) with a
    marker as the last user turn, cut at the marker. Works for any template, with whatever system turn it adds."""
    text = render(messages[:-1] + [{"role": "user", "content": PRE_QUERY_MARK}])
    if PRE_QUERY_MARK not in text:
        raise ValueError("the chat template does not render user messages verbatim; it has no pre-query form")
    return text[: text.index(PRE_QUERY_MARK)]


@dataclass(slots=True)
class Completion:
    request: ChatRequest
    text: str
    finish_reason: str  # stop | length
    prompt_tokens: int
    completion_tokens: int
    cached: bool = False  # served from the response cache
    reused_prompt_tokens: int = 0  # prompt tokens whose KV the backend reused instead of decoding them
    # the first generated token's alternatives (token, logprob), where asked for and the server returned them
    top_logprobs: tuple[tuple[str, float], ...] | None = None


class LLM(ABC):
    """A chat model. Subclasses decode; callers submit requests and poll for finished completions."""

    model_id: str

    @property
    @abstractmethod
    def capacity(self) -> int:
        """How many requests the backend wants in flight to stay busy."""

    @abstractmethod
    def submit(self, request: ChatRequest) -> None:
        """Queue a request; it starts as soon as a slot is free."""

    @abstractmethod
    def poll(self) -> list[Completion]:
        """Advance decoding; return the completions that finished (may be empty while work is in flight)."""

    @abstractmethod
    def pending(self) -> int:
        """Requests submitted and not yet returned by poll."""

    def count_tokens(self, text: str) -> int:
        raise NotImplementedError

    def close(self) -> None:  # noqa: B027 (optional: a backend that holds nothing keeps this no-op)
        """Free the model."""

    def generate(self, requests: Iterable[ChatRequest]) -> list[Completion]:
        """Blocking convenience: run all requests, return completions in request order."""
        reqs = list(requests)
        for r in reqs:
            self.submit(r)
        done: dict[str, Completion] = {}
        while self.pending():
            for c in self.poll():
                done[c.request.id] = c
        return [done[r.id] for r in reqs]

    def __enter__(self) -> LLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
