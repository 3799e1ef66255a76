"""Does data that passed the responsiveness check teach more? The same open-book QA recipe over XQuAD English
paragraphs, made by the bundled model twice (check off, check on: same passages, same record count), fine-tuned
with the same LoRA budget, and the base and both tuned models scored on XQuAD's human-written questions about
those paragraphs (never shown to the generator).

Data: XQuAD (Artetxe et al. 2020; CC BY-SA 4.0) in ../shared/data/corpus/xquad.en.json. The first `--paragraphs`
paragraphs (in article order, at most `--per-article` per article, so several topics are covered) are the
documents; the first `--questions` crowd-written questions of each of them, each with its paragraph as context in
the same user turn the records use (`record_qa_context`), and the human answers as the gold set, are the
evaluation file. The reference of each question is the paragraph sentence that holds the human answer (the
sentence a person marked the answer in, `sftforge.lib.grounding.sentence_spans`): the records answer with a
passage sentence, so what they can teach is to pick the sentence that answers; token F1 against the human span
alone is printed too (a whole-sentence answer caps it at the span's share of the sentence).

Two passes, each a real `sftforge run`, resumable (a rerun reuses what is done, benchmarks/.cache/teaches/):
1. generation (sources, generate, clean): the records, check off and on, from the same passages with the same
   sampling seed;
2. training (the `import` generator over the drawn records as they are, then train and evaluate): both models
   train on records with the same answers, `--train` of them drawn (seeded) from the answer sentences both runs
   kept, each run with its own question for each, with the same steps, batch, learning rate and seed. What
   differs is only what the check changes: the questions. The draw is matched because coverage swamps question
   quality otherwise: the check rejects the items it cannot get a responsive question for, and a uniform draw of
   each run's own records trained the unchecked model on the gold sentence of 37 of the 77 questions and the
   checked one on 30; tuned F1 was 0.79 on covered questions and 0.46 on the others, and the uncontrolled
   comparison came out 0.618 (unchecked) vs 0.616 (checked).

Figures: token F1 (SQuAD-style, best over the gold answers) of the generated answers, and exact match, from the
training runs' evaluate stages; the base model's from the unchecked one (both score the same base). Training runs
in `dtype: mixed` where the CPU has native bf16 (and so does evaluation: the evaluate stage computes as training
did), else fp32.

    python benchmarks/teaches.py [--paragraphs 40] [--per-article 5] [--questions 2] [--records 64] [--train 60]
                                 [--steps 32] [--seed 0]

Last line: `teaches: F1 base B unchecked U checked C`.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import yaml

from sftforge.config import Responsiveness
from sftforge.generate.answer_check import ResponsivenessCheck
from sftforge.generate.parsing import ParseError
from sftforge.lib.grounding import sentence_spans
from sftforge.llm.hf import bf16_is_faster
from sftforge.run import RunDir
from sftforge.sample import Record
from sftforge.train.answer_metrics import token_f1

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "corpus" / "xquad.en.json"
CACHE = REPO / "benchmarks" / ".cache" / "teaches"
RECORD_QA_CONTEXT = "Answer the question using the text.\n\nText:\n{passage}\n\nQuestion: {question}"


def prepare(paragraphs: int, per_article: int, questions: int) -> tuple[Path, Path, int]:
    """Write the documents (one file per paragraph) and the evaluation file; (docs dir, eval file, questions)."""
    data = json.loads(DATA.read_text(encoding="utf-8"))
    docs, rows = CACHE / "docs", []
    docs.mkdir(parents=True, exist_ok=True)
    taken = 0
    for a, article in enumerate(data["data"]):
        for p, para in enumerate(article["paragraphs"][:per_article]):
            if taken == paragraphs:
                break
            taken += 1
            doc = docs / f"xquad-{a:02d}-{p}.txt"
            if not doc.exists() or doc.read_text(encoding="utf-8") != para["context"] + "\n":
                doc.write_text(para["context"] + "\n", encoding="utf-8")  # unchanged files keep the runs resumable
            ctx = para["context"]
            spans = sentence_spans(ctx)
            for qa in para["qas"][:questions]:
                user = RECORD_QA_CONTEXT.format(passage=ctx, question=qa["question"])
                start = qa["answers"][0]["answer_start"]
                s, e = next(((s, e) for s, e in spans if s <= start < e), spans[-1])
                rows.append(
                    {
                        "id": qa["id"],
                        "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": ctx[s:e]}],
                        "task": "qa",
                        "lang": "en",
                        "answers": [ctx[s:e]],
                        "spans": sorted({x["text"] for x in qa["answers"]}),
                    }
                )
    evaluation = CACHE / "xquad_questions.jsonl"
    evaluation.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return docs, evaluation, len(rows)


TASK = {
    "type": "qa",
    "qa_mode": "extractive",
    "qa_strategy": "answer_first",
    "description": "Reading comprehension questions about Wikipedia paragraphs, answered from the text.",
    "language": "en",
}


def generation_recipe(name: str, checked: bool, docs: Path, args: argparse.Namespace) -> dict:
    """Pass 1: the open-book QA records, with the check off or on (sources to clean, no training)."""
    return {
        "name": name,
        "task": {**TASK, "target_count": args.records, "constraints": {"responsiveness": {"enabled": checked}}},
        "sources": {
            "documents": [{"path": str(docs)}],
            "chunking": {"max_tokens": 256, "overlap_tokens": 0, "min_tokens": 24},
            "retrieval": {"method": "none"},
        },
        "generation": {
            "model": {"path": "bundled", "n_ctx": 1024, "parallel": 8},
            "sampling": {"temperature": 0.3, "top_p": 0.95, "max_tokens": 64, "seed": 7},
            "per_passage": 3,
            "max_attempts": 2,
        },
        "cleaning": {
            "filters": [{"name": "format"}, {"name": "answer_support", "min": 0.5}],
            "dedup": [{"name": "exact_dedup", "scope": "user"}],
        },
        "output": {"formats": ["openai"]},
    }


def training_recipe(name: str, data: Path, evaluation: Path, records: int, args: argparse.Namespace) -> dict:
    """Pass 2: fine-tune on the drawn records as they are (the `import` generator), then score on the human
    questions. Every record trains (no held-out split: the human questions are the evaluation)."""
    return {
        "name": name,
        "task": {**TASK, "target_count": records},
        "sources": {"datasets": [{"path": str(data), "format": "messages"}], "search": {"method": "none"}},
        "generators": [{"name": "import"}],
        "cleaning": {"filters": [], "dedup": []},
        "selection": {"strategy": "uniform", "budget": {"records": records}, "eval_fraction": 0.0},
        "training": {
            "model": "bundled",
            "method": "lora",
            "steps": args.steps,
            "batch_size": 4,
            "learning_rate": 3e-4,
            "schedule": "cosine",
            "warmup_steps": 0,
            "max_seq_len": 384,
            "eval_every": args.steps,
            "save_every": args.steps,
            "dtype": args.dtype,
            "seed": 0,
        },
        "evaluation": {"files": [str(evaluation)], "max_examples": 10_000, "max_new_tokens": 48},
        "output": {"formats": ["openai"]},
    }


def sftforge_run(recipe: dict) -> tuple[dict, Path]:
    """`sftforge run` of a recipe (resumable: a rerun reuses finished stages); its manifest and run directory."""
    name = recipe["name"]
    path = CACHE / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    out = CACHE / "runs" / name
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sftforge.cli", "run", str(path), "--out", str(out)])
    if proc.returncode != 0:
        raise SystemExit(f"{name}: sftforge run failed ({proc.returncode}); rerun to resume")
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    stages = manifest["stages"]
    seconds = ", ".join(f"{k} {v.get('seconds') or 0:.0f}" for k, v in stages.items())
    print(f"{name}: stage seconds {seconds}; this call {time.perf_counter() - t:.0f} s", flush=True)
    return manifest, out


def by_answer(run_dir: Path) -> dict[str, Record]:
    """The run's kept records by answer (a passage sentence: answer-first QA answers with one)."""
    return {r.messages[-1]["content"]: r for r in RunDir(run_dir).read_records("clean")}


