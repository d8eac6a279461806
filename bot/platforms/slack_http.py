"""HTTP mode: the Events API and interactivity endpoints, accepting only genuine Slack requests.

Checked here rather than with slack-sdk's `SignatureVerifier.is_valid`, which raises on a
malformed timestamp and decodes the body as UTF-8 before hashing. Every refusal is a 4xx:
400 malformed, 401 unsigned/stale/forged, 413 too large. Nothing a client sends yields a 500.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

log = logging.getLogger(__name__)

TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
SIGNATURE_HEADER = "X-Slack-Signature"
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request was refused, as an HTTP status and a short reason (logged, never the secret)."""

    status: int
    reason: str


def verify(
    secrets: Sequence[bytes],
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    *,
    now: float | None = None,
    window: int = 300,
) -> Refusal | None:
    """None when `signature` is Slack's v0 HMAC of the raw body under one of `secrets`."""
    if not timestamp or not signature:
        return Refusal(401, "unsigned")
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        return Refusal(400, "malformed timestamp")
    if abs((time.time() if now is None else now) - int(timestamp)) > window:
        return Refusal(401, "stale timestamp")  # replay window: 5 minutes by default
    given = signature.encode("ascii", "replace")
    if not signature.startswith("v0=") or len(signature) != 67 or not set(signature[3:]) <= _HEX:
        return Refusal(401, "bad signature")
    base = b"v0:" + timestamp.encode() + b":" + body
    valid = False
    for secret in secrets:  # every secret is tried, so timing does not tell which app matched
        expected = b"v0=" + hmac.new(secret, base, hashlib.sha256).hexdigest().encode()
        valid |= hmac.compare_digest(expected, given)
    return None if valid else Refusal(401, "bad signature")


async def read_capped(request: web.Request, limit: int) -> bytes | None:
    """The raw body, or None when it is over `limit` bytes (read no further than that)."""
    declared = request.content_length
    if declared is not None and declared > limit:
        return None
    body = bytearray()
    while chunk := await request.content.read(64 * 1024):
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


OnEvent = Callable[[dict[str, Any], int], Awaitable[bool]]  # (body, retry num) -> may ack
OnInteraction = Callable[[dict[str, Any]], Awaitable[None]]
OnCommand = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]  # form fields -> JSON answer


class SlackHttpEndpoints:
    """aiohttp handlers for `events_path` and `interactivity_path`."""

    def __init__(
        self,
        secrets: Sequence[str],
        *,
        on_event: OnEvent,
        on_interaction: OnInteraction,
        on_command: OnCommand | None = None,
        max_body_bytes: int,
        window: int = 300,
    ):
        self._secrets = [s.encode() for s in secrets]
        self._on_event = on_event
        self._on_interaction = on_interaction
        self._on_command = on_command
        self._max_body = max_body_bytes
        self._window = window
        self.refused: dict[str, int] = {}  # reason -> count (for metrics and tests)

    def __repr__(self) -> str:
        return f"SlackHttpEndpoints(secrets={len(self._secrets)})"  # never the secrets

    def routes(self, events_path: str, interactivity_path: str,
               commands_path: str | None = None) -> list[web.RouteDef]:
        """Routes to add to an aiohttp application."""
        found = [web.post(events_path, self.events), web.post(interactivity_path, self.interactivity)]
        if commands_path is not None:
            found.append(web.post(commands_path, self.commands))
        return found

    async def _genuine(self, request: web.Request) -> bytes | web.Response:
        body = await read_capped(request, self._max_body)
        if body is None:
            return self._refuse(Refusal(413, "body too large"))
        refusal = verify(self._secrets, request.headers.get(TIMESTAMP_HEADER),
                         request.headers.get(SIGNATURE_HEADER), body, window=self._window)
        return self._refuse(refusal) if refusal else body

    def _refuse(self, refusal: Refusal) -> web.Response:
        self.refused[refusal.reason] = self.refused.get(refusal.reason, 0) + 1
        log.warning("slack request refused: %s", refusal.reason)
        return web.Response(status=refusal.status, text=refusal.reason)

    async def events(self, request: web.Request) -> web.Response:
        """Events API: url_verification answered; event_callback committed, then 200."""
        body = await self._genuine(request)
        if isinstance(body, web.Response):
            return body
        try:
            payload = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return self._refuse(Refusal(400, "body is not UTF-8 JSON"))
        if not isinstance(payload, dict):
            return self._refuse(Refusal(400, "body is not a JSON object"))
        if payload.get("type") == "url_verification":
            return web.json_response({"challenge": str(payload.get("challenge", ""))})
        if payload.get("type") != "event_callback":
            return web.Response(text="")
        retry = request.headers.get("X-Slack-Retry-Num", "0")
        accepted = await self._on_event(payload, int(retry) if retry.isdigit() else 0)
        # 503 only when the store could not commit it (a full backlog spills and says yes);
        # Slack retries it later.
        return web.Response(text="") if accepted else web.Response(status=503, text="busy")

    async def interactivity(self, request: web.Request) -> web.Response:
        """Block actions: acknowledged at once, handled in the background."""
        body = await self._genuine(request)
        if isinstance(body, web.Response):
            return body
        try:
            form = parse_qs(body.decode("utf-8"), strict_parsing=True)
            payload = json.loads(form["payload"][0])
        except (UnicodeDecodeError, ValueError, KeyError, IndexError):
            return self._refuse(Refusal(400, "malformed interactivity payload"))
        if not isinstance(payload, dict):
            return self._refuse(Refusal(400, "malformed interactivity payload"))
        await self._on_interaction(payload)
        return web.Response(text="")

    async def commands(self, request: web.Request) -> web.Response:
        """Slash commands: a form body, answered with the command's JSON (ephemeral) reply."""
        body = await self._genuine(request)
        if isinstance(body, web.Response):
            return body
        try:
            form = parse_qs(body.decode("utf-8"), strict_parsing=True,
                            keep_blank_values=True)
        except (UnicodeDecodeError, ValueError):
            return self._refuse(Refusal(400, "malformed slash command"))
        fields = {key: values[0] for key, values in form.items()}
        if "command" not in fields or self._on_command is None:
            return self._refuse(Refusal(400, "malformed slash command"))
        return web.json_response(await self._on_command(fields))
