"""Self-Instruct (Wang et al. 2022, arXiv 2212.10560): bootstrap instructions from seed tasks.

Each wave asks the model to continue `batch` numbered task lists of `in_context` instructions (`from_seeds` seed
tasks and the rest machine-made, once there are any). A new instruction is rejected by the paper's filters (length,
keywords of things a text model cannot see or make, "Write a program", a leading punctuation mark or a leading
non-English character) or when its ROUGE-L F against any instruction in the pool is above the threshold (Chinese:
by characters); a kept one joins the pool at once, so later ones are compared with it. Each kept instruction is
classified (classification task with finite labels or not, few-shot from the seeds' labels), then given instances:
classification tasks output first (a class label, then an input of it), others input first. Instances with an
empty output, an output equal to the input, or an input seen with a different output are dropped.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, model_validator

from sftforge.config import PoolConfig
from sftforge.generate.base import (
    Answer,
    Ask,
    TemplateStep,
    Wave,
    WorkItem,
    chat_from_template,
    lineage_of,
    register,
)
from sftforge.generate.parsing import ParseError, check_language, parse_fields
from sftforge.generate.records import (
    INSTRUCTION_TASK,
    DriverGenerator,
    InstructionRecords,
    answer_problem,
    instruction_text,
)
from sftforge.lib.novelty import NoveltyIndex, rouge_l_f, rouge_tokens
from sftforge.lib.text import cjk_ratio, text_length
from sftforge.sample import SourceRef
from sftforge.sources.seeds import SeedTask

# The paper's keyword filter: things a text-only model can neither see nor produce.
BLACKLIST = (
    "image",
    "images",
    "graph",
    "graphs",
    "picture",
    "pictures",
    "file",
    "files",
    "map",
    "maps",
    "draw",
    "plot",
    "go to",
    "video",
    "audio",
    "music",
    "flowchart",
    "diagram",
)
BLACKLIST_ZH = ("图片", "图像", "照片", "视频", "音频", "音乐", "画一", "绘制", "流程图", "地图", "文件")
_BLACKLIST_RE = re.compile(r"\b(" + "|".join(re.escape(w) for w in BLACKLIST) + r")\b", re.IGNORECASE)
_TASK_LINE = re.compile(r"^[ \t*#-]*(?:Task|任务)[ \t]*\d+[ \t]*[:：.]", re.IGNORECASE | re.MULTILINE)
INSTANCE_LABELS = {"input": ("input", "输入"), "output": ("output", "输出"), "label": ("class label", "label", "类别")}
_NONE = {"", "none", "no", "n/a", "无", "没有", "null", "<noinput>", "no input"}


def instruction_problem(text: str, lang: str, min_words: int, max_words: int) -> str | None:
    """Why a generated instruction is rejected by the paper's filters, or None. Chinese length is in characters
    over two (a Chinese word is about two characters)."""
    if lang == "zh" and cjk_ratio(text) < 0.3:
        return "instruction is not in Chinese"
    n = text_length(text) if lang == "en" else (text_length(text) + 1) // 2
    if n < min_words:
        return f"instruction too short ({n} words, fewer than {min_words})"
    if n > max_words:
        return f"instruction too long ({n} words, more than {max_words})"
    hit = _BLACKLIST_RE.search(text) if lang == "en" else next((w for w in BLACKLIST_ZH if w in text), None)
    if hit:
        word = hit.group(1).lower() if isinstance(hit, re.Match) else hit
        return f"instruction mentions '{word}' (a text model can neither see nor make it)"
    if text.lower().startswith("write a program") or text.startswith("编写程序"):
        return "instruction asks to write a program"
    if not text[0].isalnum():
        return "instruction starts with punctuation"
    if lang == "en" and not text[0].isascii():
        return "instruction starts with a non-English character"
    return None


def parse_task_list(output: str) -> list[str]:
    """The tasks of a continued list: the first is the continuation of the prefill "Task N:", the rest follow
    "Task M:" lines. Each task ends at its line's end (a task is one instruction); empty ones are dropped."""
    parts = _TASK_LINE.split(output)
    tasks = []
    for part in parts:
        line = part.strip().splitlines()[0].strip() if part.strip() else ""
        if line:
            tasks.append(line)
    return tasks


