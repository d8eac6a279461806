"""Stream a Discord attachment from its CDN URL with a size cap, retries and URL refresh."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import yarl

from bot.alerts.http import parse_retry_after
from bot.platforms.retry import backoff_delay

CHUNK_BYTES = 64 * 1024
EXPIRED_STATUSES = frozenset({401, 403, 404, 410})


class AttachmentError(Exception):
    """An attachment could not be streamed (the scan must record a limit, not a clean file)."""


class AttachmentTooLarge(AttachmentError):
    """The attachment is larger than `max_attachment_bytes` (declared or while streaming)."""

    def __init__(self, filename: str, limit: int, seen: int):
        super().__init__(f"{filename}: larger than the {limit}-byte cap (at least {seen} bytes)")
        self.filename, self.limit, self.seen = filename, limit, seen


class AttachmentUnavailable(AttachmentError):
    """The CDN would not serve the file (expired even after re-fetching, or failing)."""


RefreshUrl = Callable[[], Awaitable[str | None]]


async def stream_attachment(
    http: aiohttp.ClientSession,
    url: str,
    *,
    filename: str,
    declared_size: int | None,
    max_bytes: int,
    refresh_url: RefreshUrl,
    retries: int,
    backoff_seconds: float,
) -> AsyncIterator[bytes]:
    """Yield the file in chunks; raise AttachmentTooLarge past `max_bytes`, never buffer it whole."""
    if declared_size is not None and declared_size > max_bytes:
        raise AttachmentTooLarge(filename, max_bytes, declared_size)
    attempt, refreshed = 0, False
    while True:
        # encoded=True: the signed query (?ex=&is=&hm=) must reach the CDN byte for byte.
        async with http.get(yarl.URL(url, encoded=True)) as response:
            if response.status in EXPIRED_STATUSES and not refreshed:
                refreshed = True
                fresh = await refresh_url()
                if fresh is None:
                    raise AttachmentUnavailable(f"{filename}: message or attachment is gone")
                url = fresh
                continue
            if response.status == 429 or response.status >= 500:
                if attempt >= retries:
                    raise AttachmentUnavailable(f"{filename}: CDN answered {response.status}")
                told = parse_retry_after(response.headers.get("Retry-After"))
                wait = backoff_delay(attempt, backoff_seconds, told)
                await asyncio.sleep(wait)
                attempt += 1
                continue
            if response.status != 200:
                raise AttachmentUnavailable(f"{filename}: CDN answered {response.status}")
            length = response.content_length
            if length is not None and length > max_bytes:
                raise AttachmentTooLarge(filename, max_bytes, length)
            seen = 0
            async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                seen += len(chunk)
                if seen > max_bytes:
                    raise AttachmentTooLarge(filename, max_bytes, seen)
                yield chunk
            return


__all__ = ["AttachmentError", "AttachmentTooLarge", "AttachmentUnavailable", "backoff_delay",
           "stream_attachment"]
