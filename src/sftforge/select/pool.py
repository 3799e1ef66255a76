"""The candidate pool for selection: the held-out splits, the bandit's arms, and the static strategies, on records.

`select/static.py` and `select/bandit.py` work on arrays; this module turns records (their ids, features, lineage
and embedding vectors) into those arrays and back. No I/O: the select and train stages do that.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np

from sftforge.config import BANDIT_STRATEGIES, Arms, Selection
from sftforge.errors import StageError
from sftforge.lib.kmeans import spherical_kmeans
from sftforge.sample import Record
from sftforge.select import static

TRAIN, EVAL, PROBE = "train", "eval", "probe"
BANDITS = BANDIT_STRATEGIES


def _unit_hash(seed: int, record_id: str) -> float:
    digest = hashlib.blake2b(f"{seed}:{record_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def split_records(ids: Sequence[str], eval_fraction: float, probe_size: int, seed: int) -> list[str]:
    """train / eval / probe per record, by a seeded hash of its id (so a record keeps its split when others come
    and go). The probe set (the bandit's reward) is held out from training and from evaluation alike."""
    n = len(ids)
    order = sorted(range(n), key=lambda i: _unit_hash(seed, ids[i]))
    n_eval = int(round(eval_fraction * n))
    if eval_fraction > 0 and n_eval == 0 and n >= 2:
        n_eval = 1
    n_probe = min(probe_size, max(n - n_eval - 1, 0))
    labels = [TRAIN] * n
    for rank, i in enumerate(order):
        if rank < n_eval:
            labels[i] = EVAL
        elif rank < n_eval + n_probe:
            labels[i] = PROBE
    return labels


def _group_labels(keys: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    names = sorted(set(keys))
    index = {k: i for i, k in enumerate(names)}
    return np.array([index[k] for k in keys], dtype=np.int64), names


def arm_labels(
    records: Sequence[Record], arms: Arms, vectors: np.ndarray | None, seed: int
) -> tuple[np.ndarray, list[str]]:
    """(arm index per record, arm names). Arms with no records do not exist: every arm has at least one."""
    if arms.by == "generator":
        return _group_labels([r.lineage.generator if r.lineage else "unknown" for r in records])
    if arms.by == "task":
        return _group_labels([r.task for r in records])
    if arms.by == "source":
        return _group_labels([next((s.doc_id or s.id for s in r.source), "none") for r in records])
    if arms.by == "difficulty":
        values = np.array([r.features.get(arms.feature, np.nan) for r in records], dtype=np.float64)
        if np.isnan(values).all():
            raise StageError(
                f"selection.arms.feature: no record has the feature '{arms.feature}'; add it to the recipe's `features`"
            )
        bins = static.quantile_bins(values, arms.k)
        labels, present = _group_labels([f"{int(b):02d}" for b in bins])
        return labels, [f"{arms.feature} bin {p}" for p in present]
    if vectors is None:
        raise StageError(
            f"selection.arms.by cluster needs the '{arms.vectors}' vectors: add `- name: embedding` to the recipe's "
            "`features`, or choose arms by generator, task, source or difficulty"
        )
    k = min(arms.k, max(2, len(records) // 4))  # an arm of fewer than ~4 records is noise, not a kind of data
    _, labels = spherical_kmeans(vectors, k, seed=seed)
    labels, present = _group_labels([f"{int(x):03d}" for x in labels])
    return labels, [f"cluster {p}" for p in present]


def unscored(records: Sequence[Record], feature: str, max_end_loss: float | None) -> list[str | None]:
    """Per record, why ranking by `feature` leaves it without a score, in words for its rejection reason; None
    where it has one. Unscored: a record without the feature; for IFD, one of 1 or more (the instruction does not
    help predict the answer, Li et al. 2023: what a swapped, off-topic or one-word answer looks like, so the highest
    IFDs are the worst records, not the best); and with `max_end_loss`, one whose answer stops where the reference
    model would not end a turn (its `end_loss` feature, any model's, above it: cut at a token limit), which IFD and
    the other scores, reading only the answer's own tokens, rank like a whole answer."""
    out: list[str | None] = []
    for r in records:
        value = r.features.get(feature)
        why = None
        if value is None or math.isnan(value):
            why = f"no {feature} feature"
        elif feature.startswith("ifd") and value >= 1.0:
            why = f"{feature} {value:.2f} >= 1: the question does not help predict the answer"
        if why is None and max_end_loss is not None:
            ends = [v for k, v in r.features.items() if k.startswith("end_loss") and v > max_end_loss]
            if ends:
                why = (
                    f"end-of-turn loss {max(ends):.1f} > selection.max_end_loss {max_end_loss:g}: the answer looks "
                    "cut off"
                )
        out.append(why)
    return out


def scores(
    records: Sequence[Record], feature: str, higher_is_better: bool, max_end_loss: float | None = None
) -> np.ndarray:
    """The ranking feature per record, oriented so that higher is better; NaN where `unscored` gives a reason."""
    values = np.array([r.features.get(feature, np.nan) for r in records], dtype=np.float64)
    values[[why is not None for why in unscored(records, feature, max_end_loss)]] = np.nan
    return values if higher_is_better else -values


def why_unscored(sel: Selection, records: Sequence[Record]) -> list[str | None]:
    """Per record, why the strategy's ranking had no score for it (`unscored`), for the reason a record left out
    by the budget gives: the first thing a user asks of it (so the stages ask it of those records only). None for
    every record of a strategy that does not rank by a score (uniform, kcenter, all)."""
    if sel.strategy not in ("ifd_topk", "deita", *BANDITS):
        return [None] * len(records)
    return unscored(records, "ifd" if sel.strategy == "ifd_topk" else sel.score, sel.max_end_loss)


def static_choice(
    sel: Selection, records: Sequence[Record], costs: np.ndarray, budget: float, vectors: np.ndarray | None
) -> np.ndarray:
    """Indices (into `records`) chosen by a static strategy within the budget, best first."""
    n = len(records)
    if sel.strategy in ("all", *BANDITS):
        return static.take_within_budget(np.arange(n), costs, budget)
    if sel.strategy == "uniform":
        return static.uniform(n, costs, budget, sel.seed)
    if sel.strategy == "ifd_topk":
        ifd = np.array([r.features.get("ifd", np.nan) for r in records], dtype=np.float64)
        if np.isnan(ifd).all():
            raise StageError("selection.strategy ifd_topk needs the ifd feature: add `- name: ifd` to `features`")
        valid = np.array([why is None for why in unscored(records, "ifd", sel.max_end_loss)])
        return static.top_k(ifd, costs, budget, descending=True, valid=valid)
    if vectors is None:
        raise StageError(
            f"selection.strategy {sel.strategy} needs embedding vectors: add `- name: embedding` to `features`"
        )
    if sel.strategy == "kcenter":
        return static.k_center_greedy(vectors, costs, budget, sel.seed)
    score = scores(records, sel.score, sel.score_higher_is_better, sel.max_end_loss)
    if np.isnan(score).all():
        raise StageError(f"selection.score: no record has the feature '{sel.score}'; add it to `features`")
    return static.deita(score, vectors, costs, budget, threshold=sel.diversity_threshold)
