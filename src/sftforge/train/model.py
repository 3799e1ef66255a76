"""The model being fine-tuned: loading (LoRA via peft, or every weight), per-example losses, saving and merging."""

from __future__ import annotations

import logging
import os
import warnings
import weakref
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from sftforge.config import Training
from sftforge.lib.token_loss import fast_head_matches, per_row, token_nll
from sftforge.llm.hf import bf16_is_faster, load_causal_lm, model_dir, resolve_dtype
from sftforge.train.data import Example, TrainingError, collate

log = logging.getLogger(__name__)
# peft asks transformers a question that transformers has deprecated; the warning is about their code, not ours.
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)


def set_threads(threads: int | None) -> None:
    import torch

    torch.set_num_threads(threads or os.cpu_count() or 1)


def load_trainable(cfg: Training, base_dir: Path | None, adapter: Path | None = None) -> tuple[Any, Any, Path]:
    """(model ready to train, tokenizer, base model directory). LoRA wraps the base model with a fresh adapter, or
    the adapter saved at `adapter` (a resumed run)."""
    import torch

    directory = model_dir(cfg.model, base_dir)
    if cfg.dtype == "mixed" and not bf16_is_faster():
        log.warning(
            "training.dtype mixed: this CPU runs bf16 no faster than fp32 (no native bf16), so mixed precision is "
            "slower here and less exact; set training.dtype: float32"
        )
    model, tokenizer = load_causal_lm(directory, resolve_dtype(cfg.dtype))
    torch.manual_seed(cfg.seed)
    if cfg.method == "lora":
        from peft import LoraConfig, PeftModel, get_peft_model

        if adapter is not None:
            model = PeftModel.from_pretrained(model, str(adapter), is_trainable=True)
        else:
            targets = cfg.lora.target_modules
            if cfg.lora.top_layers is not None:
                targets = _top_layer_modules(model, targets, cfg.lora.top_layers)
            lora = LoraConfig(
                r=cfg.lora.rank,
                lora_alpha=cfg.lora.alpha,  # type: ignore[arg-type]  # peft annotates int; it only divides by it (alpha / r)
                lora_dropout=cfg.lora.dropout,
                target_modules=targets,
                task_type="CAUSAL_LM",
            )
            try:
                model = get_peft_model(model, lora)
            except ValueError as exc:
                raise TrainingError(f"training.lora.target_modules: {exc}") from exc
    model.train()
    return model, tokenizer, directory


def _top_layer_modules(model: Any, targets: list[str] | str, top: int) -> list[str]:
    """The full names of the linear layers to adapt within the model's last `top` transformer layers: those named
    in `targets`, or every one for "all-linear". The layers are the model's list of `num_hidden_layers` blocks."""
    import torch

    total = int(getattr(model.config, "num_hidden_layers", 0) or 0)
    stacks = [n for n, m in model.named_modules() if isinstance(m, torch.nn.ModuleList) and len(m) == total]
    if total < 1 or not stacks:
        raise TrainingError("training.lora.top_layers: cannot find this model's list of transformer layers")
    prefixes = tuple(f"{stacks[0]}.{i}." for i in range(max(total - top, 0), total))
    names = [
        n
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.Linear)
        and n.startswith(prefixes)
        and (targets == "all-linear" or n.rsplit(".", 1)[-1] in targets)
    ]
    if not names:
        raise TrainingError(f"training.lora.top_layers: no layer named in target_modules {targets} in the last {top}")
    return names


def trainable_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


_FAST_HEAD: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def _causal_lm(model: Any) -> Any:
    """The transformers model inside a peft wrapper (its `base_model` is then the transformer body), or `model`."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _fast_head(model: Any) -> bool:
    """Whether only the assistant positions need to go through the output head (checked once per model on a short
    sequence): the head is a fifth of a small model's compute, and most positions are prompt."""
    import torch

    lm = _causal_lm(model)
    if lm not in _FAST_HEAD:
        ids = torch.arange(3, 19, dtype=torch.int64)[None, :] % max(int(lm.config.vocab_size), 19)
        _FAST_HEAD[lm] = fast_head_matches(lm, ids)
    return _FAST_HEAD[lm]


def _token_nll(model: Any, examples: list[Example], pad_id: int) -> tuple[Any, Any]:
    """(loss of every assistant token, the example each belongs to)."""
    batch = collate(examples, pad_id)
    fast = _fast_head(model)
    return token_nll(_causal_lm(model), batch["input_ids"], batch["attention_mask"], batch["labels"], fast)


def compute_precision(dtype: str) -> AbstractContextManager[Any]:
    """Where forward passes run: bf16 matrix products over fp32 weights for `dtype: mixed` (CPU autocast: the
    optimizer still updates fp32 weights, so small LoRA steps are not rounded away as with bf16 weights), else as
    the weights are. Backward passes follow the forward's dtypes by themselves."""
    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16) if dtype == "mixed" else nullcontext()


def batch_loss(model: Any, examples: list[Example], pad_id: int) -> tuple[Any, int, list[float]]:
    """(mean loss over the batch's assistant tokens, as a tensor with grad; number of those tokens; each example's
    own mean loss, NaN for one without assistant tokens)."""
    nll, rows = _token_nll(model, examples, pad_id)
    tokens = len(nll)
    each = [float(x.detach().mean()) if len(x) else float("nan") for x in per_row(nll, rows, len(examples))]
    return nll.sum() / max(tokens, 1), tokens, each


def example_losses(model: Any, examples: list[Example], pad_id: int, batch_size: int) -> list[tuple[float, int]]:
    """(summed loss, token count) over each example's assistant tokens, without gradients, in evaluation mode."""
    import torch

    was_training = model.training
    model.eval()
    out: list[tuple[float, int]] = []
    try:
        with torch.inference_mode():
            for s in range(0, len(examples), batch_size):
                chunk = examples[s : s + batch_size]
                nll, rows = _token_nll(model, chunk, pad_id)
                out.extend((float(x.sum()), len(x)) for x in per_row(nll, rows, len(chunk)))
    finally:
        if was_training:
            model.train()
    return out


def mean_loss(pairs: list[tuple[float, int]]) -> float:
    """Token-weighted mean loss of (summed loss, tokens) pairs: the held-out loss whose exp is the perplexity."""
    tokens = sum(n for _, n in pairs)
    return sum(s for s, _ in pairs) / tokens if tokens else float("nan")


def save_weights(model: Any, tokenizer: Any, target: Path) -> None:
    """The adapter (LoRA) or the whole model (full fine-tuning), with the tokenizer, as transformers/peft write them."""
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(target), safe_serialization=True)
    tokenizer.save_pretrained(str(target))


def merge_adapter(base: Path, adapter: Path, target: Path, dtype: str = "float32") -> Path:
    """The base model with the LoRA adapter folded into its weights, saved as a plain transformers model."""
    from peft import PeftModel

    model, tokenizer = load_causal_lm(base, resolve_dtype(dtype))
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    save_weights(merged, tokenizer, target)
    return target
