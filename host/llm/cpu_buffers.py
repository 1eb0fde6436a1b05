"""Keep llama.cpp's weights out of its AMX buffers.

llama.cpp's AMX kernels crash on Q4_0 and Q4_1 weights or compute garbage with them (ggml-org/llama.cpp issue 20824,
pull request 16315). llama-cpp-python compiles llama.cpp with `-march=native`, so on a CPU with AMX (Intel Xeon
since Sapphire Rapids, common in clouds) every matrix product of the packaged SmolLM2, a Q4_1 file, goes through
them, and the first prompt ends the process with a segmentation fault.

llama.cpp places weights for AMX in an "extra buffer type" of the CPU backend. With `use_extra_bufts` off the weights
stay in plain CPU buffers and the AVX-512 kernels run them. The same switch turns off the repacking of Q4_0, Q4_K and
IQ4_NL weights for faster kernels, so it is turned off only where AMX kernels were built.
"""

from __future__ import annotations

import functools

import llama_cpp


@functools.cache
def amx_kernels_built() -> bool:
    """llama.cpp reports AMX in its system information (compiled in, for a CPU that has it)."""
    return b"AMX_INT8 = 1" in llama_cpp.llama_print_system_info()


def without_amx(params: llama_cpp.llama_model_params) -> llama_cpp.llama_model_params:
    """`params`, changed in place so no weight is placed in an AMX buffer where llama.cpp would use one."""
    if amx_kernels_built():
        params.use_extra_bufts = False
    return params
