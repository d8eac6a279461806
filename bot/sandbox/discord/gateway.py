"""The fake gateway: HELLO, IDENTIFY, READY, heartbeats, RESUME with replay, dispatch, close codes."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

log = logging.getLogger(__name__)

HELLO, HEARTBEAT, IDENTIFY, RESUME, INVALID_SESSION, HEARTBEAT_ACK = 10, 1, 2, 6, 9, 11
MESSAGE_CONTENT_INTENT = 1 << 15
DIRECT_MESSAGES_INTENT = 1 << 12
PRIVILEGED_INTENTS = (1 << 1) | (1 << 8) | MESSAGE_CONTENT_INTENT  # members, presences, content
CLOSE_AUTHENTICATION_FAILED = 4004
CLOSE_DISALLOWED_INTENTS = 4014


@dataclass
class Session:
    """One gateway session: survives a dropped socket until invalidated, so RESUME can replay."""

    id: str
    intents: int
    seq: int = 0
    backlog: list[dict[str, Any]] = field(default_factory=list)
    socket: web.WebSocketResponse | None = None
    shard: tuple[int, int] = (0, 1)  # (shard id, shard count) from IDENTIFY

    @property
    def reads_content(self) -> bool:
        return bool(self.intents & MESSAGE_CONTENT_INTENT)

    def owns(self, guild_id: object) -> bool:
        """Discord's sharding formula: (guild_id >> 22) % shard_count == shard_id (DMs: shard 0)."""
        if guild_id is None:
            return self.shard[0] == 0
        shard_id, count = self.shard
        return (int(guild_id) >> 22) % count == shard_id  # type: ignore[call-overload]


