"""Generation stage throughput next to raw llama-cpp-python batched decoding of the same prompts.

Both sides get the same prompts (the first N work items the stage would make for the example PEP recipe), the
same model, sampling parameters, context and number of parallel sequences. "Raw" is the textbook batched loop on
llama-cpp-python's C API: decode a batch of prompts together, then one token per live sequence per step until the
batch is done, then the next batch. The stage is the real `generate` stage (parsing, validation, lineage, shard
commits, ledger), with the response cache off and one attempt per item so both decode exactly these prompts.

Reported: generated tokens per second for each, median over repetitions (alternated, since the machine is
shared), and the ratio. Last line: `generation stage vs raw: R`.

    python benchmarks/generation.py [--prompts 32] [--reps 3] [--max-tokens 64] [--parallel 8]
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import tempfile
import time
from pathlib import Path

import llama_cpp

from sftforge.generate.generators.grounded import GroundedStep
from sftforge.generate.runner import item_seed
from sftforge.llm.bundled import bundled_gguf
from sftforge.llm.llamacpp import ChatTemplate
from sftforge.progress import SilentReporter
from sftforge.recipe import load_recipe
from sftforge.run import RunDir
from sftforge.stages import Context, run_stage
from sftforge.stages.generate import passages

REPO = Path(__file__).resolve().parent.parent
RECIPE = REPO / "examples" / "recipes" / "pep_qa.yaml"


def make_recipe(n_prompts: int, max_tokens: int, parallel: int):  # type: ignore[no-untyped-def]
    recipe, text = load_recipe(RECIPE)
    recipe.task.type = "summarization"  # free-running outputs: both sides generate comparable token counts
    recipe.task.target_count = 10**6
    recipe.sources.retrieval.top_k = n_prompts
    recipe.generation.per_passage = 1
    recipe.generation.max_attempts = 1
    recipe.generation.cache = False
    recipe.generation.sampling.max_tokens = max_tokens
    recipe.generation.model.parallel = parallel
    return recipe, text


def prepared_run(recipe, text: str, where: Path) -> Context:  # type: ignore[no-untyped-def]
    run = RunDir.create(where, text, recipe.name, RECIPE.parent)
    ctx = Context(run=run, recipe=recipe, reporter=SilentReporter())
    run_stage(ctx, "sources")
    return ctx


def stage_tokens_per_s(recipe, text: str) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    with tempfile.TemporaryDirectory() as tmp:
        ctx = prepared_run(recipe, text, Path(tmp) / "run")
        t0 = time.perf_counter()
        run_stage(ctx, "generate")
        seconds = time.perf_counter() - t0
        tokens = ctx.run.manifest["stages"]["generate"]["extra"]["usage"]["completion_tokens"]
    return tokens / seconds, tokens


def prompts_for(recipe, text: str) -> list[tuple[list[dict[str, str]], int]]:  # type: ignore[no-untyped-def]
    """(messages, seed) of every request the stage makes, in its order."""
    with tempfile.TemporaryDirectory() as tmp:
        ctx = prepared_run(recipe, text, Path(tmp) / "run")
        gen = GroundedStep(recipe.task)
        items = gen.work_items(passages(ctx), recipe.generation.per_passage)
    seed = recipe.generation.sampling.seed
    return [(gen.prompt(it), item_seed(seed, it.key, 0)) for it in items]


def raw_tokens_per_s(recipe, requests) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    """Textbook static batching on the llama.cpp C API: a batch of prompts, then decode until all are done."""
    lc = llama_cpp
    s = recipe.generation.sampling
    m = recipe.generation.model
    t0 = time.perf_counter()
    mparams = lc.llama_model_default_params()
    model = lc.llama_model_load_from_file(str(bundled_gguf()).encode(), mparams)
    vocab = lc.llama_model_get_vocab(model)
    cparams = lc.llama_context_default_params()
    cparams.n_ctx = m.n_ctx * m.parallel
    cparams.n_batch = cparams.n_ubatch = m.n_batch
    cparams.n_seq_max = m.parallel
    cparams.kv_unified = False
    ctx = lc.llama_init_from_model(model, cparams)
    mem = lc.llama_get_memory(ctx)
    batch = lc.llama_batch_init(m.n_batch, 0, 1)
    template = ChatTemplate(lc.llama_model_chat_template(model, None).decode(), "", "")
    generated = 0

    def tokenize(text: str) -> list[int]:
        data = text.encode()
        buf = (lc.llama_token * (len(data) + 16))()
        n = lc.llama_tokenize(vocab, data, len(data), buf, len(buf), True, True)
        return list(buf[:n])

    for start in range(0, len(requests), m.parallel):
        group = requests[start : start + m.parallel]
        lc.llama_memory_clear(mem, True)
        samplers, pos, live, pending = [], [], [], []
        for messages, seed in group:
            chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_top_p(s.top_p, 1))
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_temp(s.temperature))
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_dist(seed))
            samplers.append(chain)
            pending.append(tokenize(template.render(messages)))
            pos.append(0)
            live.append(True)
        counts = [0] * len(group)
        next_tok: list[int | None] = [None] * len(group)
        while any(live):
            n, outputs = 0, []
            for i in range(len(group)):  # prompt tokens still to feed, then one token per live sequence
                if not live[i]:
                    continue
                feed = pending[i][: m.n_batch - n] if pending[i] else ([next_tok[i]] if next_tok[i] is not None else [])
                for j, tok in enumerate(feed):
                    batch.token[n], batch.pos[n], batch.n_seq_id[n] = tok, pos[i], 1
                    batch.seq_id[n][0] = i
                    last = j == len(feed) - 1 and (not pending[i] or len(feed) == len(pending[i]))
                    batch.logits[n] = last
                    if last:
                        outputs.append((i, n))
                    pos[i] += 1
                    n += 1
                if pending[i]:
                    pending[i] = pending[i][len(feed) :]
                if n >= m.n_batch:
                    break
            batch.n_tokens = n
            assert lc.llama_decode(ctx, batch) == 0
            for i, idx in outputs:
                tok = lc.llama_sampler_sample(samplers[i], ctx, idx)
                if lc.llama_vocab_is_eog(vocab, tok):
                    live[i] = False
                    continue
                counts[i] += 1
                next_tok[i] = tok
                if counts[i] >= s.max_tokens:
                    live[i] = False
        generated += sum(counts)
        for chain in samplers:
            lc.llama_sampler_free(chain)
    seconds = time.perf_counter() - t0
    lc.llama_batch_free(batch)
    lc.llama_free(ctx)
    lc.llama_model_free(model)
    return generated / seconds, generated


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--parallel", type=int, default=8)
    args = ap.parse_args()
    llama_cpp.llama_backend_init()
    _ = ctypes  # the C API is reached through llama_cpp's ctypes bindings

    recipe, text = make_recipe(args.prompts, args.max_tokens, args.parallel)
    requests = prompts_for(recipe, text)
    print(f"{len(requests)} prompts, max_tokens {args.max_tokens}, parallel {args.parallel}, {args.reps} repetitions")
    stage, raw = [], []
    for rep in range(args.reps):
        r_tps, r_tokens = raw_tokens_per_s(recipe, requests)
        s_tps, s_tokens = stage_tokens_per_s(recipe, text)
        raw.append(r_tps)
        stage.append(s_tps)
        print(
            f"rep {rep + 1}: raw {r_tps:7.1f} tok/s ({r_tokens} tokens)   stage {s_tps:7.1f} tok/s ({s_tokens} tokens)"
        )
    r, s = statistics.median(raw), statistics.median(stage)
    print(f"median generated tokens/s: raw llama-cpp-python batched {r:.1f}, sftforge generate stage {s:.1f}")
    print(f"generation stage vs raw: {s / r:.2f}")


if __name__ == "__main__":
    main()
