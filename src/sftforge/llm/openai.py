"""OpenAI-compatible backend: any `/v1/chat/completions` server (vLLM, SGLang, TGI, llama.cpp server, Ollama,
OpenAI).

Requests run on an asyncio loop in a background thread with at most `concurrency` in flight, so the stage's
`submit`/`poll` loop keeps a server busy the same way it keeps llama.cpp's slots busy. Transient failures (429,
5xx, connection errors, timeouts, truncated or malformed bodies) are retried with exponential backoff and full
jitter, honouring `Retry-After`; a request that still fails, or a permanent error (401, 404, 400), raises
`ModelError` out of `poll`. Nothing is lost by that: finished work is committed, responses are cached, and a rerun
resumes. The API key is read from the environment variable the recipe names and is never written anywhere.

Several servers (a list of base URLs serving the same model) are balanced: each request goes to the server with
the fewest requests in flight, up to `concurrency` per server, and a request that failed on one server is retried
on another.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import queue
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from sftforge.errors import ModelError
from sftforge.llm.base import LLM, ChatRequest, Completion, is_pre_query, split_prefill

log = logging.getLogger(__name__)

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


def first_token_alternatives(choice: dict[str, Any]) -> tuple[tuple[str, float], ...] | None:
    """The first generated token's alternatives from a chat completion choice (OpenAI's `logprobs.content[0]
    .top_logprobs`), or None where the server sent none: not every server implements logprobs."""
    try:
        first = choice["logprobs"]["content"][0]
        return tuple((str(t["token"]), float(t["logprob"])) for t in first["top_logprobs"]) or None
    except (KeyError, IndexError, TypeError, ValueError):
        return None


class TransientError(Exception):
    """A failure worth retrying; `retry_after` is the server's requested wait, if it gave one."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (now if now is not None else time.time()))


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random, retry_after: float | None) -> float:
    """Full-jitter exponential backoff; a server's Retry-After is a floor."""
    delay = rng.uniform(0, min(cap, base * (2**attempt)))
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap * 3))
    return delay


@dataclass(frozen=True)
class OpenAISettings:
    base_url: str | tuple[str, ...]  # one server, or several serving the same model
    model: str
    api_key_env: str | None = None
    concurrency: int = 8
    timeout: float = 120.0
    max_retries: int = 6
    backoff_base: float = 0.5
    backoff_cap: float = 20.0

    @property
    def urls(self) -> tuple[str, ...]:
        return (self.base_url,) if isinstance(self.base_url, str) else tuple(self.base_url)


@dataclass(eq=False)
class _Server:
    """One server's client, its in-flight limit and how busy it is."""

    url: str
    client: httpx.AsyncClient
    sem: asyncio.Semaphore
    load: int = 0  # requests assigned to it and not finished
    sent: int = field(default=0)


