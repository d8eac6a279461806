"""Tar archives streamed: members scanned, traversal, links, devices flagged, never extracted."""

from __future__ import annotations

import tarfile

import pytest
from archive_files import run, special, tar_of

from detectors import Severity


def flags(findings):
    return sorted((f.detail["reason"], f.location) for f in findings if f.kind == "unsafe-archive-member")


def test_members_are_scanned_with_long_names_and_their_locations():
    long_dir = "d" * 120
    data = tar_of([("notes/plan.txt", b"ship Larkspur"), (f"{long_dir}/larkspur.md", b"x")])
    found = run(data, "a.tar")[0]
    assert [(f.rule_id, f.location) for f in found] == [
        ("cn-larkspur", "attachment:a.tar/notes/plan.txt"),
        ("cn-larkspur", f"filename:a.tar/{long_dir}/larkspur.md"),
    ]


@pytest.mark.parametrize(("member", "reason"), [
    (("../../etc/cron.d/x", b"x"), "parent-traversal"),
    (("a/../../b", b"x"), "parent-traversal"),
    (("/etc/passwd", b"x"), "absolute-path"),
    (special("link", tarfile.SYMTYPE, "/etc/shadow"), "symlink"),
    (special("hard", tarfile.LNKTYPE, "../outside"), "hardlink"),
    (special("tty", tarfile.CHRTYPE), "device"),
    (special("disk", tarfile.BLKTYPE), "device"),
    (special("pipe", tarfile.FIFOTYPE), "fifo"),
])
def test_traversal_links_and_devices_are_flagged(member, reason):
    (flag,) = [f for f in run(tar_of([member]), "evil.tar")[0] if f.kind == "unsafe-archive-member"]
    assert (flag.detail["reason"], flag.severity) == (reason, Severity.MEDIUM)


def test_link_targets_are_scanned_as_names():
    found = run(tar_of([special("notes", tarfile.SYMTYPE, "/srv/larkspur/weights")]), "l.tar")[0]
    assert ("cn-larkspur", "filename:l.tar/notes") in {(f.rule_id, f.location) for f in found}


def test_a_header_with_a_bad_checksum_is_malformed_and_earlier_members_are_kept():
    data = bytearray(tar_of([("a.txt", b"Larkspur"), ("b.txt", b"later")]))
    data[1024 + 148 : 1024 + 156] = b"0000000\x00"  # second header's checksum
    found = run(bytes(data), "bad.tar")[0]
    assert ("cn-larkspur", "attachment:bad.tar/a.txt") in {(f.rule_id, f.location) for f in found}
    assert any(f.kind == "malformed-archive" and "checksum" in f.detail["reason"] for f in found)
