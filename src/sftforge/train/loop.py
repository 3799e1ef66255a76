"""The SFT loop: sampler -> batch -> (accumulated) gradient step -> feedback, with held-out loss, metrics and
checkpoints.

Every `save_every` steps the weights (the adapter for LoRA), optimizer, schedule, sampler and RNG states go to
`checkpoints/step-N/` (written to a temporary folder, then renamed: a crash leaves the previous checkpoint whole),
and a rerun continues from the newest one, drawing the same batches it would have drawn. `metrics.jsonl` gets one
row per step and one per evaluation, TensorBoard the same scalars.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sftforge.config import Training
from sftforge.progress import Reporter, SilentReporter
from sftforge.train.alignment import ExampleAlignment
from sftforge.train.data import Example, TrainingError, content_only
from sftforge.train.model import batch_loss, compute_precision, example_losses, mean_loss, save_weights
from sftforge.train.samplers import Sampler, StepSignal

log = logging.getLogger(__name__)

KEEP_CHECKPOINTS = 2


@dataclass(slots=True)
class TrainData:
    """Tokenised examples: what the sampler draws from, the held-out evaluation set, the bandit's probe set."""

    train: list[Example]
    eval: list[Example]
    probe: list[Example] = field(default_factory=list)


@dataclass(slots=True)
class TrainOutcome:
    steps: int
    resumed_from: int
    eval_curve: list[tuple[int, float]]  # (step, held-out loss)
    probabilities: list[float] | None
    seconds: float


def checkpoint_dirs(out: Path) -> list[Path]:
    """Complete checkpoints (with their state.json), oldest first."""
    root = out / "checkpoints"
    if not root.is_dir():
        return []
    done = [p for p in root.glob("step-*") if (p / "state.json").exists() and not p.name.endswith(".tmp")]
    return sorted(done, key=lambda p: int(p.name.removeprefix("step-")))


def latest_checkpoint(out: Path) -> Path | None:
    dirs = checkpoint_dirs(out)
    return dirs[-1] if dirs else None


def _schedule(cfg: Training) -> Callable[[int], float]:
    """Learning-rate multiplier for an optimizer step: linear warm-up, then constant, linear or cosine decay."""

    def factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / (cfg.warmup_steps + 1)
        if cfg.schedule == "constant":
            return 1.0
        span = max(cfg.steps - cfg.warmup_steps, 1)
        done = min((step - cfg.warmup_steps) / span, 1.0)
        return 1.0 - done if cfg.schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * done))

    return factor


class MetricsLog:
    """metrics.jsonl plus TensorBoard; on resume, rows after the checkpoint's step are dropped (they will be redone)."""

    def __init__(self, out: Path, resume_step: int, tensorboard: bool = True) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.path = out / "metrics.jsonl"
        if self.path.exists():
            kept = [
                ln
                for ln in self.path.read_text(encoding="utf-8").splitlines()
                if ln.strip() and _step_of(ln) <= resume_step
            ]
            self.path.write_text("".join(ln + "\n" for ln in kept), encoding="utf-8")
        self.file = self.path.open("a", encoding="utf-8")
        self.writer: Any = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(out / "tensorboard"), purge_step=resume_step + 1 if resume_step else None)

    def write(self, row: dict[str, Any]) -> None:
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()
        if self.writer is not None:
            for key, value in row.items():
                if isinstance(value, (int, float)) and key not in ("step", "arm") and math.isfinite(value):
                    self.writer.add_scalar(f"{row['kind']}/{key}", value, row["step"])
                elif key == "probabilities" and value:
                    self.writer.add_scalars("arms/probability", {str(i): p for i, p in enumerate(value)}, row["step"])

    def close(self) -> None:
        self.file.close()
        if self.writer is not None:
            self.writer.close()


def _step_of(line: str) -> int:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return 1 << 62  # a torn line: dropped


@dataclass(slots=True)
class StepMeasures:
    """What one optimizer step measured before its update: the token-weighted loss and its tokens; the cosine
    between the batch's and the probe set's gradients (NaN unless the sampler needs it); each example's loss and
    alignment (empty unless the sampler needs per-example signals)."""

    loss: float
    tokens: int
    alignment: float = float("nan")
    example_losses: list[float] = field(default_factory=list)
    example_alignments: list[float] = field(default_factory=list)
    left_out: int = 0  # examples taken back out of the step's gradient (drop_below)


