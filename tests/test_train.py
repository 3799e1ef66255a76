"""The SFT loop on a tiny random model: assistant-only labels, learning, checkpoints and resume, the bandit sampler,
merging; and the select -> train -> evaluate -> export stages on a run directory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sftforge.config import Training
from sftforge.sample import Lineage, Record, SourceRef
from sftforge.storage import write_vectors
from sftforge.train.data import IGNORE, TrainingError, assistant_spans, encode, encode_all
from sftforge.train.loop import latest_checkpoint


def rec(q: str, a: str, rid: str, generator: str = "grounded_qa", doc: str = "d") -> Record:
    return Record(
        id=rid,
        messages=[{"role": "user", "content": q}, {"role": "assistant", "content": a}],
        task="qa",
        lang="en",
        source=[SourceRef("chunk", f"{doc}#0", doc, 0, 10)],
        lineage=Lineage(generator, "m"),
    )


def sums(n: int, start: int = 0) -> list[Record]:
    """Learnable records: one pattern, different numbers."""
    return [
        rec(f"What is {i} plus {i}?", f"{i} plus {i} is {2 * i}.", f"s{i}", doc="sums") for i in range(start, start + n)
    ]


def noise(n: int, seed: int = 0) -> list[Record]:
    """Unlearnable records: random words as answers."""
    rng = np.random.default_rng(seed)
    words = "apple river seven blue quickly under paper lamp storm violin cloud tiger salt".split()
    return [rec(f"What is {i} plus {i}?", " ".join(rng.choice(words, 8)), f"n{i}", doc="noise") for i in range(n)]


@pytest.fixture(scope="module")
def tok(tiny_dir):
    from transformers import AutoTokenizer

    t = AutoTokenizer.from_pretrained(str(tiny_dir))
    t.pad_token = t.pad_token or t.eos_token
    return t


def cfg(tiny_dir: Path, **kw) -> Training:
    base = {
        "model": str(tiny_dir),
        "method": "full",
        "steps": 12,
        "batch_size": 4,
        "learning_rate": 3e-3,
        "warmup_steps": 0,
        "eval_every": 4,
        "save_every": 4,
        "max_seq_len": 64,
        "threads": 2,
    }
    return Training(**{**base, **kw})


# -- tokenisation -------------------------------------------------------------------------------------------------


def test_labels_cover_assistant_turns_only(tok):
    r = Record(
        id="x",
        task="dialogue",
        lang="en",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi there"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Bye now"},
            {"role": "assistant", "content": "Goodbye."},
        ],
    )
    ex = encode(tok, r, 512)
    learnt = tok.decode([i for i, lab in zip(ex.input_ids, ex.labels) if lab != IGNORE])
    assert "Hello!" in learnt and "Goodbye." in learnt
    assert "Hi there" not in learnt and "Bye now" not in learnt and "Be brief" not in learnt
    assert learnt.count("<|im_end|>") == 2  # the end of each reply is learnt, so the model learns to stop
    assert all(lab in (IGNORE, i) for i, lab in zip(ex.input_ids, ex.labels))


def test_records_cut_before_any_answer_token_are_dropped(tok):
    long_q = rec("word " * 200 + "?", "Short.", "long")
    examples, dropped = encode_all(tok, [long_q, sums(1)[0]], 64)
    assert dropped == ["long"] and [e.record_id for e in examples] == ["s0"]
    assert all(len(e.input_ids) <= 64 for e in examples)


def test_a_template_that_is_not_prefix_consistent_is_refused():
    class Odd:  # renders the whole conversation in reverse: no prefix of it is a prefix of the whole
        chat_template = "x"

        def apply_chat_template(self, messages, tokenize, add_generation_prompt=False):
            text = "".join(f"<{m['role']}>{m['content']}" for m in reversed(messages))
            return text + ("<assistant>" if add_generation_prompt else "")

    with pytest.raises(TrainingError, match="prefix"):
        assistant_spans(Odd(), sums(1)[0].messages)


# -- the loop -----------------------------------------------------------------------------------------------------


def _trainer(tiny_dir, out, config, train, evals, sampler=None, probe=None, adapter=None, reporter=None):
    from sftforge.train.loop import TrainData, Trainer
    from sftforge.train.model import load_trainable
    from sftforge.train.samplers import SubsetSampler

    model, tokenizer, _ = load_trainable(config, None, adapter)
    tr, _ = encode_all(tokenizer, train, config.max_seq_len)
    ev, _ = encode_all(tokenizer, evals, config.max_seq_len)
    pr, _ = encode_all(tokenizer, probe or [], config.max_seq_len)
    sampler = sampler or SubsetSampler(np.arange(len(tr)), config.seed)
    return Trainer(config, model, tokenizer, TrainData(tr, ev, pr), sampler, out, reporter, tensorboard=True), model


def test_training_lowers_the_held_out_loss_and_writes_metrics(tiny_dir, tmp_path):
    from sftforge.storage import read_metrics

    trainer, _ = _trainer(tiny_dir, tmp_path, cfg(tiny_dir, steps=16), sums(40), sums(8, start=100))
    outcome = trainer.run()
    (s0, first), (s_end, last) = outcome.eval_curve[0], outcome.eval_curve[-1]
    assert (s0, s_end) == (0, 16) and last < 0.7 * first
    rows = read_metrics(tmp_path / "metrics.jsonl")
    train_rows = [r for r in rows if r["kind"] == "train"]
    assert [r["step"] for r in train_rows] == list(range(1, 17))
    assert [r["step"] for r in rows if r["kind"] == "eval"] == [0, 4, 8, 12, 16]
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_mixed_precision_computes_in_bf16_and_keeps_fp32_weights(tiny_dir, tmp_path):
    import torch

    config = cfg(tiny_dir, steps=8, dtype="mixed")
    trainer, model = _trainer(tiny_dir, tmp_path / "mixed", config, sums(40), sums(8, start=100))
    products: set[torch.dtype] = set()
    linear = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
    linear.register_forward_hook(lambda module, inputs, output: products.add(output.dtype))
    outcome = trainer.run()
    assert products == {torch.bfloat16}  # training steps and evaluations alike
    assert {p.dtype for p in model.parameters()} == {torch.float32}  # the optimizer updates fp32 weights
    first, last = outcome.eval_curve[0][1], outcome.eval_curve[-1][1]
    assert last < 0.8 * first
    plain, _ = _trainer(tiny_dir, tmp_path / "fp32", cfg(tiny_dir, steps=8), sums(40), sums(8, start=100))
    assert first == pytest.approx(plain.evaluate(), rel=0.01)  # the same model, its products rounded to bf16


class StopAt:
    """A progress reporter that interrupts training after `step` steps, like Ctrl-C would."""

    def __init__(self, step: int) -> None:
        self.step, self.seen = step, 0

    def task(self, description, total):
        return None

    def advance(self, handle, n=1, **fields):
        self.seen += n
        if self.seen >= self.step and fields:
            raise KeyboardInterrupt

    def done(self, handle):
        pass


@pytest.mark.parametrize("method", ["full", "lora"])
def test_an_interrupted_run_resumes_to_the_same_result(tiny_dir, tmp_path, method):
    from sftforge.storage import read_metrics
    from sftforge.train.loop import latest_checkpoint

    config = cfg(tiny_dir, method=method, steps=10, save_every=3, eval_every=5, learning_rate=1e-2)
    data = (sums(24), sums(6, start=100))
    whole, _ = _trainer(tiny_dir, tmp_path / "whole", config, *data)
    expected = whole.run()

    first, _ = _trainer(tiny_dir, tmp_path / "cut", config, *data, reporter=StopAt(7))
    with pytest.raises(KeyboardInterrupt):
        first.run()
    ckpt = latest_checkpoint(tmp_path / "cut")
    assert ckpt is not None and ckpt.name == "step-000006"
    adapter = ckpt / "weights" if method == "lora" else None
    resumed_cfg = config if method == "lora" else config.model_copy(update={"model": str(ckpt / "weights")})
    second, _ = _trainer(tiny_dir, tmp_path / "cut", resumed_cfg, *data, adapter=adapter)
    outcome = second.run(resume_from=ckpt)
    assert outcome.resumed_from == 6
    assert [s for s, _ in outcome.eval_curve] == [s for s, _ in expected.eval_curve]
    np.testing.assert_allclose([v for _, v in outcome.eval_curve], [v for _, v in expected.eval_curve], rtol=1e-4)
    cut_rows = [r for r in read_metrics(tmp_path / "cut" / "metrics.jsonl") if r["kind"] == "train"]
    assert [r["step"] for r in cut_rows] == list(range(1, 11))  # rows after the checkpoint were redone, not doubled


def test_bandit_learns_to_prefer_the_arm_that_lowers_the_probe_loss(tiny_dir, tmp_path):
    from sftforge.select.bandit import Exp3S, RewardScaler
    from sftforge.train.samplers import BanditSampler

    train = sums(24) + noise(24)
    config = cfg(tiny_dir, steps=30, eval_every=10, save_every=30, learning_rate=5e-3)
    members = [np.arange(24), np.arange(24, 48)]
    sampler = BanditSampler(
        Exp3S(2, eta=0.3, epsilon=0.05), members, 0, "target_prediction_gain", RewardScaler(window=50)
    )
    trainer, _ = _trainer(
        tiny_dir, tmp_path, config, train, sums(6, start=100), sampler=sampler, probe=sums(6, start=200)
    )
    outcome = trainer.run()
    p_sums, p_noise = outcome.probabilities
    assert p_sums > 0.6 > p_noise
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    probs = [r["probabilities"][0] for r in rows if r["kind"] == "train"]
    assert len(probs) == 30 and probs[0] < 0.55 < probs[-1]  # it moved towards the learnable arm while training
    assert {r["arm"] for r in rows if r["kind"] == "train"} == {0, 1}  # and kept exploring the other


def test_gradient_alignment_rewards_the_arm_whose_gradient_points_at_the_probe(tiny_dir, tmp_path):
    from sftforge.select.bandit import Exp3S, RewardScaler
    from sftforge.train.samplers import BanditSampler

    train = sums(24) + noise(24)
    config = cfg(tiny_dir, steps=20, eval_every=10, save_every=20, learning_rate=5e-3)
    members = [np.arange(24), np.arange(24, 48)]
    sampler = BanditSampler(
        Exp3S(2, eta=0.3, epsilon=0.05), members, 0, "gradient_alignment", RewardScaler(window=50, detrend=0)
    )
    assert sampler.needs_alignment and not sampler.needs_probe
    trainer, _ = _trainer(
        tiny_dir, tmp_path, config, train, sums(6, start=100), sampler=sampler, probe=sums(6, start=200)
    )
    outcome = trainer.run()
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines() if '"train"' in x]
    by_arm = {a: [r["alignment"] for r in rows if r["arm"] == a] for a in (0, 1)}
    assert by_arm[0] and by_arm[1] and all(-1.0 <= v <= 1.0 for v in by_arm[0] + by_arm[1])
    assert np.mean(by_arm[0]) > np.mean(by_arm[1])  # same pattern as the probe: aligned gradients
    assert outcome.probabilities[0] > outcome.probabilities[1]


@pytest.mark.parametrize("method", ["lora", "full"])
def test_each_example_s_alignment_from_the_batch_pass_equals_one_backward_per_example(tiny_dir, tmp_path, method):
    """The per-example cosines read off the batch's backward pass (train/alignment.py) against the plain way: a
    separate backward pass per example, its whole gradient compared with the probe's."""
    import torch

    from sftforge.train.alignment import ExampleAlignment, linear_layers

    trainer, model = _trainer(
        tiny_dir, tmp_path, cfg(tiny_dir, method=method), sums(3) + noise(2), sums(2, start=50), probe=sums(2, start=80)
    )
    trainer.example_alignment = ExampleAlignment(model)
    batch = trainer.data.train
    layers = linear_layers(model)

    def weight_gradient() -> torch.Tensor:
        return torch.cat([m.weight.grad.flatten() for m in layers])

    trainer._backward(trainer.probe_content)
    probe = weight_gradient()
    expected = []
    for example in batch:
        trainer._backward([example])
        expected.append(float(torch.nn.functional.cosine_similarity(weight_gradient(), probe, dim=0)))
    whole_loss, whole_tokens, _ = trainer._backward(batch)
    whole = trainer._gradient()

    trainer._refresh_probe_gradient()
    with trainer.example_alignment.measuring(len(batch)):
        loss, tokens, losses = trainer._backward(batch, trainer.example_alignment)
    measured = trainer.example_alignment.cosines()
    assert np.allclose(measured, expected, atol=1e-4)
    assert (loss, tokens) == (pytest.approx(whole_loss, rel=1e-6), whole_tokens)
    assert np.allclose(trainer._gradient().numpy(), whole.numpy(), atol=1e-7)  # measuring leaves the gradient alone
    assert len(losses) == 5 and np.mean(measured[:3]) > np.mean(measured[3:])  # sums share the probe's pattern


