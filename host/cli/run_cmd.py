"""`npc-host run`: the host's roles in this process, with a ready line and a stop within two seconds."""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
import threading
from typing import NoReturn

import typer

from host.cli import app
from host.cli.common import fail, run_or_exit, settings_or_exit
from host.errors import NpcHostError
from host.logs import profile_secret_envs, setup_logging
from host.roles.runner import ALL_ROLES, parse_roles, run_roles

# After a stop signal the process is gone within two seconds, whatever still runs: an in-flight turn gets the drain
# time (`run_roles`, 1 s), and what runs after EXIT_DEADLINE_S (a model load, a llama.cpp prompt evaluation in a
# worker thread, neither interruptible) is abandoned. Should a native call hold the GIL so that not even that timer
# can run (a model file being read), faulthandler's own C thread ends the process at HARD_DEADLINE_S, exit code 1,
# with the stack of every thread on stderr to show what was stuck.
EXIT_DEADLINE_S = 1.6
HARD_DEADLINE_S = 1.95

log = logging.getLogger("host.run")


def _stop_while_starting(signum: int, _frame: object) -> None:
    raise SystemExit(0)


def _exit_now(code: int) -> NoReturn:
    """Leave without the interpreter's shutdown: it would join a llama.cpp worker still reading a prompt and free the
    loaded models object by object (seconds on a busy machine). The database and the hub were closed already."""
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def exit_deadline() -> None:
    def exit_now() -> None:
        log.warning("still stopping after %.1f s: exiting now, abandoning what still runs", EXIT_DEADLINE_S)
        _exit_now(0)

    timer = threading.Timer(EXIT_DEADLINE_S, exit_now)
    timer.daemon = True
    timer.start()
    faulthandler.dump_traceback_later(HARD_DEADLINE_S, exit=True)


@app.command("run")
def run(
    roles: str = typer.Option(
        os.environ.get("NPC_HOST_ROLES", ",".join(ALL_ROLES)),
        "--roles",
        help=f"comma-separated roles to run here ({', '.join(ALL_ROLES)}); several processes need NPC_HOST_REDIS_URL",
    ),
) -> None:
    """Run the host: NPCs appear in the game, hear nearby players and answer in text and voice."""
    for sig in (signal.SIGTERM, signal.SIGINT):  # until `run_roles` takes over: stop quietly, exit code 0
        signal.signal(sig, _stop_while_starting)
    settings = settings_or_exit()
    try:
        names = parse_roles(roles)
    except NpcHostError as exc:
        fail(f"error: {exc.message}")
    if set(names) != set(ALL_ROLES) and settings.redis_url is None:
        fail("running only some roles needs a shared hub: set NPC_HOST_REDIS_URL")
    setup_logging(settings, profile_secret_envs(settings.profiles_dir))
    try:
        run_or_exit(run_roles(settings, names, on_stop=exit_deadline))
    except typer.Exit as exc:  # a clear one-line error, already printed
        _exit_now(exc.exit_code)
    _exit_now(0)
