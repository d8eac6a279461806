"""Triage: who acknowledged, resolved, reopened, noted, assigned or marked a false positive.

A triage names a hit and acts on its incident (every hit of the incident takes its status),
except a false positive: it marks only the incident's hits inside its scope (the channel, the
community, everywhere) and closes the incident only when no hit outside the scope is left: one
channel's joke must not close, or resolve at PagerDuty, the leak in another workspace. Hits
marked false positive keep that status when the rest of the incident is acknowledged or
resolved. A false positive also remembers the match at its scope, so identical matches there
stay quiet; reopening (the incident, or a false-positive hit of a live incident) undoes both.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from bot.alerts.base import Alert
from bot.store.models import SCOPES, HitNotFound, TriageError, TriageResult
from bot.store.record import LIVE, enqueue
from bot.store.text import safe_text
from detectors import Severity

# Accepted spellings (the chat buttons send "false_positive") -> the action recorded.
ACTIONS = {
    "ack": "ack", "acknowledge": "ack", "acknowledged": "ack",
    "fp": "fp", "false_positive": "fp", "false-positive": "fp",
    "resolve": "resolve", "resolved": "resolve",
    "reopen": "reopen", "note": "note", "assign": "assign",
}
# action -> (statuses it may start from, status it leaves); None keeps the status.
TRANSITIONS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "ack": (("open", "acknowledged"), "acknowledged"),
    "resolve": (("open", "acknowledged", "resolved"), "resolved"),
    "fp": (("open", "acknowledged", "resolved", "false_positive"), "false_positive"),
    "reopen": (("acknowledged", "resolved", "false_positive"), "open"),
    "note": (("open", "acknowledged", "resolved", "false_positive", "suppressed"), None),
    "assign": (("open", "acknowledged", "resolved", "false_positive"), None),
}
# What incident-keeping receivers (PagerDuty, webhooks) are told, when `sinks` are given.
# A reopen is a fresh trigger: PagerDuty opens a new alert on the incident's dedup key.
MIRRORED = {"ack": "acknowledge", "resolve": "resolve", "fp": "resolve", "reopen": "trigger"}
NOTE_LIMIT = 2000


def canonical(action: str) -> str:
    """The recorded action for any accepted spelling; TriageError names the valid ones."""
    try:
        return ACTIONS[action.strip().lower()]
    except (KeyError, AttributeError):
        valid = ", ".join(sorted(set(ACTIONS.values())))
        raise TriageError(f"unknown triage action {action!r} (expected one of: {valid})") from None


def triage(conn: sqlite3.Connection, hit_id: str, action: str, actor: str, *,
           note: str | None, scope: str | None, assignee: str | None,
           sinks: Sequence[str], now: float) -> TriageResult:
    """Apply one triage action in one transaction."""
    act = canonical(action)
    note = safe_text(note, NOTE_LIMIT) if note else None
    actor = safe_text(actor, 200) or "unknown"
    if act == "note" and not note:
        raise TriageError("a note needs text")
    if act == "fp":
        scope = (scope or "channel").strip().lower()
        if scope not in SCOPES:
            raise TriageError(f"unknown scope {scope!r} (expected one of: {', '.join(SCOPES)})")
    elif act != "reopen":
        scope = None
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = _apply(conn, hit_id, act, actor, note, scope, assignee, sinks, now)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


def _apply(conn, hit_id, act, actor, note, scope, assignee, sinks, now) -> TriageResult:
    hit = conn.execute(
        "SELECT incident_id, status, rule_id, match_key, platform, community_id, channel_id, "
        "suppressed_by, severity FROM hits WHERE hit_id = ?", (hit_id,)).fetchone()
    if hit is None:
        raise HitNotFound(f"no hit {hit_id!r}")
    incident_id, hit_status, rule_id, key, platform, community, channel, by, severity = hit
    status = hit_status
    if incident_id is not None:
        status = conn.execute("SELECT status FROM incidents WHERE incident_id = ?",
                              (incident_id,)).fetchone()[0]
    allowed, target = TRANSITIONS[act]
    # A hit marked false positive in a live incident can be reopened on its own.
    if act == "reopen" and status in LIVE and hit_status == "false_positive":
        allowed, target = (status,), status
    if status not in allowed:
        if status == "suppressed":
            raise TriageError(f"hit {hit_id} was silenced by false-positive suppression #{by}; "
                              f"undo it with `leakwarden hits unsuppress {by}`")
        raise TriageError(f"cannot {act} hit {hit_id}: its incident is {status}"
                          + ("; reopen it first" if status in ("resolved", "false_positive")
                             else ""))
    suppression_id = None
    marked = outside = 0
    if act == "fp":
        where = _scope_of(scope, platform, community, channel)
        suppression_id, created = _suppress(conn, hit_id, incident_id, rule_id, key, scope,
                                            where, actor, note, now)
        if incident_id is not None:
            marked, outside = _mark_false_positive(conn, incident_id, where)
        if outside:
            target = None  # hits outside the scope keep the incident as it is
        changed = created or marked > 0 or (target is not None and target != status)
    elif act == "reopen":
        revoked = _revoke_for_incident(conn, incident_id, actor, now)
        suppression_id = revoked[0] if revoked else None
        marked = conn.execute("UPDATE hits SET status = ? WHERE incident_id = ? AND status != ?",
                              (target, incident_id, target)).rowcount
        changed = True
    else:
        changed = target is not None and target != status
    if act == "assign":
        who = safe_text((assignee if assignee is not None else note) or "", 200) or None
        before = conn.execute("SELECT assignee FROM incidents WHERE incident_id = ?",
                              (incident_id,)).fetchone()
        changed = before is not None and before[0] != who
        if changed:
            conn.execute("UPDATE incidents SET assignee = ?, updated_at = ? "
                         "WHERE incident_id = ?", (who, now, incident_id))
        note = who
    if target is not None and target != status and incident_id is not None:
        conn.execute("UPDATE incidents SET status = ?, updated_at = ? WHERE incident_id = ?",
                     (target, now, incident_id))
        if act in ("ack", "resolve"):  # fp and reopen set their hits above
            conn.execute("UPDATE hits SET status = ? WHERE incident_id = ? "
                         "AND status != 'false_positive'", (target, incident_id))
    if act == "note":
        changed = True
    if not changed:  # a second moderator's identical click: nothing new for the history
        return _result(hit_id, incident_id, target or status, suppression_id, None, False, act,
                       scope, platform, community, channel, marked, outside)
    event_id = conn.execute(
        "INSERT INTO triage(hit_id, incident_id, action, actor, note, scope, at) "
        "VALUES (?,?,?,?,?,?,?)", (hit_id, incident_id, act, actor, note, scope, now)).lastrowid
    # A false positive that leaves the incident open tells incident-keeping receivers nothing.
    if act in MIRRORED and target is not None and target != status:
        for sink in dict.fromkeys(sinks):
            enqueue(conn, sink, Alert(
                idempotency_key=f"{hit_id}:triage:{event_id}:{sink}", hit_id=hit_id,
                incident_id=incident_id, rule_id=rule_id, kind="triage",
                severity=str(Severity(severity)), matched="", excerpt="",
                action=MIRRORED[act]), now)
    return _result(hit_id, incident_id, target or status, suppression_id, event_id, True, act,
                   scope, platform, community, channel, marked, outside)


def _result(hit_id, incident_id, status, suppression_id, event_id, changed, act, scope,
            platform, community, channel, marked, outside) -> TriageResult:
    place = "/".join(x for x in (platform, community, channel if scope == "channel" else "")
                     if x)
    return TriageResult(hit_id, incident_id, status, suppression_id, event_id, changed, act,
                        scope if act == "fp" else None, place, marked, outside)


def _scope_of(scope: str, platform: str, community: str, channel: str) -> tuple:
    """(platform, community, channel) a suppression at `scope` covers; None = any."""
    return {
        "channel": (platform, community, channel),
        "community": (platform, community, None),
        "everywhere": (None, None, None),
    }[scope]


def _mark_false_positive(conn, incident_id: str, where: tuple) -> tuple[int, int]:
    """Mark the incident's hits inside `where` false positive: (hits marked, hits outside
    that are not false positives)."""
    platform, community, channel = where
    marked = conn.execute(
        "UPDATE hits SET status = 'false_positive' WHERE incident_id = ? "
        "AND status != 'false_positive' AND (? IS NULL OR platform = ?) "
        "AND (? IS NULL OR community_id = ?) AND (? IS NULL OR channel_id = ?)",
        (incident_id, platform, platform, community, community, channel, channel)).rowcount
    outside = conn.execute("SELECT count(*) FROM hits WHERE incident_id = ? "
                           "AND status != 'false_positive'", (incident_id,)).fetchone()[0]
    return marked, outside


def _suppress(conn, hit_id, incident_id, rule_id, key, scope, where, actor, note,
              now) -> tuple[int, bool]:
    """(suppression id, created?): an identical active suppression is reused."""
    row = conn.execute(
        "SELECT suppression_id FROM suppressions WHERE rule_id = ? AND match_key = ? "
        "AND scope = ? AND platform IS ? AND community_id IS ? AND channel_id IS ? "
        "AND revoked_at IS NULL", (rule_id, key, scope, *where)).fetchone()
    if row is not None:
        return row[0], False
    cur = conn.execute(
        "INSERT INTO suppressions(rule_id, match_key, scope, platform, community_id, channel_id, "
        "hit_id, incident_id, created_by, created_at, note) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (rule_id, key, scope, *where, hit_id, incident_id, actor, now, note))
    return cur.lastrowid, True


def _revoke_for_incident(conn, incident_id, actor, now) -> list[int]:
    """Undo the suppressions this incident's false-positive marks created."""
    ids = [r[0] for r in conn.execute(
        "SELECT suppression_id FROM suppressions WHERE incident_id = ? AND revoked_at IS NULL",
        (incident_id,))]
    conn.executemany("UPDATE suppressions SET revoked_by = ?, revoked_at = ? "
                     "WHERE suppression_id = ?", [(actor, now, i) for i in ids])
    return ids


def revoke(conn: sqlite3.Connection, suppression_id: int, actor: str, now: float) -> bool:
    """Undo one suppression (recorded on the hit that created it); False if already undone."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute("SELECT hit_id, incident_id, revoked_at FROM suppressions "
                           "WHERE suppression_id = ?", (suppression_id,)).fetchone()
        if row is None:
            raise HitNotFound(f"no suppression #{suppression_id}")
        if row[2] is not None:
            conn.execute("ROLLBACK")
            return False
        actor = safe_text(actor, 200) or "unknown"
        conn.execute("UPDATE suppressions SET revoked_by = ?, revoked_at = ? "
                     "WHERE suppression_id = ?", (actor, now, suppression_id))
        conn.execute("INSERT INTO triage(hit_id, incident_id, action, actor, note, scope, at) "
                     "VALUES (?,?,'unsuppress',?,?,NULL,?)",
                     (row[0], row[1], actor, f"suppression #{suppression_id} undone", now))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return True
