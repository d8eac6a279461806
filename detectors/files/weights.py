"""Model-weight files: recognised formats, their metadata as text, broken headers, unsafe pickles.

The container layouts are read by the fingerprints' parsers (one parser per format): here their
results become findings. Severity: a recognised weight file is LOW (public models are shared
all the time; fingerprints say whose it is), a broken header MEDIUM, a pickle that would run
code on load HIGH.
"""

from __future__ import annotations

from detectors.files.context import file_finding
from detectors.files.fingerprints.containers import Layout
from detectors.files.pickles import PickleReport
from detectors.model import Finding, Severity

# What a layout's container says about the file, by the kind its first bytes were sniffed as.
_FORMATS = {"safetensors": "safetensors", "gguf": "gguf", "npy": "npy", "pytorch": "pytorch-zip"}


def layout_findings(stream, layout: Layout, error: str | None) -> list[Finding]:
    """model-weights or malformed-model-file for a stream whose container parser ran."""
    kind = stream.kind
    fmt = _FORMATS.get(layout.container or "")
    if fmt is None and layout.container == "zip" and layout.tensor_count:
        fmt = "npz"
    if fmt is None and kind in ("safetensors", "gguf", "npy"):
        fmt = kind  # sniffed as one, yet the parser never got as far as the tensors
    if fmt is None:
        return []
    if error and not (kind == "zip" and layout.complete):
        return [file_finding(
            "malformed-model-file", Severity.MEDIUM, stream.location, stream.name,
            f"{fmt} file {stream.name} is malformed: {error}"[:160],
            {"format": fmt, "reason": error, "tensors_read": layout.tensor_count})]
    return [file_finding(
        "model-weights", Severity.LOW, stream.location, stream.name,
        f"{fmt} weights: {layout.tensor_count} tensors, {layout.parameters} parameters",
        {"format": fmt, "tensors": layout.tensor_count, "parameters": layout.parameters,
         "metadata_keys": [k for k, _ in layout.metadata][:64]})]


def metadata_text(layout: Layout, limit: int) -> str:
    """The metadata strings as `key: value` lines, for the text engine."""
    lines, size = [], 0
    for key, value in layout.metadata:
        line = f"{key}: {value}"
        if size + len(line) > limit:
            break
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines)


def pickle_findings(stream, report: PickleReport, error: str | None) -> list[Finding]:
    """unsafe-pickle for any global outside the allowlist (HIGH when known to run code or
    computed at load time, MEDIUM when merely unknown); model-weights for legacy torch files."""
    out = []
    dangerous, unknown = report.dangerous, report.unknown
    if dangerous or unknown or report.dynamic:
        severity = Severity.HIGH if dangerous or report.dynamic else Severity.MEDIUM
        names = ", ".join(dangerous + unknown) or "globals computed at load time"
        what = "would import" if dangerous or report.dynamic else "would import unknown code:"
        out.append(file_finding(
            "unsafe-pickle", severity, stream.location, names,
            f"loading {stream.name} {what} {names}"[:160],
            {"dangerous": dangerous, "unknown": unknown, "flagged": report.flagged,
             "dynamic": report.dynamic, "calls": report.calls,
             "globals": [f"{m}.{n}" for m, n in report.globals][:64]}))
    if report.legacy_torch:
        out.append(file_finding(
            "model-weights", Severity.LOW, stream.location, stream.name,
            f"legacy PyTorch checkpoint ({report.pickles} pickles)",
            {"format": "pytorch-legacy", "pickles": report.pickles}))
    if error and not report.ended:
        out.append(file_finding(
            "malformed-model-file", Severity.MEDIUM, stream.location, stream.name,
            f"pickle {stream.name} is malformed: {error}"[:160],
            {"format": "pickle", "reason": error, "opcodes": report.opcodes}))
    return out


def recognised_findings(stream) -> list[Finding]:
    """Formats recognised by their structure only (HDF5, ONNX): model-weights, not parsed."""
    return [file_finding(
        "model-weights", Severity.LOW, stream.location, stream.name,
        f"{stream.kind} model file (recognised, tensors not read)", {"format": stream.kind})]