class SelfInstructConfig(PoolConfig):
    """Self-Instruct (Wang et al. 2022): bootstrap new instructions from the seed tasks, then their instances."""

    name: Literal["self_instruct"] = "self_instruct"
    in_context: int = Field(8, ge=2, le=16, description="Instructions shown per prompt.")
    from_seeds: int = Field(
        6, ge=1, le=16, description="How many of them are seed tasks (the rest machine-made, once any are)."
    )
    rouge_threshold: float = Field(
        0.7,
        gt=0,
        le=1,
        description="A new instruction whose ROUGE-L F against any in the pool is above this is rejected.",
    )
    min_words: int = Field(4, ge=1, description="Shorter instructions are rejected (Chinese: characters / 2).")
    max_words: int = Field(150, ge=1, description="Longer instructions are rejected (Chinese: characters / 2).")
    instances: int = Field(1, ge=1, le=5, description="Instances (input, output) kept per instruction.")
    batch: int = Field(8, ge=1, le=256, description="Instruction prompts per wave (the pool grows between waves).")

    @model_validator(mode="after")
    def _counts(self) -> SelfInstructConfig:
        if self.from_seeds > self.in_context:
            raise ValueError(f"from_seeds ({self.from_seeds}) is above in_context ({self.in_context})")
        if self.min_words > self.max_words:
            raise ValueError(f"min_words ({self.min_words}) is above max_words ({self.max_words})")
        return self


@dataclass(frozen=True, slots=True)
class Instance:
    input: str
    output: str


class ProposeStep(TemplateStep):
    """Continue a numbered list of tasks."""

    def __init__(self, lang: str) -> None:
        super().__init__("self_instruct", lang, "self_instruct")

    def prompt(self, item: WorkItem) -> list[dict[str, str]]:
        return chat_from_template(self._template, tasks=item.payload)

    def parse(self, item: WorkItem, output: str) -> list[str]:
        tasks = parse_task_list(output)
        if not tasks:
            raise ParseError("no new task in the continued list")
        return tasks


class ClassifyStep(TemplateStep):
    """Is the task a classification task? Few-shot with the seeds' labels."""

    max_tokens = 8  # Yes or No

    def __init__(self, lang: str, examples: list[tuple[str, bool]]) -> None:
        super().__init__("self_instruct", lang, "self_instruct_classify")
        self.examples = examples

    def prompt(self, item: WorkItem) -> list[dict[str, str]]:
        return chat_from_template(self._template, examples=self.examples, task=item.payload)

    def parse(self, item: WorkItem, output: str) -> bool:
        first = output.strip().lstrip("*#:： ").lower()
        if first.startswith(("yes", "是")) and not first.startswith("是否"):
            return True
        if first.startswith(("no", "否", "不是")):
            return False
        raise ParseError("the classification answer is neither Yes nor No")


