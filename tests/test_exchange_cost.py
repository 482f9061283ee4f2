"""What a whole exchange costs: at most 8 SMS segments in English, across both members.

need → ask → accept → introductions → done → confirm → both receipts, through the signed
webhook (the replies a member reads in TwiML) and the Twilio stand-in (what the bank sent on
its own, as Twilio accepted it), with names that have letters outside GSM-7.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from conversations.gsm import segments
from tests import test_outbound
from tests.helpers import join, ref_in
from tests.test_outbound import TwilioBank

standin = test_outbound.standin
make_bank = test_outbound.make_bank

HELPER = "+447700900951"
REQUESTER = "+447700900952"
MOST = 8


class Counted:
    """A member's phone that counts the segments of every reply it reads."""

    def __init__(self, bank: TwilioBank, number: str) -> None:
        self.phone = bank.phone(number)
        self.number = number
        self.segments = 0

    def reply(self, body: str) -> str:
        response = self.phone.send(body)
        assert response.status_code == 200, response.data
        texts = ["".join(m.itertext()) for m in ET.fromstring(response.data).iter("Message")]
        self.segments += sum(segments(text) for text in texts)
        assert len(texts) == 1, texts
        return texts[0]


def test_a_completed_exchange_costs_at_most_eight_segments(make_bank, standin):
    bank: TwilioBank = make_bank()
    join(bank.phone(HELPER), "Ayşe Yılmaz", "lifts in my car, driving", "Lambeth")
    join(bank.phone(REQUESTER), "Zoë Williams", "SKIP", "Lambeth")
    bank.run_jobs()
    before = len(standin.accepted)
    helper, requester = Counted(bank, HELPER), Counted(bank, REQUESTER)

    requester.reply("NEED a lift to the clinic on Tuesday")
    bank.run_jobs()
    [ask] = [r.body or "" for r in standin.accepted_to(HELPER)]
    assert "needs: a lift to the clinic on Tuesday" in ask
    intro = helper.reply(f"YES {ref_in(ask)}")
    assert REQUESTER in intro  # introduced: both agreed
    helper.reply(f"DONE {ref_in(ask)} 2")
    bank.run_jobs()
    confirm = (standin.accepted_to(REQUESTER)[-1].body or "")
    assert "2 hours from your balance" in confirm
    receipt = requester.reply(f"YES {ref_in(confirm)}")
    assert receipt.startswith("Thank you! Recorded")
    bank.run_jobs()

    sent = [r.body or "" for r in standin.accepted[before:]]
    assert any(body.startswith("Zoe Williams confirmed the 2 hours") for body in sent), sent
    outbound = sum(segments(body) for body in sent)
    total = outbound + helper.segments + requester.segments
    # Four texts the bank sent (ask, introduction, confirmation, receipt) and four replies.
    assert len(sent) == 4, sent
    assert total <= MOST, (total, sent)
