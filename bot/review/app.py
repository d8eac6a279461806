"""`leakwarden review`: the hit history in a browser, on localhost, behind a token.

A small aiohttp page set rather than Datasette: triage must go through `Store.triage` (the same
state rules, false-positive memory and mirrored outbox rows as the chat buttons and the CLI),
which Datasette's writable queries would bypass with raw SQL; aiohttp is already a dependency
and the pages need no JavaScript at all.

Security: the token is checked once (`/login?token=...`) and swapped for an HttpOnly,
SameSite=Strict cookie holding an HMAC of it; every form carries a CSRF value; the Host header
must be the address we listen on (no DNS rebinding); a strict CSP forbids scripts and framing.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from bot.review import pages
from bot.review.style import CSS
from bot.store import HitNotFound, Store, TriageError, filters
from bot.store.export import HIT_CSV_COLUMNS, StreamWriter

log = logging.getLogger("leakwarden.review")

COOKIE = "lw_review"
PER_PAGE = 50
STORE = web.AppKey("store", Store)
SETTINGS = web.AppKey("settings", dict)
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _mac(token: str, purpose: str) -> str:
    return hmac.new(token.encode(), purpose.encode(), hashlib.sha256).hexdigest()


def build_app(store: Store, *, token: str, actor: str, mirror_sinks: list[str],
              allowed_hosts: set[str]) -> web.Application:
    """The review application around an open Store."""
    session, csrf = _mac(token, "session"), _mac(token, "csrf")

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.host not in allowed_hosts:
            return _secure(web.Response(status=421, text="unexpected Host header"))
        if request.path == "/static/review.css":
            return _secure(await handler(request))
        if request.path == "/login":
            given = request.query.get("token", "")
            if not hmac.compare_digest(given.encode(), token.encode()):
                return _html(pages.login_page("That token is not valid."), status=403)
            target = request.query.get("next", "/hits")
            response = web.HTTPSeeOther(target if target.startswith("/") and
                                        not target.startswith("//") else "/hits")
            response.set_cookie(COOKIE, session, httponly=True, samesite="Strict", path="/")
            raise _secure(response)
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not (hmac.compare_digest(request.cookies.get(COOKIE, "").encode(), session.encode())
                or hmac.compare_digest(bearer.encode(), token.encode())):
            return _html(pages.login_page("This page needs the review token."), status=401)
        if request.method == "POST":
            form = await request.post()
            if not hmac.compare_digest(str(form.get("csrf", "")).encode(), csrf.encode()):
                return _html(pages.login_page("The form is stale; reload the page."), status=403)
        try:
            return _secure(await handler(request))
        except web.HTTPException as exc:
            raise _secure(exc) from None

    async def css(_request: web.Request) -> web.Response:
        return web.Response(text=CSS, content_type="text/css")

    async def hits(request: web.Request) -> web.Response:
        params = {k: request.query.get(k, "") for k in (*pages.FILTER_PARAMS, "incident")}
        page_no = _page(request)
        error = None
        try:
            flt = _filter(params)
        except ValueError as err:
            error, flt = str(err), filters.build_filter()
        found = await store.list_hits(flt, limit=PER_PAGE, offset=(page_no - 1) * PER_PAGE)
        total = await store.count_hits(flt, cap=10_000)
        facets = await store.facets(flt)
        return _html(pages.hits_page(found, total, facets, params, page_no, PER_PAGE, error))

    async def hit(request: web.Request) -> web.Response:
        try:
            detail = await store.get_hit(request.match_info["hit_id"])
        except HitNotFound as err:
            raise web.HTTPNotFound(text=str(err)) from None
        return _html(pages.hit_page(detail, csrf, request.query.get("done")))

    async def triage(request: web.Request) -> web.Response:
        hit_id = request.match_info["hit_id"]
        form = await request.post()
        action = str(form.get("action", ""))
        try:
            result = await store.triage(
                hit_id, action, actor, note=str(form.get("note") or "") or None,
                scope=str(form.get("scope") or "") or None,
                assignee=str(form.get("assignee") or "") if action == "assign" else None,
                sinks=mirror_sinks)
            done = f"{result.action}: {result.describe()}"
        except HitNotFound as err:
            raise web.HTTPNotFound(text=str(err)) from None
        except TriageError as err:
            done = f"not done: {err}"
        raise web.HTTPSeeOther(f"/hits/{quote(hit_id)}?{urlencode({'done': done})}")

    async def incidents(request: web.Request) -> web.Response:
        params = {k: request.query.get(k, "") for k in pages.FILTER_PARAMS}
        page_no = _page(request)
        error = None
        try:
            flt = _filter(params)
        except ValueError as err:
            error, flt = str(err), filters.build_filter()
        found = await store.list_incidents(flt, limit=PER_PAGE, offset=(page_no - 1) * PER_PAGE)
        return _html(pages.incidents_page(found, params, page_no, PER_PAGE, error))

    async def incident(request: web.Request) -> web.Response:
        try:
            detail = await store.get_incident(request.match_info["incident_id"])
        except HitNotFound as err:
            raise web.HTTPNotFound(text=str(err)) from None
        return _html(pages.incident_page(detail))

    async def suppressions(request: web.Request) -> web.Response:
        rows = await store.suppressions(include_revoked=request.query.get("all") == "1")
        return _html(pages.suppressions_page(rows, csrf, request.query.get("done")))

    async def revoke(request: web.Request) -> web.Response:
        try:
            sid = int(request.match_info["sid"])
            done = await store.revoke_suppression(sid, actor)
        except (ValueError, HitNotFound) as err:
            raise web.HTTPNotFound(text=str(err)) from None
        message = f"#{sid} undone" if done else f"#{sid} was already undone"
        raise web.HTTPSeeOther(f"/suppressions?{urlencode({'done': message})}")

    async def export(request: web.Request) -> web.StreamResponse:
        fmt = request.match_info["fmt"]
        params = {k: request.query.get(k, "") for k in (*pages.FILTER_PARAMS, "incident")}
        try:
            flt = _filter(params)
        except ValueError as err:
            raise web.HTTPBadRequest(text=str(err)) from None
        kind = {"csv": "text/csv", "json": "application/json",
                "jsonl": "application/x-ndjson"}[fmt]
        response = web.StreamResponse(headers={
            "Content-Type": f"{kind}; charset=utf-8",
            "Content-Disposition": f'attachment; filename="leakwarden-hits.{fmt}"',
            **HEADERS})
        await response.prepare(request)
        buffer = _Buffer()
        writer = StreamWriter(fmt, buffer, HIT_CSV_COLUMNS)
        async for h in store.iter_hits(flt):
            writer.write(h.to_dict())
            if buffer.size > 1 << 16:
                await response.write(buffer.take())
        writer.close()
        await response.write(buffer.take())
        await response.write_eof()
        return response

    async def root(_request: web.Request) -> web.Response:
        raise web.HTTPSeeOther("/hits")

    async def login(_request: web.Request) -> web.Response:
        raise web.HTTPNotFound()  # never reached: the guard answers /login itself

    app = web.Application(middlewares=[guard])
    app[STORE] = store
    app.add_routes([
        web.get("/", root), web.get("/static/review.css", css), web.get("/hits", hits),
        web.get("/hits/{hit_id}", hit), web.post("/hits/{hit_id}/triage", triage),
        web.get("/incidents", incidents), web.get("/incidents/{incident_id}", incident),
        web.get("/suppressions", suppressions),
        web.post("/suppressions/{sid}/revoke", revoke),
        web.get(r"/export.{fmt:csv|jsonl|json}", export),
        web.get("/login", login),
    ])
    return app


class _Buffer:
    """A text sink for StreamWriter whose contents the export handler drains as bytes."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0

    def write(self, text: str) -> int:
        self.parts.append(text)
        self.size += len(text)
        return len(text)

    def take(self) -> bytes:
        data, self.parts, self.size = "".join(self.parts).encode("utf-8"), [], 0
        return data


def _filter(params: dict[str, str]) -> Any:
    return filters.build_filter(
        since=params.get("since"), until=params.get("until"), severity=params.get("severity"),
        rule=params.get("rule"), kind=params.get("kind"), platform=params.get("platform"),
        community=params.get("community"), channel=params.get("channel"),
        author=params.get("author"), status=params.get("status"), search=params.get("q"),
        incident=params.get("incident"))


def _page(request: web.Request) -> int:
    try:
        return max(1, min(int(request.query.get("page", "1")), 10_000))
    except ValueError:
        return 1


def _secure(response: Any) -> Any:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _html(body: str, status: int = 200) -> web.Response:
    return _secure(web.Response(text=body, status=status, content_type="text/html"))
