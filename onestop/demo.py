"""``onestop demo``: a handful of dossiers end to end, with scripted officers.

Runs on a fresh SQLite file and a manual clock starting on a Monday morning, so the
output is the same on every machine. Everything printed is read back from the engine's
event log, the same source forms and reports use.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from .clock import VIETNAM_TZ, ManualClock
from .engine import Engine
from .model import Channel, Dossier, DossierStatus, Event, EventKind, Officer

START = datetime(2025, 7, 7, 8, 0, tzinfo=VIETNAM_TZ)

STAFF = [
    Officer("tn.an", "Trần Ngọc An", {"AN-BINH-MC": ["receiving_officer"]}),
    Officer("vt.mai", "Võ Thị Mai", {"AN-BINH-MC": ["receiving_officer"]}),
    Officer("lv.binh", "Lê Văn Bình", {"AN-BINH-KT": ["specialist"]}),
    Officer("pq.cuong", "Phạm Quốc Cường", {"AN-BINH-KT": ["leader"]}),
    Officer("dt.dung", "Đặng Thùy Dung",
            {"AN-BINH-TP": ["specialist"], "AN-BINH-UB": ["specialist"]}),
    Officer("hm.hai", "Hoàng Minh Hải", {"AN-BINH-UB": ["leader"], "AN-BINH-TP": ["leader"]}),
]


@dataclass(frozen=True)
class Scenario:
    """One dossier's story: what is handed in and how each officer answers."""

    procedure: str
    applicant: dict[str, Any]
    components: list[str]
    channel: Channel
    answers: dict[str, list[dict[str, Any]]]
    stop_before: str | None = None


SCENARIOS = [
    Scenario("2.000575", {"name": "Nguyễn Thị Hoa", "id_number": "079190001234",
                          "business": "Tiệm tạp hóa Hoa Sen"},
             ["giay-de-nghi"], Channel.ONLINE,
             {"Task_CheckDossier": [{"outcome": "accept"}],
              "Task_Examine": [{"verdict": "approve"}]}),
    Scenario("2.000815", {"name": "Trương Văn Đức", "id_number": "079085004321"},
             ["ban-chinh", "ban-sao"], Channel.IN_PERSON,
             {"Task_CheckDossier": [{"outcome": "accept"}],
              "Task_Examine": [{"verdict": "approve"}]}),
    Scenario("1.009994", {"name": "Bùi Thị Ngọc Ánh", "address": "Ấp Phú Hòa, xã An Bình"},
             ["don-de-nghi", "giay-to-dat"], Channel.IN_PERSON,
             {"Task_CheckDossier": [{"outcome": "supplement"}, {"outcome": "accept"}],
              "Task_RequestSupplement": [{"missing": ["ban-ve"]}],
              "Task_ReceiveSupplement": [{"supplemented": ["ban-ve"]}],
              "Task_Examine": [{"verdict": "approve"}]}),
    Scenario("1.001193", {"name": "Lý Gia Khánh (cha)", "child": "Lý Gia Bảo"},
             ["to-khai-khai-sinh"], Channel.POSTAL,
             {"Task_CheckDossier": [{"outcome": "refuse"}],
              "Task_IssueRefusal": [{"reason": "Thiếu Giấy chứng sinh bản chính; hồ sơ nộp "
                                               "qua bưu chính không ký tờ khai"}]}),
    Scenario("2.000575", {"name": "Phan Thanh Tùng", "business": "Quán cà phê Gió Sông"},
             ["giay-de-nghi", "bien-ban-hop"], Channel.IN_PERSON,
             {"Task_CheckDossier": [{"outcome": "accept"}],
              "Task_Examine": [{"verdict": "approve"}]}, stop_before="Task_Approve"),
]

#: Minutes each step takes in the scripted day (the clock moves by these).
STEP_MINUTES = {"Task_CheckDossier": 10, "Task_RequestSupplement": 5,
                "Task_ReceiveSupplement": 60, "Task_IssueRefusal": 10,
                "Task_Digitize": 10, "Task_Transfer": 5, "Task_Examine": 20,
                "Task_Approve": 15, "Task_ReturnResult": 5}
