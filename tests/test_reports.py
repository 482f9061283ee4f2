"""Funder reports, the co-production index and the SVG charts: the numbers a funder sees.

The ledger is filled through the real services (joining, transfers, reversals); each test
then dates its rows by hand, as months of use would. Runs on SQLite, and on PostgreSQL too
when ``TEST_DATABASE_URL`` is set (in a schema of its own, so other tests are untouched).
"""

from __future__ import annotations

import csv
import io
import os
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from app.charts import bar_chart, line_chart
from ledger import accounts, banks, members, posts, reports
from ledger.db import Database, normalise_url
from ledger.models import Account, Base, Member, Transfer
from ledger.phones import Address

BACKENDS = ["sqlite", "postgresql"] if os.environ.get("TEST_DATABASE_URL") else ["sqlite"]
JAN, FEB, MAR, APR = (date(2024, m, 1) for m in (1, 2, 3, 4))
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path) -> Iterator[Database]:  # type: ignore[no-untyped-def]
    yield from fresh_database(request.param, tmp_path, "reports")


def fresh_database(backend: str, tmp_path, prefix: str) -> Iterator[Database]:  # type: ignore[no-untyped-def]
    """An empty database with today's tables: a SQLite file, or a PostgreSQL schema of its
    own (dropped afterwards)."""
    if backend == "sqlite":
        database = Database(f"sqlite:///{tmp_path / f'{prefix}.db'}")
        Base.metadata.create_all(database.engine)
        yield database
        database.dispose()
        return
    url = os.environ["TEST_DATABASE_URL"]
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalise_url(url))
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    database = Database(url, connect_args={"options": f"-csearch_path={schema}"})
    Base.metadata.create_all(database.engine)
    yield database
    database.dispose()
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


class World:
    """A bank filled through the ledger's services, with rows dated by hand."""

    def __init__(self, session: Session, name: str = "Lambeth Time Bank") -> None:
        self.session = session
        if name == "Lambeth Time Bank":
            self.bank = banks.ensure_default_bank(session, name=name)
        else:
            self.bank = banks.add_bank(session, name, addresses=[])
        self.fund = banks.ensure_fund(session, self.bank)
        session.flush()
        self.accounts: dict[str, int] = {}
        self.members: dict[str, Member] = {}
        self.keys = 0

    def join(self, name: str, *, area: str | None = None, skills: str | None = None,
             joined: date = JAN) -> Member:
        phone = f"+4477009{len(self.members) + 1:05d}"
        member, _ = members.join(self.session, self.bank, Address(phone, "sms"), name)
        member.area, member.skills, member.joined_at = area, skills, at(joined)
        self.members[name] = member
        self.accounts[name] = members.member_account(self.session, member).id
        return member

    def _move(self, source: int, target: int, hours: float, kind: str, when: date,
              what: str = "", key: str | None = None) -> Transfer:
        self.keys += 1
        recorded = accounts.transfer(
            self.session, bank_id=self.bank.id, from_account_id=source, to_account_id=target,
            minutes=round(hours * 60), kind=kind, idempotency_key=key or f"test:{self.keys}",
            entered_by="system", description=what, enforce_limit=False,
        )
        recorded.transfer.created_at = at(when)
        return recorded.transfer

    def helped(self, helper: str, helped: str, hours: float, when: date, what: str = ""
               ) -> Transfer:
        """``helper`` helped ``helped``: hours go from the member helped to the helper."""
        return self._move(self.accounts[helped], self.accounts[helper], hours, "exchange",
                          when, what)

    def gift(self, giver: str, to: str, hours: float, when: date) -> Transfer:
        return self._move(self.accounts[giver], self.accounts[to], hours, "gift", when)

    def record(self, name: str, hours: float, when: date, what: str = "",
               source: Account | None = None) -> Transfer:
        payer = (source or self.fund).id
        return self._move(payer, self.accounts[name], hours, "record", when, what)

    def activity(self, activity_id: int, names: list[str], hours: float, when: date,
                 source: Account | None = None) -> list[Transfer]:
        payer = (source or self.fund).id
        return [
            self._move(payer, self.accounts[name], hours, "activity", when, "group walk",
                       key=f"activity:{activity_id}:{self.members[name].id}")
            for name in names
        ]

    def reverse(self, transfer: Transfer, when: date) -> None:
        undo = accounts.reverse(self.session, transfer.id, reason="mistake")
        undo.transfer.created_at = at(when)


