"""Benchmark decontamination: loading benchmark files, the n-gram and substring checks, the operator."""

from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import sftforge.ops.decontam  # noqa: F401  (registers the operator)
from sftforge.lib.decontam import BenchmarkError, DecontaminationIndex, canonical
from sftforge.lib.text import tokens
from sftforge.ops.base import OPERATORS
from sftforge.ops.decontam import Decontaminate, DecontaminateConfig
from sftforge.sample import Record
from sftforge.sources.benchmarks import BenchmarkSpec, index_benchmarks, load_benchmark

BENCHMARKS = Path(__file__).resolve().parents[2] / "shared" / "data" / "benchmarks"
needs_real = pytest.mark.skipif(
    not (BENCHMARKS / "gsm8k_test.jsonl").exists(),
    reason=f"real benchmark files not found at {BENCHMARKS} (the shared data folder is not next to this checkout)",
)

# Synthetic items, long enough for both checks; the first is GSM8K-like, the second a Chinese question.
QUESTIONS = [
    "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her "
    "friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh duck egg. "
    "How much in dollars does she make every day at the farmers' market?",
    "小明的妈妈买了三箱苹果，每箱有二十四个苹果，他们一家人每天吃五个苹果，请问这些苹果一共可以吃多少天？",
    "A robe takes 2 bolts of blue fiber and half that much white fiber. How many bolts in total does it take?",
    "Josh decides to try flipping a house. He buys a house for $80,000 and then puts in $50,000 in repairs. "
    "This increased the value of the house by 150%. How much profit did he make?",
    "Carla is downloading a 200 GB file. Normally she can download 2 GB/minute, but 40% of the way through the "
    "download, Windows forces a restart to install updates, which takes 20 minutes.",
]
ANSWERS = ["#### 18", "#### 14", "#### 3", "#### 70000", "#### 160"]
UNRELATED = (
    "The Normans were the people who in the 10th and 11th centuries gave their name to Normandy, a region in "
    "France. They were descended from Norse raiders and pirates from Denmark, Iceland and Norway."
)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture
def bench_jsonl(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "mini_gsm.jsonl", [{"question": q, "answer": a} for q, a in zip(QUESTIONS, ANSWERS)])


def index_for(path: Path, fields: list[str], **params) -> DecontaminationIndex:
    return index_benchmarks([BenchmarkSpec(path=str(path), fields=fields)], DecontaminationIndex(**params))


def rec(text: str, user: str = "Please answer.", rid: str = "r") -> Record:
    messages = [{"role": "user", "content": user}, {"role": "assistant", "content": text}]
    return Record(id=rid, messages=messages, task="qa", lang="en")


# ---------------------------------------------------------------------------------------------------------------
# Normalisation


def test_canonical_ignores_case_punctuation_and_spacing():
    assert canonical("Hello,   WORLD!\n(it's)") == canonical("hello world it s") == "hello world it s"
    assert canonical("中文，测试") == canonical("中 文 测 试") == "中 文 测 试"


# ---------------------------------------------------------------------------------------------------------------
# Loading: jsonl, csv, parquet, folders; clear errors


def test_jsonl_csv_parquet_load_the_same_items(tmp_path: Path, bench_jsonl: Path):
    rows = [{"question": q, "answer": a} for q, a in zip(QUESTIONS, ANSWERS)]
    as_csv = write_csv(tmp_path / "mini.csv", rows)
    as_parquet = tmp_path / "mini.parquet"
    pq.write_table(pa.Table.from_pylist(rows), as_parquet)
    loaded = [
        load_benchmark(BenchmarkSpec(path=str(p), fields=["question", "answer"]))
        for p in (bench_jsonl, as_csv, as_parquet)
    ]
    assert [b.name for b in loaded] == ["mini_gsm", "mini", "mini"]
    for b in loaded:
        assert [it.texts for it in b.items] == [[q, a] for q, a in zip(QUESTIONS, ANSWERS)]
        assert [it.id for it in b.items] == ["0", "1", "2", "3", "4"]
    # each format actually finds records: the CSV copy of item 3 and the Parquet copy of item 0
    assert index_for(as_csv, ["question"]).check(QUESTIONS[3])[0].item == 3
    assert index_for(as_parquet, ["question"]).check("see: " + QUESTIONS[0])[0].item == 0


