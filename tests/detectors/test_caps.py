"""The findings cap: the first N of each rule are admitted, the rest counted and reported once."""

import pytest

from detectors.caps import FindingCap


def test_the_first_findings_of_each_rule_are_admitted_and_the_rest_counted():
    cap = FindingCap(2)
    assert [cap.take(r) for r in ["a", "a", "b", "a", "a", "b"]] == [True, True, True, False, False, True]
    [limit] = cap.limits("text")
    assert (limit.kind, limit.rule_id, limit.matched, limit.start) == (
        "scan-limit", "scan-limit", "max_findings_per_rule", None)
    assert limit.detail == {"limit": "max_findings_per_rule", "max": 2, "rule_id": "a", "total": 4}
    assert "a has 4 findings" in limit.excerpt


def test_no_limit_finding_below_the_cap():
    cap = FindingCap(3)
    for _ in range(3):
        cap.take("a")
    assert cap.limits("text") == []


@pytest.mark.parametrize("bad", [0, -1])
def test_a_cap_below_one_is_refused(bad):
    with pytest.raises(ValueError, match="at least 1"):
        FindingCap(bad)
