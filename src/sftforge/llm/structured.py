"""JSON replies that satisfy a schema, from any backend.

The schema travels with the request (`SamplingParams.json_schema`): the OpenAI-compatible backend sends it as
`response_format` where the server supports it. Whatever the server did, the reply is parsed and validated
here; an invalid reply is repaired a bounded number of times by showing the model its reply and the error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import jsonschema

from sftforge.llm.base import LLM, ChatRequest, Completion


@dataclass(slots=True)
class JSONResult:
    request: ChatRequest
    value: Any | None  # the parsed, valid JSON; None if every repair failed
    error: str | None  # the last validation error, if any
    attempts: int
    completions: list[Completion]


def _extract(text: str) -> Any:
    """Parse a reply as JSON, tolerating a fenced code block or text around one JSON object."""
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.strip("`")
        stripped = stripped[stripped.find("\n") + 1 :] if "\n" in stripped else stripped
    try:
        return json.loads(stripped)
    except json.JSONDecodeError:
        start, end = stripped.find("{"), stripped.rfind("}")
        if 0 <= start < end:
            return json.loads(stripped[start : end + 1])
        raise


def check(text: str, schema: dict[str, Any]) -> tuple[Any | None, str | None]:
    """(value, None) for a valid reply, (None, why) otherwise."""
    try:
        value = _extract(text)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg} at character {exc.pos})"
    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "the top level"
        return None, f"does not match the schema at {where}: {exc.message}"
    return value, None


def generate_json(
    llm: LLM, requests: list[ChatRequest], schema: dict[str, Any], max_repairs: int = 2
) -> list[JSONResult]:
    """Run requests that must reply with JSON matching `schema`; repair invalid replies up to `max_repairs` times."""
    schema_text = json.dumps(schema, sort_keys=True)
    results: dict[str, JSONResult] = {}
    current: dict[str, ChatRequest] = {}
    for r in requests:
        req = replace(r, sampling=replace(r.sampling, json_schema=schema_text))
        results[r.id] = JSONResult(r, None, None, 0, [])
        current[r.id] = req
        llm.submit(req)
    while llm.pending():
        for c in llm.poll():
            res = results[c.request.id]
            res.attempts += 1
            res.completions.append(c)
            value, error = check(c.text, schema)
            res.value, res.error = value, error
            if error is None or res.attempts > max_repairs:
                continue
            repair = list(current[c.request.id].messages) + [
                ("assistant", c.text),
                ("user", f"That reply {error}. Reply again with only the corrected JSON."),
            ]
            req = ChatRequest(c.request.id, tuple(repair), c.request.sampling)
            current[c.request.id] = req
            llm.submit(req)
    return [results[r.id] for r in requests]
