"""The SQLite response cache: a rerun pays for no request twice."""

from __future__ import annotations

from pathlib import Path

from sftforge.llm.base import ChatRequest, SamplingParams
from sftforge.llm.cache import CachedLLM, ResponseCache


def reqs(n: int) -> list[ChatRequest]:
    return [
        ChatRequest.of(
            f"r{i}", [{"role": "user", "content": f"Name fruit number {i}."}], SamplingParams(max_tokens=8, seed=i)
        )
        for i in range(n)
    ]


class Counting:
    """Counts what reaches the real model behind the cache."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.submitted = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def submit(self, request):
        self.submitted += 1
        self.inner.submit(request)


def test_second_run_is_served_from_the_cache(llm, tmp_path: Path):
    path = tmp_path / "llm.sqlite"
    counting = Counting(llm)
    first = CachedLLM(counting, ResponseCache(path))  # type: ignore[arg-type]
    a = first.generate(reqs(5))
    assert counting.submitted == 5 and first.cache.misses == 5 and not any(c.cached for c in a)
    first.cache.close()

    counting.submitted = 0
    second = CachedLLM(counting, ResponseCache(path))  # reopened: the cache persists on disk
    b = second.generate(reqs(5) + reqs(6)[5:])
    assert counting.submitted == 1  # only the new request reached the model
    assert second.cache.hits == 5
    assert [c.text for c in b[:5]] == [c.text for c in a]
    assert all(c.cached for c in b[:5]) and not b[5].cached
    assert len(second.cache) == 6
    second.cache.close()


def test_key_covers_model_messages_and_sampling():
    r = reqs(1)[0]
    assert r.cache_key("m1") != r.cache_key("m2")
    other_seed = ChatRequest(r.id, r.messages, SamplingParams(max_tokens=8, seed=99))
    assert r.cache_key("m1") != other_seed.cache_key("m1")
    renamed = ChatRequest("another-id", r.messages, r.sampling)
    assert r.cache_key("m1") == renamed.cache_key("m1")  # the caller's handle is not part of the key