def test_leaving_examples_out_gives_the_gradient_of_a_step_on_the_rest_alone(tiny_dir, tmp_path):
    from sftforge.train.alignment import ExampleAlignment

    trainer, model = _trainer(
        tiny_dir, tmp_path, cfg(tiny_dir, method="lora"), sums(3) + noise(2), sums(2, start=50), probe=sums(2, start=80)
    )
    trainer.example_alignment = aligner = ExampleAlignment(model, keep=True)
    batch = trainer.data.train
    trainer._refresh_probe_gradient()
    with aligner.measuring(len(batch)):
        trainer._backward(batch, aligner)
    keep = [True, False, True, True, False]
    kept = [e for e, k in zip(batch, keep) if k]
    aligner.leave_out(keep, sum(e.target_tokens for e in batch) / sum(e.target_tokens for e in kept))
    left = trainer._gradient()
    trainer._backward(kept)  # the plain way: a step on the kept examples only
    assert np.allclose(left.numpy(), trainer._gradient().numpy(), rtol=1e-4, atol=1e-7)


def test_drop_below_takes_the_examples_pointing_away_from_the_probe_out_of_their_step(tiny_dir, tmp_path):
    from sftforge.select.bandit import Exp3S, RewardScaler
    from sftforge.train.samplers import BanditSampler

    def bandit() -> BanditSampler:
        return BanditSampler(
            Exp3S(2, eta=0.3),
            [np.arange(12), np.arange(12, 24)],
            0,
            "gradient_alignment",
            RewardScaler(),
            "mixed",
            probe_every=2,
            drop_below=0.0,
        )

    config = cfg(tiny_dir, method="lora", steps=6, save_every=100, learning_rate=5e-3)
    trainer, _ = _trainer(tiny_dir, tmp_path, config, sums(12) + noise(12), sums(4, 100), bandit(), sums(4, 200))
    trainer.run()
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines() if '"train"' in x]
    left_out = sum(r["left_out"] for r in rows)
    assert left_out == len(trainer.sampler.dropped()) > 0  # each example left out is also dropped
    dropped = trainer.sampler.dropped()
    assert (dropped >= 12).mean() > 0.5, dropped  # mostly noise: it points away from the sums
    with pytest.raises(TrainingError, match="drop_below"):
        _trainer(tiny_dir, tmp_path / "full", cfg(tiny_dir), sums(12) + noise(12), sums(4, 100), bandit(), sums(4, 200))


