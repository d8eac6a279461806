"""The image's contract (no Docker engine here): what the Dockerfile and the compose example say."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path

import yaml  # pyyaml: a dependency of gguf

from bot.metrics import Metrics
from bot.web import Readiness, WebServer

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instruction(name: str) -> list[str]:
    """Every value of an instruction, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [m.group(1).strip() for m in re.finditer(rf"^{name}\s+(.+)$", joined, re.M)]


def test_multi_stage_slim_non_root_exec_form():
    froms = instruction("FROM")
    assert len(froms) == 2 and all("slim" in f for f in froms)
    assert instruction("USER") == ["10001:10001"]
    (entrypoint,) = instruction("ENTRYPOINT")
    assert json.loads(entrypoint) == ["leakwarden"]
    (cmd,) = instruction("CMD")
    assert json.loads(cmd) == ["run", "-c", "/config/config.toml", "--listen", "0.0.0.0:9108"]
    assert instruction("EXPOSE") == ["9108"]
    assert "curl" not in DOCKERFILE.split("HEALTHCHECK", 1)[1]


def test_the_healthcheck_command_asks_healthz_and_fails_when_nothing_answers():
    (check,) = instruction("HEALTHCHECK")
    argv = json.loads(check.split("CMD", 1)[1])
    assert argv[0] == "python" and "/healthz" in argv[-1]

    async def run(port: int | None) -> int:
        code = argv[-1].replace("9108", str(port or 9))  # port 9 (discard): nothing listens
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code)
        return await proc.wait()

    async def scenario() -> tuple[int, int]:
        async def ready() -> Readiness:
            return Readiness()

        web = WebServer("127.0.0.1:0", metrics=Metrics(), readiness=ready)
        await web.start()
        try:
            up = await run(web.port)
        finally:
            await web.stop()
        return up, await run(None)

    up, down = asyncio.run(scenario())
    assert (up, down) == (0, 1)


def test_compose_mounts_what_the_image_expects():
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    service = doc["services"]["leakwarden"]
    # The directory, so that a save-by-rename of config.toml reaches the container.
    assert "./config:/config:ro" in service["volumes"]
    assert any(v.endswith(":/data") for v in service["volumes"])
    assert service["ports"] == ["127.0.0.1:9108:9108"]
    assert all(str(v).startswith("${") for v in service["environment"].values())  # no values
    # None required: a Discord-only or Slack-only deployment starts; the monitor names a
    # missing token itself.
    assert not any(":?" in str(v) for v in service["environment"].values())


def test_the_image_builds_the_native_core_from_source_only():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"detectors/_native.c", "detectors/*.so", "build", ".hypothesis"} <= set(ignored)

