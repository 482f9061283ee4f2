"""Matching time for one need in banks of 1,000, 10,000 and 100,000 members (p50 and p95).

    .venv/bin/python bench/matching.py

Members get offers, areas and availability drawn from the built-in vocabulary (with some
misspellings); the index is built once per bank (as a worker would keep it), then 300 needs
are ranked one by one. Results go to bench/results/matching.md.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledger.matching import VOCABULARY, Helper, MatchIndex, Need  # noqa: E402

AREAS = ["Lambeth", "Brixton", "Clapham", "Stockwell", "Kennington", "Vauxhall", "Oval",
         "Herne Hill", "Streatham", "Tulse Hill"]
TIMES = ["weekday mornings", "Tuesday afternoons", "weekends", "evenings", "Sundays"]
WORDS = [word for words in VOCABULARY.values() for word in words]


def misspell(word: str, rng: random.Random) -> str:
    if len(word) < 5 or rng.random() > 0.1:
        return word
    i = rng.randrange(len(word) - 1)
    return word[:i] + word[i + 1] + word[i] + word[i + 2:]


def helpers(count: int, rng: random.Random) -> list[Helper]:
    return [
        Helper(i, f"M{i}", ", ".join(misspell(w, rng) for w in rng.sample(WORDS, 3)),
               rng.choice(AREAS), rng.choice(TIMES), rng.randrange(4))
        for i in range(count)
    ]


def needs(count: int, rng: random.Random) -> list[Need]:
    return [
        Need(-1, f"{rng.choice(WORDS)} {rng.choice(WORDS)} on {rng.choice(TIMES)}",
             rng.choice(AREAS))
        for _ in range(count)
    ]


def main() -> None:
    rng = random.Random(7)
    rows = []
    for size in (1_000, 10_000, 100_000):
        members = helpers(size, rng)
        start = time.perf_counter()
        index = MatchIndex.build(members)
        built = time.perf_counter() - start
        samples = []
        for need in needs(300, rng):
            start = time.perf_counter()
            index.rank(need, limit=3)
            samples.append((time.perf_counter() - start) * 1000)
        samples.sort()
        p50, p95 = statistics.median(samples), samples[int(len(samples) * 0.95)]
        rows.append(f"| {size:,} | {p50:.2f} | {p95:.2f} | {built:.1f} |")
        print(rows[-1], flush=True)
    table = [
        "Ranking one need (ms) and building the index once (s), by bank size.",
        "",
        "| members | p50 ms | p95 ms | index build s |",
        "|---:|---:|---:|---:|",
        *rows,
    ]
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "matching.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
