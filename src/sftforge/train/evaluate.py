"""Evaluation of one model on one set of records: held-out loss and perplexity on the assistant tokens, and
generation metrics (exact match and token F1 for extractive QA, answer-set accuracy for KG questions, ROUGE-L
otherwise) on greedy answers to the records' prompts."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sftforge.errors import SourceError
from sftforge.llm.base import ChatRequest, SamplingParams
from sftforge.llm.hf import HFLLM
from sftforge.rows import read_rows
from sftforge.sample import AnswerCheck, Record, record_id
from sftforge.train.answer_metrics import SET_ANSWER_TASKS, aggregate, metrics_for
from sftforge.train.data import encode_all
from sftforge.train.model import example_losses, mean_loss


@dataclass(frozen=True, slots=True)
class Answer:
    """One generated answer next to its reference, with its metrics."""

    record_id: str
    prompt: str
    reference: str
    prediction: str
    metrics: dict[str, float]


def load_eval_file(path: Path) -> list[Record]:
    """Records from a JSONL file: full sftforge records, or rows with just `messages` (task and lang optional;
    `answers`, a list of names, is the gold answer set of a KG question: task kg_qa)."""
    if not path.exists():
        raise SourceError(f"evaluation.files: {path} does not exist")
    records = []
    for line in read_rows(path, on_bad="raise", error=SourceError):
        where, row = line.where, line.data
        messages = row.get("messages")
        if not isinstance(messages, list) or not any(
            isinstance(m, dict) and m.get("role") == "assistant" for m in messages
        ):
            raise SourceError(f"{where}: needs `messages`, a list of {{role, content}} with an assistant turn")
        try:
            clean = [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]
        except (KeyError, TypeError) as exc:
            raise SourceError(f"{where}: every message needs `role` and `content`") from exc
        answers = row.get("answers")
        if answers is not None and (not isinstance(answers, list) or not all(isinstance(a, str) for a in answers)):
            raise SourceError(f"{where}: `answers` must be a list of strings (the gold answer set)")
        check = row.get("answer_check")
        if answers is None and isinstance(check, dict) and isinstance(check.get("expected"), list):
            answers = [str(a) for a in check["expected"]]
        rid = row.get("id") or record_id(clean, [], f"eval:{path.name}")
        records.append(
            Record(
                id=str(rid),
                messages=clean,
                task=str(row.get("task", "instruction")),
                lang=str(row.get("lang", "en")),
                answer_check=AnswerCheck("given", True, 1.0, "answer set from the evaluation file", answers)
                if answers
                else None,
            )
        )
    if not records:
        raise SourceError(f"evaluation.files: {path} has no records")
    return records


def loss_metrics(model: Any, tokenizer: Any, records: list[Record], max_len: int, batch_size: int) -> dict[str, float]:
    """Token-weighted mean loss over the assistant tokens, its perplexity, and the counts behind them."""
    examples, _ = encode_all(tokenizer, records, max_len)
    pairs = example_losses(model, examples, tokenizer.pad_token_id, batch_size)
    loss = mean_loss(pairs)
    return {
        "loss": loss,
        "perplexity": math.exp(loss) if math.isfinite(loss) else float("nan"),
        "examples": len(examples),
        "tokens": sum(n for _, n in pairs),
    }


def _prompt_and_reference(record: Record) -> tuple[list[dict[str, str]], str]:
    """Everything before the last assistant turn, and that turn."""
    last = max(i for i, m in enumerate(record.messages) if m["role"] == "assistant")
    return record.messages[:last], record.messages[last]["content"]


def references(record: Record, reference_text: str) -> list[str]:
    """What an answer is scored against: the verified answer set for set-answer tasks (KG questions, whose
    reference text may hold a reasoning chain), else the reference answer text."""
    if record.task in SET_ANSWER_TASKS and record.answer_check is not None and record.answer_check.expected:
        return list(record.answer_check.expected)
    return [reference_text]


def generation_answers(llm: HFLLM, records: list[Record], max_new_tokens: int, qa_mode: str | None) -> list[Answer]:
    """Greedy answers to each record's prompt, scored against its reference answer."""
    requests, refs = [], []
    for r in records:
        prompt, ref = _prompt_and_reference(r)
        requests.append(ChatRequest.of(r.id, prompt, SamplingParams(temperature=0.0, max_tokens=max_new_tokens)))
        refs.append(ref)
    answers = []
    for r, req, ref, done in zip(records, requests, refs, llm.generate(requests), strict=True):
        pred = done.text.strip()
        answers.append(
            Answer(r.id, req.messages[-1][1], ref, pred, metrics_for(r.task, qa_mode, pred, references(r, ref), r.lang))
        )
    return answers


def summarise(answers: list[Answer]) -> dict[str, float]:
    return aggregate([a.metrics for a in answers])
