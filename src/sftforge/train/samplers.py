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


@dataclass(frozen=True, slots=True)
class StepSignal:
    """Losses around one update: on the step's own batch and on the probe set (NaN when not measured)."""

    batch_before: float
    batch_after: float
    probe_before: float
    probe_after: float
    alignment: float = float("nan")  # cosine of the batch's and the probe set's gradients before the update


class Sampler(Protocol):
    needs_batch_after: bool
    needs_probe: bool
    needs_alignment: bool

    def next_batch(self, size: int) -> tuple[int | None, np.ndarray]: ...

    def feedback(self, arm: int | None, signal: StepSignal) -> float | None: ...

    def probabilities(self) -> list[float] | None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class _EpochQueue:
    """Indices of one group served in shuffled epochs: epoch e of group g is a permutation seeded by (seed, g, e)."""

    def __init__(self, members: np.ndarray, seed: int, group: int) -> None:
        self.members = np.asarray(members, dtype=np.int64)
        self.seed, self.group = seed, group
        self.drawn = 0  # examples served so far

    def take(self, n: int) -> np.ndarray:
        out: list[int] = []
        size = len(self.members)
        while len(out) < n:
            epoch, pos = divmod(self.drawn, size)
            order = np.random.default_rng((self.seed, self.group, epoch)).permutation(size)
            chunk = order[pos : pos + n - len(out)]
            out.extend(self.members[chunk].tolist())
            self.drawn += len(chunk)
        return np.asarray(out, dtype=np.int64)


class SubsetSampler:
    """Static selection: batches from a fixed subset of the examples, in shuffled epochs."""

    needs_batch_after = False
    needs_probe = False
    needs_alignment = False

    def __init__(self, indices: np.ndarray, seed: int) -> None:
        if len(indices) == 0:
            raise ValueError("the training subset is empty")
        self.queue = _EpochQueue(indices, seed, 0)

    def next_batch(self, size: int) -> tuple[int | None, np.ndarray]:
        return None, self.queue.take(size)

    def feedback(self, arm: int | None, signal: StepSignal) -> float | None:
        return None

    def probabilities(self) -> list[float] | None:
        return None

    def state_dict(self) -> dict[str, Any]:
        return {"drawn": self.queue.drawn}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.queue.drawn = int(state["drawn"])


class BanditSampler:
    """Each step: draw an arm from the policy, a batch from that arm; reward the arm with what the step taught.

    `reward`: prediction_gain (batch loss before minus after the update), target_prediction_gain (probe loss before
    minus after), both rescaled to [-1, 1] by the 20th/80th percentiles of recent rewards (Graves et al. 2017);
    gradient_alignment (the cosine between the batch's gradient and the probe set's, before the update: the
    first-order estimate of the target prediction gain, -lr * g_batch . g_probe, without the noise of the step
    itself; rescaled the same way); or loss (the batch loss itself, unscaled: Online Data Mixing's reward, for
    the `odm` policy).
    """

    def __init__(
        self, policy: BanditPolicy, members: list[np.ndarray], seed: int, reward: Reward,
        scaler: RewardScaler | None = None,
    ) -> None:
        if len(members) != policy.n_arms:
            raise ValueError(f"{len(members)} arms of examples for a policy over {policy.n_arms} arms")
        if any(len(m) == 0 for m in members):
            raise ValueError("every arm needs at least one example")
        self.policy = policy
        self.queues = [_EpochQueue(m, seed, g) for g, m in enumerate(members)]
        self.rng = np.random.default_rng((seed, 7))
        self.reward = reward
        self.scaler = scaler if scaler is not None else RewardScaler()
        self.needs_batch_after = reward == "prediction_gain"
        self.needs_probe = reward == "target_prediction_gain"
        self.needs_alignment = reward == "gradient_alignment"

    def next_batch(self, size: int) -> tuple[int | None, np.ndarray]:
        """One optimizer step's examples, all from one arm (the arm is what the step's reward is about)."""
        arm = int(self.policy.sample(self.rng))
        return arm, self.queues[arm].take(size)

    def raw_reward(self, signal: StepSignal) -> float:
        if self.reward == "prediction_gain":
            return signal.batch_before - signal.batch_after
        if self.reward == "target_prediction_gain":
            return signal.probe_before - signal.probe_after
        if self.reward == "gradient_alignment":
            return signal.alignment
        return signal.batch_before

    def feedback(self, arm: int | None, signal: StepSignal) -> float | None:
        assert arm is not None
        raw = self.raw_reward(signal)
        if not np.isfinite(raw):
            return None
        reward = raw if self.reward == "loss" else self.scaler.scale(raw)
        self.policy.update(arm, float(reward))
        return float(reward)

    def probabilities(self) -> list[float] | None:
        return [float(p) for p in self.policy.probabilities()]

    def values(self) -> list[float]:
        return [float(v) for v in self.policy.values()]

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
