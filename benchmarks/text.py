"""Text engine benchmark: throughput, recall per disguise class and precision, in one run.

Workload: a seeded stream of chat-like messages (code blocks, URLs, emoji, several scripts);
1% mention a watchlist term in one of the disguise classes below. Watchlists of 1k, 10k and 100k
distinct codename-like terms. Compared in the same run against two baselines:
  (a) the same folding, then a plain Aho-Corasick exact search (the floor any design pays);
  (b) naive rapidfuzz.process.extractOne(..., scorer=partial_ratio) on a subset of messages.

    python benchmarks/text.py [--messages 200000] [--sizes 1000,10000,100000] [--seed 7]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import multiprocessing
import os
import random
import statistics
import time
import unicodedata
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor

import ahocorasick
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from detectors import Engine, load_watchlist
from detectors.normalize import READINGS, fold_fast

SYLLABLES = ["ka", "lo", "ri", "ven", "tor", "mi", "sa", "dra", "zel", "quin", "por", "thu", "bex", "ly", "nor", "cal", "fen", "gri", "hol", "jas", "vor", "mek", "tal", "os", "ur", "ix", "an", "el", "zor", "pha", "ny", "rud", "sil", "wen", "yth", "ko", "bra", "cor", "del", "fal", "gorn", "hesk"]
ENGLISH = ["the", "a", "to", "and", "of", "is", "in", "it", "you", "that", "for", "on", "was", "with", "he", "as", "have", "be", "at", "one", "this", "had", "by", "but", "not", "what", "all", "were", "we", "when", "your", "can", "said", "there", "use", "an", "each", "which", "she", "do", "how", "their", "if", "will", "up", "other", "about", "out", "many", "then", "them", "these", "so", "some", "her", "would", "make", "like", "him", "into", "time", "has", "look", "two", "more", "write", "go", "see", "number", "no", "way", "could", "people", "my", "than", "first", "water", "been", "call", "who", "its", "now", "find", "long", "down", "day", "did", "get", "come", "made", "may", "part", "lol", "yeah", "ok", "thanks", "anyone", "know", "why", "model", "weights", "eval", "run", "training", "data", "release", "leak", "link", "download", "server", "channel", "please", "check", "this", "out"]
OTHER_SCRIPTS = ["привет", "модель", "данные", "你好", "模型", "数据", "مرحبا", "نموذج", "こんにちは", "γεια"]
EMOJI = ["😀", "🔥", "👀", "🚀", "✅", "🤖", "💀", "🙏", "🇺🇸", "🇬🇧", "🇫🇷", "🇩🇪", "🇧🇷", "🇯🇵", "🇨🇦"]
CONFUSABLE = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "y": "у", "i": "і"}
LEET = {"a": "4", "e": "3", "o": "0", "s": "5", "t": "7", "l": "1"}
FULLWIDTH = {chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}
ACCENT = {"a": "á", "e": "é", "o": "ö", "u": "ü", "i": "í", "n": "ñ"}


def _named(template: str) -> dict[str, str]:
    """Letter -> the character the Unicode data names `template` with it ({} skipped if none)."""
    out = {}
    for c in "abcdefghijklmnopqrstuvwxyz":
        with contextlib.suppress(KeyError):  # no small capital X: generators leave it plain too
            out[c] = unicodedata.lookup(template.format(c.upper()))
    return out


REGIONAL = _named("REGIONAL INDICATOR SYMBOL LETTER {}")
ENCLOSED = [_named("NEGATIVE SQUARED LATIN CAPITAL LETTER {}"), _named("SQUARED LATIN CAPITAL LETTER {}"),
            _named("NEGATIVE CIRCLED LATIN CAPITAL LETTER {}"), _named("CIRCLED LATIN SMALL LETTER {}")]
SMALL_CAPS = _named("LATIN LETTER SMALL CAPITAL {}")


def _regional(t: str, rng: random.Random) -> str:
    """Regional indicators: glued (pairs render as flags), spaced, or joined by zero-width spaces."""
    sep = rng.choice(["", " ", "\u200b"])
    return " ".join(sep.join(REGIONAL[c] for c in w.lower()) for w in t.split())


def codename(rng: random.Random) -> str:
    word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
    return word.capitalize()


def make_terms(n: int, rng: random.Random) -> list[str]:
    """n codename-like terms, distinct once folded; one in five has two words. ("Rudtorelmek" and
    "Rudtor Elmek" fold alike: a text that spells one spells the other, and the engine reports
    both, so a mention planted for one of them would not test anything.)"""
    out: dict[str, str] = {}
    while len(out) < n:
        t = codename(rng)
        if rng.random() < 0.2:
            t = f"{t} {codename(rng)}"
        key = fold_fast(t).replace(" ", "")
        if len(key) >= 5:
            out.setdefault(key, t)
    return sorted(out.values())


def typo(word: str, rng: random.Random) -> str:
    """One edit (swap, substitute, drop or insert) away from `word`, not at its first letter.

    The edit may make an ordinary word ("Corfal Ospha" -> "Coral Ospha"): kept on purpose. A
    reader takes it for the term, anchored by the exact "Ospha", and so must the engine; alone,
    "coral" is rightly no typo of anything.
    """
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(["swap", "sub", "drop", "add"])
    letters = "bcdfghjkmnpqrvwxz"
    if kind == "swap" and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "add":
        return word[:i] + rng.choice(letters) + word[i:]
    return word[:i] + rng.choice([c for c in letters if c != word[i].lower()]) + word[i + 1 :]


def _map(s: str, table: dict[str, str], rng: random.Random, p: float = 0.6) -> str:
    return "".join(table[c] if c in table and rng.random() < p else c for c in s)


def _changed(fn):
    """A disguise that only counts when it changes the term (None: not planted, try another)."""
    def wrapped(t: str, r: random.Random) -> str | None:
        out = fn(t, r)
        return out if out != t else None
    return wrapped


COMBINING = ["\u0301", "\u0300", "\u0308", "\u0302", "\u0303", "\u030a", "\u0327", "\u0331"]


def _combining(t: str, r: random.Random) -> str:
    """Letters followed by real combining marks (not precomposed letters): "La\u0301rk"."""
    return "".join(c + (r.choice(COMBINING) if c.isalpha() and r.random() < 0.5 else "") for c in t)


def _markdown_inside(t: str, r: random.Random) -> str:
    """Markdown markers inside a word: "Lar**ksp**ur", "La||rkspu||r"."""
    word = t.replace(" ", "")
    i = r.randrange(1, len(word) - 2)
    j = r.randrange(i + 1, len(word))
    mark = r.choice(["**", "__", "~~", "||", "*", "`"])
    return word[:i] + mark + word[i:j] + mark + word[j:]


def two_edits(t: str, r: random.Random) -> str | None:
    """Two edits inside one word of at least 9 letters that leave it at least 9 letters long:
    max_edits "auto" allows 2 there, and a written word gets no more typos than its own length
    allows (an 8-letter word gets 1: "Zelyhesk" is no typo of "Zelythhesk", by design)."""
    words = t.split(" ")
    long = [k for k, w in enumerate(words) if len(w) >= 9]
    if not long:
        return None
    k = r.choice(long)
    for _ in range(10):
        written = typo(typo(words[k], r), r)
        if len(written) >= 9:
            return " ".join([*words[:k], written, *words[k + 1 :]])
    return None


CLASSES = {
    "plain": lambda t, r: t,
    "upper": lambda t, r: t.upper(),
    "spaced": lambda t, r: " ".join(t.replace(" ", "")),
    "dotted": lambda t, r: ".".join(t.replace(" ", "")),
    "line-broken": lambda t, r: "\n".join(t.replace(" ", "")),
    "hyphen-split": lambda t, r: t[: len(t) // 2] + "-\n" + t[len(t) // 2 :],
    "zero-width": lambda t, r: "\u200b".join(t),
    "diacritics": lambda t, r: _map(t.lower(), ACCENT, r, 1.0),
    "fullwidth": lambda t, r: "".join(FULLWIDTH.get(c, c) for c in t),
    "confusables": lambda t, r: _map(t.lower(), CONFUSABLE, r, 1.0),
    "leet": lambda t, r: _map(t.lower(), LEET, r, 1.0),
    "markdown": lambda t, r: f"||**{t}**||",
    "hashtag-camel": lambda t, r: "#" + "".join(w.capitalize() for w in t.split()),
    "url": lambda t, r: f"https://files.example.net/{t.lower().replace(' ', '-')}/model.safetensors",
    "joined-lower": lambda t, r: t.replace(" ", "").lower(),
    "regional-indicators": _regional,
    "enclosed-letters": lambda t, r: "".join(r.choice(ENCLOSED).get(c, c) for c in t.lower()),
    "small-capitals": lambda t, r: "".join(SMALL_CAPS.get(c, c) for c in t.lower()),
    "asterisks": lambda t, r: "*".join(t.replace(" ", "")),
    "underscores": lambda t, r: "_".join(t.replace(" ", "")),
    "combining": _combining,
    "leet-symbols": _changed(lambda t, r: _map(t.lower(), {"a": "@", "s": "$"}, r, 1.0)),
    "leet-one-as-i": _changed(lambda t, r: _map(t.lower(), {"i": "1"}, r, 1.0)),
    "markdown-inside": _markdown_inside,
    "alias": lambda t, r: t,  # the workload plants an alias of the entry, as written
    "typo": lambda t, r: " ".join(typo(w, r) if len(w) >= 6 else w for w in t.split())
    if any(len(w) >= 6 for w in t.split())
    else t,
    "typo-two-edits": two_edits,
}
TYPO_CLASSES = {"typo": 1, "typo-two-edits": 2}  # class -> edits planted


def chat_message(rng: random.Random) -> str:
    """A realistic-ish chat message: words, sometimes code, links, emoji, other scripts."""
    n = max(1, int(rng.lognormvariate(2.3, 0.8)))
    words = [rng.choice(ENGLISH) for _ in range(min(n, 120))]
    roll = rng.random()
    if roll < 0.05:
        ident = "_".join(rng.choice(ENGLISH) for _ in range(3))
        words.append(f"```py\ndef {ident}(x):\n    return {rng.randint(0, 999)} * x\n```")
    elif roll < 0.12:
        words.append(f"https://example.com/{rng.choice(ENGLISH)}/{rng.randint(1, 99999)}?ref=chat")
    elif roll < 0.2:
        words.insert(rng.randrange(len(words) + 1), rng.choice(OTHER_SCRIPTS))
    if rng.random() < 0.15:
        words.append(rng.choice(EMOJI))
    if rng.random() < 0.05:
        words.append(f"v{rng.randint(1, 9)}.{rng.randint(0, 9)}")
    return " ".join(words)


def unambiguous_typo(term: str, terms_folded: list[str], rng: random.Random, cls: str = "typo") -> str | None:
    """A typo of `term` (`cls`: one edit, or two) that is not also within two edits of another
    term on the list (with thousands of similar terms, a typo can land on a neighbour: then it
    is no test)."""
    own = fold_fast(term).replace(" ", "")
    for _ in range(20):
        t = CLASSES[cls](term, rng)
        if t is None:
            return None
        key = fold_fast(t).replace(" ", "")
        edits = OSA.distance(key, own)
        if edits == 0 or (TYPO_CLASSES[cls] == 2 and edits != 2):
            continue
        near = process.extract(key, terms_folded, scorer=OSA.distance, score_cutoff=2, limit=2)
        if [m[0] for m in near] == [own]:
            return t
    return None


def spelled_across(before: str, disguised: str, after: str, terms: ahocorasick.Automaton) -> bool:
    """Whether, in some reading, a term is spelled across the edge of the planted mention ("norven"
    before "an" spells "Norvenan" too): the engine rightly reports the longer one, so a mention
    planted there would test nothing."""
    for reading in READINGS:
        b, d, a = (fold_fast(x, reading).replace(" ", "") for x in (before, disguised, after))
        lo, hi = len(b), len(b) + len(d)
        for end, length in terms.iter(b + d + a):
            start = end - length + 1
            if start < hi and lo <= end and (start < lo or end + 1 > hi):
                return True
    return False


def make_aliases(terms: list[str], rng: random.Random) -> dict[int, str]:
    """An alias for one term in ten ("Project X" style, or another codename), distinct from
    every term and alias once folded."""
    taken = {fold_fast(t).replace(" ", "") for t in terms}
    out: dict[int, str] = {}
    for ti in range(0, len(terms), 10):
        for _ in range(20):
            alias = rng.choice([f"Project {codename(rng)}", codename(rng)])
            key = fold_fast(alias).replace(" ", "")
            if len(key) >= 5 and key not in taken:
                taken.add(key)
                out[ti] = alias
                break
    return out


def forms(terms: list[str], aliases: dict[int, str]) -> list[tuple[str, int]]:
    """(term or alias, term index): what a watchlist entry answers to."""
    return [(t, ti) for ti, t in enumerate(terms)] + [(a, ti) for ti, a in aliases.items()]


def workload(n: int, terms: list[str], aliases: dict[int, str], rng: random.Random):
    """(messages, planted) with planted[i] = (term index, class) for 1% of messages."""
    msgs, planted = [], {}
    classes = list(CLASSES)
    folded = [fold_fast(t).replace(" ", "") for t, _ in forms(terms, aliases)]
    automaton = ahocorasick.Automaton()
    for key in folded:
        automaton.add_word(key, len(key))
    automaton.make_automaton()
    with_alias = sorted(aliases)
    for i in range(n):
        text = chat_message(rng)
        if rng.random() < 0.01:
            ti = rng.randrange(len(terms))
            cls = classes[len(planted) % len(classes)]
            if cls in TYPO_CLASSES:
                disguised = unambiguous_typo(terms[ti], folded, rng, cls)
            elif cls == "alias":
                ti = rng.choice(with_alias)
                disguised = aliases[ti]
            else:
                disguised = CLASSES[cls](terms[ti], rng)
            words = text.split(" ")
            for _ in range(10 if disguised else 0):  # a place where the mention is unambiguous
                at = rng.randrange(len(words) + 1)
                before, after = " ".join(words[:at]) + " ", " " + " ".join(words[at:])
                if not spelled_across(before, disguised, after, automaton):
                    text = " ".join([*words[:at], disguised, *words[at:]])
                    planted[i] = (ti, cls)
                    break
        msgs.append(text)
    return msgs, planted


def score(found: dict[int, set[int]], planted, n_classes=CLASSES):
    """Recall per class and precision over (message, rule) pairs."""
    hit = Counter()
    total = Counter()
    tp = fp = 0
    for i, (ti, cls) in planted.items():
        total[cls] += 1
        if ti in found.get(i, set()):
            hit[cls] += 1
    for i, rules in found.items():
        for r in rules:
            if i in planted and planted[i][0] == r:
                tp += 1
            else:
                fp += 1
    recall = {c: hit[c] / total[c] for c in n_classes if total[c]}
    precision = tp / (tp + fp) if tp + fp else 1.0
    return recall, precision, fp


def rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def timed(fn, msgs, repeats=3):
    """Median messages per CPU second of `fn` over `msgs` (and the last results). CPU time, not
    wall time: on a shared machine it is what the work costs, whatever else runs beside it.
    `timed.first` keeps the first run's rate (for the engine: the pass that meets new tokens)."""
    rates, out = [], None
    for _ in range(repeats):
        gc.collect()
        t0 = time.process_time()
        out = fn(msgs)
        rates.append(len(msgs) / (time.process_time() - t0))
    timed.first = rates[0]
    return statistics.median(rates), out


