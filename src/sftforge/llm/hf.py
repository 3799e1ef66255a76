"""transformers backend: generation with batching and left padding, and scoring (per-token loss of a response
given its prompt), for any causal LM: a model directory, a GGUF file, or the bundled model.

A GGUF file is de-quantised by transformers once and saved as a normal safetensors model in the user cache
(`$SFTFORGE_CACHE`, default `~/.cache/sftforge`): loading from GGUF converts the tokenizer and every tensor and
takes tens of seconds, loading the saved copy takes about a second. The GGUF-loaded model refuses
`save_pretrained`, so the copy is a fresh model built from its config with the loaded weights.

bf16 is used where this CPU runs it faster than fp32 (`dtype: auto` measures a matmul once per process); bf16
halves memory and, on CPUs with native bf16 (AVX-512 BF16, AMX), is 1.4-1.8x faster, but on AVX2-only CPUs it is
emulated and slower.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from sftforge.cache import cache_root
from sftforge.errors import ModelError
from sftforge.lib.chat import render_chat
from sftforge.lib.token_loss import IGNORE, pad_right, per_row, token_nll
from sftforge.llm.base import LLM, ChatRequest, Completion, is_pre_query, render_pre_query, split_prefill
from sftforge.llm.bundled import resolve_model_path

log = logging.getLogger(__name__)


def _quiet_transformers() -> None:
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


def model_dir(path: str, base_dir: Path | None = None) -> Path:
    """A transformers model directory for `path`: a directory as it is; a GGUF file (or 'bundled') converted once
    into the user cache."""
    if path != "bundled":
        p = Path(path).expanduser()
        p = p if p.is_absolute() or base_dir is None else base_dir / p
        if p.is_dir():
            if not (p / "config.json").exists():
                raise ModelError(f"{p} is not a transformers model directory (no config.json)")
            return p
    gguf = resolve_model_path(path, base_dir)
    from sftforge.llm.llamacpp import model_fingerprint

    target = cache_root() / "hf" / model_fingerprint(gguf).replace(":", "_")
    if (target / "config.json").exists():
        return target
    log.info("converting %s to a transformers model in %s (once)", gguf.name, target)
    _quiet_transformers()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = target.with_name(target.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        fresh = AutoModelForCausalLM.from_config(loaded.config, dtype=torch.float32)
        fresh.load_state_dict(loaded.state_dict())
        fresh.generation_config = loaded.generation_config
        fresh.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        tmp.rename(target)
    except OSError as exc:
        raise ModelError(
            f"cannot write the converted model to {target}: {exc}; set SFTFORGE_CACHE to a writable folder"
        ) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


@lru_cache(maxsize=1)
def bf16_is_faster() -> bool:
    """Whether bf16 matmuls beat fp32 on this CPU (a transformer-sized matmul, timed once per process)."""
    import torch

    def best(dtype: torch.dtype) -> float:
        a = torch.randn(256, 576, dtype=dtype)
        b = torch.randn(576, 1536, dtype=dtype)
        times = []
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(4):
                a @ b
            times.append(time.perf_counter() - t)
        return min(times)

    return bf16_wins(best(torch.bfloat16), best(torch.float32))


def bf16_wins(bf16_seconds: float, fp32_seconds: float) -> bool:
    """bf16 is chosen only when it is clearly faster (10%): a tie is not worth its lower precision."""
    return bf16_seconds < 0.9 * fp32_seconds


def resolve_dtype(name: str) -> Any:
    """The weights' dtype for a configured name; "mixed" (training) keeps fp32 weights and computes in bf16."""
    import torch

    if name == "mixed":
        return torch.float32
    if name == "auto":
        return torch.bfloat16 if bf16_is_faster() else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[name]


