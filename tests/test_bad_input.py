"""Whatever reaches the webhook, the answer is a 200 with TwiML and nothing changes by accident.

Every test goes through the real webhook on every backend. "Nothing changes" is checked in the
database itself: no member created, no profile or balance changed, no opt-out, no transfer, no
message queued.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import DateTime, select
from twilio.request_validator import RequestValidator

from conversations.gsm import nearest_gsm
from ledger.models import Base
from tests.helpers import Phone, replies

NUMBER = "+447700900001"
AUTH_TOKEN = "secret"
ACCOUNT_SID = "AC" + "1" * 32


def snapshot(services: Any) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, without timestamps: everything a text could change. Not
    the texts themselves: every one is kept (app.care.inbox), whatever it says."""
    found: dict[str, list[tuple[object, ...]]] = {}
    with services.db.reading() as session:
        for table in Base.metadata.sorted_tables:
            if table.name == "inbound_texts":
                continue
            columns = [c for c in table.columns if not isinstance(c.type, DateTime)]
            rows = session.execute(select(*columns).order_by(*table.primary_key.columns))
            found[table.name] = [tuple(row) for row in rows]
    return found


def join_and_finish(phone: Phone) -> None:
    """A member who joined and skipped the three questions: no question is pending."""
    assert "Welcome to" in phone.reply("JOIN Sam")
    phone.text("SKIP")
    phone.text("SKIP")
    assert "All set" in phone.reply("SKIP")
    assert phone.reply("BALANCE").startswith("Balance: 0 hours")


def raw_post(app: Flask, data: bytes, content_type: str = "application/x-www-form-urlencoded",
             remote_addr: str = "127.0.0.1"):  # type: ignore[no-untyped-def]
    return app.test_client().post(
        "/twilio/messages", data=data, content_type=content_type,
        environ_base={"REMOTE_ADDR": remote_addr},
    )


@contextmanager
def built_app(backend: Any, **overrides: object) -> Iterator[Flask]:
    """An app with its own configuration, as test_webhook's approval test builds one."""
    from app import create_app
    from app.cli import prepare
    from tests.conftest import make_config, wipe

    application = create_app(make_config(backend, **overrides))
    shared = application.extensions["timebank"]
    wipe(shared)
    try:
        with application.app_context():
            prepare(shared)
            yield application
    finally:
        shared.close()


# --- Odd bodies, from a stranger and from a member ------------------------------------------

EMOJI = "😀🙏🏽👍"
BENGALI = "আমি বাগান করতে পারি"
ARABIC = "مرحبا، كيف حالك؟"
CHINESE = "你好，我想加入"

# (label, form fields to set or, with None, to leave out)
ODD_BODIES: list[tuple[str, dict[str, str | None]]] = [
    ("empty", {"Body": ""}),
    ("whitespace", {"Body": "  \n\t \r\n "}),
    ("1600 letters", {"Body": "a" * 1600}),
    ("1600 words", {"Body": ("Hello there " * 200)[:1600]}),
    ("1600 emoji", {"Body": "😀" * 1600}),
    ("emoji only", {"Body": EMOJI}),
    ("picture, no text", {"Body": "", "NumMedia": "1",
                          "MediaUrl0": "https://api.twilio.com/2010-04-01/Accounts/AC0/"
                                       "Messages/MM0/Media/ME0",
                          "MediaContentType0": "image/jpeg"}),
    ("picture, no Body field", {"Body": None, "NumMedia": "1",
                                "MediaUrl0": "https://example.org/cat.jpg"}),
    ("bengali", {"Body": BENGALI}),
    ("arabic", {"Body": ARABIC}),
    ("chinese", {"Body": CHINESE}),
    ("bidi override", {"Body": "\u202eBALANCE"}),
    ("nul and bell", {"Body": "\x00\x07"}),
    ("controls around words", {"Body": "\x1b[31mhello\x1b[0m\u200b\ufeff"}),
    ("missing Body", {"Body": None}),
    ("junk NumMedia", {"Body": "", "NumMedia": "lots"}),
    ("huge NumMedia", {"Body": "", "NumMedia": "9" * 5000}),
]


def _form(phone: Phone, fields: dict[str, str | None]) -> dict[str, str]:
    form = phone.form("")
    for key, value in fields.items():
        if value is None:
            form.pop(key, None)
        else:
            form[key] = value
    return form


