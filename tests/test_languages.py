"""Languages (issue 11): what a bank offers, LANG, the question after JOIN, a broker setting a
member's language, and every text rendered in its recipient's language.

The five languages besides English are stood in for by tiny test catalogues (``[so] …``: the
English text marked with the language's code), so these tests say which language a text was
rendered in whatever the real translations say.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po
from sqlalchemy import select, update

from app import auth
from conversations import Facts, MemberFacts, State, catalogue, languages, step
from conversations.machine import LANGUAGE_QUESTION, Join, SetLanguage, for_others
from conversations.texts import Term, render
from ledger import banks, members
from ledger.models import AuditEntry, Bank, Member
from tests.helpers import join, ref_in

pytestmark = pytest.mark.every_language

OTHERS = ("bn", "so", "tr", "pl", "cy")
ALL = ("en", *OTHERS)
BROKER = "+447700900700"
PASSWORD = "correct horse battery"


def _test_po(code: str) -> str:
    """A catalogue for ``code`` translating every English text as ``[code] <English>``."""
    own, english_name = languages.NAMES[code]
    catalog = Catalog(locale=None)
    for key, entry in catalogue.english().entries.items():
        msgid: str | tuple[str, ...] = entry.forms if entry.plural else entry.forms[0]
        strings = tuple(f"[{code}] {form}" for form in entry.forms)
        catalog.add(msgid, strings if entry.plural else strings[0], context=key)
    body = io.BytesIO()
    write_po(body, catalog, omit_header=True, width=0)
    header = ('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n'
              '"Plural-Forms: nplurals=2; plural=(n != 1);\\n"\n'
              f'"X-Language-Name: {own}\\n"\n"X-Language-Aliases: {english_name}\\n"\n\n')
    return header + body.getvalue().decode("utf-8")


@pytest.fixture(scope="session")
def test_catalogues() -> list[tuple[str, str]]:
    return [(f"{code}.po", _test_po(code)) for code in OTHERS]


@pytest.fixture
def six(monkeypatch: pytest.MonkeyPatch, test_catalogues: list[tuple[str, str]]
        ) -> Iterator[None]:
    """Every language of the issue has a catalogue file (the test ones, in place of any real
    one): a bank that does not choose offers all six."""
    english = [(name, text) for name, text in catalogue._locale_files()
               if name == catalogue.TEMPLATE]
    monkeypatch.setattr(catalogue, "_locale_files",
                        lambda: iter(english + test_catalogues))
    catalogue.reload()
    yield
    monkeypatch.undo()
    catalogue.reload()


def in_(code: str, text: str) -> bool:
    """Whether ``text`` was rendered in ``code`` (a test catalogue's mark)."""
    return text.startswith(f"[{code}] ") if code != "en" else not re.match(r"\[\w\w\] ", text)


# --- Choosing, in the conversation core (no I/O) ---------------------------------------------

BANK = "Lambeth Time Bank"


def facts(language: str = "en", offered: tuple[str, ...] = ALL, status: str = "active",
          default: str = "en") -> Facts:
    return Facts(bank_name=BANK, languages=offered, default_language=default,
                 member=MemberFacts(id=1, name="Sam", status=status, language=language))


def stranger(offered: tuple[str, ...] = ALL) -> Facts:
    return Facts(bank_name=BANK, languages=offered)


def test_lang_alone_lists_the_choices_numbered_by_their_own_names(six):
    outcome = step(State(), facts(), "LANG")
    [reply] = outcome.replies
    assert reply.key == "language_choices" and not outcome.effects
    assert reply.params["choices"] == (
        "1 English, 2 বাংলা, 3 Soomaali, 4 Türkçe, 5 Polski, 6 Cymraeg")
    assert "LANG" in render(reply.key, **reply.params)


@pytest.mark.parametrize("words", ["LANG 3", "LANG Somali", "LANG Soomaali", "lang soomaali",
                                   "LANG so", "Language 3", "LANG 3.", "LANGUAGES Somali"])
def test_lang_chooses_by_number_or_either_name(six, words):
    outcome = step(State(), facts(), words)
    assert outcome.effects == [SetLanguage("so")]
    [reply] = outcome.replies
    assert reply.key == "language_set" and reply.params["lang"] == "Soomaali"


def test_the_numbers_follow_what_the_bank_offers(six):
    offered = ("en", "so", "cy")
    assert step(State(), facts(offered=offered), "LANG").replies[0].params["choices"] == (
        "1 English, 2 Soomaali, 3 Cymraeg")
    assert step(State(), facts(offered=offered), "LANG 3").effects == [SetLanguage("cy")]
    assert step(State(), facts(offered=offered), "LANG 4").replies[0].key == "language_unknown"


def test_a_language_the_bank_does_not_offer_is_named_and_not_chosen(six):
    outcome = step(State(), facts(offered=("en", "bn")), "LANG Polish")
    assert not outcome.effects
    [reply] = outcome.replies
    assert reply.key == "language_not_offered"
    assert reply.params["lang"] == "Polski" and reply.params["choices"] == "1 English, 2 বাংলা"


@pytest.mark.parametrize("words", ["LANG Klingon", "LANG 0", "LANG 7", "LANG 99999999999",
                                   "LANG #12 so", "LANG +447700900002 so"])
def test_lang_with_words_it_cannot_read_lists_the_choices(six, words):
    # Nor can a member set anyone else's language: only their own, by a number or a name.
    outcome = step(State(), facts(), words)
    assert not outcome.effects
    [reply] = outcome.replies
    assert reply.key == "language_unknown"
    assert "Soomaali" in str(reply.params["choices"])
    text = render(reply.key, **reply.params)
    assert "LANG" in text and "Sorry" in text


def test_choosing_the_language_one_has_changes_nothing(six):
    outcome = step(State(), facts(language="so"), "LANG 3")
    assert not outcome.effects and outcome.replies[0].key == "language_set"


@pytest.mark.parametrize("words", ["Lana", "Land", "Long", "Lang's garden"])
def test_words_like_lang_are_not_guessed_as_it(six, words):
    assert not any(isinstance(e, SetLanguage) for e in step(State(), facts(), words).effects)
    assert step(State(), facts(), words).replies[0].key not in ("language_choices",
                                                                "language_unknown")


def test_joining_a_bank_with_one_language_asks_no_question(six):
    outcome = step(State(), stranger(offered=("en",)), "JOIN Sam")
    assert outcome.replies[0].key == "joined" and outcome.state.question == "skills"


def test_joining_a_bank_with_several_asks_which_first(six):
    outcome = step(State(), stranger(), "JOIN Sam")
    assert outcome.effects == [Join("Sam")]
    assert outcome.state.question == LANGUAGE_QUESTION
    [reply] = outcome.replies
    assert reply.key == "join_language"
    assert State.from_json(outcome.state.to_json()).question == LANGUAGE_QUESTION


@pytest.mark.parametrize(("answer", "code"), [("3", "so"), ("Soomaali", "so"), ("Polish", "pl"),
                                              ("cymraeg", "cy"), ("LANG 2", "bn")])
def test_the_join_question_answered_by_number_or_name(six, answer, code):
    outcome = step(State(question=LANGUAGE_QUESTION), facts(), answer)
    assert outcome.effects == [SetLanguage(code)]
    assert outcome.replies[0].key == "joined" and outcome.state.question == "skills"


def test_skip_keeps_the_default_and_goes_on_to_the_questions(six):
    outcome = step(State(question=LANGUAGE_QUESTION), facts(), "SKIP")
    assert not outcome.effects
    assert outcome.replies[0].key == "joined" and outcome.state.question == "skills"
    pending = step(State(question=LANGUAGE_QUESTION), facts(status="pending"), "skip")
    assert pending.replies[0].key == "joined_pending"


def test_an_answer_that_is_no_language_asks_again(six):
    outcome = step(State(question=LANGUAGE_QUESTION), facts(), "gardening")
    assert not outcome.effects and outcome.state.question == LANGUAGE_QUESTION
    assert outcome.replies[0].key == "join_language_again"


def test_a_command_interrupts_the_language_question(six):
    outcome = step(State(question=LANGUAGE_QUESTION), facts(), "BALANCE")
    assert outcome.replies[0].key == "balance" and outcome.state.question is None


# --- Values in the recipient's language -------------------------------------------------------

def test_the_banks_own_words_in_a_value_are_written_in_each_recipients_language(six):
    fund = Term("community_fund")
    assert render("give_done", "en", hours="1", other=fund, balance="2 hours") != render(
        "give_done", "so", hours="1", other=fund, balance="2 hours")
    assert f"[so] {render('community_fund')}" in render("give_done", "so", hours="1",
                                                         other=fund, balance="2")
    # A link was all the member wrote: "help", in the language of the text it goes into.
    assert render("help_given", "so") in render("confirm_ask", "so", other="Ana", hours="1",
                                                 what=for_others("bit.ly/x"), ref=3)
    # A member's own words stay as they wrote them.
    assert "a lift to the clinic" in render("confirm_ask", "so", other="Ana", hours="1",
                                            what=for_others("a lift to the clinic"), ref=3)


# --- By text, on both backends ----------------------------------------------------------------


def bank_row(services) -> Bank:  # type: ignore[no-untyped-def]
    with services.db.reading() as session:
        bank = banks.bank_for_address(session, None)
        session.expunge(bank)
        return bank


def language_of(services, number: str) -> str:  # type: ignore[no-untyped-def]
    with services.db.reading() as session:
        return session.scalars(select(Member.language).where(Member.phone == number)).one()


def offer(services, codes: str | None, default: str = "en") -> None:  # type: ignore[no-untyped-def]
    with services.db.writing() as session:
        session.execute(update(Bank).values(languages=codes, default_language=default))
    services.bank_cache.clear()


def test_joining_with_one_language_offered_asks_nothing(six, services, make_phone):
    offer(services, "en")
    sam = make_phone("+447700900601")
    assert sam.reply("JOIN Sam").startswith("Welcome to Lambeth Time Bank, Sam! What could")
    assert language_of(services, sam.number) == "en"


def test_joining_with_several_asks_and_the_answer_is_kept(six, services, make_phone):
    sam = make_phone("+447700900601")
    ask = sam.reply("JOIN Sam")
    assert ask.startswith("Welcome, Sam! Which language?")
    assert "3 Soomaali" in ask and "বাংলা" in ask
    from conversations.gsm import segments
    assert segments(ask) <= 2
    welcome = sam.reply("3")
    assert in_("so", welcome) and "Welcome to Lambeth Time Bank, Sam!" in welcome
    assert language_of(services, sam.number) == "so"
    # The profile questions go on, in Somali.
    assert in_("so", sam.reply("gardening"))
    assert in_("so", sam.reply("SKIP"))
    assert in_("so", sam.reply("BALANCE"))


def test_joining_answered_by_name_or_skip(six, services, make_phone):
    ana, kemi = make_phone("+447700900602"), make_phone("+447700900603")
    ana.text("JOIN Ana")
    assert in_("pl", ana.reply("Polski"))
    assert language_of(services, ana.number) == "pl"
    kemi.text("JOIN Kemi")
    assert kemi.reply("SKIP").startswith("Welcome to Lambeth Time Bank, Kemi!")
    assert language_of(services, kemi.number) == "en"


def test_strangers_and_new_members_read_the_banks_default(six, services, make_phone):
    offer(services, "en,so,cy", default="cy")
    stranger = make_phone("+447700900609")
    assert in_("cy", stranger.reply("Hello"))
    ask = stranger.reply("JOIN Sam")
    assert in_("cy", ask) and "1 English, 2 Soomaali, 3 Cymraeg" in ask
    assert language_of(services, stranger.number) == "cy"
    assert in_("cy", stranger.reply("SKIP"))


def test_lang_by_text_changes_what_the_member_reads(six, services, make_phone):
    sam = join(make_phone("+447700900601"), "Sam")
    listed = sam.reply("LANG")
    assert "1 English, 2 বাংলা, 3 Soomaali, 4 Türkçe, 5 Polski, 6 Cymraeg" in listed
    done = sam.reply("LANG Somali")
    assert in_("so", done) and "Soomaali" in done
    assert language_of(services, sam.number) == "so"
    assert in_("so", sam.reply("BALANCE"))
    assert in_("en", sam.reply("LANG English"))
    assert language_of(services, sam.number) == "en"


def test_lang_with_a_language_not_offered_changes_nothing(six, services, make_phone):
    sam = join(make_phone("+447700900601"), "Sam")
    offer(services, "en,bn")
    told = sam.reply("LANG Welsh")
    assert "Cymraeg" in told and "1 English, 2 বাংলা" in told
    assert language_of(services, sam.number) == "en"


def test_two_members_in_two_languages_each_read_their_own(six, services, make_phone, outbox):
    """Ana (English) reports an hour she gave Sam (Somali): Ana's answer is in English, Sam's
    text asking him to confirm is in Somali, and Ana's words are shown as she wrote them."""
    sam = join(make_phone("+447700900601"), "Sam")
    ana = join(make_phone("+447700900602"), "Ana")
    sam.text("LANG 3")
    answer = ana.reply("DONE 1 Sam fixing the gate")
    assert in_("en", answer) and "Sam" in answer
    [ask] = outbox.to(sam.number)
    assert in_("so", ask) and "Ana" in ask and "fixing the gate" in ask
    # Sam confirms in Somali; Ana's receipt comes in English.
    assert in_("so", sam.reply(f"YES {ref_in(ask.removeprefix('[so] '))}"))
    [receipt] = outbox.to(ana.number)
    assert in_("en", receipt) and "Sam" in receipt


def test_a_helper_is_asked_in_their_own_language(six, services, make_phone, outbox):
    sam = join(make_phone("+447700900601"), "Sam", skills="gardening", area="Lambeth")
    ana = join(make_phone("+447700900602"), "Ana", area="Lambeth")
    sam.text("LANG Cymraeg")
    assert in_("en", ana.reply("NEED help with gardening"))
    [ask] = outbox.to(sam.number)
    assert in_("cy", ask) and "Ana" in ask and "help with gardening" in ask


@pytest.fixture
def broker(services):  # type: ignore[no-untyped-def]
    with services.db.writing() as session:
        bank = banks.bank_for_address(session, None)
        member, _ = members.make_broker(session, bank, BROKER, "Bea")
        member.password_hash = auth.hash_password(PASSWORD)
        return member.id


def test_a_brokers_alert_is_in_the_brokers_language(six, services, make_phone, outbox, broker,
                                                   cli):
    assert cli("bank", "set", "--require-approval").exit_code == 0
    assert cli("member", "language", f"#{broker}", "tr").exit_code == 0
    newcomer = make_phone("+447700900609")
    newcomer.text("JOIN Kemi")
    assert in_("en", newcomer.reply("SKIP"))
    [alert] = outbox.to(BROKER)
    assert in_("tr", alert) and "Kemi" in alert


# --- The command line -------------------------------------------------------------------------


def test_bank_set_languages_and_default(six, services, cli, make_phone):
    sam = join(make_phone("+447700900601"), "Sam")
    sam.text("LANG Polski")
    result = cli("bank", "set", "--languages", "en,bn,so", "--default-language", "so")
    assert result.exit_code == 0, result.output
    assert "Languages: English, বাংলা, Soomaali (en, bn, so), default so" in result.output
    bank = bank_row(services)
    assert bank.languages == "en,bn,so" and bank.default_language == "so"
    # Sam's Polish is no longer offered: Sam reads the default now.
    assert language_of(services, sam.number) == "so"
    listed = cli("bank", "list").output
    assert "languages en, bn, so (default so)" in listed
    assert cli("bank", "set", "--languages", "all").exit_code == 0
    assert bank_row(services).languages is None
    assert "en, bn, so, tr, pl, cy (default so)" in cli("bank", "list").output
    with services.db.reading() as session:
        assert session.scalars(select(AuditEntry).where(
            AuditEntry.action == "bank.languages")).all()


@pytest.mark.parametrize(("args", "error"), [
    (["--languages", "en,xx"], "no catalogue file for xx"),
    (["--languages", ""], "at least one"),
    (["--languages", "en,bn", "--default-language", "so"], "must be one the bank offers"),
    (["--default-language", "xx"], "no catalogue file for 'xx'"),
    (["--languages", "bn,so"], "would no longer be offered"),
])
def test_bank_set_refuses_what_it_cannot_offer(six, services, cli, args, error):
    result = cli("bank", "set", *args)
    assert result.exit_code != 0 and error in result.output, result.output
    bank = bank_row(services)
    assert bank.languages is None and bank.default_language == "en"


def test_a_default_language_alone_must_be_offered(six, services, cli):
    assert cli("bank", "set", "--languages", "en,so").exit_code == 0
    assert cli("bank", "set", "--default-language", "so").exit_code == 0
    assert cli("bank", "set", "--default-language", "cy").exit_code != 0
    assert bank_row(services).default_language == "so"


def test_a_broker_sets_a_members_language_at_the_command_line(six, services, cli, make_phone):
    sam = join(make_phone("+447700900601"), "Sam")
    result = cli("member", "language", sam.number, "Somali")
    assert result.exit_code == 0 and "Sam reads texts in Soomaali (so)." in result.output
    assert language_of(services, sam.number) == "so"
    assert in_("so", sam.reply("BALANCE"))
    cli("bank", "set", "--languages", "en,so")
    refused = cli("member", "language", sam.number, "cy")
    assert refused.exit_code != 0 and "offers en, so" in refused.output
    assert language_of(services, sam.number) == "so"
    with services.db.reading() as session:
        [entry] = session.scalars(select(AuditEntry).where(
            AuditEntry.action == "member.language")).all()
        assert entry.detail == "so" and entry.via == "cli"


def test_the_command_line_names_the_bank_a_member_is_in(six, services, cli, make_phone):
    sam = join(make_phone("+447700900601"), "Sam")
    with services.db.writing() as session:
        banks.add_bank(session, "Hackney Time Bank", addresses=["+447700900555"])
    result = cli("member", "language", sam.number, "so", "--bank", "Hackney Time Bank")
    assert result.exit_code != 0
    assert language_of(services, sam.number) == "en"


# --- The dashboard ----------------------------------------------------------------------------


def _signed_in(app, phone: str = BROKER):  # type: ignore[no-untyped-def]
    from tests.test_dashboard import sign_in

    client = app.test_client()
    assert sign_in(client, phone=phone).status_code == 302
    return client


def test_a_broker_sets_a_members_language_on_the_dashboard(six, app, services, broker,
                                                          make_phone):
    from tests.test_dashboard import post, text_of

    sam = join(make_phone("+447700900601"), "Sam")
    with services.db.reading() as session:
        sam_id = members.find_member(session, bank_row(services).id, sam.number).id
    client = _signed_in(app)
    page = client.get(f"/dashboard/members/{sam_id}")
    assert "Soomaali (so)" in text_of(page) and "বাংলা (bn)" in text_of(page)
    done = post(client, f"/dashboard/members/{sam_id}/language", {"language": "so"})
    assert "Sam reads texts in Soomaali." in text_of(done)
    assert language_of(services, sam.number) == "so"
    offer(services, "en,so")
    refused = post(client, f"/dashboard/members/{sam_id}/language", {"language": "cy"})
    assert "doesn't offer that language" in text_of(refused)
    assert language_of(services, sam.number) == "so"
    with services.db.reading() as session:
        [entry] = session.scalars(select(AuditEntry).where(
            AuditEntry.action == "member.language")).all()
        assert entry.broker_member_id == broker and entry.via == "web"


def test_nobody_else_sets_a_members_language_on_the_dashboard(six, app, services, broker,
                                                              make_phone):
    from tests.test_dashboard import csrf

    sam = join(make_phone("+447700900601"), "Sam")
    with services.db.writing() as session:
        sam_id = members.find_member(session, bank_row(services).id, sam.number).id
        other = banks.add_bank(session, "Hackney Time Bank", addresses=["+447700900555"])
        stranger, _ = members.make_broker(session, other, "+447700900777", "Zed")
        stranger.password_hash = auth.hash_password(PASSWORD)
    # Not signed in: sent to sign in, nothing changed.
    anyone = app.test_client()
    token = csrf(anyone.get("/dashboard/login").data)
    response = anyone.post(f"/dashboard/members/{sam_id}/language",
                           data={"csrf_token": token, "language": "so"})
    assert response.status_code in (302, 303)
    # A broker of another bank: no such member there.
    client = _signed_in(app, "+447700900777")
    token = csrf(client.get("/dashboard/").data)
    response = client.post(f"/dashboard/members/{sam_id}/language",
                           data={"csrf_token": token, "language": "so"})
    assert response.status_code == 404
    # Without the form's token: refused.
    own = _signed_in(app)
    assert own.post(f"/dashboard/members/{sam_id}/language",
                    data={"language": "so"}).status_code in (400, 403)
    assert language_of(services, sam.number) == "en"