def report(db: Database, name: str, start: date = JAN, end: date = APR,
           bank: str = "Lambeth Time Bank") -> reports.Report:
    with db.reading() as session:
        bank_id = banks.bank_by_name(session, bank).id
        return reports.build(session, bank_id, name, start, end)


def index(db: Database, start: date = JAN, end: date = APR) -> dict[str, reports.Indicator]:
    with db.reading() as session:
        bank_id = banks.bank_by_name(session, None).id
        found = reports.coproduction(session, bank_id, start, end)
    return {indicator.name: indicator for indicator in found}


# Hours ------------------------------------------------------------------------------------

def test_every_month_is_listed_and_a_reversed_exchange_counts_as_nothing(db):
    with db.writing() as session:
        w = World(session)
        for name in ("Ana", "Ben", "Cy"):
            w.join(name)
        w.helped("Ana", "Ben", 2, JAN)
        mistake = w.helped("Cy", "Ben", 1.5, FEB)
        w.reverse(mistake, MAR)
        w.gift("Ben", "Cy", 1, FEB)  # a gift is not help given
        w.record("Cy", 1.25, MAR, "lunch club")
        w.helped("Ana", "Cy", 3, APR)  # after the period
    found = report(db, "hours-by-month")
    assert found.columns == ("Month", "Hours given")
    assert found.rows == [("2024-01", 2.0), ("2024-02", 0.0), ("2024-03", 1.25)]
    assert found.chart == "bar"


def test_a_reversal_in_a_later_period_still_cancels_the_original(db):
    with db.writing() as session:
        w = World(session)
        w.join("Ana")
        w.join("Ben")
        original = w.helped("Ana", "Ben", 2, JAN)
        w.reverse(original, APR)
    assert report(db, "hours-by-month", JAN, FEB).rows == [("2024-01", 0.0)]
    assert report(db, "active-members", JAN, FEB).rows == [("2024-01", 0)]
    assert report(db, "network-growth", JAN, FEB).rows == [("2024-01", 0, 0)]


def test_only_the_banks_own_transfers_count(db):
    with db.writing() as session:
        here = World(session)
        here.join("Ana")
        here.join("Ben")
        here.helped("Ana", "Ben", 1, JAN)
        there = World(session, "Brixton Time Bank")
        there.join("Ana")
        there.join("Ben")
        there.helped("Ana", "Ben", 5, JAN)
    assert report(db, "hours-by-month", JAN, FEB).rows == [("2024-01", 1.0)]
    assert report(db, "hours-by-month", JAN, FEB, bank="Brixton Time Bank").rows == [
        ("2024-01", 5.0)
    ]


def test_a_period_that_starts_mid_month_keeps_that_month(db):
    with db.writing() as session:
        w = World(session)
        w.join("Ana")
        w.join("Ben")
        w.helped("Ana", "Ben", 1, date(2024, 1, 10))
        w.helped("Ana", "Ben", 2, date(2024, 1, 20))
        w.helped("Ana", "Ben", 4, date(2024, 2, 10))
    found = report(db, "hours-by-month", date(2024, 1, 15), date(2024, 2, 15))
    assert found.rows == [("2024-01", 2.0), ("2024-02", 4.0)]
    with db.reading() as session, pytest.raises(ValueError):
        reports.build(session, 1, "hours-by-month", FEB, JAN)


def test_hours_by_kind_of_help(db):
    with db.writing() as session:
        w = World(session)
        for name in ("Ana", "Ben", "Cy"):
            w.join(name)
        w.helped("Ana", "Ben", 1, JAN, "a lift to the hospital")
        w.helped("Ana", "Ben", 0.5, JAN, "weeding the garden")
        w.helped("Cy", "Ben", 2, FEB, "shoping")  # a typo still finds shopping
        w.helped("Cy", "Ben", 0.75, FEB, "a cup of tea and a chat")
        w.record("Ben", 1, FEB, "something unusual")
        w.activity(7, ["Ana", "Cy"], 1.5, MAR)
    rows = dict(report(db, "hours-by-category").rows)
    assert rows["Transport and lifts"] == 1.0
    assert rows["Gardening"] == 0.5
    assert rows["Shopping and errands"] == 2.0
    assert rows["Company and befriending"] == 0.75
    assert rows["Group activities"] == 3.0
    assert rows["Other"] == 1.0
    assert rows["Cooking"] == 0.0  # every kind is listed, zeros too
    assert sum(v for v in rows.values() if isinstance(v, float)) == 8.25


