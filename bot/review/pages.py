"""HTML for the review pages. Every value from a chat goes through `t()`: invisible characters
spelled out (bot.alerts.escape.display), then HTML-escaped. No script anywhere: plain links and
forms, so the Content-Security-Policy can forbid scripts outright.
"""

from __future__ import annotations

import html
import json
from typing import Any
from urllib.parse import urlencode

from bot.alerts.escape import display
from bot.store import SCOPES, Hit, HitDetail, Incident, IncidentDetail, Suppression
from bot.store.models import iso

FACET_PARAMS = {"rule_id": "rule", "kind": "kind", "severity": "severity",
                "platform": "platform", "community_id": "community", "channel_id": "channel",
                "status": "status"}
FILTER_PARAMS = ("since", "until", "severity", "rule", "kind", "platform", "community",
                 "channel", "author", "status", "q")


def t(value: Any, limit: int = 300) -> str:
    """Untrusted text, safe in HTML."""
    return html.escape(display("" if value is None else str(value), limit), quote=True)


def when(ts: float | None) -> str:
    """'2026-11-30 14:05' (UTC)."""
    return (iso(ts) or "")[:16].replace("T", " ")


def link(path: str, params: dict[str, Any]) -> str:
    """A same-site URL with the non-empty params."""
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")}, doseq=True)
    return html.escape(path + ("?" + query if query else ""), quote=True)


def page(title: str, body: str, nav: str = "hits") -> str:
    """The page frame."""
    tabs = "".join(
        f'<a href="/{name}" class="{"on" if name == nav else ""}">{label}</a>'
        for name, label in (("hits", "Hits"), ("incidents", "Incidents"),
                            ("suppressions", "False-positive memory")))
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{t(title)} · leakwarden review</title>'
            f'<link rel="stylesheet" href="/static/review.css"></head><body>'
            f'<header><b>leakwarden</b> review<nav>{tabs}</nav></header>'
            f'<main>{body}</main></body></html>')


def flash(message: str | None) -> str:
    """A one-line notice after a triage."""
    return f'<p class="flash" role="status">{t(message)}</p>' if message else ""


def highlighted(excerpt: str, matched: str) -> str:
    """The excerpt with the matched text marked (found case-insensitively in the excerpt)."""
    shown, needle = display(excerpt, 400), display(matched, 400)
    at = shown.casefold().find(needle.casefold()) if needle else -1
    if at < 0:
        return html.escape(shown)
    end = at + len(needle)
    return (html.escape(shown[:at]) + f"<mark>{html.escape(shown[at:end])}</mark>"
            + html.escape(shown[end:]))


def severity(name: str) -> str:
    return f'<span class="sev {t(name)}">{t(name)}</span>'


def status(name: str) -> str:
    return f'<span class="status {t(name)}">{t(name.replace("_", " "))}</span>'


def filters_form(params: dict[str, str]) -> str:
    """The filter bar (GET form)."""
    def field(name: str, label: str, placeholder: str = "") -> str:
        return (f'<label>{label}<input name="{name}" value="{t(params.get(name, ""))}" '
                f'placeholder="{placeholder}"></label>')

    return ('<form class="filters" method="get" action="/hits">'
            + field("q", "Search", "words in excerpts, matches, authors")
            + field("since", "Since", "7d or 2026-11-30") + field("until", "Until")
            + field("severity", "Severity ≥", "high") + field("rule", "Rule")
            + field("kind", "Kind") + field("platform", "Platform")
            + field("community", "Community") + field("channel", "Channel")
            + field("author", "Author") + field("status", "Status")
            + '<button type="submit">Filter</button> <a href="/hits">clear</a></form>')


def facets_box(facets: dict[str, list[tuple[str, int]]], params: dict[str, str]) -> str:
    """Value counts per facet; each value links to the list narrowed to it."""
    out = ['<aside class="facets"><h2>Facets</h2><p class="note">over the newest 5,000 '
           'matching hits</p>']
    for column, values in facets.items():
        name = FACET_PARAMS[column]
        out.append(f"<h3>{t(column.replace('_id', '').replace('_', ' '))}</h3><ul>")
        for value, n in values:
            out.append(f'<li><a href="{link("/hits", {**params, name: value, "page": ""})}">'
                       f"{t(value, 60)}</a> <span class=n>{n:,}</span></li>")
        out.append("</ul>")
    return "".join(out) + "</aside>"