def test_top_layers_adapts_only_the_last_transformer_layers(tiny_dir):
    from sftforge.config import LoRA
    from sftforge.train.model import load_trainable

    model, _, _ = load_trainable(cfg(tiny_dir, method="lora", lora=LoRA(top_layers=1)), None)
    total = model.config.num_hidden_layers
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trained and all(f"layers.{total - 1}." in n for n in trained)
    everywhere, _, _ = load_trainable(cfg(tiny_dir, method="lora"), None)
    assert any("layers.0." in n for n, p in everywhere.named_parameters() if p.requires_grad)


@pytest.mark.parametrize("method", ["lora", "full"])
def test_the_output_head_on_answer_positions_only_gives_the_model_s_own_loss(tiny_dir, method):
    """Training and held-out losses put only the scored positions through the output head; the loss and its
    gradient must be those of the model's full logits."""
    import torch

    from sftforge.train import model as train_model
    from sftforge.train.model import batch_loss, load_trainable

    model, tokenizer, _ = load_trainable(cfg(tiny_dir, method=method), None)
    examples, _ = encode_all(tokenizer, sums(3) + noise(2), 64)
    results = []
    lm = train_model._causal_lm(model)  # the check is cached per transformers model (inside a peft wrapper)
    for fast in (True, False):
        train_model._FAST_HEAD[lm] = fast
        model.zero_grad(set_to_none=True)
        loss, tokens, each = batch_loss(model, examples, tokenizer.pad_token_id)
        loss.backward()
        grad = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        results.append((loss.item(), tokens, each, grad))
    (fast_loss, fast_tokens, fast_each, fast_grad), (loss, tokens, each, grad) = results
    assert fast_tokens == tokens and fast_loss == pytest.approx(loss, rel=1e-5)
    assert np.allclose(fast_each, each, rtol=1e-5) and torch.allclose(fast_grad, grad, rtol=1e-4, atol=1e-6)
    del train_model._FAST_HEAD[lm]
    assert train_model._fast_head(model)  # a plain linear head: the check finds the shortcut exact


