"""detectors.model: FINDING_KINDS names exactly the kinds the detectors make."""

from __future__ import annotations

import ast
from pathlib import Path

from detectors import ENTRY_KINDS, FINDING_KINDS

DETECTORS = Path(__file__).resolve().parents[2] / "detectors"


def _literal(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def kinds_in_source() -> dict[str, str]:
    """kind -> where: every literal kind given to Finding(...), file_finding(...) or a
    `kind=` keyword / parameter default of a finding-making function in detectors/."""
    found: dict[str, str] = {}
    for path in sorted(DETECTORS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            where = f"{path.relative_to(DETECTORS)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", "")
                if not name.endswith(("Finding", "finding")):
                    continue
                position = {"Finding": 1, "file_finding": 0}.get(name)
                candidates = [kw.value for kw in node.keywords if kw.arg == "kind"]
                if position is not None and len(node.args) > position:
                    candidates.append(node.args[position])
            elif isinstance(node, ast.FunctionDef) and node.name.endswith("finding"):
                args = node.args.args[-len(node.args.defaults):] if node.args.defaults else []
                candidates = [d for a, d in zip(args, node.args.defaults, strict=True)
                              if a.arg == "kind"]
            else:
                continue
            for kind in filter(None, map(_literal, candidates)):
                found.setdefault(kind, where)
    return found


def test_finding_kinds_are_exactly_those_the_detectors_make():
    made = kinds_in_source()
    assert set(made) - set(FINDING_KINDS) == set(), made  # a new kind: add it to FINDING_KINDS
    assert set(FINDING_KINDS) - set(made) == set()  # a kind no detector makes any more
    assert len(FINDING_KINDS) == len(set(FINDING_KINDS))
    assert set(ENTRY_KINDS) <= set(FINDING_KINDS)
