"""Records -> splits and arms for selection (select/pool.py)."""

from __future__ import annotations

import numpy as np
import pytest

from sftforge.config import Arms
from sftforge.errors import StageError
from sftforge.sample import Lineage, Record, SourceRef
from sftforge.select.pool import EVAL, PROBE, TRAIN, arm_labels, split_records


def rec(i: int, generator: str = "g", doc: str = "d", **features: float) -> Record:
    return Record(
        id=f"r{i}",
        messages=[{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}],
        task="qa",
        lang="en",
        source=[SourceRef("chunk", f"{doc}#{i}", doc)],
        lineage=Lineage(generator, "m"),
        features=dict(features),
    )


def test_splits_are_sized_disjoint_and_stable_when_records_come_and_go():
    ids = [f"r{i}" for i in range(200)]
    split = split_records(ids, 0.1, 16, seed=3)
    assert (split.count(EVAL), split.count(PROBE), split.count(TRAIN)) == (20, 16, 164)
    again = split_records(ids, 0.1, 16, seed=3)
    assert again == split
    other_seed = split_records(ids, 0.1, 16, seed=4)
    assert other_seed != split
    # one more record: most records keep their split (the split is by a hash of the id, not by position)
    grown = split_records(ids + ["new"], 0.1, 16, seed=3)
    assert sum(a == b for a, b in zip(grown, split)) >= 195


def test_tiny_pools_still_hold_out_one_record_and_keep_one_to_train():
    assert split_records(["a", "b"], 0.1, 16, seed=0).count(EVAL) == 1
    assert split_records(["a", "b"], 0.1, 16, seed=0).count(TRAIN) == 1
    assert split_records(["a", "b", "c"], 0.0, 0, seed=0) == [TRAIN] * 3


def test_arms_by_lineage_and_source_name_their_groups():
    records = [rec(0, "self_instruct", "a"), rec(1, "evol", "b"), rec(2, "self_instruct", "b")]
    labels, names = arm_labels(records, Arms(by="generator"), None, 0)
    assert names == ["evol", "self_instruct"] and labels.tolist() == [1, 0, 1]
    labels, names = arm_labels(records, Arms(by="source"), None, 0)
    assert names == ["a", "b"] and labels.tolist() == [0, 1, 1]


def test_difficulty_arms_bin_a_feature_and_records_without_it_get_their_own_arm():
    records = [rec(i, ifd=i / 10) for i in range(8)] + [rec(9)]
    labels, names = arm_labels(records, Arms(by="difficulty", k=2, feature="ifd"), None, 0)
    assert len(names) == 3 and names[-1] == "ifd bin 02"  # the records without the feature
    assert labels[:4].tolist() == [0] * 4 and labels[4:8].tolist() == [1] * 4 and labels[8] == 2
    with pytest.raises(StageError, match="no record has the feature 'perplexity'"):
        arm_labels(records, Arms(by="difficulty", feature="perplexity"), None, 0)


def test_cluster_arms_follow_the_embeddings_and_need_them():
    rng = np.random.default_rng(0)
    centers = np.eye(8)[:3] * 10
    vectors = np.concatenate([c + rng.normal(0, 0.1, (10, 8)) for c in centers]).astype(np.float32)
    records = [rec(i) for i in range(30)]
    labels, names = arm_labels(records, Arms(by="cluster", k=3), vectors, 0)
    assert len(names) == 3
    for block in range(3):  # each planted group is one arm
        assert len(set(labels[block * 10 : (block + 1) * 10].tolist())) == 1
    with pytest.raises(StageError, match="embedding"):
        arm_labels(records, Arms(by="cluster"), None, 0)


def test_ifd_scores_of_one_or_more_are_never_ranked():
    from sftforge.select.pool import scores

    records = [rec(0, ifd=0.5), rec(1, ifd=1.2), rec(2, ifd=0.9), rec(3)]
    s = scores(records, "ifd", True)
    assert s[0] == 0.5 and s[2] == 0.9 and np.isnan(s[1]) and np.isnan(s[3])
    assert scores([rec(0, perplexity=3.0)], "perplexity", False).tolist() == [-3.0]


def test_cut_off_answers_are_unscored_for_every_score_ranked_strategy():
    from sftforge.config import Selection
    from sftforge.select.pool import scores, static_choice

    # IFD alone ranks 1 and 3 best; their answers end where no turn would (end-of-turn loss 20 and 12 nats)
    records = [rec(0, ifd=0.5, end_loss=0.8), rec(1, ifd=0.9, end_loss=20.0), rec(2, ifd=0.4, end_loss=1.5)]
    records += [rec(3, ifd=0.8, end_loss_other_model=12.0), rec(4, ifd=0.3)]  # any model's end loss; or none
    s = scores(records, "ifd", True, max_end_loss=8.0)
    assert np.isnan(s[1]) and np.isnan(s[3]) and s.tolist()[::2] == [0.5, 0.4, 0.3]
    assert not np.isnan(scores(records, "ifd", True, max_end_loss=None)).any()  # no gate
    assert not np.isnan(scores(records, "ifd", True, max_end_loss=25.0)).any()
    costs = np.ones(len(records))
    for strategy in ("ifd_topk", "deita"):
        sel = Selection(strategy=strategy, max_end_loss=8.0)
        chosen = static_choice(sel, records, costs, 3.0, np.eye(len(records), 8))
        assert sorted(chosen.tolist()) == [0, 2, 4], strategy