def test_the_output_head_shortcut_is_refused_where_the_model_rescales_its_logits(tiny_dir):
    import torch

    from sftforge.lib.token_loss import fast_head_matches
    from sftforge.train.model import load_trainable

    model, _, _ = load_trainable(cfg(tiny_dir, method="full"), None)
    ids = torch.arange(3, 19, dtype=torch.int64)[None, :]
    assert fast_head_matches(model, ids)

    def rescale(module, inputs, out):
        out.logits.mul_(2.0)

    handle = model.register_forward_hook(rescale)
    try:  # as with logit scaling or soft-capping: the head's output is not the model's logits
        assert not fast_head_matches(model, ids)
    finally:
        handle.remove()
    assert model.training  # the check ran in evaluation mode and put the model back as it was


def test_the_probe_gradient_is_recomputed_every_probe_every_steps(tiny_dir, tmp_path):
    from sftforge.select.bandit import Exp3S, RewardScaler
    from sftforge.train.samplers import BanditSampler

    sampler = BanditSampler(
        Exp3S(2, eta=0.3),
        [np.arange(6), np.arange(6, 12)],
        0,
        "gradient_alignment",
        RewardScaler(),
        "mixed",
        probe_every=3,
    )
    trainer, _ = _trainer(
        tiny_dir,
        tmp_path,
        cfg(tiny_dir, steps=7, save_every=100),
        sums(6) + noise(6),
        sums(2, 50),
        sampler,
        sums(2, 80),
    )
    refreshed = []
    refresh = trainer._refresh_probe_gradient
    trainer._refresh_probe_gradient = lambda: (refreshed.append(trainer.step), refresh())
    trainer.run()
    assert refreshed == [0, 3, 6] and trainer.probe_grad_step == 6


