"""Content digests: HMAC-SHA256 under a content key, unkeyed sha256 without one, never the key."""

from __future__ import annotations

import hashlib
import itertools
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.config import load_config
from bot.store import ContentKey, Store
from bot.store.digest import content_digest

from .conftest import finding, message

KEY_A = "content key A for the digest tests"
KEY_B = "content key B for the digest tests"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(("text", "key", "expected"), [
    ("Larkspur", None, sha256("Larkspur")),  # unkeyed: anyone can confirm the guess
    ("Larkspur", ContentKey(KEY_A),  # HMAC-SHA256(KEY_A, text), pinned
     "41173b5c07f27c621dfcab922707d42197d3ff6544863a9bd39cad973764f6a9"),
    ("", None, None),
    (None, ContentKey(KEY_A), None),
])
def test_content_digest(text, key, expected):
    assert content_digest(text, key) == expected


@given(st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=300))
def test_any_text_has_a_64_hex_digest_keyed_or_not(value):
    for key in (None, ContentKey(KEY_A)):
        digest = content_digest(value, key)
        assert digest is None or (len(digest) == 64 and int(digest, 16) >= 0)


def test_keys_differ_and_a_key_is_stable():
    a, a_again, b = ContentKey(KEY_A), ContentKey(f"  {KEY_A}\n"), ContentKey(KEY_B)
    assert content_digest("Larkspur", a) == content_digest("Larkspur", a_again)
    assert content_digest("Larkspur", a) != content_digest("Larkspur", b)
    assert content_digest("Larkspur", a) != sha256("Larkspur")


@pytest.mark.parametrize("secret", ["", "   ", "fifteen chars!!", b"\x00" * 15])
def test_a_short_key_is_refused_without_showing_it(secret):
    with pytest.raises(ValueError, match="at least 16 characters") as err:
        ContentKey(secret)
    assert "fifteen" not in str(err.value)


def test_the_key_never_shows():
    key = ContentKey(KEY_A)
    assert KEY_A not in repr(key) and KEY_A not in str(key) and KEY_A not in f"{key!r}"
    with pytest.raises(TypeError):
        pickle.dumps(key)


IDS = itertools.count(1)


async def digests_in(store, *texts: str) -> list[str | None]:
    """Record one finding in a new message of each of `texts`; the digests stored."""
    out = []
    for text in texts:
        [rec] = await store.record_hits(message(next(IDS), text=text), [finding(start=0)],
                                        watchlist_version="v")
        assert not rec.duplicate
        out.append((await store.get_hit(rec.hit_id)).hit.content_digest)
    return out


async def test_a_keyed_store_links_identical_posts_without_confirming_guesses(open_store):
    store = await open_store(content_key=ContentKey(KEY_A))
    first, again, other = await digests_in(store, "Larkspur", "Larkspur", "Larkspur!")
    assert first == again  # identical posts still link
    assert other != first
    assert first != sha256("Larkspur")  # a guess of the message cannot be confirmed


async def test_two_keys_give_unlinkable_digests(open_store):
    store = await open_store(content_key=ContentKey(KEY_A))
    [with_a] = await digests_in(store, "Larkspur")
    store.use_content_key(ContentKey(KEY_B))  # as a reloaded config with a new key does
    with_b, with_b_again = await digests_in(store, "Larkspur", "Larkspur")
    assert with_b == with_b_again and with_b != with_a


async def test_without_a_key_the_digest_is_sha256(store):
    assert await digests_in(store, "Larkspur") == [sha256("Larkspur")]


async def test_a_configured_key_links_posts_across_restarts(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[storage]\npath = 'hits.db'\ncontent_key_env = 'LW_CONTENT_KEY'\n")
    digests = []
    for _ in range(2):  # two starts with the same key
        cfg = load_config(config, environ={"LW_CONTENT_KEY": KEY_A})
        assert KEY_A not in repr(cfg)
        store = await Store.from_config(cfg)
        try:
            digests += await digests_in(store, "Larkspur")
        finally:
            await store.close()
    assert digests[0] == digests[1] == content_digest("Larkspur", ContentKey(KEY_A))
    assert digests[0] != sha256("Larkspur")
