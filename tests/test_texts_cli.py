"""``timebank texts check``: findings by language, a summary, and an exit status for CI."""

from __future__ import annotations

from click.testing import CliRunner

from app.cli import main
from app.texts_cli import report
from conversations import catalogue
from conversations.catalogue import Finding

LANGUAGES = {"bn": "বাংলা", "cy": "Cymraeg"}


def test_untranslated_or_broken_entries_fail():
    result = report([Finding("bn", "balance", "untranslated"),
                     Finding("bn", "hours", "needs 2 plural forms, has 1"),
                     Finding("cy", "welcome", "machine-drafted, not yet reviewed")], LANGUAGES)
    assert result.failed
    assert result.lines[0] == ("bn (বাংলা): 1 untranslated, 0 stale, 1 broken, "
                               "0 machine-drafted, 0 no longer used")
    assert "  untranslated    balance" in result.lines
    assert "  broken          hours: needs 2 plural forms, has 1" in result.lines
    assert "  machine-drafted welcome" in result.lines
    assert result.lines[-1] == ("2 languages: 1 untranslated, 0 stale, 1 broken, "
                                "1 machine-drafted, 0 no longer used. needs work")


def test_a_stale_entry_fails_too_it_is_sent_in_english():
    stale = Finding("cy", "confirm_ask", "stale: the English has changed since it was translated")
    assert report([stale], LANGUAGES).failed


def test_machine_drafted_or_unused_entries_alone_are_only_warnings():
    result = report([Finding("cy", "welcome", "machine-drafted, not yet reviewed"),
                     Finding("cy", "old_text", "no longer used: the English text is gone")],
                    LANGUAGES)
    assert not result.failed
    assert result.lines[-1].endswith(". OK, to review")
    assert report([], LANGUAGES).lines[-1].endswith(". OK")


def test_one_language_only():
    result = report([Finding("bn", "balance", "untranslated")], {"cy": "Cymraeg"})
    assert not result.failed and len(result.lines) == 2


def test_the_command_checks_every_language_and_refuses_an_unknown_one():
    runner = CliRunner()
    result = runner.invoke(main, ["texts", "check"])
    others = [code for code in catalogue.languages() if code != catalogue.SOURCE]
    failing = any(f.problem == "untranslated" or not f.problem.startswith(
        ("machine-drafted", "no longer used")) for f in catalogue.check())
    assert result.exit_code == (1 if failing else 0), result.output
    for code in others:
        assert f"{code} (" in result.output
    unknown = runner.invoke(main, ["texts", "check", "--language", "xx"])
    assert unknown.exit_code == 2 and "no language 'xx'" in unknown.output
