"""Offensive or toxic language in instructions and replies: a score per record, bounded like every other filter.

Screens, per language, all offline:
- English: `alt-profanity-check` (MIT): a TF-IDF linear SVM with calibrated probabilities, shipped inside the wheel
  (744 KB). It catches insults, slurs, profanity and harassment; it misses toxicity without toxic words (sarcasm,
  implied threats, coded bias), and it was trained on Davidson et al.'s tweets and Jigsaw's Wikipedia talk-page
  comments, so figures on Wikipedia comments flatter it (`benchmarks/safety.py` says so beside its figure).
- Any language, or in place of the default: `models: {lang: path}` names a classifier the user has: a scikit-learn
  pipeline saved with joblib (`predict_proba` over raw texts; a pickle, so name only files you trust) or a
  transformers sequence-classification folder (e.g. a COLD-trained Chinese model), whose last label is taken as the
  offensive one unless `positive_label` names another.
Chinese has no screen that ships in a package and holds up on COLD (word lists measured at recall 0.06-0.41 with
precision under 0.64, `benchmarks/safety.py`'s notes), so without a model Chinese records, like those of any other
language without a screen, score NaN: **not screened**, counted as such in the operator's stats and the manifest,
never as safe, and kept (a bound does not remove what was not read).

The score is the highest over the record's user and assistant turns (a harmful instruction and a toxic reply both
count); system prompts are the recipe's own text and are not screened.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
from pydantic import Field

from sftforge.errors import ModelError
from sftforge.ops.base import BoundsConfig, Feature, register
from sftforge.sample import Record

log = logging.getLogger(__name__)


class ToxicityConfig(BoundsConfig):
    name: Literal["toxicity"] = "toxicity"
    models: dict[str, str] = Field(
        default_factory=dict,
        description="Classifier per language code: a joblib scikit-learn pipeline (`predict_proba` over texts) or a "
        "transformers sequence-classification folder; relative to the recipe. English defaults to alt-profanity-check.",
    )
    positive_label: str | None = Field(
        None, description="transformers models: the label that means offensive (default: the last label)."
    )
    batch_size: int = Field(32, ge=1, description="Texts per classifier call.")


class Screen(Protocol):
    def __call__(self, texts: list[str]) -> np.ndarray: ...


def _profanity_check() -> Screen:
    try:
        from profanity_check import predict_prob
    except ImportError as exc:  # pragma: no cover - a dependency of sftforge
        raise ModelError(
            "the English toxicity screen needs `alt-profanity-check` (pip install alt-profanity-check)"
        ) from exc
    return lambda texts: np.asarray(predict_prob(texts), dtype=float)


def _joblib_screen(path: Path) -> Screen:
    import joblib

    model = joblib.load(path)
    if not hasattr(model, "predict_proba"):
        raise ModelError(f"{path}: the model has no predict_proba; save a scikit-learn pipeline over raw texts")
    return lambda texts: np.asarray(model.predict_proba(texts), dtype=float)[:, -1]


def _transformers_screen(path: Path, positive_label: str | None, batch_size: int) -> Screen:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    labels = model.config.id2label
    if positive_label is None:
        positive = max(labels)
    else:
        found = [i for i, name in labels.items() if name == positive_label]
        if not found:
            raise ModelError(f"{path}: no label {positive_label!r} (labels: {', '.join(labels.values())})")
        positive = found[0]

    def screen(texts: list[str]) -> np.ndarray:
        out = []
        for i in range(0, len(texts), batch_size):
            enc = tok(texts[i : i + batch_size], truncation=True, max_length=256, padding=True, return_tensors="pt")
            with torch.inference_mode():
                out.append(torch.softmax(model(**enc).logits.float(), dim=-1)[:, positive].numpy())
        return np.concatenate(out) if out else np.zeros(0)

    return screen


@register
class Toxicity(Feature):
    """Probability that the record's most offensive user or assistant turn is offensive; NaN where the record's
    language has no screen (not screened, kept)."""

    name: ClassVar[str] = "toxicity"
    Config = ToxicityConfig
    config: ToxicityConfig
    batch_size: ClassVar[int] = 64
    reuse_stored: ClassVar[bool] = False  # the screened / not screened counts need the scoring itself

    def __init__(self, config: ToxicityConfig, base_dir: Path | None = None) -> None:
        super().__init__(config, base_dir)
        self.paths = {lang: self.resolve_path(p) for lang, p in config.models.items()}
        for lang, path in self.paths.items():
            if not path.exists():
                raise ModelError(f"toxicity: the {lang} model {path} does not exist")
        self._screens: dict[str, Screen] = {}
        self.screened = 0
        self.not_screened: dict[str, int] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_screens": {}}  # models load where the operator runs

    def languages(self) -> set[str]:
        """Languages this operator screens."""
        return {"en"} | set(self.paths)

    def screen(self, lang: str) -> Screen | None:
        if lang not in self._screens:
            path = self.paths.get(lang)
            if path is not None:
                self._screens[lang] = (
                    _transformers_screen(path, self.config.positive_label, self.config.batch_size)
                    if path.is_dir()
                    else _joblib_screen(path)
                )
            elif lang == "en":
                self._screens[lang] = _profanity_check()
            else:
                return None
        return self._screens[lang]

    def setup(self) -> None:
        for lang in self.languages():
            self.screen(lang)

    def score_batch(self, records: list[Record]) -> list[float]:
        out = [math.nan] * len(records)
        by_lang: dict[str, list[int]] = {}
        for i, r in enumerate(records):
            by_lang.setdefault(r.lang, []).append(i)
        for lang, rows in by_lang.items():
            screen = self.screen(lang)
            if screen is None:
                self.not_screened[lang] = self.not_screened.get(lang, 0) + len(rows)
                continue
            turns = [[m["content"] for m in records[i].messages if m["role"] in ("user", "assistant")] for i in rows]
            texts = [t for ts in turns for t in ts if t.strip()]
            probs = iter(screen(texts) if texts else [])
            for i, ts in zip(rows, turns):
                scores = [float(next(probs)) for t in ts if t.strip()]
                out[i] = max(scores) if scores else 0.0
            self.screened += len(rows)
        return out

    def keep(self, score: float) -> bool:
        return math.isnan(score) or super().keep(score)  # not screened is kept, and counted as not screened

    def stats(self) -> dict[str, Any]:
        return {"screened": self.screened, "not_screened": dict(self.not_screened)}