def test_parquet_list_column_and_id_and_split_fields(tmp_path: Path):
    path = tmp_path / "mmlu_like.parquet"
    table = pa.Table.from_pylist(
        [
            {
                "uid": "q-a",
                "split": "test",
                "question": "Which planet is known as the red planet?",
                "choices": ["Venus", "Mars"],
            },
            {"uid": "q-b", "split": "dev", "question": "Which gas do plants absorb?", "choices": ["Oxygen", "CO2"]},
            {"uid": "q-c", "split": "test", "question": "Who wrote Hamlet?", "choices": ["Shakespeare", "Marlowe"]},
        ]
    )
    pq.write_table(table, path)
    spec = BenchmarkSpec(
        path=str(path),
        fields=["question", "choices"],
        id_field="uid",
        split_field="split",
        splits=["test"],
        name="mmlu",
    )
    bench = load_benchmark(spec)
    assert bench.name == "mmlu"
    assert [it.id for it in bench.items] == ["q-a", "q-c"]
    assert bench.items[0].texts == ["Which planet is known as the red planet?", "Venus\nMars"]


def test_folder_of_csv_files_names_items_by_file_and_row(tmp_path: Path):
    folder = tmp_path / "mmlu_test"
    folder.mkdir()
    write_csv(folder / "anatomy_test.csv", [{"question": QUESTIONS[0], "choice0": "16", "answer": "0"}])
    write_csv(
        folder / "virology_test.csv",
        [
            {"question": QUESTIONS[2], "choice0": "3", "answer": "0"},
            {"question": QUESTIONS[3], "choice0": "1", "answer": "0"},
        ],
    )
    spec = BenchmarkSpec(path=str(folder), fields=["question", "choice0"])
    bench = load_benchmark(spec)
    assert bench.name == "mmlu_test"
    assert [it.id for it in bench.items] == ["anatomy_test:0", "virology_test:0", "virology_test:1"]
    hits = index_benchmarks([spec], DecontaminationIndex()).check(QUESTIONS[3])
    assert (hits[0].benchmark, hits[0].item, hits[0].item_id) == ("mmlu_test", 2, "virology_test:1")
    assert BenchmarkSpec(path=str(folder / "*.csv"), fields=["question"]).benchmark_name == "mmlu_test"
    assert len(load_benchmark(BenchmarkSpec(path=str(folder / "viro*.csv"), fields=["question"])).items) == 2


def test_bad_field_in_jsonl_names_file_line_field_and_what_exists(bench_jsonl: Path):
    with pytest.raises(BenchmarkError) as err:
        load_benchmark(BenchmarkSpec(path=str(bench_jsonl), fields=["questoin"]))
    msg = str(err.value)
    assert "field 'questoin' not in" in msg and "mini_gsm.jsonl, line 1" in msg
    assert "fields there: question, answer" in msg
    assert "did you mean 'question'" in msg and "`fields`" in msg


def test_field_missing_on_a_later_line_names_that_line(tmp_path: Path):
    path = write_jsonl(tmp_path / "b.jsonl", [{"question": "a"}, {"question": "b"}, {"prompt": "c"}])
    with pytest.raises(BenchmarkError, match=r"field 'question' not in .*b\.jsonl, line 3; fields there: prompt"):
        load_benchmark(BenchmarkSpec(path=str(path), fields=["question"]))


