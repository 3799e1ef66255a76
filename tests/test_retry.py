"""The generation loop's retry policy, driven by scripted outputs (the real model is tested elsewhere)."""

from __future__ import annotations

from collections import deque
from types import SimpleNamespace

from sftforge.config import Generation
from sftforge.generate.generators.grounded import GroundedStep
from sftforge.generate.runner import LLMRunner
from sftforge.llm.base import LLM, ChatRequest, Completion
from sftforge.recipe import Task
from sftforge.sources.chunking import Passage

TEXT = (
    "Docstrings are string literals that occur as the first statement in a module, function, class, or method "
    "definition. Such a docstring becomes the __doc__ special attribute of that object."
)


class ScriptedLLM(LLM):
    """Answers each request with the next scripted output for its work item; records the seeds it saw."""

    model_id = "scripted"

    def __init__(self, scripts: dict[str, list[str]], capacity: int = 2) -> None:
        self.scripts = {k: deque(v) for k, v in scripts.items()}
        self._cap = capacity
        self.queue: deque[ChatRequest] = deque()
        self.seen: list[ChatRequest] = []

    @property
    def capacity(self) -> int:
        return self._cap

    def submit(self, request: ChatRequest) -> None:
        self.queue.append(request)
        self.seen.append(request)

    def poll(self) -> list[Completion]:
        out = []
        for _ in range(min(self._cap, len(self.queue))):
            r = self.queue.popleft()
            key = r.id.rsplit("|", 1)[0]
            out.append(Completion(r, self.scripts[key].popleft(), "stop", 10, 5))
        return out

    def pending(self) -> int:
        return len(self.queue)


def setup(scripts, max_attempts=3):
    gen = GroundedStep(Task(type="qa", description="docstrings"))
    passages = [Passage(f"doc#{i}", "doc", 0, len(TEXT), TEXT) for i in range(len(scripts))]
    items = gen.work_items(passages, 1)
    llm = ScriptedLLM({it.key: scripts[i] for i, it in enumerate(items)})
    cfg = Generation(max_attempts=max_attempts)
    return llm, LLMRunner(llm, gen, cfg, items, done=set()), items


def test_bad_output_is_retried_with_a_new_seed_then_accepted():
    llm, runner, items = setup([["no question here", " What becomes the __doc__ attribute of a docstring?"]])
    shards = list(runner.batches(lambda: True, size=10))
    records, rejected, keys, stats = shards[0]
    assert len(records) == 1 and not rejected and keys == [items[0].key]
    assert records[0].lineage.attempts == 2
    seeds = [r.sampling.seed for r in llm.seen]
    # the first 4 bytes (little-endian, 31 bits) of sha256("0|doc#0|0|0") and sha256("0|doc#0|0|1"): the recipe
    # seed, the work item's key and the attempt, whatever the scheduling
    assert items[0].key == "doc#0|0" and seeds == [1379728558, 314870889]
    assert stats["requests"] == 2 and stats["fail:question has no question mark"] == 1


def test_item_is_rejected_with_reason_after_max_attempts():
    llm, runner, items = setup([["nope", "still nope", "never"]], max_attempts=3)
    ((records, rejected, keys, stats),) = list(runner.batches(lambda: True, size=10))
    assert not records and keys == [items[0].key]
    assert rejected[0].reason == "unparseable after 3 attempts: question has no question mark"
    assert rejected[0].record.messages[-1]["content"] == "Question:never"
    assert len(llm.seen) == 3


def test_shards_and_stop_when_enough():
    good = [" What is the docstring of an object?"]
    llm, runner, items = setup([good] * 20)
    accepted = []
    for records, _, keys, _ in runner.batches(lambda: len(accepted) < 3, size=2):
        accepted.extend(records)
        assert len(keys) <= 2
    # stops submitting once 3 are in; what was in flight (capacity + 2) still finishes
    assert 3 <= len(accepted) <= 3 + llm.capacity + 2
    assert len(llm.seen) < 20
    assert len({r.id for r in accepted}) == len(accepted)