LUNCH = ((11, 30), (13, 0))
#: When the demo sweeps due timers (a portal calls fire_due_timers() every few minutes),
#: and how the late dossier's late path is answered, and when.
APOLOGY_SWEEP = datetime(2025, 7, 8, 16, 0, tzinfo=VIETNAM_TZ)
LATE_ANSWERS = [
    ("Task_ExplainDelay", datetime(2025, 7, 8, 16, 30, tzinfo=VIETNAM_TZ),
     {"will_be_late": "yes", "delay_reason": "Lãnh đạo phòng đi công tác, chưa ký kết quả",
      "new_appointment": "2025-07-14"}),
    ("Task_IssueApology", datetime(2025, 7, 9, 8, 0, tzinfo=VIETNAM_TZ),
     {"letter_no": "01/PXL-MC"}),
]


def run_demo(database: str | Path, out: TextIO, *,
             library: str | Path | None = None) -> list[Dossier]:
    """Run the scripted dossiers on ``database`` (recreated) and print their story."""
    path = Path(database)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    clock = ManualClock(START)
    engine = Engine(str(path), library=library, clock=clock)
    names = {officer.id: officer.name for officer in STAFF}
    names["portal"] = "Cổng dịch vụ công"
    try:
        for officer in STAFF:
            engine.add_officer(officer)
        codes = []
        for number, scenario in enumerate(SCENARIOS):
            if number:
                clock.advance(minutes=15)
            receiver = None if scenario.channel is Channel.ONLINE else STAFF[number % 2].id
            dossier = engine.receive(scenario.procedure, applicant=scenario.applicant,
                                     components=scenario.components, channel=scenario.channel,
                                     officer=receiver,
                                     desk=None if receiver else "AN-BINH-MC")
            codes.append(dossier.code)
        # Officers work through the open dossiers in turns, one step each.
        replies = [{step: list(r) for step, r in s.answers.items()} for s in SCENARIOS]
        moving = True
        while moving:
            moving = False
            for code, scenario, answers in zip(codes, SCENARIOS, replies, strict=True):
                moving |= _step(engine, clock, code, scenario, answers)
        # The last dossier waits for the leader's signature. On Tuesday afternoon the
        # warning asks the head of the agency whether it will be late, early enough for
        # the apology letter to reach the applicant a working day before the appointment.
        clock.set(APOLOGY_SWEEP)
        fired = engine.fire_due_timers()
        for timer in fired:
            for step, moment, data in LATE_ANSWERS:
                for task in engine.dossier(timer.dossier_code).open_tasks:
                    if task.step == step:
                        clock.set(moment)
                        engine.complete(task.id, _officer_for(task.agency, task.role), data)
        print(f"onestop demo: {len(codes)} dossiers on {path} (SQLite)\n", file=out)
        finals = []
        for code in codes:
            dossier = engine.dossier(code)
            finals.append(dossier)
            _print_story(engine, dossier, names, out)
        print("Final statuses (status; standing against the appointment; apology letter)",
              file=out)
        width = max(len(d.code) for d in finals)
        for dossier in finals:
            report = engine.sla(dossier.code)
            print(f"  {dossier.code:<{width}}  {int(dossier.status):>2}  "
                  f"{dossier.status.label_vi:<20}  {report.mark.label_vi:<14}  "
                  f"{report.apology_status.label_vi}", file=out)
        return finals
    finally:
        engine.close()


def _print_story(engine: Engine, dossier: Dossier, names: dict[str, str],
                 out: TextIO) -> None:
    """A dossier's story: its events as the desk would tell them, and where it is now."""
    catalog = engine.library.catalog
    print(f"Dossier {dossier.code}", file=out)
    print(f"  {dossier.procedure_name} ({dossier.procedure}); "
          f"channel: {dossier.channel.name.lower().replace('_', ' ')}; "
          f"applicant: {dossier.applicant.get('name')}", file=out)
    history = engine.history(dossier.code)
    for index, event in enumerate(history):
        line = _event_line(engine, dossier, event, history[index + 1:], names)
        if line is not None:
            print(f"  {event.at.strftime('%Y-%m-%d %H:%M')}  {line}", file=out)
    for task in dossier.open_tasks:
        holder = names.get(task.claimed_by or "") or \
            f"any {task.role} of {catalog.agency(task.agency).name}"
        print(f"  now at: {task.name} (held by {holder})", file=out)
    print(file=out)