@pytest.mark.parametrize(("label", "fields"), ODD_BODIES, ids=[b[0] for b in ODD_BODIES])
def test_odd_text_from_a_stranger_is_answered_helpfully_and_changes_nothing(
    phone, services, label, fields
):
    before = snapshot(services)
    answers = replies(phone.post(_form(phone, fields)))
    assert len(answers) == 1, answers
    answer = answers[0]
    assert answer.strip()
    # A stranger is always told how to join.
    assert "reply JOIN" in answer, (label, answer)
    assert snapshot(services) == before


@pytest.mark.parametrize(("label", "fields"), ODD_BODIES, ids=[b[0] for b in ODD_BODIES])
def test_odd_text_from_a_member_is_answered_and_changes_nothing(phone, services, label, fields):
    join_and_finish(phone)
    before = snapshot(services)
    answers = replies(phone.post(_form(phone, fields)))
    if label in ("emoji only", "1600 emoji"):
        # Smiles and thumbs up are a nod (app.care): no answer is needed, and none is sent.
        assert answers == []
        assert snapshot(services) == before
        return
    assert len(answers) == 1, answers
    answer = answers[0]
    assert answer.strip()
    # Something to do next, in capitals (MENU, BALANCE, ...), or the command hidden in it.
    assert any(word in answer for word in ("MENU", "BALANCE", "PROFILE")) or (
        label == "bidi override" and answer.startswith("Balance: 0 hours")
    ), (label, answer)
    assert snapshot(services) == before
    assert phone.reply("BALANCE").startswith("Balance: 0 hours")


def test_an_empty_text_is_called_empty_and_a_picture_is_called_a_picture(phone, services):
    assert "empty" in phone.reply("")
    assert "empty" in phone.reply("   ")
    assert "pictures" in phone.reply("", NumMedia="1", MediaUrl0="https://example.org/a.jpg")
    join_and_finish(phone)
    assert "empty" in phone.reply("\x00\x07")
    assert "pictures" in phone.reply("", NumMedia="2", MediaUrl0="https://example.org/a.jpg")


def test_a_bidi_override_does_not_hide_a_command(phone):
    join_and_finish(phone)
    assert phone.reply("\u202eBALANCE").startswith("Balance: 0 hours")
    assert phone.reply("BAL\u200bANCE").startswith("Balance: 0 hours")


def test_odd_text_while_a_question_is_pending_keeps_the_question(phone, services):
    assert "Welcome to" in phone.reply("JOIN Sam")
    before = snapshot(services)
    # Nothing readable is not an answer: the question still waits.
    assert "empty" in phone.reply("\x00\x07\u202e")
    assert "pictures" in phone.reply("", NumMedia="1", MediaUrl0="https://example.org/a.jpg")
    assert snapshot(services) == before
    assert "Which area" in phone.reply("Gardening")


# --- Senders that are not a member's phone --------------------------------------------------

@pytest.mark.parametrize(
    "sender",
    ["12345", "VODAFONE", "whatsapp:VODAFONE", "", "   ", "+1", "+44", "447700900001",
     "＋447700900001", "+" + "4" * 60, "not a number", "whatsapp:", "sip:alice@example.org"],
)
def test_a_sender_that_is_not_a_phone_number_is_told_so_and_changes_nothing(
    app, services, sender
):
    before = snapshot(services)
    phone = Phone(app, sender)
    for body in ("JOIN Sam", "STOP", "hello"):
        answer = phone.reply(body)
        assert "mobile phone number" in answer
    assert snapshot(services) == before


def test_a_missing_from_is_answered_and_changes_nothing(phone, services):
    before = snapshot(services)
    form = phone.form("JOIN Sam")
    del form["From"]
    answers = replies(phone.post(form))
    assert len(answers) == 1 and "mobile phone number" in answers[0]
    assert snapshot(services) == before


@pytest.mark.parametrize("sid", [None, "", "   ", "SM", "SM-../../etc", "SM" + "a" * 100,
                                 "SM\x00" + "a" * 32, "SMआआआआआआआआआआआ"])
def test_a_missing_or_invalid_message_sid_is_answered_and_changes_nothing(
    phone, services, sid
):
    before = snapshot(services)
    form = phone.form("JOIN Sam")
    if sid is None:
        del form["MessageSid"]
    else:
        form["MessageSid"] = sid
    answers = replies(phone.post(form))
    assert len(answers) == 1
    assert "text again" in answers[0]
    assert snapshot(services) == before


