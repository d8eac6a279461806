"""Regenerate detectors/data/ordinary_words.txt.gz from wordfreq's curated frequency lists.

The engine ships the derived list (a few hundred KB) instead of importing wordfreq at run time:
wordfreq's full frequency tables cost ~200 MB of memory once loaded, the list a few MB.

    pip install wordfreq && python scripts/make_ordinary_words.py
"""

import gzip
from pathlib import Path

from wordfreq import top_n_list

from detectors.normalize import fold_fast

# Top words per language: enough to cover everyday chat, few enough to leave rare words (which
# look like codenames) matchable.
LANGUAGES = {"en": 50_000, "es": 10_000, "fr": 10_000, "de": 10_000, "pt": 10_000, "it": 10_000, "nl": 10_000}
OUT = Path(__file__).resolve().parent.parent / "detectors" / "data" / "ordinary_words.txt.gz"


def main() -> None:
    words: set[str] = set()
    for lang, n in LANGUAGES.items():
        for word in top_n_list(lang, n):
            folded = fold_fast(word).replace(" ", "")
            if folded:
                words.add(folded)
    header = f"# folded ordinary words from wordfreq top lists {LANGUAGES}\n"
    OUT.write_bytes(gzip.compress((header + "\n".join(sorted(words)) + "\n").encode(), mtime=0))
    print(f"{OUT}: {len(words)} words")


if __name__ == "__main__":
    main()