def test_bad_json_line_and_non_object_lines(tmp_path: Path):
    path = tmp_path / "b.jsonl"
    path.write_text('{"question": "a"}\n\n{"question": oops}\n', encoding="utf-8")
    with pytest.raises(BenchmarkError, match=r"b\.jsonl, line 3: not valid JSON"):
        load_benchmark(BenchmarkSpec(path=str(path), fields=["question"]))
    path.write_text('["question"]\n', encoding="utf-8")
    with pytest.raises(BenchmarkError, match=r"b\.jsonl, line 1: a JSON list, expected an object"):
        load_benchmark(BenchmarkSpec(path=str(path), fields=["question"]))


def test_bad_field_in_csv_and_parquet(tmp_path: Path):
    path = write_csv(tmp_path / "m.csv", [{"question": "q", "choice0": "a"}])
    with pytest.raises(BenchmarkError) as err:
        load_benchmark(BenchmarkSpec(path=str(path), fields=["question", "choice1"]))
    assert "field 'choice1' not in" in str(err.value) and "m.csv, line 1 (the header)" in str(err.value)
    assert "fields there: question, choice0" in str(err.value)
    ppath = tmp_path / "m.parquet"
    pq.write_table(pa.Table.from_pylist([{"prompt": "p", "task_id": "t"}]), ppath)
    expected = r"field 'promt' not in .*m\.parquet; columns there: prompt, task_id \(did you mean 'prompt'\?\)"
    with pytest.raises(BenchmarkError, match=expected):
        load_benchmark(BenchmarkSpec(path=str(ppath), fields=["promt"]))


def test_short_csv_row_nested_value_missing_file_and_format(tmp_path: Path):
    path = tmp_path / "m.csv"
    path.write_text("question,answer\nq1,a1\nq2\n", encoding="utf-8")
    expected = r"m\.csv, line 3: the row has fewer columns than the header \(no value for 'answer'\)"
    with pytest.raises(BenchmarkError, match=expected):
        load_benchmark(BenchmarkSpec(path=str(path), fields=["question", "answer"]))
    nested = write_jsonl(tmp_path / "n.jsonl", [{"question": {"text": "q"}}])
    with pytest.raises(BenchmarkError, match=r"field 'question' in .*n\.jsonl, line 1 is a dict"):
        load_benchmark(BenchmarkSpec(path=str(nested), fields=["question"]))
    with pytest.raises(BenchmarkError, match=r"benchmark 'nope': file .*nope\.jsonl not found"):
        load_benchmark(BenchmarkSpec(path=str(tmp_path / "nope.jsonl"), fields=["question"]))
    answers_only = write_csv(tmp_path / "mmlu.csv", [{"question": "Which is largest?", "answer": "2"}] * 3)
    with pytest.raises(BenchmarkError, match=r"'mmlu': none of its 3 items has text in fields answer long enough"):
        index_for(answers_only, ["answer"])
    txt = tmp_path / "b.txt"
    txt.write_text("x", encoding="utf-8")
    with pytest.raises(BenchmarkError, match=r"b\.txt: unsupported data format '\.txt'; use \.jsonl"):
        load_benchmark(BenchmarkSpec(path=str(txt), fields=["question"]))
    dev_only = write_jsonl(tmp_path / "d.jsonl", [{"question": "q", "split": "dev"}])
    with pytest.raises(BenchmarkError, match=r"no rows with split in \['test'\]"):
        load_benchmark(BenchmarkSpec(path=str(dev_only), fields=["question"], split_field="split", splits=["test"]))


# ---------------------------------------------------------------------------------------------------------------
# Matching


def test_verbatim_copy_is_caught_with_benchmark_item_and_full_overlap(bench_jsonl: Path):
    index = index_for(bench_jsonl, ["question"])
    hits = index.check("Here is a word problem for you.\n" + QUESTIONS[3].upper() + "\nLet's think step by step.")
    assert {(h.benchmark, h.item, h.item_id) for h in hits} == {("mini_gsm", 3, "3")}
    by_method = {h.method: h for h in hits}
    assert by_method["ngram"].overlap == 1.0 and by_method["ngram"].n == 13
    assert by_method["substring"].overlap == 1.0
    assert "mini_gsm item 3 (13-gram overlap 1.00" in by_method["ngram"].describe()


