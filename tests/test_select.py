"""Data selection: the bandits against their papers' formulas and toy environments, the static selectors on
pools whose right answer is known."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from sftforge.select import (
    BanditPolicy,
    Exp3S,
    OnlineDataMixing,
    RewardScaler,
    allocate_by_arm,
    deita,
    k_center_greedy,
    make_policy,
    odm_exploration_rate,
    quantile_bins,
    take_within_budget,
    top_k,
    uniform,
)

# ---------------------------------------------------------------- bandits


def play(policy: BanditPolicy, steps: int, best_arm, rng: np.random.Generator, start: int = 0) -> None:
    """A +1 / -1 environment: the arm ``best_arm(t)`` pays +1, every other arm -1."""
    for t in range(start, start + steps):
        arm = policy.sample(rng)
        policy.update(arm, 1.0 if arm == best_arm(t) else -1.0)


def test_exp3s_probabilities_sum_to_one_and_keep_the_exploration_floor():
    policy = Exp3S(4, eta=0.5, epsilon=0.05)
    rng = np.random.default_rng(1)
    for _ in range(300):
        p = policy.probabilities()
        assert p.sum() == pytest.approx(1.0, abs=1e-12)
        assert p.min() >= 0.05 / 4 - 1e-12
        arm = policy.sample(rng)
        policy.update(arm, 1.0 if arm == 3 else rng.uniform(-1, 1))
    assert np.all(np.isfinite(policy.values())) and policy.values().max() == 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exp3s_finds_the_paying_arm_within_500_steps(seed):
    policy = Exp3S(3, eta=0.1)
    play(policy, 500, lambda t: 2, np.random.default_rng(seed))
    assert policy.probabilities()[2] > 0.8
    assert int(np.argmax(policy.values())) == 2


def test_the_papers_eta_is_too_small_for_a_few_hundred_steps():
    # documented in Exp3S: the default (eta = 1e-3) stays near uniform over a fine-tuning-length run
    policy = Exp3S(3)
    play(policy, 500, lambda t: 2, np.random.default_rng(0))
    assert 1 / 3 < policy.probabilities()[2] < 0.5


def test_exp3s_tracks_a_switch_of_the_best_arm_and_plain_exp3_does_not():
    switch = lambda t: 2 if t < 500 else 0  # noqa: E731
    s, plain = Exp3S(3, eta=0.1), Exp3S(3, eta=0.1, alpha=0.0)
    for policy in (s, plain):
        play(policy, 500, switch, np.random.default_rng(0))
        assert policy.probabilities()[2] > 0.9
    rng_s, rng_plain = np.random.default_rng(1), np.random.default_rng(1)
    play(s, 100, switch, rng_s, start=500)
    play(plain, 100, switch, rng_plain, start=500)
    # alpha_t = 1/t caps how far arm 0 fell behind, so 100 steps suffice; without it 500 steps must be unlearnt
    assert s.probabilities()[0] > 0.8
    assert plain.probabilities()[0] < 0.1
    play(s, 500, switch, rng_s, start=600)
    assert s.probabilities()[0] > 0.8


def test_exp3s_single_update_matches_the_formula():
    eta, eps, beta, n = 0.5, 0.1, 0.05, 3
    w0 = np.array([0.0, -0.2, -1.3])
    policy = Exp3S(n, eta=eta, epsilon=eps, beta=beta)
    state = policy.state_dict() | {"w": w0.tolist(), "t": 4}
    policy.load_state_dict(state)

    pi = (1 - eps) * np.exp(w0) / np.exp(w0).sum() + eps / n
    np.testing.assert_allclose(policy.probabilities(), pi, rtol=0, atol=1e-12)
    arm, r = 1, 0.7
    rtilde = np.array([(r * (i == arm) + beta) / pi[i] for i in range(n)])
    alpha = 1 / 6  # the 5th update computes the weights of round 6
    x = np.exp(w0 + eta * rtilde)
    expected = np.log((1 - alpha) * x + alpha / (n - 1) * (x.sum() - x))
    policy.update(arm, r)
    np.testing.assert_allclose(policy.values(), expected - expected.max(), rtol=0, atol=1e-9)
    assert policy.t == 5


def test_exp3s_first_update_mixes_with_one_half():
    policy = Exp3S(2, eta=1.0, epsilon=0.0)
    policy.update(0, 1.0)  # pi = 1/2 -> rtilde_0 = 2
    x = np.exp(np.array([2.0, 0.0]))
    expected = np.log(0.5 * x + 0.5 * x[::-1])
    np.testing.assert_allclose(policy.values(), expected - expected.max(), atol=1e-12)


def test_exp3s_stays_finite_under_extreme_rewards():
    policy = Exp3S(3, eta=50.0, epsilon=0.0)
    rng = np.random.default_rng(0)
    for _ in range(200):
        policy.update(policy.sample(rng), 1.0)
    assert np.all(np.isfinite(policy.values()))
    assert np.isfinite(policy.probabilities()).all() and policy.probabilities().sum() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "make", [lambda: Exp3S(4, eta=0.2), lambda: OnlineDataMixing(4, reward_scale=3.0)], ids=["exp3s", "odm"]
)
def test_state_dict_round_trip_gives_identical_next_samples(make):
    policy = make()
    rng = np.random.default_rng(7)
    for _ in range(60):
        arm = policy.sample(rng)
        policy.update(arm, float(rng.uniform(0, 2)))
    restored = make()
    restored.load_state_dict(json.loads(json.dumps(policy.state_dict(), allow_nan=False)))
    np.testing.assert_array_equal(restored.probabilities(), policy.probabilities())
    rng_a, rng_b = np.random.default_rng(99), np.random.default_rng(99)
    arms_a, arms_b = [], []
    for _ in range(40):
        a, b = policy.sample(rng_a), restored.sample(rng_b)
        arms_a.append(a)
        arms_b.append(b)
        reward = float(rng_a.uniform(0, 2))
        rng_b.uniform(0, 2)
        policy.update(a, reward)
        restored.update(b, reward)
    assert arms_a == arms_b
    np.testing.assert_array_equal(restored.values(), policy.values())


def test_load_state_dict_refuses_another_policy_or_arm_count():
    with pytest.raises(ValueError, match="odm"):
        Exp3S(3).load_state_dict(OnlineDataMixing(3).state_dict())
    with pytest.raises(ValueError, match="arms"):
        Exp3S(3).load_state_dict(Exp3S(4).state_dict())


def test_updates_reject_nan_rewards_and_unknown_arms():
    for policy in (Exp3S(3), OnlineDataMixing(3)):
        with pytest.raises(ValueError, match="finite"):
            policy.update(0, float("nan"))
        with pytest.raises(ValueError, match="out of range"):
            policy.update(3, 1.0)


def test_exp3s_with_a_size_prior_starts_from_the_data_s_mix_and_learns_away_from_it():
    policy = Exp3S(3, eta=0.3, epsilon=0.1, prior=[10, 30, 60])
    np.testing.assert_allclose(policy.probabilities(), [0.1, 0.3, 0.6])
    np.testing.assert_allclose(np.exp(policy.values()) / np.exp(policy.values()).sum(), [0.1, 0.3, 0.6])
    rng = np.random.default_rng(0)
    for _ in range(80):
        arm = policy.sample(rng)
        policy.update(arm, 1.0 if arm == 0 else -1.0)  # the smallest arm is the useful one
    p = policy.probabilities()
    assert p[0] > 0.5 and p.min() >= 0.1 * 0.1 - 1e-12  # exploration keeps the prior's floor epsilon * p0
    restored = Exp3S(3, eta=0.3, epsilon=0.1)
    restored.load_state_dict(json.loads(json.dumps(policy.state_dict())))
    np.testing.assert_array_equal(restored.probabilities(), policy.probabilities())
    with pytest.raises(ValueError, match="prior"):
        Exp3S(3, prior=[1, 0, 2])


def test_exp3s_update_many_is_the_mean_of_single_draw_estimates():
    n, eta, beta = 3, 0.4, 0.01
    policy = Exp3S(n, eta=eta, epsilon=0.1, beta=beta)
    policy.update(2, 0.5)  # move off uniform so that pi differs by arm
    w0, pi = policy.values(), policy.probabilities()
    arms, rewards = [0, 1, 0, 2], [1.0, -0.5, 0.2, 0.8]
    rtilde = np.full(n, beta)
    for a, r in zip(arms, rewards):
        rtilde[a] += r / len(arms)
    x = np.exp(w0 + eta * rtilde / pi)
    alpha = 1 / 3  # the 2nd update computes the weights of round 3
    expected = np.log((1 - alpha) * x + alpha / (n - 1) * (x.sum() - x))
    policy.update_many(arms, rewards)
    np.testing.assert_allclose(policy.values(), expected - expected.max(), atol=1e-9)
    assert policy.t == 2  # one round, however many arms were drawn


@pytest.mark.parametrize("make", [lambda: Exp3S(4, eta=0.2), lambda: OnlineDataMixing(4)], ids=["exp3s", "odm"])
def test_update_many_with_one_arm_is_update(make):
    a, b = make(), make()
    for arm, r in ((1, 0.3), (3, -0.7), (1, 0.9)):
        a.update(arm, r)
        b.update_many([arm], [r])
    np.testing.assert_array_equal(a.values(), b.values())
    with pytest.raises(ValueError, match="one reward per arm|one loss per arm"):
        a.update_many([0, 1], [0.5])
    with pytest.raises(ValueError, match="finite"):
        a.update_many([0, 1], [0.5, float("inf")])


def test_odm_update_many_weights_each_drawn_arm_by_its_probability():
    policy = OnlineDataMixing(3, alpha=0.5)
    pi = policy.probabilities()
    policy.update_many([0, 0, 2], [3.0, 1.0, 2.0])
    # arm 0 drawn twice: (3 + 1) / (3 pi_0); arm 2 once: 2 / (3 pi_2); arm 1 not drawn keeps its estimate (0)
    np.testing.assert_allclose(policy.state_dict()["rewards"], [0.5 * 4 / (3 * pi[0]), 0.0, 0.5 * 2 / (3 * pi[2])])


def test_a_mixed_batch_draws_each_example_s_arm_and_rewards_it_alone():
    from sftforge.train.samplers import BanditSampler, StepSignal

    members = [np.arange(0, 10), np.arange(10, 20), np.arange(20, 30)]
    sampler = BanditSampler(
        Exp3S(3, eta=0.3, epsilon=0.05), members, 0, "gradient_alignment", RewardScaler(window=100), batches="mixed"
    )
    assert sampler.per_example and sampler.needs_alignment
    seen: set[int] = set()
    for _ in range(40):
        draw = sampler.next_batch(6)
        assert draw.arms is not None and len(draw.arms) == len(draw.indices) == 6
        assert all(i in members[a] for a, i in zip(draw.arms.tolist(), draw.indices.tolist()))
        seen.update(draw.arms.tolist())
        # arm 2's examples point at the probe, arm 0's away from it; one example's signal is missing
        align = [{0: -0.3, 1: 0.0, 2: 0.6}[a] + 0.01 * k for k, a in enumerate(draw.arms.tolist())]
        align[0] = float("nan")
        pulls = sampler.feedback(
            draw, StepSignal(1.0, float("nan"), float("nan"), float("nan"), 0.1, example_alignment=tuple(align))
        )
        assert [a for a, _ in pulls] == draw.arms.tolist()[1:]
    assert len(seen) > 1  # batches really mix arms
    p = sampler.probabilities()
    assert p[2] > 0.6 and p[0] < p[1]


def test_ranked_arms_serve_their_best_scored_records_first_every_epoch():
    from sftforge.select.static import members_by_score
    from sftforge.train.samplers import BanditSampler

    arm_of = np.array([0, 1, 0, 0, 1, 0])
    score = np.array([0.2, 0.9, np.nan, 0.7, 0.1, 0.5])
    members = members_by_score(arm_of, score, 2)
    assert [m.tolist() for m in members] == [[3, 5, 0, 2], [1, 4]]  # best first, NaN last
    sampler = BanditSampler(Exp3S(2, prior=[0.999, 0.001], epsilon=0.0), members, 0, "prediction_gain", ranked=True)
    drawn = [sampler.next_batch(3).indices.tolist() for _ in range(3)]
    assert drawn == [[3, 5, 0], [2, 3, 5], [0, 2, 3]]  # arm 0 in its ranked order, again from the top each epoch
    assert sorted(sampler.served().tolist()) == sorted(sum(drawn, []))  # what was trained on, as often


def test_a_bandit_stops_drawing_the_examples_whose_reward_fell_to_drop_below():
    from sftforge.train.samplers import BanditSampler, StepSignal

    members = [np.arange(0, 6), np.arange(6, 12)]
    sampler = BanditSampler(
        Exp3S(2, eta=0.1), members, 0, "gradient_alignment", RewardScaler(window=100), "mixed", drop_below=0.0
    )
    bad = {2, 7}  # these two point away from the probe; the rest spread over a range of alignments
    history = []
    for step in range(30):
        draw = sampler.next_batch(4)
        history.append(draw.indices.tolist())
        align = tuple(-0.9 if i in bad else 0.1 + 0.02 * ((i + step) % 10) for i in draw.indices.tolist())
        sampler.feedback(draw, StepSignal(1.0, 0.0, 0.0, 0.0, 0.0, example_alignment=align))
    assert sampler.dropped().tolist() == [2, 7]
    first_seen = {i: next(k for k, d in enumerate(history) if i in d) for i in bad}
    for i, k in first_seen.items():  # drawn once (nothing is dropped unseen), never after its reward came back
        assert not any(i in d for d in history[k + 1 :])
    assert {i for d in history[-5:] for i in d} - bad  # the others are still served

    resumed = BanditSampler(
        Exp3S(2, eta=0.1), members, 0, "gradient_alignment", RewardScaler(window=100), "mixed", drop_below=0.0
    )
    resumed.load_state_dict(json.loads(json.dumps(sampler.state_dict())))
    assert resumed.dropped().tolist() == [2, 7]
    assert [resumed.next_batch(4).indices.tolist() for _ in range(3)] == [
        sampler.next_batch(4).indices.tolist() for _ in range(3)
    ]


def test_an_arm_whose_every_example_was_dropped_still_serves():
    from sftforge.train.samplers import BanditSampler, StepSignal

    sampler = BanditSampler(Exp3S(1), [np.arange(3)], 0, "gradient_alignment", RewardScaler(), "mixed", drop_below=0.25)
    for _ in range(4):
        draw = sampler.next_batch(3)
        sampler.feedback(draw, StepSignal(1.0, 0.0, 0.0, 0.0, 0.0, example_alignment=(0.1, 0.2, 0.3)))
    assert sampler.dropped().size > 0
    assert len(sampler.next_batch(3).indices) == 3


def test_drop_below_needs_each_example_s_own_reward():
    from sftforge.config import BanditSettings
    from sftforge.train.samplers import BanditSampler

    with pytest.raises(ValueError, match="batches: mixed"):
        BanditSettings(drop_below=-1.0, batches="arm")
    with pytest.raises(ValueError, match="mixed"):
        BanditSampler(Exp3S(1), [np.arange(3)], 0, "gradient_alignment", batches="arm", drop_below=-1.0)


def test_a_score_prior_counts_each_arm_s_records_with_a_valid_score():
    from sftforge.select.static import score_prior

    scores = np.array([0.9, np.nan, 0.5, np.nan, np.nan, 0.7])
    assert score_prior([np.array([0, 1, 2]), np.array([3, 4]), np.array([5])], scores) == [2.0, 0.5, 1.0]


def test_mixed_batches_refuse_a_whole_batch_reward():
    from sftforge.train.samplers import BanditSampler

    with pytest.raises(ValueError, match="per-example reward"):
        BanditSampler(Exp3S(2), [np.arange(3), np.arange(3, 6)], 0, "target_prediction_gain", batches="mixed")


def test_make_policy_builds_both_and_they_satisfy_the_protocol():
    exp3s = make_policy("exp3s", 5, eta=0.1)
    odm = make_policy("odm", 5, alpha=0.5)
    assert isinstance(exp3s, Exp3S) and exp3s.eta == 0.1
    assert isinstance(odm, OnlineDataMixing) and odm.alpha == 0.5
    assert isinstance(exp3s, BanditPolicy) and isinstance(odm, BanditPolicy)
    with pytest.raises(ValueError, match="unknown bandit"):
        make_policy("ucb", 5)  # type: ignore[arg-type]


# ---------------------------------------------------------------- reward scaling


def fill(scaler: RewardScaler, values) -> None:
    for v in values:
        scaler.scale(v)


def test_reward_scaler_maps_the_20th_and_80th_percentiles_to_minus_and_plus_one():
    low = RewardScaler()
    fill(low, [v for v in range(101) if v != 20])
    assert low.scale(20.0) == pytest.approx(-1.0)  # history 0..100: 20th percentile is 20
    high = RewardScaler()
    fill(high, [v for v in range(101) if v != 80])
    assert high.scale(80.0) == pytest.approx(1.0)
    mid = RewardScaler()
    fill(mid, [v for v in range(101) if v != 50])
    assert mid.scale(50.0) == pytest.approx(0.0)
    quarter = RewardScaler()
    fill(quarter, [v for v in range(101) if v != 35])
    assert quarter.scale(35.0) == pytest.approx(2 * 15 / 60 - 1)


def test_reward_scaler_clips_and_waits_for_two_distinct_values():
    scaler = RewardScaler()
    assert scaler.scale(3.0) == 0.0
    assert scaler.scale(3.0) == 0.0
    fill(scaler, np.linspace(0, 1, 50))
    assert scaler.scale(1e6) == 1.0
    assert scaler.scale(-1e6) == -1.0
    assert scaler.scale(float("nan")) == 0.0 and len(scaler) == 54  # NaN is not stored


def test_reward_scaler_keeps_only_the_window_and_round_trips():
    scaler = RewardScaler(window=10)
    fill(scaler, range(100))
    assert len(scaler) == 10
    assert scaler.scale(85.0) == -1.0  # old rewards (0..89) are gone: 85 is now low
    copy = RewardScaler()
    copy.load_state_dict(json.loads(json.dumps(scaler.state_dict())))
    assert copy.window == 10 and copy.scale(200.0) == scaler.scale(200.0) == 1.0


# ---------------------------------------------------------------- ODM


def test_odm_exploration_rate_decays_per_the_formula():
    k = 5
    assert odm_exploration_rate(0, k) == 1 / k
    for t in (1, 2, 8, 9, 100, 10_000):
        assert odm_exploration_rate(t, k) == pytest.approx(min(1 / k, math.sqrt(math.log(k) / (k * t))))
    rates = [odm_exploration_rate(t, k) for t in range(1, 2000)]
    assert all(a >= b for a, b in zip(rates, rates[1:])) and rates[-1] < 0.02
    policy = OnlineDataMixing(k)
    rng = np.random.default_rng(0)
    for t in range(300):
        assert policy.exploration_rate() == odm_exploration_rate(t + 1, k)
        assert policy.probabilities().min() >= policy.exploration_rate() - 1e-12
        arm = policy.sample(rng)
        policy.update(arm, 1.0 + arm)


def test_odm_policy_and_update_match_algorithm_1():
    k, alpha = 3, 0.9
    policy = OnlineDataMixing(k, alpha=alpha)
    r = np.array([4.0, 10.0, 7.0])
    policy.load_state_dict(policy.state_dict() | {"rewards": r.tolist(), "t": 20})
    eps_t, eps_prev = odm_exploration_rate(21, k), odm_exploration_rate(20, k)
    pi = (1 - k * eps_t) * np.exp(eps_prev * r) / np.exp(eps_prev * r).sum() + eps_t
    np.testing.assert_allclose(policy.probabilities(), pi, atol=1e-12)
    policy.update(2, 2.5)
    assert policy.state_dict()["rewards"][2] == pytest.approx(alpha * 7.0 + (1 - alpha) * 2.5 / pi[2])
    assert policy.state_dict()["rewards"][:2] == [4.0, 10.0]


def test_odm_starts_uniform_and_moves_towards_the_arm_with_higher_loss():
    policy = OnlineDataMixing(3)
    np.testing.assert_allclose(policy.probabilities(), 1 / 3)
    rng = np.random.default_rng(0)
    losses = np.array([1.0, 1.0, 3.0])  # arm 2 still has the most to learn
    for _ in range(500):
        arm = policy.sample(rng)
        policy.update(arm, losses[arm] + 0.1 * rng.standard_normal())
    p = policy.probabilities()
    assert p[2] > max(p[0], p[1]) and p[2] > 0.35
    assert int(np.argmax(policy.values())) == 2
    scaled = OnlineDataMixing(3, reward_scale=10.0)
    rng = np.random.default_rng(0)
    for _ in range(500):
        arm = scaled.sample(rng)
        scaled.update(arm, losses[arm] + 0.1 * rng.standard_normal())
    assert scaled.probabilities()[2] > p[2]  # reward_scale sharpens the same preference


# ---------------------------------------------------------------- budgets


def test_take_within_budget_skips_what_does_not_fit_and_goes_on():
    costs = np.array([5.0, 3.0, 4.0, 1.0, 9.0])
    np.testing.assert_array_equal(take_within_budget(np.arange(5), costs, 9), [0, 1, 3])
    np.testing.assert_array_equal(take_within_budget(np.array([4, 3, 2]), costs, 9), [4])
    np.testing.assert_array_equal(take_within_budget(np.array([2, 0]), np.array([0.1, 0, 0.2]), 0.3), [2, 0])
    assert take_within_budget(np.array([0, 1]), np.array([0.1, 0.2]), 0.3).tolist() == [0, 1]  # float sums fit
    assert take_within_budget(np.arange(5), costs, 0.5).size == 0
    assert take_within_budget(np.arange(5), np.ones(5), 3).tolist() == [0, 1, 2]
    assert take_within_budget(np.arange(5), np.ones(5), 3).dtype == np.int64
    with pytest.raises(ValueError, match="twice"):
        take_within_budget(np.array([1, 1]), np.ones(2), 5)


def test_uniform_is_seeded_and_within_budget():
    costs = np.random.default_rng(0).integers(1, 50, 1000).astype(float)
    a, b, c = uniform(1000, costs, 2000, seed=1), uniform(1000, costs, 2000, seed=1), uniform(1000, costs, 2000, 2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert costs[a].sum() <= 2000 and costs[a].sum() > 1950
    assert len(set(a.tolist())) == a.size


def test_top_k_takes_the_best_and_drops_nan_and_invalid():
    ifd = np.array([0.5, np.nan, 0.9, 1.2, 0.7, 0.95, 1.0])
    chosen = top_k(ifd, np.ones(7), budget=10, valid=ifd < 1)
    np.testing.assert_array_equal(chosen, [5, 2, 4, 0])  # IFD >= 1 and NaN never selected, even with room
    np.testing.assert_array_equal(top_k(ifd, np.ones(7), 2, descending=False), [0, 4])
    np.testing.assert_array_equal(top_k(ifd, np.array([1, 1, 5, 1, 1, 1, 1.0]), 3, valid=ifd < 1), [5, 4, 0])


# ---------------------------------------------------------------- diversity


def cosine(a: np.ndarray) -> np.ndarray:
    unit = a / np.linalg.norm(a, axis=1, keepdims=True)
    return unit @ unit.T


def clustered_pool(n: int = 600, d: int = 16, clusters: int = 12, noise: float = 0.3, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d))
    emb = centres[rng.integers(0, clusters, n)] + noise * rng.standard_normal((n, d))
    return emb, rng.random(n)


def test_deita_never_keeps_two_similar_records_and_takes_the_best_first():
    emb, scores = clustered_pool()
    chosen = deita(scores, emb, np.ones(len(scores)), budget=50, threshold=0.9)
    sims = cosine(emb[chosen])
    np.fill_diagonal(sims, -1)
    assert sims.max() < 0.9
    assert chosen[0] == int(np.argmax(scores))
    assert np.all(np.diff(scores[chosen]) <= 0)  # score-first
    # every skipped record that scores above the last kept one is a near-duplicate of a kept one
    skipped = np.setdiff1d(np.flatnonzero(scores > scores[chosen[-1]]), chosen)
    assert skipped.size > 0
    to_kept = cosine(np.vstack([emb[skipped], emb[chosen]]))[: skipped.size, skipped.size :]
    assert np.all(to_kept.max(axis=1) >= 0.9)


def test_deita_skips_a_near_duplicate_of_the_top_record():
    emb = np.eye(4) * np.array([1.0, 2.0, 3.0, 4.0])[:, None]  # unnormalised, mutually orthogonal
    emb = np.vstack([emb, emb[0] * 5 + 0.01])  # record 4 duplicates record 0 up to scale
    scores = np.array([0.9, 0.5, 0.4, np.nan, 0.8])
    np.testing.assert_array_equal(deita(scores, emb, np.ones(5), budget=10), [0, 1, 2])
    np.testing.assert_array_equal(deita(scores, emb, np.ones(5), budget=10, threshold=1.01), [0, 4, 1, 2])


def test_deita_gives_the_same_answer_whatever_the_block_size():
    emb, scores = clustered_pool(n=400, noise=0.5, seed=3)
    costs = np.random.default_rng(3).integers(1, 5, 400).astype(float)
    big = deita(scores, emb, costs, budget=60, threshold=0.85)
    small = deita(scores, emb, costs, budget=60, threshold=0.85, block_size=7)
    np.testing.assert_array_equal(big, small)
    assert costs[big].sum() <= 60


def test_k_center_greedy_picks_one_point_per_cluster():
    rng = np.random.default_rng(0)
    centres = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    labels = rng.integers(0, 3, 300)
    emb = centres[labels] + 0.05 * rng.standard_normal((300, 3))
    for seed in range(5):
        chosen = k_center_greedy(emb, np.ones(300), budget=3, seed=seed)
        assert sorted(labels[chosen].tolist()) == [0, 1, 2]
    chosen = k_center_greedy(emb, np.ones(300), budget=3, seed=0, first=17)
    assert chosen[0] == 17 and len(set(labels[chosen].tolist())) == 3


def test_k_center_greedy_respects_costs():
    rng = np.random.default_rng(1)
    emb = rng.standard_normal((200, 8))
    costs = rng.integers(1, 20, 200).astype(float)
    chosen = k_center_greedy(emb, costs, budget=100, seed=0)
    assert costs[chosen].sum() <= 100 and len(set(chosen.tolist())) == chosen.size
    assert costs[np.setdiff1d(np.arange(200), chosen)].min() > 100 - costs[chosen].sum()  # nothing else fits
    with pytest.raises(ValueError, match="first"):
        k_center_greedy(emb, np.full(200, 5.0), budget=4, seed=0, first=0)


# ---------------------------------------------------------------- bins and allocation


def test_quantile_bins_are_balanced_and_nan_gets_its_own_bin():
    values = np.random.default_rng(0).permutation(np.arange(100.0))
    values[[3, 50]] = np.nan
    bins = quantile_bins(values, 4)
    assert np.bincount(bins).tolist() == [25, 24, 25, 24, 2]  # 98 finite values: sizes differ by at most one
    assert np.bincount(quantile_bins(np.arange(100.0)[::-1], 4)).tolist() == [25, 25, 25, 25]
    assert bins[3] == bins[50] == 4
    finite = ~np.isnan(values)
    order = np.argsort(values[finite])
    assert np.all(np.diff(bins[finite][order]) >= 0)  # monotone in the value
    assert quantile_bins(np.array([1.0, 1.0, 1.0, 2.0]), 2).tolist() == [0, 0, 0, 1]  # ties share a bin
    assert quantile_bins(np.array([np.nan, np.nan]), 3).tolist() == [3, 3]


def test_allocate_by_arm_splits_by_softmax_of_values():
    arm_of = np.repeat([0, 1], 100)
    scores = np.random.default_rng(0).random(200)
    chosen = allocate_by_arm(np.array([math.log(3.0), 0.0]), arm_of, scores, np.ones(200), budget=20)
    assert np.bincount(arm_of[chosen]).tolist() == [15, 5]
    assert arm_of[chosen][:15].tolist() == [0] * 15  # best arm first
    for arm in (0, 1):
        mine = chosen[arm_of[chosen] == arm]
        assert np.all(np.diff(scores[mine]) <= 0)  # best records first
        top = np.sort(scores[arm_of == arm])[::-1][: mine.size]
        np.testing.assert_array_equal(np.sort(scores[mine])[::-1], top)
    sharper = allocate_by_arm(np.array([math.log(3.0), 0.0]), arm_of, scores, np.ones(200), 20, temperature=0.5)
    assert np.bincount(arm_of[sharper]).tolist() == [18, 2]  # 9:1


def test_allocate_by_arm_redistributes_when_an_arm_runs_out():
    arm_of = np.array([0] + [1] * 50 + [2] * 50 + [3] * 0)
    scores = np.linspace(1, 0, arm_of.size)
    values = np.array([1.0, 0.0, -1.0, 5.0])  # arm 3 has no records: its share goes to the others
    chosen = allocate_by_arm(values, arm_of, scores, np.ones(arm_of.size), budget=30)
    # shares over arms 0..2 are 0.665/0.245/0.090 of 30: arm 0 can use 1, arm 2 takes its 2, arm 1 the rest
    assert np.bincount(arm_of[chosen], minlength=4).tolist() == [1, 27, 2, 0]
    assert len(set(chosen.tolist())) == 30


def test_allocate_by_arm_respects_a_token_budget_and_puts_nan_last():
    rng = np.random.default_rng(2)
    arm_of = rng.integers(0, 3, 300)
    scores = rng.random(300)
    scores[np.flatnonzero(arm_of == 0)[:5]] = np.nan
    costs = rng.integers(10, 200, 300).astype(float)
    chosen = allocate_by_arm(np.array([0.5, 0.2, 0.0]), arm_of, scores, costs, budget=5000)
    assert costs[chosen].sum() <= 5000
    assert 5000 - costs[chosen].sum() < costs[np.setdiff1d(np.arange(300), chosen)].min()  # nothing else fits
    everything = allocate_by_arm(np.array([0.5, 0.2, 0.0]), arm_of, scores, costs, budget=np.inf)
    arm0 = everything[arm_of[everything] == 0]
    assert np.all(np.isnan(scores[arm0[-5:]])) and not np.any(np.isnan(scores[arm0[:-5]]))
    assert everything.size == 300


def test_detrended_scaler_ranks_gains_against_the_recent_trend_not_the_shrinking_past():
    from sftforge.select.bandit import RewardScaler

    plain, detrended = RewardScaler(window=20), RewardScaler(window=20, detrend=5)
    # learning progress that halves every few steps, with a good step (+50% over trend) every third step
    gains = [1.0 * 0.8**t * (1.5 if t % 3 == 0 else 1.0) for t in range(40)]
    plain_out = [plain.scale(g) for g in gains]
    detrended_out = [detrended.scale(g) for g in gains]
    late = range(20, 40)
    assert all(plain_out[t] == -1.0 for t in late if t % 3)  # plain: everything late ranks at the bottom...
    assert np.mean([plain_out[t] for t in late if t % 3 == 0]) < 0  # ...the good steps included
    assert min(detrended_out[t] for t in late if t % 3 == 0) > max(detrended_out[t] for t in late if t % 3)
    restored = RewardScaler(window=20, detrend=5)
    restored.load_state_dict(detrended.state_dict())
    assert restored.scale(0.01) == detrended.scale(0.01)


def test_distinct_scores_leave_out_the_repeats_of_a_better_scored_record():
    from sftforge.select.static import distinct_scores

    vectors = np.array([[1.0, 0.0], [0.99, 0.05], [0.0, 1.0], [0.7, 0.7], [1.0, 0.01]])
    scores = np.array([0.5, 0.9, 0.4, np.nan, 0.3])
    out = distinct_scores(scores, vectors, threshold=0.9)
    # 1 is best; 0 and 4 point the same way as it (cosine > 0.99) and go; 2 is distinct; 3 had no score
    assert out[1] == 0.9 and out[2] == 0.4
    assert np.isnan(out[[0, 3, 4]]).all()
    assert distinct_scores(scores, vectors, threshold=1.0)[[0, 1, 2, 4]].tolist() == [0.5, 0.9, 0.4, 0.3]


def test_a_deita_ordered_bandit_never_draws_a_near_duplicate():
    from sftforge.config import BanditSettings, Selection
    from sftforge.stages.train import make_sampler

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(8, 16))
    vectors[5] = vectors[2] + 0.01  # a repeat of record 2, scored lower
    arm_of = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.8, 0.3, 0.4, 0.7, 0.5, 0.6])
    sel = Selection(strategy="exp3s", bandit=BanditSettings(within_arm="deita", prior="score"))
    sampler = make_sampler(sel, arm_of, 0, scores, vectors)
    drawn = {int(i) for _ in range(20) for i in sampler.next_batch(4).indices}
    assert 5 not in drawn and drawn == {0, 1, 2, 3, 4, 6, 7}
    plain = make_sampler(Selection(strategy="exp3s", bandit=BanditSettings(within_arm="score")), arm_of, 0, scores)
    assert 5 in {int(i) for _ in range(20) for i in plain.next_batch(4).indices}
    with pytest.raises(ValueError, match="embeddings"):
        make_sampler(sel, arm_of, 0, scores)