class Gateway:
    """Accepts discord.py's websocket, tracks sessions and fans dispatches out to them."""

    def __init__(
        self,
        *,
        check_token: Callable[[str], bool],
        ready_payload: Callable[[Session], dict[str, Any]],
        guild_payloads: Callable[[], list[dict[str, Any]]],
        heartbeat_interval_ms: int,
    ) -> None:
        self._check_token = check_token
        self._ready_payload = ready_payload
        self._guild_payloads = guild_payloads
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.sessions: dict[str, Session] = {}
        self.sockets: set[web.WebSocketResponse] = set()
        self.allow_privileged_intents = True
        self.identify_count = 0
        self.resume_count = 0
        self.heartbeats = 0
        self.replayed = 0  # events re-sent on RESUME
        self.replay_limit = 1000  # events a session keeps for RESUME
        self.stalled: set[web.WebSocketResponse] = set()  # open but silent ("zombie") sockets
        self.connected = asyncio.Event()

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await socket.prepare(request)
        self.sockets.add(socket)
        session: Session | None = None
        try:
            await self._send(socket, {"op": HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
            async for frame in socket:
                if frame.type is not WSMsgType.TEXT:
                    continue
                packet = json.loads(frame.data)
                session = await self._on_packet(socket, packet, session)
        finally:
            self.sockets.discard(socket)
            self.stalled.discard(socket)
            if session is not None and session.socket is socket:
                session.socket = None
            if not self.sockets:
                self.connected.clear()
        return socket

    async def _on_packet(
        self, socket: web.WebSocketResponse, packet: dict[str, Any], session: Session | None
    ) -> Session | None:
        op, data = packet.get("op"), packet.get("d")
        if op == HEARTBEAT:
            self.heartbeats += 1
            await self._send(socket, {"op": HEARTBEAT_ACK, "d": None})
        elif op == IDENTIFY:
            return await self._identify(socket, data or {})
        elif op == RESUME:
            return await self._resume(socket, data or {})
        return session

    async def _identify(self, socket: web.WebSocketResponse, data: dict[str, Any]) -> Session | None:
        self.identify_count += 1
        if not self._check_token(str(data.get("token", ""))):
            await socket.close(code=CLOSE_AUTHENTICATION_FAILED, message=b"Authentication failed.")
            return None
        intents = int(data.get("intents", 0))
        if intents & PRIVILEGED_INTENTS and not self.allow_privileged_intents:
            await socket.close(code=CLOSE_DISALLOWED_INTENTS, message=b"Disallowed intent(s).")
            return None
        session = Session(id=secrets.token_hex(16), intents=intents, socket=socket)
        if data.get("shard"):
            session.shard = (int(data["shard"][0]), int(data["shard"][1]))
        self.sessions[session.id] = session
        guilds = [g for g in self._guild_payloads() if session.owns(g["id"])]
        ready = self._ready_payload(session)
        ready["guilds"] = [{"id": g["id"], "unavailable": True} for g in guilds]
        ready["shard"] = list(session.shard)
        await self._deliver(session, "READY", ready)
        for guild in guilds:
            await self._deliver(session, "GUILD_CREATE", guild)
        self.connected.set()
        return session

    async def _resume(self, socket: web.WebSocketResponse, data: dict[str, Any]) -> Session | None:
        session = self.sessions.get(str(data.get("session_id")))
        if session is None or not self._check_token(str(data.get("token", ""))):
            # Not resumable: the client must IDENTIFY afresh (and anything missed is gone).
            await self._send(socket, {"op": INVALID_SESSION, "d": False})
            return None
        last_seen = int(data.get("seq") or 0)
        if session.backlog and last_seen < session.backlog[0]["s"] - 1:
            # The replay buffer no longer reaches back that far: like Discord, refuse.
            del self.sessions[session.id]
            await self._send(socket, {"op": INVALID_SESSION, "d": False})
            return None
        self.resume_count += 1
        session.socket = socket
        for packet in [p for p in session.backlog if p["s"] > last_seen]:
            self.replayed += 1
            await self._send(socket, packet)
        await self._deliver(session, "RESUMED", {})
        self.connected.set()
        return session

    async def dispatch(self, event: str, data: dict[str, Any], *, strip_content: bool = False) -> None:
        """Send an event to every session; sessions with a dropped socket keep it for RESUME."""
        for session in list(self.sessions.values()):
            if not session.owns(data.get("guild_id")):
                continue  # another shard's server
            direct = event.startswith("MESSAGE_") and "guild_id" not in data
            if direct and not session.intents & DIRECT_MESSAGES_INTENT:
                continue  # DMs only reach bots that asked for them
            body = data
            # Discord sends a DM's content to its bot without the privileged intent.
            hidden = event.startswith("MESSAGE_") and not session.reads_content and not direct
            if strip_content or hidden:
                body = without_content(data)
            await self._deliver(session, event, body)

    async def _deliver(self, session: Session, event: str, data: dict[str, Any]) -> None:
        session.seq += 1
        packet = {"op": 0, "t": event, "s": session.seq, "d": data}
        session.backlog.append(packet)
        del session.backlog[: -self.replay_limit]  # a bounded replay buffer, like the real one
        if session.socket is not None and not session.socket.closed:
            await self._send(session.socket, packet)

    def stall(self) -> None:
        """Keep today's sockets open but send nothing on them (no acks, no events)."""
        self.stalled.update(self.sockets)

    async def drop(self, code: int = 4000) -> None:
        """Close every socket with `code`; sessions stay resumable unless invalidated."""
        for socket in list(self.sockets):
            await socket.close(code=code, message=b"sandbox drop")

    async def invalidate(self, *, tell_client: bool = True) -> None:
        """Forget every session; with `tell_client`, send op 9 so the client re-identifies now."""
        for session in list(self.sessions.values()):
            if tell_client and session.socket is not None and not session.socket.closed:
                await self._send(session.socket, {"op": INVALID_SESSION, "d": False})
        self.sessions.clear()

    async def close(self) -> None:
        await self.drop(code=1001)

    async def _send(self, socket: web.WebSocketResponse, packet: dict[str, Any]) -> None:
        if socket in self.stalled:
            return  # the packet is still in the session backlog, for a RESUME to replay
        try:
            await socket.send_str(json.dumps(packet))
        except ConnectionError:
            log.debug("sandbox gateway: socket went away while sending")


def without_content(data: dict[str, Any]) -> dict[str, Any]:
    """What Discord sends a bot without the MESSAGE CONTENT intent: no text, embeds or files."""
    stripped = dict(data)
    blanks = (("content", ""), ("embeds", []), ("attachments", []), ("components", []),
              ("message_snapshots", []))
    for key, empty in blanks:
        if key in stripped:
            stripped[key] = empty
    return stripped
