"""Slack file downloads: the token only to Slack's file hosts, capped, sign-in pages refused."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from bot.platforms.slack_files import (
    FileDownloadError,
    FileTooLarge,
    NotAFileHost,
    SignInPage,
    is_file_host,
    stream_file,
)
from bot.sandbox.listen import listen_local
from bot.sandbox.slack import SlackSandbox


@pytest.mark.parametrize("url, allowed, expected", [
    ("https://files.slack.com/files-pri/T1-F1/a.bin", ["files.slack.com"], True),
    ("https://FILES.slack.com/files-pri/T1-F1/a.bin", ["files.slack.com"], True),
    ("http://files.slack.com/files-pri/T1-F1/a.bin", ["files.slack.com"], False),  # plain http
    ("https://files.slack.com.evil.example/x", ["files.slack.com"], False),
    ("https://evil.example/files.slack.com", ["files.slack.com"], False),
    ("https://files.slack.com@evil.example/x", ["files.slack.com"], False),
    ("https://files.slack.com:8443/x", ["files.slack.com"], False),  # another port: another host
    ("http://127.0.0.1:5555/files-pri/x", ["127.0.0.1:5555"], True),  # the sandbox, exactly
    ("http://127.0.0.1:5556/files-pri/x", ["127.0.0.1:5555"], False),
    ("ftp://files.slack.com/x", ["files.slack.com"], False),
    ("not a url", ["files.slack.com"], False),
])
def test_file_host_allow_list(url, allowed, expected):
    assert is_file_host(url, allowed) is expected


class Recorder:
    """A local HTTP server that records what it was sent (a foreign or redirecting host)."""

    def __init__(self, handler=None):
        self.seen: list[dict[str, str]] = []
        self.handler = handler
        self.port = 0

    async def __aenter__(self):
        async def record(request: web.Request) -> web.StreamResponse:
            self.seen.append(dict(request.headers))
            if self.handler:
                return await self.handler(request)
            return web.Response(body=b"secret-free body")

        app = web.Application()
        app.router.add_get("/{tail:.*}", record)
        self.runner, self.port = await listen_local(app)
        return self

    async def __aexit__(self, *exc):
        await self.runner.cleanup()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
async def sandbox():
    async with SlackSandbox() as fake:
        fake.general = fake.add_channel("general")
        fake.alice = fake.add_user("alice")
        yield fake


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def download(http, url, token, allowed, **kwargs) -> bytes:
    kwargs.setdefault("max_bytes", 1 << 20)
    chunks = [c async for c in stream_file(http, url, token, filename="f", allowed_hosts=allowed,
                                           **kwargs)]
    return b"".join(chunks)


async def test_downloads_from_the_file_host_with_the_token_in_chunks(sandbox, http):
    data = bytes(range(256)) * 1000
    sent = await sandbox.post_message(sandbox.general, sandbox.alice, "f",
                                      files=[("w.bin", data)], dispatch=False)
    got = await download(http, sent.files[0].url_private, sandbox.bot_token, [sandbox.file_host],
                         expected_type="application/octet-stream")
    assert got == data and sandbox.file_requests[-1][1] is True


async def test_a_foreign_host_is_never_contacted(http):
    async with Recorder() as foreign:
        with pytest.raises(NotAFileHost):
            await download(http, f"http://{foreign.host}/x", "xoxb-secret", ["files.slack.com"])
    assert foreign.seen == []


async def test_a_redirect_off_the_file_hosts_is_not_followed_with_the_token(http):
    async with Recorder() as foreign:
        async def redirect(request):
            raise web.HTTPFound(f"http://{foreign.host}/elsewhere")

        async with Recorder(redirect) as files:
            with pytest.raises(NotAFileHost):
                await download(http, f"http://{files.host}/files-pri/x", "xoxb-secret",
                               [files.host])
            assert files.seen[0]["Authorization"] == "Bearer xoxb-secret"
    assert foreign.seen == []


@pytest.mark.parametrize("expected_type", ["application/octet-stream", "text/plain", None,
                                           "text/html"])
async def test_the_sign_in_page_is_a_failed_download(sandbox, http, expected_type):
    sent = await sandbox.post_message(sandbox.general, sandbox.alice, "f",
                                      files=[("a.bin", b"data")], dispatch=False)
    with pytest.raises(SignInPage):
        await download(http, sent.files[0].url_private, "xoxb-wrong", [sandbox.file_host],
                       expected_type=expected_type)


async def test_a_real_html_file_is_not_mistaken_for_the_sign_in_page(sandbox, http):
    page = b"<html><body><p>release notes</p></body></html>"
    sent = await sandbox.post_message(sandbox.general, sandbox.alice, "f",
                                      files=[("notes.html", page)], dispatch=False)
    sent.files[0].mimetype = "text/html"
    got = await download(http, sent.files[0].url_private, sandbox.bot_token, [sandbox.file_host],
                         expected_type="text/html")
    assert got == page


async def test_size_cap_from_the_declared_size_and_while_streaming(sandbox, http):
    sent = await sandbox.post_message(sandbox.general, sandbox.alice, "f",
                                      files=[("big.bin", b"\x00" * 300_000)], dispatch=False)
    url = sent.files[0].url_private
    before = len(sandbox.file_requests)
    with pytest.raises(FileTooLarge):
        await download(http, url, sandbox.bot_token, [sandbox.file_host], max_bytes=1000,
                       declared_size=300_000)
    assert len(sandbox.file_requests) == before  # refused without a request

    async def chunked(request):  # no Content-Length: the cap is enforced while reading
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(10):
            await response.write(b"\x00" * 10_000)
        return response

    async with Recorder(chunked) as files:
        with pytest.raises(FileTooLarge):
            await download(http, f"http://{files.host}/files-pri/x", "t", [files.host],
                           max_bytes=25_000)


def flaky(*failures):
    """A file host that fails the first requests as listed, then serves the file."""
    left = list(failures)

    async def handler(request: web.Request) -> web.StreamResponse:
        if left:
            failure = left.pop(0)
            if failure == "reset":
                request.transport.close()  # the connection drops before any byte
                return web.Response()
            return web.Response(status=failure, headers={"Retry-After": "0"})
        return web.Response(body=b"the weights", content_type="application/octet-stream")

    return handler


@pytest.mark.parametrize("failures", [(503,), (429, 500), ("reset",), (502, "reset", 504)])
async def test_429_5xx_and_resets_are_retried_with_backoff(http, failures):
    async with Recorder(flaky(*failures)) as files:
        got = await download(http, f"http://{files.host}/files-pri/x", "xoxb-t", [files.host],
                             retries=3, backoff_seconds=0.01)
    # aiohttp itself may retry a dropped keep-alive connection once: at least one try each.
    assert got == b"the weights" and len(files.seen) >= len(failures) + 1
    assert all(seen["Authorization"] == "Bearer xoxb-t" for seen in files.seen)


@pytest.mark.parametrize("failures, why", [((503, 503, 503), "answered 503"),
                                           (("reset",) * 6, "while downloading"),
                                           ((403,), "answered 403")])
async def test_retries_run_out_or_a_4xx_is_a_failed_download(http, failures, why):
    async with Recorder(flaky(*failures)) as files:
        with pytest.raises(FileDownloadError, match=why):
            await download(http, f"http://{files.host}/files-pri/x", "xoxb-t", [files.host],
                           retries=2, backoff_seconds=0.01)
    assert 1 <= len(files.seen) <= len(failures)