class OpenAICompatibleLLM(LLM):
    """Chat completions over HTTP with bounded concurrency and retries."""

    def __init__(self, settings: OpenAISettings) -> None:
        self.settings = settings
        if not settings.urls:
            raise ModelError("generation.model.base_url: give at least one server URL")
        self.model_id = f"openai:{settings.model}@{'+'.join(u.rstrip('/') for u in settings.urls)}"
        headers = {"Content-Type": "application/json"}
        if settings.api_key_env:
            key = os.environ.get(settings.api_key_env)
            if not key:
                raise ModelError(
                    f"generation.model.api_key_env names {settings.api_key_env}, which is not set in the environment"
                )
            headers["Authorization"] = f"Bearer {key}"
        self._headers = headers
        self._done: queue.Queue[Completion | BaseException] = queue.Queue()
        self._pending = 0
        self._rng = random.Random()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sftforge-openai", daemon=True)
        self._thread.start()
        self._servers: list[_Server] = [self._call(self._make_server(url)) for url in settings.urls]
        self.retries = 0
        # How JSON replies are asked for: OpenAI's json_schema, else llama.cpp's json_object with a schema, else
        # not at all (replies are then only validated client-side). Moves down when a server rejects a form.
        self.response_format: str | None = "json_schema"

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    async def _make_server(self, url: str) -> _Server:
        limits = httpx.Limits(
            max_connections=self.settings.concurrency, max_keepalive_connections=self.settings.concurrency
        )
        client = httpx.AsyncClient(
            base_url=url.rstrip("/") + "/",
            headers=self._headers,
            timeout=httpx.Timeout(self.settings.timeout),
            limits=limits,
        )
        return _Server(url, client, asyncio.Semaphore(self.settings.concurrency))

    def _pick(self, avoid: _Server | None) -> _Server:
        """The least busy server, not the one that just failed when there is another."""
        candidates = [s for s in self._servers if s is not avoid] or self._servers
        return min(candidates, key=lambda s: (s.load, s.sent))

    @property
    def requests_by_server(self) -> dict[str, int]:
        """Requests sent to each server, retries included (for the manifest and tests)."""
        return {s.url: s.sent for s in self._servers}

    @property
    def capacity(self) -> int:
        return self.settings.concurrency * len(self._servers)

    def pending(self) -> int:
        return self._pending

    def submit(self, request: ChatRequest) -> None:
        if is_pre_query(request.message_dicts()):
            raise ModelError(
                "a pre-query request (the magpie generator) needs the model's chat template, which a chat server "
                "does not expose: use the llamacpp or transformers backend for magpie"
            )
        self._pending += 1
        asyncio.run_coroutine_threadsafe(self._run(request), self._loop)

    def poll(self) -> list[Completion]:
        if not self._pending:
            return []
        items = [self._done.get()]  # wait for at least one
        while True:
            try:
                items.append(self._done.get_nowait())
            except queue.Empty:
                break
        out: list[Completion] = []
        for item in items:
            self._pending -= 1
            if isinstance(item, BaseException):
                raise item
            out.append(item)
        return out

    # -- one request ---------------------------------------------------------------------------------------------

    def _body(self, request: ChatRequest, response_format: str | None) -> dict[str, Any]:
        # Chat servers do not continue an assistant message in general: a reply prefill is dropped here and the
        # reply is reconciled with it in _text().
        messages, _ = split_prefill(request.message_dicts())
        s = request.sampling
        body: dict[str, Any] = {
            "model": self.settings.model,
            "messages": messages,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "max_tokens": s.max_tokens,
            "seed": s.seed,
        }
        if s.stop:
            body["stop"] = list(s.stop)[:4]
        if s.top_logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = s.top_logprobs
        if s.json_schema and response_format == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": json.loads(s.json_schema), "strict": True},
            }
        elif s.json_schema and response_format == "json_object":
            body["response_format"] = {"type": "json_object", "schema": json.loads(s.json_schema)}
        return body

    @property
    def response_format_supported(self) -> bool:
        return self.response_format is not None

    @staticmethod
    def _text(request: ChatRequest, content: str) -> str:
        """The reply as a continuation of the prefill, whether or not the model repeated the prefill itself."""
        _, prefill = split_prefill(request.message_dicts())
        prefill = prefill.strip()
        if not prefill:
            return content
        stripped = content.lstrip()
        if stripped.startswith(prefill):
            return stripped[len(prefill) :]
        return " " + stripped if not content.startswith((" ", "\n")) else content

    async def _once(self, request: ChatRequest, server: _Server) -> Completion:
        sent = self.response_format if request.sampling.json_schema else None  # the form this body asks for
        server.sent += 1
        try:
            resp = await server.client.post("chat/completions", json=self._body(request, sent))
        except httpx.TimeoutException as exc:
            raise TransientError(f"timed out after {self.settings.timeout:g}s ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:  # connection refused/reset, truncated body, protocol errors
            raise TransientError(f"connection error: {type(exc).__name__}: {exc}") from exc
        if (
            resp.status_code in (400, 422, 500)
            and request.sampling.json_schema
            and sent is not None
            and ("response_format" in resp.text or "json_schema" in resp.text)
        ):
            if self.response_format == sent:  # concurrent rejections step down once
                self.response_format = "json_object" if sent == "json_schema" else None
                log.warning(
                    "%s rejected response_format %s; trying %s",
                    server.url,
                    sent,
                    self.response_format or "client-side validation only",
                )
            raise TransientError(f"response_format {sent} not supported", retry_after=0.0)
        if resp.status_code in RETRYABLE_STATUS:
            raise TransientError(f"HTTP {resp.status_code}", parse_retry_after(resp.headers.get("retry-after")))
        if resp.status_code >= 400:
            detail = resp.text[:300]
            raise ModelError(
                f"{server.url} answered HTTP {resp.status_code} for model '{self.settings.model}': {detail}"
                + (" (check the API key variable)" if resp.status_code in (401, 403) else "")
            )
        try:
            data = resp.json()
            choice = data["choices"][0]
            content = choice["message"]["content"] or ""
            usage = data.get("usage") or {}
        except (json.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
            raise TransientError(f"malformed response body ({type(exc).__name__}): {resp.text[:80]!r}") from exc
        finish = "length" if choice.get("finish_reason") == "length" else "stop"
        return Completion(
            request,
            self._text(request, content),
            finish,
            int(usage.get("prompt_tokens") or 0),
            int(usage.get("completion_tokens") or 0),
            top_logprobs=first_token_alternatives(choice) if request.sampling.top_logprobs else None,
        )

    async def _run(self, request: ChatRequest) -> None:
        attempt = 0
        failed: _Server | None = None
        while True:
            server = self._pick(avoid=failed)
            server.load += 1
            try:
                async with server.sem:
                    self._done.put(await self._once(request, server))
                return
            except TransientError as exc:
                if attempt >= self.settings.max_retries:
                    where = (
                        server.url if len(self._servers) == 1 else f"{len(self._servers)} servers (last {server.url})"
                    )
                    self._done.put(
                        ModelError(
                            f"{where}: request failed {attempt + 1} times, last: {exc}; "
                            "completed work is saved, rerun to resume"
                        )
                    )
                    return
                # with other servers to try, retry at once elsewhere; a lone server gets the backoff
                delay = backoff_delay(
                    attempt, self.settings.backoff_base, self.settings.backoff_cap, self._rng, exc.retry_after
                )
                if len(self._servers) > 1 and exc.retry_after is None:
                    delay = min(delay, self.settings.backoff_base)
                log.debug("retrying %s in %.2fs after %s: %s", request.id, delay, server.url, exc)
                self.retries += 1
                attempt += 1
                failed = server
            except Exception as exc:  # permanent errors and bugs surface in poll()
                self._done.put(exc)
                return
            finally:
                server.load -= 1
            await asyncio.sleep(delay)

    async def _shutdown(self) -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for server in self._servers:
            await server.client.aclose()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._call(self._shutdown())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()