def hits_page(hits: list[Hit], total: tuple[int, bool], facets: dict, params: dict[str, str],
              page_no: int, per_page: int, error: str | None = None) -> str:
    """The hit list with filters, facets, paging and export links."""
    n, capped = total
    rows = "".join(
        f'<tr><td>{when(h.event_at)}</td><td>{severity(h.severity)}</td>'
        f'<td><a href="/hits/{t(h.hit_id)}" class="hit">{t(h.matched, 60)}</a></td>'
        f'<td>{t(h.rule_id, 40)}</td><td>{status(h.status)}</td>'
        f'<td>{t(h.platform)} / {t(h.community_id, 40)} / {t(h.channel_id, 40)}</td>'
        f'<td>{t(h.author_name or h.author_id, 40)}</td>'
        f'<td class="excerpt">{highlighted(h.excerpt, h.matched)}</td></tr>'
        for h in hits)
    exports = " ".join(f'<a href="{link(f"/export.{fmt}", params)}">{fmt.upper()}</a>'
                       for fmt in ("csv", "json", "jsonl"))
    pager = []
    if page_no > 1:
        pager.append(f'<a href="{link("/hits", {**params, "page": page_no - 1})}">← newer</a>')
    if len(hits) == per_page:
        pager.append(f'<a href="{link("/hits", {**params, "page": page_no + 1})}">older →</a>')
    body = (filters_form(params) + (f'<p class="error">{t(error)}</p>' if error else "")
            + '<div class="split left">' + facets_box(facets, params)
            + f'<section><p class="count">{n:,}{"+" if capped else ""} hit(s) · '
            f'page {page_no} · export {exports}</p>'
            '<table class="list"><thead><tr><th>When (UTC)</th><th>Severity</th><th>Match</th>'
            '<th>Rule</th><th>Status</th><th>Where</th><th>Author</th><th>Excerpt</th></tr>'
            f'</thead><tbody>{rows or "<tr><td colspan=8>No hits.</td></tr>"}</tbody></table>'
            f'<p class="pager">{" ".join(pager)}</p></section></div>')
    return page("Hits", body)


def _detail_rows(detail: dict[str, Any]) -> str:
    rows = []
    for key, value in detail.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        cls = ' class="verdict"' if key == "verdict" else ""
        rows.append(f"<tr{cls}><th>{t(key, 60)}</th><td>{t(shown, 400)}</td></tr>")
    return "".join(rows)


def triage_forms(hit: Hit, csrf: str) -> str:
    """Buttons for every action the hit's state allows."""
    def form(action: str, label: str, extra: str = "", cls: str = "") -> str:
        return (f'<form method="post" action="/hits/{t(hit.hit_id)}/triage" class="triage">'
                f'<input type="hidden" name="csrf" value="{t(csrf)}">'
                f'<input type="hidden" name="action" value="{action}">{extra}'
                f'<button type="submit" name="do" value="{action}" class="{cls}">{label}</button>'
                "</form>")

    if hit.status == "suppressed":
        return (f'<p>Silenced by <a href="/suppressions">false-positive memory '
                f'#{hit.suppressed_by}</a>.</p>'
                + form("note", "Add note", '<input name="note" placeholder="note" required>'))
    out = []
    if hit.status in ("open", "acknowledged"):
        out.append(form("ack", "Acknowledge", cls="primary"))
    if hit.status in ("open", "acknowledged", "resolved"):
        out.append(form("resolve", "Resolve"))
    if hit.status != "open":
        out.append(form("reopen", "Reopen"))
    scopes = "".join(f'<option value="{s}">{s}</option>' for s in SCOPES)
    out.append(form("fp", "False positive",
                    f'<select name="scope" aria-label="scope">{scopes}</select>', cls="fp"))
    out.append(form("note", "Add note", '<input name="note" placeholder="note" required>'))
    out.append(form("assign", "Assign", '<input name="assignee" placeholder="who (empty: '
                                        'nobody)">'))
    return "".join(out)


