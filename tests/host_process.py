"""`npc-host` subprocesses for the tests: a clean environment, output kept in a file, readiness and signals.

    host = HostProcess.start(["run", "--roles", "brain"], host_env(tmp_path, NPC_HOST_REDIS_URL=url), tmp_path)
    await host.wait_consuming(bus, "example")     # its brain consumer joined the group on the said stream
    host.signal(signal.SIGTERM)
    assert await host.wait_exit() == 0, host.output()

Output goes to a file, not a pipe: a chatty host can never block on a full pipe nobody reads.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from host.bus import Bus, StreamKind, stream_name

# Generous bounds for a loaded 2-core machine: a failing test reports after this, a passing one never waits for it.
START_S = 60.0
EXIT_S = 60.0


def host_env(workdir: Path, **settings: str) -> dict[str, str]:
    """This process's environment without any `NPC_HOST_*` variable, plus `settings`, with every path in `workdir`."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("NPC_HOST_")}
    env.update(
        ORT_DISABLE_TELEMETRY="1",
        COLUMNS="400",  # rich wraps tables and log lines at the terminal width
        NPC_HOST_CONFIG=str(workdir / "npc-host.toml"),  # absent: no config file from anywhere else
        NPC_HOST_PROFILES_DIR=str(workdir / "profiles"),
        NPC_HOST_DATA_DIR=str(workdir / "data"),
        NPC_HOST_TRANSCRIPTS_DIR=str(workdir / "transcripts"),
        NPC_HOST_ADMIN_PORT="0",  # any free port: hosts of tests running side by side never collide
    )
    env.update(settings)
    return env


def closed_port() -> int:
    """A loopback port nothing listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class HostProcess:
    """One `python -m host ARGS` process."""

    def __init__(self, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    @classmethod
    def start(
        cls,
        args: Sequence[str],
        env: dict[str, str],
        workdir: Path,
        *,
        name: str = "host",
        program: Sequence[str] = (sys.executable, "-m", "host"),
    ) -> HostProcess:
        """`program` is another installation's `npc-host` (tests/test_install_wheel.py), else this tree's."""
        log_path = workdir / f"{name}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [*program, *args],
                env=env,
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return cls(process, log_path)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def consumer(self) -> str:
        """The brain role's consumer name in this process (`host.bus.streams.consumer_name`)."""
        return f"brain-{socket.gethostname()}-{self.pid}"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: signal.Signals) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)

    async def wait_exit(self, timeout_s: float = EXIT_S) -> int:
        deadline = time.monotonic() + timeout_s
        while (code := self.process.poll()) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"npc-host did not exit within {timeout_s:.0f}s:\n{self.output()}")
            await asyncio.sleep(0.05)
        return code

    async def wait_consuming(self, bus: Bus, server: str, timeout_s: float = START_S) -> None:
        """Until this process's brain consumer is in the group of `server`'s said stream (it reads, so it is up)."""
        stream = stream_name(server, StreamKind.SAID)
        deadline = time.monotonic() + timeout_s
        while True:
            info = await bus.stream_info(stream)
            if any(c.name == self.consumer for group in info.groups for c in group.consumers):
                return
            self._check_alive("joining the brain group")
            if time.monotonic() > deadline:
                raise AssertionError(f"npc-host did not start consuming within {timeout_s:.0f}s:\n{self.output()}")
            await asyncio.sleep(0.1)

    async def wait_output(self, text: str, timeout_s: float = START_S) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.output():
            self._check_alive(f"printing {text!r}")
            if time.monotonic() > deadline:
                raise AssertionError(f"npc-host did not print {text!r} within {timeout_s:.0f}s:\n{self.output()}")
            await asyncio.sleep(0.1)

    def stop_now(self) -> None:
        """Teardown: make sure the process is gone, whatever the test did."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=EXIT_S)

    def _check_alive(self, doing: str) -> None:
        code = self.process.poll()
        if code is not None:
            raise AssertionError(f"npc-host exited with {code} before {doing}:\n{self.output()}")


class Finished(NamedTuple):
    code: int
    stdout: str
    stderr: str


async def run_host(args: Sequence[str], env: dict[str, str], workdir: Path, timeout_s: float = EXIT_S) -> Finished:
    """Run a short `npc-host` command to completion, keeping this event loop free for the doubles it talks to."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "host",
        *args,
        env=env,
        cwd=workdir,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(timeout_s):
            stdout, stderr = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"npc-host {' '.join(args)} did not finish within {timeout_s:.0f}s") from None
    assert process.returncode is not None
    return Finished(process.returncode, stdout.decode(errors="replace"), stderr.decode(errors="replace"))
