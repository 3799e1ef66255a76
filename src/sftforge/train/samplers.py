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

    def next_batch(self, size: int) -> Draw: ...

    def feedback(self, draw: Draw, signal: StepSignal) -> list[tuple[int, float]]: ...

    def probabilities(self) -> list[float] | None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class _EpochQueue:
    """Indices of one group served in epochs: shuffled (epoch e of group g is a permutation seeded by (seed, g, e)),
    or, when `ranked`, in the members' given order every epoch (best first)."""

    def __init__(self, members: np.ndarray, seed: int, group: int, ranked: bool = False) -> None:
        self.members = np.asarray(members, dtype=np.int64)
        self.seed, self.group = seed, group
        self.ranked = ranked
        self.drawn = 0  # examples served so far

    def served(self) -> np.ndarray:
        """Every index served so far, in order (replayed: the epochs are deterministic)."""
        return _EpochQueue(self.members, self.seed, self.group, self.ranked).take(self.drawn)

    def take(self, n: int) -> np.ndarray:
        out: list[int] = []
        size = len(self.members)
        while len(out) < n:
            epoch, pos = divmod(self.drawn, size)
            order = (
                np.arange(size)
                if self.ranked
                else np.random.default_rng((self.seed, self.group, epoch)).permutation(size)
            )
            chunk = order[pos : pos + n - len(out)]
            out.extend(self.members[chunk].tolist())
            self.drawn += len(chunk)
        return np.asarray(out, dtype=np.int64)


class SubsetSampler:
    """Static selection: batches from a fixed subset of the examples, in shuffled epochs."""

    needs_batch_after = False
    needs_probe = False
    needs_alignment = False
    per_example = False

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
        return {"drawn": self.queue.drawn}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.queue.drawn = int(state["drawn"])


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
    ) -> None:
        """`members`: each arm's example indices; with `ranked` in the order the arm serves them (best first,
        every epoch), else served in shuffled epochs."""
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
        pulls = [
            (int(a), float(r) if self.reward == "loss" else self.scaler.scale(r))
            for a, r in zip(arms, raws)
            if np.isfinite(r)
        ]
        if pulls:
            self.policy.update_many([a for a, _ in pulls], [r for _, r in pulls])
        return pulls

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
            "drawn": [q.drawn for q in self.queues],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.scaler.load_state_dict(state["scaler"])
        self.rng.bit_generator.state = state["rng"]
        for q, d in zip(self.queues, state["drawn"], strict=True):
            q.drawn = int(d)