def _event_line(engine: Engine, dossier: Dossier, event: Event, later: list[Event],
                names: dict[str, str]) -> str | None:
    """One event of the story (None: not told)."""
    catalog = engine.library.catalog
    actor = names.get(event.actor or "", event.actor or "")
    detail = event.detail
    if event.kind is EventKind.RECEIVED:
        return f"received by {actor} at {catalog.agency(event.agency or '').name}"
    if event.kind is EventKind.COMPLETED:
        handed = [e for e in later if e.kind is EventKind.HANDED_OVER and e.at == event.at
                  and e.step == event.step]
        onward = "; ".join(
            f"{_step_name(engine, dossier, e.detail['to_step'])} "
            f"({e.detail['to_role']}, {catalog.agency(e.detail['to_agency']).name})"
            for e in handed)
        said = "; ".join(f"{_FIELD_LABELS[k]}: {_said(v)}"
                         for k, v in detail.items() if k in _FIELD_LABELS)
        return (f"{_step_name(engine, dossier, event.step)} — {actor}"
                + (f" ({said})" if said else "") + (f" → {onward}" if onward else ""))
    if event.kind is EventKind.STATUS_CHANGED:
        status = DossierStatus(detail["to"])
        appointed = detail.get("appointment")
        return (f"status {int(status)}: {status.label_vi}"
                + (f"; hẹn trả {_slip(appointed)}" if appointed else ""))
    if event.kind is EventKind.TIMER_FIRED:
        return (f"{_step_name(engine, dossier, event.step)} "
                f"(timer, due {_slip(detail['due'])})")
    if event.kind is EventKind.TASK_CANCELLED and detail.get("reason"):
        return (f"withdrawn: {_step_name(engine, dossier, event.step)} "
                f"(the resolution has ended)")
    if event.kind is EventKind.APPOINTMENT_SET:
        return (f"new appointment {_slip(detail['appointment'])} ({detail['reason']}"
                + (f": {detail['delay_reason']}; responsible "
                   f"{catalog.agency(detail['responsible']).name}"
                   if detail.get("delay_reason") else "") + ")")
    return None


def _step(engine: Engine, clock: ManualClock, code: str, scenario: Scenario,
          answers: dict[str, list[dict[str, Any]]]) -> bool:
    """Let the right officer do the dossier's next step; False when it has none to do."""
    dossier = engine.dossier(code)
    if not dossier.open_tasks or dossier.open_tasks[0].step == scenario.stop_before:
        return False
    task = dossier.open_tasks[0]
    officer = _officer_for(task.agency, task.role)
    clock.advance(minutes=STEP_MINUTES.get(task.step, 30))
    now = clock.now()
    if LUNCH[0] <= (now.hour, now.minute) < LUNCH[1]:
        clock.set(now.replace(hour=LUNCH[1][0], minute=LUNCH[1][1]))
    engine.fire_due_timers()            # as a portal's scheduler does, every few minutes
    engine.claim(task.id, officer)
    queued = answers.get(task.step)
    engine.complete(task.id, officer, queued.pop(0) if queued else {})
    return True


#: Form fields the story prints after a completed step.
_FIELD_LABELS = {"outcome": "outcome", "reason": "reason", "will_be_late": "will be late",
                 "delay_reason": "reason", "letter_no": "letter"}


def _said(value: Any) -> str:
    return str(value) if not isinstance(value, list) else ", ".join(map(str, value))


def _slip(instant: str) -> str:
    return datetime.fromisoformat(instant).strftime("%H:%M %d/%m/%Y")


def _officer_for(agency: str, role: str) -> str:
    for officer in STAFF:
        if officer.has_role(agency, role):
            return officer.id
    raise LookupError(f"the demo has no {role} at {agency}")


def _step_name(engine: Engine, dossier: Dossier, step: str | None) -> str:
    model = engine.library.models.get(dossier.process)
    info = model.step(model.process_id, step) if model is not None and step else None
    return info.name if info is not None else (step or "")
