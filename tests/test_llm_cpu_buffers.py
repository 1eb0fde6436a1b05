"""llama.cpp's AMX kernels crash on the packaged Q4_1 model: where they are built, weights stay out of AMX buffers;
elsewhere llama.cpp keeps its extra buffers (the repacked kernels)."""

from __future__ import annotations

import llama_cpp
import pytest

from host.llm import cpu_buffers
from host.llm.embedded import load_model
from host.packaged_models import smollm2_path


@pytest.mark.parametrize(("amx", "extra_buffers"), [(True, False), (False, True)])
def test_extra_buffers_are_off_only_where_amx_kernels_are_built(
    monkeypatch: pytest.MonkeyPatch, amx: bool, extra_buffers: bool
) -> None:
    monkeypatch.setattr(cpu_buffers, "amx_kernels_built", lambda: amx)
    params = cpu_buffers.without_amx(llama_cpp.llama_model_default_params())
    assert params.use_extra_bufts is extra_buffers


def test_the_packaged_model_answers_on_this_machine_whatever_its_cpu() -> None:
    model = load_model(smollm2_path(), 1024, 1, 2)
    assert model.llama.model_params.use_extra_bufts is not cpu_buffers.amx_kernels_built()
    reply = model.llama.create_completion("The capital of France is", max_tokens=4, temperature=0)
    assert reply["choices"][0]["text"].strip()
