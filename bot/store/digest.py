"""The content digest that links identical posts in the hit history, keyed when it can be.

Unkeyed, a digest of the message text lets anyone holding the database confirm a guess of a
message that is nothing but a codename (sha256("Larkspur")); keyed (HMAC-SHA256 under a
`ContentKey`), a guess cannot be checked without the key. docs/store.md says where the key
comes from.
"""

from __future__ import annotations

import hashlib
import hmac

MIN_KEY_CHARS = 16


class ContentKey:
    """The key of content digests. It never shows in reprs, logs or error messages."""

    __slots__ = ("_secret",)

    def __init__(self, secret: str | bytes):
        # Text comes from an environment variable (stray whitespace is not key); bytes are
        # derived (SealKey.content_key) and used as they are.
        raw = secret.encode("utf-8").strip() if isinstance(secret, str) else bytes(secret)
        if len(raw) < MIN_KEY_CHARS:
            raise ValueError(f"the content key is too short (at least {MIN_KEY_CHARS} "
                             "characters; `leakwarden seal --new-key` prints a good one)")
        self._secret = raw

    def __repr__(self) -> str:
        return "ContentKey(<hidden>)"

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("a content key cannot be pickled")

    def digest(self, data: bytes) -> str:
        """HMAC-SHA256 of `data`, hex."""
        return hmac.digest(self._secret, data, "sha256").hex()


def content_digest(text: str | None, key: ContentKey | None = None) -> str | None:
    """The digest of a message text (surrogates kept as written): keyed with `key`, else sha256."""
    if not text:
        return None
    data = text.encode("utf-8", "surrogatepass")
    return key.digest(data) if key is not None else hashlib.sha256(data).hexdigest()
