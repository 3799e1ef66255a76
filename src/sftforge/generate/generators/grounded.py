"""`grounded`: QA (extractive or open), summaries and multiple-choice exercises from single passages, in rank order.

Every record points at its passage (document id, chunk id, character offsets), and its `answer_check` says whether
the passage supports the answer: a span match for extractive QA (an answer that is not a span is retried, then
rejected) and a token-overlap score otherwise. With `task.constraints.responsiveness` on, a QA pair (and an
exercise's stem against its key and explanation) must also pass the round trip (the passage's sentences ranked as
answers to the question: the answer's must lead), asking up to `candidates` times per work item, and every
sentence of a summary must be supported by its passage (`faithfulness_check`). The default generator of task types
qa, summarization and exercise.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from sftforge.config import GeneratorConfig
from sftforge.generate.answer_check import ResponsivenessCheck, faithfulness_check, overlap_check, span_check
from sftforge.generate.audiences import Pair, pair_for, pairs
from sftforge.generate.base import (
    CARRIED_KEY,
    Generator,
    RecordStep,
    Session,
    Template,
    Wave,
    WorkItem,
    chat_from_template,
    load_template,
    register,
)
from sftforge.generate.parsing import (
    ParseError,
    check_language,
    first_line,
    first_paragraph,
    parse_fields,
    question_text,
    split_options,
    strip_quotes,
)
from sftforge.lib.grounding import sentence_spans, support
from sftforge.sample import AnswerCheck, Record, SourceRef
from sftforge.sources.chunking import Passage

if TYPE_CHECKING:
    from sftforge.recipe import Task
from sftforge.lib.text import normalize, tokens


@dataclass(frozen=True, slots=True)
class GroundedItem:
    """What a grounded work item carries: the passage, and for answer-first QA the answer span chosen in it."""

    passage: Passage
    answer_span: tuple[int, int] | None = None
    pair: Pair | None = None  # the audience and genre it is written for (task.audiences x task.genres)

    @property
    def answer(self) -> str:
        if self.answer_span is None:
            raise ValueError("this work item asks for a question and its answer; it has no chosen answer")
        return self.passage.text[self.answer_span[0] : self.answer_span[1]]


_MARKUP_START = (".. ", "::", "=", "-", "*", "#", "|", ">>>", "+", "`", "[", "<", "{")


def answer_candidates(text: str, lang: str) -> list[tuple[int, int]]:
    """Sentences of a passage fit to be answers: prose of a sensible length, not markup, code or headings."""
    out = []
    for s, e in sentence_spans(text):
        sent = text[s:e]
        n_tokens = len(tokens(sent))
        letters = sum(ch.isalpha() for ch in sent) / max(1, len(sent))
        if not (30 <= len(sent) <= 300) or letters < 0.6 or sent.lstrip().startswith(_MARKUP_START):
            continue
        if (lang == "zh" and n_tokens < 8) or (lang != "zh" and n_tokens < 6):
            continue
        if "\n" in sent.strip() and any(line.startswith("   ") for line in sent.splitlines()[1:]):
            continue  # an indented block (code) swallowed into the sentence
        if sent.rstrip().endswith(("::", ":")):
            continue
        out.append((s, e))
    return out


SENTENCES_FOR_LENGTH = {"one_line": 1, "short": 2}  # an audience's summary length, in sentences kept at most

_ZH_QUESTION = re.compile(r"[?？]|什么|吗|哪|谁|如何|怎么|为什么|为何|多少|几|是否")


class GroundedStep(RecordStep):
    """The one LLM call per work item: the prompt for a passage (and, answer-first, its chosen answer sentence),
    parsed and checked into a record."""

    name = "grounded"

    def __init__(self, task: Task) -> None:
        self.task = task
        self.lang = task.language
        self.kind = f"qa_{task.qa_mode}" if task.type == "qa" else task.type
        self.answer_first = self.kind == "qa_extractive" and task.qa_strategy == "answer_first"
        template_name = (
            self.kind if self.answer_first or self.kind != "qa_extractive" else "qa_extractive_question_first"
        )
        self._template = load_template(self.lang, template_name)
        self.letters = list(string.ascii_uppercase[: task.constraints.num_options])
        self._prefill = self._template.render_block("prefill") if self._template.has_block("prefill") else ""
        # One example per reply: stop where a small model would start a second one.
        label = self._prefill or "Question:"
        self.stop = ("\n",) if self.answer_first else (f"\n{label}", f"\n\n{label}")
        checked = task.constraints.responsiveness
        self.responsiveness = (
            ResponsivenessCheck(checked, self.lang) if checked.enabled and task.type in ("qa", "exercise") else None
        )
        if self.responsiveness is not None:
            self.attempts = checked.candidates  # best of n: ask again until a question passes the round trip
        self.pairs = pairs(task.audiences, task.genres)
        self._audience = load_template(self.lang, "audience")

    def work_items(self, passages: list[Passage], per_passage: int) -> list[WorkItem]:
        """Items in passage order. Answer-first QA gives each of a passage's samples a different answer sentence
        (as long as it has enough), and skips passages with no sentence fit to be an answer."""
        items: list[WorkItem] = []
        for p in passages:
            if not self.answer_first:
                for k in range(per_passage):
                    items.append(WorkItem(f"{p.chunk_id}|{k}", GroundedItem(p, None, pair_for(self.pairs, len(items)))))
                continue
            cands = answer_candidates(p.text, self.lang)
            if not cands:
                continue
            offset = int(hashlib.sha256(p.chunk_id.encode()).hexdigest()[:8], 16)
            order = [cands[(offset + k) % len(cands)] for k in range(len(cands))]
            for k in range(min(per_passage, len(cands))):
                pair = pair_for(self.pairs, len(items))
                span = self._answer_for(p.text, order, pair)
                order.remove(span)
                items.append(WorkItem(f"{p.chunk_id}|{k}", GroundedItem(p, span, pair)))
        return items

    def _answer_for(self, text: str, order: list[tuple[int, int]], pair: Pair | None) -> tuple[int, int]:
        """The answer sentence for an item: the first in the passage's (hashed) order, or, for an audience with
        interests, the one that names most of them, so each reader is asked about what they care about."""
        interests = set(tokens(" ".join(pair.audience.interests))) if pair and pair.audience else set()
        if not interests:
            return order[0]
        return max(order, key=lambda span: len(interests & set(tokens(text[span[0] : span[1]]))))

    def pair_of(self, item: WorkItem) -> Pair | None:
        return item.payload.pair

    def _audience_note(self, pair: Pair | None) -> str:
        """The words that ask for the item's audience and genre (empty without them)."""
        if pair is None:
            return ""
        return self._audience.render_block(
            "note", audience=pair.audience, genre=pair.genre, kind=self.kind, bloom=pair.bloom
        )

    @property
    def template(self) -> Template:
        return self._template

    def prompt(self, item: WorkItem) -> list[dict[str, str]]:
        it: GroundedItem = item.payload
        return chat_from_template(
            self._template,
            passage=it.passage.text,
            answer=it.answer if self.answer_first else None,
            description=self.task.description,
            num_options=len(self.letters),
            letters=self.letters,
            audience_note=self._audience_note(it.pair),
            audience=it.pair.audience if it.pair else None,
        )

    # -- parsing ------------------------------------------------------------------------------------------------

    def _check_len(self, what: str, value: str, lo: int, hi: int) -> None:
        if len(value) < lo:
            raise ParseError(f"{what} too short ({len(value)} < {lo} characters)")
        if len(value) > hi:
            raise ParseError(f"{what} too long ({len(value)} > {hi} characters)")

    def _question(self, fields: dict[str, str], block: str | None = None) -> str:
        q = strip_quotes(block if block is not None else question_text(fields.get("question", "")))
        if not q:
            raise ParseError("no 'Question:' in the output")
        c = self.task.constraints
        self._check_len("question", q, c.min_question_chars, c.max_question_chars)
        check_language(q, self.lang)
        if self.lang == "en" and "?" not in q:
            raise ParseError("question has no question mark")
        if self.lang == "zh" and not _ZH_QUESTION.search(q):
            raise ParseError("question is not phrased as a question")
        return q

    def _answer(self, fields: dict[str, str], multiline: bool) -> str:
        raw = fields.get("answer", "")
        a = strip_quotes(first_paragraph(raw) if multiline else first_line(raw))
        if not a:
            raise ParseError("no 'Answer:' in the output")
        c = self.task.constraints
        self._check_len("answer", a, c.min_answer_chars, c.max_answer_chars)
        return a

    def parse(self, item: WorkItem, output: str) -> Record:
        record = self._parse(item, output)
        pair = item.payload.pair
        if pair is not None and self.task.audience_prompt == "system":
            system = self._audience.render_block(
                "record_system", system_prompt=self.task.system_prompt, audience=pair.audience, genre=pair.genre
            )
            body = [m for m in record.messages if m["role"] != "system"]
            record.messages = [{"role": "system", "content": system}, *body]
        return record

    def _parse(self, item: WorkItem, output: str) -> Record:
        it: GroundedItem = item.payload
        p = it.passage
        output = self._prefill + output
        fields = parse_fields(output)
        if self.answer_first:
            return self._parse_answer_first(it, fields)
        if self.kind in ("qa_extractive", "qa_open"):
            return self._parse_qa(p, fields)
        if self.kind == "summarization":
            return self._parse_summary(p, fields, output, it.pair)
        return self._parse_exercise(p, fields)

    def _parse_qa(self, p: Passage, fields: dict[str, str]) -> Record:
        question = self._question(fields)
        answer = self._answer(fields, multiline=self.kind == "qa_open")
        if answer.strip().lower() == question.strip().lower():
            raise ParseError("answer repeats the question")
        sources = [self._chunk_ref(p)]
        span: tuple[int, int] | None = None  # the answer's characters in the passage (extractive answers)
        if support(p.text, question) < self.task.constraints.min_question_support:
            raise ParseError("question is not about the passage (too few of its words occur there)")
        if self.kind == "qa_extractive":
            check, span = span_check(p.text, answer, self.task.constraints.min_support)
            if span is None:
                raise ParseError("answer is not a span of the passage")
            answer = p.text[span[0] : span[1]]
            sources.append(SourceRef("span", p.chunk_id, p.doc_id, p.start + span[0], p.start + span[1]))
        else:
            check_language(answer, self.lang)
            check = overlap_check(p.text, answer, self.task.constraints.min_support)
        check = self._responsive(p, question, answer, span, check)
        return self._record(self._qa_user(p, question), answer, sources, check)

    def _responsive(
        self, p: Passage, question: str, answer: str, span: tuple[int, int] | None, check: AnswerCheck
    ) -> AnswerCheck:
        """With the responsiveness check on: the round trip's result, which keeps the grounding check's verdict
        (the lower score of the two) and its detail; raises ParseError if the answer does not answer the question."""
        if self.responsiveness is None:
            return check
        answered = self.responsiveness.check(p.text, question, answer, span)
        return AnswerCheck(
            answered.method,
            check.passed,
            min(answered.score, check.score),
            f"{answered.detail} | {check.method}: {check.detail}",
        )

    def _parse_answer_first(self, it: GroundedItem, fields: dict[str, str]) -> Record:
        p, answer = it.passage, it.answer
        question = self._question(fields)
        c = self.task.constraints
        q_support = support(p.text, question)
        if q_support < c.min_question_support:
            raise ParseError("question is not about the passage (too few of its words occur there)")
        if normalize(answer) in normalize(question):
            raise ParseError("question gives the answer away")
        link = support(answer, question)
        if link == 0.0:
            raise ParseError("question shares no content word with its answer sentence")
        s, e = it.answer_span or (0, 0)  # answer-first items always have one (work_items)
        check = AnswerCheck(
            "answer_first_span",
            True,
            1.0,  # the answer is the passage's own sentence
            f"answer is the passage sentence at {s}-{e}; {link:.0%} of the question's content words occur in it",
        )
        check = self._responsive(p, question, answer, (s, e), check)
        sources = [self._chunk_ref(p), SourceRef("span", p.chunk_id, p.doc_id, p.start + s, p.start + e)]
        return self._record(self._qa_user(p, question), answer, sources, check)

    def _parse_summary(self, p: Passage, fields: dict[str, str], output: str, pair: Pair | None) -> Record:
        summary = fields.get("summary")
        if summary is None:
            if fields:
                raise ParseError("no 'Summary:' in the output")
            summary = output  # unlabelled output: the whole text is the summary
        summary = strip_quotes(summary.strip())
        length = pair.audience.length if pair and pair.audience else None
        if length in SENTENCES_FOR_LENGTH:  # the reader's length is kept, not hoped for: the first sentences
            spans = sentence_spans(summary)[: SENTENCES_FOR_LENGTH[length]]
            summary = summary[spans[0][0] : spans[-1][1]].strip() if spans else summary
        c = self.task.constraints
        self._check_len("summary", summary, c.min_answer_chars, c.max_answer_chars)
        check_language(summary, self.lang)
        if len(summary) > c.max_summary_ratio * len(p.text):
            raise ParseError(f"summary is not shorter than the passage ({len(summary)} vs {len(p.text)} characters)")
        if c.responsiveness.enabled:  # the summary's counterpart of the round trip: no sentence it invents
            check = faithfulness_check(p.text, summary, c.min_support)
        else:
            check = overlap_check(p.text, summary, c.min_support)
        user = load_template(self.lang, "record_summarization").render(passage=p.text)
        return self._record(user, summary, [self._chunk_ref(p)], check)

    def _parse_exercise(self, p: Passage, fields: dict[str, str]) -> Record:
        if "question" not in fields:
            raise ParseError("no 'Question:' in the output")
        stem, options = split_options(fields["question"], self.letters)
        question = self._question(fields, block=" ".join(stem.split()))
        if len({o.lower() for o in options}) != len(options):
            raise ParseError("options are not distinct")
        key_match = re.match(r"^\W*([A-Fa-f])\b", fields.get("answer", ""))
        if not key_match or key_match.group(1).upper() not in self.letters:
            raise ParseError(f"answer is not one of the option letters {', '.join(self.letters)}")
        key = key_match.group(1).upper()
        explanation = " ".join(fields.get("explanation", "").split())
        if len(explanation) < self.task.constraints.min_answer_chars or not explanation:
            raise ParseError("no 'Explanation:' in the output")
        correct = options[self.letters.index(key)]
        score = support(p.text, f"{correct} {explanation}")
        check = AnswerCheck(
            "overlap",
            score >= self.task.constraints.min_support,
            score,
            f"key {key}: {score:.0%} of the correct option and explanation tokens occur in the passage",
        )
        # the sentence behind the key and its explanation must be the passage's best answer to the stem
        check = self._responsive(p, question, f"{correct} {explanation}", None, check)
        passage = p.text if self.task.include_context else None
        user = load_template(self.lang, "record_exercise").render(
            passage=passage, question=question, options=list(zip(self.letters, options))
        )
        answer = load_template(self.lang, "record_exercise_answer").render(key=key, explanation=explanation)
        return self._record(user, answer, [self._chunk_ref(p)], check)

    # -- records ------------------------------------------------------------------------------------------------

    def _qa_user(self, p: Passage, question: str) -> str:
        """The user turn of a QA record: the question, with its passage as context unless closed-book."""
        if self.task.include_context:
            return load_template(self.lang, "record_qa_context").render(passage=p.text, question=question)
        return question

    @staticmethod
    def _chunk_ref(p: Passage) -> SourceRef:
        return SourceRef("chunk", p.chunk_id, p.doc_id, p.start, p.end, p.page)

    def _record(self, user: str, assistant: str, source: list[SourceRef], check: AnswerCheck) -> Record:
        messages = []
        if self.task.system_prompt:
            messages.append({"role": "system", "content": self.task.system_prompt})
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
        return Record(id="", messages=messages, task=self.task.type, lang=self.lang, source=source, answer_check=check)

    def failed_record(self, item: WorkItem, output: str) -> Record:
        p = item.payload.passage
        messages = self.prompt(item)
        if self._prefill:
            messages.pop()
        messages.append({"role": "assistant", "content": self._prefill + output})
        return Record(id="", messages=messages, task=self.task.type, lang=self.lang, source=[self._chunk_ref(p)])


class GroundedConfig(GeneratorConfig):
    name: Literal["grounded"] = "grounded"


@register
class Grounded(Generator):
    """One example per passage sample (`generation.per_passage`), best-ranked passages first, until the target."""

    name = "grounded"
    Config = GroundedConfig
    tasks = {
        "qa": "questions and answers from one passage (task.qa_mode: extractive spans or open answers)",
        "summarization": "a summary of one passage",
        "exercise": "a multiple-choice exercise with an explanation, from one passage",
    }
    default_for = ("qa", "summarization", "exercise")
    requires = ("documents",)
    replays = False
    rounds = True
    progress_label = "generate"

    def run(self, session: Session) -> Iterator[Wave]:
        ranked = self.job.passages()
        self.figures = {"usable_passages": len(ranked)}
        step = GroundedStep(self.job.task)
        made = session.committed

        def want_more() -> bool:  # reads `made` as the loop below raises it
            return made < session.count

        for wave in session.stream(step, step.work_items(ranked, self.job.recipe.generation.per_passage), want_more):
            made += len(wave.records)
            yield wave

    def counts(self, session: Session) -> dict[str, int]:
        return {"work_items": len(session.done - {CARRIED_KEY})}