def test_done_items_are_not_asked_again():
    gen = GroundedStep(Task(type="qa", description="docstrings"))
    passages = [Passage(f"doc#{i}", "doc", 0, len(TEXT), TEXT) for i in range(3)]
    items = gen.work_items(passages, 1)
    llm = ScriptedLLM({it.key: [" What is a docstring?"] for it in items})
    runner = LLMRunner(llm, gen, Generation(), items, done={items[0].key, items[2].key})
    list(runner.batches(lambda: True, size=10))
    assert [r.id.rsplit("|", 1)[0] for r in llm.seen] == [items[1].key]


def test_stats_are_plain_counters():
    _, runner, _ = setup([[" What is the docstring of an object?"]])
    ((_, _, _, stats),) = list(runner.batches(lambda: True, size=10))
    assert stats == {"requests": 1, "cached": 0, "prompt_tokens": 10, "completion_tokens": 5, "prompt_tokens_reused": 0}
    assert isinstance(SimpleNamespace(**stats), SimpleNamespace)


def checked_task(**responsiveness) -> Task:
    return Task(
        type="qa",
        description="docstrings",
        constraints={"responsiveness": {"enabled": True, **responsiveness}},
    )


def test_best_of_n_asks_again_until_the_question_is_one_its_answer_answers():
    gen = GroundedStep(checked_task(candidates=4))
    items = gen.work_items([Passage("doc#0", "doc", 0, len(TEXT), TEXT)], 1)
    first = items[0].payload.answer.startswith("Docstrings are")
    good = "Where do docstrings occur?" if first else "What does a docstring become?"
    bad = "What does a docstring become?" if first else "Where do docstrings occur?"
    llm = ScriptedLLM({items[0].key: [f" {bad}", f" {bad}", f" {good}"]})
    runner = LLMRunner(llm, gen, Generation(max_attempts=2), items, done=set())
    ((records, rejected, _, stats),) = list(runner.batches(lambda: True, size=10))
    assert not rejected and len(llm.seen) == 3  # past max_attempts (2): the check asks for up to 4 candidates
    assert records[0].text_of("user").endswith(good) and records[0].lineage.attempts == 3
    check = records[0].answer_check
    assert check.method == "responsiveness" and check.passed and check.detail.startswith("answer sentence ranks 1 of 2")
    assert stats["fail:another sentence of the passage answers the question better"] == 2  # counted by kind


def test_a_pair_that_never_passes_is_rejected_after_the_candidates():
    gen = GroundedStep(checked_task(candidates=3))
    items = gen.work_items([Passage("doc#0", "doc", 0, len(TEXT), TEXT)], 1)
    first = items[0].payload.answer.startswith("Docstrings are")
    bad = "What does a docstring become?" if first else "Where do docstrings occur?"
    llm = ScriptedLLM({items[0].key: [f" {bad}"] * 3})
    runner = LLMRunner(llm, gen, Generation(max_attempts=1), items, done=set())
    ((records, rejected, _, _),) = list(runner.batches(lambda: True, size=10))
    assert not records and len(llm.seen) == 3
    reason = rejected[0].reason
    assert reason.startswith(
        "unparseable after 3 attempts: another sentence of the passage answers the question better "
        "(responsiveness round trip): "
    )
    # the evidence: both sentences with their scores, the answer's starred and ranked below the other
    winner, answer = reason.split("round trip): ", 1)[1].split("; ")
    assert winner.startswith("+") and answer.startswith("*-")
    assert ("Docstrings are" in winner) != first and ("Docstrings are" in answer) == first


def test_a_one_sentence_passage_is_rejected_without_asking_again():
    text = "Such a docstring becomes the __doc__ special attribute of that object and of nothing else at all."
    gen = GroundedStep(checked_task())
    items = gen.work_items([Passage("doc#0", "doc", 0, len(text), text)], 1)
    llm = ScriptedLLM({items[0].key: [" What does a docstring become?", " What does it become?"]})
    runner = LLMRunner(llm, gen, Generation(max_attempts=3), items, done=set())
    ((records, rejected, _, _),) = list(runner.batches(lambda: True, size=10))
    assert not records and len(llm.seen) == 1
    assert "the passage has one sentence" in rejected[0].reason