def test_a_mixed_batch_bandit_learns_from_each_example(tiny_dir, tmp_path):
    from sftforge.select.bandit import Exp3S, RewardScaler
    from sftforge.train.samplers import BanditSampler

    train = sums(24) + noise(24)
    config = cfg(tiny_dir, steps=10, eval_every=10, save_every=10, learning_rate=5e-3)
    members = [np.arange(24), np.arange(24, 48)]
    sampler = BanditSampler(
        Exp3S(2, eta=0.3, epsilon=0.05), members, 0, "gradient_alignment", RewardScaler(window=50), batches="mixed"
    )
    trainer, _ = _trainer(
        tiny_dir, tmp_path, config, train, sums(6, start=100), sampler=sampler, probe=sums(6, start=200)
    )
    outcome = trainer.run()
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines() if '"train"' in x]
    assert all(len(r["arms"]) == 4 and [a for a, _ in r["pulls"]] == r["arms"] for r in rows)
    assert any(len(set(r["arms"])) == 2 for r in rows)  # batches that span both arms
    rewards = {a: [v for r in rows for b, v in r["pulls"] if b == a] for a in (0, 1)}
    assert np.mean(rewards[0]) > np.mean(rewards[1])
    assert outcome.probabilities[0] > 0.6


def test_merged_model_gives_the_adapted_model_s_logits(tiny_dir, tmp_path):
    import torch

    from sftforge.llm.hf import load_causal_lm
    from sftforge.train.model import merge_adapter, save_weights

    config = cfg(tiny_dir, method="lora", steps=3, learning_rate=5e-2)
    trainer, model = _trainer(tiny_dir, tmp_path / "run", config, sums(12), sums(4, start=50))
    trainer.run()
    save_weights(model, trainer.tokenizer, tmp_path / "adapter")
    merged_dir = merge_adapter(Path(tiny_dir), tmp_path / "adapter", tmp_path / "merged")
    merged, tokenizer = load_causal_lm(merged_dir, torch.float32)
    ids = tokenizer("What is 3 plus 3?", return_tensors="pt")["input_ids"]
    model.eval()
    with torch.no_grad():
        a = model(input_ids=ids).logits
        b = merged(input_ids=ids).logits
        base, _ = load_causal_lm(Path(tiny_dir), torch.float32)
        c = base(input_ids=ids).logits
    assert torch.allclose(a, b, atol=1e-4)
    assert not torch.allclose(a, c, atol=1e-3)  # the adapter did change the model


# -- the stages ---------------------------------------------------------------------------------------------------


def _run_with_clean_records(tmp_path: Path, recipe_text: str, records: list[Record]):
    from sftforge.recipe import load_recipe_text
    from sftforge.run import RunDir
    from sftforge.stages import Context

    recipe = load_recipe_text(recipe_text, base_dir=tmp_path)
    run = RunDir.create(tmp_path / "run", recipe_text, "t", tmp_path)
    for stage in ("sources", "generate", "features", "clean"):
        log = run.begin(stage, "fp")
        if stage == "clean":
            log.commit(records, [], ["k"])
        run.finish(stage, {"records": len(records)}, 0.0)
    return Context(run=run, recipe=recipe)


HEAD = "name: t\ntask: {type: qa, qa_mode: extractive, description: sums}\nsources: {documents: [{path: x.txt}]}\n"


