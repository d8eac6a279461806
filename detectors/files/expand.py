"""Archive members, shared by every archive kind: budgets, risky entries, bounded inflation."""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

from detectors.files.context import file_finding
from detectors.model import Severity

if TYPE_CHECKING:
    from detectors.files.scan import StreamScan

class Member:
    """One archive member's stream, fed within the attachment's budgets.

    Expanded bytes count against `max_expanded_bytes` (stored members too: a stored zip inside a
    stored zip inside ... costs its bytes at every level), compressed members against
    `max_ratio` once they have produced `ratio_grace_bytes` (and so does the attachment as a
    whole: everything expanded against the bytes received so far). Hitting a limit stops this member
    (it is still hashed up to there and closed) and, for the attachment-wide budgets, the
    members after it; the rest of the archive is still walked for names.
    """

    def __init__(self, parent: StreamScan, child: StreamScan | None, compressed: bool) -> None:
        self.parent, self.child = parent, child
        self._compressed = compressed
        self.consumed = 0
        self.produced = 0
        self.stopped = child is None

    def take(self, out: bytes | memoryview, consumed: int) -> bool:
        """Hand `out` (made from `consumed` more input bytes) to the member; False once stopped."""
        if self.stopped:
            return False
        ctx = self.parent.ctx
        limits = ctx.limits
        self.consumed += consumed
        self.produced += len(out)
        ctx.expanded += len(out)
        assert self.child is not None
        if ctx.expanded > limits.max_expanded_bytes:
            ctx.exhausted = True
            ctx.limit("max_expanded_bytes", self.parent.location, limits.max_expanded_bytes,
                      f"expansion stopped inside {self.child.name}", member=self.child.name)
        elif (self._compressed and self.produced > limits.ratio_grace_bytes
              and self.produced > limits.max_ratio * max(self.consumed, 1)):
            ctx.limit("max_ratio", self.child.location, limits.max_ratio,
                      f"{self.produced} bytes from {self.consumed}: expansion stopped",
                      produced=self.produced, consumed=self.consumed)
        elif ctx.expanded > limits.ratio_grace_bytes and ctx.expanded > limits.max_ratio * ctx.fed:
            # Nested bombs keep each level's ratio modest; the attachment as a whole does not.
            ctx.exhausted = True
            ctx.limit("max_ratio", ctx.root_location, limits.max_ratio,
                      f"{ctx.expanded} bytes expanded from {ctx.fed}: expansion stopped",
                      produced=ctx.expanded, consumed=ctx.fed, scope="attachment")
        elif not ctx.out_of_time(self.parent.location):
            self.child.feed(out)
            return True
        self.stopped = True
        return False

    def close(self) -> None:
        if self.child is not None:
            self.child.close()
            self.child = None


def open_member(parent: StreamScan, name: str, *, compressed: bool, kind: str = "file",
                link: str | None = None, encrypted: bool = False) -> Member:
    """Account for one member and start its stream (or not: links, budgets, encryption).

    The name is always scanned as text, whatever else happens to the member.
    """
    ctx = parent.ctx
    ctx.entries += 1
    if ctx.entries > ctx.limits.max_entries:
        ctx.limit("max_entries", parent.location, ctx.limits.max_entries,
                  "members past this count were not scanned")
        return Member(parent, None, compressed)
    risky = risky_path(name)
    display = name.lstrip("/") or name
    shown, where = ctx.shown(name), f"{parent.location}/{ctx.shown(display)}"
    if kind != "file" or risky:
        reasons = [r for r in (risky, kind if kind != "file" else None) if r]
        shown_link = ctx.shown(link) if link else None
        for reason in reasons:
            target = f" -> {shown_link}" if link else ""
            ctx.add(file_finding(
                "unsafe-archive-member", Severity.MEDIUM, where, shown,
                f"{reason}: {shown}{target}"[:160], {"reason": reason, "member": shown,
                                                     **({"link": shown_link} if link else {})}))
    if encrypted:
        ctx.add(file_finding(
            "encrypted-member", Severity.MEDIUM, where, shown,
            f"{shown} is encrypted: its content was not scanned", {"member": shown}))
    if kind in ("directory", "symlink", "hardlink", "device", "fifo") or encrypted:
        scan_name_only(parent, name, display)
        if link:
            scan_name_only(parent, link, display)
        return Member(parent, None, compressed)
    if ctx.exhausted or ctx.timed_out:
        scan_name_only(parent, name, display)
        return Member(parent, None, compressed)
    return Member(parent, parent.child(name, display), compressed)


def scan_name_only(parent: StreamScan, name: str, display: str) -> None:
    """Scan a member's name (or a link target) as text without reading its content."""
    ctx = parent.ctx
    text = name[: ctx.limits.max_name_bytes]
    if text:
        ctx.scan_later(text, f"filename:{parent.path}/{ctx.shown(display)}")


def risky_path(name: str) -> str | None:
    """Why extracting this member would escape its folder: absolute path or '..' component."""
    clean = name.replace("\\", "/")
    if clean.startswith("/") or (len(clean) > 1 and clean[1] == ":"):
        return "absolute-path"
    if ".." in clean.split("/"):
        return "parent-traversal"
    if posixpath.normpath(clean).startswith("../"):
        return "parent-traversal"
    return None