def test_hours_by_the_area_of_the_member_who_gave(db):
    with db.writing() as session:
        w = World(session)
        w.join("Ana", area="Brixton")
        w.join("Ben", area=" brixton ")
        w.join("Cy", area="Stockwell")
        w.join("Di")
        w.helped("Ana", "Cy", 1, JAN)
        w.helped("Ben", "Cy", 2, JAN)  # the same area, written differently
        w.helped("Cy", "Ana", 0.5, FEB)
        w.record("Di", 1, FEB)
    assert report(db, "hours-by-area").rows == [
        ("Brixton", 3.0), ("Area not given", 1.0), ("Stockwell", 0.5)
    ]


def test_hours_paid_by_the_fund_and_each_organisation(db):
    with db.writing() as session:
        w = World(session)
        for name in ("Ana", "Ben", "Cy"):
            w.join(name)
        age_uk = accounts.add_organisation(session, w.bank.id, "Age UK Lambeth")
        accounts.add_organisation(session, w.bank.id, "Library")
        w.record("Ana", 2, JAN, "befriending", source=age_uk)
        w.activity(3, ["Ben", "Cy"], 1, FEB, source=age_uk)
        w.record("Ben", 1.5, FEB)
        w.helped("Ana", "Ben", 4, FEB)  # between members: no one's funds
    assert report(db, "hours-by-organisation").rows == [
        ("Community fund", 1.5, 1), ("Age UK Lambeth", 4.0, 3), ("Library", 0.0, 0)
    ]


# Members ----------------------------------------------------------------------------------

def test_active_and_new_members_each_month(db):
    with db.writing() as session:
        w = World(session)
        w.join("Ana", joined=date(2023, 12, 5))
        w.join("Ben", joined=JAN)
        w.join("Cy", joined=date(2024, 1, 31))
        w.join("Di", joined=MAR)
        w.helped("Ana", "Ben", 1, JAN)
        w.helped("Ana", "Ben", 1, JAN)
        w.record("Cy", 1, MAR)
        w.helped("Di", "Cy", 1, MAR)
        w.gift("Ben", "Di", 1, FEB)  # giving hours away is not help
    assert report(db, "active-members").rows == [("2024-01", 2), ("2024-02", 0), ("2024-03", 2)]
    assert report(db, "new-members").rows == [("2024-01", 2), ("2024-02", 0), ("2024-03", 1)]


def test_reciprocity(db):
    with db.writing() as session:
        w = World(session)
        for name in ("Ana", "Ben", "Cy", "Di"):
            w.join(name)
        w.helped("Ana", "Ben", 1, JAN)   # Ben was helped…
        w.helped("Ben", "Cy", 1, FEB)    # …and then helped Cy
        w.record("Di", 2, FEB)
        undone = w.helped("Cy", "Ana", 1, MAR)
        w.reverse(undone, MAR)
    assert report(db, "reciprocity").rows == [
        ("Gave and received", 1, 25.0), ("Only gave", 2, 50.0), ("Only received", 1, 25.0)
    ]
    found = index(db)
    assert found["Members who gave and received"].amount == 25.0
    assert found["Members who gave and received"].unit == "%"
    assert found["Helped, then helped others"].amount == 1
    assert found["Members who gave help"].amount == 3


# Connections ------------------------------------------------------------------------------

def test_pairs_are_counted_once_and_activities_pair_their_attendees(db):
    with db.writing() as session:
        w = World(session)
        w.join("Ana", area="Brixton")
        w.join("Ben", area="BRIXTON")
        w.join("Cy", area="Stockwell")
        w.join("Di")
        w.join("Ed", area="Vauxhall")
        w.helped("Ana", "Ben", 1, date(2023, 11, 1))  # met before the period
        w.helped("Ben", "Ana", 1, JAN)
        w.gift("Ana", "Ben", 1, FEB)
        w.activity(9, ["Ana", "Cy", "Di"], 2, FEB)
        w.helped("Cy", "Ana", 1, MAR)  # met at the activity already
        mistake = w.helped("Ed", "Cy", 1, MAR)
        w.reverse(mistake, MAR)
    assert report(db, "network-growth").rows == [
        ("2024-01", 0, 1), ("2024-02", 3, 4), ("2024-03", 0, 4)
    ]
    found = index(db)
    assert found["New connections"].amount == 3                     # Ana-Cy, Ana-Di, Cy-Di
    assert found["Connections made at group activities"].amount == 3
    assert found["Connections across areas"].amount == 1           # Ana-Cy; Di's is unknown