class InstanceStep(TemplateStep):
    """Instances of a task: input first, or (classification) output first."""

    def __init__(self, lang: str, examples: list[tuple[str, str, str]], labels_first: bool, max_chars: int) -> None:
        super().__init__("self_instruct", lang, "self_instruct_labels" if labels_first else "self_instruct_instances")
        self.examples = examples
        self.labels_first = labels_first
        self.max_chars = max_chars
        self._prefill = self._template.render_block("prefill")

    def prompt(self, item: WorkItem) -> list[dict[str, str]]:
        return chat_from_template(self._template, examples=self.examples, task=item.payload)

    def parse(self, item: WorkItem, output: str) -> list[Instance]:
        instruction = item.payload
        # Examples repeat "Task:" blocks: only the first instance block answers this task.
        text = self._prefill + " " + _TASK_LINE.split(output)[0]
        text = re.split(r"^[ \t]*(?:Task|任务)[ \t]*[:：]", text, maxsplit=1, flags=re.IGNORECASE | re.MULTILINE)[0]
        fields = parse_fields(text, INSTANCE_LABELS)
        inp = fields.get("input", "").strip()
        out = fields.get("label" if self.labels_first else "output", "").strip()
        if inp.lower().strip(" .。") in _NONE:
            inp = ""
        if not out:
            raise ParseError(
                "the instance has no output" if not self.labels_first else "the instance has no class label"
            )
        if self.labels_first and not inp:
            raise ParseError("a classification instance needs an input for its label")
        if out == inp or out == instruction:
            raise ParseError("the output repeats the input or the task")
        if not self.labels_first:  # class labels come from a small set: an example's label may well recur
            mine = rouge_tokens(out)
            if any(rouge_l_f(mine, rouge_tokens(ex_out)) > 0.5 for _, _, ex_out in self.examples):
                raise ParseError("the output copies an example's output")
            problem = answer_problem(out, self.max_chars)
            if problem:
                raise ParseError(problem)
        check_language(inp + out, self.lang)
        return [Instance(inp, out)]