def test_partial_paraphrased_copy_with_one_13gram_is_caught(bench_jsonl: Path):
    index = index_for(bench_jsonl, ["question", "answer"], substring_chars=0)  # n-grams alone
    # item 0 reworded except for one run of 13 words ("she eats three ... with four", punctuation differs)
    text = (
        "A farmer named Janet owns ducks laying sixteen eggs daily; she eats three for breakfast every morning and "
        "bakes muffins for her friends every day with four -- what does she earn selling the rest at two dollars?"
    )
    hits = index.check(text)
    assert [(h.item, h.method) for h in hits] == [(0, "ngram")]
    assert 0 < hits[0].overlap < 0.5 and hits[0].matched >= 1
    # the same rewording with one of those 13 words changed has no 13-gram in common
    assert index.check(text.replace("every morning", "each morning")) == []


def test_unrelated_and_same_topic_records_are_not_caught(bench_jsonl: Path):
    index = index_for(bench_jsonl, ["question", "answer"])
    assert index.check(UNRELATED) == []
    same_topic = (
        "Janet has ducks. How many eggs do her ducks lay per week if they lay 16 eggs a day and she sells them?"
    )
    assert index.check(same_topic) == []
    assert index.check("") == [] and index.check("eggs") == []


def test_substring_check_catches_a_50_char_copy_shorter_than_13_words(bench_jsonl: Path):
    piece = "she can download 2 GB/minute, but 40% of the way through"  # 12 tokens, 54 characters
    assert len(tokens(piece)) < 13 and len(canonical(piece)) >= 50
    text = f"Some unrelated intro sentence. {piece} and then something else entirely different happens."
    index = index_for(bench_jsonl, ["question"])
    hits = index.check(text)
    assert [(h.item, h.method) for h in hits] == [(4, "substring")]
    assert hits[0].matched >= 50
    assert index_for(bench_jsonl, ["question"], substring_chars=0).check(text) == []
    # 46 characters of the same item are not enough
    short = "Normally she can download 2 GB/minute, but 40"
    assert 40 < len(canonical(short)) < 50
    assert index.check(f"Intro: {short} and so on.") == []
    assert index_for(bench_jsonl, ["question"], substring_chars=40).check(f"Intro: {short} and so on.")


def test_short_items_use_their_own_length_or_only_the_substring_rule(tmp_path: Path):
    path = write_jsonl(
        tmp_path / "short.jsonl",
        [
            {"q": "What is the capital city of Burkina Faso today?"},  # 9 tokens: one 9-gram, the whole item
            {"q": "Who painted the Mona Lisa?"},  # 5 tokens: no n-grams, too short for 50 characters
            {"q": "Counterrevolutionaries' internationalization notwithstanding: telecommunications"},  # 4 long tokens
        ],
    )
    index = index_for(path, ["q"])
    hits = index.check("Q: what is the capital city of Burkina Faso today? A: Ouagadougou")
    assert [(h.item, h.method, h.n, h.overlap) for h in hits] == [(0, "ngram", 9, 1.0)]
    # 8 of its 9 tokens: one word deleted is still the item (near match); two words away is not
    hits = index.check("what is the capital city of Burkina Faso")
    assert [(h.item, h.method, h.matched, h.total) for h in hits] == [(0, "near", 8, 9)]
    assert index.check("what is the capital of Burkina Faso") == []
    assert index.check("Who painted the Mona Lisa? Leonardo da Vinci painted the Mona Lisa.") == []
    assert index.too_short() == {"short": ["1"]}  # the 5-token item: no check can reach it, and it is said
    hits = index.check("counterrevolutionaries internationalization notwithstanding telecommunications!")
    assert [(h.item, h.method) for h in hits] == [(2, "substring")]
    # min_ngram: with 10 the 9-token item has no n-grams at all
    assert index_for(path, ["q"], min_ngram=10).check("what is the capital city of Burkina Faso today") == []


