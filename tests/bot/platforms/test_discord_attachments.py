"""Attachment streaming: size cap before and during download, expired URLs, CDN retries."""

from __future__ import annotations

import pytest

from bot.platforms.discord_attachments import AttachmentTooLarge, AttachmentUnavailable
from bot.sandbox.discord import DiscordSandbox
from bot.sandbox.discord.harness import Inbox, running_adapter

CAP = 100_000


@pytest.fixture
async def sandbox():
    async with DiscordSandbox() as fake:
        fake.channel = fake.add_channel(fake.add_guild("Acme"), "general")
        fake.alice = fake.add_user("alice")
        yield fake


def cdn_requests(sandbox):
    return sum(1 for _, path in sandbox.requests if path.startswith("/cdn"))


async def read_all(ref):
    return b"".join([chunk async for chunk in ref.open()])


async def test_declared_size_over_the_cap_is_refused_without_downloading(sandbox):
    inbox = Inbox()
    async with running_adapter(sandbox, inbox, max_attachment_bytes=CAP):
        await sandbox.post_message(sandbox.channel, sandbox.alice, "",
                                   attachments=[("big.bin", b"\0" * (CAP + 1))])
        (ref,) = (await inbox.next()).attachments
        with pytest.raises(AttachmentTooLarge, match=r"big\.bin"):
            await read_all(ref)
    assert cdn_requests(sandbox) == 0


async def test_stream_is_cut_at_the_cap_when_the_declared_size_lies(sandbox):
    inbox = Inbox()
    async with running_adapter(sandbox, inbox, max_attachment_bytes=CAP):
        await sandbox.post_message(sandbox.channel, sandbox.alice, "",
                                   attachments=[("liar.bin", b"\1" * (CAP * 3))])
        message = await inbox.next()
        (ref,) = message.attachments
        # A ref whose metadata under-reports the size: only the streaming cap can stop it.
        lying = type(ref)(ref.filename, 10, ref.content_type, ref.open, ref.url)
        seen = 0
        with pytest.raises(AttachmentTooLarge) as raised:
            async for chunk in lying.open():
                seen += len(chunk)
    assert seen <= CAP
    assert raised.value.limit == CAP


async def test_exactly_the_cap_is_allowed(sandbox):
    inbox = Inbox()
    async with running_adapter(sandbox, inbox, max_attachment_bytes=CAP):
        await sandbox.post_message(sandbox.channel, sandbox.alice, "",
                                   attachments=[("edge.bin", b"\2" * CAP)])
        (ref,) = (await inbox.next()).attachments
        assert len(await read_all(ref)) == CAP


async def test_expired_url_is_refreshed_by_refetching_the_message(sandbox):
    inbox = Inbox()
    async with running_adapter(sandbox, inbox):
        await sandbox.post_message(sandbox.channel, sandbox.alice, "",
                                   attachments=[("notes.txt", b"Larkspur " * 100)])
        (ref,) = (await inbox.next()).attachments
        sandbox.expire_attachment_urls()
        body = await read_all(ref)
    assert body == b"Larkspur " * 100
    fetches = [p for m, p in sandbox.requests if m == "GET" and "/messages/" in p]
    assert len(fetches) == 1


async def test_deleted_message_makes_the_attachment_unavailable(sandbox):
    inbox = Inbox()
    async with running_adapter(sandbox, inbox):
        sent = await sandbox.post_message(sandbox.channel, sandbox.alice, "",
                                          attachments=[("gone.txt", b"x")])
        (ref,) = (await inbox.next()).attachments
        sandbox.expire_attachment_urls()
        del sandbox.messages[sandbox.channel.id][sent.id]
        with pytest.raises(AttachmentUnavailable, match="gone"):
            await read_all(ref)


@pytest.mark.parametrize(("failures", "ok"), [(2, True), (3, True), (4, False)])
async def test_cdn_5xx_is_retried_with_backoff(sandbox, failures, ok):
    inbox = Inbox()
    async with running_adapter(sandbox, inbox, download_retries=3):
        await sandbox.post_message(sandbox.channel, sandbox.alice, "",
                                   attachments=[("a.txt", b"payload")])
        (ref,) = (await inbox.next()).attachments
        sandbox.inject_fault("/cdn", 503, times=failures, retry_after=0)
        if ok:
            assert await read_all(ref) == b"payload"
        else:
            with pytest.raises(AttachmentUnavailable, match="503"):
                await read_all(ref)
    assert cdn_requests(sandbox) == min(failures + 1, 4)
