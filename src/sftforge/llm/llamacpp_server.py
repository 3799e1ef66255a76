"""Start llama-cpp-python's OpenAI-compatible server, as `python -m llama_cpp.server` would, but safe on AMX CPUs.

ggml's AMX matrix kernels (an "extra buffer type" that repacks the weights at load) crash llama_decode with a
SIGSEGV on Sapphire Rapids and later CPUs (llama-cpp-python 0.3.36); the server then dies on its first request.
The library's own loader turns them off there (sftforge.llm.llamacpp); the server has no setting for it, so this
launcher makes the default model parameters carry the same choice before the server's code loads the model.
Usage: python -m sftforge.llm.llamacpp_server --model PATH --host 127.0.0.1 --port N [other llama_cpp.server options]
"""

from __future__ import annotations

import runpy
import sys

import llama_cpp
import llama_cpp.llama

from sftforge.llm.llamacpp import cpu_has_amx


def main() -> None:
    if cpu_has_amx():
        default_params = llama_cpp.llama_model_default_params

        def params_without_extra_buffer_types() -> llama_cpp.llama_model_params:
            params = default_params()
            params.use_extra_bufts = False
            return params

        llama_cpp.llama_model_default_params = params_without_extra_buffer_types
        llama_cpp.llama.llama_cpp.llama_model_default_params = params_without_extra_buffer_types
    sys.argv = ["llama_cpp.server", *sys.argv[1:]]
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
