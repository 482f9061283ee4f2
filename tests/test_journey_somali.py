"""A whole journey carried out in Somali through the webhook, with the real catalogue: a
Somali speaker joins, answers the profile questions and texts a need with the Somali command
word; an English-speaking helper who offers shopping says yes; both are introduced; the helper
reports the hours with DONE; the Somali member confirms with HAA; both get their receipts; the
Somali member asks for the balance with HARAAGA.

Each text the Somali member reads is compared with the Somali catalogue text as the bank
sends it (``render`` then ``cheapest``), and is checked not to be the English one: a missing or
stale translation falls back to English and fails here. The member's own words come back as
written, and the helper reads English throughout.
"""

from __future__ import annotations

import re

import pytest

from conversations.gsm import cheapest
from conversations.texts import Hours, render
from tests.helpers import ref_in

pytestmark = pytest.mark.every_language

HELPER = "+447700900901"
SOMALI = "+447700900904"
NEED = "caawimo dukaanka maalinta Jimcaha"  # help with the shopping on Friday, her own words


def so(key: str, **values: object) -> str:
    """What a Somali member reads for ``key``: the Somali text, spelled as sent."""
    text = cheapest(render(key, "so", **values))
    assert text != cheapest(render(key, "en", **values)), f"{key} is not translated"
    return text


def somali_ref(text: str) -> str:
    """The number a Somali text asks for a reply with (``soo dir HAA 17`` → ``17``)."""
    found = re.search(r"\bHAA (\d+)", text)
    assert found, text
    return found.group(1)


def test_a_somali_member_asks_for_help_confirms_it_and_sees_her_balance(make_phone, outbox):
    helper = make_phone(HELPER)
    helper.text("JOIN Ana")
    helper.text("1")  # English
    for answer in ("shopping", "Lambeth", "SKIP"):
        helper.text(answer)
    assert helper.reply("OFFER shopping").startswith("Thanks Ana! Your offer is saved")

    somali = make_phone(SOMALI)
    # The Somali JOIN word: she writes Somali, so the bank texts her in it from the first
    # reply (no question in English first; LUQAD changes it).
    assert somali.reply("KUBIIR Faadumo") == so("joined", bank="Lambeth Time Bank",
                                                name="Faadumo")
    assert somali.reply("GUDUB") == so("ask_area")  # the Somali SKIP word
    assert somali.reply("Lambeth") == so("ask_availability")
    assert somali.reply("GUDUB") == so("profile_done", name="Faadumo")

    posted = somali.reply(f"BAAHI {NEED}")  # the Somali NEED word
    [ask] = outbox.to(HELPER)
    assert ask.startswith(f"Faadumo needs: {NEED} (Lambeth). Reply YES ")
    assert SOMALI not in ask  # no number before both agree
    ref = ref_in(ask)
    assert posted == so("need_posted", name="Faadumo", what=NEED, ref=int(ref))

    # The helper says yes: both are introduced, each in their own language.
    intro = helper.reply(f"YES {ref}")
    assert intro.startswith("Thank you! You're helping Faadumo") and SOMALI in intro
    [told] = outbox.to(SOMALI)
    assert told == so("match_requester", name="Ana", what=NEED, ref=int(ref), phone=HELPER)

    # After the shopping, the helper reports 2 hours; the Somali member confirms them.
    assert "I've asked Faadumo to confirm 2 hours" in helper.reply(f"DONE {ref} 2")
    confirm = outbox.to(SOMALI)[-1]
    confirmation = somali_ref(confirm)
    assert confirm == so("confirm_ask", other="Ana", hours=Hours(120), what=NEED,
                         ref=int(confirmation))
    assert "2 saacadood" in confirm
    receipt = somali.reply(f"HAA {confirmation}")
    assert receipt == so("receipt_payer", other="Ana", hours=Hours(120), what=NEED,
                         balance=Hours(-120))
    assert "-2 saacadood" in receipt
    assert outbox.to(HELPER)[-1] == (
        f"Faadumo confirmed the 2 hours you gave ({NEED}). Thank you! Your balance: 2 hours")

    balance = somali.reply("HARAAGA")  # the Somali BALANCE word
    assert balance == so("balance", hours=Hours(-120))
    assert balance.startswith("Haraa: -2 saacadood")
    assert helper.reply("BALANCE").startswith("Balance: 2 hours")
    # Nothing the Somali member read was in English.
    for text in [*outbox.to(SOMALI), receipt, balance]:
        assert "Reply" not in text and "hours" not in text, text
