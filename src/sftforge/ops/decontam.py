"""Benchmark decontamination as a cleaning filter: remove (or flag) records that contain benchmark text.

The matching rules (13-gram and 50-character checks, short items, CJK, boilerplate) are in `sftforge.lib.decontam`;
the benchmark files are read by `sftforge.sources.benchmarks`.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from sftforge.lib.decontam import (
    DEFAULT_CJK_NGRAM,
    DEFAULT_MAX_ITEM_FREQUENCY,
    DEFAULT_MIN_NGRAM,
    DEFAULT_NGRAM,
    DEFAULT_SUBSTRING_CHARS,
    DecontaminationIndex,
    Hit,
)
from sftforge.ops.base import BoundsConfig, Filter, register
from sftforge.sample import Record
from sftforge.sources.benchmarks import BenchmarkSpec, index_benchmarks

Role = Literal["system", "user", "assistant"]


def _all_roles() -> list[Role]:
    return ["system", "user", "assistant"]


class DecontaminateConfig(BoundsConfig):
    name: Literal["decontaminate"] = "decontaminate"
    max: float | None = 0.0  # the score is 1.0 for a contaminated record: keep only 0.0
    benchmarks: list[BenchmarkSpec] = Field(min_length=1)
    ngram: int = Field(DEFAULT_NGRAM, ge=1, description="Word n-gram size.")
    min_ngram: int = Field(
        DEFAULT_MIN_NGRAM, ge=1, description="Items shorter than n match as a whole if they have this many tokens."
    )
    cjk_ngram: int = Field(DEFAULT_CJK_NGRAM, ge=1, description="Character n-gram size for CJK text.")
    substring_chars: int = Field(
        DEFAULT_SUBSTRING_CHARS, ge=0, description="Length of the substring check in characters; 0 turns it off."
    )
    min_overlap: float = Field(
        0.0, ge=0.0, le=1.0, description="Share of an item's n-grams (or characters) that must be found; 0: any."
    )
    max_item_frequency: int = Field(
        DEFAULT_MAX_ITEM_FREQUENCY, ge=1, description="N-grams in more items of one benchmark are boilerplate."
    )
    action: Literal["remove", "flag"] = "remove"
    roles: list[Role] = Field(default_factory=_all_roles, min_length=1)

    @model_validator(mode="after")
    def _check_sizes(self) -> DecontaminateConfig:
        if self.min_ngram > min(self.ngram, self.cjk_ngram):
            raise ValueError(
                f"min_ngram ({self.min_ngram}) must not exceed ngram ({self.ngram}) or cjk_ngram ({self.cjk_ngram})"
            )
        if 0 < self.substring_chars < 8:
            raise ValueError(f"substring_chars must be 0 (off) or at least 8, not {self.substring_chars}")
        names = [b.benchmark_name for b in self.benchmarks]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"benchmark name(s) {', '.join(map(repr, dup))} used twice; give each a distinct `name`")
        return self


@register
class Decontaminate(Filter):
    """1.0 when the record contains text of a benchmark item (13-gram or 50-character match, or a short field with
    one word changed), else 0.0.

    `action: remove` (the default) removes such records with the benchmark and item in the reason;
    `action: flag` keeps them with `features.contaminated = 1.0`. Relative benchmark paths resolve against the
    recipe's folder (`base_dir`). The index is built in `setup()`, so the operator pickles without it. The counts
    in `stats()` are of the records this instance scored.
    """

    name: ClassVar[str] = "decontaminate"
    Config = DecontaminateConfig
    config: DecontaminateConfig

    reuse_stored: ClassVar[bool] = False  # its reasons and per-benchmark counts come from scoring

    def __init__(self, config: DecontaminateConfig, base_dir: Path | None = None) -> None:
        super().__init__(config, base_dir)
        self._index: DecontaminationIndex | None = None
        self._last: tuple[str, list[Hit]] | None = None
        self._checked = 0
        self._contaminated = 0
        self._by_benchmark: Counter[str] = Counter()
        self._items: Counter[tuple[str, str]] = Counter()

    @property
    def feature_name(self) -> str:
        return "contaminated"

    def specs(self) -> list[BenchmarkSpec]:
        """The benchmarks with relative paths taken from the recipe's folder."""
        return [b.model_copy(update={"path": str(self.resolve_path(b.path))}) for b in self.config.benchmarks]

    def setup(self) -> None:
        if self._index is None:
            c = self.config
            empty = DecontaminationIndex(
                ngram=c.ngram,
                min_ngram=c.min_ngram,
                cjk_ngram=c.cjk_ngram,
                substring_chars=c.substring_chars,
                max_item_frequency=c.max_item_frequency,
                min_overlap=c.min_overlap,
            )
            self._index = index_benchmarks(self.specs(), empty)

    @property
    def index(self) -> DecontaminationIndex:
        if self._index is None:
            self.setup()
        if self._index is None:  # setup() builds it or raises
            raise RuntimeError("decontaminate: setup() did not build the index")
        return self._index

    def text(self, record: Record) -> str:
        roles = set(self.config.roles)
        return "\n".join(m["content"] for m in record.messages if m["role"] in roles)

    def hits(self, record: Record) -> list[Hit]:
        """The benchmark items the record contains, best overlap first (the last record's are cached)."""
        text = self.text(record)
        if self._last is not None and self._last[0] == text:
            return self._last[1]
        hits = self.index.check(text)
        self._last = (text, hits)
        return hits

    def score(self, record: Record) -> float:
        hits = self.hits(record)
        self._checked += 1
        if hits:
            self._contaminated += 1
            self._by_benchmark.update({h.benchmark for h in hits})
            self._items.update({(h.benchmark, h.item_id) for h in hits})
        return 1.0 if hits else 0.0

    def keep(self, score: float) -> bool:
        return True if self.config.action == "flag" else super().keep(score)

    def reason(self, record: Record, score: float) -> str:
        hits = self.hits(record)
        if not hits:
            return super().reason(record, score)
        top = hits[0]
        more = len({(h.benchmark, h.item) for h in hits} - {(top.benchmark, top.item)})
        return f"contaminated: {top.describe()}" + (f" and {more} more item{'s' if more > 1 else ''}" if more else "")

    def stats(self) -> dict[str, Any]:
        """Counts for the manifest: records checked and contaminated, per benchmark, and the items hit most."""
        per_bench_items = Counter(b for b, _ in self._items)
        return {
            "action": self.config.action,
            "checked": self._checked,
            "contaminated": self._contaminated,
            "contaminated_by_benchmark": dict(sorted(self._by_benchmark.items())),
            "items_by_benchmark": dict(sorted(per_bench_items.items())),
            "top_items": [{"benchmark": b, "item": i, "records": n} for (b, i), n in self._items.most_common(20)],
            # items no check can reach, per benchmark, as text: a fact of the index, not a count to add up over
            # blocks or workers (an index not built yet knows none)
            "too_short_to_check": {
                name: f"{len(ids)} item{'s' if len(ids) != 1 else ''}, e.g. {', '.join(ids[:10])}"
                for name, ids in (self._index.too_short() if self._index is not None else {}).items()
            },
        }

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_index"] = None  # rebuilt by setup() in the worker
        state["_last"] = None
        return state
