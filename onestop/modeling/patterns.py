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
    """The late path on ``host`` (the activity that resolves the dossier): a
    non-interrupting ``apology_warning`` timer asks the head of the responsible agency
    whether the dossier will be late (its role comes from the regime); ``yes`` goes to
    the desk's apology letter, ``no`` waits until the due instant (``apology_overdue``)
    and, if the resolution is still running, asks for the explanation again."""
    timer = main.node("Timer_Apology", "boundaryEvent", "Cảnh báo hồ sơ có thể quá hạn",
                      resolver)
    timer.attached_to, timer.cancel_activity = host, False
    timer.timer = ("timeDate", "apology_warning")
    main.node("Task_ExplainDelay", "userTask",
              "Xác định hồ sơ có quá hạn không; nêu lý do, đề xuất ngày hẹn mới", resolver,
              agency="responsible", sla="propose", allotment="10%",
              form="will_be_late:yes|no; delay_reason?; new_appointment?")
    main.node("Gateway_WillBeLate", "exclusiveGateway", "Sẽ quá hạn?", resolver)
    main.node("Gateway_Letter", "exclusiveGateway", "", desk)
    overdue = main.node("Timer_Overdue", "intermediateCatchEvent",
                        "Đến hạn vẫn chưa có kết quả", resolver)
    overdue.timer = ("timeDate", "apology_overdue")
    main.node("Task_ExplainLate", "userTask", "Giải trình hồ sơ quá hạn, đề xuất ngày hẹn mới",
              resolver, agency="responsible", sla="propose", allotment="10%",
              form="delay_reason; new_appointment")
    main.node("Task_IssueApology", "userTask",
              "Phát hành Phiếu xin lỗi và hẹn lại ngày trả kết quả", desk,
              role="receiving_officer", sla="apology", allotment="5%", form="letter_no?")
    main.node("EndEvent_Apologised", "endEvent", "Đã xin lỗi, hẹn lại", desk)
    main.flow("Timer_Apology", "Task_ExplainDelay")
    main.flow("Task_ExplainDelay", "Gateway_WillBeLate")
    main.get("Gateway_WillBeLate").default = main.flow(
        "Gateway_WillBeLate", "Gateway_Letter", "Có").id
    main.flow("Gateway_WillBeLate", "Timer_Overdue", "Không", 'will_be_late == "no"')
    main.flow("Timer_Overdue", "Task_ExplainLate")
    main.flow("Task_ExplainLate", "Gateway_Letter")
    main.flow("Gateway_Letter", "Task_IssueApology")
    main.flow("Task_IssueApology", "EndEvent_Apologised")


def withdrawal(main: Pool, host: str, desk: str, resolver: str) -> None:
    """The applicant's withdrawal (message ``withdrawal_requested``, delivered through the
    portal or by a receiving officer) interrupts ``host``; the desk confirms it and hands
    the dossier back."""
    # Through the portal, or in writing at the desk (the officer records it).
    event = main.node("Event_Withdrawal", "boundaryEvent", "Công dân yêu cầu rút hồ sơ",
                      resolver, status="7", role="portal,receiving_officer", form="reason?")
    event.attached_to, event.message = host, "withdrawal_requested"
    main.node("Task_ConfirmWithdrawal", "userTask", "Xác nhận rút hồ sơ, trả lại hồ sơ",
              desk, role="receiving_officer", allotment="0.5wd", form="note?")
    main.node("EndEvent_Withdrawn", "endEvent", "Đã rút hồ sơ", desk)
    main.flow("Event_Withdrawal", "Task_ConfirmWithdrawal")
    main.flow("Task_ConfirmWithdrawal", "EndEvent_Withdrawn")
