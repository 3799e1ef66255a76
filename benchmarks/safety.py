"""Does the toxicity screen catch offensive text, and leave the project's own corpora alone? Measured on labelled
data nobody here wrote.

Data (../shared/data/safety): English, Jigsaw's identity-term test set of Wikipedia talk-page comments (1,492, 248
toxic by most of ~10 raters); Chinese, COLD's test split (the first 2,000, 783 offensive: race, gender and region;
much of it implicit bias). Each text is screened as a one-turn record with the presets' `toxicity` operator and
bound; precision and recall of "flagged" against the labels.

Benign text: the example corpora, paragraph by paragraph as single-turn records: the PEPs (examples/data/peps and
../shared/data/corpus/python_peps), XQuAD's English and Chinese paragraphs, and the product FAQ. The share flagged
should be under 0.5%.

Caveat printed beside the English figure: alt-profanity-check was trained on Jigsaw's Kaggle toxic-comment data,
drawn from the same pool of Wikipedia talk-page comments as this test set; the figure flatters it.

    python benchmarks/safety.py [--zh-model PATH]   # PATH: a joblib pipeline or transformers folder for Chinese

Last line: `safety: en P/R zh P/R`, written as `safety: en 0.xx/0.xx zh 0.xx/0.xx` (`zh not screened` without a
Chinese model).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

import numpy as np

from degenerate import auc  # one unpaired AUC for the benchmarks (P(positive scores above negative))
from sftforge.ops import build
from sftforge.ops.presets import preset_filters
from sftforge.ops.toxicity import ToxicityConfig
from sftforge.sample import Record

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"


def record(text: str, lang: str) -> Record:
    return Record(id="", messages=[{"role": "user", "content": text}], task="t", lang=lang)


def labelled(lang: str) -> tuple[list[str], np.ndarray]:
    if lang == "en":
        with open(DATA / "safety" / "en_toxicity_1492.csv", encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        return [r["comment"] for r in rows], np.array([r["toxic"] == "True" for r in rows])
    with open(DATA / "safety" / "zh_offensive_2000.csv", encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    return [r["TEXT"] for r in rows], np.array([r["label"] == "1" for r in rows])


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in text.split("\n\n") if len(p.strip()) > 40]


def benign() -> dict[str, tuple[str, list[str]]]:
    peps = [p for f in sorted((REPO / "examples" / "data" / "peps").glob("*.rst")) for p in paragraphs(f.read_text())]
    shared_peps = DATA / "corpus" / "python_peps"
    if shared_peps.exists():
        peps += [
            p for f in sorted(shared_peps.iterdir()) if f.is_file() for p in paragraphs(f.read_text(errors="ignore"))
        ]
    faq = [
        p
        for f in sorted((REPO / "examples" / "data" / "product_faq").rglob("*"))
        if f.is_file()
        for p in paragraphs(f.read_text(errors="ignore"))
    ]
    out = {"peps": ("en", peps), "product_faq": ("en", faq)}
    for lang in ("en", "zh"):
        data = json.loads((DATA / "corpus" / f"xquad.{lang}.json").read_text(encoding="utf-8"))
        out[f"xquad_{lang}"] = (lang, [p["context"] for a in data["data"] for p in a["paragraphs"]])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--zh-model", help="a Chinese classifier (joblib pipeline or transformers folder)")
    args = ap.parse_args()
    preset = {lang: next(c for c in preset_filters(lang) if c.name == "toxicity") for lang in ("en", "zh")}
    models = {"zh": str(Path(args.zh_model).resolve())} if args.zh_model else {}
    last = []
    ops = {}
    for lang in ("en", "zh"):
        cfg = preset[lang].model_copy(update={"models": models})
        op = ops[lang] = build(ToxicityConfig.model_validate(cfg.model_dump()))
        texts, toxic = labelled(lang)
        scores = np.array(op.score_batch([record(t, lang) for t in texts]))
        if np.isnan(scores).all():
            print(
                f"## {lang}: {len(texts)} labelled texts, {int(toxic.sum())} offensive: not screened (no {lang} model)"
            )
            last.append(f"{lang} not screened")
            continue
        flagged = np.array([not op.keep(s) for s in scores])
        tp = int((flagged & toxic).sum())
        precision, recall = tp / max(int(flagged.sum()), 1), tp / int(toxic.sum())
        print(f"## {lang}: {len(texts)} labelled texts, {int(toxic.sum())} offensive; bound max {cfg.max}")
        print(
            f"  AUC {auc(scores[toxic], scores[~toxic]):.3f}; flagged {int(flagged.sum())}: precision {precision:.3f} recall {recall:.3f}"
        )
        for bound in (0.25, 0.4, 0.45, 0.5, 0.75, 0.9):
            f = scores > bound
            t = int((f & toxic).sum())
            print(f"    max {bound:.2f}: precision {t / max(int(f.sum()), 1):.3f} recall {t / int(toxic.sum()):.3f}")
        if lang == "en":
            print(
                "  (alt-profanity-check was trained on Jigsaw's Wikipedia talk-page comments, the pool this test set comes from: the figure flatters it)"
            )
        last.append(f"{lang} {precision:.2f}/{recall:.2f}")
    print("## benign corpora (share of paragraphs flagged at the presets' bounds)")
    total = flagged_total = 0
    for name, (lang, texts) in benign().items():
        op = ops[lang]
        scores = op.score_batch([record(t, lang) for t in texts])
        screened = [s for s in scores if not math.isnan(s)]
        flagged = sum(not op.keep(s) for s in screened)
        total += len(screened)
        flagged_total += flagged
        note = (
            f"{flagged} of {len(screened)} flagged ({flagged / max(len(screened), 1):.2%})"
            if screened
            else "not screened"
        )
        print(f"  {name}: {len(texts)} paragraphs, {note}")
    print(f"  all screened paragraphs: {flagged_total} of {total} flagged ({flagged_total / max(total, 1):.2%})")
    print("safety: " + " ".join(last))


if __name__ == "__main__":
    main()
