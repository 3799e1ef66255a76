"""Embedded llama.cpp backend: a GGUF model in-process, many sequences decoded at once.

The high-level `llama_cpp.Llama` API generates one prompt at a time, so this backend drives llama.cpp's C API
(through llama-cpp-python's ctypes bindings) directly. It runs continuous batching: every `llama_decode` call
carries one new token for each generating sequence plus as much pending prompt as fits in `n_batch`, and a
sequence that finishes frees its slot (and its KV cells) for the next queued request at once, rather than
waiting for the slowest sequence of a batch.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import jinja2
import jinja2.sandbox

from sftforge.errors import ModelError
from sftforge.llm.base import LLM, ChatRequest, Completion, is_pre_query, render_pre_query, split_prefill

log = logging.getLogger(__name__)

# Imported lazily so that `sftforge schema` and friends do not pay for loading the shared library.
_lc = None


def _llama_cpp():
    global _lc
    if _lc is None:
        logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)  # silence llama.cpp's load chatter
        import llama_cpp

        llama_cpp.llama_backend_init()
        _lc = llama_cpp
    return _lc


@lru_cache(maxsize=64)
def _gbnf(schema_json: str) -> str:
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    return json_schema_to_gbnf(schema_json)


def model_fingerprint(path: Path) -> str:
    """Identity of a model file for cache keys: name, size and a hash of its first 4 MiB (fast for big files)."""
    st = path.stat()
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        h.update(fh.read(4 << 20))
    return f"{path.name}:{st.st_size}:{h.hexdigest()[:12]}"


class _Vocab:
    """Tokenisation helpers over a loaded llama model."""

    def __init__(self, model: ctypes.c_void_p) -> None:
        lc = _llama_cpp()
        self.vocab = lc.llama_model_get_vocab(model)
        self.n_vocab = lc.llama_vocab_n_tokens(self.vocab)

    def tokenize(self, text: str, add_special: bool, parse_special: bool) -> list[int]:
        lc = _llama_cpp()
        data = text.encode("utf-8")
        n_max = len(data) + 16
        buf = (lc.llama_token * n_max)()
        n = lc.llama_tokenize(self.vocab, data, len(data), buf, n_max, add_special, parse_special)
        if n < 0:  # buffer too small: -n is the size needed
            n_max = -n
            buf = (lc.llama_token * n_max)()
            n = lc.llama_tokenize(self.vocab, data, len(data), buf, n_max, add_special, parse_special)
        return list(buf[:n])

    def piece(self, token: int, special: bool = False) -> bytes:
        lc = _llama_cpp()
        buf = ctypes.create_string_buffer(64)
        n = lc.llama_token_to_piece(self.vocab, token, buf, 64, 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = lc.llama_token_to_piece(self.vocab, token, buf, -n, 0, special)
        return buf.raw[:n]

    def is_eog(self, token: int) -> bool:
        return bool(_llama_cpp().llama_vocab_is_eog(self.vocab, token))


def cpu_has_amx() -> bool:
    """Whether this CPU has Intel AMX tiles (Sapphire Rapids and later), read from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            return any(line.startswith("flags") and "amx_tile" in line.split() for line in fh)
    except OSError:
        return False


def _load_model(path: Path, vocab_only: bool) -> ctypes.c_void_p:
    lc = _llama_cpp()
    params = lc.llama_model_default_params()
    params.vocab_only = vocab_only
    params.n_gpu_layers = 0  # CPU; GPU offload comes with a GPU build of llama.cpp
    # ggml's AMX matrix kernels (an "extra buffer type" that repacks the weights) crash in llama_decode on batches
    # of several sequences on AMX CPUs (seen with llama-cpp-python 0.3.36 on a Sapphire Rapids machine: a SIGSEGV
    # in ggml_backend_amx_mul_mat). Without extra buffer types the weights stay as the GGUF stores them.
    if cpu_has_amx():
        params.use_extra_bufts = False
    model = lc.llama_model_load_from_file(str(path).encode("utf-8"), params)
    if not model:
        raise ModelError(f"llama.cpp could not load {path}: is it a complete, supported GGUF model?")
    return model