def fails_check(records: list[Record]) -> int:
    """How many of the records the responsiveness check would reject (the unchecked run's share of mismatches)."""
    check = ResponsivenessCheck(Responsiveness(enabled=True), "en")
    failed = 0
    for r in records:
        user, answer = r.messages[0]["content"], r.messages[-1]["content"]
        passage, question = user.split("Text:\n", 1)[1].rsplit("\n\nQuestion: ", 1)
        start = passage.find(answer)
        try:
            check.check(passage, question, answer, (start, start + len(answer)) if start >= 0 else None)
        except ParseError:
            failed += 1
    return failed


def figures(manifest: dict, evaluation: Path, run_dir: Path) -> dict:
    """The evaluate stage's figures on the human questions, with token F1 against the human spans added."""
    results = manifest["stages"]["evaluate"]["extra"]["results"][evaluation.stem]
    spans = {}
    for line in evaluation.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        spans[row["id"]] = row["spans"]
    f1: dict[str, list[float]] = {"base": [], "tuned": []}
    for line in (run_dir / "evaluate" / "answers.jsonl").read_text(encoding="utf-8").splitlines():
        a = json.loads(line)
        if a["set"] == evaluation.stem:
            f1[a["model"]].append(token_f1(a["prediction"], spans[a["record_id"]], "en"))
    for model, values in f1.items():
        results[model]["span_f1"] = sum(values) / max(1, len(values))
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--paragraphs", type=int, default=40)
    ap.add_argument("--per-article", type=int, default=5)
    ap.add_argument("--questions", type=int, default=2, help="human questions per paragraph, scored per model")
    ap.add_argument("--records", type=int, default=64, help="records per generation run (task.target_count)")
    ap.add_argument("--train", type=int, default=60, help="records each model trains on (same answers in both)")
    ap.add_argument("--steps", type=int, default=32, help="LoRA optimizer steps of 4 records, both runs")
    ap.add_argument("--seed", type=int, default=0, help="the draw of the answers both models train on")
    ap.add_argument(
        "--dtype", choices=["mixed", "float32"], help="training precision; default: mixed where bf16 is faster"
    )
    args = ap.parse_args()
    if args.dtype is None:
        args.dtype = "mixed" if bf16_is_faster() else "float32"
    t = time.perf_counter()
    docs, evaluation, n = prepare(args.paragraphs, args.per_article, args.questions)
    gold = [json.loads(line)["answers"][0] for line in evaluation.read_text(encoding="utf-8").splitlines()]
    print(f"{args.paragraphs} XQuAD paragraphs; {n} human questions about them, all scored; training in {args.dtype}")
    made = {}
    for name, checked in (("unchecked", False), ("checked", True)):
        _, run_dir = sftforge_run(generation_recipe(name, checked, docs, args))
        made[name] = by_answer(run_dir)
        covered = sum(g in made[name] for g in gold)
        print(
            f"{name}: {len(made[name])} records kept; their answers hold the gold sentence of {covered} of {n} questions"
        )
    shared = sorted(set(made["unchecked"]) & set(made["checked"]))
    drawn = random.Random(args.seed).sample(shared, min(args.train, len(shared)))
    differ = sum(made["unchecked"][a].messages != made["checked"][a].messages for a in drawn)
    failed = fails_check([made["unchecked"][a] for a in drawn])
    print(
        f"training sets: {len(drawn)} answers drawn from the {len(shared)} both runs kept (the gold sentence of "
        f"{sum(g in drawn for g in gold)} of {n} questions); the two runs asked a different question for {differ} of "
        f"them; {failed} of the unchecked run's {len(drawn)} fail the check"
    )
    results = {}
    for name in made:
        data = CACHE / f"{name}.train.jsonl"
        rows = [json.dumps({"messages": made[name][a].messages}, ensure_ascii=False) + "\n" for a in drawn]
        if not data.exists() or data.read_text(encoding="utf-8") != "".join(rows):
            data.write_text("".join(rows), encoding="utf-8")  # unchanged files keep the runs resumable
        manifest, run_dir = sftforge_run(training_recipe(f"{name}-tuned", data, evaluation, len(drawn), args))
        results[name] = figures(manifest, evaluation, run_dir)
    unchecked, checked = results["unchecked"], results["checked"]
    for label, res in (("base", unchecked["base"]), ("unchecked", unchecked["tuned"]), ("checked", checked["tuned"])):
        print(
            f"  {label:9s} token F1 {res['token_f1']:.3f} (vs the human span {res['span_f1']:.3f})  exact match "
            f"{res['exact_match']:.3f}  ROUGE-L {res['rouge_l']:.3f}  loss {res['loss']:.3f}"
        )
    print(f"total {time.perf_counter() - t:.0f} s")
    print(
        f"teaches: F1 base {unchecked['base']['token_f1']:.3f} unchecked {unchecked['tuned']['token_f1']:.3f} "
        f"checked {checked['tuned']['token_f1']:.3f}"
    )


if __name__ == "__main__":
    main()
