"""Non-stationary multi-armed bandits that decide which data arm (generator, topic, source) to train on next.

An arm is a group of records. The training loop asks the policy for an arm, trains on a batch from it, and
reports a reward; what the policy learns (``values()``) later decides how the export budget is split across
arms (see ``select.static.allocate_by_arm``). Everything here is pure numpy: no torch, no I/O, no logging, and
every policy's state is a JSON-serialisable dict so a crashed run resumes with the identical policy.

Two policies:
- ``Exp3S``: Exp3.S as used by Graves et al. 2017 (arXiv 1704.03003), fed learning-progress rewards rescaled to
  [-1, 1] by ``RewardScaler`` (the paper's reward scaling).
- ``OnlineDataMixing``: ODM, Albalak et al. 2023 (arXiv 2312.02406, algorithm 1), fed the raw training loss.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "BanditPolicy",
    "Exp3S",
    "OnlineDataMixing",
    "RewardScaler",
    "make_policy",
    "odm_exploration_rate",
]


def _logsumexp(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """log(sum(exp(x))) without overflow; rows that are all -inf give -inf."""
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.squeeze(m, axis=axis) + np.log(np.sum(np.exp(x - m), axis=axis))


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - np.max(x))
    return e / e.sum()


def _check_arm(arm: int, n_arms: int) -> int:
    arm = int(arm)
    if not 0 <= arm < n_arms:
        raise ValueError(f"arm {arm} is out of range for {n_arms} arms")
    return arm


def _check_pairs(
    arms: Sequence[int], rewards: Sequence[float], n_arms: int, name: str = "reward"
) -> list[tuple[int, float]]:
    if len(arms) != len(rewards) or not len(arms):
        raise ValueError(f"need one {name} per arm drawn, got {len(arms)} arms and {len(rewards)} {name}s")
    return [(_check_arm(a, n_arms), _check_finite(name, r)) for a, r in zip(arms, rewards)]


def _check_finite(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        # a NaN reward would poison the weights for the rest of the run; fail where it enters
        raise ValueError(f"{name} must be finite, got {value}")
    return value


class RewardScaler:
    """Maps raw rewards (e.g. loss decrease) to [-1, 1] by where they fall among recent rewards.

    Why: learning-progress signals change scale by orders of magnitude during training, and Exp3.S needs
    rewards on a fixed scale. Graves et al. 2017 map the ``low_q`` quantile of past rewards to
    -1 and the ``high_q`` quantile to +1, linearly in between, clipped outside. The paper keeps a reservoir
    sample of the whole history; we keep the last ``window`` rewards instead, which follows the
    non-stationary reward distribution of a short fine-tuning run more closely.

    ``detrend``: in a short run the learning progress shrinks step after step (the loss flattens), so each new
    gain is smaller than those before it and would rank at the bottom of the history whatever arm earned it. With
    ``detrend = k > 0`` what is ranked is the gain minus the mean of the previous ``k`` raw gains, over their mean
    magnitude: how much better this step did than the recent trend, relative to it, a quantity whose scale stays
    put while the raw gains shrink. The first ``k`` rewards, which have no trend to be compared with (and are the
    largest of a run: the first steps teach the output format whatever the data), are neutral (0).
    """

    def __init__(self, window: int = 1000, low_q: float = 0.2, high_q: float = 0.8, detrend: int = 0) -> None:
        if window < 2:
            raise ValueError("window must be at least 2")
        if detrend < 0:
            raise ValueError("detrend must be >= 0")
        if not 0.0 <= low_q < high_q <= 1.0:
            raise ValueError("need 0 <= low_q < high_q <= 1")
        self.window = int(window)
        self.low_q = float(low_q)
        self.high_q = float(high_q)
        self._history: deque[float] = deque(maxlen=self.window)
        self.detrend = int(detrend)
        self._raw: deque[float] = deque(maxlen=max(self.detrend, 1))

    def __len__(self) -> int:
        return len(self._history)

    def scale(self, raw: float) -> float:
        """Add ``raw`` to the history, then return it rescaled; 0.0 until the history has 2 distinct values.

        A non-finite ``raw`` is neither stored nor scaled: it returns 0.0, a neutral reward.
        """
        raw = float(raw)
        if not math.isfinite(raw):
            return 0.0
        if self.detrend:
            prev = np.fromiter(self._raw, dtype=np.float64, count=len(self._raw))
            self._raw.append(raw)
            if len(prev) < self.detrend:  # no trend to compare with yet: a neutral reward, the policy stays put
                return 0.0
            size = float(np.mean(np.abs(prev)))
            raw = (raw - float(prev.mean())) / size if size > 0 else 0.0
        self._history.append(raw)
        hist = np.fromiter(self._history, dtype=np.float64, count=len(self._history))
        if np.ptp(hist) == 0.0:
            return 0.0
        q_lo, q_hi = np.quantile(hist, [self.low_q, self.high_q])
        if raw < q_lo:
            return -1.0
        if raw > q_hi:
            return 1.0
        if q_hi == q_lo:  # raw sits exactly on a degenerate quantile: neither good nor bad
            return 0.0
        return float(np.clip(2.0 * (raw - q_lo) / (q_hi - q_lo) - 1.0, -1.0, 1.0))

    def state_dict(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "low_q": self.low_q,
            "high_q": self.high_q,
            "history": list(self._history),
            "detrend": self.detrend,
            "raw": list(self._raw),
        }

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.window = int(d["window"])
        self.low_q = float(d["low_q"])
        self.high_q = float(d["high_q"])
        self._history = deque((float(x) for x in d["history"]), maxlen=self.window)
        self.detrend = int(d.get("detrend", 0))
        self._raw = deque((float(x) for x in d.get("raw", [])), maxlen=max(self.detrend, 1))


@runtime_checkable
class BanditPolicy(Protocol):
    """What the training loop needs from a data-selection bandit.

    ``sample`` then ``update`` once for the sampled arm: ``update`` importance-weights the reward with the
    current policy, so it must come before the next ``update`` changes that policy.
    """

    n_arms: int

    def probabilities(self) -> np.ndarray:
        """The current sampling distribution over arms (sums to 1)."""
        ...

    def sample(self, rng: np.random.Generator) -> int:
        """Draw an arm from ``probabilities()``."""
        ...

    def update(self, arm: int, reward: float) -> None:
        """Learn from the reward of the arm just sampled."""
        ...

    def update_many(self, arms: Sequence[int], rewards: Sequence[float]) -> None:
        """Learn, in one round, from several arms drawn together from the current policy."""
        ...

    def values(self) -> np.ndarray:
        """Per-arm value estimates on a log scale: higher is more useful; softmax gives the learned mix."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume, as plain lists, floats, ints and strings."""
        ...

    def load_state_dict(self, d: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""
        ...


def _sample(probs: np.ndarray, rng: np.random.Generator) -> int:
    return int(rng.choice(probs.shape[0], p=probs))


class Exp3S:
    """Exp3.S (Auer et al. 2002) in the form of Graves et al. 2017 (their Exp3.S equations).

    Policy: pi_t(i) = (1 - epsilon) softmax(w_t)_i + epsilon / N.
    Update after playing arm a with reward r, with rtilde_i = (r 1[a = i] + beta) / pi_t(i):
        w_{t+1,i} = log[(1 - alpha_{t+1}) exp(w_{t,i} + eta rtilde_i)
                        + alpha_{t+1} / (N - 1) sum_{j != i} exp(w_{t,j} + eta rtilde_j)]
    with w_1 = 0 and alpha_t = 1/t, so the first update uses alpha_2 = 1/2. The alpha term shares a little of
    every arm's weight with the others, bounding how far a losing arm can fall behind (about log((N-1)/alpha_t)
    nats); that bound is what lets the policy switch when the best arm changes, where plain Exp3 would first
    have to unlearn its whole history. Computed in log space (logaddexp / leave-one-out logsumexp) with the
    weights shifted so their max is 0, which changes neither the policy nor the next update.

    ``prior``: where the policy starts, and what its exploration draws from: pi_t(i) = (1 - epsilon)
    softmax(w_t + log p0)_i + epsilon p0_i. Uniform (the paper) by default; arm sizes (each arm's share of the
    records) make the untrained policy sample like a random batch, so small arms, often the odd ones out, are not
    over-sampled before there is any evidence for them, and the learnt weights w say how far the data's own mix
    should move. The mixing term acts on w, so it pulls back to the prior, not to uniform.

    Defaults are those of the paper's experiments: eta = 1e-3, epsilon = 0.05, beta = 0, alpha_t = 1/t. The paper's
    runs are hundreds of thousands of steps; with the few hundred steps of a fine-tuning run eta = 1e-3 barely
    moves the policy off uniform, so pass a larger eta (about 0.1 for rewards in [-1, 1]) for short runs.
    Rewards are expected in [-1, 1]: feed them through ``RewardScaler``. ``alpha=None`` is the 1/t schedule;
    a float is a constant alpha (Auer et al.'s original), 0 turns the mixing off (Exp3 with epsilon floor).
    """

    kind = "exp3s"

    def __init__(
        self,
        n_arms: int,
        eta: float = 1e-3,
        epsilon: float = 0.05,
        alpha: float | None = None,
        beta: float = 0.0,
        prior: Sequence[float] | None = None,
    ) -> None:
        if n_arms < 1:
            raise ValueError("need at least one arm")
        p0 = np.full(n_arms, 1.0 / n_arms) if prior is None else np.asarray(prior, dtype=np.float64)
        if p0.shape != (n_arms,) or not np.all(np.isfinite(p0)) or np.any(p0 <= 0):
            raise ValueError(f"prior must be {n_arms} positive weights, one per arm")
        self.prior = p0 / p0.sum()
        if not eta > 0:
            raise ValueError("eta must be positive")
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError("epsilon must be in [0, 1]")
        if alpha is not None and not 0.0 <= alpha < 1.0:
            raise ValueError("alpha must be in [0, 1) or None for the 1/t schedule")
        self.n_arms = int(n_arms)
        self.eta = float(eta)
        self.epsilon = float(epsilon)
        self.alpha = None if alpha is None else float(alpha)
        self.beta = float(beta)
        self.t = 0  # updates done so far
        self._w = np.zeros(self.n_arms)

    def probabilities(self) -> np.ndarray:
        p = (1.0 - self.epsilon) * _softmax(self._w + np.log(self.prior)) + self.epsilon * self.prior
        return p / p.sum()

    def sample(self, rng: np.random.Generator) -> int:
        return _sample(self.probabilities(), rng)

    def alpha_at(self, t: int) -> float:
        """The mixing rate used to compute the weights of round ``t`` (t >= 2)."""
        return 1.0 / t if self.alpha is None else self.alpha

    def update(self, arm: int, reward: float) -> None:
        """Importance-weight ``reward`` (ideally in [-1, 1]) for ``arm`` and apply the Exp3.S update."""
        self.update_many([arm], [reward])

    def update_many(self, arms: Sequence[int], rewards: Sequence[float]) -> None:
        """One Exp3.S update from several arms drawn together from the current policy (one per example of a
        mixed batch): the reward estimate is the mean of the single-draw estimates,
        rtilde_i = beta / pi_i + sum_k r_k 1[a_k = i] / (B pi_i), which is unbiased like the single draw's and
        B times less noisy. With one arm this is exactly ``update``."""
        pairs = _check_pairs(arms, rewards, self.n_arms)
        pi = self.probabilities()
        rtilde = np.full(self.n_arms, self.beta)
        for arm, reward in pairs:
            rtilde[arm] += reward / len(pairs)
        v = self._w + self.eta * rtilde / pi
        self.t += 1
        w = self._mix(v, self.alpha_at(self.t + 1))
        self._w = w - np.max(w)

    def _mix(self, v: np.ndarray, alpha: float) -> np.ndarray:
        n = self.n_arms
        if n == 1 or alpha == 0.0:
            return v
        leave_one_out = np.where(np.eye(n, dtype=bool), -np.inf, v[None, :])
        others = _logsumexp(leave_one_out, axis=1)
        return np.logaddexp(math.log1p(-alpha) + v, math.log(alpha / (n - 1)) + others)

    def values(self) -> np.ndarray:
        """The log-weights w plus the log prior (max 0).

        softmax of these is the policy without its epsilon floor, i.e. the mix the bandit has learned; returning
        log-weights rather than that softmax keeps them on the additive scale a temperature acts on, so
        ``allocate_by_arm(values(), temperature=1)`` splits a budget in exactly the learned proportions.
        """
        v = self._w + np.log(self.prior)
        return v - v.max()

    def state_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "n_arms": self.n_arms,
            "eta": self.eta,
            "epsilon": self.epsilon,
            "alpha": self.alpha,
            "beta": self.beta,
            "t": self.t,
            "w": [float(x) for x in self._w],
            "prior": [float(x) for x in self.prior],
        }

    def load_state_dict(self, d: dict[str, Any]) -> None:
        _check_kind(d, self.kind, self.n_arms)
        self.eta = float(d["eta"])
        self.epsilon = float(d["epsilon"])
        self.alpha = None if d["alpha"] is None else float(d["alpha"])
        self.beta = float(d["beta"])
        self.t = int(d["t"])
        self._w = np.asarray(d["w"], dtype=np.float64).copy()
        if "prior" in d:  # states saved before priors existed were uniform
            self.prior = np.asarray(d["prior"], dtype=np.float64).copy()
        else:
            self.prior = np.full(self.n_arms, 1.0 / self.n_arms)