def test_chinese_uses_character_ngrams(bench_jsonl: Path):
    index = index_for(bench_jsonl, ["question"])
    item = QUESTIONS[1]
    span = item[8:31]  # 22 characters with one comma: 21 CJK tokens, more than cjk_ngram (20)
    text = "以下是一道题目：" + " ".join(span) + "。答案是十四天。"  # spaced out, other surrounding text
    hits = index.check(text)
    assert [(h.item, h.method, h.n) for h in hits] == [(1, "ngram", 20)]
    assert index.check("以下是一道题目：" + item[8:24]) == []  # 15 CJK characters: below 20
    assert index.check("小红的爸爸买了两箱梨，每箱有十个梨，他们每天吃两个。") == []
    assert [h.item for h in index_for(bench_jsonl, ["question"], cjk_ngram=13).check(item[8:24])] == [1]


def test_template_text_shared_by_many_items_is_not_a_match(tmp_path: Path):
    preamble = (
        "For which of these two scenarios does the main character do something clearly morally wrong, "
        "according to ordinary moral standards?"
    )
    rows = [
        {"q": f"{preamble} Scenario: I {verb} the {thing} of my neighbour yesterday."}
        for verb, thing in [(v, t) for v in ("took", "washed", "painted", "moved") for t in ("car", "dog", "fence")]
    ]
    passage = "A passage shared by three questions: the treaty of Westphalia ended the Thirty Years War in 1648 and reshaped Europe."
    rows += [{"q": passage}, {"q": passage + " Who signed?"}, {"q": passage + " When?"}]
    path = write_jsonl(tmp_path / "moral.jsonl", rows)
    index = index_for(path, ["q"])
    assert index.check(preamble) == []  # in 12 items > max_item_frequency 10
    assert len({h.item for h in index_for(path, ["q"], max_item_frequency=20).check(preamble)}) == 12
    hits = index.check("Remember: the treaty of Westphalia ended the Thirty Years War in 1648 and reshaped Europe.")
    assert {h.item for h in hits} == {12, 13, 14}
    assert index.describe()["boilerplate_dropped"]["ngrams"] > 0


def test_low_information_runs_do_not_match(tmp_path: Path):
    digits = "0 1 2 3 4 5 6 7 8 9 A B C D E F"
    path = write_jsonl(
        tmp_path / "he.jsonl",
        [{"prompt": f"def hex_key(num): count the primes among hexadecimal digits {digits} {digits} {digits} in num"}],
    )
    index = index_for(path, ["prompt"])
    run = ", ".join([digits] * 3)
    assert len(canonical(run)) > 90
    assert index.check(f"Digits: {run}.") == []
    assert index.check("Count the primes among hexadecimal digits 0 1 2 3 4 5 6 7 8 9 A B C") != []


def test_min_overlap(bench_jsonl: Path):
    half = " ".join(tokens(QUESTIONS[0])[:25])
    assert index_for(bench_jsonl, ["question"]).check(half)
    hits = index_for(bench_jsonl, ["question"], min_overlap=0.6).check(half)
    assert hits == []
    assert index_for(bench_jsonl, ["question"], min_overlap=0.6).check(QUESTIONS[0])


