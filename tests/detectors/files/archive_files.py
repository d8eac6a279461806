"""Archives, honest and hostile, built by the tests in memory (nothing is written to disk)."""

from __future__ import annotations

import bz2
import io
import struct
import tarfile
import time
import tracemalloc
import zipfile

from detectors import Engine, FileLimits, load_watchlist

ENGINE_TABLES = {"codenames": [{"id": "cn-larkspur", "term": "Larkspur", "severity": "high"}]}
# Small limits keep hostile cases fast; the benchmark runs them at the defaults.
TEST_LIMITS = FileLimits(max_expanded_bytes=64 * 2**20, ratio_grace_bytes=2**20, max_entries=2000)


def engine(limits: FileLimits = TEST_LIMITS) -> Engine:
    return Engine(load_watchlist(ENGINE_TABLES), file_limits=limits, clock=time.monotonic)


def run(data: bytes, name: str, limits: FileLimits = TEST_LIMITS, feed: int = 1 << 16,
        trace: bool = True):
    """(findings, seconds, peak traced bytes) of one streamed scan."""
    eng = engine(limits)
    if trace:
        tracemalloc.start()
    start = time.perf_counter()
    scan = eng.open_stream(f"attachment:{name}", name)
    view = memoryview(data)
    for i in range(0, len(view), feed):
        scan.feed(view[i : i + feed])
    findings = scan.close()
    seconds = time.perf_counter() - start
    peak = 0
    if trace:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return findings, seconds, peak


def zip_of(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def tar_of(members: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                t.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                t.addfile(info, io.BytesIO(m[1]))
    return buf.getvalue()


def special(name: str, kind: bytes, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


def nested_zip_bomb(levels: int, width: int, kernel: int) -> bytes:
    """42.zip-style: `width` copies of the level below, `levels` deep, zeros at the bottom."""
    data = zip_of({"kernel.bin": bytes(kernel)})
    for level in range(levels):
        data = zip_of({f"l{level}-{i}.zip": data for i in range(width)})
    return data


def overlapping_zip_bomb(copies: int, kernel: int, inside: bool = False) -> bytes:
    """One deflated kernel and a central directory whose `copies` entries all point at it
    (or, with `inside`, into the middle of its data: local headers quoted inside data)."""
    single = zip_of({"kernel.bin": bytes(kernel)})
    cd_at = single.index(b"PK\x01\x02")
    eocd_at = single.index(b"PK\x05\x06")
    entry = bytearray(single[cd_at:eocd_at])
    name_len = struct.unpack_from("<H", entry, 28)[0]
    entries = b""
    for i in range(copies):
        name = f"k{i:05d}.bin".encode()
        e = bytearray(entry[:46]) + name + entry[46 + name_len :]
        struct.pack_into("<H", e, 28, len(name))
        if inside:
            struct.pack_into("<I", e, 42, 40 + i)  # each "local header" inside the kernel's data
        entries += bytes(e)
    eocd = bytearray(single[eocd_at:])
    struct.pack_into("<HHII", eocd, 8, copies, copies, len(entries), cd_at)
    return single[:cd_at] + entries + bytes(eocd)


def bz2_bomb(streams: int, kernel: int) -> bytes:
    """Concatenated bz2 streams of zeros (bzip2 decompresses them back to back)."""
    return bz2.compress(bytes(kernel), 9) * streams


def encrypted_zip(members: dict[str, bytes]) -> bytes:
    """A zip whose members carry the 'encrypted' flag (content is then unreadable noise)."""
    data = bytearray(zip_of(members, zipfile.ZIP_STORED))
    for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(sig)
        while at != -1:
            struct.pack_into("<H", data, at + flag_at, struct.unpack_from("<H", data, at + flag_at)[0] | 1)
            at = data.find(sig, at + 4)
    return bytes(data)
