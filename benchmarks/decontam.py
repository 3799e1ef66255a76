"""Does decontamination find benchmark items planted in SFT records, lightly edited, without flagging clean data?

Benchmarks (../shared/data/benchmarks, see SOURCES.md): GSM8K test (question; answer), HumanEval (prompt; canonical
solution), MMLU test (question; four choices), and, for Chinese, the 1,190 human-written XQuAD zh questions
(../shared/data/corpus/xquad.zh.json; answer: the human answer span) standing in for a Chinese benchmark.

Planted: `--per-way` items of each benchmark in each of six ways, as a user/assistant record:
- verbatim: the item's text as the user turn, an answer of our own as the assistant turn;
- case and punctuation: the same text upper- or lower-cased with its punctuation dropped or doubled;
- one word changed: one token substituted, inserted or deleted (English: a word; Chinese: a character);
- wrapped: the item inside two paragraphs of unrelated text;
- split across fields: the question as the user turn and the benchmark's own answer as the assistant turn;
- both edits: case and punctuation changed and one word changed.
Clean: at least 2,000 records nobody planted anything in: paragraphs of the Python PEPs and of XQuAD en, the
Chinese BELLE seed tasks and COLDataset sentences (../shared/data/seeds, ../shared/data/safety).

A planted record counts as found when the check names the item it was made from; a clean record that gets any hit
is a false positive. Items too short to check (`DecontaminationIndex.too_short`) are reported, and planted too:
they count as misses, so the figure says what is caught of all items.

    python benchmarks/decontam.py [--per-way 200] [--seed 0]

Last line: `contamination recall: R false positives: F` (F: clean records flagged, of the number checked).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import time
from collections import Counter
from pathlib import Path

from sftforge.lib.decontam import DecontaminationIndex
from sftforge.lib.decontam.index import Benchmark, BenchmarkItem
from sftforge.sources.benchmarks import BenchmarkSpec, load_benchmark

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
WAYS = ("verbatim", "case_punct", "one_word", "wrapped", "split_fields", "case_and_word")
FILLER_EN = "the of a to in and model data value first result other time people".split()
FILLER_ZH = list(
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严龙飞"
)
QUESTION_PREFIX = ("Please answer: ", "Q: ", "Here is a problem.\n", "")


def load_benchmarks() -> dict[str, tuple[Benchmark, list[tuple[str, str]]]]:
    """name -> (the benchmark as indexed, [(question text, answer text)] per item)."""
    bench = DATA / "benchmarks"
    out: dict[str, tuple[Benchmark, list[tuple[str, str]]]] = {}
    gsm = [json.loads(line) for line in (bench / "gsm8k_test.jsonl").read_text(encoding="utf-8").splitlines()]
    spec = BenchmarkSpec(path=str(bench / "gsm8k_test.jsonl"), fields=["question", "answer"], name="gsm8k")
    out["gsm8k"] = (load_benchmark(spec), [(r["question"], r["answer"]) for r in gsm])
    he = [json.loads(line) for line in (bench / "humaneval.jsonl").read_text(encoding="utf-8").splitlines()]
    spec = BenchmarkSpec(
        path=str(bench / "humaneval.jsonl"),
        fields=["prompt", "canonical_solution"],
        name="humaneval",
        id_field="task_id",
    )
    out["humaneval"] = (load_benchmark(spec), [(r["prompt"], r["canonical_solution"]) for r in he])
    spec = BenchmarkSpec(
        path=str(bench / "mmlu_test"), fields=["question", "choice0", "choice1", "choice2", "choice3"], name="mmlu"
    )
    mmlu_pairs = []
    for path in sorted((bench / "mmlu_test").glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                choices = [row[f"choice{i}"] for i in range(4)]
                text = row["question"] + "\n" + "\n".join(f"{'ABCD'[i]}. {c}" for i, c in enumerate(choices))
                mmlu_pairs.append((text, choices[int(row["answer"])]))
    out["mmlu"] = (load_benchmark(spec), mmlu_pairs)
    xq = json.loads((DATA / "corpus" / "xquad.zh.json").read_text(encoding="utf-8"))["data"]
    qas = [qa for a in xq for p in a["paragraphs"] for qa in p["qas"]]
    items = [BenchmarkItem(str(i), [qa["question"], qa["answers"][0]["text"]]) for i, qa in enumerate(qas)]
    out["xquad_zh"] = (Benchmark("xquad_zh", items), [(qa["question"], qa["answers"][0]["text"]) for qa in qas])
    return out


def clean_records(rng: random.Random) -> list[list[dict[str, str]]]:
    """At least 2,000 records with no benchmark text in them, as message lists."""
    texts: list[str] = []
    for path in sorted((DATA / "corpus" / "python_peps").glob("*.rst")):
        paras = [p.strip() for p in path.read_text(encoding="utf-8").split("\n\n") if len(p.strip()) > 200]
        texts += rng.sample(paras, min(3, len(paras)))
    xq = json.loads((DATA / "corpus" / "xquad.en.json").read_text(encoding="utf-8"))["data"]
    texts += [p["context"] for a in xq for p in a["paragraphs"]]
    zh = [json.loads(line) for line in (DATA / "seeds" / "belle_zh_seed_tasks.jsonl").read_text("utf-8").splitlines()]
    texts += [r["instruction"] + "\n" + "".join(i.get("output", "") for i in r.get("instances", [])) for r in zh]
    with (DATA / "safety" / "zh_offensive_2000.csv").open(encoding="utf-8", newline="") as f:
        cold = [row["TEXT"] for row in csv.DictReader(f) if len(row.get("TEXT", "")) > 20]
    texts += cold[:700]
    out = []
    for t in texts:
        half = len(t) // 2
        out.append([{"role": "user", "content": t[:half]}, {"role": "assistant", "content": t[half:]}])
    return out


def _is_zh(text: str) -> bool:
    return bool(re.search(r"[\u4e00-\u9fff]", text))


def case_punct(text: str, rng: random.Random) -> str:
    text = text.upper() if rng.random() < 0.5 else text.lower()
    if rng.random() < 0.5:
        return re.sub(r"[^\w\s]", " ", text)  # punctuation dropped (a space kept: "fib(n" must not become "fibn")
    return re.sub(r"([,.?!;:，。？！])", r"\1\1", text)


def one_word(text: str, rng: random.Random) -> str:
    """One token substituted, inserted or deleted (a character for Chinese), away from the very start and end."""
    if _is_zh(text):
        spots = [m.start() for m in re.finditer(r"[\u4e00-\u9fff]", text)]
        i = spots[len(spots) // 4 + rng.randrange(max(1, len(spots) // 2))] if spots else 0
        op = rng.choice(("sub", "ins", "del"))
        new = rng.choice(FILLER_ZH)
        return text[:i] + (new if op != "del" else "") + text[i + (0 if op == "ins" else 1) :]
    words = list(re.finditer(r"[A-Za-z]{2,}", text))
    if not words:
        return text
    m = words[len(words) // 4 + rng.randrange(max(1, len(words) // 2))] if len(words) > 2 else words[0]
    op = rng.choice(("sub", "ins", "del"))
    new = rng.choice(FILLER_EN)
    if op == "sub":
        return text[: m.start()] + new + text[m.end() :]
    if op == "ins":
        return text[: m.start()] + new + " " + text[m.start() :]
    return text[: m.start()] + text[m.end() :].lstrip(" ")


def planted(way: str, question: str, answer: str, filler: list[str], rng: random.Random) -> list[dict[str, str]]:
    lead = rng.choice(QUESTION_PREFIX)
    reply = "Let me work through it step by step before giving the result."
    if way == "verbatim":
        return [{"role": "user", "content": lead + question}, {"role": "assistant", "content": reply}]
    if way == "case_punct":
        return [{"role": "user", "content": lead + case_punct(question, rng)}, {"role": "assistant", "content": reply}]
    if way == "one_word":
        return [{"role": "user", "content": lead + one_word(question, rng)}, {"role": "assistant", "content": reply}]
    if way == "case_and_word":
        edited = case_punct(one_word(question, rng), rng)
        return [{"role": "user", "content": lead + edited}, {"role": "assistant", "content": reply}]
    if way == "wrapped":
        a, b = rng.sample(filler, 2)
        return [{"role": "user", "content": f"{a}\n\n{question}\n\n{b}"}, {"role": "assistant", "content": reply}]
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]  # split_fields


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-way", type=int, default=200, help="items planted per benchmark and way")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    t0 = time.perf_counter()
    benches = load_benchmarks()
    index = DecontaminationIndex()
    for bench, _ in benches.values():
        index.add(bench)
    build = time.perf_counter() - t0
    short = index.too_short()
    print(
        f"index: {sum(len(b.items) for b, _ in benches.values())} items in {build:.1f} s, {index.nbytes / 2**20:.1f} MiB"
    )
    for name, ids in short.items():
        print(f"  {name}: {len(ids)} items too short to check (e.g. {', '.join(ids[:3])})")

    clean = clean_records(rng)
    filler = [m[0]["content"] for m in clean if not _is_zh(m[0]["content"]) and len(m[0]["content"]) > 80]
    found: Counter[tuple[str, str]] = Counter()
    total: Counter[tuple[str, str]] = Counter()
    checked = 0
    t_check = 0.0
    missed: list[tuple[str, str, str]] = []
    for name, (_bench, pairs) in benches.items():
        for way in WAYS:
            for i in rng.sample(range(len(pairs)), min(args.per_way, len(pairs))):
                question, answer = pairs[i]
                messages = planted(way, question, answer, filler, rng)
                text = "\n".join(m["content"] for m in messages)
                t = time.perf_counter()
                hits = index.check(text)
                t_check += time.perf_counter() - t
                checked += 1
                total[name, way] += 1
                hit = any(h.benchmark == name and h.item == i for h in hits)
                found[name, way] += hit
                if not hit and len(missed) < 400:
                    missed.append((name, way, messages[0]["content"][:100].replace("\n", " ")))
    fp_records = []
    t = time.perf_counter()
    for messages in clean:
        hits = index.check("\n".join(m["content"] for m in messages))
        if hits:
            fp_records.append((hits[0].describe(), messages[0]["content"][:80].replace("\n", " ")))
    t_clean = time.perf_counter() - t
    print(f"\n| benchmark | {' | '.join(WAYS)} | all |")
    print("|---|" + "---:|" * (len(WAYS) + 1))
    for name in benches:
        cells = [f"{found[name, w] / total[name, w]:.2f}" for w in WAYS]
        n_all = sum(total[name, w] for w in WAYS)
        f_all = sum(found[name, w] for w in WAYS)
        print(f"| {name} | {' | '.join(cells)} | {f_all / n_all:.2f} |")
    by_way = Counter(w for _, w, _ in missed)
    print(f"\nmisses by way: {dict(by_way)}")
    for name, way, text in missed[:12]:
        print(f"  MISS {name:9} {way:13} {text}")
    for what, text in fp_records[:10]:
        print(f"  FALSE POSITIVE {what}: {text}")
    speed = (checked + len(clean)) / (t_check + t_clean)
    print(f"\nspeed: {speed:,.0f} records/s on one core (planted and clean records, check only)")
    recall = sum(found.values()) / sum(total.values())
    print(f"contamination recall: {recall:.3f} false positives: {len(fp_records)} of {len(clean)}")


if __name__ == "__main__":
    main()
