"""The event log as reports and exports read it: typed payloads, a self-sufficient receipt,
and a keyset-paginated stream across dossiers (on SQLite, PostgreSQL and memory)."""

from __future__ import annotations

import unicodedata
from datetime import datetime, timedelta

import pytest

from onestop import VIETNAM_TZ, EventKind, InvalidInput
from onestop.events import (
    EVENT_SCHEMA,
    PAYLOADS,
    AppointmentSet,
    ApologyRequested,
    Claimed,
    Completed,
    DataReused,
    DelayAssessed,
    Digitized,
    FeedbackAnswered,
    FeedbackReceived,
    Finished,
    HandedOver,
    MessageReceived,
    Paid,
    Rated,
    Reassigned,
    Received,
    Released,
    ResultIssued,
    StatusChanged,
    SupplementRequested,
    TaskCancelled,
    TaskReady,
    TimerFired,
    decode,
    encode,
    upcast,
)

from .conftest import drive

AT = datetime(2025, 7, 8, 9, 30, tzinfo=VIETNAM_TZ)


def receive(engine, name: str = "Nguyễn Thị Hoa", procedure: str = "2.000575",
            components=("giay-de-nghi",)) -> str:
    return engine.receive(procedure, applicant={"name": name}, components=list(components),
                          officer="tn.an").code


def test_the_receipt_alone_tells_who_applied_for_what_where_and_at_what_fee(engine):
    code = receive(engine)
    (received,) = [e for e in engine.history(code) if e.kind is EventKind.RECEIVED]
    payload = received.payload
    proc = engine.procedure("2.000575")
    model = engine.library.model_for(proc)
    assert isinstance(payload, Received)
    assert payload == Received(
        procedure="2.000575", channel=1, desk="AN-BINH-MC",
        applicant={"name": "Nguyễn Thị Hoa"}, procedure_name=proc.name,
        legal_time=str(proc.legal_time), model=model.spec_hash,
        resolving_agency=proc.agency, agencies=dict(proc.agencies), regime="ND118-2025",
        boundary_free=False, components=("giay-de-nghi",), held=(),
        to_digitize=("giay-de-nghi",), missing=(), fee_due=proc.fee_total)
    assert received.detail["fee_due"] == proc.fee_total > 0


@pytest.mark.parametrize("payload", [
    Received("2.000575", 2, "AN-BINH-MC", {"name": "Lê Thị Ánh"}, "Đăng ký", "3wd", "ab12",
             "AN-BINH-KT", {"consulted": "TINH-STP"}, "ND118-2025", True, ("a", "b"), ("b",),
             (), ("c",), 0),
    TaskReady(AT), TaskReady(None), Claimed(), Released("lv.binh"), Released(None),
    Reassigned("lv.binh", "dt.dung"), Reassigned(None, "dt.dung"),
    Completed({"verdict": "approve", "note": "Đủ điều kiện"}), Completed({}),
    HandedOver("Task_Examine", "AN-BINH-KT", "specialist"), TimerFired(AT),
    MessageReceived("withdraw", {"reason": "Rút"}), TaskCancelled("resolution_ended"),
    TaskCancelled(None), DelayAssessed(False, False),
    DelayAssessed(True, True, "Chờ xác minh", AT + timedelta(days=3), AT),
    ApologyRequested(None, None), ApologyRequested("Đi thực địa", AT),
    SupplementRequested(True, "pause", AT),
    AppointmentSet(AT, AT - timedelta(days=1), "supplement_pause"),
    AppointmentSet(AT, AT - timedelta(days=1), "apology", "Chậm", "AN-BINH-KT", "01/XL",
                   AT - timedelta(days=2), True, False),
    StatusChanged(1, 2, AT), StatusChanged(2, 4, None), Finished(10),
    Received("2.000488", 1, "TINH-TTPVHCC", held=("cccd",), sources={"cccd": "CSDLQG-DC"}),
    Digitized({"to-khai": "H12.01-TK-000001"}), DataReused({"cccd": "CSDLQG-DC"}),
    Paid(100_000, True, "PAYGOV-1"), Paid(2_000, False, None),
    ResultIssued(True, False, ("GCN-1",)), ResultIssued(False, True),
    Rated("very_satisfied"), Rated("dissatisfied", 2, "Chậm trả lời"),
    FeedbackReceived(1, "kien_nghi", "Đề nghị giảm giấy tờ", AT),
    FeedbackAnswered(1, "Đã tiếp thu", AT, False),
], ids=lambda p: type(p).__name__)
def test_every_payload_reads_back_as_written(payload):
    assert decode(payload.kind, encode(payload)) == payload


def test_every_kind_has_exactly_one_payload_type():
    assert set(PAYLOADS) == set(EventKind)
    assert len(set(PAYLOADS.values())) == len(EventKind)


