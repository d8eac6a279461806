"""FileLimits: frozen, positive, with defaults that a real attachment never reaches."""

from __future__ import annotations

import dataclasses

import pytest

from detectors import FileLimits


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(FileLimits)])
@pytest.mark.parametrize("value", [0, -1, True, "10"])
def test_every_limit_must_be_a_positive_number(field, value):
    with pytest.raises(ValueError, match=field):
        FileLimits(**{field: value})


def test_limits_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        FileLimits().max_depth = 99  # type: ignore[misc]


def test_a_ratio_below_one_is_refused():
    with pytest.raises(ValueError, match="max_ratio"):
        FileLimits(max_ratio=0.5)
