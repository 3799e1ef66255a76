"""Drives an LLM over a generator's work items: keeps the backend's slots full, parses each output as it arrives,
retries a bad output with a new seed up to `max_attempts`, and yields finished items in commit-sized batches with
their token usage. Behind `Session.stream` (one-step generators: passages, corpus walks, KG paraphrases) and
`Session.ask` (the steps of multi-step generators).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from sftforge.generate.base import Answer, RecordStep, Step, WorkItem, lineage_of
from sftforge.generate.parsing import ParseError
from sftforge.llm.base import LLM, ChatRequest, SamplingParams
from sftforge.sample import Lineage, Record, Rejected, reason_kind, record_id


def item_seed(base: int, key: str, attempt: int) -> int:
    """A request's seed: fixed by the recipe seed, the work item and the attempt, independent of scheduling."""
    digest = hashlib.sha256(f"{base}|{key}|{attempt}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


class LLMRunner:
    """Drives an LLM over work items with retries; yields committed-shard-sized batches of finished items."""

    def __init__(
        self,
        llm: LLM,
        generator: Step,
        gen_cfg: Any,
        items: Iterable[WorkItem],
        done: set[str],
        round_: int = 1,
        sampling: Any = None,
    ) -> None:
        self.llm = llm
        self.round = round_
        self.generator = generator
        self.cfg = gen_cfg
        self.todo: Iterator[WorkItem] = (it for it in items if it.key not in done)
        self.in_flight: dict[str, tuple[WorkItem, int]] = {}  # request id -> (item, attempt)
        self.stats: Counter[str] = Counter()  # of the items finished since the last yielded shard
        self._item_stats: dict[str, Counter[str]] = {}  # of items still in flight: committed with the item
        s = sampling or gen_cfg.sampling  # a generator's own sampling, else the recipe's
        self.base_sampling = SamplingParams(
            temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens, seed=s.seed
        )

    def _request(self, item: WorkItem, attempt: int) -> ChatRequest:
        s = self.base_sampling
        cap = self.generator.max_tokens
        sampling = SamplingParams(
            s.temperature,
            s.top_p,
            min(s.max_tokens, cap or s.max_tokens),
            item_seed(s.seed, item.key, attempt),
            self.generator.stop,
        )
        req = ChatRequest.of(f"{item.key}|{attempt}", self.generator.prompt(item), sampling)
        self.in_flight[req.id] = (item, attempt)
        return req

    def _lineage(self, a: Answer) -> Lineage:
        return lineage_of(a, self.generator, self.llm.model_id, self.round)

    def _finish(self, record: Record, lineage: Lineage) -> Record:
        record.lineage = lineage
        record.id = record_id(record.messages, record.source, f"{lineage.generator}|{lineage.seed}")
        return record

    def _shard(self, records: list[Record], rejected: list[Rejected], keys: list[str]) -> tuple:
        stats, self.stats = dict(self.stats), Counter()
        return records, rejected, keys, stats

    def answers(self, want_more: Callable[[], bool]) -> Iterator[Answer]:
        """Finished items as they come (completion order), while `want_more()` lets new items start."""
        exhausted = False
        while True:
            while not exhausted and want_more() and self.llm.pending() < self.llm.capacity + 2:
                item = next(self.todo, None)
                if item is None:
                    exhausted = True
                    break
                self.llm.submit(self._request(item, 0))
            if not self.llm.pending():
                return
            for c in self.llm.poll():
                item, attempt = self.in_flight.pop(c.request.id)
                st = self._item_stats.setdefault(item.key, Counter())
                st["requests"] += 1
                st["cached"] += int(c.cached)
                if not c.cached:  # tokens this run paid for
                    st["prompt_tokens"] += c.prompt_tokens
                    st["completion_tokens"] += c.completion_tokens
                    st["prompt_tokens_reused"] += c.reused_prompt_tokens
                st["item_prompt_tokens"] += c.prompt_tokens  # tokens the item took, cached or not (lineage)
                st["item_completion_tokens"] += c.completion_tokens
                answer = Answer(item, attempt, c)
                try:
                    answer.value = self.generator.parse(item, c.text)
                except ParseError as exc:
                    reason, kind = str(exc), reason_kind(str(exc))  # counted by kind, kept whole with the item
                    if c.finish_reason == "length":
                        reason += " (output cut at max_tokens)"
                        kind += " (output cut at max_tokens)"
                    st[f"fail:{kind}"] += 1
                    if not exc.final and attempt + 1 < max(self.cfg.max_attempts, self.generator.attempts or 0):
                        self.llm.submit(self._request(item, attempt + 1))
                        continue
                    answer.error = f"unparseable after {attempt + 1} attempts: {reason}"
                st = self._item_stats.pop(item.key)
                answer.prompt_tokens = st.pop("item_prompt_tokens")
                answer.completion_tokens = st.pop("item_completion_tokens")
                self.stats.update(st)
                yield answer

    def batches(
        self, want_more: Callable[[], bool], size: int
    ) -> Iterator[tuple[list[Record], list[Rejected], list[str], dict[str, int]]]:
        generator = self.generator
        if not isinstance(generator, RecordStep):
            raise TypeError(f"batches() makes records: {type(generator).__name__} is not a RecordStep")
        records: list[Record] = []
        rejected: list[Rejected] = []
        keys: list[str] = []
        for a in self.answers(want_more):
            if a.ok:
                records.append(self._finish(a.value, self._lineage(a)))
            else:
                failed = self._finish(generator.failed_record(a.item, a.completion.text), self._lineage(a))
                rejected.append(Rejected(failed, "generate", generator.name, a.error or ""))
            keys.append(a.item.key)
            if len(keys) >= size:
                yield self._shard(records, rejected, keys)
                records, rejected, keys = [], [], []
        if keys:
            yield self._shard(records, rejected, keys)


def ask(llm: LLM, step: Step, items: list[WorkItem], gen_cfg: Any, sampling: Any, stats: Counter[str]) -> list[Answer]:
    """Run one step of a multi-step generator over items and wait for all of them: answers in item order, with
    retries as in LLMRunner; token usage is added to `stats`."""
    runner = LLMRunner(llm, step, gen_cfg, items, set(), sampling=sampling)
    by_key = {a.item.key: a for a in runner.answers(lambda: True)}
    stats.update(runner.stats)
    return [by_key[it.key] for it in items]