def hit_page(detail: HitDetail, csrf: str, message: str | None) -> str:
    """One hit: the highlighted match, where, jump link, verdicts, history, triage."""
    h = detail.hit
    jump = (f'<a class="jump" href="{t(h.permalink, 2000)}" rel="noreferrer noopener" '
            f'target="_blank">Jump to the message ↗</a>'
            if h.permalink and h.permalink.startswith(("https://", "http://")) else "")
    where = (f"{t(h.platform)} / {t(h.community_id)} / {t(h.channel_id)}"
             + (f" / thread {t(h.thread_id)}" if h.thread_id else ""))
    facts = [
        ("When (UTC)", when(h.event_at)), ("Found", when(h.found_at)),
        ("Severity", severity(h.severity)), ("Rule", t(h.rule_id)), ("Kind", t(h.kind)),
        ("Status", status(h.status)), ("Where", where),
        ("Author", t(h.author_name or "") + (f" ({t(h.author_id)})" if h.author_id else "")),
        ("Message", t(h.message_id or "")), ("Location", t(h.location, 400)),
        ("File", t(h.path or "")), ("Score", f"{h.score:.3f}"),
        ("Watchlist version", t(h.watchlist_version)),
        ("Content digest", f"<code>{t(h.content_digest or '')}</code>"),
    ]
    incident = ""
    if detail.incident:
        i = detail.incident
        incident = (f'<p>Incident <a href="/incidents/{t(i.incident_id)}">{t(i.incident_id)}</a>'
                    f" · {i.hit_count:,} hit(s) in {i.spread['channels']} channel(s), "
                    f"{i.spread['communities']} communit(ies), {i.spread['platforms']} "
                    f"platform(s) · {status(i.status)}"
                    + (f" · assigned to {t(i.assignee)}" if i.assignee else "") + "</p>")
    history = "".join(
        f"<li>{when(e.at)} <b>{t(e.action)}</b> by {t(e.actor)}"
        + (f" ({t(e.scope)})" if e.scope else "") + (f": {t(e.note)}" if e.note else "")
        + "</li>" for e in detail.triage) or "<li>No triage yet.</li>"
    deliveries = "".join(
        f"<li>{t(d.sink_id)}: {t(d.state)} after {d.attempts} attempt(s)"
        + (f" — {t(d.error)}" if d.error else "") + "</li>"
        for d in detail.deliveries) or "<li>No alerts (offline scan or suppressed).</li>"
    verdicts = (f'<h2>Verdict and evidence</h2><table class="kv">{_detail_rows(h.detail)}</table>'
                if h.detail else "")
    body = (flash(message)
            + f'<h1>{severity(h.severity)} <span class="matched">{t(h.matched, 200)}</span></h1>'
            + f'<blockquote class="excerpt">{highlighted(h.excerpt, h.matched) or "<i>no excerpt kept</i>"}</blockquote>'
            + jump + incident
            + '<div class="split right"><section><table class="kv">'
            + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in facts)
            + "</table>" + verdicts + "</section>"
            + f'<aside><h2>Triage</h2><div class="actions">{triage_forms(h, csrf)}</div>'
            + f"<h2>History</h2><ul>{history}</ul>"
            + f"<h2>Alerts</h2><ul>{deliveries}</ul></aside></div>")
    return page(f"hit {h.hit_id}", body)


def incidents_page(incidents: list[Incident], params: dict[str, str], page_no: int,
                   per_page: int, error: str | None = None) -> str:
    """The incident list."""
    rows = "".join(
        f'<tr><td>{when(i.last_seen)}</td><td>{severity(i.severity)}</td>'
        f'<td><a href="/incidents/{t(i.incident_id)}">{t(i.matched, 60)}</a></td>'
        f"<td>{t(i.rule_id)}</td><td>{status(i.status)}</td><td>{i.hit_count:,}</td>"
        f"<td>{i.spread['platforms']} / {i.spread['communities']} / {i.spread['channels']}</td>"
        f"<td>{t(i.assignee or '')}</td><td>{when(i.first_seen)}</td></tr>"
        for i in incidents)
    pager = []
    if page_no > 1:
        pager.append(f'<a href="{link("/incidents", {**params, "page": page_no - 1})}">← newer</a>')
    if len(incidents) == per_page:
        pager.append(f'<a href="{link("/incidents", {**params, "page": page_no + 1})}">older →</a>')
    body = ((f'<p class="error">{t(error)}</p>' if error else "")
            + '<table class="list"><thead><tr><th>Last seen (UTC)</th><th>Severity</th>'
            '<th>Match</th><th>Rule</th><th>Status</th><th>Hits</th>'
            '<th>Platforms / communities / channels</th><th>Assignee</th><th>First seen</th>'
            f'</tr></thead><tbody>{rows or "<tr><td colspan=9>No incidents.</td></tr>"}'
            f'</tbody></table><p class="pager">{" ".join(pager)}</p>')
    return page("Incidents", body, nav="incidents")


