"""A real `llama_cpp.server` (from the dev extra) on 127.0.0.1 serving the packaged SmolLM2, for the tests of the
OpenAI-compatible backend and of the advisor against a real OpenAI-compatible endpoint."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from host.packaged_models import smollm2_path

API_KEY = "sk-test-4f9c2e7b1d"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# llama_cpp.server loads its model with llama.cpp's default parameters, which crash on a CPU with AMX
# (host/llm/cpu_buffers.py): the server's process gets the host's safe parameters before it starts.
_SERVER_WITHOUT_AMX = (
    "import runpy, llama_cpp.llama_cpp as c; from host.llm.cpu_buffers import without_amx; "
    "d = c.llama_model_default_params; c.llama_model_default_params = lambda: without_amx(d()); "
    "runpy.run_module('llama_cpp.server', run_name='__main__', alter_sys=True)"
)


@dataclass(frozen=True)
class LlamaServer:
    base_url: str


@pytest.fixture(scope="session")
def llama_server() -> Iterator[LlamaServer]:
    port = free_port()
    command = [sys.executable, "-c", _SERVER_WITHOUT_AMX, "--model", str(smollm2_path())]
    command += ["--host", "127.0.0.1", "--port", str(port), "--api_key", API_KEY, "--n_threads", "1"]
    # Room for the advisor's prompt (its schema alone is ~600 tokens) and its answer.
    command += ["--n_ctx", "4096"]
    command += ["--verbose", "False"]
    env = {**os.environ, "ORT_DISABLE_TELEMETRY": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
                pytest.fail(f"llama_cpp.server exited with {process.returncode}: {stderr[-2000:]}")
            try:
                headers = {"Authorization": f"Bearer {API_KEY}"}
                if httpx.get(f"{base_url}/models", headers=headers, timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama_cpp.server did not answer within 90 s")
            time.sleep(0.2)
        yield LlamaServer(base_url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()