def test_a_member_is_unchanged_by_senders_and_sids_that_do_not_count(phone, services):
    join_and_finish(phone)
    before = snapshot(services)
    form = phone.form("LEAVE")
    del form["MessageSid"]
    replies(phone.post(form))
    form = phone.form("STOP")
    form["From"] = "VODAFONE"
    replies(phone.post(form))
    assert snapshot(services) == before
    assert phone.reply("BALANCE").startswith("Balance: 0 hours")


# --- Bytes that are not a well-formed form --------------------------------------------------

SID_BYTES = b"SM" + b"b" * 32


@pytest.mark.parametrize(
    "data",
    [
        b"Body=%FF%FE&From=%2B447700900001&MessageSid=" + SID_BYTES,
        b"Body=\xff\xfe\xfd&From=%2B447700900001&MessageSid=" + SID_BYTES,
        b"Body=%ZZ%&From=%2B447700900001&MessageSid=" + SID_BYTES,
        b"Body=%C0%AFJOIN%20Sam&From=%2B447700900001&MessageSid=" + SID_BYTES,
        b"Body=%00%00&From=%2B447700900001&MessageSid=" + SID_BYTES,
        b"Body=hello&From=%2B44770090%FF0001&MessageSid=" + SID_BYTES,
        b"\xff\xfe=\x00&&&==&Body&From&MessageSid=" + SID_BYTES,
        b"\x00\x01\x02 not a form at all",
        b"",
    ],
    ids=["percent-invalid-utf8", "raw-invalid-utf8", "bad-percent", "overlong-utf8", "nul",
         "invalid-utf8-in-from", "junk-keys", "binary", "empty"],
)
def test_malformed_form_bytes_are_answered_and_change_nothing(app, services, data):
    before = snapshot(services)
    response = raw_post(app, data)
    answers = replies(response)
    assert len(answers) == 1 and answers[0].strip()
    assert snapshot(services) == before


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "text/plain", "multipart/form-data; boundary=xyz",
     "application/x-www-form-urlencoded; charset=latin-1"],
)
def test_a_body_of_another_type_is_answered_and_changes_nothing(app, services, content_type):
    before = snapshot(services)
    response = raw_post(app, b'{"Body": "JOIN Sam", "From": "+447700900001"}', content_type)
    answers = replies(response)
    assert len(answers) == 1 and answers[0].strip()
    assert snapshot(services) == before


def test_malformed_bytes_from_a_member_change_nothing(app, phone, services):
    join_and_finish(phone)
    before = snapshot(services)
    response = raw_post(app, b"Body=%FF%FE&From=%2B447700900001&MessageSid=" + SID_BYTES)
    answers = replies(response)
    assert len(answers) == 1 and "didn't understand" in answers[0]
    assert snapshot(services) == before
    assert phone.reply("BALANCE").startswith("Balance: 0 hours")


def test_answering_the_area_question_with_a_town_keeps_the_member(phone, services):
    assert "Welcome to" in phone.reply("JOIN Sam")
    assert "Which area" in phone.reply("SKIP")
    assert "usually free" in phone.reply("Reading")
    statuses = [row[snapshot_column("members", "status")]
                for row in snapshot(services)["members"]]
    assert statuses == ["active"]


def snapshot_column(table: str, name: str) -> int:
    columns = [c.name for c in Base.metadata.tables[table].columns
               if not isinstance(c.type, DateTime)]
    return columns.index(name)


# --- Hours by text, written wrongly ----------------------------------------------------------

LEDGER_MISTAKES = [
    "DONE", "DONE two Ana", "DONE 1.3 Ana", "DONE -1 Ana", "DONE 0 Ana", "DONE 1e400 Ana",
    "DONE nan Ana", "DONE 1e20 Ana", "DONE 99 Ana", "DONE 2", "DONE 2 Nobody gardening",
    "DONE 2 +447700900001", "DONE 2 07700 900999 gardening", "DONE 17 1.5", "DONE 2 %",
    "DONE 2 _ gardening", "DONE ½", "GIVE", "GIVE abc", "GIVE 2", "GIVE 2 Nobody", "GIVE 2 %",
    "GIVE 1e400 FUND", "YES 999999", "NO 999999", "YES", "NO", "YES abc", "YES 9999999999999",
    "MORE", "RECORD 07700900002 2 gardening", "STATEMENT",
]


