"""Which member paths would escape the folder they are extracted to."""

import pytest

from detectors.files.expand import risky_path


@pytest.mark.parametrize(("name", "reason"), [
    ("a/b.txt", None), ("a..b/c", None), ("..a", None), ("./x", None),
    ("../x", "parent-traversal"), ("a/../../x", "parent-traversal"), ("a\\..\\..\\x", "parent-traversal"),
    ("/etc/passwd", "absolute-path"), ("C:\\Windows\\x", "absolute-path"), ("\\\\server\\share", "absolute-path"),
])
def test_risky_paths(name, reason):
    assert risky_path(name) == reason
