"""Zip archives streamed: members scanned as nested streams; bombs and tricks end in findings."""

from __future__ import annotations

import io
import zipfile

import pytest
from archive_files import (
    TEST_LIMITS,
    encrypted_zip,
    nested_zip_bomb,
    overlapping_zip_bomb,
    run,
    zip_of,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import FileLimits, Severity

MiB = 2**20


def kinds(findings):
    return sorted({(f.kind, f.matched if f.kind in ("scan-limit", "malformed-archive") else f.rule_id,
                    f.location) for f in findings})


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2])
def test_members_are_scanned_with_member_locations(method):
    data = zip_of({"docs/plan.txt": b"ship Larkspur friday", "larkspur/readme.md": b"hi"}, method)
    found = run(data, "a.zip")[0]
    assert [(f.rule_id, f.location, f.start) for f in found] == [
        ("cn-larkspur", "attachment:a.zip/docs/plan.txt", 5),
        ("cn-larkspur", "filename:a.zip/larkspur/readme.md", 0),
    ]


class Unseekable(io.RawIOBase):
    def __init__(self) -> None:
        self.buf = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.buf += b
        return len(b)


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_members_with_sizes_only_in_data_descriptors_are_walked(method):
    out = Unseekable()
    with zipfile.ZipFile(out, "w", method) as z:
        z.writestr("one.txt", b"Larkspur one " * 50)
        z.writestr("two.txt", b"Larkspur, then a false descriptor: PK\x07\x08" + b" padding" * 100)
    found = run(bytes(out.buf), "d.zip", feed=100)[0]
    assert {f.location for f in found} == {"attachment:d.zip/one.txt", "attachment:d.zip/two.txt"}
    assert not [f for f in found if f.kind == "malformed-archive"]


@settings(max_examples=25, deadline=None)
@given(feed=st.integers(1, 3000))
def test_feed_sizes_never_change_what_a_zip_yields(feed):
    data = zip_of({f"m{i}.txt": f"member {i} mentions Larkspur".encode() * (i + 1) for i in range(5)})
    assert kinds(run(data, "a.zip", feed=feed)[0]) == kinds(run(data, "a.zip")[0])


def test_nested_zip_bomb_stops_at_its_limits_quickly_and_in_bounded_memory():
    bomb = nested_zip_bomb(levels=3, width=4, kernel=16 * MiB)  # 1 GiB expanded from ~70 KB
    found, seconds, peak = run(bomb, "42.zip")
    limits = {(f.matched, f.location, f.detail.get("scope")) for f in found if f.kind == "scan-limit"}
    # Each level alone looks harmless; the attachment as a whole expands past max_ratio.
    assert ("max_ratio", "attachment:42.zip", "attachment") in limits
    assert seconds < 30 and peak < 64 * MiB


@pytest.mark.parametrize("inside", [False, True], ids=["same-offset", "headers-inside-data"])
def test_overlapping_zip_bomb_is_detected_from_the_central_directory(inside):
    bomb = overlapping_zip_bomb(copies=300, kernel=32 * MiB, inside=inside)
    found, seconds, peak = run(bomb, "overlap.zip")
    (overlap,) = [f for f in found if f.kind == "malformed-archive"]
    assert (overlap.matched, overlap.severity) == ("overlapping-entries", Severity.HIGH)
    assert overlap.detail["overlapping"] >= 299
    assert "max_ratio" in {f.matched for f in found if f.kind == "scan-limit"}
    assert seconds < 30 and peak < 64 * MiB


def test_twenty_thousand_entries_end_at_the_entry_limit():
    data = zip_of({f"d/{i}.txt": b"x" for i in range(20_000)}, zipfile.ZIP_STORED)
    found, seconds, _ = run(data, "many.zip", trace=False)
    (limit,) = [f for f in found if f.kind == "scan-limit"]
    assert (limit.matched, limit.detail["max"]) == ("max_entries", TEST_LIMITS.max_entries)
    assert seconds < 30


def test_encrypted_members_are_flagged_and_their_names_still_scanned():
    data = encrypted_zip({"larkspur-eval.csv": b"ciphertext..."})
    found = run(data, "secret.zip")[0]
    assert kinds(found) == [
        ("codename", "cn-larkspur", "filename:secret.zip/larkspur-eval.csv"),
        ("encrypted-member", "encrypted-member", "attachment:secret.zip/larkspur-eval.csv"),
    ]


