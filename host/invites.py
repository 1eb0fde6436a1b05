"""One-time voice-page invites: a signed token bound to one player of one server, valid for minutes, usable once.

The gateway (`!voice` in game chat) and the admin page (a table's game master) mint invites; the voice bridge
redeems them. A token is `payload.signature` (URL-safe base64, no padding): the payload names the server, the
player, the expiry and a random nonce, and the signature is an HMAC-SHA256 over it with the host's invite secret.
So minting needs no shared state, and only the redeemer remembers which nonces were used (until they expire).

The secret is `NPC_HOST_VOICE_PAGE__INVITE_SECRET`; unset, each process draws a random one, which is right when the
gateway and the admin page run in one `npc-host run` (the default) and wrong when they run in separate processes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from functools import cache
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from host.errors import NpcHostError

MAX_TOKEN_CHARS = 512
# Used nonces kept by a redeemer: invites live minutes, so this many outstanding means someone is minting in bulk.
MAX_REMEMBERED = 10_000


class InviteRefusedError(NpcHostError):
    """The token is not a valid invite: malformed, not signed by this host, expired, or already used."""

    code = "invite_refused"


class Invite(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    server: str = Field(alias="s", min_length=1, max_length=64)
    player: str = Field(alias="p", min_length=1, max_length=64)
    expires: float = Field(alias="e")
    nonce: str = Field(alias="n", min_length=16, max_length=64)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@cache
def _process_secret() -> SecretStr:
    return SecretStr(secrets.token_urlsafe(32))


def invite_secret(configured: SecretStr | None) -> SecretStr:
    """The configured secret, or this process's random one."""
    return configured if configured is not None and configured.get_secret_value() else _process_secret()


class InviteSigner:
    def __init__(self, secret: SecretStr, clock: Callable[[], float] = time.time) -> None:
        self._key = secret.get_secret_value().encode()
        self._clock = clock

    def mint(self, server: str, player: str, minutes: float) -> str:
        payload = {"s": server, "p": player, "e": round(self._clock() + minutes * 60, 3), "n": secrets.token_hex(16)}
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{body}.{self._sign(body)}"

    def verify(self, token: str) -> Invite:
        """The invite a token carries, if this host signed it and it has not expired (use is not checked here)."""
        if len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
            raise InviteRefusedError("not an invite token")
        body, signature = token.split(".")
        if not hmac.compare_digest(signature.encode(), self._sign(body).encode()):
            raise InviteRefusedError("not an invite of this host")
        try:
            invite = Invite.model_validate_json(_unb64(body))
        except (binascii.Error, ValueError, ValidationError):
            raise InviteRefusedError("not an invite token") from None
        if invite.expires < self._clock():
            raise InviteRefusedError("the invite has expired; type !voice again for a new link")
        return invite

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest()[:24])


class InviteRedeemer:
    """The one place invites are used up: each nonce opens one session, once."""

    def __init__(self, signer: InviteSigner, clock: Callable[[], float] = time.time) -> None:
        self._signer = signer
        self._clock = clock
        self._used: dict[str, float] = {}  # nonce -> expiry

    def redeem(self, token: str) -> Invite:
        invite = self._signer.verify(token)
        now = self._clock()
        self._used = {nonce: expires for nonce, expires in self._used.items() if expires >= now}
        if invite.nonce in self._used:
            raise InviteRefusedError("the invite was already used; type !voice again for a new link")
        if len(self._used) >= MAX_REMEMBERED:
            raise InviteRefusedError("too many invites outstanding; try again in a few minutes")
        self._used[invite.nonce] = invite.expires
        return invite


def page_origin(public_url: str) -> str:
    """`scheme://host[:port]` of the voice page, as a browser sends it in `Origin`."""
    parts = urlsplit(public_url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def invite_link(public_url: str, token: str) -> str:
    """The page's URL with the token in the fragment: browsers never send a fragment to a server (no access logs),
    and the page removes it from the address bar once read."""
    parts = urlsplit(public_url)
    return parts._replace(fragment=f"invite={token}").geturl()
