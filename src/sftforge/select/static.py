"""Budgeted subset selection from per-record scores and embeddings.

Every selector returns int64 indices into the pool, best first, whose total cost fits the budget. A budget
is counted in records (``costs`` all ones) or tokens (``costs`` = tokens per record); a record whose cost no
longer fits is skipped and the walk goes on, so cheaper records further down can still use the rest.
Pure numpy, no I/O: the stage code reads the scores and writes the selection.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "allocate_by_arm",
    "deita",
    "k_center_greedy",
    "quantile_bins",
    "members_by_score",
    "score_prior",
    "scored_members",
    "take_within_budget",
    "top_k",
    "uniform",
]


def _tolerance(budget: float) -> float:
    # token costs are floats: 0.1 + 0.2 must still fit a budget of 0.3
    return 1e-9 * max(1.0, abs(budget)) if np.isfinite(budget) else 0.0


def _check_budget(budget: float) -> float:
    budget = float(budget)
    if np.isnan(budget):
        raise ValueError("budget must not be NaN")
    return budget


def _as_costs(costs: np.ndarray, n: int) -> np.ndarray:
    c = np.asarray(costs, dtype=np.float64)
    if c.shape != (n,):
        raise ValueError(f"costs has shape {c.shape}, expected ({n},)")
    if not np.all(np.isfinite(c)) or np.any(c < 0):
        raise ValueError("costs must be finite and non-negative")
    return c


def _as_vector(name: str, x: np.ndarray, n: int | None = None) -> np.ndarray:
    v = np.asarray(x, dtype=np.float64)
    if v.ndim != 1 or (n is not None and v.shape[0] != n):
        raise ValueError(f"{name} must be a vector of length {n}, got shape {v.shape}")
    return v


def _normalised(embeddings: np.ndarray) -> np.ndarray:
    """Unit rows in float32 (half the memory traffic of float64); zero rows stay zero."""
    e = np.asarray(embeddings, dtype=np.float32)
    if e.ndim != 2:
        raise ValueError(f"embeddings must be a matrix, got shape {e.shape}")
    norms = np.linalg.norm(e, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return e / norms


def _score_order(scores: np.ndarray, descending: bool = True) -> np.ndarray:
    """Indices of the non-NaN scores, best first; ties keep pool order."""
    candidates = np.flatnonzero(~np.isnan(scores))
    key = -scores[candidates] if descending else scores[candidates]
    return candidates[np.argsort(key, kind="stable")]


def _nan_last_order(scores: np.ndarray) -> np.ndarray:
    """All indices, best score first, NaN scores last in pool order."""
    return np.concatenate([_score_order(scores), np.flatnonzero(np.isnan(scores))])


def members_by_score(arm_of: np.ndarray, scores: np.ndarray, n_arms: int) -> list[np.ndarray]:
    """Each arm's indices, best score first, NaN scores last (ties and NaNs in pool order)."""
    arms = np.asarray(arm_of)
    ranked = _nan_last_order(np.asarray(scores, dtype=np.float64))
    return [ranked[arms[ranked] == a] for a in range(n_arms)]


def scored_members(arm_of: np.ndarray, scores: np.ndarray, n_arms: int) -> list[np.ndarray]:
    """Each arm's records with a valid (non-NaN) score, best first: what a static filter on the score would keep.
    An arm with no scored record keeps all of its records, in pool order, so that every arm can still be drawn."""
    ranked = members_by_score(arm_of, scores, n_arms)
    valid = ~np.isnan(np.asarray(scores, dtype=np.float64))
    return [m[valid[m]] if valid[m].any() else m for m in ranked]


def distinct_scores(scores: np.ndarray, embeddings: np.ndarray, threshold: float) -> np.ndarray:
    """`scores` with NaN for each record that DEITA's walk (`deita`, no budget) passes over as too similar to a
    better-scored one: what a bandit ranks within its arms when its steps should not go to repeats."""
    s = _as_vector("scores", scores)
    kept = deita(s, embeddings, np.ones(s.shape[0]), float(s.shape[0]), threshold=threshold)
    out = np.full(s.shape[0], np.nan)
    out[kept] = s[kept]
    return out


def score_prior(members: list[np.ndarray], scores: np.ndarray) -> list[float]:
    """Each arm's count of records with a valid (non-NaN) score, 0.5 for an arm with none: a bandit's starting
    policy that samples like the static score filter would, before any reward (an arm whose records the filter
    rejects, such as one of off-topic answers with IFD >= 1, starts nearly unplayed)."""
    valid = ~np.isnan(np.asarray(scores, dtype=np.float64))
    return [max(float(valid[m].sum()), 0.5) for m in members]