@pytest.mark.parametrize("text", LEDGER_MISTAKES)
def test_hours_written_wrongly_get_a_helpful_answer_and_change_nothing(
    make_phone, services, text
):
    sam = make_phone(NUMBER)
    join_and_finish(sam)
    ana = make_phone("+447700900002")
    ana.text("JOIN Ana")
    before = snapshot(services)
    answers = sam.text(text)
    assert len(answers) == 1, answers
    assert answers[0].strip()
    assert snapshot(services) == before
    assert sam.reply("BALANCE").startswith("Balance: 0 hours")


@pytest.mark.parametrize("text", ["YES ፩", "NO ፪", "DONE ፩ 1"])
def test_a_reference_in_ethiopic_digits_is_answered(phone, services, text):
    join_and_finish(phone)
    before = snapshot(services)
    answers = phone.text(text)
    assert len(answers) == 1 and "could not be read" not in answers[0]
    assert snapshot(services) == before


@pytest.mark.parametrize("text", ["GIVE 2 Nobody", "GIVE 1 Bob the builder"])
def test_give_to_an_unknown_name_shows_an_example_of_give(phone, text):
    join_and_finish(phone)
    answer = phone.reply(text)
    assert "can't find" in answer
    assert "DONE" not in answer and "GIVE" in answer


@pytest.mark.parametrize("name", ["Анна", "Ömer", "Łukasz", "Ágnes", "Ελένη", "আমিনা", "Zoë"])
def test_members_named_in_any_script_can_be_found_by_name(make_phone, name):
    other = make_phone("+447700900002")
    assert "Welcome to" in other.reply(f"JOIN {name}")
    sam = make_phone(NUMBER)
    join_and_finish(sam)
    for hours, written in ((1, name), (2, name.lower())):
        answer = sam.reply(f"DONE {hours} {written} gardening")
        # Named as the text is sent: "Zoe" where "Zoë" would cost a second segment.
        assert "I've asked" in answer and nearest_gsm(name) in answer, (written, answer)


# --- A MessageSid seen before ----------------------------------------------------------------

def test_a_repeated_message_sid_gets_the_same_answer_whoever_sends_it(make_phone, services):
    sid = "SM" + "c" * 32
    first = make_phone("+447700900011")
    other = make_phone("+447700900012")
    answer = first.send("JOIN Sam", sid=sid)
    after_first = snapshot(services)
    assert len(after_first["members"]) == 1
    for phone, body in ((first, "JOIN Sam"), (first, "STOP"), (other, "JOIN Ola"),
                        (other, ""), (first, "LEAVE")):
        again = phone.send(body, sid=sid)
        assert again.status_code == 200
        assert again.data == answer.data
    assert snapshot(services) == after_first
    assert first.reply("BALANCE").startswith("Balance: 0 hours")


def test_a_repeated_sid_of_odd_input_gets_the_same_answer(phone, services):
    sid = "SM" + "d" * 32
    join_and_finish(phone)
    before = snapshot(services)
    first = phone.send("😀", sid=sid)
    assert phone.send("😀", sid=sid).data == first.data
    assert phone.send("STOP", sid=sid).data == first.data
    assert snapshot(services) == before


# --- Who may call the webhook -----------------------------------------------------------------

def test_without_a_token_only_local_callers_without_forwarding_headers_are_answered(
    phone, services
):
    before = snapshot(services)
    for remote in ("203.0.113.5", "10.0.0.8", "192.168.1.20", "2001:db8::1", "not-an-ip", ""):
        response = phone.post(phone.form("JOIN Sam"), remote_addr=remote)
        assert response.status_code == 403, remote
    # Whatever a proxy, tunnel or CDN on this machine adds on the way in.
    for header in ("X-Forwarded-For", "Forwarded", "X-Real-Ip", "Via", "CF-Connecting-IP",
                   "True-Client-IP", "X-Client-IP", "X-Cluster-Client-IP", "X-Forwarded-Host",
                   "X-Forwarded-Proto", "x-forwarded-port", "X-FORWARDED-SERVER"):
        value = "for=203.0.113.5" if header == "Forwarded" else "203.0.113.5"
        response = phone.post(phone.form("STOP"), headers={header: value})
        assert response.status_code == 403, header
        response = phone.post(phone.form("JOIN Sam"), remote_addr="::1", headers={header: ""})
        assert response.status_code == 403, header
    assert snapshot(services) == before
    # Loopback, IPv4 or IPv6, is the bank's own machine.
    assert "reply JOIN" in phone.reply("hello")
    assert "reply JOIN" in replies(phone.post(phone.form("hello"), remote_addr="::1"))[0]


