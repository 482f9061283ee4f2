"""Matching time for one need in banks of 1,000, 10,000 and 100,000 members (p50 and p95):
with the bank's index kept between waves (as ``ledger.match_cache`` keeps it), against
rebuilding it for every wave (as before), side by side in one run.

    .venv/bin/python bench/matching.py
    .venv/bin/python bench/matching.py --sizes 100000 --markdown OUT

Members get offers, areas and availability drawn from the English vocabulary (with some
misspellings; ``--all-languages``: from the vocabularies of all six languages) and a few
recent asks. For each size:

- **kept**: the index is built once, then 300 needs are ranked one by one (the wave's work
  when the bank's ``match_version`` has not moved);
- **refreshed**: one member changed their skills (the version moved): the index is refreshed
  from all the profiles, reusing every unchanged helper, then the need is ranked;
- **rebuilt**: the index is built from scratch and the need ranked (what every wave did
  before the index was kept), timed a few times.

Results go to bench/results/matching.md (and to ``--markdown OUT``).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledger.matching import VOCABULARY, Helper, MatchIndex, Need  # noqa: E402
from ledger.vocabulary import languages  # noqa: E402

AREAS = ["Lambeth", "Brixton", "Clapham", "Stockwell", "Kennington", "Vauxhall", "Oval",
         "Herne Hill", "Streatham", "Tulse Hill"]
TIMES = ["weekday mornings", "Tuesday afternoons", "weekends", "evenings", "Sundays"]
WORDS = [word for words in VOCABULARY.values() for word in words]
EVERY_LANGUAGE = [word for language in languages() for words in language.categories.values()
                  for word in words]
COMMAND = ".venv/bin/python bench/matching.py"
TARGET_MS = 50.0


def misspell(word: str, rng: random.Random) -> str:
    if len(word) < 5 or rng.random() > 0.1:
        return word
    i = rng.randrange(len(word) - 1)
    return word[:i] + word[i + 1] + word[i] + word[i + 2:]


def helpers(count: int, rng: random.Random) -> list[Helper]:
    return [
        Helper(i, f"M{i}", ", ".join(misspell(w, rng) for w in rng.sample(WORDS, 3)),
               rng.choice(AREAS), rng.choice(TIMES))
        for i in range(count)
    ]


def needs(count: int, rng: random.Random) -> list[Need]:
    return [
        Need(-1, f"{rng.choice(WORDS)} {rng.choice(WORDS)} on {rng.choice(TIMES)}",
             rng.choice(AREAS))
        for _ in range(count)
    ]


def _ms(seconds: float) -> float:
    return seconds * 1000


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def measure(size: int, rng: random.Random, args: argparse.Namespace) -> dict[str, float]:
    members = helpers(size, rng)
    recent = {rng.randrange(size): rng.randrange(1, 4) for _ in range(size // 20)}
    start = time.perf_counter()
    index = MatchIndex.build(members)
    built = time.perf_counter() - start
    kept, kept_cpu = [], []
    for need in needs(args.needs, rng):
        start, cpu = time.perf_counter(), time.process_time()
        index.rank(need, limit=3, recent=recent)
        kept.append(_ms(time.perf_counter() - start))
        kept_cpu.append(_ms(time.process_time() - cpu))
    refreshed = []
    rebuilt = []
    for n, need in enumerate(needs(args.rebuilds, rng)):
        changed = list(members)
        who = rng.randrange(size)
        changed[who] = replace(changed[who], offers=f"knitting, {WORDS[n % len(WORDS)]}")
        start = time.perf_counter()
        index.refreshed(changed).rank(need, limit=3, recent=recent)
        refreshed.append(_ms(time.perf_counter() - start))
        start = time.perf_counter()
        MatchIndex.build(changed).rank(need, limit=3, recent=recent)
        rebuilt.append(_ms(time.perf_counter() - start))
    return {
        "size": size, "kept_p50": statistics.median(kept), "kept_p95": _p95(kept),
        "kept_cpu_p95": _p95(kept_cpu),
        "refreshed": statistics.median(refreshed), "rebuilt": statistics.median(rebuilt),
        "build_s": built,
    }


def render(rows: list[dict[str, float]], args: argparse.Namespace, elapsed: float) -> str:
    lines = [
        "## Matching: ranking one need, index kept vs rebuilt",
        "",
        f"Reproduce: `{COMMAND}` (this run: `--sizes "
        f"{','.join(str(int(r['size'])) for r in rows)}`, {args.needs} needs per size, "
        f"{args.rebuilds} rebuilds; took {elapsed:.0f} s)",
        "",
        "Ranking only (no SQL): generated members with three offers each, some misspelt, ten "
        "areas, five kinds of free time, 5% asked lately. *Kept*: the index a worker keeps "
        "while the bank's `match_version` has not moved (`ledger/match_cache.py`). "
        "*Refreshed*: after one member changed their skills, the index refreshed from all the "
        "profiles (unchanged helpers reused) and the need ranked. *Rebuilt*: the index built "
        "from scratch and the need ranked, as every asking wave did before.",
        "",
        f"| members | kept p50 ms | kept p95 ms | kept p95 CPU ms | refreshed ms | rebuilt ms "
        f"| rebuilt / kept p95 | target p95 < {TARGET_MS:.0f} ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        met = "met" if r["kept_p95"] < TARGET_MS else "**NOT met**"
        lines.append(
            f"| {int(r['size']):,} | {r['kept_p50']:.2f} | {r['kept_p95']:.2f} | "
            f"{r['kept_cpu_p95']:.2f} | "
            f"{r['refreshed']:.0f} | {r['rebuilt']:.0f} | "
            f"{r['rebuilt'] / max(r['kept_p95'], 1e-6):,.0f}× | {met} |"
        )
    lines += [
        "",
        "Times are wall-clock on a machine shared with other work; *kept p95 CPU* is the "
        "process's own CPU time for the same rankings, which other work disturbs less.",
        "",
        "Refreshing still reads every profile from the database (not timed here): the version "
        "moves on with any change, so a bank whose members change their profiles all day "
        "refreshes about once per wave; the costly part, reading each helper's offers, is "
        "done again only for those who changed.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--needs", type=int, default=300, help="needs ranked per size (300)")
    parser.add_argument("--rebuilds", type=int, default=3, help="rebuilds timed per size (3)")
    parser.add_argument("--markdown", type=Path, help="also write the section here")
    parser.add_argument("--all-languages", action="store_true",
                        help="offers and needs in all six languages' words, not English only")
    args = parser.parse_args(argv)
    if args.all_languages:
        WORDS[:] = EVERY_LANGUAGE
    started = time.monotonic()
    rng = random.Random(7)
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        rows.append(measure(size, rng, args))
        r = rows[-1]
        print(f"{size:>7,} members: kept p50 {r['kept_p50']:.2f} ms p95 {r['kept_p95']:.2f} ms, "
              f"refreshed {r['refreshed']:.0f} ms, rebuilt {r['rebuilt']:.0f} ms",
              file=sys.stderr, flush=True)
    text = render(rows, args, time.monotonic() - started)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "matching.md").write_text(text)
    if args.markdown:
        args.markdown.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
