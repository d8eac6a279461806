"""Filters as people type them: times, severities, statuses, kinds and searches, or why not."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.store.filters import build_filter, parse_when
from bot.store.models import STATUSES
from detectors import FINDING_KINDS, Severity

NOW = 1_800_000_000.0


@pytest.mark.parametrize(("text", "expected"), [
    (None, None), ("  ", None), ("7d", NOW - 7 * 86_400), ("90m", NOW - 5_400),
    ("2027-01-15", datetime(2027, 1, 15, tzinfo=UTC).timestamp()),
    ("2027-01-15T14:00+01:00", datetime(2027, 1, 15, 13, tzinfo=UTC).timestamp()),
])
def test_when(text, expected):
    assert parse_when(text, NOW) == expected


@pytest.mark.parametrize(("values", "expected"), [
    ({"status": ["open", "Acknowledged"]}, {"statuses": ("open", "acknowledged")}),
    ({"status": "false-positive"}, {"statuses": ("false_positive",)}),  # the CLI verb's spelling
    ({"status": "FALSE_POSITIVE "}, {"statuses": ("false_positive",)}),
    ({"kind": ["codename", "Model_Weights"]}, {"kinds": ("codename", "model-weights")}),
    ({"severity": "high"}, {"min_severity": int(Severity.HIGH)}),
    ({"search": "  lark*  "}, {"query": "lark*"}),
    ({"search": "   "}, {"query": None}),  # an empty box is no search
])
def test_values_are_read_as_the_store_spells_them(values, expected):
    flt = build_filter(now=NOW, **values)
    assert {k: getattr(flt, k) for k in expected} == expected


def test_every_known_status_and_kind_is_accepted():
    assert build_filter(status=list(STATUSES)).statuses == STATUSES
    assert build_filter(kind=list(FINDING_KINDS)).kinds == FINDING_KINDS


@pytest.mark.parametrize(("values", "message"), [
    ({"status": "bogus"}, "status: 'bogus' is not a hit status (one of: open, acknowledged, "
                          "resolved, false_positive, suppressed)"),
    ({"status": ["open", "closd"]}, "status: 'closd' is not a hit status"),
    ({"status": "acknowleged"}, "did you mean acknowledged?"),
    ({"kind": "codenme"}, "kind: 'codenme' is not a finding kind; did you mean codename? "
                          "(one of: codename, pattern"),
    ({"search": '"'}, "search: '\"' has no word to look for"),
    ({"search": "*"}, "search: '*' has no word to look for"),
    ({"search": "- …"}, "has no word to look for"),
    ({"search": "a*"}, "search: a* is too short a prefix"),
    ({"search": "sk-a*"}, "search: sk-a* is too short a prefix"),  # the last word is "a"
    ({"severity": "huge"}, "severity: unknown severity 'huge'"),
    ({"since": "last tuesday"}, "cannot read time 'last tuesday'"),
])
def test_a_value_that_selects_nothing_by_mistake_is_refused_with_why(values, message):
    with pytest.raises(ValueError) as info:
        build_filter(now=NOW, **values)
    assert message in str(info.value)
