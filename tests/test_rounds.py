"""The closed loop: round 2's generation budget follows round 1's arm values (real generation with the bundled
model, training on the tiny random model)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sftforge.lib.draws import weighted_order
from sftforge.rounds import arm_shares

from conftest import recipe_dict, write_recipe


def test_weighted_order_favours_heavy_items_and_leaves_out_weightless_ones():
    ids = [f"c{i}" for i in range(200)]
    weights = {c: (10.0 if i < 20 else 1.0) for i, c in enumerate(ids[:100])}  # c100.. have no weight
    order = weighted_order(ids, weights, seed=1)
    assert len(order) == 100 and set(order) == set(ids[:100])
    assert sum(int(c[1:]) < 20 for c in order[:20]) >= 10  # 10x weight: most of the first draws
    assert order == weighted_order(ids, weights, seed=1) != weighted_order(ids, weights, seed=2)


def test_arm_shares_are_a_softmax_with_temperature():
    shares = arm_shares(np.array([0.0, -1.0, -2.0]), 1.0)
    np.testing.assert_allclose(shares, np.exp([0, -1, -2]) / np.exp([0, -1, -2]).sum())
    assert arm_shares(np.array([0.0, -1.0]), 100.0)[1] > 0.49  # a high temperature flattens the shares


def test_rounds_need_a_bandit_whose_arms_map_onto_passages(three_peps, tmp_path):
    from sftforge.errors import RecipeError
    from sftforge.recipe import load_recipe

    data = recipe_dict(three_peps)
    data["rounds"] = 2
    with pytest.raises(RecipeError, match="exp3s or odm"):
        load_recipe(write_recipe(tmp_path / "r.yaml", data))
    data["selection"] = {"strategy": "exp3s", "arms": {"by": "difficulty"}}
    data["training"] = {"steps": 2}
    with pytest.raises(RecipeError, match="cluster or source"):
        load_recipe(write_recipe(tmp_path / "r.yaml", data))


@pytest.mark.slow
def test_two_rounds_spend_the_second_budget_by_arm_value(three_peps, tmp_path, tiny_dir):
    from sftforge.recipe import load_recipe
    from sftforge.run import RunDir
    from sftforge.stages import Context, run_rounds

    data = recipe_dict(three_peps, target=6)
    data["rounds"] = 2
    data["selection"] = {
        "strategy": "exp3s",
        "arms": {"by": "source"},
        "eval_fraction": 0.2,
        "probe_size": 1,
        "bandit": {"eta": 0.5},
    }
    data["training"] = {
        "model": str(tiny_dir),
        "method": "full",
        "steps": 6,
        "batch_size": 2,
        "max_seq_len": 400,
        "eval_every": 3,
        "save_every": 6,
        "threads": 2,
    }
    data["evaluation"] = {"generate": False}
    data["output"] = {"formats": ["openai"]}
    path = write_recipe(tmp_path / "loop.yaml", data)
    recipe, text = load_recipe(path)
    root = RunDir.create(tmp_path / "run", text, recipe.name, tmp_path)
    rounds = run_rounds(Context(run=root, recipe=recipe), text)
    assert [r for r, _, _ in rounds] == [1, 2]
    first, second = rounds[0][1], rounds[1][1]
    assert second.path == tmp_path / "run" / "rounds" / "2"

    plan = json.loads((second.path / "plan.json").read_text())
    arms = json.loads((first.stage_dir("train") / "arms.json").read_text())
    values = np.array([a["value"] for a in arms])
    softmax = np.exp(values - values.max()) / np.exp(values - values.max()).sum()  # temperature 1
    assert [a["share"] for a in plan["arms"]] == pytest.approx(softmax.tolist())
    old_chunks = {s.id for r in first.read_records("generate") for s in r.source}
    assert old_chunks and not old_chunks & set(plan["weights"])  # used passages are not asked again

    pool = second.read_records("generate")
    carried = [r for r in pool if r.lineage.round == 1]
    new = [r for r in pool if r.lineage.round == 2]
    assert sorted(r.id for r in carried) == sorted(r.id for r in first.read_records("clean"))
    assert len(new) >= 6 and not {s.id for r in new for s in r.source} & old_chunks
    assert second.stage_info("generate").counts["carried"] == len(carried)
    assert (second.stage_dir("export") / "openai.jsonl").exists()
    # a rerun resumes: nothing is redone in either round
    again = run_rounds(Context(run=RunDir.open(tmp_path / "run"), recipe=recipe), text)
    assert all(not ran for _, _, results in again for _, ran in results)