def test_the_coproduction_index(db):
    with db.writing() as session:
        w = World(session)
        ana = w.join("Ana", area="Brixton", skills="gardening, cooking")
        w.join("Ben", area="Stockwell", skills="Gardening and lifts on Tuesdays")
        w.join("Cy", skills="knitting")
        members.leave(session, w.members["Cy"].id)  # a leaver's skills are not offered
        offer, _ = posts.post(session, bank_id=w.bank.id, member=ana, kind="offer",
                              text="I can help with computers", request_key="offer-1")
        offer.created_at = at(FEB)
        late, _ = posts.post(session, bank_id=w.bank.id, member=ana, kind="offer",
                             text="I can teach piano", request_key="offer-2")
        late.created_at = at(APR)  # offered after the period
        posts.post(session, bank_id=w.bank.id, member=ana, kind="need",
                   text="I need plumbing", request_key="need-1")
        w.helped("Ana", "Ben", 2, JAN)
        w.record("Ben", 1.5, FEB)
        w.activity(1, ["Ana", "Ben"], 1, MAR)
    found = index(db)
    assert {i.value for i in found.values()} == {
        "Assets", "Redefining work", "Reciprocity", "Social networks"
    }
    assert found["Skills offered"].amount == 4  # garden, cook, lift, computer
    assert found["Hours given"].amount == 5.5
    assert found["Hours between members"].amount == 2.0
    assert found["Hours recorded by brokers"].amount == 1.5
    assert found["Hours at group activities"].amount == 2.0
    assert found["New connections"].amount == 1  # Ana and Ben, once
    assert found["Connections across areas"].amount == 1
    assert found["Connections made at group activities"].amount == 0
    for indicator in found.values():
        assert indicator.explanation.endswith(".") and indicator.explanation.count(". ") == 0


# Building, listing, CSV -------------------------------------------------------------------

def test_every_report_builds_and_round_trips_through_csv(db):
    with db.writing() as session:
        w = World(session)
        w.join('Ana, "the gardener"')
        w.join("Ben")
        w.helped('Ana, "the gardener"', "Ben", 1.5, FEB, "garden")
        accounts.add_organisation(session, w.bank.id, 'St Mark\'s, "Kennington"')
        bank_id = w.bank.id
    with db.reading() as session:
        built = reports.all_reports(session, bank_id, JAN, APR)
        with pytest.raises(KeyError):
            reports.build(session, bank_id, "no-such-report", JAN, APR)
    assert [r.name for r in built] == list(reports.REPORTS)
    assert len(set(reports.REPORTS)) == len(reports.REPORTS)
    for found in built:
        assert found.chart in {"bar", "line", "none"}
        assert found.title and found.explanation.endswith(".")
        assert found.name.replace("-", "").isalnum()
        parsed = list(csv.reader(io.StringIO(reports.to_csv(found))))
        assert parsed[0] == list(found.columns)
        assert parsed[1:] == [[str(cell) for cell in row] for row in found.rows]
        assert all(len(row) == len(found.columns) for row in found.rows)
    by_name = {r.name: r for r in built}
    assert ['St Mark\'s, "Kennington"', "0.0", "0"] in list(
        csv.reader(io.StringIO(reports.to_csv(by_name["hours-by-organisation"])))
    )


def test_an_empty_bank_reports_zeros(db):
    with db.writing() as session:
        bank_id = World(session).bank.id
    with db.reading() as session:
        built = {r.name: r for r in reports.all_reports(session, bank_id, JAN, MAR)}
        found = reports.coproduction(session, bank_id, JAN, MAR)
    assert built["hours-by-month"].rows == [("2024-01", 0.0), ("2024-02", 0.0)]
    assert built["reciprocity"].rows[0] == ("Gave and received", 0, 0.0)
    assert built["hours-by-area"].rows == []
    assert all(i.amount == 0 for i in found)


# Charts -----------------------------------------------------------------------------------

