"""Ordinary words: frequent words of common chat languages, folded like text.

A token that is an ordinary word is never read as a typo of a codename ("model" is not a typo of
"Kodel"); it can still spell a term exactly. The list is derived from wordfreq's curated
frequency data by `scripts/make_ordinary_words.py` and shipped with the package.
"""

from __future__ import annotations

import gzip
from functools import cache
from importlib import resources


@cache
def ordinary_words() -> frozenset[str]:
    """Folded compact forms of the ordinary words."""
    data = resources.files("detectors").joinpath("data/ordinary_words.txt.gz").read_bytes()
    lines = gzip.decompress(data).decode("utf-8").splitlines()
    return frozenset(w for w in lines if w and not w.startswith("#"))