def run_engine(engine: Engine, index: dict[str, int], batch: int = 0):
    """The engine message by message (`scan_text`), or in batches as the bot's pipeline does."""

    def fn(msgs):
        found = defaultdict(set)
        if batch:
            results = []
            for lo in range(0, len(msgs), batch):
                results += engine.scan_many(msgs[lo : lo + batch])
        else:
            results = map(engine.scan_text, msgs)
        for i, findings in enumerate(results):
            for f in findings:
                if f.kind == "codename":
                    found[i].add(index[f.rule_id])
        return found

    return fn


def run_baseline_a(terms: list[tuple[str, int]]):
    ac = ahocorasick.Automaton()
    for t, ti in terms:
        key = fold_fast(t).replace(" ", "")
        ac.add_word(key, (len(key), ti))
    ac.make_automaton()

    def fn(msgs):
        found = defaultdict(set)
        for i, m in enumerate(msgs):
            for _end, (_n, ti) in ac.iter(fold_fast(m).replace(" ", "")):
                found[i].add(ti)
        return found

    return fn


def run_baseline_b(terms: list[tuple[str, int]]):
    lowered = [t.lower() for t, _ in terms]
    owner = [ti for _, ti in terms]

    def fn(msgs):
        found = defaultdict(set)
        for i, m in enumerate(msgs):
            best = process.extractOne(m.lower(), lowered, scorer=fuzz.partial_ratio, score_cutoff=85)
            if best:
                found[i].add(owner[best[2]])
        return found

    return fn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--subset", type=int, default=300, help="messages for baseline (b)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    print(
        f"# text engine benchmark: {args.messages} messages, seed {args.seed}, medians of "
        f"{args.repeats}, CPU time; engine = scan_many in batches of 256 (as the pipeline runs it)"
    )
    rates_by_size = {}
    for size in sizes:
        rng = random.Random(args.seed)
        terms = make_terms(size, rng)
        aliases = make_aliases(terms, rng)
        msgs, planted = workload(args.messages, terms, aliases, rng)
        base_rss = rss_mb()
        t0 = time.process_time()
        wl = load_watchlist({"codenames": [
            {"id": f"t{i}", "term": t, **({"aliases": [aliases[i]]} if i in aliases else {})}
            for i, t in enumerate(terms)]})
        engine = Engine(wl)
        build = time.process_time() - t0
        mem = rss_mb() - base_rss
        index = {f"t{i}": i for i in range(len(terms))}
        run_engine(engine, index)(msgs[:5000])  # warm the per-token caches like a running bot

        rate_e, found_e = timed(run_engine(engine, index, batch=256), msgs, args.repeats)
        rate_first = timed.first
        rate_1, found_1 = timed(run_engine(engine, index), msgs, 1)
        assert found_1 == found_e, "batch and one-by-one scans disagree"
        rate_a, found_a = timed(run_baseline_a(forms(terms, aliases)), msgs, args.repeats)
        sub = sorted(planted)[: args.subset // 3] + list(range(args.subset - args.subset // 3))
        sub_msgs = [msgs[i] for i in sub]
        sub_planted = {j: planted[i] for j, i in enumerate(sub) if i in planted}
        rate_b, found_b = timed(run_baseline_b(forms(terms, aliases)), sub_msgs, 1)
        rec_e, prec_e, fp_e = score(found_e, planted)
        rec_a, prec_a, _ = score(found_a, planted)
        rec_b, prec_b, _ = score(found_b, sub_planted)
        rates_by_size[size] = rate_e

        print(f"\n## {size} terms  (build {build:.1f} s, watchlist memory +{mem:.0f} MB RSS)")
        print(f"{'':28}{'engine':>12}{'(a) AC exact':>14}{'(b) rapidfuzz':>15}")
        print(f"{'messages/s':28}{rate_e:>12,.0f}{rate_a:>14,.0f}{rate_b:>15,.1f}")
        print(f"{'  first pass':28}{rate_first:>12,.0f}   (tokens not seen in warm-up: verdicts computed)")
        print(f"{'  one by one':28}{rate_1:>12,.0f}")
        print(f"{'engine / baseline':28}{'':>12}{rate_e / rate_a:>14.2f}x{rate_e / rate_b:>14,.0f}x")
        print(f"{'precision':28}{prec_e:>12.4f}{prec_a:>14.4f}{prec_b:>15.4f}")
        print(f"{'false positives':28}{fp_e:>12}")
        for cls in CLASSES:
            if cls in rec_e:
                print(
                    f"{'recall ' + cls:28}{rec_e[cls]:>12.3f}{rec_a.get(cls, 0):>14.3f}"
                    f"{rec_b.get(cls, float('nan')):>15.3f}"
                )
        missed = [(msgs[i], terms[ti], cls) for i, (ti, cls) in planted.items() if ti not in found_e.get(i, ())]
        for m, t, cls in missed[:5]:
            print(f"  missed [{cls}] {t!r} in {m[:100]!r}")
        wrong = [(msgs[i], terms[ti]) for i, tis in found_e.items() for ti in tis
                 if planted.get(i, (None,))[0] != ti]
        for m, t in wrong[:5]:
            print(f"  false positive {t!r} in {m[:100]!r}")
        del engine, wl

    if len(sizes) > 1:
        lo, hi = sizes[0], sizes[-1]
        print(f"\ncost of {lo} -> {hi} terms: {rates_by_size[lo] / rates_by_size[hi]:.2f}x slower")

    rng = random.Random(args.seed)
    terms = make_terms(10_000, rng)
    engine = Engine(load_watchlist({"codenames": [{"id": f"t{i}", "term": t} for i, t in enumerate(terms)]}))
    line = " ".join(chat_message(rng) for _ in range(60_000)).replace("\n", " ")
    line = (line * (10_000_000 // len(line) + 1))[:10_000_000]
    times = []
    for _ in range(3):
        t0 = time.process_time()
        engine.scan_text(line)
        times.append(time.process_time() - t0)
    print(f"\n10 MB single-line text: {statistics.median(times):.2f} CPU s (median of 3)")
    # A line dense with mentions, in a fresh process so its peak memory is its own.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        for repeats in (1_000_000, 1_111_112):  # 9 MB (the audit's line), 10 MB
            cpu, found, limit, peak = pool.submit(dense_line, repeats, args.seed).result()
            print(f"dense line 'Larkspur ' x {repeats:,} ({9 * repeats / 1e6:.0f} MB), 10k terms: "
                  f"{cpu:.2f} CPU s, {found} findings, {limit}; peak RSS {peak:.0f} MB")


def dense_line(repeats: int, seed: int) -> tuple[float, int, str, float]:
    """(CPU s, findings, the scan-limit's words, peak RSS MB) of a line of nothing but mentions."""
    terms = [*make_terms(10_000, random.Random(seed)), "Larkspur"]
    engine = Engine(load_watchlist({"codenames": [{"id": f"t{i}", "term": t} for i, t in enumerate(terms)]}))
    text = "Larkspur " * repeats
    t0 = time.process_time()
    found = engine.scan_text(text)
    cpu = time.process_time() - t0
    limits = [f.detail for f in found if f.kind == "scan-limit"]
    words = ", ".join(f"{d['rule_id']}: {d['total']:,} counted, {d['max']} kept" for d in limits) or "no cap"
    # VmHWM, not ru_maxrss: a spawned child's ru_maxrss starts at its parent's size at the fork.
    with open("/proc/self/status") as fh:
        peak = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
    return cpu, len(found), words, peak / 1024

if __name__ == "__main__":
    main()
