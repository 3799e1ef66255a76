"""Model-backed features (perplexity, IFD, end-of-turn loss, LLM judge), the sentence embedder and semantic dedup.

The arithmetic is checked on a tiny random model built on the bundled tokenizer (weights do not matter there);
whether the numbers mean anything is checked on the real bundled model (slow) and the real MiniLM.
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pytest

import sftforge.ops.embedding
import sftforge.ops.model_features
import sftforge.ops.semantic  # noqa: F401  (register the operators)
from sftforge.sample import Record

from conftest import SHARED


def rec(*turns: tuple[str, str], rid: str = "r") -> Record:
    return Record(id=rid, messages=[{"role": r, "content": c} for r, c in turns], task="qa", lang="en")


RECORDS = [
    rec(("user", "What is two plus two?"), ("assistant", "Four.")),
    rec(("user", "Name a colour."), ("assistant", "Blue, or perhaps a deep green like a pine forest in winter.")),
    rec(("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello there, friend!")),
    rec(
        ("user", "What is the capital of France?"),
        ("assistant", "Paris."),
        ("user", "And of Italy?"),
        ("assistant", "Rome is the capital of Italy."),
    ),
]


def ops(tiny_dir: Path, **kw):
    from sftforge.ops.model_features import IFD, IFDConfig, LLMJudge, LLMJudgeConfig, Perplexity, PerplexityConfig

    m = {"model": str(tiny_dir), "batch_size": 3, **kw}
    return Perplexity(PerplexityConfig(**m)), IFD(IFDConfig(**m)), LLMJudge(LLMJudgeConfig(**m))


def manual_losses(model, context: list[int], target: list[int]) -> list[float]:
    import torch

    ids = torch.tensor([context + target])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].float()
    return [-torch.log_softmax(logits[len(context) + j - 1], -1)[t].item() for j, t in enumerate(target)]


def test_perplexity_is_exp_of_the_mean_response_loss(tiny_dir: Path):
    perplexity, _, _ = ops(tiny_dir)
    llm = perplexity.shared.llm
    pairs = [
        (r.messages[: max(i for i, m in enumerate(r.messages) if m["role"] == "assistant")], r.messages[-1]["content"])
        for r in RECORDS
    ]
    expected = [math.exp(s.mean_loss) for s in llm.score(pairs)]
    assert perplexity.score_batch(RECORDS) == pytest.approx(expected, rel=1e-4)
    assert perplexity.feature_name.startswith("perplexity_tiny_llm")  # a non-default model is part of the name


def test_text_perplexity_scores_the_plain_conversation(tiny_dir: Path):
    from sftforge.ops.model_features import Perplexity, PerplexityConfig

    op = Perplexity(PerplexityConfig(model=str(tiny_dir), of="text"))
    assert op.feature_name.startswith("perplexity_text")
    tok, model = op.shared.llm.tokenizer, op.shared.llm.model
    r = RECORDS[1]
    ids = tok(r.text_of("all"), add_special_tokens=False)["input_ids"]  # SmolLM2's tokenizer adds no BOS
    expected = math.exp(float(np.mean(manual_losses(model, ids[:1], ids[1:]))))
    assert op.score(r) == pytest.approx(expected, rel=1e-4)


def test_ifd_is_the_ratio_of_conditioned_to_direct_mean_answer_loss(tiny_dir: Path):
    _, ifd, _ = ops(tiny_dir)
    llm = ifd.shared.llm
    tok = llm.tokenizer
    header = tok("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"]
    assert ifd.shared.header == header  # "no instruction" = the bare assistant header, no system prompt
    got = ifd.score_batch(RECORDS)
    for r, value in zip(RECORDS, got):
        last = max(i for i, m in enumerate(r.messages) if m["role"] == "assistant")
        answer = r.messages[last]["content"]
        conditioned = llm.score([(r.messages[:last], answer)])[0].mean_loss
        direct = float(np.mean(manual_losses(llm.model, header, tok(answer, add_special_tokens=False)["input_ids"])))
        assert value == pytest.approx(conditioned / direct, rel=1e-4)
    assert ifd.feature_name.startswith("ifd")


def test_judge_is_the_softmax_expectation_over_the_score_tokens(tiny_dir: Path):
    import torch

    _, _, judge = ops(tiny_dir)
    tok, model = judge.shared.llm.tokenizer, judge.shared.llm.model
    digits = [tok(str(k), add_special_tokens=False)["input_ids"] for k in range(1, 6)]
    assert all(len(d) == 1 for d in digits)
    prompts = judge.prompts(RECORDS)
    assert all(p is not None and p.endswith("Rating: ") and "#Response#" in p for p in prompts)
    got = judge.score_batch(RECORDS)
    for prompt, value in zip(prompts, got):
        ids = torch.tensor([tok(prompt, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0, -1].float()
        p = torch.softmax(logits[[d[0] for d in digits]], -1).numpy()
        assert 1.0 <= value <= 5.0
        assert value == pytest.approx(float((np.arange(1, 6) * p).sum()), rel=1e-4)


def test_batches_give_the_numbers_of_single_records(tiny_dir: Path):
    for op in ops(tiny_dir, max_tokens=64):
        op.shared.memo.clear()
        batched = op.score_batch(RECORDS)
        op.shared.memo.clear()  # recompute one by one rather than read back the batch's losses
        single = [op.score_batch([r])[0] for r in RECORDS]
        assert batched == pytest.approx(single, rel=1e-4), op.name
        assert len(set(np.round(batched, 6))) == len(RECORDS)  # not one constant


def test_truncation_scores_the_same_answer_tokens_with_and_without_the_instruction(tiny_dir: Path):
    perplexity, ifd, judge = ops(tiny_dir, max_tokens=40)
    long = rec(
        ("user", "Tell me about rivers. " * 20), ("assistant", "Rivers flow downhill into seas and lakes. " * 20)
    )
    conditioned, direct = ifd.sequences([long])
    (c_ctx, c_ans), (d_ctx, d_ans) = conditioned[0], direct[0]
    assert c_ans == d_ans and len(c_ctx) + len(c_ans) <= 40 and len(d_ctx) + len(d_ans) <= 40
    assert len(c_ans) >= 20  # the answer keeps at least half the budget
    for op in (perplexity, ifd, judge):
        assert math.isfinite(op.score(long))


def test_records_without_a_response_score_nan(tiny_dir: Path):
    no_answer = rec(("user", "Hello?"))
    empty = rec(("user", "Hello?"), ("assistant", ""))
    for op in ops(tiny_dir):
        values = op.score_batch([no_answer, RECORDS[0], empty])
        assert math.isnan(values[0]) and math.isfinite(values[1]) and math.isnan(values[2])
    bounded = type(op)(type(op.config)(model=str(tiny_dir), max=1e9))
    assert bounded.keep(1.0) and not bounded.keep(math.nan)


def test_one_model_is_loaded_for_all_features_and_not_pickled(tiny_dir: Path):
    from sftforge.ops.base import OPERATORS

    perplexity, ifd, judge = ops(tiny_dir)
    for op in (perplexity, ifd, judge):
        op.setup()
    assert perplexity.shared.llm is ifd.shared.llm is judge.shared.llm
    relative = type(ifd)(ifd.config.model_copy(update={"model": tiny_dir.name}), base_dir=tiny_dir.parent)
    assert relative.shared.llm is ifd.shared.llm  # a path relative to the recipe's folder names the same model
    clone = pickle.loads(pickle.dumps(ifd))
    assert clone._shared is None and len(pickle.dumps(ifd)) < 10_000
    assert clone.score(RECORDS[0]) == pytest.approx(ifd.score(RECORDS[0]), rel=1e-6)
    assert {"perplexity", "ifd", "llm_judge", "embedding", "semantic_dedup"} <= set(OPERATORS)


def test_judge_scale_must_be_single_tokens():
    from pydantic import ValidationError

    from sftforge.ops.model_features import LLMJudge, LLMJudgeConfig

    with pytest.raises(ValidationError):
        LLMJudgeConfig(scale=10)
    assert LLMJudge(LLMJudgeConfig(scale=6)).feature_name == "llm_judge_6"
    assert LLMJudge(LLMJudgeConfig()).feature_name == "llm_judge"
    from sftforge.ops.model_features import IFD, IFDConfig, Perplexity, PerplexityConfig

    assert Perplexity(PerplexityConfig()).feature_name == "perplexity"
    assert Perplexity(PerplexityConfig(of="text")).feature_name == "perplexity_text"
    assert IFD(IFDConfig()).feature_name == "ifd"


def test_next_token_logits_are_batch_invariant_under_left_padding(tiny_dir: Path):
    from sftforge.llm.hf import HFLLM

    llm = HFLLM(tiny_dir, dtype="float32", batch_size=3)
    prompts = ["Hello", "A much longer prompt, with several more tokens in it than the first.", "Mid length one"]
    cols = [33, 34, 35, 100, 2000]
    batched = llm.next_token_logits(prompts, cols)
    single = np.concatenate([llm.next_token_logits([p], cols) for p in prompts])
    assert batched.shape == (3, 5) and batched.dtype == np.float32
    np.testing.assert_allclose(batched, single, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_real_model_prefers_fluent_answers(bundled_dir: Path):
    from sftforge.ops.model_features import IFD, IFDConfig, LLMJudge, LLMJudgeConfig, Perplexity, PerplexityConfig

    q = "How do I reverse a list in Python?"
    fluent = "Call my_list.reverse() to reverse the list in place, or use my_list[::-1] to get a reversed copy."
    words = fluent.split()
    shuffled = " ".join(words[i] for i in np.random.default_rng(0).permutation(len(words)))
    records = [rec(("user", q), ("assistant", fluent)), rec(("user", q), ("assistant", shuffled))]
    good, bad = Perplexity(PerplexityConfig()).score_batch(records)
    assert good < bad / 3
    ifd = IFD(IFDConfig()).score_batch(records)
    assert all(math.isfinite(v) and v > 0 for v in ifd) and ifd[0] < 1.0
    assert all(1.0 <= v <= 5.0 for v in LLMJudge(LLMJudgeConfig()).score_batch(records))


def test_end_loss_is_the_loss_of_the_end_of_turn_token_after_the_answer(tiny_dir: Path):
    from sftforge.ops.model_features import EndLoss, EndLossConfig

    op = EndLoss(EndLossConfig(model=str(tiny_dir), max_tokens=40))
    tok, model = op.shared.llm.tokenizer, op.shared.llm.model
    assert tok.convert_ids_to_tokens(op.shared.end) == ["<|im_end|>"]
    r = RECORDS[0]
    prompt = op._prompt_ids(r.messages[:1])
    answer = tok("Four.", add_special_tokens=False)["input_ids"]
    expected = manual_losses(model, prompt, answer + op.shared.end)[-1]
    long = rec(("user", "Count."), ("assistant", " ".join(str(i) for i in range(60))))  # past max_tokens: cut
    scores = op.score_batch([r, long, rec(("user", "Hi"))])
    assert scores[0] == pytest.approx(expected, rel=1e-4)
    context, target = op.sequences([long])[0]
    assert target[-1] == op.shared.end[0] and len(context) + len(target) <= 40 and math.isfinite(scores[1])
    assert math.isnan(scores[2])  # no answer, no ending


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "corpus" / "xquad.en.json").exists(), reason="shared corpus not present")
def test_real_model_tells_cut_off_human_answers_from_whole_ones(bundled_dir: Path):
    """Human-written sentences (XQuAD paragraphs, as answers to their crowd-written questions), whole and cut after
    40% of their words as a token limit cuts them: the cut ones must score far higher."""
    import json

    from sftforge.lib.grounding import sentence_spans
    from sftforge.ops.model_features import EndLoss, EndLossConfig

    data = json.loads((SHARED / "corpus" / "xquad.en.json").read_text(encoding="utf-8"))
    whole, cut = [], []
    for article in data["data"][:12]:
        para = article["paragraphs"][0]
        qa = para["qas"][0]
        start = qa["answers"][0]["answer_start"]
        s, e = next((s, e) for s, e in sentence_spans(para["context"]) if s <= start < e)
        words = para["context"][s:e].split()
        user = f"Answer the question using the text.\n\nText:\n{para['context']}\n\nQuestion: {qa['question']}"
        whole.append(rec(("user", user), ("assistant", " ".join(words))))
        cut.append(rec(("user", user), ("assistant", " ".join(words[: max(2, int(0.4 * len(words)))]).rstrip(".,;:"))))
    op = EndLoss(EndLossConfig())
    w, c = np.array(op.score_batch(whole)), np.array(op.score_batch(cut))
    assert np.median(w) < 3.0 < 8.0 < np.median(c)
    assert (c[:, None] > w[None, :]).mean() > 0.95  # AUC: nearly every cut answer above every whole one


# --- embedder and semantic dedup -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def minilm():
    from sftforge.lib.embed import shared_embedder

    return shared_embedder()


def test_minilm_puts_paraphrases_closer_than_unrelated_sentences(minilm):
    texts = [
        "How do I reset my password?",
        "What are the steps to change a forgotten password?",
        "The river flooded the village after three days of rain.",
    ]
    v = minilm.encode(texts)
    assert v.shape == (3, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > 0.5 > v[0] @ v[2] + 0.3
    assert minilm.pooling == "mean" and minilm.max_length == 256


def test_embedder_matches_sentence_transformers(minilm):
    import sentence_transformers as st

    texts = ["a short one", "A rather longer sentence, so that this batch is padded."]
    reference = st.SentenceTransformer(str(minilm.directory), device="cpu").encode(texts, normalize_embeddings=True)
    np.testing.assert_allclose(minilm.encode(texts, batch_size=2), reference, atol=1e-5)


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def test_near_identical_vectors_are_deduplicated_and_distinct_ones_kept():
    from sftforge.lib.semdedup import semantic_duplicates

    rng = np.random.default_rng(1)
    base = rng.normal(size=(200, 384)).astype(np.float32)
    copies = rng.choice(200, size=20, replace=False)
    emb = np.concatenate([base, base[copies] + 0.01 * rng.normal(size=(20, 384)).astype(np.float32)])
    d = semantic_duplicates(emb, threshold=0.95, seed=0)
    assert d.survivor[:200].tolist() == list(range(200))
    assert d.survivor[200:].tolist() == copies.tolist()
    assert (d.similarity[200:] > 0.99).all() and (d.similarity[:200] == 1.0).all()


def test_keep_policies_pick_the_expected_survivor():
    from sftforge.lib.semdedup import semantic_duplicates

    e = np.eye(8, dtype=np.float32)
    group = [unit(e[0] + 0.25 * e[1]), unit(e[0]), unit(e[0] + 0.3 * e[2])]  # pairwise cosine 0.93-0.97
    emb = np.stack([*group, e[3], e[4]])
    # one cluster; to the centroid, e0 (row 1) is closest and e0 + 0.3 e2 (row 2) farthest
    expected = {"first": 0, "central": 1, "outlier": 2}
    for keep, survivor in expected.items():
        d = semantic_duplicates(emb, threshold=0.9, clusters=1, keep=keep)
        assert d.survivor.tolist() == [survivor] * 3 + [3, 4], keep
    assert semantic_duplicates(emb, threshold=0.99, clusters=1).survivor.tolist() == [0, 1, 2, 3, 4]


def test_blockwise_dedup_equals_a_brute_force_greedy(monkeypatch):
    from sftforge.lib import semdedup as semantic

    monkeypatch.setattr(semantic, "_BLOCK", 7)
    monkeypatch.setattr(semantic, "_KEPT_CHUNK", 5)
    rng = np.random.default_rng(2)
    centres = rng.normal(size=(6, 16))
    emb = np.stack([unit(centres[i % 6] + 0.35 * rng.normal(size=16)) for i in range(90)])
    d = semantic.semantic_duplicates(emb, threshold=0.9, clusters=1)
    kept: list[int] = []
    survivor = list(range(len(emb)))
    for i in range(len(emb)):
        if kept:
            sims = emb[kept] @ emb[i]
            if sims.max() >= 0.9:
                survivor[i] = kept[int(sims.argmax())]
                continue
        kept.append(i)
    assert d.survivor.tolist() == survivor
    assert 10 < len(d.clusters()) and sum(map(len, d.clusters().values())) > 20


def test_semantic_dedup_operator_with_minilm(tmp_path: Path, minilm):
    from sftforge.ops.base import build
    from sftforge.ops.embedding import Embedding, EmbeddingConfig
    from sftforge.ops.semantic import SemanticDedupConfig

    questions = [
        "How do I reset my password?",
        "What is the boiling point of water at sea level?",
        "How can I reset my password?",
        "Which planet is closest to the sun?",
    ]
    records = [rec(("user", q), ("assistant", f"Answer {i}."), rid=str(i)) for i, q in enumerate(questions)]
    op = build(SemanticDedupConfig(threshold=0.9))
    op.setup()
    keys = op.keys(records)
    assert keys.dtype == np.dtype(op.key_dtype) and keys.shape == (4, op.key_width())
    np.save(tmp_path / "keys.npy", keys)
    d = op.resolve(np.load(tmp_path / "keys.npy", mmap_mode="r"))
    assert d.survivor.tolist() == [0, 1, 0, 3]
    assert 0.9 <= d.similarity[2] < 1.0 and "semantic_dedup" in op.describe(float(d.similarity[2]))
    vectors = Embedding(EmbeddingConfig(role="user")).embed_batch(records)
    np.testing.assert_allclose(vectors, keys, atol=1e-6)
    assert Embedding(EmbeddingConfig()).dim() == 384


def test_perplexity_and_ifd_share_the_conditioned_pass(tiny_dir: Path):
    """With both features in a recipe, IFD's answer-given-instruction losses come from perplexity's pass."""
    perplexity, ifd, _ = ops(tiny_dir, max_tokens=64)
    memo = perplexity.shared.memo
    assert ifd.shared.memo is memo  # one model, one memo
    memo.clear()
    perplexity.score_batch(RECORDS[:1])
    assert len(memo) == 1
    conditioned = next(iter(memo))
    ifd.score_batch(RECORDS[:1])
    assert conditioned in memo and len(memo) == 2  # only the unconditioned pass was new
