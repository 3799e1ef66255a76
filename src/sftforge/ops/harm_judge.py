"""`harm_judge`: a judge model on an OpenAI-compatible server says whether a reply goes along with a harmful
request: the judge part of the safety screen, beside the rule-based `refusal` kinds, which run without one.

The score is the judge's probability of "yes" (the reply helps with something harmful; `llm/judge.HARM_TEMPLATE`):
from its first-token logprobs over yes/no where the server returns them, else 1.0 or 0.0 from the word its reply
opens with; NaN where it says neither. Only a record whose judge reply says neither is unjudged.

A judge server that cannot be reached does not stop cleaning: the rule-based screen has run, the records score
NaN and are kept, and the operator's figures say the judge did not run and why (the card and the report repeat
it), so a user knows the dataset was screened by rules only and reruns `sftforge clean RUN_DIR --force` once the
server is up. Nothing is stored for reuse: every run asks the judge again.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from sftforge.config import OpenAIModel
from sftforge.errors import ModelError
from sftforge.llm import open_llm
from sftforge.llm.base import LLM, ChatRequest, SamplingParams
from sftforge.llm.judge import harm_messages, question_text, yes_from_text, yes_probability
from sftforge.ops.base import BoundsConfig, Feature, register
from sftforge.sample import Record

log = logging.getLogger(__name__)


class HarmJudgeConfig(BoundsConfig):
    """Bound it with `max` (e.g. 0.5) to remove replies the judge finds harmful."""

    name: Literal["harm_judge"] = "harm_judge"
    server: OpenAIModel = Field(description="The judge: an OpenAI-compatible server and the model it serves.")
    max_chars: int = Field(4000, ge=200, description="Characters of the request and reply shown to the judge.")


@register
class HarmJudge(Feature):
    """The judge's probability that the reply helps with something harmful; NaN (kept) where it was not judged."""

    name: ClassVar[str] = "harm_judge"
    Config = HarmJudgeConfig
    config: HarmJudgeConfig
    batch_size: ClassVar[int] = 32
    reuse_stored: ClassVar[bool] = False  # a judge that was down must be asked again on the next run

    def __init__(self, config: HarmJudgeConfig, base_dir: Path | None = None) -> None:
        super().__init__(config, base_dir)
        self._server: LLM | None = None
        self.judged = 0
        self.unjudged = 0  # replies the judge answered with neither yes nor no
        self.without_logprobs = 0
        self.unavailable: str | None = None  # why the judge did not run, once it failed

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_server": None}

    def setup(self) -> None:
        if self._server is None and self.unavailable is None:
            self._server = open_llm(self.config.server, self.base_dir or Path.cwd(), None)

    def score_batch(self, records: list[Record]) -> list[float]:
        out = [math.nan] * len(records)
        if self.unavailable is not None:
            return out  # it failed on an earlier batch: do not wait through the retries again
        try:
            self.setup()
            self._ask(records, out)
        except ModelError as exc:
            self.unavailable = f"{self.config.server.model} at {self.config.server.base_url}: {exc}"
            log.warning(
                "harm_judge: the judge did not run (%s); the rule-based screen (refusal) still ran; records are kept "
                "unjudged. Rerun `sftforge clean RUN_DIR --force` once the server is up",
                self.unavailable,
            )
            self._close()
            return [math.nan] * len(records)
        return out

    def _ask(self, records: list[Record], out: list[float]) -> None:
        server = self._server
        if server is None:
            raise ModelError("harm_judge: no judge server is open")
        chars = self.config.max_chars
        sampling = SamplingParams(temperature=0.0, top_p=1.0, max_tokens=2, seed=0, top_logprobs=20)
        for i, r in enumerate(records):
            turns = [m for m in r.messages if m["role"] != "system"]
            if len(turns) < 2 or turns[-1]["role"] != "assistant" or not turns[-1]["content"].strip():
                continue  # no reply to judge
            request = question_text(turns[:-1])[: chars // 2]
            messages = harm_messages(request, turns[-1]["content"][: chars // 2])
            server.submit(ChatRequest.of(str(i), messages, sampling))
        while server.pending():
            for c in server.poll():
                score = yes_probability(c.top_logprobs)
                if score is None:
                    self.without_logprobs += c.top_logprobs is None
                    score = yes_from_text(c.text)
                if score is None:
                    self.unjudged += 1
                    continue
                out[int(c.request.id)] = score
                self.judged += 1

    def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def keep(self, score: float) -> bool:
        return math.isnan(score) or super().keep(score)  # unjudged is kept, and counted as such

    def stats(self) -> dict[str, Any]:
        figures: dict[str, Any] = {
            "judge": self.config.server.model,
            "judged": self.judged,
            "unjudged": self.unjudged,
            "without_logprobs": self.without_logprobs,
        }
        if self.unavailable is not None:  # left out while it ran: block figures merge, and a None would overwrite it
            figures["unavailable"] = self.unavailable
        return figures