def load_causal_lm(directory: Path, dtype: Any) -> tuple[Any, Any]:
    _quiet_transformers()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    model = AutoModelForCausalLM.from_pretrained(str(directory), dtype=dtype)
    model.eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def render_prompt(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    """The chat template applied for generation; a final assistant message is a prefill that the model continues; a
    final empty user message asks the model to write the user's turn (Magpie's pre-query template)."""
    if is_pre_query(messages):
        if not tokenizer.chat_template:
            raise ModelError("this model has no chat template, so it has no pre-query template for Magpie")
        return render_pre_query(lambda m: tokenizer.apply_chat_template(m, tokenize=False), messages)
    messages, prefill = split_prefill(messages)
    return render_chat(tokenizer, messages, add_generation_prompt=True) + prefill


@dataclass(frozen=True, slots=True)
class Scored:
    """Loss of a response given its prompt: mean over the response's tokens, and per token."""

    mean_loss: float
    token_losses: list[float]


class HFLLM(LLM):
    """Batched generation with left padding, plus `score` for per-token losses."""

    def __init__(
        self,
        directory: Path,
        dtype: str = "auto",
        batch_size: int = 8,
        loaded: tuple[Any, Any] | None = None,
        model_id: str | None = None,
    ) -> None:
        """`loaded`: a (model, tokenizer) pair already in memory (e.g. a model with a LoRA adapter being evaluated)
        instead of loading `directory`; `model_id` then names it for the response cache."""
        import torch

        self.directory = directory
        self.torch_dtype = resolve_dtype(dtype)
        self.model, self.tokenizer = loaded if loaded is not None else load_causal_lm(directory, self.torch_dtype)
        self.batch_size = batch_size
        self.model_id = model_id or f"transformers:{directory.name}:{str(self.torch_dtype).removeprefix('torch.')}"
        self._queue: deque[ChatRequest] = deque()
        self._torch = torch

    @property
    def capacity(self) -> int:
        return self.batch_size

    def submit(self, request: ChatRequest) -> None:
        self._queue.append(request)

    def pending(self) -> int:
        return len(self._queue)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def poll(self) -> list[Completion]:
        """Generate for the next batch of queued requests with the same sampling settings."""
        if not self._queue:
            return []
        first = self._queue.popleft()
        batch = [first]
        rest: deque[ChatRequest] = deque()
        while self._queue and len(batch) < self.batch_size:
            r = self._queue.popleft()
            s, f = r.sampling, first.sampling
            same = (s.temperature, s.top_p, s.max_tokens, s.stop) == (f.temperature, f.top_p, f.max_tokens, f.stop)
            (batch if same else rest).append(r)
        self._queue.extendleft(reversed(rest))
        return self._generate(batch)

    def _generate(self, batch: list[ChatRequest]) -> list[Completion]:
        torch = self._torch
        tok = self.tokenizer
        s = batch[0].sampling
        prompts = [render_prompt(tok, r.message_dicts()) for r in batch]
        tok.padding_side = "left"
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        torch.manual_seed(s.seed)  # one RNG stream per batch, seeded by its first request
        kwargs: dict[str, Any] = {
            "max_new_tokens": s.max_tokens,
            "pad_token_id": tok.pad_token_id,
            "do_sample": s.temperature > 0,
        }
        if s.temperature > 0:
            kwargs.update(temperature=s.temperature, top_p=s.top_p, top_k=0)
        if s.stop:
            kwargs.update(stop_strings=list(s.stop), tokenizer=tok)
        with torch.inference_mode():
            out = self.model.generate(**enc, **kwargs)
        new = out[:, enc["input_ids"].shape[1] :]
        eos_ids = self.model.generation_config.eos_token_id
        eos = set(eos_ids if isinstance(eos_ids, list) else [eos_ids]) | {tok.eos_token_id}
        completions = []
        for i, r in enumerate(batch):
            ids = new[i].tolist()
            cut = next((j for j, t in enumerate(ids) if t in eos), None)
            visible = ids if cut is None else ids[:cut]
            while cut is None and visible and visible[-1] == tok.pad_token_id:  # padding after a stop string
                visible.pop()
            text = tok.decode(visible, skip_special_tokens=True)
            stopped = False
            for stop in s.stop:
                pos = text.find(stop)
                if pos >= 0:
                    text, stopped = text[:pos], True
            reason = "length" if cut is None and not stopped and len(visible) >= s.max_tokens else "stop"
            completions.append(Completion(r, text, reason, int(enc["attention_mask"][i].sum()), len(visible)))
        return completions

    def score(self, pairs: list[tuple[list[dict[str, str]], str]], batch_size: int | None = None) -> list[Scored]:
        """Per-token loss (negative log-likelihood, nats) of each response given its prompt messages."""
        torch = self._torch
        tok = self.tokenizer
        out: list[Scored] = []
        size = batch_size or self.batch_size
        for start in range(0, len(pairs), size):
            chunk = pairs[start : start + size]
            seqs, labels = [], []
            for messages, response in chunk:
                prompt_ids = tok(render_prompt(tok, messages), add_special_tokens=False)["input_ids"]
                resp_ids = tok(response, add_special_tokens=False)["input_ids"]
                seqs.append(prompt_ids + resp_ids)
                labels.append([IGNORE] * len(prompt_ids) + resp_ids)
            with torch.inference_mode():
                nll, rows = token_nll(self.model, *pad_right(seqs, labels, tok.pad_token_id))
            for row in per_row(nll, rows, len(chunk)):
                losses = row.tolist()
                out.append(Scored(sum(losses) / len(losses) if losses else float("nan"), losses))
        return out

    def next_token_logits(self, prompts: list[str], token_ids: list[int], batch_size: int | None = None) -> Any:
        """Logits of the next token after each prompt (already rendered text, e.g. by `render_prompt`), restricted to
        the columns `token_ids`: a float32 numpy array of shape (len(prompts), len(token_ids)).

        Prompts are left-padded in batches, with position ids counted from each prompt's first real token, so a
        prompt gets the same logits alone or in a batch; only the last position goes through the output head.
        """
        import inspect

        import numpy as np

        torch = self._torch
        tok = self.tokenizer
        size = batch_size or self.batch_size
        columns = torch.tensor(token_ids, dtype=torch.long)
        params = inspect.signature(self.model.forward).parameters
        keep = next((k for k in ("logits_to_keep", "num_logits_to_keep") if k in params), None)
        out = np.zeros((len(prompts), len(token_ids)), dtype=np.float32)
        for start in range(0, len(prompts), size):
            chunk = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts[start : start + size]]
            width = max(len(x) for x in chunk)
            pad = tok.pad_token_id
            ids = torch.tensor([[pad] * (width - len(x)) + x for x in chunk])
            attn = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in chunk])
            position_ids = (attn.cumsum(-1) - 1).clamp(min=0)
            kwargs: dict[str, Any] = {"input_ids": ids, "attention_mask": attn, "use_cache": False}
            if "position_ids" in params:
                kwargs["position_ids"] = position_ids
            if keep:
                kwargs[keep] = 1
            with torch.inference_mode():
                logits = self.model(**kwargs).logits[:, -1, :].float()
            out[start : start + len(chunk)] = logits[:, columns].numpy()
        return out

    def close(self) -> None:
        self._queue.clear()
