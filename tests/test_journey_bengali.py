"""A whole journey (join, need, match, confirm, receipt) carried out in Bengali through the
webhook, with the real catalogue (conversations/locale/bn.po): Rina joins and texts in Bengali,
Ana helps in English. Each reads every text in their own language, Rina's own words are shown
as she wrote them, and the hours move both ways (+2 / -2)."""

from __future__ import annotations

import re

import pytest

from conversations.texts import Hours, render
from tests.helpers import join, ref_in

pytestmark = pytest.mark.every_language

BENGALI = re.compile(r"[\u0980-\u09FF]")
BENGALI_DIGITS = str.maketrans("0123456789", "০১২৩৪৫৬৭৮৯")
RINA, ANA = "+447700900801", "+447700900802"
WHAT = "বাজার করতে সাহায্য"  # Rina's own words: "help with the shopping"


def bengali(text: str) -> bool:
    """Bengali script, and none of the English words the same text has in English."""
    return bool(BENGALI.search(text)) and not re.search(
        r"\b(Thank|Thanks|Welcome|Balance|Reply|Good news|says|hours?)\b", text)


def english(text: str) -> bool:
    """An English text (the only Bengali in it may be Rina's own words)."""
    return not BENGALI.search(text.replace(WHAT, ""))


@pytest.fixture
def rina(make_phone):  # type: ignore[no-untyped-def]
    """Rina joins: JOIN → which language? → 2 (বাংলা) → the profile questions, in Bengali."""
    phone = make_phone(RINA)
    ask = phone.reply("JOIN Rina")
    assert "Which language?" in ask and "2 বাংলা" in ask
    welcome = phone.reply("2")
    assert welcome == render("joined", "bn", bank="Lambeth Time Bank", name="Rina")
    for answer in ("রান্না, গল্প করা", "Lambeth", "সকালে"):  # cooking, a chat / mornings
        question = phone.reply(answer)
        assert bengali(question), question
    assert "Rina" in question  # the last one: all set, Rina
    return phone


def test_a_whole_journey_in_bengali_from_need_to_receipts(rina, make_phone, outbox):
    ana = join(make_phone(ANA), "Ana", skills="shopping", area="Lambeth")
    assert english(ana.reply("OFFER help with the shopping"))

    # Rina's need, with the Bengali NEED word (অনুরোধ): she reads it in Bengali, her words as
    # she wrote them.
    posted = rina.reply(f"অনুরোধ {WHAT}")
    [ask] = outbox.to(ANA)
    ref = ref_in(ask)
    assert posted == render("need_posted", "bn", name="Rina", what=WHAT, ref=int(ref))
    assert bengali(posted) and WHAT in posted
    # Ana is asked in English, with Rina's words untouched and no number yet.
    assert english(ask) and ask.startswith(f"Rina needs: {WHAT} (Lambeth). Reply YES {ref}")
    assert "+44" not in ask

    # Ana says yes: the introductions, each in its reader's language.
    intro = ana.reply(f"YES {ref}")
    assert english(intro) and intro.startswith("Thank you! You're helping Rina") and RINA in intro
    [told] = outbox.to(RINA)
    assert told == render("match_requester", "bn", name="Ana", what=WHAT, ref=int(ref),
                          phone=ANA)
    assert bengali(told) and ANA in told

    # Ana reports 2 hours; Rina is asked in Bengali, with the cost spelled out.
    done = ana.reply(f"DONE {ref} 2")
    assert english(done) and done.startswith("Thanks Ana! I've asked Rina to confirm 2 hours")
    confirm = outbox.to(RINA)[-1]
    confirmation = ref_in(confirm)
    assert confirm == render("confirm_ask", "bn", other="Ana", hours=Hours(120), what=WHAT,
                             ref=int(confirmation))
    assert bengali(confirm) and "2 ঘণ্টা" in confirm and f"YES {confirmation}" in confirm

    # Rina confirms with the number in Bengali digits (YES ১৭ reads as YES 17).
    receipt = rina.reply(f"YES {confirmation.translate(BENGALI_DIGITS)}")
    assert receipt == render("receipt_payer", "bn", other="Ana", hours=Hours(120), what=WHAT,
                             balance=Hours(-120))
    assert bengali(receipt) and "-2 ঘণ্টা" in receipt
    thanked = outbox.to(ANA)[-1]
    assert english(thanked)
    assert thanked.startswith("Rina confirmed the 2 hours you gave")
    assert ana.reply("BALANCE").startswith("Balance: 2 hours")

    # BALANCE in Bengali (ব্যালেন্স) and in English: Rina reads Bengali either way.
    for word in ("ব্যালেন্স", "BALANCE"):
        balance = rina.reply(word)
        assert balance == render("balance", "bn", hours=Hours(-120)), word
        assert bengali(balance) and "-2 ঘণ্টা" in balance


def test_a_bengali_helper_is_asked_and_introduced_in_bengali(rina, make_phone, outbox):
    """Both in Bengali: Karim joins by naming his language, offers shopping, says yes with
    Bengali digits (হ্যাঁ is the Bengali YES), and reports with the Bengali DONE (করেছি)."""
    karim = make_phone(ANA)
    assert "Which language?" in karim.reply("JOIN Karim")
    assert bengali(karim.reply("Bangla"))
    for answer in ("বাজার", "Lambeth", "SKIP"):
        assert bengali(karim.reply(answer))
    assert bengali(karim.reply("অফার বাজার করা"))
    rina.text(f"NEED {WHAT}")
    [ask] = outbox.to(ANA)
    ref = ref_in(ask)
    assert bengali(ask) and "Rina" in ask and WHAT in ask
    intro = karim.reply(f"হ্যাঁ {ref.translate(BENGALI_DIGITS)}")
    assert intro == render("match_helper", "bn", name="Rina", what=WHAT, ref=int(ref),
                           phone=RINA)
    assert bengali(outbox.to(RINA)[-1])
    assert bengali(karim.reply(f"করেছি {ref} 2"))
    confirmation = ref_in(outbox.to(RINA)[-1])
    assert bengali(rina.reply(f"YES {confirmation}"))
    receipt = outbox.to(ANA)[-1]
    assert receipt == render("receipt_payee", "bn", other="Rina", hours=Hours(120), what=WHAT,
                             balance=Hours(120))
    assert karim.reply("হিসাব") == render("balance", "bn", hours=Hours(120))
    assert rina.reply("ব্যালেন্স") == render("balance", "bn", hours=Hours(-120))
