"""``timebank texts check``: what each language's texts still need (docs/TRANSLATING.md).

Lists ``conversations.catalogue.check()`` by language: entries not translated yet, stale ones
(the English changed since: the English is sent until a translator updates them), broken ones
(a placeholder or plural form wrong: the English is sent), and machine-drafted ones that no
speaker has reviewed yet. Exits with status 1 when a language has an untranslated, stale or
broken entry; machine-drafted entries and entries no longer used are only warnings.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import click

from conversations import catalogue

UNTRANSLATED = "untranslated"
STALE = "stale"
BROKEN = "broken"
DRAFTED = "machine-drafted"
UNUSED = "no longer used"
KINDS = (UNTRANSLATED, STALE, BROKEN, DRAFTED, UNUSED)
FAILING = {UNTRANSLATED, STALE, BROKEN}


@dataclass(frozen=True)
class Report:
    lines: list[str]
    failed: bool


def kind_of(finding: catalogue.Finding) -> str:
    problem = finding.problem
    if problem == "untranslated":
        return UNTRANSLATED
    if problem.startswith("stale"):
        return STALE
    if problem.startswith("machine-drafted"):
        return DRAFTED
    if problem.startswith("no longer used"):
        return UNUSED
    return BROKEN


def report(findings: Iterable[catalogue.Finding], languages: dict[str, str]) -> Report:
    """The findings for ``languages`` (code → name), one block a language, and a summary."""
    by_language: dict[str, list[catalogue.Finding]] = {code: [] for code in languages}
    for finding in findings:
        if finding.language in by_language:
            by_language[finding.language].append(finding)
    lines: list[str] = []
    totals: Counter[str] = Counter()
    for code, found in by_language.items():
        counts = Counter(kind_of(f) for f in found)
        totals += counts
        lines.append(f"{code} ({languages[code]}): " + _counts(counts))
        for finding in sorted(found, key=lambda f: (KINDS.index(kind_of(f)), f.key)):
            kind = kind_of(finding)
            detail = "" if finding.problem.startswith(kind) else f": {finding.problem}"
            lines.append(f"  {kind:15} {finding.key}{detail}")
    failed = any(totals[kind] for kind in FAILING)
    verdict = "needs work" if failed else ("OK, to review" if totals[DRAFTED] else "OK")
    plural = "s" if len(by_language) != 1 else ""
    lines.append(f"{len(by_language)} language{plural}: {_counts(totals)}. {verdict}")
    return Report(lines, failed)


def _counts(counts: Counter[str]) -> str:
    return ", ".join(f"{counts[kind]} {kind}" for kind in KINDS)


@click.group("texts")
def texts_group() -> None:
    """The texts the bank sends, in every language."""


@texts_group.command("check")
@click.option("--language", "code", help="Check one language only, by its code (e.g. bn).")
def texts_check(code: str | None) -> None:
    """List untranslated, stale, broken and machine-drafted texts in each language."""
    offered = {c: language.name for c, language in catalogue.languages().items()
               if c != catalogue.SOURCE}
    if code is not None:
        if code not in offered:
            known = ", ".join(sorted(offered)) or "none yet"
            raise click.BadParameter(f"no language {code!r} (languages: {known})",
                                     param_hint="--language")
        offered = {code: offered[code]}
    if not offered:
        click.echo("No languages besides English yet: see docs/TRANSLATING.md to add one.")
        return
    result = report(catalogue.check(), offered)
    for line in result.lines:
        click.echo(line)
    if result.failed:
        raise SystemExit(1)
