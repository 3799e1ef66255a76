"""LLM backends behind one protocol (base.py), plus the response cache."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sftforge.llm.base import LLM, ChatRequest, Completion, SamplingParams
from sftforge.llm.bundled import resolve_model_path
from sftforge.llm.cache import CachedLLM, ResponseCache

if TYPE_CHECKING:
    from sftforge.config import LlamaCppModel, OpenAIModel, TransformersModel

__all__ = ["LLM", "ChatRequest", "Completion", "SamplingParams", "open_llm"]


def open_llm(spec: LlamaCppModel | OpenAIModel | TransformersModel, base_dir: Path, cache_path: Path | None) -> LLM:
    """The backend a recipe's `generation.model` block names, wrapped in the response cache if one is given."""
    llm: LLM
    if spec.backend == "llamacpp":
        from sftforge.llm.llamacpp import LlamaCppLLM

        path = resolve_model_path(spec.path, base_dir)
        llm = LlamaCppLLM(path, n_ctx=spec.n_ctx, parallel=spec.parallel, n_batch=spec.n_batch, threads=spec.threads)
    elif spec.backend == "transformers":
        from sftforge.llm.hf import HFLLM, model_dir

        llm = HFLLM(model_dir(spec.path, base_dir), dtype=spec.dtype, batch_size=spec.batch_size)
    else:
        from sftforge.llm.openai import OpenAICompatibleLLM, OpenAISettings

        llm = OpenAICompatibleLLM(
            OpenAISettings(
                base_url=spec.base_url if isinstance(spec.base_url, str) else tuple(spec.base_url),
                model=spec.model,
                api_key_env=spec.api_key_env,
                concurrency=spec.concurrency,
                timeout=spec.timeout,
                max_retries=spec.max_retries,
            )
        )
    if cache_path is not None:
        llm = CachedLLM(llm, ResponseCache(cache_path))
    return llm