class Trainer:
    """Runs `cfg.steps` optimizer steps on `model` with batches from `sampler`, writing into `out`."""

    def __init__(
        self,
        cfg: Training,
        model: Any,
        tokenizer: Any,
        data: TrainData,
        sampler: Sampler,
        out: Path,
        reporter: Reporter | None = None,
        tensorboard: bool = True,
    ) -> None:
        import torch

        if not data.train:
            raise TrainingError("nothing to train on: the training split has no example with assistant tokens")
        if (sampler.needs_probe or sampler.needs_alignment) and not data.probe:
            raise TrainingError("the bandit's reward needs a probe set: raise selection.eval_fraction")
        self.cfg, self.model, self.tokenizer, self.data, self.sampler, self.out = (
            cfg,
            model,
            tokenizer,
            data,
            sampler,
            out,
        )
        # Gradient alignment compares the batch's gradient with the probe set's content: the probe's end-of-turn
        # (special) tokens are left out, or every short answer, whose gradient is mostly its end-of-turn token,
        # would look aligned with the probe.
        self.probe_content = content_only(data.probe, set(getattr(tokenizer, "all_special_ids", []) or []))
        # Held-out examples by length: batches of like lengths carry less padding (the mean loss ignores order).
        self.eval_examples = sorted(data.eval, key=lambda e: len(e.input_ids))
        self.reporter = reporter or SilentReporter()
        self.tensorboard = tensorboard
        self.pad_id = tokenizer.pad_token_id
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, _schedule(cfg))
        self.step = 0
        self.probe_loss = float("nan")
        # With `drop_below`, an example whose gradient points away from the probe's is also taken out of its step.
        self.leave_out = sampler.per_example and sampler.needs_alignment and sampler.drop_below is not None
        if self.leave_out and cfg.method != "lora":
            raise TrainingError(
                "selection.bandit.drop_below takes examples back out of a step from their own gradients, which only "
                "LoRA's are small enough to keep: use training.method lora, or leave drop_below unset"
            )
        self.example_alignment = ExampleAlignment(model, keep=self.leave_out) if sampler.needs_alignment else None
        self.probe_grad: Any = None  # the probe set's gradient, recomputed every `sampler.probe_every` steps
        self.probe_grad_step = 0
        self.probe_drift: float | None = None  # cosine of a recomputed probe gradient with the one it replaces
        self.eval_curve: list[tuple[int, float]] = []

    # -- checkpoints -------------------------------------------------------------------------------------------

    def save_checkpoint(self) -> Path:
        import torch

        root = self.out / "checkpoints"
        target = root / f"step-{self.step:06d}"
        tmp = root / f"step-{self.step:06d}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        save_weights(self.model, self.tokenizer, tmp / "weights")
        torch.save(
            {
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "probe_grad": self.probe_grad,  # cached between refreshes: a resumed run compares with the same one
            },
            tmp / "optimizer.pt",
        )
        state = {
            "step": self.step,
            "sampler": self.sampler.state_dict(),
            "probe_loss": self.probe_loss,
            "probe_grad_step": self.probe_grad_step,
            "eval_curve": self.eval_curve,
        }
        (tmp / "state.json").write_text(json.dumps(state), encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
        for old in checkpoint_dirs(self.out)[:-KEEP_CHECKPOINTS]:
            shutil.rmtree(old, ignore_errors=True)
        return target

    def load_checkpoint(self, ckpt: Path) -> None:
        """Optimizer, schedule, sampler and RNG states of `ckpt` (the weights were loaded with the model)."""
        import torch

        state = json.loads((ckpt / "state.json").read_text(encoding="utf-8"))
        opt = torch.load(ckpt / "optimizer.pt", weights_only=False)
        self.optimizer.load_state_dict(opt["optimizer"])
        self.scheduler.load_state_dict(opt["scheduler"])
        torch.set_rng_state(opt["torch_rng"])
        self.sampler.load_state_dict(state["sampler"])
        self.step = int(state["step"])
        self.probe_loss = float(state["probe_loss"])
        if opt.get("probe_grad") is not None and self.example_alignment is not None:
            self._keep_probe_gradient(opt["probe_grad"], int(state["probe_grad_step"]))
        self.eval_curve = [(int(s), float(v)) for s, v in state["eval_curve"]]

    # -- the loop ----------------------------------------------------------------------------------------------

    def _losses(self, examples: list[Example]) -> float:
        with compute_precision(self.cfg.dtype):
            return mean_loss(example_losses(self.model, examples, self.pad_id, self.cfg.batch_size * 2))

    def evaluate(self) -> float:
        return self._losses(self.eval_examples) if self.eval_examples else float("nan")

    def _backward(
        self, examples: list[Example], alignment: ExampleAlignment | None = None
    ) -> tuple[float, int, list[float]]:
        """Gradients of the token-weighted mean loss over `examples` (in micro-batches), into the parameters'
        `.grad`: the loss, its token count and each example's own mean loss. With `alignment`, each example's
        gradient is compared with the probe's on the way (one pass for the whole batch)."""
        self.optimizer.zero_grad(set_to_none=True)
        size = self.cfg.batch_size
        total_tokens = sum(e.target_tokens for e in examples)
        loss_sum, tokens = 0.0, 0
        each: list[float] = []
        for s in range(0, len(examples), size):
            if alignment is not None:
                alignment.chunk(s)
            with compute_precision(self.cfg.dtype):
                loss, n, rows = batch_loss(self.model, examples[s : s + size], self.pad_id)
            (loss * (n / max(total_tokens, 1))).backward()
            loss_sum += float(loss.detach()) * n
            tokens += n
            each.extend(rows)
        return loss_sum / max(tokens, 1), tokens, each

    def _gradient(self) -> Any:
        import torch

        return torch.cat(
            [
                p.grad.detach().flatten() if p.grad is not None else torch.zeros(p.numel())
                for p in self.optimizer.param_groups[0]["params"]
            ]
        )

    def _refresh_probe_gradient(self) -> None:
        """The probe set's gradient at the current weights, kept for `sampler.probe_every` steps: every step's
        gradients are compared with it, and recomputing it each step would cost a backward pass over the whole
        probe set per step."""
        import torch

        self._backward(self.probe_content)
        fresh = self._gradient()
        if self.probe_grad is not None:  # how far the cached gradient had drifted: what caching it costs
            self.probe_drift = float(torch.nn.functional.cosine_similarity(fresh, self.probe_grad, dim=0))
        assert self.example_alignment is not None
        self.example_alignment.set_target()  # the per-example measure reads it from the layers' gradients
        self.probe_grad, self.probe_grad_step = fresh, self.step

    def _keep_probe_gradient(self, flat: Any, step: int) -> None:
        """Cache `flat` (a gradient over the trained parameters, taken at `step`, saved in a checkpoint) as the
        probe gradient."""
        assert self.example_alignment is not None
        offset = 0
        for p in self.optimizer.param_groups[0]["params"]:  # the per-example measure reads it from the layers
            n = p.numel()
            p.grad = flat[offset : offset + n].view_as(p).clone()
            offset += n
        self.example_alignment.set_target()
        self.probe_grad, self.probe_grad_step = flat, step

    def _train_step(self, batch: list[Example]) -> StepMeasures:
        """One optimizer step over `grad_accum` micro-batches; what it measured before the update: the loss, and the
        gradient alignments (of the batch, and of each example when the sampler needs per-example signals)."""
        import torch

        measured = StepMeasures(0.0, 0)
        if self.sampler.needs_alignment:
            if self.probe_grad is None or self.step - self.probe_grad_step >= self.sampler.probe_every:
                self._refresh_probe_gradient()
            if self.sampler.per_example:
                aligner = self.example_alignment
                assert aligner is not None
                with aligner.measuring(len(batch)):
                    loss, tokens, measured.example_losses = self._backward(batch, aligner)
                measured.example_alignments = aligner.cosines()
            else:
                loss, tokens, measured.example_losses = self._backward(batch)
            measured.alignment = float(torch.nn.functional.cosine_similarity(self._gradient(), self.probe_grad, dim=0))
            if self.leave_out:
                measured.left_out = self._leave_out(batch, measured.example_alignments)
        else:
            loss, tokens, measured.example_losses = self._backward(batch)
        measured.loss, measured.tokens = loss, tokens
        self.optimizer.step()
        self.scheduler.step()
        return measured

    def _leave_out(self, batch: list[Example], alignments: list[float]) -> int:
        """Take the examples whose alignment is at or below the sampler's `drop_below` out of this step's gradient
        (online selection within the drawn batch, by the first-order criterion of LESS, at the cost of a sum);
        how many were left out."""
        assert self.example_alignment is not None and self.sampler.drop_below is not None
        keep = [not (a <= self.sampler.drop_below) for a in alignments]  # NaN (no gradient) is kept
        if all(keep):
            return 0
        kept_tokens = sum(e.target_tokens for e, k in zip(batch, keep) if k)
        total = sum(e.target_tokens for e in batch)
        self.example_alignment.leave_out(keep, total / kept_tokens if kept_tokens else 0.0)
        return len(keep) - sum(keep)

    def run(self, resume_from: Path | None = None, base_loss: float | None = None) -> TrainOutcome:
        """Train to `cfg.steps`, from `resume_from` when given. `base_loss`: the held-out loss before any step,
        when the caller has measured it already (same base model, same held-out examples), so it is not redone."""
        started = time.perf_counter()
        if resume_from is not None:
            self.load_checkpoint(resume_from)
        resumed = self.step
        metrics = MetricsLog(self.out, resumed, self.tensorboard)
        bar = self.reporter.task("train", total=self.cfg.steps)
        self.reporter.advance(bar, n=self.step)
        try:
            if self.step == 0:
                first = self.evaluate() if base_loss is None else base_loss
                self.eval_curve.append((0, first))
                metrics.write({"kind": "eval", "step": 0, "eval_loss": first})
                if self.sampler.needs_probe:
                    self.probe_loss = self._losses(self.data.probe)
            while self.step < self.cfg.steps:
                draw = self.sampler.next_batch(self.cfg.batch_size * self.cfg.grad_accum)
                batch = [self.data.train[i] for i in draw.indices.tolist()]
                t0 = time.perf_counter()
                measured = self._train_step(batch)
                before = measured.loss
                self.step += 1
                after, example_after = float("nan"), []
                if self.sampler.needs_batch_after:
                    with compute_precision(self.cfg.dtype):
                        pairs = example_losses(self.model, batch, self.pad_id, self.cfg.batch_size * 2)
                    after = mean_loss(pairs)
                    example_after = [s / n if n else float("nan") for s, n in pairs]
                probe_before = self.probe_loss
                if self.sampler.needs_probe:
                    self.probe_loss = self._losses(self.data.probe)
                signal = StepSignal(
                    before,
                    after,
                    probe_before,
                    self.probe_loss,
                    measured.alignment,
                    tuple(measured.example_losses),
                    tuple(example_after) if self.sampler.per_example else (),
                    tuple(measured.example_alignments),
                )
                pulls = self.sampler.feedback(draw, signal)
                row: dict[str, Any] = {
                    "kind": "train",
                    "step": self.step,
                    "loss": before,
                    "tokens": measured.tokens,
                    "lr": self.scheduler.get_last_lr()[0],
                    "seconds": time.perf_counter() - t0,
                }
                if draw.arms is not None:
                    if self.sampler.per_example:  # an arm per example; (arm, reward) for those measured
                        row.update(arms=draw.arms.tolist(), pulls=[[a, r] for a, r in pulls])
                    else:
                        row.update(arm=int(draw.arms[0]), reward=pulls[0][1] if pulls else None)
                    row["probabilities"] = self.sampler.probabilities()
                if self.sampler.needs_alignment:
                    row["alignment"] = measured.alignment
                if self.leave_out:
                    row["left_out"] = measured.left_out
                if self.probe_drift is not None:
                    row["probe_drift"], self.probe_drift = self.probe_drift, None
                metrics.write(row)
                if self.step % self.cfg.eval_every == 0 or self.step == self.cfg.steps:
                    loss = self.evaluate()
                    self.eval_curve.append((self.step, loss))
                    metrics.write({"kind": "eval", "step": self.step, "eval_loss": loss})
                if self.step % self.cfg.save_every == 0 or self.step == self.cfg.steps:
                    self.save_checkpoint()
                self.reporter.advance(bar, loss=f"{before:.3f}", eval=f"{self.eval_curve[-1][1]:.3f}")
        finally:
            metrics.close()
            self.reporter.done(bar)
        return TrainOutcome(
            self.step, resumed, self.eval_curve, self.sampler.probabilities(), time.perf_counter() - started
        )
