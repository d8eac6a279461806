"""Attachments: sniffed by magic bytes, hashed while streaming, archives expanded within limits,
text extracted, model-weight formats parsed (never unpickled), fingerprints matched.

    scan = engine.open_stream("attachment:a.zip", "a.zip")
    for piece in download:
        scan.feed(piece)
    findings = scan.close()
"""

from detectors.files.limits import FileLimits
from detectors.files.scan import FileScan, open_file_scan

__all__ = ["FileLimits", "FileScan", "open_file_scan"]