def test_a_receipt_written_under_schema_1_reads_with_what_was_not_kept_as_unknown():
    old = {"procedure": "2.000575", "channel": 1, "components": ["giay-de-nghi"],
           "desk": "AN-BINH-MC", "boundary_free": False, "held": []}
    payload = decode("received", upcast("received", old, 1))
    assert payload.procedure == "2.000575" and payload.components == ("giay-de-nghi",)
    assert payload.applicant == {} and payload.fee_due is None
    assert payload.to_digitize is None and payload.missing is None
    # Other kinds did not change between the schemas.
    assert upcast("task_ready", {"due": AT.isoformat()}, 1) == {"due": AT.isoformat()}
    with pytest.raises(ValueError, match="newer"):
        upcast("received", old, EVENT_SCHEMA + 1)


def test_a_receipt_written_under_schema_2_reads_with_no_sources():
    old = {"procedure": "2.000488", "channel": 1, "desk": "TINH-TTPVHCC",
           "held": ["giay-to-tuy-than"]}
    payload = decode("received", upcast("received", old, 2))
    assert payload.held == ("giay-to-tuy-than",) and payload.sources == {}


def test_the_stream_reads_every_dossiers_events_in_order_a_page_at_a_time(engine, clock):
    codes = [receive(engine, f"Người nộp {n}") for n in range(3)]
    for code in codes:
        clock.advance(minutes=7)
        drive(engine, code, stop_before="Task_Approve")
    everything = list(engine.events())
    assert [e.id for e in everything] == sorted(e.id for e in everything)
    assert len({e.id for e in everything}) == len(everything)
    for code in codes:
        assert [e for e in everything if e.dossier_code == code] == engine.history(code)
    assert all(e.procedure == "2.000575" for e in everything)
    # Small pages, and resuming after the last id seen, give the same stream.
    assert list(engine.events(page=2)) == everything
    half = everything[len(everything) // 2]
    assert list(engine.events(after=half.id)) == everything[len(everything) // 2 + 1:]
    assert list(engine.events(limit=5, page=2)) == everything[:5]
    assert list(engine.events(limit=0)) == []


def test_the_stream_filters_by_kind_agency_procedure_and_period(engine, clock):
    first = receive(engine)
    clock.advance(hours=2)
    second = receive(engine, "Trần Văn Bảo")
    drive(engine, second, stop_before="Task_Approve")
    received = list(engine.events(kinds=[EventKind.RECEIVED]))
    assert [e.dossier_code for e in received] == [first, second]
    assert list(engine.events(kinds="received")) == received
    assert {e.kind for e in engine.events(kinds=["task_ready", "completed"])} == \
        {EventKind.TASK_READY, EventKind.COMPLETED}
    by_resolver = list(engine.events(agency="AN-BINH-KT"))
    assert by_resolver and all(e.agency == "AN-BINH-KT" for e in by_resolver)
    assert list(engine.events(procedure="1.999999")) == []
    later = list(engine.events(since=clock.now()))
    assert later and all(e.at >= clock.now() for e in later)
    assert first not in {e.dossier_code for e in later}
    earlier = list(engine.events(until=clock.now()))
    assert {e.dossier_code for e in earlier} == {first}
    assert len(earlier) + len(later) == len(list(engine.events()))


def test_reading_the_stream_holds_no_lock_while_commands_go_on(engine, clock):
    codes = [receive(engine, f"Người nộp {n}") for n in range(2)]
    seen = []
    for event in engine.events(page=1):
        seen.append(event.kind)
        if len(seen) == 1:
            # A command in the middle of a report: it neither waits nor fails.
            engine.claim(engine.dossier(codes[0]).open_tasks[0].id, "tn.an")
    assert EventKind.CLAIMED in seen


def test_vietnamese_text_reads_back_from_the_stream_as_nfc(engine):
    decomposed = unicodedata.normalize("NFD", "Nguyễn Thị Thuỷ")
    code = receive(engine, decomposed)
    (received,) = engine.events(kinds=["received"])
    assert received.dossier_code == code
    assert received.payload.applicant["name"] == unicodedata.normalize("NFC", decomposed)


@pytest.mark.parametrize("arguments, message", [
    ({"after": -1}, "after must be an event id"),
    ({"after": "7"}, "after must be an event id"),
    ({"kinds": ["recieved"]}, "not an event kind"),
    ({"since": datetime(2025, 7, 7)}, "timezone-aware"),
    ({"until": "2025-07-07"}, "timezone-aware"),
    ({"limit": -2}, "limit must be"),
    ({"page": 0}, "page must be"),
    ({"agency": ""}, "agency"),
])
def test_bad_stream_arguments_are_refused_before_anything_is_read(engine, arguments, message):
    with pytest.raises(InvalidInput, match=message):
        engine.events(**arguments)


def test_an_event_id_beyond_what_a_store_holds_is_refused(engine):
    with pytest.raises(InvalidInput, match="after must be an event id"):
        engine.events(after=2**63)
    assert list(engine.events(after=2**63 - 1)) == []