def test_a_truncated_zip_is_malformed_and_what_came_before_is_kept():
    data = zip_of({"a.txt": b"Larkspur first", "b.bin": bytes(range(256)) * 400}, zipfile.ZIP_STORED)
    found = run(data[: len(data) // 2], "cut.zip")[0]
    assert ("codename", "cn-larkspur", "attachment:cut.zip/a.txt") in kinds(found)
    assert any(f.kind == "malformed-archive" and "truncated" in f.detail["reason"] for f in found)


def test_nesting_deeper_than_the_limit_is_a_scan_limit():
    data = b"Larkspur at the bottom"
    for i in range(4):
        data = zip_of({f"level{i}.zip" if i else "deep.txt": data})
    found = run(data, "deep.zip", FileLimits(max_depth=2))[0]
    assert any(f.kind == "scan-limit" and f.matched == "max_depth" for f in found)
    assert not any(f.kind == "codename" and f.location.startswith("attachment:") for f in found)


def test_symlinks_are_flagged_from_the_central_directory_mode_bits():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        info = zipfile.ZipInfo("link-to-etc")
        info.external_attr = 0o120777 << 16
        z.writestr(info, "/etc")
    (flag,) = [f for f in run(buf.getvalue(), "l.zip")[0] if f.kind == "unsafe-archive-member"]
    assert (flag.detail["reason"], flag.location) == ("symlink", "attachment:l.zip/link-to-etc")


def test_an_unsupported_compression_method_is_a_scan_limit_and_the_walk_goes_on():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("first.txt", "Larkspur lzma", compress_type=zipfile.ZIP_LZMA)
        z.writestr("second.txt", "Larkspur deflate", compress_type=zipfile.ZIP_DEFLATED)
    found = run(buf.getvalue(), "m.zip")[0]
    assert [(f.kind, f.location) for f in found] == [
        ("scan-limit", "attachment:m.zip/first.txt"),
        ("codename", "attachment:m.zip/second.txt"),
    ]


# -- a member whose end is unknown (data descriptor) is stepped over, not the rest --------------

def piped_zip(members: list[tuple[str, bytes, int]]) -> bytes:
    """A zip written to a pipe: sizes only in data descriptors after each member's data."""
    out = Unseekable()
    with zipfile.ZipFile(out, "w") as z:
        for name, data, method in members:
            z.writestr(name, data, compress_type=method)
    return bytes(out.buf)


def flag_encrypted(data: bytes, name: str) -> bytes:
    """Set the 'encrypted' flag on one member (local header and directory entry)."""
    import struct

    out = bytearray(data)
    for sig, flag_at, name_at in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        at = out.find(sig)
        while at != -1:
            if out[at + name_at : at + name_at + len(name)] == name.encode():
                struct.pack_into("<H", out, at + flag_at, struct.unpack_from("<H", out, at + flag_at)[0] | 1)
            at = out.find(sig, at + 4)
    return bytes(out)


def fake_header(name: bytes, body: bytes) -> bytes:
    """A stored member's local header, as it could appear inside another member's data."""
    import struct
    import zlib

    return (b"PK\x03\x04" + struct.pack("<HHHHHIIIHH", 20, 0, 0, 0, 0, zlib.crc32(body),
                                        len(body), len(body), len(name), 0) + name + body)


SECOND = ("second.txt", b"we ship Larkspur friday", zipfile.ZIP_DEFLATED)
NOISE = bytes(range(256)) * 40


@pytest.mark.parametrize(("make", "first_finding"), [
    (lambda: piped_zip([("first.bin", NOISE, zipfile.ZIP_LZMA), SECOND]),
     ("scan-limit", "attachment:p.zip/first.bin")),
    (lambda: flag_encrypted(piped_zip([("first.bin", NOISE, zipfile.ZIP_DEFLATED), SECOND]), "first.bin"),
     ("encrypted-member", "attachment:p.zip/first.bin")),
    (lambda: flag_encrypted(piped_zip([("first.bin", NOISE, zipfile.ZIP_STORED), SECOND]), "first.bin"),
     ("encrypted-member", "attachment:p.zip/first.bin")),
    (lambda: piped_zip([("first.bin", NOISE, zipfile.ZIP_BZIP2), ("mid.bin", NOISE, zipfile.ZIP_LZMA),
                        ("third.bin", NOISE, zipfile.ZIP_LZMA), SECOND]),
     ("scan-limit", "attachment:p.zip/mid.bin")),
], ids=["lzma first", "encrypted deflate first", "encrypted stored first", "two lzma in a row"])
def test_after_a_member_with_an_unknown_end_the_walk_resyncs_and_goes_on(make, first_finding):
    found = run(make(), "p.zip", feed=97)[0]
    brief = {(f.kind, f.location) for f in found}
    assert first_finding in brief
    assert ("codename", "attachment:p.zip/second.txt") in brief
    assert not [f for f in found if f.kind == "malformed-archive"]


def test_a_corrupt_member_is_named_and_the_members_after_it_are_scanned():
    data = bytearray(piped_zip([("first.txt", NOISE * 4, zipfile.ZIP_DEFLATED), SECOND]))
    data[60:90] = b"\xff" * 30  # inside first.txt's deflate stream
    found = run(bytes(data), "c.zip")[0]
    (bad,) = [f for f in found if f.kind == "malformed-archive"]
    assert (bad.matched, bad.location, bad.detail["member"]) == (
        "corrupt-member", "attachment:c.zip/first.txt", "first.txt")
    assert ("codename", "attachment:c.zip/second.txt") in {(f.kind, f.location) for f in found}


def test_a_header_inside_skipped_data_is_found_false_by_the_central_directory():
    inner = fake_header(b"fake.txt", b"hello") + NOISE  # looks like a member, is encrypted data
    data = flag_encrypted(piped_zip([("first.bin", inner, zipfile.ZIP_STORED), SECOND]), "first.bin")
    found = run(data, "f.zip")[0]
    (false,) = [f for f in found if f.kind == "malformed-archive"]
    assert (false.matched, false.detail["members"]) == ("false-local-header", ["fake.txt"])
    assert ("codename", "attachment:f.zip/second.txt") in {(f.kind, f.location) for f in found}


@settings(max_examples=25, deadline=None)
@given(feed=st.integers(1, 400))
def test_feed_sizes_never_change_a_resync(feed):
    data = piped_zip([("first.bin", NOISE, zipfile.ZIP_LZMA), SECOND, ("third.bin", NOISE, zipfile.ZIP_LZMA),
                      ("fourth.txt", b"Larkspur again", zipfile.ZIP_STORED)])
    assert kinds(run(data, "a.zip", feed=feed)[0]) == kinds(run(data, "a.zip")[0])