@pytest.mark.parametrize(
    "bandit",
    [
        "prior: size, within_arm: score",
        "prior: score, drop_below: 0, probe_every: 3, within_arm: score",
        "prior: score, within_arm: deita",
    ],
    ids=["size", "score-drop", "deita"],
)
def test_bandit_selection_trains_evaluates_and_exports_the_budget(tiny_dir, tmp_path, bandit):
    from sftforge.stages import run_stage, stages_for

    text = HEAD + (
        "selection:\n  strategy: exp3s\n  arms: {by: source}\n  budget: {records: 20}\n  eval_fraction: 0.1\n"
        "  probe_size: 4\n  score: ifd\n"
        f"  bandit: {{eta: 0.3, reward: gradient_alignment, batches: mixed, {bandit}}}\n"
        f"training: {{model: '{tiny_dir}', method: lora, steps: 12, batch_size: 4, learning_rate: 0.01, "
        "eval_every: 6, save_every: 6, max_seq_len: 64, threads: 2}\n"
        "evaluation: {max_examples: 3, max_new_tokens: 8}\noutput: {formats: [openai]}\n"
    )
    records = sums(30) + noise(30)
    for i, r in enumerate(records):  # IFD below 1 for the sums (best first within their arm), above for the noise
        r.features["ifd"] = 0.3 + 0.01 * i if r.id.startswith("s") else 1.2
    ctx = _run_with_clean_records(tmp_path, text, records)
    vectors = np.random.default_rng(0).normal(size=(len(records), 32))
    vectors[10:20] = vectors[:10] + 0.01  # sums 10-19 repeat sums 0-9
    write_vectors(ctx.run, "embedding", "part-00000", [r.id for r in records], vectors)
    assert [s.name for s in stages_for(ctx.recipe)][-4:] == ["select", "train", "evaluate", "export"]
    for stage in ("select", "train", "evaluate", "export"):
        assert run_stage(ctx, stage)
    run = ctx.run
    sel = run.stage_info("select").extra
    assert sel["splits"] == {"train": 50, "eval": 6, "probe": 4}
    assert sorted(a["name"] for a in sel["arms"]) == ["noise", "sums"]
    kept = run.read_records("train")
    assert len(kept) == 20
    arms = json.loads((run.stage_dir("train") / "arms.json").read_text())
    assert sum(a["chosen"] for a in arms) == 20 and sum(a["records"] for a in arms) == 50
    assert all(np.isfinite(a["value"]) and 0 < a["probability"] < 1 for a in arms)
    rows = [
        json.loads(x) for x in (run.stage_dir("train") / "metrics.jsonl").read_text().splitlines() if '"train"' in x
    ]
    assert all(len(r["arms"]) == 4 and len(r["pulls"]) == 4 for r in rows)  # mixed batches, a reward per example
    if "prior: score" in bandit:  # the noise arm (IFD above 1: no valid score) starts nearly unplayed
        first = rows[0]["probabilities"]
        noise_arm = sorted(a["name"] for a in sel["arms"]).index("noise")
        assert first[noise_arm] < 0.1
    if "drop_below" in bandit:
        figures = run.stage_info("train").extra
        assert figures["dropped"] == sum(r["left_out"] for r in rows)
    reasons = {r["reject_reason"] for r in run.read_table("train", rejected=True).to_pylist()}
    assert all(x.startswith("not chosen within the budget") for x in reasons)
    held = {r["reject_reason"] for r in run.read_table("select", rejected=True).to_pylist()}
    assert held == {"held out for evaluation (eval split)", "held out as the bandit's probe set"}
    assert (run.stage_dir("train") / "adapter" / "adapter_config.json").exists()

    results = json.loads((run.stage_dir("evaluate") / "results.json").read_text())
    base, tuned = results["heldout"]["base"], results["heldout"]["tuned"]
    assert base["examples"] == tuned["examples"] == 6 and base["generated"] == 3
    assert tuned["loss"] < base["loss"] and set(base) >= {"perplexity", "exact_match", "token_f1", "rouge_l"}
    answers = [json.loads(x) for x in (run.stage_dir("evaluate") / "answers.jsonl").read_text().splitlines()]
    assert len(answers) == 6 and {a["model"] for a in answers} == {"base", "tuned"}

    exported = (run.stage_dir("export") / "openai.jsonl").read_text().splitlines()
    assert len(exported) == 20
    card = (run.stage_dir("export") / "README.md").read_text()
    assert "## Selection and fine-tuning" in card and "`exp3s`, budget 20 records" in card
    assert "| train | 50 | 20 | 30 |" in card  # the funnel: the bandit's budgeted choice
    assert ("Dropped by the bandit" in card) == ("drop_below" in bandit)
    assert f"| heldout | loss | {base['loss']:.4g} | {tuned['loss']:.4g} |" in card
    assert not run_stage(ctx, "train")  # up to date: not retrained
    if "deita" in bandit:  # of each repeated pair in the pool, one is not in its arm's queue: never drawn
        state = json.loads((latest_checkpoint(run.stage_dir("train")) / "state.json").read_text())
        held = {row["id"] for row in run.read_table("select", rejected=True).to_pylist()}
        pool = [r.id for r in records if r.id not in held]
        pairs = sum(f"s{i}" in pool and f"s{i + 10}" in pool for i in range(10))
        sums_in, noise_in = sum(x.startswith("s") for x in pool), sum(x.startswith("n") for x in pool)
        assert pairs > 0
        queued = sorted(len(q["counts"]) for q in state["sampler"]["queues"])
        assert queued == sorted([sums_in - pairs, noise_in])


