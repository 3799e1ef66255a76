"""JSON replies: grammar-constrained on llama.cpp, response_format on servers (with a fallback for servers without
it), and validation with bounded repairs everywhere."""

from __future__ import annotations

import json

from sftforge.llm.base import LLM, ChatRequest, Completion, SamplingParams
from sftforge.llm.structured import check, generate_json

SCHEMA = {
    "type": "object",
    "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
    "required": ["question", "answer"],
    "additionalProperties": False,
}


def ask(i: int) -> ChatRequest:
    return ChatRequest.of(
        f"j{i}",
        [
            {
                "role": "user",
                "content": "Write a quiz question about the moon and its answer, as JSON with keys question and answer.",
            }
        ],
        SamplingParams(temperature=0.5, max_tokens=96, seed=i),
    )


def test_check_parses_fences_and_reports_schema_errors():
    assert check('```json\n{"question": "q?", "answer": "a"}\n```', SCHEMA) == ({"question": "q?", "answer": "a"}, None)
    assert check('Sure! {"question": "q?", "answer": "a"} Hope it helps.', SCHEMA)[0] == {
        "question": "q?",
        "answer": "a",
    }
    value, err = check('{"question": "q?"}', SCHEMA)
    assert value is None and "'answer' is a required property" in err
    assert "not valid JSON" in check("no json here", SCHEMA)[1]


class Scripted(LLM):
    """Replies from a script: a unit test of the repair loop."""

    model_id = "scripted"

    def __init__(self, replies: list[str]) -> None:
        self.replies = replies
        self.seen: list[ChatRequest] = []
        self.queue: list[ChatRequest] = []

    capacity = 1  # type: ignore[assignment]

    def submit(self, request: ChatRequest) -> None:
        self.seen.append(request)
        self.queue.append(request)

    def poll(self) -> list[Completion]:
        r = self.queue.pop(0)
        return [Completion(r, self.replies[len(self.seen) - 1 - len(self.queue)], "stop", 1, 1)]

    def pending(self) -> int:
        return len(self.queue)


def test_invalid_reply_is_repaired_then_given_up():
    llm = Scripted(['{"question": "q?"}', '{"question": "q?", "answer": "a"}'])
    (res,) = generate_json(llm, [ask(0)], SCHEMA, max_repairs=2)
    assert res.value == {"question": "q?", "answer": "a"} and res.attempts == 2
    repair = llm.seen[1].messages
    assert repair[-2] == ("assistant", '{"question": "q?"}') and "'answer' is a required property" in repair[-1][1]
    assert json.loads(llm.seen[0].sampling.json_schema) == SCHEMA

    llm = Scripted(["nope", "still nope", "never"])
    (res,) = generate_json(llm, [ask(0)], SCHEMA, max_repairs=2)
    assert res.value is None and res.attempts == 3 and "not valid JSON" in res.error


def test_llamacpp_grammar_gives_valid_json(llm):
    bounded = {  # bounded strings: a grammar fixes the structure, not the length, and a cut reply is not JSON
        **SCHEMA,
        "properties": {"question": {"type": "string", "maxLength": 60}, "answer": {"type": "string", "maxLength": 40}},
    }
    results = generate_json(llm, [ask(i) for i in range(2)], bounded, max_repairs=0)
    for res in results:
        assert res.error is None, res.completions[-1].text
        assert set(res.value) == {"question", "answer"}