def take_within_budget(order: np.ndarray, costs: np.ndarray, budget: float) -> np.ndarray:
    """Walk ``order`` keeping every index whose cost still fits; stop once nothing left in ``order`` can fit."""
    budget = _check_budget(budget)
    order = np.asarray(order, dtype=np.int64).reshape(-1)
    if order.size == 0:
        return order
    if np.unique(order).size != order.size:
        raise ValueError("order lists an index twice")
    c = np.asarray(costs, dtype=np.float64)[order]
    if not np.all(np.isfinite(c)) or np.any(c < 0):
        raise ValueError("costs must be finite and non-negative")
    cheapest_left = np.minimum.accumulate(c[::-1])[::-1].tolist()
    tol = _tolerance(budget)
    remaining = budget
    keep: list[int] = []
    for i, ci in enumerate(c.tolist()):
        if cheapest_left[i] > remaining + tol:
            break
        if ci <= remaining + tol:
            keep.append(i)
            remaining -= ci
    return order[np.asarray(keep, dtype=np.int64)]


def uniform(n: int, costs: np.ndarray, budget: float, seed: int) -> np.ndarray:
    """A seeded random subset: the baseline every other selector has to beat."""
    costs = _as_costs(costs, n)
    order = np.random.default_rng(seed).permutation(n)
    return take_within_budget(order, costs, budget)