def test_ranking_an_arm_by_a_score_no_record_has_is_a_clear_error(tiny_dir, tmp_path):
    from sftforge.errors import StageError
    from sftforge.stages import run_stage

    text = HEAD + (
        "selection:\n  strategy: exp3s\n  arms: {by: source}\n  probe_size: 2\n  bandit: {within_arm: score}\n"
        f"training: {{model: '{tiny_dir}', method: lora, steps: 2, max_seq_len: 64, threads: 2}}\n"
    )
    ctx = _run_with_clean_records(tmp_path, text, sums(10) + noise(10))
    assert run_stage(ctx, "select")
    with pytest.raises(StageError, match="within_arm: score / prior: uniform rank records by the ifd feature"):
        run_stage(ctx, "train")


def test_static_ifd_selection_exports_the_best_records_without_training(tmp_path):
    from sftforge.stages import run_stage, stages_for

    records = sums(20)
    for i, r in enumerate(records):
        r.features["ifd"] = 1.5 if i == 0 else i / 20  # record 0 has IFD >= 1: its prompt does not help
    text = (
        HEAD + "selection: {strategy: ifd_topk, budget: {records: 5}, eval_fraction: 0}\noutput: {formats: [openai]}\n"
    )
    ctx = _run_with_clean_records(tmp_path, text, records)
    assert [s.name for s in stages_for(ctx.recipe)][-2:] == ["select", "export"]
    run_stage(ctx, "select")
    run_stage(ctx, "export")
    assert sorted(r.id for r in ctx.run.read_records("select")) == ["s15", "s16", "s17", "s18", "s19"]
    assert len((ctx.run.stage_dir("export") / "openai.jsonl").read_text().splitlines()) == 5
    assert {r["reject_operator"] for r in ctx.run.read_table("select", rejected=True).to_pylist()} == {"ifd_topk"}


def test_a_record_left_out_for_want_of_a_score_says_why(tmp_path):
    """The reason a record gives for being left out names what unscored it: IFD >= 1, or an answer cut off (the
    end-of-turn gate), rather than a bare "not chosen" a user cannot act on."""
    from sftforge.stages import run_stage

    records = sums(20)
    for i, r in enumerate(records):
        r.features["ifd"] = 1.5 if i == 0 else i / 20
        r.features["end_loss"] = 15.0 if i == 19 else 1.0  # the best IFD, but its answer stops mid-sentence
    text = HEAD + (
        "features:\n  - name: end_loss\n"
        "selection: {strategy: ifd_topk, budget: {records: 5}, eval_fraction: 0, max_end_loss: 8}\n"
    )
    ctx = _run_with_clean_records(tmp_path, text, records)
    run_stage(ctx, "select")
    assert sorted(r.id for r in ctx.run.read_records("select")) == ["s14", "s15", "s16", "s17", "s18"]
    why = {r["id"]: r["reject_reason"] for r in ctx.run.read_table("select", rejected=True).to_pylist()}
    assert why["s19"] == (
        "not chosen by ifd_topk within the budget; unscored: end-of-turn loss 15.0 > selection.max_end_loss 8: "
        "the answer looks cut off"
    )
    assert why["s0"].endswith("; unscored: ifd 1.50 >= 1: the question does not help predict the answer")
    assert why["s5"] == "not chosen by ifd_topk within the budget"


def test_a_bandit_without_training_is_a_recipe_error():
    from sftforge.errors import RecipeError
    from sftforge.recipe import load_recipe_text

    with pytest.raises(RecipeError, match="training"):
        load_recipe_text(HEAD + "selection: {strategy: exp3s}\n")