class SelfInstructDriver:
    """The bootstrapping algorithm; yields one wave per batch of list prompts."""

    name = "self_instruct"

    def __init__(
        self,
        cfg: SelfInstructConfig,
        seeds: list[SeedTask],
        lang: str,
        records: InstructionRecords,
        max_answer_chars: int,
    ) -> None:
        self.cfg = cfg
        self.seeds = seeds
        self.lang = lang
        self.records = records
        cls = [s for s in seeds if s.is_classification][:4]
        other = [s for s in seeds if not s.is_classification][:4]
        examples = [(s.instruction, s.is_classification) for pair in zip(other, cls) for s in pair]
        self.propose = ProposeStep(lang)
        self.classify = ClassifyStep(lang, examples)
        with_input = [s for s in seeds if s.instances and s.instances[0][0]][:1]
        without = [s for s in seeds if s.instances and not s.instances[0][0]][:1]
        shots = [(s.instruction, *s.instances[0]) for s in with_input + without]
        label_shots = [(s.instruction, *s.instances[0]) for s in cls[:2] if s.instances]
        self.instances = InstanceStep(lang, shots, False, max_answer_chars)
        self.labelled = InstanceStep(lang, label_shots, True, max_answer_chars)
        self.figures = {"waves": 0, "proposed": 0, "kept_instructions": 0, "classification": 0, "pool": len(seeds)}

    def run(self, ask: Ask, count: int, seed: int) -> Iterator[Wave]:
        cfg = self.cfg
        rng = random.Random(seed)
        index = NoveltyIndex(cfg.rouge_threshold, texts=[s.instruction for s in self.seeds])
        seed_ids = {s.instruction: (s.kind, s.id) for s in self.seeds}
        machine: list[str] = []
        made = fruitless = 0
        while made < count and fruitless < 3:
            w = self.figures["waves"]
            items = []
            for j in range(cfg.batch):
                n_machine = min(cfg.in_context - cfg.from_seeds, len(machine))
                shown = rng.sample(self.seeds, min(len(self.seeds), cfg.in_context - n_machine))
                tasks = [s.instruction for s in shown] + rng.sample(machine, n_machine)
                items.append(WorkItem(f"self_instruct:{w}:{j}", tasks))
            wave = Wave([f"self_instruct:wave{w}"])
            kept: list[tuple[str, list[SourceRef]]] = []
            for a in ask(self.propose, items):
                source = [SourceRef(*seed_ids[t]) for t in a.item.payload if t in seed_ids]
                if not a.ok:
                    wave.rejected.append(self.records.rejected([("user", a.completion.text)], source, a.error or ""))
                    continue
                for text in a.value[:20]:
                    self.figures["proposed"] += 1
                    reason = instruction_problem(text, self.lang, cfg.min_words, cfg.max_words)
                    if reason is None:
                        novelty = index.check_and_add(text)
                        if not novelty.novel:
                            reason = (
                                f"ROUGE-L {novelty.score:.2f} against {index.texts[novelty.match]!r} is above "
                                f"{cfg.rouge_threshold}"
                            )
                    if reason:
                        wave.rejected.append(self.records.rejected([("user", text)], source, reason))
                    else:
                        kept.append((text, source))
            machine.extend(t for t, _ in kept)
            self.figures["kept_instructions"] += len(kept)
            made += self._instances(
                ask, wave, kept[: count - made], w
            )  # all join the pool; only the needed get instances
            fruitless = fruitless + 1 if not wave.records else 0
            self.figures["waves"] += 1
            self.figures["pool"] = len(index)
            yield wave

    def _instances(self, ask: Ask, wave: Wave, kept: list[tuple[str, list[SourceRef]]], w: int) -> int:
        """Classify the wave's new instructions, make their instances (classification tasks output first), and
        add the records to the wave in the instructions' order."""
        keys = [f"self_instruct:{w}:i{k}" for k in range(len(kept))]
        kinds = ask(self.classify, [WorkItem(k + ":cls", t) for k, (t, _) in zip(keys, kept)])
        is_cls = [bool(a.ok and a.value) for a in kinds]
        self.figures["classification"] += sum(is_cls)
        answers: dict[int, list[tuple[Answer, InstanceStep]]] = {}
        for labelled, step in ((False, self.instances), (True, self.labelled)):
            idx = [i for i in range(len(kept)) if is_cls[i] == labelled]
            items = [WorkItem(f"{keys[i]}:inst{r}", kept[i][0]) for i in idx for r in range(self.cfg.instances)]
            for i, a in zip([i for i in idx for _ in range(self.cfg.instances)], ask(step, items)):
                answers.setdefault(i, []).append((a, step))
        made = 0
        for i, (text, source) in enumerate(kept):
            seen: dict[str, str] = {}
            for a, step in answers.get(i, []):
                if not a.ok:
                    wave.rejected.append(
                        self.records.rejected([("user", text), ("assistant", a.completion.text)], source, a.error or "")
                    )
                    continue
                inst = a.value[0]
                turns = [("user", instruction_text(text, inst.input)), ("assistant", inst.output)]
                if inst.input in seen:
                    why = "same input as another instance" + (
                        " with a different output" if seen[inst.input] != inst.output else ""
                    )
                    wave.rejected.append(self.records.rejected(turns, source, why))
                    continue
                seen[inst.input] = inst.output
                wave.records.append(self.records.record(turns, source, lineage_of(a, step, self.records.model_id)))
                made += 1
        return made


@register
class SelfInstruct(DriverGenerator):
    """Self-Instruct (Wang et al. 2022): bootstrap new instructions from the seed tasks, then their instances."""

    name = "self_instruct"
    Config = SelfInstructConfig
    config: SelfInstructConfig
    tasks = {"instruction": INSTRUCTION_TASK}
    requires = ("seeds",)

    @classmethod
    def notes(cls, figures: dict[str, Any]) -> str:
        return (
            f"{figures.get('kept_instructions', 0)} of {figures.get('proposed', 0)} proposed instructions kept; "
            f"pool {figures.get('pool', 0)}"
        )

    def driver(self, records: InstructionRecords) -> SelfInstructDriver:
        task = self.job.task
        return SelfInstructDriver(
            self.config,
            self.job.pool(self.config.pool, self.config.pool_size),
            task.language,
            records,
            task.constraints.max_answer_chars,
        )