class LlamaTokenizer:
    """A GGUF model's tokenizer alone (vocab-only load: no weights), for counting tokens when chunking."""

    def __init__(self, path: Path) -> None:
        model = _load_model(path, vocab_only=True)
        self._model: ctypes.c_void_p | None = model  # None once freed
        self._vocab = _Vocab(model)

    def count(self, text: str) -> int:
        return len(self._vocab.tokenize(text, add_special=False, parse_special=False))

    def __del__(self) -> None:
        if getattr(self, "_model", None) and _lc is not None:
            _lc.llama_model_free(self._model)
            self._model = None


CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


class ChatTemplate:
    """The model's own chat template (GGUF `tokenizer.chat_template`), rendered in a Jinja2 sandbox."""

    def __init__(self, source: str, bos: str, eos: str) -> None:
        env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

        def raise_exception(message: str) -> None:
            raise ModelError(f"chat template error: {message}")

        env.globals["raise_exception"] = raise_exception
        self.template = env.from_string(source)
        self.bos, self.eos = bos, eos

    def render(self, messages: list[dict[str, str]]) -> str:
        """The prompt text. A final assistant message is a prefill: the model continues it. A final empty user
        message is a pre-query prompt (Magpie): the model writes the user's turn."""
        if is_pre_query(messages):
            return render_pre_query(
                lambda m: self.template.render(
                    messages=m, add_generation_prompt=False, bos_token=self.bos, eos_token=self.eos
                ),
                messages,
            )
        messages, prefill = split_prefill(messages)
        text = self.template.render(
            messages=messages, add_generation_prompt=True, bos_token=self.bos, eos_token=self.eos
        )
        return text + prefill


@dataclass
class _Slot:
    """One sequence being decoded: its request, prompt still to feed, sampler and output so far."""

    seq: int
    request: ChatRequest
    prompt: list[int]
    max_new: int
    sampler: ctypes.c_void_p
    fed: int = 0  # prompt tokens already in the KV cache
    reused: int = 0  # of which reused from an earlier request's cache
    pos: int = 0  # next position
    last: int = -1  # last sampled token, fed at the next step
    out: bytearray = field(default_factory=bytearray)
    n_out: int = 0