def test_mixed_batches_with_a_whole_batch_reward_is_a_recipe_error_at_its_line():
    from sftforge.errors import RecipeError
    from sftforge.recipe import load_recipe_text

    text = HEAD + "training: {model: bundled}\nselection:\n  strategy: exp3s\n  bandit:\n    batches: mixed\n"
    with pytest.raises(RecipeError, match=r"line 8.*prediction_gain or gradient_alignment"):
        load_recipe_text(text)
    recipe = load_recipe_text(text + "    reward: gradient_alignment\n")
    assert recipe.selection.bandit.batches == "mixed"


def test_gradient_accumulation_matches_one_big_batch(tiny_dir, tmp_path):
    import torch

    weights = []
    for batch, accum in ((4, 1), (2, 2)):
        config = cfg(tiny_dir, steps=1, batch_size=batch, grad_accum=accum, eval_every=100, save_every=100)
        trainer, model = _trainer(tiny_dir, tmp_path / f"b{batch}", config, sums(8), sums(2, start=50))
        trainer.run()
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.allclose(weights[0], weights[1], atol=1e-6)


def test_evaluation_computes_as_training_did(tiny_dir, tmp_path, monkeypatch):
    """With `training.dtype: mixed` the evaluate stage's losses and answers come from bf16 products too (the model
    as it was trained, and faster); with float32 they do not."""
    import torch

    import sftforge.stages.evaluate as evaluate_stage
    from sftforge.stages import run_stage

    seen: dict[str, set[torch.dtype]] = {}
    real = evaluate_stage.loss_metrics

    def watched(model, *args):  # the real computation, with a note of the dtype its first linear layer produced
        linear = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
        hook = linear.register_forward_hook(lambda m, i, out: seen[dtype].add(out.dtype))
        try:
            return real(model, *args)
        finally:
            hook.remove()

    monkeypatch.setattr(evaluate_stage, "loss_metrics", watched)
    losses = {}
    for dtype in ("float32", "mixed"):
        seen[dtype] = set()
        text = HEAD + (
            "selection: {strategy: uniform, budget: {records: 8}, eval_fraction: 0.2}\n"
            f"training: {{model: '{tiny_dir}', method: lora, steps: 2, batch_size: 4, eval_every: 2, "
            f"save_every: 2, max_seq_len: 64, threads: 2, dtype: {dtype}}}\n"
            "evaluation: {generate: false}\noutput: {formats: [openai]}\n"
        )
        ctx = _run_with_clean_records(tmp_path / dtype, text, sums(20))
        for stage in ("select", "train", "evaluate"):
            assert run_stage(ctx, stage)
        losses[dtype] = json.loads((ctx.run.stage_dir("evaluate") / "results.json").read_text())["heldout"]
    assert seen == {"float32": {torch.float32}, "mixed": {torch.bfloat16}}
    for model in ("base", "tuned"):  # the same weights, the products rounded
        assert losses["mixed"][model]["loss"] == pytest.approx(losses["float32"][model]["loss"], rel=0.05)


def test_evaluation_files_are_read_and_bad_lines_named(tmp_path):
    from sftforge.errors import SourceError
    from sftforge.train.evaluate import load_eval_file

    good = tmp_path / "good.jsonl"
    good.write_text(
        json.dumps(
            {"messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}], "task": "qa"}
        )
        + "\n\n"
    )
    (record,) = load_eval_file(good)
    assert record.task == "qa" and record.messages[-1]["content"] == "A." and record.id
    bad = tmp_path / "bad.jsonl"
    bad.write_text(good.read_text() + '{"messages": [{"role": "user", "content": "no answer"}]}\n')
    with pytest.raises(SourceError, match=r"bad\.jsonl, line 3: needs `messages`.*assistant turn"):
        load_eval_file(bad)
    bad.write_text("{not json\n")
    with pytest.raises(SourceError, match=r"bad\.jsonl, line 1: not valid JSON"):
        load_eval_file(bad)


def test_content_only_drops_special_tokens_from_the_labels():
    from sftforge.train.data import Example, content_only

    examples = [Example("a", [1, 2, 3, 9], [IGNORE, 2, 3, 9]), Example("b", [1, 9], [IGNORE, 9])]
    kept = content_only(examples, {9})
    assert [e.record_id for e in kept] == ["a"]  # "b" answered with its end-of-turn token only
    assert kept[0].labels == [IGNORE, 2, 3, IGNORE] and kept[0].input_ids == [1, 2, 3, 9]
    assert examples[0].labels == [IGNORE, 2, 3, 9]  # the training examples keep their end-of-turn labels
