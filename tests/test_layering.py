"""The house rules: detectors/ is pure, bot/ uses only what detectors/ exports."""

import ast
from pathlib import Path

import detectors

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN_IN_DETECTORS = {
    "bot", "discord", "slack_sdk", "slack_bolt", "sqlite3", "sqlite_utils", "asyncio", "aiohttp",
    "socket", "requests", "urllib", "http", "time",
}  # fmt: skip


def imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, node.lineno
            if node.module == "detectors":
                for alias in node.names:
                    yield f"detectors.{alias.name}", node.lineno


def test_detectors_imports_nothing_impure():
    bad = [
        f"{p.relative_to(ROOT)}:{line}: {name}"
        for p in (ROOT / "detectors").rglob("*.py")
        for name, line in imports(p)
        if name.split(".")[0] in FORBIDDEN_IN_DETECTORS
    ]
    assert bad == []


def test_bot_uses_only_the_public_api_of_detectors():
    public = {f"detectors.{n}" for n in detectors.__all__} | {"detectors"}
    bad = [
        f"{p.relative_to(ROOT)}:{line}: {name}"
        for p in (ROOT / "bot").rglob("*.py")
        for name, line in imports(p)
        if name.startswith("detectors") and name not in public
    ]
    assert bad == []