def _too_large(sender: Phone, services: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Not a 200 with a traceback logged: the request is too large, and nothing changes."""
    before = snapshot(services)
    response = sender.post(sender.form("JOIN Sam", Padding="x" * (300 * 1024)))
    assert response.status_code == 413
    assert snapshot(services) == before
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    assert "Welcome to" in sender.reply("JOIN Sam")


@pytest.mark.parametrize("token", [None, AUTH_TOKEN], ids=["unsigned", "signed"])
def test_a_body_over_the_size_limit_is_refused_with_413(backend, caplog, token):
    # As in production: a fault inside the webhook is answered, not raised.
    with built_app(backend, testing=False, twilio_account_sid=ACCOUNT_SID if token else "",
                   twilio_auth_token=token or "") as application:
        _too_large(Phone(application, NUMBER, auth_token=token),
                   application.extensions["timebank"], caplog)


def test_a_refused_call_does_not_use_up_its_message_sid(phone, services):
    form = phone.form("JOIN Sam")
    assert phone.post(form, remote_addr="203.0.113.5").status_code == 403
    assert "Welcome to" in replies(phone.post(form))[0]
    assert len(snapshot(services)["members"]) == 1


@pytest.fixture
def signed(backend) -> Iterator[Flask]:  # type: ignore[no-untyped-def]
    with built_app(backend, twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN) as a:
        yield a


def test_a_wrong_or_missing_signature_is_refused_and_changes_nothing(signed):
    services = signed.extensions["timebank"]
    before = snapshot(services)
    unsigned = Phone(signed, NUMBER)
    wrong_token = Phone(signed, NUMBER, auth_token="not-the-secret")
    wrong_url = Phone(signed, NUMBER, auth_token=AUTH_TOKEN,
                      url="https://bank.example.org/twilio/messages")
    for body in ("JOIN Sam", "STOP"):
        form = unsigned.form(body)
        assert unsigned.post(form).status_code == 403
        assert unsigned.post(form, signature="").status_code == 403
        assert unsigned.post(form, signature="bm90IGEgc2lnbmF0dXJl").status_code == 403
        assert unsigned.post(form, signature="\u00e9t\u00e9").status_code == 403
        assert wrong_token.post(wrong_token.form(body)).status_code == 403
        assert wrong_url.post(wrong_url.form(body)).status_code == 403
    # A correct signature over other values does not cover changed ones.
    form = unsigned.form("hello")
    good = RequestValidator(AUTH_TOKEN).compute_signature(
        "http://localhost/twilio/messages", form
    )
    assert unsigned.post({**form, "Body": "JOIN Sam"}, signature=good).status_code == 403
    # Even from loopback: with a token configured, only the signature counts.
    assert unsigned.post(unsigned.form("JOIN Sam"), remote_addr="127.0.0.1").status_code == 403
    assert snapshot(services) == before


def test_a_correctly_signed_request_is_answered(signed):
    services = signed.extensions["timebank"]
    phone = Phone(signed, NUMBER, auth_token=AUTH_TOKEN)
    # Signed requests need not come from loopback: Twilio calls from its own addresses.
    response = phone.post(phone.form("JOIN Sam"), remote_addr="203.0.113.5",
                          headers={"X-Forwarded-For": "203.0.113.5"})
    assert "Welcome to Lambeth Time Bank, Sam!" in replies(response)[0]
    assert phone.reply("BALANCE").startswith("Balance: 0 hours")
    assert len(snapshot(services)["members"]) == 1


def test_a_signature_over_the_public_url_is_accepted_behind_a_proxy(backend):
    with built_app(backend, twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN,
                   public_base_url="https://bank.example.org") as application:
        services = application.extensions["timebank"]
        # Signed as Twilio does, over the public URL; the request reaches the test client.
        phone = Phone(application, NUMBER, auth_token=AUTH_TOKEN,
                      url="https://bank.example.org/twilio/messages")
        assert "Welcome to" in phone.reply("JOIN Sam")
        assert phone.reply("BALANCE").startswith("Balance: 0 hours")
        before = snapshot(services)
        # A signature over the internal URL is not Twilio's.
        local = Phone(application, NUMBER, auth_token=AUTH_TOKEN)
        assert local.post(local.form("LEAVE")).status_code == 403
        assert local.post(local.form("STOP")).status_code == 403
        assert snapshot(services) == before
        assert phone.reply("BALANCE").startswith("Balance: 0 hours")


def test_a_refused_signed_call_does_not_use_up_its_message_sid(signed):
    phone = Phone(signed, NUMBER, auth_token=AUTH_TOKEN)
    form = phone.form("JOIN Sam")
    assert phone.post(form, signature="wrong").status_code == 403
    assert "Welcome to" in replies(phone.post(form))[0]


# --- No input gives a 500 -----------------------------------------------------------------------

_VALID_SENDERS = ["+447700900001", "+447700900002", "whatsapp:+447700900003", "+14155550123",
                  "+33612345678"]
_junk_text = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40
)
_good_senders = st.one_of(
    st.sampled_from(_VALID_SENDERS), st.from_regex(r"\A(whatsapp:)?\+4477009000\d\d\Z")
)
_bad_senders = st.one_of(
    st.none(),
    st.sampled_from(["12345", "VODAFONE", "", "+", "whatsapp:", "+0000000000", "00447700900001",
                     "+44 7700 900001", "+447700900001 ext. 2", "+٤٤٧٧٠٠٩٠٠٠٠١"]),
    _junk_text,
)


def _mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Good values four times in five, so most examples reach the conversation and ledger."""
    return st.integers(0, 4).flatmap(lambda i: bad if i == 0 else good)


_senders = _mostly(_good_senders, _bad_senders)
_command_words = st.sampled_from(
    ["JOIN", "JOIN Sam", "JOIN 😀", "BALANCE", "bal", "PROFILE", "SKIP", "STOP", "START",
     "HELP", "LEAVE", "NAME", "AREA Brixton", "SKILLS", "FREE evenings", "MENU", "end",
     "Help with shopping", "\u202eBALANCE", "DONE 2 Sam gardening", "DONE 1 07700900002",
     "DONE 17 1.5", "GIVE 1 FUND", "GIVE 0.5 Sam", "YES", "YES 1", "NO 1", "NO", "STATEMENT",
     "MORE", "RECORD 07700900001 2 gardening", "DONE", "GIVE", "LEAVE NOW", "AWAY",
     "AWAY 3 weeks", "AWAY until 24 Dec", "BACK", "OK"]
)
_bodies = st.one_of(
    st.none(),
    st.text(max_size=300),
    st.text(st.characters(codec="utf-8", categories=["Cc", "Cf", "Zs", "So"]), max_size=50),
    _command_words,
    st.builds(lambda a, b: f"{a} {b}", _command_words, st.text(max_size=60)),
    st.sampled_from(["a" * 1600, "😀" * 800, "\x00" * 1600, "JOIN " + "x" * 1595]),
)
_num_media = st.one_of(
    st.none(), st.integers(-3, 12).map(str),
    st.sampled_from(["", "one", "1.0", " 2 ", "١", "9" * 5000]),
)
_sids = _mostly(
    st.one_of(st.uuids().map(lambda u: "SM" + u.hex),
              st.sampled_from(["SM" + "e" * 32, "MM" + "f" * 32])),  # some repeats
    st.one_of(st.none(), _junk_text),
)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_bodies, sender=_senders, num_media=_num_media, sid=_sids,
       to=st.one_of(st.none(), st.just("+447700900999"), _junk_text))
def test_no_input_gives_a_500(app, body, sender, num_media, sid, to):
    form: dict[str, str] = {"AccountSid": "AC" + "0" * 32}
    for key, value in (("Body", body), ("From", sender), ("NumMedia", num_media),
                       ("MessageSid", sid), ("To", to)):
        if value is not None:
            form[key] = value
    if num_media and num_media.strip() not in ("", "0"):
        form["MediaUrl0"] = "https://example.org/picture.jpg"
    response = app.test_client().post(
        "/twilio/messages", data=form, environ_base={"REMOTE_ADDR": "127.0.0.1"}
    )
    event("answered" if b"text again" not in response.data
          and b"mobile phone" not in response.data else "refused early")
    assert response.status_code == 200, response.data
    assert response.mimetype == "text/xml"
    root = ET.fromstring(response.data)
    assert root.tag == "Response"
    for message in root.iter("Message"):
        assert "".join(message.itertext()).strip()