def top_k(
    scores: np.ndarray,
    costs: np.ndarray,
    budget: float,
    descending: bool = True,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """The best-scoring records that fit the budget; NaN scores and ``valid == False`` are dropped.

    For IFD (Cherry LLM, Li et al. 2023) pass the IFD scores with ``valid = ifd < 1``: IFD = PPL(answer |
    instruction) / PPL(answer), and IFD >= 1 means the instruction does not help predict the answer, i.e. the
    pair is misaligned and high IFD there is noise, not difficulty. Such records are dropped rather than put
    last: if too few valid records exist the selection comes out short instead of padded with bad pairs.
    """
    s = _as_vector("scores", scores)
    costs = _as_costs(costs, s.shape[0])
    if valid is not None:
        mask = np.asarray(valid, dtype=bool)
        if mask.shape != s.shape:
            raise ValueError(f"valid has shape {mask.shape}, expected {s.shape}")
        s = np.where(mask, s, np.nan)
    return take_within_budget(_score_order(s, descending), costs, budget)


def _max_items(costs_in_order: np.ndarray, budget: float) -> int:
    """An upper bound on how many of these records the budget can hold: the cheapest ones first."""
    if not np.isfinite(budget):
        return costs_in_order.size
    spent = np.cumsum(np.sort(costs_in_order))
    return int(np.searchsorted(spent, budget + _tolerance(budget), side="right"))


def deita(
    scores: np.ndarray,
    embeddings: np.ndarray,
    costs: np.ndarray,
    budget: float,
    threshold: float = 0.9,
    block_size: int = 1024,
) -> np.ndarray:
    """DEITA's score-first, diversity-aware selection (Liu et al. 2023, arXiv 2312.15685).

    Walk the records by score (best first; NaN scores are never taken) and keep one only if its cosine
    similarity to every record kept so far is below ``threshold`` (the paper's tau = 0.9) and its cost fits.
    High scores alone pick near-duplicates of the same good example; the threshold spends the budget on
    distinct ones. Candidates are compared in blocks: one matmul against the kept set (a preallocated matrix),
    then a small in-block matrix for the ones kept within the block. Similarities are float32 (~1e-7).
    """
    budget = _check_budget(budget)
    s = _as_vector("scores", scores)
    n = s.shape[0]
    costs = _as_costs(costs, n)
    emb = np.asarray(embeddings)
    if emb.ndim != 2 or emb.shape[0] != n:
        raise ValueError(f"embeddings must have {n} rows, got shape {emb.shape}")
    order = _score_order(s)
    c = costs[order]
    kept_vectors = np.empty((_max_items(c, budget), emb.shape[1]), dtype=np.float32)
    cheapest_left = np.append(np.minimum.accumulate(c[::-1])[::-1], np.inf)
    tol = _tolerance(budget)
    remaining, n_kept = budget, 0
    chosen: list[int] = []
    for start in range(0, order.size, block_size):
        if cheapest_left[start] > remaining + tol or n_kept == kept_vectors.shape[0]:
            break
        block = _normalised(emb[order[start : start + block_size]])
        if n_kept:
            to_kept = (block @ kept_vectors[:n_kept].T).max(axis=1)
        else:
            to_kept = np.full(block.shape[0], -np.inf, dtype=np.float32)
        within = block @ block.T
        local: list[int] = []
        for j in range(block.shape[0]):
            cost = c[start + j]
            if cost > remaining + tol or to_kept[j] >= threshold:
                continue
            if local and within[j, local].max() >= threshold:
                continue
            local.append(j)
            remaining -= cost
            chosen.append(int(order[start + j]))
            if cheapest_left[start + j + 1] > remaining + tol:
                break
        kept_vectors[n_kept : n_kept + len(local)] = block[local]
        n_kept += len(local)
    return np.asarray(chosen, dtype=np.int64)


def k_center_greedy(
    embeddings: np.ndarray,
    costs: np.ndarray,
    budget: float,
    seed: int,
    first: int | None = None,
) -> np.ndarray:
    """Core-set selection by greedy k-center (Sener & Savarese 2018, arXiv 1708.00489, algorithm 1).

    Start at ``first`` (or a seeded random record that fits), then repeatedly take the record farthest in
    cosine distance from everything taken so far, among those whose cost still fits. This covers the
    embedding space, outliers included, with no scores at all. A min-distance array makes each pick one
    matrix-vector product, O(n d); the whole run is O(picks n d).
    """
    budget = _check_budget(budget)
    e = _normalised(embeddings)
    n = e.shape[0]
    costs = _as_costs(costs, n)
    tol = _tolerance(budget)
    remaining = budget
    available = costs <= remaining + tol
    if first is None:
        candidates = np.flatnonzero(available)
        if candidates.size == 0:
            return np.empty(0, dtype=np.int64)
        first = int(np.random.default_rng(seed).choice(candidates))
    elif not 0 <= first < n or not available[first]:
        raise ValueError(f"first={first} is not a record whose cost fits the budget")
    min_dist = np.full(n, np.inf, dtype=np.float32)
    chosen: list[int] = []
    current = int(first)
    while True:
        chosen.append(current)
        remaining -= costs[current]
        available[current] = False
        available &= costs <= remaining + tol
        np.minimum(min_dist, 1.0 - e @ e[current], out=min_dist)
        gaps = np.where(available, min_dist, -np.inf)
        current = int(np.argmax(gaps))
        if gaps[current] == -np.inf:
            break
    return np.asarray(chosen, dtype=np.int64)


def quantile_bins(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin labels 0..n_bins-1 by quantiles of the finite values; NaN gets its own label, ``n_bins``.

    Why a separate label: a missing feature (a scorer that failed, a field that does not apply) is not the
    same as its lowest value, so folding NaN into bin 0 would let missing data pose as, say, the easiest
    records. Equal values always share a bin, so heavy ties can make bins uneven; distinct values give bins
    whose sizes differ by at most one. +-inf count as finite here (lowest / highest bin).
    """
    if n_bins < 1:
        raise ValueError("n_bins must be at least 1")
    v = _as_vector("values", values)
    labels = np.full(v.shape[0], n_bins, dtype=np.int64)
    present = ~np.isnan(v)
    if not present.any():
        return labels
    x = v[present]
    # rank = how many values are smaller, so ties share the lowest rank and hence a bin
    ranks = np.searchsorted(np.sort(x), x, side="left")
    labels[present] = ranks * n_bins // x.size
    return labels


def allocate_by_arm(
    arm_values: np.ndarray,
    arm_of: np.ndarray,
    record_scores: np.ndarray,
    costs: np.ndarray,
    budget: float,
    temperature: float = 1.0,
) -> np.ndarray:
    """Turn a trained bandit's arm values and per-record scores into one budgeted subset.

    Each arm that has records gets softmax(arm_values / temperature) of the budget (arms without records get
    nothing; softmax over the others spreads their share). Within an arm records go best ``record_scores``
    first, NaN last. Budget an arm cannot use (it ran out of records, or what is left does not fit) then goes
    to the other arms in value order, best arm first, so leftovers follow the bandit's preference. With
    ``Exp3S.values()`` and temperature 1 the split is the bandit's learned mix; lower temperatures sharpen it.
    Returns indices grouped by arm (best arm first), each group best score first.
    """
    budget = _check_budget(budget)
    if not temperature > 0:
        raise ValueError("temperature must be positive")
    values = _as_vector("arm_values", arm_values)
    arms = np.asarray(arm_of)
    if arms.ndim != 1 or not np.issubdtype(arms.dtype, np.integer):
        raise ValueError("arm_of must be a vector of integer arm ids")
    if arms.size and (arms.min() < 0 or arms.max() >= values.size):
        raise ValueError(f"arm_of has ids outside 0..{values.size - 1}")
    scores = _as_vector("record_scores", record_scores, arms.size)
    costs = _as_costs(costs, arms.size)
    present = np.flatnonzero(np.bincount(arms, minlength=values.size) > 0)
    if present.size == 0:
        return np.empty(0, dtype=np.int64)
    if not np.all(np.isfinite(values[present])):
        raise ValueError("arm_values must be finite for arms that have records")
    shares = np.exp((values[present] - values[present].max()) / temperature)
    shares /= shares.sum()
    by_value = np.argsort(-values[present], kind="stable")
    members = members_by_score(arms, scores, values.size)
    taken = np.zeros(arms.size, dtype=bool)
    for a, share in zip(present.tolist(), shares.tolist()):
        taken[take_within_budget(members[a], costs, share * budget)] = True
    leftover = budget - costs[taken].sum()
    for a in present[by_value].tolist():
        rest = members[a][~taken[members[a]]]
        extra = take_within_budget(rest, costs, leftover)
        taken[extra] = True
        leftover -= costs[extra].sum()
    return np.concatenate([members[a][taken[members[a]]] for a in present[by_value].tolist()]).astype(np.int64)
