"""Sealed against plain codename matching: speed, recall and precision, in one run.

The workload is benchmarks/text.py's (a seeded chat stream, 1% of messages mention a term in
one of its disguise classes), scanned by two engines over the same terms: one with the plain
watchlist, one with the same watchlist sealed (`seal_watchlist` + `open_sealed`). Both run as
the pipeline does (scan_many in batches of 256) and message by message. Targets: the same recall
and precision, and sealed at least 25% of plain speed at 10k terms.

    python benchmarks/sealed.py [--messages 100000] [--sizes 1000,10000] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from text import CLASSES, make_terms, rss_mb, run_engine, score, timed, workload

from detectors import Engine, SealKey, load_watchlist, open_sealed, seal_watchlist

KEY = SealKey("benchmark sealing key, not a secret")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"# sealed vs plain: {args.messages} messages, seed {args.seed}, medians of {args.repeats}; "
        "batch = scan_many in batches of 256 (as the pipeline runs it)"
    )
    ratios = {}
    for size in sizes:
        rng = random.Random(args.seed)
        terms = make_terms(size, rng)
        msgs, planted = workload(args.messages, terms, rng)
        tables = {"codenames": [{"id": f"t{i}", "term": t} for i, t in enumerate(terms)]}
        index = {f"t{i}": i for i in range(len(terms))}
        plain_wl = load_watchlist(tables)

        t0 = time.perf_counter()
        sealed_text = seal_watchlist(plain_wl, KEY)
        seal_s = time.perf_counter() - t0
        base = rss_mb()
        t0 = time.perf_counter()
        sealed_wl = load_watchlist({}, sealed=open_sealed(sealed_text, KEY, source="bench"))
        sealed = Engine(sealed_wl)
        open_s = time.perf_counter() - t0
        mem = rss_mb() - base
        plain = Engine(plain_wl)

        engines = {"plain": plain, "sealed": sealed}
        for engine in engines.values():
            run_engine(engine, index)(msgs[:5000])  # warm the per-token caches like a running bot
        # Plain and sealed runs alternate, so that a busy machine slows both alike.
        rates: dict[str, list[float]] = {name: [] for name in engines}
        found: dict[str, dict] = {}
        for _ in range(args.repeats):
            for name, engine in engines.items():
                rate, found[name] = timed(run_engine(engine, index, batch=256), msgs, 1)
                rates[name].append(rate)
        rows = {}
        for name, engine in engines.items():
            rate_1, found_1 = timed(run_engine(engine, index), msgs, 1)
            assert found_1 == found[name], f"{name}: batch and one-by-one scans disagree"
            rows[name] = (statistics.median(rates[name]), rate_1, found[name], *score(found[name], planted))
        same = rows["plain"][2] == rows["sealed"][2]
        ratios[size] = rows["sealed"][0] / rows["plain"][0]

        print(
            f"\n## {size} terms  (seal {seal_s:.1f} s, sealed file {len(sealed_text) / 2**20:.1f} MB, "
            f"open {open_s:.1f} s, +{mem:.0f} MB RSS)"
        )
        print(f"{'':24}{'plain':>12}{'sealed':>12}{'sealed/plain':>14}")
        for label, i, fmt in (("messages/s (batch)", 0, ",.0f"), ("messages/s (1 by 1)", 1, ",.0f")):
            p, s = rows["plain"][i], rows["sealed"][i]
            print(f"{label:24}{p:>12{fmt}}{s:>12{fmt}}{s / p:>13.2f}x")
        print(f"{'precision':24}{rows['plain'][4]:>12.4f}{rows['sealed'][4]:>12.4f}")
        print(f"{'false positives':24}{rows['plain'][5]:>12}{rows['sealed'][5]:>12}")
        for cls in CLASSES:
            if cls in rows["plain"][3]:
                print(f"{'recall ' + cls:24}{rows['plain'][3][cls]:>12.3f}{rows['sealed'][3].get(cls, 0):>12.3f}")
        print(f"identical findings: {'yes' if same else 'NO'}")
        del plain, sealed

    print("\ntarget: sealed >= 0.25x plain (batch) at 10k terms, same recall and precision")
    for size, r in ratios.items():
        print(f"  {size} terms: {r:.2f}x")


if __name__ == "__main__":
    main()