def incident_page(detail: IncidentDetail) -> str:
    """An incident: where it spread and its timeline."""
    i = detail.incident
    places = "".join(
        f"<tr><td>{t(p.platform)}</td><td>{t(p.community_id)}</td><td>{t(p.channel_id)}</td>"
        f"<td>{p.hit_count:,}</td><td>{when(p.first_seen)}</td><td>{when(p.last_seen)}</td></tr>"
        for p in i.places)
    timeline = "".join(
        f'<li class="{"hit" if e.what == "hit" else "triage"}">{when(e.at)} <b>{t(e.what)}</b> '
        f'<a href="/hits/{t(e.hit_id)}">{t(e.hit_id)}</a> {t(e.summary, 200)}</li>'
        for e in detail.timeline())
    more = ('<p class="note">Only the first hits are shown; the list of hits has them all.</p>'
            if detail.hits_truncated else "")
    body = (f'<h1>{severity(i.severity)} <span class="matched">{t(i.matched, 200)}</span> '
            f'{status(i.status)}</h1><p>{t(i.rule_id)} · {i.hit_count:,} hit(s) from '
            f'{when(i.first_seen)} to {when(i.last_seen)}'
            + (f" · assigned to {t(i.assignee)}" if i.assignee else "")
            + f' · <a href="{link("/hits", {"incident": i.incident_id})}">its hits</a></p>'
            '<h2>Where</h2><table class="list"><thead><tr><th>Platform</th><th>Community</th>'
            '<th>Channel</th><th>Hits</th><th>First</th><th>Last</th></tr></thead>'
            f"<tbody>{places}</tbody></table><h2>Timeline</h2>{more}"
            f'<ol class="timeline">{timeline}</ol>')
    return page(f"incident {i.incident_id}", body, nav="incidents")


def suppressions_page(rows: list[Suppression], csrf: str, message: str | None) -> str:
    """False-positive memory, each with an undo button."""
    body_rows = "".join(
        f"<tr><td>#{s.suppression_id}</td><td>{t(s.rule_id)}</td><td>{t(s.match_key)}</td>"
        f"<td>{t(s.scope)}</td><td>{t('/'.join(x for x in (s.platform, s.community_id, s.channel_id) if x) or 'everywhere')}</td>"
        f"<td>{s.suppressed_count:,}</td><td>{t(s.created_by)}</td><td>{when(s.created_at)}</td>"
        f'<td><a href="/hits/{t(s.hit_id)}">{t(s.hit_id)}</a></td><td>'
        + (f'<form method="post" action="/suppressions/{s.suppression_id}/revoke">'
           f'<input type="hidden" name="csrf" value="{t(csrf)}">'
           f'<button type="submit">Undo</button></form>' if s.active
           else f"undone {when(s.revoked_at)} by {t(s.revoked_by)}")
        + "</td></tr>" for s in rows)
    body = (flash(message) + '<p>Identical matches (rule + normalised match) in the scope are '
            'stored but never alerted. Undo one to alert on them again.</p>'
            '<table class="list"><thead><tr><th>Id</th><th>Rule</th><th>Match</th><th>Scope'
            '</th><th>Where</th><th>Silenced</th><th>By</th><th>Since</th><th>From hit</th>'
            f'<th></th></tr></thead><tbody>{body_rows or "<tr><td colspan=10>None.</td></tr>"}'
            '</tbody></table><p><a href="/suppressions?all=1">include undone</a></p>')
    return page("False-positive memory", body, nav="suppressions")


def login_page(reason: str) -> str:
    """What a request without the token sees."""
    return page("Token required", f"<h1>Token required</h1><p>{t(reason)}</p><p>Open the link "
                "<code>leakwarden review</code> printed when it started.</p>", nav="")