class LlamaCppLLM(LLM):
    """A GGUF chat model decoded in-process with continuous batching over `parallel` sequences."""

    def __init__(
        self,
        path: Path,
        n_ctx: int = 2048,
        parallel: int = 8,
        n_batch: int = 512,
        threads: int | None = None,
        continuous: bool = True,
    ) -> None:
        """`continuous=False` admits new requests only when every slot is free (batch after batch): slower on
        outputs of mixed lengths, kept to measure what continuous batching buys."""
        lc = _llama_cpp()
        self.continuous = continuous
        self.path = Path(path)
        self.model_id = f"llamacpp:{model_fingerprint(self.path)}"
        self.n_ctx_seq = n_ctx
        self.parallel = parallel
        self.n_batch = n_batch
        self._model = _load_model(self.path, vocab_only=False)
        self._vocab = _Vocab(self._model)
        cparams = lc.llama_context_default_params()
        cparams.n_ctx = n_ctx * parallel
        cparams.n_batch = n_batch
        cparams.n_ubatch = n_batch
        cparams.n_seq_max = parallel
        cparams.kv_unified = False  # each sequence attends only to its own cells
        cparams.no_perf = True
        n_threads = threads or os.cpu_count() or 1
        cparams.n_threads = n_threads
        cparams.n_threads_batch = n_threads
        self._ctx = lc.llama_init_from_model(self._model, cparams)
        if not self._ctx:
            lc.llama_model_free(self._model)
            raise ModelError(
                f"llama.cpp could not create a context of {n_ctx} x {parallel} tokens for {self.path}; "
                "lower generation.model.n_ctx or parallel"
            )
        self._mem = lc.llama_get_memory(self._ctx)
        self._batch = lc.llama_batch_init(n_batch, 0, 1)
        self.chat_template = self._chat_template()
        self._queue: deque[ChatRequest] = deque()
        self._slots: list[_Slot | None] = [None] * parallel
        # Tokens whose keys and values each sequence holds in the KV cache (positions 0..n-1). A finished
        # sequence keeps them, so a later prompt with the same prefix (the shared instructions and worked
        # example, a retry, another sample of the same passage) skips decoding that prefix again.
        self._kv: list[list[int]] = [[] for _ in range(parallel)]
        self.reused_prompt_tokens = 0

    # -- model metadata ------------------------------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        lc = _llama_cpp()
        buf = ctypes.create_string_buffer(1 << 16)
        n = lc.llama_model_meta_val_str(self._model, key.encode(), buf, len(buf))
        return buf.value.decode("utf-8", "replace") if n >= 0 else None

    def _chat_template(self) -> ChatTemplate:
        lc = _llama_cpp()
        raw = lc.llama_model_chat_template(self._model, None)
        source = raw.decode("utf-8") if raw else None
        if not source:
            log.warning("%s has no chat template; using ChatML", self.path.name)
            source = CHATML
        bos = self._vocab.piece(lc.llama_vocab_bos(self._vocab.vocab), special=True).decode("utf-8", "replace")
        eos = self._vocab.piece(lc.llama_vocab_eos(self._vocab.vocab), special=True).decode("utf-8", "replace")
        return ChatTemplate(source, bos, eos)

    def count_tokens(self, text: str) -> int:
        return len(self._vocab.tokenize(text, add_special=False, parse_special=False))

    def prompt_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        text = self.chat_template.render(messages)
        add_bos = not (self.chat_template.bos and text.startswith(self.chat_template.bos))
        return self._vocab.tokenize(text, add_special=add_bos, parse_special=True)

    # -- the protocol --------------------------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        return self.parallel

    def submit(self, request: ChatRequest) -> None:
        self._queue.append(request)

    def pending(self) -> int:
        return len(self._queue) + sum(s is not None for s in self._slots)

    def _sampler(self, request: ChatRequest) -> ctypes.c_void_p:
        lc = _llama_cpp()
        s = request.sampling
        chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
        if s.json_schema:  # constrain decoding to the schema with a GBNF grammar
            grammar = lc.llama_sampler_init_grammar(self._vocab.vocab, _gbnf(s.json_schema).encode(), b"root")
            if not grammar:
                raise ModelError("llama.cpp could not compile the grammar for the requested JSON schema")
            lc.llama_sampler_chain_add(chain, grammar)
        if s.temperature <= 0:
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_greedy())
        else:
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_top_p(s.top_p, 1))
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_temp(s.temperature))
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_dist(s.seed & 0xFFFFFFFF))
        return chain

    @staticmethod
    def _common_prefix(a: list[int], b: list[int]) -> int:
        n = min(len(a), len(b))
        i = 0
        while i < n and a[i] == b[i]:
            i += 1
        return i

    def _start(self, free: list[int], request: ChatRequest) -> _Slot:
        """Start `request` on the free sequence whose cached tokens share the longest prefix with its prompt."""
        lc = _llama_cpp()
        prompt = self.prompt_tokens(request.message_dicts())
        room = self.n_ctx_seq - len(prompt)
        if room < 1:
            raise ModelError(
                f"a prompt of {len(prompt)} tokens does not fit the context of {self.n_ctx_seq} tokens per sequence; "
                "raise generation.model.n_ctx or lower sources.chunking.max_tokens"
            )
        seq = max(free, key=lambda s: self._common_prefix(self._kv[s], prompt))
        # Keep the shared prefix, but always decode the last prompt token again: its logits start the reply.
        keep = min(self._common_prefix(self._kv[seq], prompt), len(prompt) - 1)
        if not lc.llama_memory_seq_rm(self._mem, seq, keep, -1):
            lc.llama_memory_seq_rm(self._mem, seq, -1, -1)
            keep = 0
        del self._kv[seq][keep:]
        self.reused_prompt_tokens += keep
        slot = _Slot(seq, request, prompt, min(request.sampling.max_tokens, room), self._sampler(request))
        slot.fed = slot.pos = slot.reused = keep
        return slot

    def _release(self, slot: _Slot) -> None:
        _llama_cpp().llama_sampler_free(slot.sampler)
        self._slots[slot.seq] = None

    def poll(self) -> list[Completion]:
        lc = _llama_cpp()
        free = [seq for seq, slot in enumerate(self._slots) if slot is None]
        if not self.continuous and len(free) < self.parallel:
            free = []  # batch after batch: wait for the whole batch to finish
        while free and self._queue:
            slot = self._start(free, self._queue.popleft())
            self._slots[slot.seq] = slot
            free.remove(slot.seq)
        active = [s for s in self._slots if s is not None]
        if not active:
            return []
        batch = self._batch
        n = 0
        wants_logits: list[tuple[_Slot, int]] = []

        def add(slot: _Slot, token: int, logits: bool) -> None:
            nonlocal n
            batch.token[n] = token
            batch.pos[n] = slot.pos
            batch.n_seq_id[n] = 1
            batch.seq_id[n][0] = slot.seq
            batch.logits[n] = logits
            if logits:
                wants_logits.append((slot, n))
            self._kv[slot.seq].append(token)
            slot.pos += 1
            n += 1

        for slot in active:  # one token for every sequence that is generating
            if slot.fed == len(slot.prompt):
                add(slot, slot.last, True)
        for slot in active:  # then prompt tokens, as many as fit
            while slot.fed < len(slot.prompt) and n < self.n_batch:
                slot.fed += 1
                add(slot, slot.prompt[slot.fed - 1], slot.fed == len(slot.prompt))
        batch.n_tokens = n
        rc = lc.llama_decode(self._ctx, batch)
        if rc != 0:
            raise ModelError(f"llama_decode failed with code {rc} (KV cache full?); lower generation.model.parallel")
        finished: list[Completion] = []
        for slot, idx in wants_logits:
            token = lc.llama_sampler_sample(slot.sampler, self._ctx, idx)
            reason = None
            if self._vocab.is_eog(token):
                reason = "stop"
            else:
                slot.out += self._vocab.piece(token)
                slot.n_out += 1
                slot.last = token
                if slot.request.sampling.stop and self._hit_stop(slot):
                    reason = "stop"
                elif slot.n_out >= slot.max_new:
                    reason = "length"
            if reason is not None:
                text = slot.out.decode("utf-8", "replace")
                for stop in slot.request.sampling.stop:
                    cut = text.find(stop)
                    if cut >= 0:
                        text = text[:cut]
                finished.append(
                    Completion(
                        slot.request, text, reason, len(slot.prompt), slot.n_out, reused_prompt_tokens=slot.reused
                    )
                )
                self._release(slot)
        return finished

    @staticmethod
    def _hit_stop(slot: _Slot) -> bool:
        tail = slot.out[-256:].decode("utf-8", "ignore")
        return any(s in tail for s in slot.request.sampling.stop)

    def close(self) -> None:
        lc = _lc
        if lc is None or getattr(self, "_ctx", None) is None:
            return
        for slot in self._slots:
            if slot is not None:
                lc.llama_sampler_free(slot.sampler)
        self._slots = [None] * self.parallel
        self._queue.clear()
        lc.llama_batch_free(self._batch)
        lc.llama_free(self._ctx)
        lc.llama_model_free(self._model)
        self._ctx = None

    def __del__(self) -> None:
        self.close()
