"""Backends side by side on the same 64 prompts, in one run:

- llama.cpp in-process: continuous batching, and batch after batch (same code, static admission), on two prompt
  sets: "moderate" (eight kinds of request, most outputs run to max_tokens) and "wide" (7 of 8 ask for one word,
  1 of 8 for a long story: output lengths from 1 to 128 tokens, where batch after batch leaves slots idle);
- llama.cpp through its OpenAI-compatible server (llama-cpp-python's) at concurrency 1, 8 and 32;
- transformers batched generation in fp32 and bf16;
- transformers scoring (per-token loss of a response given its prompt).

Generated tokens per second for each. The continuous vs batch-after-batch comparison is repeated (alternating)
and reported as a median ratio, since the machine is shared. Last line: `continuous batching speedup: R` on the
wide set (the moderate set's ratio is printed above it).

    python benchmarks/backends.py [--prompts 64] [--max-tokens 48] [--reps 3] [--skip-hf] [--skip-server]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import httpx

from sftforge.llm.base import ChatRequest, SamplingParams
from sftforge.llm.bundled import bundled_gguf
from sftforge.llm.llamacpp import LlamaCppLLM
from sftforge.llm.openai import OpenAICompatibleLLM, OpenAISettings

TASKS = [
    "Answer with one word: what colour is the sky on a clear day?",
    "Give a one-word synonym for 'happy'.",
    "Write two sentences about the ocean.",
    "List ten animals, one per line.",
    "Explain in a short paragraph why the sun rises in the east.",
    "Name the capital of Italy.",
    "Write a haiku about autumn.",
    "Describe how to make a cup of tea, step by step.",
]


SHORT = [
    "Answer with one word: what colour is grass?",
    "Give a one-word synonym for 'big'.",
    "Name the capital of Spain in one word.",
    "Answer yes or no: is fire hot?",
    "What is 2+3? Reply with the number only.",
    "Name one planet, one word.",
    "One word: the opposite of cold?",
]
LONG = "Write a long, detailed story about a dragon who learns to cook."


def wide_requests(n: int) -> list[ChatRequest]:
    return [
        ChatRequest.of(
            f"w{i}",
            [{"role": "user", "content": LONG if i % 8 == 3 else SHORT[i % 7]}],
            SamplingParams(temperature=0.7, top_p=0.95, max_tokens=128, seed=i),
        )
        for i in range(n)
    ]


def make_requests(n: int, max_tokens: int) -> list[ChatRequest]:
    return [
        ChatRequest.of(
            f"r{i}",
            [{"role": "user", "content": f"{TASKS[i % len(TASKS)]} (#{i})"}],
            SamplingParams(temperature=0.7, top_p=0.95, max_tokens=max_tokens, seed=i),
        )
        for i in range(n)
    ]


def timed(llm, reqs) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    outs = llm.generate(reqs)
    seconds = time.perf_counter() - t
    tokens = sum(c.completion_tokens for c in outs)
    return tokens / seconds, tokens


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--skip-hf", action="store_true")
    ap.add_argument("--skip-server", action="store_true")
    args = ap.parse_args()
    reqs = make_requests(args.prompts, args.max_tokens)
    gguf = bundled_gguf()
    rows: list[tuple[str, float, int]] = []
    print(f"{len(reqs)} prompts of mixed output lengths, max_tokens {args.max_tokens}, model {gguf.name}")

    ratios: dict[str, float] = {}
    for label, prompts in (("moderate", reqs), ("wide", wide_requests(args.prompts))):
        cont, stat = [], []
        for rep in range(args.reps):
            for continuous, bucket in ((True, cont), (False, stat)):
                llm = LlamaCppLLM(gguf, n_ctx=512, parallel=args.parallel, continuous=continuous)
                tps, tokens = timed(llm, prompts)
                llm.close()
                bucket.append(tps)
                mode = "continuous" if continuous else "batch after batch"
                print(f"  {label} set, rep {rep + 1}, llama.cpp {mode}: {tps:.1f} tok/s ({tokens} tokens)")
        ratios[label] = statistics.median(c / s for c, s in zip(cont, stat))
        rows.append((f"llama.cpp in-process, continuous batching, {label} set, median", statistics.median(cont), 0))
        rows.append((f"llama.cpp in-process, batch after batch, {label} set, median", statistics.median(stat), 0))
    llm = LlamaCppLLM(gguf, n_ctx=512, parallel=1)
    tps, tokens = timed(llm, reqs[:16])
    llm.close()
    rows.append(("llama.cpp in-process, one sequence at a time (16 prompts)", tps, tokens))

    if not args.skip_server:
        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sftforge.llm.llamacpp_server",
                "--model",
                str(gguf),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                "2048",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}/v1"
        try:
            for _ in range(240):
                try:
                    if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.5)
            for conc in (1, 8, 32):
                llm = OpenAICompatibleLLM(OpenAISettings(base_url=url, model="smollm2", concurrency=conc, timeout=600))
                tps, tokens = timed(llm, reqs)
                llm.close()
                rows.append((f"llama.cpp server (llama-cpp-python), concurrency {conc}", tps, tokens))
        finally:
            server.terminate()
            server.wait(timeout=30)

    if not args.skip_hf:
        from sftforge.llm.hf import HFLLM, bf16_is_faster, model_dir

        directory = model_dir("bundled")
        for dtype in ("float32", "bfloat16"):
            llm = HFLLM(directory, dtype=dtype, batch_size=16)
            tps, tokens = timed(llm, reqs)
            rows.append((f"transformers {dtype}, batch 16", tps, tokens))
            if dtype == "float32":
                pairs = [
                    (r.message_dicts(), "A reasonably long answer that the model has to score token by token. " * 3)
                    for r in reqs
                ]
                t = time.perf_counter()
                scored = llm.score(pairs, batch_size=16)
                seconds = time.perf_counter() - t
                n = sum(len(s.token_losses) for s in scored)
                rows.append(("transformers float32 scoring (response tokens/s)", n / seconds, n))
        print(f"  bf16 measured faster than fp32 on this CPU: {bf16_is_faster()}")

    print()
    print(f"{'backend':<72} {'tokens/s':>9}")
    for name, tps, _ in rows:
        print(f"{name:<72} {tps:9.1f}")
    print(f"continuous batching speedup on the moderate set: {ratios['moderate']:.2f}")
    print(f"continuous batching speedup: {ratios['wide']:.2f}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory():
        main()
