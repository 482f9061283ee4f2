"""Forgiving reading: typos and short forms, command words in each language, digits in any
script, "did you mean" asked before anything changes, and needs written as sentences.

Pure tests of ``parse`` and ``step`` first; then the same flows through the real webhook.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conversations import Facts, MemberFacts, Outcome, State, catalogue, commands, step
from conversations.commands import (
    ALIASES,
    ANY_LANGUAGE,
    CARRIER_WORDS,
    MISSPELLINGS,
    build_table,
    fold,
    parse,
    table,
)
from conversations.forgiving import looks_like_need
from conversations.machine import (
    QUESTIONS,
    Answer,
    Give,
    GoAway,
    Join,
    Leave,
    OptOut,
    PostItem,
    ReachPerson,
    ReportHours,
    ReportOnRef,
    SetProfile,
    ShowAway,
    ShowMine,
    ShowStatement,
)
from conversations.texts import render
from tests.helpers import Phone, join

BANK = "Lambeth Time Bank"
ASKS = "asks"  # the bank asks "Did you mean …? Reply 1 for yes"


def member(language: str = "en", member_id: int = 7, **kwargs: object) -> Facts:
    facts = MemberFacts(id=member_id, name="Sam", status="active", language=language,
                        **kwargs)  # type: ignore[arg-type]
    return Facts(bank_name=BANK, member=facts)


def keys(outcome: Outcome) -> list[str]:
    return [reply.key for reply in outcome.replies]


def only(outcome: Outcome) -> str:
    (reply,) = outcome.replies
    return render(reply.key, **reply.params)


# --- Misspellings and short forms --------------------------------------------------------------

# (text, what it is read as): a command acted on at once, ASKS ("Did you mean …?"), or None.
MISSPELT: list[tuple[str, str | None]] = [
    # Read at once: they only show something (or join, as typos of JOIN always did).
    ("ballance", "BALANCE"), ("balence", "BALANCE"), ("balanse", "BALANCE"),
    ("blance", "BALANCE"), ("balnce", "BALANCE"), ("ballence", "BALANCE"),
    ("balanc", "BALANCE"), ("bakance", "BALANCE"), ("balamce", "BALANCE"),
    ("blanace", "BALANCE"), ("balans", "BALANCE"), ("blnc", "BALANCE"), ("bal", "BALANCE"),
    ("Balance??", "BALANCE"), ("balancr", "BALANCE"), ("credits", "BALANCE"),
    ("profle", "PROFILE"), ("profil", "PROFILE"), ("proflie", "PROFILE"),
    ("porfile", "PROFILE"), ("prfile", "PROFILE"), ("profiel", "PROFILE"),
    ("statment", "STATEMENT"), ("statemnt", "STATEMENT"), ("stament", "STATEMENT"),
    ("statemant", "STATEMENT"), ("statemet", "STATEMENT"), ("stmnt", "STATEMENT"),
    ("stmt", "STATEMENT"), ("histroy", "STATEMENT"),
    ("jion", "JOIN"), ("joinn", "JOIN"), ("JOIM", "JOIN"),
    ("hlep", "MENU"), ("halp", "MENU"), ("hepl", "MENU"), ("helo", "MENU"), ("menue", "MENU"),
    ("meun", "MENU"), ("mneu", "MENU"),
    ("myposts", "MINE"),
    # Asked first: acting on them would change the record.
    ("offr", ASKS), ("ofer", ASKS), ("offfer", ASKS), ("offre", ASKS), ("ofr", ASKS),
    ("offet", ASKS), ("ned", ASKS), ("nedd", ASKS), ("neeed", ASKS), ("nede", ASKS),
    ("donr", ASKS), ("dne", ASKS), ("doen", ASKS), ("dun", ASKS), ("giv", ASKS),
    ("gve", ASKS), ("giev", ASKS), ("clsoe", ASKS), ("clos", ASKS), ("colse", ASKS),
    ("renw", ASKS), ("renwe", ASKS), ("tlak", ASKS), ("talkk", ASKS), ("offers", ASKS),
    ("closee", ASKS), ("reneww", ASKS),
    # Not commands: carrier words are never guessed, nor LEAVE, BACK, OK, YES, NO, and
    # everyday words one letter from a command are words.
    ("stp", None), ("stopp", None), ("sotp", None), ("STOOP", None), ("unsubscibe", None),
    ("canel", None), ("qiut", None), ("hepl me", None), ("leeve", None), ("leav", None),
    ("Reading", None), ("Weaving", None), ("bakc", None), ("yse", None), ("noo", None),
    ("dont", None), ("gone", None), ("five", None), ("feed", None), ("none", None),
    ("seed", None), ("chose", None), ("nxet", None), ("İNFO", None), ("ınfo", None),
]


def test_the_table_has_at_least_fifty_misspellings():
    assert len(MISSPELT) >= 50
    assert len({text.lower() for text, _ in MISSPELT}) == len(MISSPELT)


@pytest.mark.parametrize(("text", "expected"), MISSPELT)
def test_misspellings_and_short_forms(text, expected):
    command = parse(text)
    if expected is None:
        assert command.name is None, command
    elif expected == ASKS:
        assert command.name is not None and command.uncertain, command
    else:
        assert command.name == expected and not command.uncertain, command


@pytest.mark.parametrize(("text", "expected"), [(t, e) for t, e in MISSPELT if e == ASKS])
def test_an_uncertain_guess_is_asked_about_and_nothing_changes(text, expected):
    outcome = step(State(), member(), text)
    assert outcome.effects == []
    assert keys(outcome) == ["did_you_mean"]
    assert only(outcome).startswith(f"Did you mean {parse(text).name}")
    assert outcome.state.confirm == parse(text).name and outcome.state.confirm_for == 7


def test_no_misspelling_is_a_carrier_word_or_a_command_word():
    exact = table().exact
    for word, command in MISSPELLINGS.items():
        assert word not in CARRIER_WORDS and word not in exact, word
        assert command in ALIASES, word
        assert command not in ("LEAVE", "BACK", "OK", "YES", "NO", "SKIP"), word


def test_hlep_is_the_menu_never_help():
    # Twilio answers HELP itself, never "hlep": the bank does, with the menu (which also says
    # how to reach a person). With words after it, it is words, as "Help with shopping" is.
    outcome = step(State(), member(), "hlep")
    assert keys(outcome) == ["menu_member"] and outcome.effects == []
    assert parse("hlep with my shopping").name is None
    quiet = Facts(bank_name=BANK, member=member().member, carrier_answers_keywords=True)
    assert keys(step(State(), quiet, "hlep")) == ["menu_member"]
    assert step(State(), quiet, "HELP").replies == []


# --- Near misses while a question waits --------------------------------------------------------

QUESTION_NAMES = [name for name, _, _ in QUESTIONS]
ASKED_AGAIN = {"skills": "ask_skills_again", "area": "ask_area",
               "availability": "ask_availability"}

# (answer, the reply that comes first when it is read as a command, or None for an answer).
NEAR_MISSES: list[tuple[str, str | None]] = [
    ("balence", "balance"), ("ballance", "balance"), ("Balanse!", "balance"),
    ("profle", "profile"), ("statment", None),  # STATEMENT is shown by the web layer
    ("hlep", "menu_member"),
    ("balence please", None), ("ballance and gardening", None),
    ("offr", None), ("ned", None), ("donr", None), ("Fine", None), ("Reading", None),
    ("Gardening", None), ("Weaving", None), ("Nine", None), ("stp", None),
    ("leeve", None), ("Cooking and lifts", None), ("Brixton", None),
]


@pytest.mark.parametrize("question", QUESTION_NAMES)
@pytest.mark.parametrize(("text", "first"), NEAR_MISSES)
def test_a_one_word_near_miss_is_the_command_and_the_question_is_asked_again(
        question, text, first):
    outcome = step(State(question=question), member(), text)
    near = parse(text).name in ("BALANCE", "PROFILE", "STATEMENT", "MENU") and (
        parse(text).single_word)
    if near:
        assert not any(isinstance(e, SetProfile) for e in outcome.effects), text
        assert keys(outcome)[-1] == ASKED_AGAIN[question]
        if first is not None:
            assert keys(outcome)[0] == first
        assert outcome.state.question == question  # still waiting for its answer
    else:
        field_name = dict((n, f) for n, f, _ in QUESTIONS)[question]
        assert SetProfile(field_name, text) in outcome.effects, text
        assert not any(isinstance(e, OptOut | Leave) for e in outcome.effects)


def test_balence_right_after_join_shows_the_balance_then_asks_again():
    joined = step(State(), Facts(bank_name=BANK), "JOIN Sam")
    assert joined.effects == [Join("Sam")]
    outcome = step(joined.state, member(balance_minutes=90), "balence")
    assert [render(r.key, **r.params) for r in outcome.replies] == [
        "Balance: 1.5 hours. Every hour you give earns an hour of help",
        "What could you help neighbours with, Sam? e.g. shopping, gardening, a chat. "
        "Reply with a few words, or SKIP",
    ]
    assert step(outcome.state, member(), "Gardening").effects == [
        SetProfile("skills", "Gardening")]


# --- Did you mean: accepted, declined, ignored, and walked round --------------------------------

def test_did_you_mean_accepted_with_1_does_what_was_meant():
    asked = step(State(), member(), "offr lifts to the shops")
    assert only(asked) == ("Did you mean OFFER lifts to the shops? Reply 1 for yes, or send your"
                           " message again")
    for yes in ("1", "1.", " 1 ", "১", "Yes", "yes please", "Y"):
        done = step(asked.state, member(), yes)
        assert done.effects == [PostItem("offer", "lifts to the shops")], yes
        assert done.state.confirm is None


def test_did_you_mean_done_records_only_after_1():
    asked = step(State(), member(), "donr 2 Ana gardening")
    assert asked.effects == []
    assert step(asked.state, member(), "1").effects == [ReportHours(120, "Ana gardening")]


@pytest.mark.parametrize("no", ["2", "no", "NO", "No thanks", "n"])
def test_did_you_mean_declined_does_nothing(no):
    asked = step(State(), member(), "ned a lift")
    declined = step(asked.state, member(), no)
    assert declined.effects == [] and keys(declined) == ["did_you_mean_declined"]
    assert declined.state == State()


def test_did_you_mean_ignored_lapses_and_the_text_is_read_as_usual():
    asked = step(State(), member(balance_minutes=60), "offr lifts")
    other = step(asked.state, member(balance_minutes=60), "BALANCE")
    assert only(other).startswith("Balance: 1 hour") and other.state == State()
    # The 1 that comes later confirms nothing.
    assert step(other.state, member(), "1").effects == []


def test_a_lone_yes_while_a_question_waits_never_confirms_anything_else():
    # "yes" to "Did you mean OFFER?" must not be YES alone, which confirms the one request
    # waiting for this member (hours someone says they gave).
    asked = step(State(), member(), "offr lifts")
    outcome = step(asked.state, member(), "yes")
    assert not any(isinstance(e, Answer) for e in outcome.effects)
    assert outcome.effects == [PostItem("offer", "lifts")]
    declined = step(asked.state, member(), "no")
    assert not any(isinstance(e, Answer) for e in declined.effects)


def test_did_you_mean_belongs_to_the_member_who_was_asked():
    # Another member cannot reply 1 to a question asked of someone else: however the state
    # came to hold it (a shared phone, a crafted state), nothing is done.
    asked = step(State(), member(), "donr 2 Ana")
    for text in ("1", "yes"):
        # (A lone YES is still the other member's own answer to their own requests.)
        outcome = step(asked.state, member(member_id=8), text)
        assert not any(isinstance(e, ReportHours) for e in outcome.effects), text
        assert outcome.state.confirm is None
    crafted = State(confirm="GIVE 5 Bob", confirm_for=8)
    assert step(crafted, member(), "1").effects == []


def test_did_you_mean_on_a_shared_phone_is_not_confirmed_by_the_other_person():
    sam = MemberFacts(id=7, name="Sam", status="active")
    ann = MemberFacts(id=8, name="Ann", status="active")
    facts = Facts(bank_name=BANK, member=sam, sharing=(sam, ann))
    asked = step(State(speaker=7), facts, "donr 2 Ana")
    assert keys(asked) == ["did_you_mean"] and asked.state.speaker == 7
    switched = step(asked.state, facts, "SWITCH")
    assert switched.state.confirm is None
    chose = step(switched.state, Facts(bank_name=BANK, sharing=(sam, ann)), "2")
    as_ann = Facts(bank_name=BANK, member=ann, sharing=(sam, ann))
    outcome = step(chose.state, as_ann, "1")
    assert not any(isinstance(e, ReportHours) for e in outcome.effects)


def test_a_pending_did_you_mean_survives_json_and_rejects_junk():
    state = State(confirm="OFFER lifts", confirm_for=7)
    assert State.from_json(state.to_json()) == state
    assert not state.empty
    for junk in ('{"confirm": "GIVE 5 Bob"}', '{"confirm": 5, "confirm_for": 7}',
                 '{"confirm": "GIVE 5 Bob", "confirm_for": true}',
                 '{"confirm": "GIVE 5 Bob", "confirm_for": -1}'):
        assert State.from_json(junk).confirm is None, junk


def test_broker_commands_are_not_asked_about_for_members():
    outcome = step(State(), member(), "aprove 07700900123")
    assert "did_you_mean" not in keys(outcome) and outcome.effects == []


def test_talk_and_care_words_are_never_held_back_by_a_question():
    outcome = step(State(), member(), "tlak, I need to talk to someone")
    assert any(isinstance(e, ReachPerson) for e in outcome.effects)


# --- A need written as a sentence ---------------------------------------------------------------

NEEDS = [
    "can someone help me with my shopping on friday",
    "Could anyone give me a lift to the clinic on Tuesday?",
    "I need a lift to the hospital next week",
    "Is anyone able to walk my dog while I'm in hospital",
    "looking for someone to fix my fence please",
    "hi, can somebody help me move a wardrobe on saturday",
]
NOT_NEEDS = [
    "I helped Ana with her shopping on friday",
    "Thanks for your help on friday, it was lovely",
    "can someone tell me my balance please",
    "My neighbour can help me with shopping",
    "I don't need any help at the moment thanks",
    "can someone help",  # too short to post
    "What time is the seed swap on saturday",
    "I need to change my area to Brixton",
]


@pytest.mark.parametrize("text", NEEDS)
def test_a_request_in_words_is_offered_as_a_need_and_posted_after_1(text):
    assert looks_like_need(text)
    asked = step(State(), member(), text)
    assert asked.effects == [] and keys(asked) == ["need_in_words"]
    assert "Reply 1 to ask neighbours for it as a NEED" in only(asked)
    posted = step(asked.state, member(), "1")
    assert posted.effects == [PostItem("need", text)]
    # Declined or ignored: never posted.
    assert step(asked.state, member(), "2").effects == []
    assert step(asked.state, member(), "hello there").effects == []


@pytest.mark.parametrize("text", NOT_NEEDS)
def test_an_ordinary_sentence_is_not_a_need(text):
    assert not looks_like_need(text)
    outcome = step(State(), member(), text)
    assert "need_in_words" not in keys(outcome)
    assert not any(isinstance(e, PostItem) for e in outcome.effects)


def test_a_member_waiting_for_welcome_is_not_offered_a_need():
    facts = Facts(bank_name=BANK, member=MemberFacts(id=7, name="Sam", status="pending"))
    outcome = step(State(), facts, NEEDS[0])
    assert "need_in_words" not in keys(outcome) and outcome.effects == []


def test_wanting_a_person_is_not_a_need():
    outcome = step(State(), member(), "can someone call me about my shopping please")
    assert any(isinstance(e, ReachPerson) for e in outcome.effects)


# --- HELP and MENU ------------------------------------------------------------------------------

def test_help_says_what_the_bank_is_and_menu_what_to_send():
    about = only(step(State(), member(), "HELP"))
    assert "1 hour given = 1 hour back" in about and "TALK" in about
    menu = only(step(State(), member(), "MENU"))
    assert menu != about
    for command in ("NEED", "OFFER", "DONE", "GIVE", "BALANCE", "STATEMENT", "MINE", "TALK",
                    "LEAVE"):
        assert command in menu
    assert keys(step(State(), member(), "INFO")) == ["about_member"]
    broker = Facts(bank_name=BANK, member=MemberFacts(id=1, name="Bea", status="active",
                                                      role="broker"))
    assert keys(step(State(), broker, "MENU")) == ["help_broker"]
    assert keys(step(State(), Facts(bank_name=BANK), "HELP")) == ["help_stranger"]


# --- Numbers in any script ----------------------------------------------------------------------

@pytest.mark.parametrize(("text", "effect"), [
    ("YES ১৭", Answer(17, True)),
    ("NO ১৭", Answer(17, False)),
    ("YES ١٧", Answer(17, True)),
    ("DONE ১.৫ Ana", ReportHours(90, "Ana")),
    ("DONE ৪২ ২", ReportOnRef(42, 120)),
    ("DONE ৪২ ১.৫", ReportOnRef(42, 90)),
    ("AWAY ৩ weeks", GoAway("3 weeks")),
    ("GIVE ١٫٥ Ana", Give(90, "Ana")),
])
def test_numbers_in_bengali_and_other_digits_are_read(text, effect):
    assert step(State(), member(language="bn"), text).effects == [effect]


def test_a_bengali_reference_is_ascii_in_the_command():
    assert parse("YES ১৭").args == "17"
    assert commands.ascii_digits("০১২৩৪৫৬৭৮৯") == "0123456789"


# --- Command words in each language, from the catalogue ----------------------------------------

def _language(code: str, words: dict[str, str]) -> catalogue.Language:
    english = catalogue.english()
    language = catalogue.Language(code=code, name=code, aliases=(),
                                  plural_forms=english.plural_forms, nplurals=2,
                                  plural=english.plural)
    for command, listed in words.items():
        key = f"command_{command.lower()}"
        language.entries[key] = catalogue.Entry(key=key, forms=(listed,), source=command)
    return language


FAKE = {
    "tr": {"BALANCE": "BAKİYE, BAKIYE", "JOIN": "KATIL", "YES": "EVET", "NO": "HAYIR",
           "NEED": "İHTİYAÇ, IHTIYAC",
           "MENU": "MENÜ"},
    "pl": {"BALANCE": "SALDO", "JOIN": "DOŁĄCZ, DOLACZ", "YES": "TAK", "NO": "NIE",
           "OFFER": "OFERTA"},
    "bn": {"BALANCE": "ব্যালেন্স, বাকি", "JOIN": "যোগ", "YES": "হ্যাঁ", "NEED": "দরকার"},
    "so": {"BALANCE": "HADHAA", "JOIN": "KU BIIR, BIIR", "YES": "HAA"},
    "cy": {"BALANCE": "BALANS", "JOIN": "YMUNO", "YES": "IE", "NO": "NA"},
}


@pytest.fixture
def languages(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, catalogue.Language]]:
    """The catalogue with command words for each offered language (the .po files may not
    have them yet; their own words are checked by the collision test below)."""
    found = dict(catalogue.languages())
    for code, words in FAKE.items():
        found[code] = _language(code, words)
    monkeypatch.setattr(catalogue, "languages", lambda: found)
    catalogue.reload()
    yield found
    monkeypatch.undo()
    catalogue.reload()


@pytest.mark.parametrize(("language", "text", "command"), [
    ("tr", "bakiye", "BALANCE"), ("tr", "BAKİYE", "BALANCE"), ("tr", "Bakıye", "BALANCE"),
    ("tr", "bakİye", "BALANCE"), ("tr", "BAKIYE?", "BALANCE"), ("tr", "bakye", "BALANCE"),
    ("tr", "ihtiyaç", "NEED"), ("tr", "İhtiyaç", "NEED"), ("tr", "IHTIYAC", "NEED"),
    ("tr", "menü", "MENU"), ("tr", "BALANCE", "BALANCE"),
    ("pl", "saldo", "BALANCE"), ("pl", "dołącz Ola", "JOIN"), ("pl", "dolacz Ola", "JOIN"),
    ("pl", "tak 17", "YES"), ("pl", "oferta", "OFFER"), ("pl", "salod", "BALANCE"),
    ("bn", "ব্যালেন্স", "BALANCE"), ("bn", "বাকি", "BALANCE"), ("bn", "যোগ রহিম", "JOIN"),
    ("bn", "হ্যাঁ ১৭", "YES"), ("bn", "JOIN Rahim", "JOIN"),
    ("so", "hadhaa", "BALANCE"), ("so", "biir Cali", "JOIN"), ("so", "haa 17", "YES"),
    ("cy", "balans", "BALANCE"), ("cy", "ymuno Dafydd", "JOIN"), ("cy", "ie 17", "YES"),
])
def test_command_words_in_each_language(languages, language, text, command):
    assert parse(text, language).name == command
    assert parse(text, ANY_LANGUAGE).name == command  # someone not yet a member


def test_a_language_word_works_only_for_its_speakers_and_strangers(languages):
    assert parse("saldo", "tr").name is None
    assert parse("saldo", "en").name is None
    assert parse("saldo", "pl").name == "BALANCE"


def test_a_bengali_word_keeps_its_vowel_signs():
    assert commands._word("ব্যালেন্স?") == "ব্যালেন্স"
    assert commands._word("বাকি") == "বাকি"


def test_a_member_in_their_language_sees_their_balance_and_answers_with_their_digits(languages):
    facts = member(language="bn", balance_minutes=60)
    assert only(step(State(), facts, "বাকি")).startswith(("Balance", "ব"))
    assert step(State(), facts, "হ্যাঁ ১৭").effects == [Answer(17, True)]
    assert step(State(), member(language="tr"), "EVET 17").effects == [Answer(17, True)]


def test_a_stranger_joins_in_any_language(languages):
    assert step(State(), Facts(bank_name=BANK), "যোগ রহিম").effects == [Join("রহিম")]
    assert step(State(), Facts(bank_name=BANK), "KATIL Ayşe").effects == [Join("Ayşe")]


def test_turkish_dotted_and_dotless_i_fold_to_i():
    assert fold("İ") == fold("i") == fold("ı") == fold("I") == "I"
    assert fold("BAKİYE") == fold("bakıye") == "BAKIYE"
    # English words written on a Turkish keyboard still work.
    assert parse("JOİN Ayşe").name == "JOIN"
    assert parse("profıle").name == "PROFILE"


def test_a_word_two_commands_claim_is_read_as_neither_and_reported():
    found = {"pl": _language("pl", {"NO": "NIE"}), "tr": _language("tr", {"NEED": "NIE"})}
    words = build_table(("pl", "tr"), languages=found)  # type: ignore[arg-type]
    assert "NIE" not in words.exact
    assert words.collisions == ("NIE: NEED, NO",)
    assert build_table(("pl",), languages=found).exact["NIE"] == "NO"  # type: ignore[arg-type]
    # An English word for another command collides too, and carrier words are refused.
    clash = {"cy": _language("cy", {"NEED": "BALANCE", "TALK": "HELP"})}
    words = build_table(("cy",), languages=clash)  # type: ignore[arg-type]
    assert "BALANCE" not in words.exact and "BALANCE: BALANCE, NEED" in words.collisions
    assert "cy:HELP" in words.collisions and "HELP" not in words.exact


def test_lang_works_through_each_language_once_it_is_a_command():
    aliases = {**ALIASES, "LANG": ("LANGUAGE",)}
    found = {"pl": _language("pl", {"LANG": "JĘZYK"}), "cy": _language("cy", {"LANG": "IAITH"})}
    words = build_table(("pl", "cy"), aliases, found)  # type: ignore[arg-type]
    assert words.exact["JEZYK"] == words.exact["IAITH"] == words.exact["LANG"] == "LANG"
    assert not words.collisions


def test_the_catalogue_has_no_word_two_commands_claim():
    # Fails loudly when a language file lists a word that another command (in English or in
    # any other language) already means, or a carrier word.
    codes = tuple(catalogue.languages())
    for code in codes:
        assert build_table((code,)).collisions == (), code
    assert build_table(codes).collisions == ()
    assert table(ANY_LANGUAGE).collisions == ()


# --- Through the webhook -----------------------------------------------------------------------

def test_did_you_mean_through_the_webhook(phone: Phone, services):
    join(phone, "Sam")
    assert phone.reply("offr lifts to the shops") == (
        "Did you mean OFFER lifts to the shops? Reply 1 for yes, or send your message again")
    # Waits minutes, not the days a dialog may: and sealed, as it holds the member's words.
    keys_ = services.redis.keys("tb:session:*")
    assert len(keys_) == 1
    assert 0 < services.redis.ttl(keys_[0]) <= 15 * 60
    assert b"lifts" not in services.redis.get(keys_[0])
    phone.text("1")
    assert "lifts to the shops" in phone.reply("MINE")
    # Declined: nothing posted.
    assert phone.reply("ned a lift").startswith("Did you mean NEED a lift?")
    assert "did nothing" in phone.reply("2")
    assert "a lift" not in phone.reply("MINE")


def test_another_number_cannot_answer_someone_elses_did_you_mean(make_phone):
    sam = join(make_phone("+447700900001"), "Sam")
    ann = join(make_phone("+447700900002"), "Ann")
    assert sam.reply("ned a lift to the clinic").startswith("Did you mean NEED")
    assert "didn't understand" in ann.reply("1")
    assert sam.reply("MINE").startswith("You have no")


def test_a_need_in_words_through_the_webhook(phone: Phone):
    join(phone, "Sam")
    asked = phone.reply("can someone help me with my shopping on friday")
    assert asked == ("It sounds like you need \"can someone help me with my shopping...\". "
                     "Reply 1 to ask neighbours for it as a NEED, or send something else")
    phone.text("1")
    assert "1 need: can someone help me with my" in phone.reply("MINE")
    # An ordinary sentence is not posted, nor offered as a need.
    said = phone.reply("I helped Ana with her shopping on friday")
    assert "didn't understand" in said and "Reply 1" not in said


# --- Walking round it: no typo changes the record without the member's own 1 --------------------

_SAFE_EFFECTS = (ShowStatement, ShowMine, ShowAway, ReachPerson)


def _edits(word: str) -> set[str]:
    """Every spelling one keystroke away: a letter dropped, doubled, swapped or changed."""
    letters = "aeiouynmrdtslkc"
    found = {word[:i] + word[i + 1:] for i in range(len(word))}
    found |= {word[:i] + word[i] + word[i:] for i in range(len(word))}
    found |= {word[:i] + word[i + 1] + word[i] + word[i + 2:] for i in range(len(word) - 1)}
    found |= {word[:i] + c + word[i + 1:] for i in range(len(word)) for c in letters}
    return found - {word}


@pytest.mark.parametrize("command", sorted(ALIASES))
@pytest.mark.parametrize("rest", ["", " 2 Ana gardening", " 17", " lifts to the shops"])
def test_no_typo_of_a_command_changes_anything_without_a_reply_of_1(command, rest):
    for typo in sorted(_edits(command.lower())):
        text = typo + rest
        read = parse(text)
        if read.name is not None and not read.guessed:
            continue  # a command's own word ("gave" is DONE, "me" PROFILE), not a typo
        outcome = step(State(), member(), text)
        changes = [e for e in outcome.effects if not isinstance(e, _SAFE_EFFECTS)]
        assert changes == [], (text, outcome.effects)
        if outcome.state.confirm is not None:
            assert outcome.state.confirm_for == 7 and keys(outcome) == ["did_you_mean"]


def test_did_you_mean_is_answered_with_yes_or_no_in_the_members_language(languages):
    for language, yes, no in (("tr", "evet", "hayır"), ("bn", "হ্যাঁ", "২"), ("pl", "Tak!", "nie")):
        facts = member(language=language)
        asked = step(State(), facts, "offr lifts")
        assert step(asked.state, facts, yes).effects == [PostItem("offer", "lifts")], language
        declined = step(asked.state, facts, no)
        assert declined.effects == [] and keys(declined) == ["did_you_mean_declined"], language
