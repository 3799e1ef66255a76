"""Which examples each training step sees: a fixed subset in shuffled epochs, or a bandit over arms.

The trainer asks `next_batch()` for indices into its example list, trains on them, and hands back what the step
taught through `feedback(...)`: the batch loss before and after the update, and the probe loss before and after.
A bandit sampler turns that into its reward (Graves et al. 2017: prediction gain or target prediction gain,
rescaled by recent quantiles; Albalak et al. 2023: the smoothed training loss) and updates its policy. Samplers
are deterministic for a seed and their state is plain JSON, so a resumed run draws the same batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from sftforge.select.bandit import BanditPolicy, RewardScaler

Reward = Literal["prediction_gain", "target_prediction_gain", "gradient_alignment", "loss"]


Batches = Literal["arm", "mixed"]


@dataclass(frozen=True, slots=True)
class Draw:
    """One step's examples (indices into the trainer's list) and, for a bandit, the arm each came from."""

    indices: np.ndarray
    arms: np.ndarray | None = None


@dataclass(frozen=True, slots=True)
class StepSignal:
    """Losses around one update: on the step's own batch and on the probe set (NaN when not measured); with
    per-example signals, the same for each example of the batch, in batch order (empty when not measured)."""

    batch_before: float
    batch_after: float
    probe_before: float
    probe_after: float
    alignment: float = float("nan")  # cosine of the batch's and the probe set's gradients before the update
    example_before: tuple[float, ...] = ()
    example_after: tuple[float, ...] = ()
    example_alignment: tuple[float, ...] = ()


class Sampler(Protocol):
    needs_batch_after: bool
    needs_probe: bool
    needs_alignment: bool
    per_example: bool  # the trainer must measure each example's own signal (a mixed-batch bandit)
    probe_every: int  # steps between recomputations of the probe gradient (gradient alignment)
    drop_below: float | None  # examples at or below this raw reward leave the step and are not drawn again

    def next_batch(self, size: int) -> Draw: ...

    def feedback(self, draw: Draw, signal: StepSignal) -> list[tuple[int, float]]: ...

    def probabilities(self) -> list[float] | None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class _EpochQueue:
    """Indices of one group served in epochs: shuffled (epoch e of group g is a permutation seeded by (seed, g, e)),
    or, when `ranked`, in the members' given order every epoch (best first). Members marked `dropped` are passed
    over, unless every member is: a group always serves something."""

    def __init__(self, members: np.ndarray, seed: int, group: int, ranked: bool = False) -> None:
        self.members = np.asarray(members, dtype=np.int64)
        self.seed, self.group = seed, group
        self.ranked = ranked
        self.walked = 0  # positions walked along the epochs so far, served or passed over
        self.counts = np.zeros(len(self.members), dtype=np.int64)  # times each member was served
        self.dropped: set[int] = set()  # positions (into members) not to serve again

    def _order(self, epoch: int) -> np.ndarray:
        size = len(self.members)
        if self.ranked:
            return np.arange(size)
        return np.random.default_rng((self.seed, self.group, epoch)).permutation(size)

    def served(self) -> np.ndarray:
        """Every index served so far, each as often as it was served."""
        return np.repeat(self.members, self.counts)

    def drop(self, index: int) -> None:
        """Do not serve example `index` again (it must be a member)."""
        where = np.flatnonzero(self.members == index)
        self.dropped.update(int(w) for w in where)

    def take(self, n: int) -> np.ndarray:
        out: list[int] = []
        size = len(self.members)
        skip = self.dropped if len(self.dropped) < size else set()
        order, epoch = self._order(self.walked // size), self.walked // size
        while len(out) < n:
            e, pos = divmod(self.walked, size)
            if e != epoch:
                order, epoch = self._order(e), e
            self.walked += 1
            member = int(order[pos])
            if member in skip:
                continue
            self.counts[member] += 1
            out.append(int(self.members[member]))
        return np.asarray(out, dtype=np.int64)

    def state_dict(self) -> dict[str, Any]:
        return {"walked": self.walked, "counts": self.counts.tolist(), "dropped": sorted(self.dropped)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.walked = int(state["walked"])
        self.counts = np.asarray(state["counts"], dtype=np.int64)
        self.dropped = {int(x) for x in state["dropped"]}


class SubsetSampler:
    """Static selection: batches from a fixed subset of the examples, in shuffled epochs."""

    needs_batch_after = False
    needs_probe = False
    needs_alignment = False
    per_example = False
    probe_every = 1
    drop_below: float | None = None

    def __init__(self, indices: np.ndarray, seed: int) -> None:
        if len(indices) == 0:
            raise ValueError("the training subset is empty")
        self.queue = _EpochQueue(indices, seed, 0)

    def next_batch(self, size: int) -> Draw:
        return Draw(self.queue.take(size))

    def feedback(self, draw: Draw, signal: StepSignal) -> list[tuple[int, float]]:
        return []

    def probabilities(self) -> list[float] | None:
        return None

    def served(self) -> np.ndarray:
        """The examples trained on so far, each as often as it was drawn."""
        return self.queue.served()

    def state_dict(self) -> dict[str, Any]:
        return self.queue.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.queue.load_state_dict(state)


class BanditSampler:
    """Each step: draw arms from the policy and examples from those arms; reward the arms with what the step taught.

    `batches`: `arm` draws one arm per step and the whole batch from it, so the step's signal is about that arm
    (Graves et al. 2017); `mixed` draws an arm for every example, and each example's own signal rewards its arm in
    one update of the policy (`update_many`). A mixed batch spans arms (topics) as a random batch does, and gives
    the policy batch-size rewards per step instead of one; it needs a per-example signal, so not
    target_prediction_gain.

    `reward`: prediction_gain (loss before minus after the update, of the batch or the example), target_prediction_gain
    (probe loss before minus after), both rescaled to [-1, 1] by the 20th/80th percentiles of recent rewards
    (Graves et al. 2017); gradient_alignment (the cosine between the gradient of the batch, or of the example, and
    the probe set's, before the update: the first-order estimate of the target prediction gain,
    -lr * g_batch . g_probe, without the noise of the step itself; rescaled the same way); or loss (the loss
    itself, unscaled: Online Data Mixing's reward, for the `odm` policy).
    """

    def __init__(
        self,
        policy: BanditPolicy,
        members: list[np.ndarray],
        seed: int,
        reward: Reward,
        scaler: RewardScaler | None = None,
        batches: Batches = "arm",
        ranked: bool = False,
        probe_every: int = 1,
        drop_below: float | None = None,
    ) -> None:
        """`members`: each arm's example indices; with `ranked` in the order the arm serves them (best first,
        every epoch), else served in shuffled epochs. `probe_every`: steps between recomputations of the probe
        gradient that `gradient_alignment` compares with (1: every step). `drop_below`: with per-example rewards
        (mixed batches), an example whose raw reward (before scaling: for gradient_alignment the cosine between its
        gradient and the probe's) is at or below this is not drawn again. A fixed cut, not a quantile: a quantile
        would drop the bottom fifth of whatever is left, again and again, until little is."""
        if probe_every < 1:
            raise ValueError("probe_every must be at least 1")
        if drop_below is not None and batches != "mixed":
            raise ValueError("drop_below needs each example's own reward: batches mixed")
        if len(members) != policy.n_arms:
            raise ValueError(f"{len(members)} arms of examples for a policy over {policy.n_arms} arms")
        if any(len(m) == 0 for m in members):
            raise ValueError("every arm needs at least one example")
        if batches == "mixed" and reward == "target_prediction_gain":
            raise ValueError("mixed batches need a per-example reward: prediction_gain, gradient_alignment or loss")
        self.policy = policy
        self.queues = [_EpochQueue(m, seed, g, ranked) for g, m in enumerate(members)]
        self.rng = np.random.default_rng((seed, 7))
        self.reward = reward
        self.batches = batches
        self.scaler = scaler if scaler is not None else RewardScaler()
        self.per_example = batches == "mixed"
        self.needs_batch_after = reward == "prediction_gain"
        self.needs_probe = reward == "target_prediction_gain"
        self.needs_alignment = reward == "gradient_alignment"
        self.probe_every = probe_every
        self.drop_below = drop_below

    def next_batch(self, size: int) -> Draw:
        """One optimizer step's examples: all from one arm, or (mixed) each from its own draw of the policy."""
        if self.batches == "arm":
            arm = int(self.policy.sample(self.rng))
            return Draw(self.queues[arm].take(size), np.full(size, arm, dtype=np.int64))
        arms = np.array([self.policy.sample(self.rng) for _ in range(size)], dtype=np.int64)
        indices = np.empty(size, dtype=np.int64)
        for arm in np.unique(arms):  # each arm's queue serves its examples in one take: same epochs as `arm` mode
            slots = np.nonzero(arms == arm)[0]
            indices[slots] = self.queues[int(arm)].take(len(slots))
        return Draw(indices, arms)

    def raw_rewards(self, signal: StepSignal) -> list[float]:
        """The unscaled reward: one for the step (`arm` batches), or one per example (`mixed`)."""
        if self.per_example:
            if self.reward == "prediction_gain":
                return [b - a for b, a in zip(signal.example_before, signal.example_after, strict=True)]
            if self.reward == "gradient_alignment":
                return list(signal.example_alignment)
            return list(signal.example_before)
        if self.reward == "prediction_gain":
            return [signal.batch_before - signal.batch_after]
        if self.reward == "target_prediction_gain":
            return [signal.probe_before - signal.probe_after]
        if self.reward == "gradient_alignment":
            return [signal.alignment]
        return [signal.batch_before]

    def feedback(self, draw: Draw, signal: StepSignal) -> list[tuple[int, float]]:
        """Update the policy; the (arm, scaled reward) pairs it learnt from: one per step (`arm` batches) or per
        example (`mixed`), leaving out rewards that could not be measured (not finite)."""
        if draw.arms is None:
            raise ValueError("a bandit's draw carries its arms; this one has none (was it drawn by another sampler?)")
        arms = draw.arms.tolist() if self.per_example else [int(draw.arms[0])]
        raws = self.raw_rewards(signal)
        if len(raws) != len(arms):
            raise ValueError(f"{len(raws)} rewards measured for {len(arms)} arms drawn")
        indices = draw.indices.tolist() if self.per_example else [-1]
        measured = [(int(a), i, float(r)) for a, i, r in zip(arms, indices, raws) if np.isfinite(r)]
        if self.drop_below is not None:  # examples that pulled away from the probe: the record-level lesson
            for a, i, r in measured:
                if r <= self.drop_below:
                    self.queues[a].drop(i)
        pulls = [(a, r if self.reward == "loss" else self.scaler.scale(r)) for a, _, r in measured]
        if pulls:
            self.policy.update_many([a for a, _ in pulls], [r for _, r in pulls])
        return pulls

    def dropped(self) -> np.ndarray:
        """The examples the sampler stopped drawing because their raw reward was at or below `drop_below`."""
        found = [q.members[sorted(q.dropped)] for q in self.queues if q.dropped]
        return np.sort(np.concatenate(found)) if found else np.empty(0, dtype=np.int64)

    def probabilities(self) -> list[float] | None:
        return [float(p) for p in self.policy.probabilities()]

    def values(self) -> list[float]:
        return [float(v) for v in self.policy.values()]

    def served(self) -> np.ndarray:
        """The examples trained on so far, each as often as it was drawn (arm by arm)."""
        return np.concatenate([q.served() for q in self.queues])

    def state_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": self.rng.bit_generator.state,
            "queues": [q.state_dict() for q in self.queues],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.scaler.load_state_dict(state["scaler"])
        self.rng.bit_generator.state = state["rng"]
        for q, d in zip(self.queues, state["queues"], strict=True):
            q.load_state_dict(d)
