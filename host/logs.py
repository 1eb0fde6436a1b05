"""Logging for the `npc-host` commands, and a last line of defence that masks secret values (RCON passwords, API
keys, URL passwords) should any code ever format one into a message.

`log_format` (NPC_HOST_LOG_FORMAT): `auto` is rich on a terminal and `plain` otherwise (one line per record, never
wrapped, for journald and `docker logs`); `json` is one JSON object per line for log shippers.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from host.config import MASK, Settings, url_password
from host.profiles.loader import load_all


class SecretMasker(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Short values would mask ordinary words; real secrets are longer.
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        masked = self._mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            # An exception's own text (a driver echoing its connection URL) is printed with the traceback; formatters
            # use a cached `exc_text` as it is, so render and mask it here, once.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._mask(record.exc_text)
        return True

    def _mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text


def profile_secret_envs(profiles_dir: Path) -> list[str]:
    """The environment variables the server profiles keep secrets in: RCON passwords, voice bridge tokens and the
    advisor model's API key."""
    names: list[str] = []
    for load in load_all(profiles_dir):
        server = load.server
        if server is None:
            continue
        if server.rcon is not None:
            names.append(server.rcon.password_env)
        if server.bridge is not None:
            names.append(server.bridge.token_env)
        if server.advisor is not None and server.advisor.model.api_key_env is not None:
            names.append(server.advisor.model.api_key_env)
    return names


def secret_values(settings: Settings, password_envs: Iterable[str] = ()) -> list[str]:
    """The secret values this process knows: URL passwords, the API key, and the variables in `password_envs` (see
    `profile_secret_envs`)."""
    values = [os.environ[name] for name in password_envs if os.environ.get(name)]
    if settings.llm.openai_api_key is not None:
        values.append(settings.llm.openai_api_key.get_secret_value())
    urls = [settings.llm.ollama_url, settings.llm.openai_url]
    urls += [secret.get_secret_value() for secret in (settings.redis_url, settings.database_url) if secret is not None]
    values += [password for url in urls if (password := url_password(url))]
    return values


PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class OneLineFormatter(logging.Formatter):
    """`PLAIN_FORMAT`, with a multi-line message or traceback folded into the one line (`\\n` escapes)."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\n", "\\n")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (ISO 8601, UTC), level, logger, message, and the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 (logging's name)
        from datetime import UTC, datetime

        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def _handler(log_format: str) -> logging.Handler:
    if log_format == "rich" or (log_format == "auto" and sys.stdout.isatty()):
        from rich.logging import RichHandler  # only on a terminal: rich costs start-up time

        return RichHandler(show_path=False, rich_tracebacks=False, markup=False)
    handler = logging.StreamHandler(sys.stdout)  # where rich writes too; stderr keeps a failed command's one line
    handler.setFormatter(JsonFormatter() if log_format == "json" else OneLineFormatter(PLAIN_FORMAT))
    return handler


def setup_logging(settings: Settings, password_envs: Iterable[str] = ()) -> None:
    handler = _handler(settings.log_format)
    handler.addFilter(SecretMasker(secret_values(settings, password_envs)))
    if handler.formatter is None:
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logging.basicConfig(level=settings.log_level, handlers=[handler], force=True)
    # alembic.runtime.plugins: a line per built-in plugin whenever Alembic is first imported (now at the first
    # migration, after logging is set up); the migrations themselves still log at INFO.
    for noisy in ("httpx", "httpcore", "watchfiles", "asyncio", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