def test_several_benchmarks_and_duplicate_names(tmp_path: Path, bench_jsonl: Path):
    other = write_jsonl(tmp_path / "other.jsonl", [{"text": UNRELATED}])
    index = index_benchmarks(
        [
            BenchmarkSpec(path=str(bench_jsonl), fields=["question"], name="gsm"),
            BenchmarkSpec(path=str(other), fields=["text"]),
        ],
        DecontaminationIndex(),
    )
    hits = index.check(UNRELATED + "\n" + QUESTIONS[2])
    assert {(h.benchmark, h.item) for h in hits} == {("other", 0), ("gsm", 2)}
    with pytest.raises(BenchmarkError, match="'mini_gsm' used twice"):
        index_benchmarks([BenchmarkSpec(path=str(bench_jsonl), fields=["question"])] * 2, DecontaminationIndex())


# ---------------------------------------------------------------------------------------------------------------
# The operator


def run_filter(op: Decontaminate, records: list[Record]) -> tuple[list[Record], list[tuple[Record, str]]]:
    """What the engine does with a filter: score into features, keep or reject with the reason."""
    op.setup()
    kept, rejected = [], []
    for r in records:
        score = op.score(r)
        r.features[op.feature_name] = score
        if op.keep(score):
            kept.append(r)
        else:
            rejected.append((r, op.reason(r, score)))
    return kept, rejected


def op_for(path: Path, **extra) -> Decontaminate:
    cfg = DecontaminateConfig(benchmarks=[{"path": str(path), "fields": ["question"], "name": "gsm8k"}], **extra)
    return Decontaminate(cfg)


def test_operator_removes_with_reason_and_counts(bench_jsonl: Path):
    assert OPERATORS["decontaminate"] is Decontaminate
    op = op_for(bench_jsonl)
    records = [rec(UNRELATED, rid="a"), rec("Sure.", user=QUESTIONS[2], rid="b"), rec("Fine.", rid="c")]
    kept, rejected = run_filter(op, records)
    assert [r.id for r in kept] == ["a", "c"]
    assert kept[0].features["contaminated"] == 0.0
    assert [r.id for r, _ in rejected] == ["b"]
    assert rejected[0][1].startswith("contaminated: gsm8k item 2 (13-gram overlap 1.00")
    assert rejected[0][0].features["contaminated"] == 1.0
    stats = op.stats()
    assert stats["checked"] == 3 and stats["contaminated"] == 1
    assert stats["contaminated_by_benchmark"] == {"gsm8k": 1}
    assert stats["top_items"] == [{"benchmark": "gsm8k", "item": "2", "records": 1}]
    assert stats["too_short_to_check"] == {}  # every test question is long enough


def test_operator_reports_items_too_short_to_check(tmp_path: Path):
    path = write_jsonl(tmp_path / "b.jsonl", [{"question": QUESTIONS[0]}, {"question": "2 + 2?"}, {"question": "Why?"}])
    op = op_for(path)
    run_filter(op, [rec("Fine.", rid="a")])
    assert op.stats()["too_short_to_check"] == {"gsm8k": "2 items, e.g. 1, 2"}


def test_operator_flag_keeps_records_and_roles_limit_the_text(bench_jsonl: Path):
    op = op_for(bench_jsonl, action="flag")
    kept, rejected = run_filter(op, [rec("Sure.", user=QUESTIONS[2], rid="b")])
    assert rejected == [] and kept[0].features["contaminated"] == 1.0
    assert op.stats()["contaminated_by_benchmark"] == {"gsm8k": 1}
    only_answers = op_for(bench_jsonl, roles=["assistant"])
    assert only_answers.score(rec("Sure.", user=QUESTIONS[2])) == 0.0
    assert only_answers.score(rec(QUESTIONS[2])) == 1.0


def test_operator_pickles_without_its_index(bench_jsonl: Path):
    op = op_for(bench_jsonl)
    small = len(pickle.dumps(op))
    op.setup()
    assert op.score(rec(QUESTIONS[0])) == 1.0
    again = pickle.loads(pickle.dumps(op))
    assert len(pickle.dumps(op)) < small + 2000 and again._index is None
    assert again.score(rec(QUESTIONS[0])) == 1.0  # builds lazily if setup() was not called