def _check_kind(d: dict[str, Any], kind: str, n_arms: int) -> None:
    if d.get("kind") != kind:
        raise ValueError(f"state is for a {d.get('kind')!r} policy, not {kind!r}")
    if int(d["n_arms"]) != n_arms:
        raise ValueError(f"state has {d['n_arms']} arms, policy has {n_arms}")


def odm_exploration_rate(t: int, n_arms: int) -> float:
    """ODM's exploration rate eps_t = min(1/K, sqrt(ln K / (K t))), with eps_0 = 1/K (Albalak et al., alg. 1)."""
    if t <= 0:
        return 1.0 / n_arms
    return min(1.0 / n_arms, math.sqrt(math.log(n_arms) / (n_arms * t)))


class OnlineDataMixing:
    """Online Data Mixing (ODM): Exp3 over data groups with the training loss as reward (Albalak et al. 2023).

    ``update(arm, reward)`` takes the *training loss* of the batch drawn from ``arm`` as its reward: a high
    loss means there is more left to learn from that group, so ODM samples it more. The loss comes free with
    the training step, which is why the paper picks it. Algorithm 1 of the paper, round t:
        eps_t = min(1/K, sqrt(ln K / (K t)))
        pi_t(i) = (1 - K eps_t) exp(eps_{t-1} R_i) / sum_j exp(eps_{t-1} R_j) + eps_t
        after training on arm a with loss L:  R_a <- alpha R_a + (1 - alpha) L / pi_t(a)
    The estimate R is a smoothed (EMA) importance-weighted loss, not Exp3's running sum, so it tracks the
    current loss; the decaying eps_{t-1} is both the exploration floor and the learning rate, starting from
    uniform (eps_0 = 1/K). Because R stays on the scale of loss * K while eps shrinks like 1/sqrt(t), the
    policy moves only gently off uniform; ``reward_scale`` multiplies the loss to make it move more (the
    authors' code scales too), 1.0 is the paper. ``alpha`` = 0.9 is the smoothing default here.
    """

    kind = "odm"

    def __init__(self, n_arms: int, alpha: float = 0.9, reward_scale: float = 1.0) -> None:
        if n_arms < 1:
            raise ValueError("need at least one arm")
        if not 0.0 <= alpha < 1.0:
            raise ValueError("alpha must be in [0, 1)")
        if not reward_scale > 0:
            raise ValueError("reward_scale must be positive")
        self.n_arms = int(n_arms)
        self.alpha = float(alpha)
        self.reward_scale = float(reward_scale)
        self.t = 0  # updates done so far; the next round is t + 1
        self._r = np.zeros(self.n_arms)

    def exploration_rate(self) -> float:
        """eps of the next round, also the minimum probability of every arm."""
        return odm_exploration_rate(self.t + 1, self.n_arms)

    def _logits(self) -> np.ndarray:
        return odm_exploration_rate(self.t, self.n_arms) * self._r

    def probabilities(self) -> np.ndarray:
        eps = self.exploration_rate()
        p = (1.0 - self.n_arms * eps) * _softmax(self._logits()) + eps
        return p / p.sum()

    def sample(self, rng: np.random.Generator) -> int:
        return _sample(self.probabilities(), rng)

    def update(self, arm: int, reward: float) -> None:
        """``reward`` is the training loss of the batch from ``arm`` (higher loss -> arm sampled more)."""
        self.update_many([arm], [reward])

    def update_many(self, arms: Sequence[int], rewards: Sequence[float]) -> None:
        """One round from several arms drawn together (a mixed batch): each arm drawn gets the smoothing step with
        its importance-weighted loss sum_k L_k 1[a_k = a] / (B pi_a); arms not drawn keep their estimate, as in
        the single-draw round. With one arm this is exactly ``update``."""
        pairs = _check_pairs(arms, rewards, self.n_arms, name="loss")
        pi = self.probabilities()
        estimate: dict[int, float] = {}
        for arm, loss in pairs:
            estimate[arm] = estimate.get(arm, 0.0) + loss * self.reward_scale / (len(pairs) * pi[arm])
        for arm, value in estimate.items():
            self._r[arm] = self.alpha * self._r[arm] + (1.0 - self.alpha) * value
        self.t += 1

    def values(self) -> np.ndarray:
        """eps_{t-1} * R, the logits of the next policy before its exploration floor.

        softmax of these is the mix ODM has learned, the same convention as ``Exp3S.values``, so the two are
        interchangeable in ``allocate_by_arm``.
        """
        return self._logits()

    def state_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "n_arms": self.n_arms,
            "alpha": self.alpha,
            "reward_scale": self.reward_scale,
            "t": self.t,
            "rewards": [float(x) for x in self._r],
        }

    def load_state_dict(self, d: dict[str, Any]) -> None:
        _check_kind(d, self.kind, self.n_arms)
        self.alpha = float(d["alpha"])
        self.reward_scale = float(d["reward_scale"])
        self.t = int(d["t"])
        self._r = np.asarray(d["rewards"], dtype=np.float64).copy()


def make_policy(name: Literal["exp3s", "odm"], n_arms: int, **kwargs: Any) -> BanditPolicy:
    """Build a policy by the name a recipe uses; ``kwargs`` go to its constructor."""
    if name == "exp3s":
        return Exp3S(n_arms, **kwargs)
    if name == "odm":
        return OnlineDataMixing(n_arms, **kwargs)
    raise ValueError(f"unknown bandit {name!r}: expected 'exp3s' or 'odm'")
