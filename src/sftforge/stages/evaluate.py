"""Stage `evaluate`: the base model and the fine-tuned one side by side on the held-out split and the recipe's
evaluation files: loss and perplexity on the reference answers, and generation metrics on greedy answers.

Writes `evaluate/results.json` (per set: base, tuned, and the difference) and `evaluate/answers.jsonl` (every
generated answer of both models next to its reference, for reading and for the report).

Both models compute as training did (`training.dtype`; with `mixed`, bf16 products over fp32 weights, which makes
greedy answers on a CPU with bf16 about a quarter faster), so the figures describe the model as it was trained.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict
from typing import Any

from sftforge.errors import StageError
from sftforge.figures import EvaluateFigures
from sftforge.llm.hf import HFLLM, load_causal_lm, model_dir, resolve_dtype
from sftforge.recipe import Recipe
from sftforge.run import ShardLog
from sftforge.sample import Record
from sftforge.select.pool import EVAL
from sftforge.stages.base import Context, Stage
from sftforge.storage import read_assignments, weights_dir, write_evaluation
from sftforge.train.evaluate import generation_answers, load_eval_file, loss_metrics, summarise
from sftforge.train.model import compute_precision, set_threads


def eval_sets(ctx: Context) -> dict[str, list[Record]]:
    """`heldout` (the eval split the select stage kept apart) and one set per file in `evaluation.files`."""
    held = {rid for rid, a in read_assignments(ctx.run).items() if a.split == EVAL}
    sets = {"heldout": [r for r in ctx.run.read_records("clean") if r.id in held]}
    for name in ctx.recipe.evaluation.files:
        path = ctx.recipe.resolve(name)
        sets[path.stem] = load_eval_file(path)
    return {k: v for k, v in sets.items() if v}


class _Models:
    """The base model and the fine-tuned one. With LoRA they are one model: the base is the adapter switched off."""

    def __init__(self, recipe: Recipe, ctx: Context) -> None:
        from peft import PeftModel

        cfg = recipe.training
        if cfg is None:
            raise StageError("the recipe has no `training` section: there is no fine-tuned model to evaluate")
        dtype = resolve_dtype(cfg.dtype)
        self.base_dir = model_dir(cfg.model, recipe.base_dir)
        weights = weights_dir(ctx.run, cfg.method)
        if not (weights / "config.json").exists() and not (weights / "adapter_config.json").exists():
            raise StageError(f"no fine-tuned weights in {weights}: run `sftforge train {ctx.run.path}` first")
        base, self.tokenizer = load_causal_lm(self.base_dir, dtype)
        self.lora = cfg.method == "lora"
        if self.lora:
            self.tuned = PeftModel.from_pretrained(base, str(weights))
            self.base = self.tuned
        else:
            self.base = base
            self.tuned, _ = load_causal_lm(weights, dtype)
        self.tuned.eval()

    @contextlib.contextmanager
    def use(self, which: str) -> Any:
        if which == "base" and self.lora:
            with self.tuned.disable_adapter():
                yield self.tuned
        else:
            yield self.base if which == "base" else self.tuned


class EvaluateStage(Stage):
    name = "evaluate"
    version = 1
    after = "train"

    def config(self, ctx: Context) -> Any:
        return {
            "evaluation": ctx.recipe.evaluation.model_dump(),
            "files": [
                ctx.recipe.resolve(f).stat().st_mtime_ns if ctx.recipe.resolve(f).exists() else None
                for f in ctx.recipe.evaluation.files
            ],
        }

    def execute(self, ctx: Context, out: ShardLog) -> tuple[dict[str, int], EvaluateFigures]:
        recipe = ctx.recipe
        cfg, ev = recipe.training, recipe.evaluation
        if cfg is None:
            raise StageError("the recipe has no `training` section: there is no fine-tuned model to evaluate")
        set_threads(cfg.threads)
        sets = eval_sets(ctx)
        if not sets:
            raise StageError("nothing to evaluate on: selection.eval_fraction is 0 and evaluation.files is empty")
        models = _Models(recipe, ctx)
        qa_mode = recipe.task.answer_mode
        bar = ctx.reporter.task("evaluate", total=len(sets) * (4 if ev.generate else 2))
        results: dict[str, Any] = {}
        answer_rows: list[dict[str, Any]] = []
        for set_name, records in sets.items():
            entry: dict[str, Any] = {}
            for which in ("base", "tuned"):
                with models.use(which) as model, compute_precision(cfg.dtype):
                    metrics = loss_metrics(model, models.tokenizer, records, cfg.max_seq_len, cfg.batch_size * 2)
                    ctx.reporter.advance(bar)
                    if ev.generate:
                        llm = HFLLM(
                            models.base_dir,
                            cfg.dtype,
                            batch_size=cfg.batch_size * 2,
                            loaded=(model, models.tokenizer),
                            model_id=f"evaluate:{which}",
                        )
                        answers = generation_answers(llm, records[: ev.max_examples], ev.max_new_tokens, qa_mode)
                        metrics.update({k: v for k, v in summarise(answers).items() if k != "n"})
                        metrics["generated"] = len(answers)
                        answer_rows.extend({"set": set_name, "model": which, **asdict(a)} for a in answers)
                        ctx.reporter.advance(bar)
                entry[which] = metrics
            entry["delta"] = {
                k: entry["tuned"][k] - entry["base"][k]
                for k in entry["base"]
                if isinstance(entry["base"][k], float) and k in entry["tuned"]
            }
            results[set_name] = entry
        ctx.reporter.done(bar)
        write_evaluation(ctx.run, results, answer_rows)
        return {"sets": len(results), "answers": len(answer_rows)}, EvaluateFigures(results=results)
