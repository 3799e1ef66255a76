"""Data selection: bandits that learn which data arm helps training, and budgeted static selectors.

``bandit`` runs inside the training loop (Exp3.S, ODM); ``static`` picks the exported subset from scores
and embeddings (top-k, DEITA, k-center, allocation of a budget across arms by the bandit's values).
"""

from sftforge.select.bandit import (
    BanditPolicy,
    Exp3S,
    OnlineDataMixing,
    RewardScaler,
    make_policy,
    odm_exploration_rate,
)
from sftforge.select.static import (
    allocate_by_arm,
    deita,
    k_center_greedy,
    quantile_bins,
    take_within_budget,
    top_k,
    uniform,
)

__all__ = [
    "BanditPolicy",
    "Exp3S",
    "OnlineDataMixing",
    "RewardScaler",
    "allocate_by_arm",
    "deita",
    "k_center_greedy",
    "make_policy",
    "odm_exploration_rate",
    "quantile_bins",
    "take_within_budget",
    "top_k",
    "uniform",
]
