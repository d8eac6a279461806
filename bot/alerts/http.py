"""One request (a POST, or a PATCH that edits an alert) and the mapping of its outcome to success, RetryableError or PermanentError.

Messages never include the URL: webhook URLs carry their token in the path.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass

import aiohttp

from bot.alerts.base import PermanentError, RetryableError

# 408 timeout, 425 too early, 429 rate limited, 5xx: the receiver may take it later.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504}) | frozenset(range(520, 530))
MAX_RETRY_AFTER = 3600.0  # a receiver asking for more than an hour is treated as an hour


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    text: str
    headers: dict[str, str]


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or HTTP date), capped."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


async def post(
    session: aiohttp.ClientSession,
    url: str,
    *,
    data: bytes,
    headers: dict[str, str],
    timeout: float,
    method: str = "POST",
) -> Response:
    """POST (or `method`); transport failures become RetryableError (the outcome is unknown:
    keys dedupe)."""
    try:
        async with session.request(
            method, url, data=data, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as resp:
            text = await resp.text(errors="replace")
            return Response(
                resp.status, text[:4000], {k.lower(): v for k, v in resp.headers.items()}
            )
    except TimeoutError:
        raise RetryableError("timed out (outcome unknown)") from None
    except aiohttp.ClientError as exc:
        # The exception text can quote the URL, so only its class is kept.
        raise RetryableError(f"connection failed: {type(exc).__name__}") from None


def raise_for_status(resp: Response, what: str, retry_after: float | None = None) -> None:
    """Return on 2xx; RetryableError for 408/425/429/5xx (with Retry-After), else PermanentError."""
    if 200 <= resp.status < 300:
        return
    reason = f"{what}: HTTP {resp.status} {resp.text[:200]!r}"
    if resp.status in RETRYABLE_STATUSES or resp.status >= 500:
        if retry_after is None:
            retry_after = parse_retry_after(resp.headers.get("retry-after"))
        raise RetryableError(reason, retry_after=retry_after)
    # 400 invalid payload, 401/403 bad credentials, 404/410 deleted: retrying will not help.
    raise PermanentError(reason)