def test_relative_benchmark_paths_resolve_against_base_dir(tmp_path: Path, bench_jsonl: Path):
    cfg = DecontaminateConfig(benchmarks=[{"path": bench_jsonl.name, "fields": ["question"]}])
    op = Decontaminate(cfg, tmp_path)
    assert op.score(rec(QUESTIONS[4])) == 1.0
    with pytest.raises(BenchmarkError, match="mini_gsm.jsonl not found"):
        Decontaminate(cfg, tmp_path / "elsewhere").setup()


def test_config_validation_and_resolve(tmp_path: Path):
    bench = {"path": "benchmarks/gsm.jsonl", "fields": ["question"]}
    cfg = DecontaminateConfig(benchmarks=[bench])
    defaults = (cfg.max, cfg.ngram, cfg.min_ngram, cfg.cjk_ngram, cfg.substring_chars, cfg.action, cfg.min_overlap)
    assert defaults == (0.0, 13, 8, 20, 50, "remove", 0.0)
    assert Decontaminate(cfg, tmp_path).specs()[0].path == str(tmp_path / "benchmarks" / "gsm.jsonl")
    assert Decontaminate(cfg, tmp_path).specs()[0].benchmark_name == "gsm"
    absolute = DecontaminateConfig(benchmarks=[{"path": "/data/x.jsonl", "fields": ["q"]}])
    assert Decontaminate(absolute, tmp_path).specs()[0].path == "/data/x.jsonl"
    with pytest.raises(ValueError, match="min_ngram"):
        DecontaminateConfig(benchmarks=[bench], ngram=5)
    with pytest.raises(ValueError, match="used twice"):
        DecontaminateConfig(benchmarks=[bench, bench])
    with pytest.raises(ValueError, match="split_field and splits go together"):
        DecontaminateConfig(benchmarks=[{**bench, "split_field": "split"}])
    with pytest.raises(ValueError, match="benchmarks"):
        DecontaminateConfig(benchmarks=[])
    with pytest.raises(ValueError, match="Extra inputs"):
        DecontaminateConfig(benchmarks=[{**bench, "feilds": ["x"]}])


# ---------------------------------------------------------------------------------------------------------------
# The real benchmarks


@pytest.fixture(scope="module")
def real_index() -> DecontaminationIndex:
    if not (BENCHMARKS / "gsm8k_test.jsonl").exists():
        pytest.skip(f"real benchmark files not found at {BENCHMARKS}")
    return index_benchmarks(
        [
            BenchmarkSpec(path=str(BENCHMARKS / "gsm8k_test.jsonl"), fields=["question", "answer"], name="gsm8k"),
            BenchmarkSpec(
                path=str(BENCHMARKS / "humaneval.jsonl"), fields=["prompt"], id_field="task_id", name="humaneval"
            ),
            BenchmarkSpec(
                path=str(BENCHMARKS / "mmlu_test"),
                fields=["question", "choice0", "choice1", "choice2", "choice3"],
                name="mmlu",
            ),
        ],
        DecontaminationIndex(),
    )


