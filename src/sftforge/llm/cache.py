"""SQLite response cache keyed by (model, sampling parameters, messages): a rerun pays for no request twice.

Each response is committed as soon as it arrives (WAL journal), so even a run killed with `kill -9` keeps every
response it received; resuming replays them for free.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import deque
from pathlib import Path

from sftforge.errors import RunDirError
from sftforge.llm.base import LLM, ChatRequest, Completion

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    finish_reason TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created REAL DEFAULT (julianday('now'))
)
"""


class ResponseCache:
    """A persistent map from request cache keys to completions."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise RunDirError(f"cannot open the LLM cache {self.path}: {exc}") from exc
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> tuple[str, str, int, int] | None:
        row = self.db.execute(
            "SELECT text, finish_reason, prompt_tokens, completion_tokens FROM responses WHERE key = ?", (key,)
        ).fetchone()
        return row

    def put(self, key: str, model: str, c: Completion) -> None:
        try:
            self.db.execute(
                "INSERT OR REPLACE INTO responses (key, model, text, finish_reason, prompt_tokens, completion_tokens)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (key, model, c.text, c.finish_reason, c.prompt_tokens, c.completion_tokens),
            )
        except sqlite3.OperationalError as exc:
            raise RunDirError(f"cannot write the LLM cache {self.path}: {exc}") from exc

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        self.db.close()


class CachedLLM(LLM):
    """Wraps a backend: cache hits return at once; misses go to the backend and are stored when they finish."""

    def __init__(self, inner: LLM, cache: ResponseCache) -> None:
        self.inner = inner
        self.cache = cache
        self.model_id = inner.model_id
        self._ready: deque[Completion] = deque()
        self._keys: dict[str, str] = {}

    @property
    def capacity(self) -> int:
        return self.inner.capacity

    def submit(self, request: ChatRequest) -> None:
        key = request.cache_key(self.model_id)
        hit = self.cache.get(key)
        if hit is not None:
            self.cache.hits += 1
            text, finish, pt, ct = hit
            self._ready.append(Completion(request, text, finish, pt, ct, cached=True))
            return
        self.cache.misses += 1
        self._keys[request.id] = key
        self.inner.submit(request)

    def poll(self) -> list[Completion]:
        out = list(self._ready)
        self._ready.clear()
        if self.inner.pending() and not out:
            for c in self.inner.poll():
                self.cache.put(self._keys.pop(c.request.id), self.model_id, c)
                out.append(c)
        return out

    def pending(self) -> int:
        return len(self._ready) + self.inner.pending()

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def close(self) -> None:
        self.inner.close()
        self.cache.close()