def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def test_a_bar_chart_is_accessible_svg_with_one_bar_per_value():
    svg = bar_chart(["2024-01", "2024-02", "2024-03"], [2, 0, 12.5],
                    title="Hours given each month", unit="hours")
    root = parse(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img" and root.get("width") == "100%"
    assert root.get("viewBox") == "0 0 640 260"
    assert root.find(f"{SVG}title").text == "Hours given each month"  # type: ignore[union-attr]
    assert "2024-03: 12.5" in root.find(f"{SVG}desc").text  # type: ignore[union-attr,operator]
    labelled_by = root.get("aria-labelledby", "").split()
    ids = {el.get("id") for el in root.iter() if el.get("id")}
    assert labelled_by and set(labelled_by) <= ids
    bars = [el for el in root.iter(f"{SVG}rect") if el.get("class") == "bar"]
    assert len(bars) == 3
    titles = [bar.find(f"{SVG}title").text for bar in bars]  # type: ignore[union-attr]
    assert titles == ["2024-01: 2 hours", "2024-02: 0 hours", "2024-03: 12.5 hours"]
    heights = [float(bar.get("height", "0")) for bar in bars]
    assert heights[1] == 0 and heights[2] > heights[0] > 0
    texts = [el.text for el in root.iter(f"{SVG}text")]
    assert "Hours" in texts  # the value axis is labelled
    assert {"0", "5", "10", "15"} <= set(texts)  # round gridline numbers
    assert "No hours in this period" not in texts


def test_chart_text_is_escaped():
    svg = str(bar_chart(["<script>alert(1)</script>", "A & B"], [1, 2],
                        title='Say "hi" <b>', unit="hours"))
    assert "<script>" not in svg and "<b>" not in svg
    root = parse(svg)
    titles = [el.text for el in root.iter(f"{SVG}title")]
    assert 'Say "hi" <b>' in titles
    assert "<script>alert(1)</script>: 1 hours" in titles
    assert "A & B: 2 hours" in titles


@pytest.mark.parametrize(("labels", "values"), [([], []), (["2024-01", "2024-02"], [0, 0])])
@pytest.mark.parametrize("draw", [bar_chart, line_chart])
def test_an_empty_chart_says_so(draw, labels, values):
    root = parse(draw(labels, values, title="Hours given each month", unit="hours"))
    texts = [el.text for el in root.iter(f"{SVG}text")]
    assert "No hours in this period" in texts
    assert not [el for el in root.iter() if el.get("class") in {"bar", "point", "line"}]
    assert "No hours in this period" in root.find(f"{SVG}desc").text  # type: ignore[union-attr,operator]


def test_a_line_chart_has_a_point_per_value():
    labels = [f"2024-{m:02d}" for m in range(1, 13)]
    root = parse(line_chart(labels, list(range(12)), title="Active members", unit="members"))
    points = [el for el in root.iter(f"{SVG}circle") if el.get("class") == "point"]
    assert len(points) == 12
    assert points[3].find(f"{SVG}title").text == "2024-04: 3 members"  # type: ignore[union-attr]
    assert len([el for el in root.iter(f"{SVG}polyline")]) == 1
    ticks = {el.text for el in root.iter(f"{SVG}text")}
    assert {"0", "5", "10"} <= ticks and "2.5" not in ticks  # whole members, whole ticks


def test_many_months_are_thinned_but_every_month_keeps_its_bar():
    labels = [f"{2022 + m // 12}-{m % 12 + 1:02d}" for m in range(36)]
    root = parse(bar_chart(labels, [1] * 36, title="T", unit="hours"))
    shown = [el.text for el in root.iter(f"{SVG}text") if el.get("class") == "x-label"]
    step = labels.index(shown[1])
    assert step > 1 and shown == labels[::step]  # every second (or third…) month, in order
    bars = [el for el in root.iter(f"{SVG}rect") if el.get("class") == "bar"]
    assert len(bars) == 36  # every value still has its bar and its title


def test_long_labels_lie_on_their_side_written_in_full():
    labels = [f"Company and befriending {i}" for i in range(12)]
    root = parse(bar_chart(labels, list(range(1, 13)), title="T", unit="hours"))
    shown = [el.text for el in root.iter(f"{SVG}text") if el.get("class") == "y-label"]
    assert shown == labels
    bars = [el for el in root.iter(f"{SVG}rect") if el.get("class") == "bar"]
    widths = [float(bar.get("width", "0")) for bar in bars]
    assert len(bars) == 12 and widths == sorted(widths) and widths[0] > 0
    assert float(root.get("viewBox", "").split()[3]) >= 260  # tall enough for every row


def test_a_chart_refuses_mismatched_data():
    with pytest.raises(ValueError):
        bar_chart(["a"], [1, 2], title="T", unit="hours")


# Who first met whom, kept in member_pairs ------------------------------------------------
#
# The network-growth report and the index's connections read member_pairs, which the flush
# that writes a transfer keeps in step (ledger.pairs). Below, the way they were counted
# before, straight from the transfers on every request, kept here as the reference.

def old_meetings(session: Session, bank_id: int, period: reports.Period):  # type: ignore[no-untyped-def]
    from sqlalchemy import and_, case, func, literal, select, union_all
    from sqlalchemy.orm import aliased

    moves = reports._moves(session, bank_id, period, since_start=False)
    a, b = moves.c.payer_member, moves.c.payee_member
    between = (
        select(reports._least(session, a, b).label("a"),
               reports._greatest(session, a, b).label("b"),
               moves.c.at.label("at"), literal(0).label("activity"))
        .where(moves.c.kind.in_(reports.PAIR_KINDS), a.is_not(None), b.is_not(None), a != b)
    )
    credits = (
        select(moves.c.activity, moves.c.payee_member.label("member"),
               func.min(moves.c.at).label("at"))
        .where(moves.c.kind == "activity", moves.c.key.like("activity:%:%"),
               moves.c.payee_member.is_not(None))
        .group_by(moves.c.activity, moves.c.payee_member)
        .cte("credits")
    )
    one, other = aliased(credits), aliased(credits)
    together = (
        select(one.c.member.label("a"), other.c.member.label("b"),
               reports._greatest(session, one.c.at, other.c.at).label("at"),
               literal(1).label("activity"))
        .join(other, and_(other.c.activity == one.c.activity, one.c.member < other.c.member))
    )
    both = union_all(between, together).subquery("meetings")
    by_exchange = func.min(case((both.c.activity == 0, both.c.at)))
    by_activity = func.min(case((both.c.activity == 1, both.c.at)))
    return (
        select(both.c.a, both.c.b, func.min(both.c.at).label("at"),
               case((by_exchange.is_(None), 1), (by_activity < by_exchange, 1), else_=0)
               .label("at_activity"))
        .group_by(both.c.a, both.c.b)
        .subquery("pairs")
    )


def old_network_growth(session: Session, bank_id: int, period: reports.Period
                       ) -> list[tuple[object, ...]]:
    from sqlalchemy import case, literal

    from ledger.models import UTCDateTime

    pairs = old_meetings(session, bank_id, period)
    start = literal(period.start_at, UTCDateTime)
    new = reports._count_by(session, case((pairs.c.at < start, "before"),
                                          else_=reports._month(session, pairs.c.at)))
    rows: list[tuple[object, ...]] = []
    total = new.get("before", 0)
    for m in period.months():
        total += new.get(reports._label(m), 0)
        rows.append((reports._label(m), new.get(reports._label(m), 0), total))
    return rows


def old_networks(session: Session, bank_id: int, period: reports.Period) -> tuple[int, int, int]:
    from sqlalchemy import func, literal, select
    from sqlalchemy.orm import aliased

    from ledger.models import UTCDateTime

    pairs = old_meetings(session, bank_id, period)
    start = literal(period.start_at, UTCDateTime)
    first, second = aliased(Member), aliased(Member)
    rows = session.execute(
        select(first.area, second.area, func.count(), func.sum(pairs.c.at_activity))
        .select_from(pairs)
        .join(first, first.id == pairs.c.a).join(second, second.id == pairs.c.b)
        .where(pairs.c.at >= start)
        .group_by(first.area, second.area)).all()
    count = sum(int(row[2]) for row in rows)
    at_activity = sum(int(row[3] or 0) for row in rows)
    across = reports._across_areas([(row[0], row[1], int(row[2])) for row in rows])
    return count, across, at_activity


PERIODS = [(JAN, APR), (FEB, MAR), (date(2023, 12, 1), date(2024, 6, 1)),
           (date(2024, 3, 15), date(2024, 4, 10)), (date(2024, 5, 1), date(2024, 6, 1))]


def assert_pairs_as_before(db: Database, periods: list[tuple[date, date]] = PERIODS) -> None:
    from ledger import pairs

    with db.reading() as session:
        bank_id = banks.bank_by_name(session, None).id
        assert pairs.breaches(session, bank_id) == []
        for start, end in periods:
            period = reports.Period(start, end)
            growth = reports.build(session, bank_id, "network-growth", start, end)
            assert growth.rows == old_network_growth(session, bank_id, period), (start, end)
            found = {i.name: i.amount for i in reports.coproduction(session, bank_id,
                                                                     start, end)}
            assert (found["New connections"], found["Connections across areas"],
                    found["Connections made at group activities"]) == \
                old_networks(session, bank_id, period), (start, end)


class Live(World):
    """Transfers at the moment they are written, as the services write them (not redated)."""

    def _move(self, source: int, target: int, hours: float, kind: str, when: date,
              what: str = "", key: str | None = None) -> Transfer:
        self.keys += 1
        return accounts.transfer(
            self.session, bank_id=self.bank.id, from_account_id=source, to_account_id=target,
            minutes=round(hours * 60), kind=kind, idempotency_key=key or f"test:{self.keys}",
            entered_by="system", description=what, enforce_limit=False,
        ).transfer


def random_ledger(session: Session, rng, transfers: list[Transfer],  # type: ignore[no-untyped-def]
                  live: bool = False) -> World:
    """A bank of eight members whose exchanges, gifts, recorded hours, activity credits and
    reversals fall on few days (so that meetings tie) from November 2023 to May 2024, or
    (``live``) at the moments they are written."""
    w = Live(session) if live else World(session)
    for n, name in enumerate(["Ana", "Ben", "Cy", "Dee", "Eve", "Fay", "Gus", "Hal"]):
        w.join(name, area=(None, "Brixton", "brixton ", "Stockwell")[n % 4])
    names = list(w.members)
    days = [date(2023, 11, 20), date(2023, 12, 5), JAN, date(2024, 1, 20), FEB,
            date(2024, 3, 14), date(2024, 3, 15), APR, date(2024, 4, 9), date(2024, 5, 2)]
    credited: set[tuple[int, str]] = set()
    for _ in range(rng.randint(20, 45)):
        roll, day = rng.random(), rng.choice(days)
        one, other = rng.sample(names, 2)
        if roll < 0.35:
            transfers.append(w.helped(one, other, rng.choice((0.5, 1, 2)), day))
        elif roll < 0.5:
            transfers.append(w.gift(one, other, 1, day))
        elif roll < 0.6:
            transfers.append(w.record(one, 1, day))
        elif roll < 0.85:
            activity = rng.randint(1, 4)
            fresh = [n for n in rng.sample(names, rng.randint(1, 4))
                     if (activity, n) not in credited]
            credited.update((activity, n) for n in fresh)
            transfers.extend(w.activity(activity, fresh, 2, day))
        else:
            open_ = [t for t in transfers if t.kind != "reversal"
                     and not any(u.reverses_id == t.id for u in transfers)]
            if open_:
                undo = accounts.reverse(session, rng.choice(open_).id, reason="mistake")
                if not live:
                    undo.transfer.created_at = at(rng.choice(days))
                transfers.append(undo.transfer)
    return w


@pytest.mark.parametrize("seed", range(8))
def test_connections_from_member_pairs_are_what_the_transfers_always_gave(db, seed):
    import random

    rng = random.Random(seed)
    transfers: list[Transfer] = []
    with db.writing() as session:
        random_ledger(session, rng, transfers)
    assert_pairs_as_before(db)
    # Later corrections: some entries redated after the fact, and more reversed.
    with db.writing() as session:
        for transfer in rng.sample(transfers, min(4, len(transfers))):
            session.get(Transfer, transfer.id).created_at = at(  # type: ignore[union-attr]
                rng.choice((JAN, FEB, date(2024, 3, 20))), rng.choice((9, 12)))
        reversed_ids = {t.reverses_id for t in session.query(Transfer) if t.reverses_id}
        open_ = [t.id for t in session.query(Transfer)
                 if t.kind != "reversal" and t.id not in reversed_ids]
        for transfer_id in rng.sample(open_, min(3, len(open_))):
            accounts.reverse(session, transfer_id, reason="late correction")
    assert_pairs_as_before(db)


@pytest.mark.parametrize("seed", range(4))
def test_connections_written_as_they_happen_are_what_the_transfers_always_gave(db, seed):
    """Not redated, each transfer takes the quick way into member_pairs (one upsert; one per
    other attendee of an activity); only reversals work pairs out again."""
    import random

    from ledger.models import utcnow

    rng = random.Random(100 + seed)
    today = utcnow().date()
    periods = [(today - timedelta(days=40), today + timedelta(days=1)),
               (today, today + timedelta(days=1)),
               (today + timedelta(days=1), today + timedelta(days=2))]
    transfers: list[Transfer] = []
    for _ in range(3):  # in three transactions, each adding to what the last one made
        with db.writing() as session:
            if transfers:
                _more_live(session, rng, transfers)
            else:
                random_ledger(session, rng, transfers, live=True)
        assert_pairs_as_before(db, periods)


def _more_live(session: Session, rng, transfers: list[Transfer]) -> None:  # type: ignore[no-untyped-def]
    """More exchanges, credits and reversals in a later transaction, among the same eight."""
    w = Live.__new__(Live)
    w.session, w.keys = session, 1000 * len(transfers)
    w.bank = banks.bank_by_name(session, None)
    w.members = {m.name: m for m in session.query(Member).filter(Member.bank_id == w.bank.id)}
    w.accounts = {name: members.member_account(session, m).id for name, m in w.members.items()}
    w.fund = banks.ensure_fund(session, w.bank)
    names = list(w.members)
    for _ in range(15):
        one, other = rng.sample(names, 2)
        roll = rng.random()
        if roll < 0.4:
            transfers.append(w.helped(one, other, 1, JAN))
        elif roll < 0.7:
            activity = rng.randint(1, 6)
            taken = {t.idempotency_key for t in session.query(Transfer)}
            fresh = [n for n in rng.sample(names, 3)
                     if f"activity:{activity}:{w.members[n].id}" not in taken]
            transfers.extend(w.activity(activity, fresh, 1, JAN))
        else:
            reversed_ids = {t.reverses_id for t in session.query(Transfer) if t.reverses_id}
            open_ = [t.id for t in session.query(Transfer)
                     if t.kind != "reversal" and t.id not in reversed_ids]
            if open_:
                transfers.append(accounts.reverse(session, rng.choice(open_),
                                                  reason="mistake").transfer)


def test_a_pair_that_met_only_through_a_reversed_exchange_has_not_met(db):
    with db.writing() as session:
        w = World(session)
        for name in ("Ana", "Ben", "Cy"):
            w.join(name)
        mistake = w.helped("Ana", "Ben", 1, JAN)
        first = w.gift("Ana", "Cy", 1, JAN)
        w.helped("Cy", "Ana", 1, MAR)  # Ana and Cy meet again in March
        w.reverse(mistake, FEB)
        w.reverse(first, FEB)
    # Ana and Ben never met; Ana and Cy first met in March, once January's gift was undone.
    assert report(db, "network-growth").rows == [
        ("2024-01", 0, 0), ("2024-02", 0, 0), ("2024-03", 1, 1)]
    assert_pairs_as_before(db)


def test_an_activity_credit_reversed_unpairs_its_attendee(db):
    with db.writing() as session:
        w = World(session)
        for name in ("Ana", "Ben", "Cy"):
            w.join(name)
        w.activity(1, ["Ana", "Ben"], 2, JAN)
        wrong = w.activity(1, ["Cy"], 2, FEB)[0]  # Cy was not there after all
        w.reverse(wrong, MAR)
    assert report(db, "network-growth").rows == [
        ("2024-01", 1, 1), ("2024-02", 0, 1), ("2024-03", 0, 1)]
    assert index(db)["Connections made at group activities"].amount == 1
    assert_pairs_as_before(db)


def test_ledger_verify_names_connections_that_disagree_with_the_transfers(cli, services):
    from sqlalchemy import update

    from ledger.models import MemberPair

    with services.db.writing() as session:
        w = World(session)
        w.join("Ana")
        w.join("Ben")
        w.helped("Ana", "Ben", 1, JAN)
    assert "Ledger OK" in cli("ledger", "verify").output
    # Someone moves a first meeting by hand (to make a funder's report look better).
    with services.db.writing() as session:
        session.execute(update(MemberPair).values(met_at=at(MAR), exchange_at=at(MAR)))
    broken = cli("ledger", "verify")
    assert broken.exit_code == 1
    assert "1 pairs of members met in the transfers are missing or differ" in broken.output
    fixed = cli("ledger", "rebuild-pairs")
    assert fixed.exit_code == 0, fixed.output
    assert "Ledger OK" in cli("ledger", "verify").output
    with services.db.reading() as session:
        bank_id = banks.bank_by_name(session, None).id
        assert reports.build(session, bank_id, "network-growth", JAN, FEB).rows == [
            ("2024-01", 1, 1)]