@needs_real
def test_real_gsm8k_question_quoted_verbatim_is_caught(real_index: DecontaminationIndex):
    rows = [json.loads(line) for line in (BENCHMARKS / "gsm8k_test.jsonl").open(encoding="utf-8")]
    q = rows[17]["question"]
    hits = real_index.check(f"User: {q}\nAssistant: Let me work through this carefully.")
    assert {(h.benchmark, h.item_id) for h in hits} == {("gsm8k", "17")}
    assert any(h.method == "ngram" for h in hits) and any(h.method == "substring" for h in hits)
    # its second half, lightly reworded at the edges, is caught by the n-grams alone
    words = q.split()
    partial = "So, " + " ".join(words[len(words) // 3 :]).rstrip("?") + ", right?"
    assert ("gsm8k", 17) in {(h.benchmark, h.item) for h in real_index.check(partial) if h.method == "ngram"}


@needs_real
def test_real_humaneval_and_mmlu_items_are_named(real_index: DecontaminationIndex):
    he = [json.loads(line) for line in (BENCHMARKS / "humaneval.jsonl").open(encoding="utf-8")]
    hits = real_index.check("Write this function:\n" + he[12]["prompt"])
    assert ("humaneval", "HumanEval/12") in {(h.benchmark, h.item_id) for h in hits}
    with (BENCHMARKS / "mmlu_test" / "high_school_biology_test.csv").open(encoding="utf-8", newline="") as f:
        row = list(csv.DictReader(f))[40]
    hits = real_index.check(f"Question: {row['question']}\nA) {row['choice0']}\nB) {row['choice1']}")
    assert ("mmlu", "high_school_biology_test:40") in {(h.benchmark, h.item_id) for h in hits}


@needs_real
def test_real_mmlu_template_and_unrelated_text_are_not_caught(real_index: DecontaminationIndex):
    with (BENCHMARKS / "mmlu_test" / "moral_scenarios_test.csv").open(encoding="utf-8", newline="") as f:
        question = next(csv.DictReader(f))["question"]
    preamble = question.split("Scenario 1")[0]
    assert len(tokens(preamble)) >= 20  # long enough that only the boilerplate rule keeps it from matching
    assert real_index.check(preamble) == []
    assert real_index.check(question)  # the scenarios themselves are item content
    assert real_index.check(UNRELATED) == []
    code = 'def add(a: int, b: int) -> int:\n    """Return the sum of a and b."""\n    return a + b\n'
    assert real_index.check(code) == []


# ---------------------------------------------------------------------------------------------- one word changed


NEAR_ITEMS = [
    {"q": "Which planet in the solar system has the most moons?", "a": "Saturn"},
    {"q": "哪个国家的首都是堪培拉市区？", "a": "澳大利亚"},
    {"q": "Name the author of the novel Pride and Prejudice.", "a": "Jane Austen"},
    {
        "q": "What is the name of the court case that ended school segregation?",
        "a": "Brown v. Board of Education of Topeka (1954)",
    },
]


@pytest.mark.parametrize(
    ("text", "item"),
    [
        ("Which planet in the solar system has the most rings?", 0),  # substituted
        ("Which planet in our solar system has the most moons?", 0),  # substituted (the -> our)
        ("Which planet in the whole solar system has the most moons?", 0),  # inserted
        ("Which planet in solar system has the most moons?", 0),  # deleted
        ("WHICH PLANET IN THE SOLAR SYSTEM HAS THE MOST RINGS", 0),  # case, punctuation and a word
        ("请回答：哪个国家的首都是堪培拉市中心？", 1),  # a character changed, in Chinese
        ("Name the writer of the novel Pride and Prejudice!", 2),
    ],
)
def test_a_short_item_with_one_word_changed_is_found(tmp_path: Path, text: str, item: int):
    index = index_for(write_jsonl(tmp_path / "near.jsonl", NEAR_ITEMS), ["q", "a"])
    hits = index.check(f"Some context first. {text} Then an answer.")
    assert [(h.item, h.method) for h in hits] == [(item, "near")], hits


def test_near_matching_leaves_two_edits_and_names_in_prose_alone(tmp_path: Path):
    index = index_for(write_jsonl(tmp_path / "near.jsonl", NEAR_ITEMS), ["q", "a"])
    assert index.check("Which planet in our solar system has the most rings?") == []  # two words changed
    # an answer that is a name: prose mentions it with a word different, which is not a copy of the item
    assert index.check("The ruling in Brown v. Board of Education of Topeka ended it.") == []
    # a record that holds a short question and its answer: the pair is indexed as one text as well
    hits = index.check("Q: Name the author of the novel Pride and Prejudice.\nA: Jane Austen")
    assert [(h.item, h.method) for h in hits][:1] == [(2, "ngram")]
