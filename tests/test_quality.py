"""Cheap quality features, language presets, and the local engine's filter/dedup passes on hand-made records."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sftforge.engine.processing import RecordProcessor, resolve_dedups
from sftforge.lib.text_stats import (
    char_class_ratios,
    distinct_n,
    duplicate_line_share,
    duplicate_ngram_share,
    top_ngram_share,
)
from sftforge.ops import build
from sftforge.ops.dedup import ExactDedupConfig, first_of_equal_rows
from sftforge.ops.filters import FormatConfig, LengthConfig
from sftforge.ops.presets import merged_filters, preset_filters
from sftforge.ops.quality import CharRatioConfig, DistinctNConfig, LanguageConfig, RepetitionConfig
from sftforge.sample import Record


def rec(user: str, assistant: str, rid: str = "r", lang: str = "en") -> Record:
    return Record(
        id=rid,
        messages=[{"role": "user", "content": user}, {"role": "assistant", "content": assistant}],
        task="qa",
        lang=lang,
    )


def test_distinct_n_detects_loops():
    assert distinct_n("a b c d".split(), 2) == 1.0
    assert distinct_n("a b a b a b".split(), 2) == pytest.approx(2 / 5)
    assert distinct_n(["a"], 2) == 1.0  # too short to repeat


def test_duplicate_lines_and_ngrams():
    assert duplicate_line_share("x\ny\nx\n\nx") == pytest.approx(2 / 4)
    assert duplicate_line_share("one\ntwo") == 0.0
    words = "the cat sat on the mat".split()
    # "the" is the only repeated unigram: 2 * 3 chars over 17 word chars
    assert top_ngram_share(words, 1) == pytest.approx(6 / 17)
    assert top_ngram_share("a b c d".split(), 2) == 0.0
    looped = "buy now buy now buy now today".split()
    assert duplicate_ngram_share(looped, 2) == pytest.approx(18 / 23)
    assert duplicate_ngram_share("all words here differ".split(), 2) == 0.0


def test_char_ratios_count_symbols_and_any_script():
    alnum, symbol = char_class_ratios("中文 abc 123")
    assert alnum == 1.0 and symbol == 0.0
    alnum, symbol = char_class_ratios("#### ★★ ok")
    assert symbol == pytest.approx(6 / 8) and alnum == pytest.approx(2 / 8)
    assert char_class_ratios("x = a + b if `y` else $z")[1] == 0.0  # code and prices are not symbol spam


def test_feature_names_carry_parameters():
    assert build(RepetitionConfig(kind="top_ngram", n=3)).feature_name == "top_3gram_assistant"
    assert build(RepetitionConfig(kind="duplicate_lines", role="user")).feature_name == "dup_lines_user"
    assert build(DistinctNConfig(n=1)).feature_name == "distinct_1_assistant"
    assert build(CharRatioConfig(kind="symbol")).feature_name == "symbol_ratio_assistant"


def test_repetition_ignores_short_turns():
    op = build(RepetitionConfig(kind="top_ngram", n=2, min_words=20))
    assert op.score(rec("q?", "yes yes yes yes")) == 0.0
    long = " ".join(["spam eggs"] * 15)
    assert op.score(rec("q?", long)) > 0.4


def test_language_probability_uses_record_language():
    op = build(LanguageConfig())
    english = rec("What is a generator?", "A generator is a function that yields values lazily.")
    assert op.score(english) > 0.9
    chinese_answer = rec("什么是生成器？", "生成器是一种按需产生值的函数，它可以节省内存。", lang="zh")
    assert op.score(chinese_answer) > 0.9
    wrong = rec("什么是生成器？", "A generator is a function that yields values lazily.", lang="zh")
    assert op.score(wrong) < 0.1


def test_token_length_uses_the_bundled_tokenizer(bundled_path):
    op = build(LengthConfig(unit="tokens"))
    n = op.score(rec("q?", "Hello world, this is a test."))
    assert 5 <= n <= 12


def test_presets_and_recipe_overrides():
    en = preset_filters("en")
    assert any(isinstance(c, LanguageConfig) for c in en)
    own = LengthConfig(role="assistant", min=10, max=20)
    extra = DistinctNConfig(n=3, min=0.3)
    merged = merged_filters("auto", "en", [own, DistinctNConfig(n=2, min=0.3), extra])
    lengths = [c for c in merged if isinstance(c, LengthConfig) and c.role == "assistant"]
    assert lengths == [own]  # replaced, not duplicated
    assert [c.min for c in merged if isinstance(c, DistinctNConfig) and c.n == 2] == [0.3]
    assert merged[-1] == extra  # entries the preset lacks come after it
    assert merged_filters("none", "en", []) == []
    zh = merged_filters("auto", "zh", [])
    assert any(isinstance(c, RepetitionConfig) and c.n == 10 for c in zh)
    # kg_qa text is templated: auto keeps the structural checks only; an explicit preset still applies in full
    kg = merged_filters("auto", "en", [extra], templated=True)
    assert {type(c) for c in kg} == {FormatConfig, LengthConfig, DistinctNConfig} and kg[-1] == extra
    assert merged_filters("en", "en", [], templated=True) == en
    with pytest.raises(ValueError):
        preset_filters("fr")


def test_first_of_equal_rows():
    keys = np.array([[1, 2], [3, 4], [1, 2], [5, 6], [3, 4]], dtype=np.uint64)
    assert first_of_equal_rows(keys).tolist() == [0, 1, 0, 3, 1]


def test_processor_filters_and_dedup_resolves_over_the_stream():
    ops = [build(LengthConfig(role="assistant", min=5))]
    processor = RecordProcessor("clean", ops)
    dedup = build(ExactDedupConfig())
    batch1 = [rec("What is X?", "X is a letter.", "a"), rec("What is Y?", "no", "b")]
    batch2 = [rec("what is x", "X is the 24th letter.", "c"), rec("What is Z?", "Z is the last letter.", "d")]
    kept1, rej1 = processor.process(batch1)
    kept2, rej2 = processor.process(batch2)
    assert [r.id for r in kept1] == ["a"] and [r.record.id for r in rej1] == ["b"]
    assert rej1[0].operator == "length_assistant_chars" and "outside" in rej1[0].reason
    assert kept1[0].features["length_assistant_chars"] == len("X is a letter.")
    assert [r.id for r in kept2] == ["c", "d"] and not rej2
    keys = np.vstack([dedup.keys(kept1), dedup.keys(kept2)])
    (outcome,) = resolve_dedups([dedup], lambda i: keys, 3, processor.stats)
    assert outcome.duplicates == {1: (0, 1.0)}  # c (stream index 1) duplicates a (index 0)
    assert processor.stats.removed == {"length_assistant_chars": 1, "exact_dedup": 1}


def test_processor_reuses_stored_features():
    op = build(LengthConfig(role="assistant", max=3))
    r = rec("q?", "a long answer")
    r.features["length_assistant_chars"] = 2.0  # as if the features stage had computed it
    kept, rejected = RecordProcessor("clean", [op]).process([r])
    assert kept == [r] and not rejected


def test_clean_stage_redacts_filters_decontaminates_and_dedups(tmp_path):
    from sftforge.recipe import load_recipe_text
    from sftforge.run import RunDir
    from sftforge.stages import BY_NAME, Context

    bench = tmp_path / "bench.jsonl"
    question = "Janet has three ducks that lay sixteen eggs per day and she eats three for breakfast every morning"
    bench.write_text(json.dumps({"question": question}) + "\n")
    recipe = load_recipe_text(
        "name: t\ntask: {type: qa, description: questions}\nsources: {documents: [{path: x.txt}]}\n"
        "cleaning:\n  preset: none\n  mappers: [{name: pii_redact}]\n"
        "  filters: [{name: length, role: assistant, min: 3}, {name: decontaminate, benchmarks: [{path: bench.jsonl, fields: [question]}]}]\n"
        "  dedup: [{name: exact_dedup}]\n",
        base_dir=tmp_path,
    )
    run = RunDir.create(tmp_path / "run", "name: t\n", "t", tmp_path)
    records = [
        rec("What is A?", "A is first; mail a@example.com.", "a"),
        rec("what is a", "A is a letter.", "b"),
        rec("Q?", "no", "c"),
        rec(question + "?", "Sixteen.", "d"),
    ]
    for stage in ("generate", "features"):
        log = run.begin(stage, "fp")
        log.commit(records, [], ["k"])
        run.finish(stage, {"records": len(records)}, 0.0)
    BY_NAME["clean"].run(Context(run=run, recipe=recipe), "fp")
    kept = run.read_records("clean")
    assert [r.id for r in kept] == ["a"]
    assert kept[0].messages[1]["content"] == "A is first; mail [EMAIL]." and kept[0].features["pii_EMAIL"] == 1.0
    rejected = run.read_table("clean", rejected=True).to_pylist()
    reasons = {row["id"]: (row["reject_operator"], row["reject_reason"]) for row in rejected}
    assert reasons["c"][0] == "length_assistant_chars"
    assert reasons["d"][0] == "contaminated" and "bench item 0" in reasons["d"][1]
    assert reasons["b"] == ("exact_dedup", "duplicate of a: same normalised user text")
    clusters = [
        json.loads(x) for x in (run.stage_dir("clean") / "duplicates-exact_dedup.jsonl").read_text().splitlines()
    ]
    assert clusters == [{"survivor": "a", "size": 2, "duplicates": [{"id": "b", "similarity": 1.0}]}]
    extra = run.stage_info("clean").extra
    assert extra["removed_by_operator"] == {"length_assistant_chars": 1, "contaminated": 1, "exact_dedup": 1}
    assert extra["operators"]["pii_redact"]["found_by_type"] == {"EMAIL": 1}
    assert extra["operators"]["contaminated"]["contaminated_by_benchmark"] == {"bench": 1}
    assert not (run.stage_dir("clean") / "_scratch").exists()


def test_minhash_dedup_after_exact_dedup_in_the_engine(tmp_path):
    from sftforge.engine.processing import OpStats
    from sftforge.ops.dedup import MinHashDedupConfig

    dedups = [build(ExactDedupConfig()), build(MinHashDedupConfig(threshold=0.7))]
    q = "What does PEP 8 say about the maximum line length for code?"
    records = [
        rec(q, "79.", "a"),
        rec(q.upper(), "79", "b"),
        rec(q.replace("code?", "Python code?"), "79", "c"),
        rec("How are docstrings written?", "So.", "d"),
    ]
    keys = [d.keys(records) for d in dedups]
    stats = OpStats()
    exact, near = resolve_dedups(dedups, lambda i: keys[i], len(records), stats)
    assert exact.duplicates == {1: (0, 1.0)}
    ((dup, (survivor, sim)),) = near.duplicates.items()
    assert (dup, survivor) == (2, 0) and 0.7 <= sim < 1.0  # c is near a; b was already gone
    assert stats.seen["minhash_dedup"] == 3 and stats.removed["minhash_dedup"] == 1


def test_language_presets_keep_good_records_and_catch_bad_ones(tmp_path):
    def run(preset: str, records: list[Record]) -> dict[str, str]:
        ops = [build(c) for c in preset_filters(preset)]
        kept, rejected = RecordProcessor("clean", ops).process(records)
        return {r.id: "kept" for r in kept} | {r.record.id: r.operator for r in rejected}

    zh = run(
        "zh",
        [
            rec(
                "莱茵河流经哪些国家？",
                "莱茵河发源于瑞士阿尔卑斯山，流经列支敦士登、奥地利、德国和法国，最后在荷兰注入北海。",
                "good",
                "zh",
            ),
            rec(
                "莱茵河流经哪些国家？",
                "The Rhine flows through Switzerland, Germany and the Netherlands.",
                "english",
                "zh",
            ),
            rec("莱茵河流经哪些国家？", "莱茵河莱茵河莱茵河莱茵河莱茵河莱茵河莱茵河莱茵河莱茵河莱茵河", "loop", "zh"),
        ],
    )
    assert zh == {"good": "kept", "english": "lang_prob_assistant", "loop": "distinct_2_assistant"}
    en = run(
        "en",
        [
            rec("What does PEP 8 recommend for indentation?", "Use 4 spaces per indentation level.", "good"),
            rec("What does PEP 8 recommend for indentation?", "#### Indentation #python #pep8 #style ★★★★★", "symbols"),
            rec("Why?", "yes " * 30, "loop"),
            rec("Why?", " ".join(f"alpha{i} beta{i} gamma{i} delta{i} spam eggs" for i in range(12)), "long_loop"),
        ],
    )
    assert en == {
        "good": "kept",
        "symbols": "symbol_ratio_assistant",
        "loop": "distinct_2_assistant",
        "long_loop": "top_2gram_assistant",
    }
