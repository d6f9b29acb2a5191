"""Building blocks every one-stop model shares: the other reception outcomes and the
apology path (with the applicant's withdrawal). Used by the table importer and by the
shipped models' builder, so both draw them the same way."""

from __future__ import annotations

from .diagram import Pool


def reception_alternatives(main: Pool, desk: str, gateway: str, check: str) -> None:
    """The supplement request (back to ``check``) and the refusal, out of ``gateway``.
    Waiting for the applicant's supplement has no allotment: that time is the applicant's."""
    main.node("Task_RequestSupplement", "userTask",
              "Lập Phiếu yêu cầu bổ sung, hoàn thiện hồ sơ", desk, role="receiving_officer",
              allotment="0.5wd", form="missing")
    main.node("Task_ReceiveSupplement", "userTask", "Nhận hồ sơ bổ sung", desk,
              role="receiving_officer", status="5", form="supplemented?")
    main.node("Task_IssueRefusal", "userTask", "Lập Phiếu từ chối tiếp nhận hồ sơ", desk,
              role="receiving_officer", allotment="0.5wd", form="reason")
    main.node("EndEvent_Refused", "endEvent", "Không tiếp nhận", desk, status="3")
    main.flow(gateway, "Task_RequestSupplement", "Cần bổ sung", 'outcome == "supplement"')
    main.flow(gateway, "Task_IssueRefusal", "Từ chối", 'outcome == "refuse"')
    main.flow("Task_RequestSupplement", "Task_ReceiveSupplement")
    main.flow("Task_ReceiveSupplement", check)
    main.flow("Task_IssueRefusal", "EndEvent_Refused")


def apology_path(main: Pool, host: str, desk: str, resolver: str) -> None:
    """A non-interrupting ``apology_due`` timer on ``host``: the responsible agency
    proposes a new appointment, the desk issues the apology letter."""
    timer = main.node("Timer_Apology", "boundaryEvent", "1 ngày làm việc trước hạn", resolver)
    timer.attached_to, timer.cancel_activity = host, False
    timer.timer = ("timeDate", "apology_due")
    main.node("Task_ExplainDelay", "userTask", "Nêu lý do chậm, đề xuất ngày hẹn mới",
              resolver, role="specialist", agency="responsible", sla="propose",
              allotment="0.5wd", form="delay_reason; new_appointment")
    main.node("Task_IssueApology", "userTask",
              "Phát hành Phiếu xin lỗi và hẹn lại ngày trả kết quả", desk,
              role="receiving_officer", sla="apology", allotment="0.5wd", form="letter_no?")
    main.node("EndEvent_Apologised", "endEvent", "Đã xin lỗi, hẹn lại", desk)
    main.flow("Timer_Apology", "Task_ExplainDelay")
    main.flow("Task_ExplainDelay", "Task_IssueApology")
    main.flow("Task_IssueApology", "EndEvent_Apologised")


def withdrawal(main: Pool, host: str, desk: str, resolver: str) -> None:
    """The applicant's withdrawal (message ``withdrawal_requested``) interrupts ``host``;
    the desk confirms it and hands the dossier back."""
    event = main.node("Event_Withdrawal", "boundaryEvent", "Công dân yêu cầu rút hồ sơ",
                      resolver, status="7")
    event.attached_to, event.message = host, "withdrawal_requested"
    main.node("Task_ConfirmWithdrawal", "userTask", "Xác nhận rút hồ sơ, trả lại hồ sơ",
              desk, role="receiving_officer", allotment="0.5wd", form="note?")
    main.node("EndEvent_Withdrawn", "endEvent", "Đã rút hồ sơ", desk)
    main.flow("Event_Withdrawal", "Task_ConfirmWithdrawal")
    main.flow("Task_ConfirmWithdrawal", "EndEvent_Withdrawn")
