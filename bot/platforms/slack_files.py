"""Stream a Slack file from `url_private`: the bot token goes only to Slack's file hosts.

Slack answers a missing or unauthorised token (no files:read scope, a file from another
workspace) with its sign-in HTML page and status 200, not an error: that page is recognised
and reported as a failed download, never scanned as if it were the file.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import yarl

from bot.alerts.http import parse_retry_after
from bot.platforms.retry import backoff_delay

CHUNK_BYTES = 64 * 1024
MAX_REDIRECTS = 3
_SIGN_IN_MARKERS = (b"sign in", b"signin", b"log in to", b"<title>slack</title>")


class FileDownloadError(Exception):
    """A file could not be downloaded (the scan must record a limit, not a clean file)."""


class FileTooLarge(FileDownloadError):
    """Larger than `max_file_bytes` (declared or while streaming)."""


class NotAFileHost(FileDownloadError):
    """The URL's host is not an allowed Slack file host: the token is not sent there."""


class SignInPage(FileDownloadError):
    """Slack answered its sign-in page instead of the file (missing scope or bad token)."""


def host_of(url: str) -> str:
    """"host" or "host:port" (when the port is explicit) of a URL, lower-case."""
    parsed = yarl.URL(url)
    host = (parsed.host or "").lower()
    return f"{host}:{parsed.explicit_port}" if parsed.explicit_port else host


def is_file_host(url: str, allowed: list[str]) -> bool:
    """True for https URLs on an allowed host (http only for explicit host:port test entries)."""
    parsed = yarl.URL(url)
    host = host_of(url)
    if parsed.scheme == "https" and parsed.port == 443 and (parsed.host or "").lower() in allowed:
        return True
    # "127.0.0.1:PORT" style entries name the sandbox exactly, scheme and port included.
    return parsed.scheme in ("http", "https") and ":" in host and host in allowed


def _looks_like_sign_in(content_type: str, expected_type: str | None, head: bytes) -> bool:
    if not content_type.startswith("text/html"):
        return False
    if expected_type and not expected_type.startswith("text/html"):
        return True  # we asked for a binary or text file and got a web page
    lowered = head[:4096].lower()
    return any(marker in lowered for marker in _SIGN_IN_MARKERS)


async def stream_file(
    http: aiohttp.ClientSession,
    url: str,
    token: str,
    *,
    filename: str,
    allowed_hosts: list[str],
    max_bytes: int,
    declared_size: int | None = None,
    expected_type: str | None = None,
    retries: int = 0,
    backoff_seconds: float = 0.5,
) -> AsyncIterator[bytes]:
    """Yield the file in chunks with the Bearer token; never buffers it whole.

    429 (Retry-After honoured), 5xx and a connection lost before the first byte are retried
    `retries` times with capped backoff; a connection lost mid-file is a failed download (a
    restart would hand the scanner the first bytes twice)."""
    if declared_size is not None and declared_size > max_bytes:
        raise FileTooLarge(f"{filename}: {declared_size} bytes is over the {max_bytes}-byte cap")
    attempt = redirects = 0
    while True:
        if not is_file_host(url, allowed_hosts):
            raise NotAFileHost(f"{filename}: {host_of(url) or 'no host'} is not a Slack file host")
        started = False
        try:
            # Redirects are followed by hand so the token never rides a redirect off the file hosts.
            async with http.get(url, headers={"Authorization": f"Bearer {token}"},
                                allow_redirects=False) as response:
                if response.status in (301, 302, 303, 307, 308) and "Location" in response.headers:
                    redirects += 1
                    if redirects > MAX_REDIRECTS:
                        raise FileDownloadError(f"{filename}: too many redirects")
                    url = str(response.url.join(yarl.URL(response.headers["Location"])))
                    continue
                if response.status == 429 or response.status >= 500:
                    if attempt >= retries:
                        raise FileDownloadError(
                            f"{filename}: file host answered {response.status}")
                    told = parse_retry_after(response.headers.get("Retry-After"))
                    wait = backoff_delay(attempt, backoff_seconds, told)
                else:
                    if response.status != 200:
                        raise FileDownloadError(f"{filename}: file host answered {response.status}")
                    length = response.content_length
                    if length is not None and length > max_bytes:
                        raise FileTooLarge(
                            f"{filename}: {length} bytes is over the {max_bytes}-byte cap")
                    seen = 0
                    async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                        if not started and _looks_like_sign_in(response.content_type,
                                                               expected_type, chunk):
                            raise SignInPage(f"{filename}: Slack answered its sign-in page "
                                             "(does the bot have files:read?)")
                        started = True
                        seen += len(chunk)
                        if seen > max_bytes:
                            raise FileTooLarge(f"{filename}: over the {max_bytes}-byte cap")
                        yield chunk
                    return
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as error:
            if started or attempt >= retries:
                raise FileDownloadError(
                    f"{filename}: {type(error).__name__} while downloading") from error
            wait = backoff_delay(attempt, backoff_seconds)
        attempt += 1
        await asyncio.sleep(wait)
