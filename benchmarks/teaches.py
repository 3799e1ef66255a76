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
alone is printed too (a whole-sentence answer caps it at the span's share of the sentence). Both runs train on the same number of records (`--train`, a seeded uniform draw from what each
run kept), with the same steps, batch, learning rate and seed.

Each run is a real `sftforge run` (sources, generate, clean, train, evaluate), resumable: a rerun reuses what is
done (benchmarks/.cache/teaches/). Figures: token F1 (SQuAD-style, best over the gold answers) of the generated
answers, and exact match, from each run's evaluate stage; the base model's from the unchecked run (both runs
score the same base).

    python benchmarks/teaches.py [--paragraphs 40] [--per-article 5] [--questions 2] [--records 64] [--train 60]
                                 [--steps 32]

Last line: `teaches: F1 base B unchecked U checked C`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

from sftforge.lib.grounding import sentence_spans
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


def recipe(name: str, checked: bool, docs: Path, evaluation: Path, args: argparse.Namespace) -> dict:
    return {
        "name": name,
        "task": {
            "type": "qa",
            "qa_mode": "extractive",
            "qa_strategy": "answer_first",
            "description": "Reading comprehension questions about Wikipedia paragraphs, answered from the text.",
            "language": "en",
            "target_count": args.records,
            "constraints": {"responsiveness": {"enabled": checked}},
        },
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
        "selection": {"strategy": "uniform", "budget": {"records": args.train}, "eval_fraction": 0.05},
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
            "seed": 0,
        },
        "evaluation": {
            "files": [str(evaluation)],
            "max_examples": args.paragraphs * args.questions,
            "max_new_tokens": 48,
        },
        "output": {"formats": ["openai"]},
    }


def run(name: str, checked: bool, docs: Path, evaluation: Path, args: argparse.Namespace) -> dict:
    path = CACHE / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe(name, checked, docs, evaluation, args), sort_keys=False), encoding="utf-8")
    out = CACHE / "runs" / name
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sftforge.cli", "run", str(path), "--out", str(out)])
    if proc.returncode != 0:
        raise SystemExit(f"{name}: sftforge run failed ({proc.returncode}); rerun to resume")
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    stages = manifest["stages"]
    seconds = ", ".join(f"{k} {v.get('seconds') or 0:.0f}" for k, v in stages.items())
    print(
        f"{name}: {stages['generate']['counts']} generated, {stages['clean']['counts']['records']} kept; "
        f"stage seconds {seconds}; this call {time.perf_counter() - t:.0f} s",
        flush=True,
    )
    return manifest


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
    ap.add_argument("--records", type=int, default=64, help="records per run (task.target_count)")
    ap.add_argument("--train", type=int, default=60, help="records each run trains on (a uniform draw)")
    ap.add_argument("--steps", type=int, default=32, help="LoRA optimizer steps of 4 records, both runs")
    args = ap.parse_args()
    t = time.perf_counter()
    docs, evaluation, n = prepare(args.paragraphs, args.per_article, args.questions)
    print(f"{args.paragraphs} XQuAD paragraphs; {n} human questions about them, all scored")
    unchecked = figures(run("unchecked", False, docs, evaluation, args), evaluation, CACHE / "runs" / "unchecked")
    checked = figures(run("checked", True, docs, evaluation, args), evaluation, CACHE / "runs" / "checked")
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
