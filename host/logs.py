"""Logging for the `npc-host` commands: rich console output, and a last line of defence that masks secret values
(RCON passwords, API keys, URL passwords) should any code ever format one into a message."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from rich.logging import RichHandler

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
    """The environment variables the server profiles keep secrets in: RCON passwords and voice bridge tokens."""
    names: list[str] = []
    for load in load_all(profiles_dir):
        if load.server is not None and load.server.rcon is not None:
            names.append(load.server.rcon.password_env)
        if load.server is not None and load.server.bridge is not None:
            names.append(load.server.bridge.token_env)
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


def setup_logging(settings: Settings, password_envs: Iterable[str] = ()) -> None:
    handler = RichHandler(show_path=False, rich_tracebacks=False, markup=False)
    handler.addFilter(SecretMasker(secret_values(settings, password_envs)))
    logging.basicConfig(level=settings.log_level, format="%(name)s: %(message)s", handlers=[handler], force=True)
    for noisy in ("httpx", "httpcore", "watchfiles", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
