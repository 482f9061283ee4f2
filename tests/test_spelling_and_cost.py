"""Spelling and cost: a few letters outside GSM-7 never double what a text costs.

A text is sent exactly as written unless writing its letters outside GSM-7 in their nearest
GSM-7 form (Zoë → Zoe, Ayşe Yılmaz → Ayse Yilmaz) makes it cheaper
(``conversations.gsm.cheapest``, docs/TRANSLATING.md). That is applied where a body is fixed
for sending (the outbound row, a broadcast, the webhook's TwiML reply); the member's own data
and the dashboard keep the exact spelling.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from conversations import catalogue
from conversations.gsm import cheapest, is_gsm7, nearest_gsm, segments
from conversations.texts import Hours, placeholders, render
from ledger.models import Member, Message
from tests.helpers import ref_in

ACCENTED = ["Zoë", "Siân", "Ayşe Yılmaz", "Łucja Wróbel", "Gwenllïan"]
OWN_WORDS = "lifts to Llanelli, Siân's café"
NAME_FIELDS = ("name", "other", "payer", "payee", "who")


def _values(key: str, language: str, name: str, what: str) -> dict[str, object]:
    values: dict[str, object] = {
        "bank": "South London and Maudsley Time Bank", "area": "Brixton", "skills": what,
        "availability": "weekday mornings", "what": what, "hours": Hours(120),
        "balance": Hours(-765), "limit": Hours(-1200), "ref": 317, "confirmation": 318,
        "member_id": 417, "date": "12 Nov", "source": "the community fund", "command": "DONE",
        "refs": "317, 318", "phone": "+447700900123", "example": "DONE 2 Ana", "text": what,
        "audience": "@Brixton", "count": 3, "n": 3, "credited": 2, "segments": 1, "total": 3,
        "coming": 2, "not_coming": 1, "sent": 3, "names": name, "more": 2, "paid": 2,
        "already": 0, "code": "483920", "contact_hours": "weekdays", "support": "020 7946 0123",
        "crisis": "Samaritans 116 123", "masked": "+44*******0123", "broker": "Bea",
        "choices": "1 English, 2 বাংলা, 3 Soomaali, 4 Türkçe, 5 Polski, 6 Cymraeg",
        "lang": "Soomaali",
        "entries": what,
    }
    values.update({field: name for field in NAME_FIELDS})
    return {k: v for k, v in values.items() if k in placeholders(key, language)}


TEXTS = sorted(key for key in catalogue.english().entries
               if not key.startswith("command_")
               and placeholders(key) & {*NAME_FIELDS, "what"})


@pytest.mark.parametrize("language", sorted(catalogue.languages()))
@pytest.mark.parametrize("key", TEXTS)
def test_names_and_own_words_never_raise_the_cost_of_a_text(key, language):
    for name in ACCENTED:
        exact = render(key, language, **_values(key, language, name, OWN_WORDS))
        plain = render(key, language,
                       **_values(key, language, nearest_gsm(name), nearest_gsm(OWN_WORDS)))
        assert segments(cheapest(exact)) <= segments(cheapest(plain)), (key, language, exact)


def test_cheapest_keeps_a_short_text_exact_and_writes_a_long_one_plainly():
    short = "Saved, Zoë. Reply PROFILE to see your details"
    assert cheapest(short) == short and segments(short) == 1
    long = render("confirm_ask", other="Ayşe Yılmaz", hours=Hours(120), what="gardening",
                  ref=317)
    assert segments(long) == 2  # UCS-2 for two letters
    assert cheapest(long).startswith("Ayse Yilmaz says") and segments(cheapest(long)) == 1


@pytest.fixture
def ayse(make_phone):
    phone = make_phone("+447700900701")
    phone.text("JOIN Ayşe Yılmaz")
    return phone


@pytest.fixture
def zoe(make_phone):
    phone = make_phone("+447700900702")
    phone.text("JOIN Zoë")
    return phone


def test_a_confirmation_between_zoe_and_ayse_costs_one_segment(ayse, zoe, outbox, services):
    told = ayse.reply("DONE 2 Zoë gardening for Siân")
    assert told.startswith("Thanks Ayse Yilmaz! I've asked Zoe") and segments(told) == 1
    [ask] = outbox.to(zoe.number)
    assert ask.startswith("Ayse Yilmaz says they helped you for 2 hours (gardening for Sian)")
    assert is_gsm7(ask) and segments(ask) == 1
    receipt = zoe.reply(f"YES {ref_in(ask)}")
    assert segments(receipt) == 1, receipt
    with services.db.reading() as session:
        stored = {m.kind: m.segments for m in session.scalars(select(Message))
                  if m.to_address == zoe.number}
        names = set(session.scalars(select(Member.name)))
    assert stored == {"confirm_ask": 1}
    # The member's own data keeps its exact spelling: only the text as sent is plain.
    assert {"Ayşe Yılmaz", "Zoë"} <= names


def test_a_short_reply_keeps_the_exact_spelling(zoe):
    assert zoe.reply("NAME Siân") == "Saved, Siân. Reply PROFILE to see your details"


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=400)
       | st.text(max_size=200))
@settings(max_examples=300, deadline=None)
def test_the_plain_text_shortcut_sends_what_the_long_way_would(text):  # type: ignore[no-untyped-def]
    """``cheapest`` returns a text of plain ASCII as it is without working out its plain
    form; the long way would have chosen the same text."""
    plain = nearest_gsm(text)
    expected = plain if segments(plain) < segments(text) else text
    assert cheapest(text) == expected
