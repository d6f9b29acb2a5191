"""Build the shipped process models in code, with their diagrams laid out.

    python examples/build_library.py [OUTPUT_FOLDER]      # default: processes/

This is how the models in ``processes/`` (other than the hand-drawn ``standard.bpmn``)
were made; designers may as well open and edit them in a modeler afterwards. It shows
:class:`onestop.modeling.Diagram`: pools, lanes, nodes with onestop properties, flows
with conditions, boundary timers and messages, call activities.

The models:

* ``resolution.bpmn`` — ``resolution``, called by the others: the specialist examines;
  may verify or inspect the site, ask once for a supplement, refuse with reasons, stop
  processing, or propose the result the leader signs.
* ``one_stop.bpmn`` — ``one_stop``: reception outcomes; digitize only what must be and is
  not re-used; transfer electronically at once or on paper under the cut-off rule;
  resolution with the apology path and the applicant's withdrawal; return at the desk,
  by post or electronically.
* ``full_online.bpmn`` — ``full_online``: an online dossier checked at the desk, the fee
  paid online (the payment platform's ``fee_paid`` message), electronic transfer,
  resolution, electronic result.
* ``interagency.bpmn`` — ``interagency`` and ``resolution_consulted``: two consulted
  agencies give opinions in parallel, each within its own share of the legal time.
* ``interlevel.bpmn`` — ``interlevel`` and ``province_resolution``: a commune desk
  receives, the province's one-stop centre takes the dossier over and the province
  resolves, the commune desk returns the result.
"""

from __future__ import annotations

import sys
from pathlib import Path

from onestop.modeling import Diagram, Pool
from onestop.modeling.patterns import apology_path, reception_alternatives, withdrawal

ACCEPT_FORM = ("outcome:accept|supplement|refuse; transfer?:electronic|paper; "
               "return_mode?:desk|post|online; note?")
ONLINE_FORM = "outcome:accept|supplement|refuse; return_mode?:online|desk|post; note?"


def reception(main: Pool, desk: str, form: str = ACCEPT_FORM,
              check: str = "Kiểm tra, tiếp nhận hồ sơ") -> str:
    """The start and the desk's check; returns the id of the outcome gateway (the
    supplement and refusal branches are added by :func:`reception_alternatives`)."""
    main.node("StartEvent_Submitted", "startEvent", "Hồ sơ được nộp", desk)
    main.node("Task_CheckDossier", "userTask", check, desk, role="receiving_officer",
              allotment="0.5wd", form=form)
    main.flow("StartEvent_Submitted", "Task_CheckDossier")
    main.node("Gateway_CheckOutcome", "exclusiveGateway", "Hồ sơ đầy đủ, hợp lệ?", desk)
    main.flow("Task_CheckDossier", "Gateway_CheckOutcome")
    return "Gateway_CheckOutcome"


def accepted(main: Pool, previous: str, desk: str, name: str = "",
             condition: str | None = None) -> str:
    """Status 2: the receipt and appointment slip; the service-level clock starts."""
    main.node("Event_Accepted", "intermediateThrowEvent", "Đã tiếp nhận, hẹn trả kết quả",
              desk, status="2")
    main.flow(previous, "Event_Accepted", name, condition)
    return "Event_Accepted"


def digitize(main: Pool, previous: str, desk: str) -> str:
    """Digitize what must be and is not re-used (nothing for an online dossier);
    returns the id of the merge after it."""
    main.node("Gateway_Digitize", "exclusiveGateway", "Còn thành phần cần số hóa?", desk)
    main.flow(previous, "Gateway_Digitize")
    main.node("Task_Digitize", "userTask", "Số hóa thành phần hồ sơ", desk,
              role="receiving_officer", allotment="5%")
    main.flow("Gateway_Digitize", "Task_Digitize", "Có", "len(to_digitize) > 0")
    main.node("Gateway_Digitized", "exclusiveGateway", "", desk)
    main.flow("Task_Digitize", "Gateway_Digitized")
    return "Gateway_Digitized"


def transfer(main: Pool, previous: str, desk: str) -> str:
    """Electronic transfer at once, or paper under the cut-off rule; returns the merge."""
    main.node("Gateway_Transfer", "exclusiveGateway", "Hình thức chuyển hồ sơ?", desk)
    main.flow(previous, "Gateway_Transfer")
    main.node("Task_TransferElectronic", "task", "Chuyển hồ sơ điện tử", desk, role="system")
    main.node("Task_TransferPaper", "userTask", "Chuyển hồ sơ giấy", desk,
              role="receiving_officer", allotment="cutoff")
    main.node("Gateway_Transferred", "exclusiveGateway", "", desk)
    main.flow("Task_TransferElectronic", "Gateway_Transferred")
    main.flow("Task_TransferPaper", "Gateway_Transferred")
    return "Gateway_Transferred"


def resolve_call(main: Pool, previous: str, desk: str, resolver: str, called: str) -> str:
    """In progress, the call to ``called``; then 'stopped' or 'resolved'. Returns the id
    of the 'resolved' event."""
    main.node("Event_InProgress", "intermediateThrowEvent", "Đang xử lý", resolver,
              status="4")
    main.flow(previous, "Event_InProgress")
    main.node("Call_Resolve", "callActivity", "Giải quyết hồ sơ", resolver).called = called
    main.flow("Event_InProgress", "Call_Resolve")
    main.node("Gateway_Result", "exclusiveGateway", "Kết quả giải quyết?", resolver)
    main.flow("Call_Resolve", "Gateway_Result")
    main.node("Event_Resolved", "intermediateThrowEvent", "Đã có kết quả", desk, status="9")
    resolved = main.flow("Gateway_Result", "Event_Resolved", "Có kết quả")
    main.get("Gateway_Result").default = resolved.id
    main.node("EndEvent_Stopped", "endEvent", "Dừng xử lý", resolver, status="8")
    main.flow("Gateway_Result", "EndEvent_Stopped", "Dừng xử lý", 'verdict == "stop"')
    return "Event_Resolved"


_RETURNS = {
    "desk": ("Task_ReturnAtDesk", "Tại quầy"),
    "post": ("Task_SendByPost", "Bưu chính"),
    "online": ("Task_ReturnOnline", "Trực tuyến"),
}


def returns(main: Pool, previous: str, desk: str, default: str = "desk") -> None:
    """Return at the desk, by post, or electronically; ``default`` is the mode when the
    check did not say (``return_mode``)."""
    main.node("Gateway_ReturnMode", "exclusiveGateway", "Hình thức trả kết quả?", desk)
    main.flow(previous, "Gateway_ReturnMode")
    main.node("Task_ReturnAtDesk", "userTask", "Trả kết quả tại Bộ phận Một cửa", desk,
              role="receiving_officer", allotment="5%", form="receiver?")
    main.node("Task_SendByPost", "userTask", "Chuyển kết quả qua dịch vụ bưu chính công ích",
              desk, role="receiving_officer", allotment="5%", form="postal_code")
    main.node("Task_ReturnOnline", "task", "Trả kết quả điện tử vào kho dữ liệu của công dân",
              desk, role="system")
    modes = [default, *(m for m in _RETURNS if m != default)]
    for mode in modes:
        task, label = _RETURNS[mode]
        flow = main.flow("Gateway_ReturnMode", task, label,
                         None if mode == default else f'return_mode == "{mode}"')
        if mode == default:
            main.get("Gateway_ReturnMode").default = flow.id
    main.node("Gateway_Returned", "exclusiveGateway", "", desk)
    for task, _ in _RETURNS.values():
        main.flow(task, "Gateway_Returned")
    main.node("EndEvent_Returned", "endEvent", "Đã trả kết quả", desk, status="10")
    main.flow("Gateway_Returned", "EndEvent_Returned")


def resolution(diagram: Diagram, process_id: str = "resolution",
               consulted: tuple[tuple[str, str, str], ...] = ()) -> None:
    """The resolving agency's work. With ``consulted`` (agency slot, lane name, share)
    triples, those agencies give their opinions in parallel first, each within its own
    share of the legal time, and the specialist appraises with them."""
    pool = diagram.pool(process_id, "Giải quyết hồ sơ tại cơ quan có thẩm quyền")
    pool.lane(f"Lane_{process_id}_Specialist", "Chuyên viên thụ lý", agency="resolver",
              role="specialist")
    for slot, name, _ in consulted:
        pool.lane(f"Lane_{process_id}_{slot}", name, agency=slot, role="specialist")
    pool.lane(f"Lane_{process_id}_Leader", "Lãnh đạo cơ quan", agency="resolver",
              role="leader")
    pool.lane(f"Lane_{process_id}_Desk", "Bộ phận Một cửa", agency="desk",
              role="receiving_officer")
    spec, lead, desk = (f"Lane_{process_id}_Specialist", f"Lane_{process_id}_Leader",
                        f"Lane_{process_id}_Desk")
    share = "25%" if consulted else "50%"
    pool.node("StartEvent_Resolve", "startEvent", "", spec)
    pool.node("Task_Examine", "userTask", "Thẩm định hồ sơ, dự thảo kết quả", spec,
              status="4", allotment=share,
              form="verdict:approve|verify|supplement|refuse|stop; missing?; note?")
    previous = "StartEvent_Resolve"
    if consulted:
        pool.node("Gateway_Consult", "parallelGateway", "Gửi lấy ý kiến", spec)
        pool.flow(previous, "Gateway_Consult")
        for slot, _, slot_share in consulted:
            pool.node(f"Task_Consult_{slot}", "userTask", "Cho ý kiến, xác minh theo đề nghị",
                      f"Lane_{process_id}_{slot}", allotment=slot_share,
                      form="opinion; note?")
            pool.flow("Gateway_Consult", f"Task_Consult_{slot}")
        pool.node("Gateway_Consulted", "parallelGateway", "Đủ ý kiến", spec)
        for slot, _, _ in consulted:
            pool.flow(f"Task_Consult_{slot}", "Gateway_Consulted")
        previous = "Gateway_Consulted"
    pool.flow(previous, "Task_Examine")
    pool.node("Gateway_Verdict", "exclusiveGateway", "Kết quả thẩm định?", spec)
    pool.flow("Task_Examine", "Gateway_Verdict")
    pool.node("Task_Approve", "userTask", "Phê duyệt, ký kết quả", lead, allotment="15%",
              form="document_no?")
    pool.node("EndEvent_Resolve", "endEvent", "", lead)
    approve = pool.flow("Gateway_Verdict", "Task_Approve", "Đủ điều kiện")
    pool.get("Gateway_Verdict").default = approve.id
    pool.flow("Task_Approve", "EndEvent_Resolve")
    pool.node("Task_Verify", "userTask", "Thẩm tra, xác minh, kiểm tra thực địa", spec,
              allotment="15%", form="findings")
    pool.flow("Gateway_Verdict", "Task_Verify", "Cần xác minh", 'verdict == "verify"')
    pool.flow("Task_Verify", "Task_Examine")
    pool.node("Task_ReceiveResolutionSupplement", "userTask",
              "Thông báo và nhận hồ sơ bổ sung", desk, status="5", form="supplemented?")
    pool.flow("Gateway_Verdict", "Task_ReceiveResolutionSupplement", "Cần bổ sung",
              'verdict == "supplement"')
    pool.flow("Task_ReceiveResolutionSupplement", "Task_Examine")
    pool.node("Task_SignRefusal", "userTask", "Ký văn bản từ chối, nêu rõ lý do", lead,
              allotment="15%", form="reason")
    pool.flow("Gateway_Verdict", "Task_SignRefusal", "Không đủ điều kiện",
              'verdict == "refuse"')
    pool.flow("Task_SignRefusal", "EndEvent_Resolve")
    pool.node("Task_SignStop", "userTask", "Ký thông báo dừng xử lý hồ sơ", lead,
              allotment="15%", form="reason")
    pool.flow("Gateway_Verdict", "Task_SignStop", "Dừng xử lý", 'verdict == "stop"')
    pool.node("EndEvent_Stop", "endEvent", "", lead)
    pool.flow("Task_SignStop", "EndEvent_Stop")


def desk_process(diagram: Diagram, process_id: str, name: str, documentation: str,
                 called: str, resolver_lane: str = "Cơ quan giải quyết") -> Pool:
    """The desk's process every in-person or postal dossier follows: reception outcomes,
    digitization, transfer, the call to ``called`` with the apology path and the
    applicant's withdrawal, return."""
    main = diagram.pool(process_id, name)
    main.documentation = documentation
    main.lane("Lane_Desk", "Bộ phận Một cửa", agency="desk")
    main.lane("Lane_Resolver", resolver_lane, agency="resolver")
    desk, resolver = "Lane_Desk", "Lane_Resolver"
    gateway = reception(main, desk)
    digitized = digitize(main, accepted(main, gateway, desk, "Đầy đủ", 'outcome == "accept"'),
                         desk)
    transferred = transfer(main, digitized, desk)
    returns(main, resolve_call(main, transferred, desk, resolver, called), desk)
    # Off the main path.
    reception_alternatives(main, desk, gateway, "Task_CheckDossier")
    _skip_digitize(main)
    main.get("Gateway_Transfer").default = main.flow(
        "Gateway_Transfer", "Task_TransferElectronic", "Điện tử").id
    main.flow("Gateway_Transfer", "Task_TransferPaper", "Hồ sơ giấy", 'transfer == "paper"')
    apology_path(main, "Call_Resolve", desk, resolver)
    withdrawal(main, "Call_Resolve", desk, resolver)
    return main


def _skip_digitize(main: Pool) -> None:
    main.get("Gateway_Digitize").default = main.flow(
        "Gateway_Digitize", "Gateway_Digitized", "Đã có (tái sử dụng)").id


def one_stop() -> Diagram:
    diagram = Diagram("one_stop")
    desk_process(diagram, "one_stop", "Quy trình một cửa: tiếp nhận, giải quyết, trả kết quả",
                 "Reception outcomes; digitize what must be and is not re-used; "
                 "electronic transfer at once or paper under the cut-off rule; "
                 "resolution (process 'resolution') with the apology path and the "
                 "applicant's withdrawal; return at the desk, by post or online.",
                 "resolution")
    return diagram


def full_online() -> Diagram:
    """An online dossier (toàn trình): checked at the desk, the fee paid online before the
    receipt, transferred electronically, resolved, the result returned electronically."""
    diagram = Diagram("full_online")
    main = diagram.pool("full_online",
                        "Quy trình trực tuyến toàn trình: tiếp nhận, thanh toán trực tuyến, "
                        "giải quyết, trả kết quả điện tử")
    main.documentation = (
        "Online check with the reception outcomes; when a fee is due on an online dossier, "
        "status 6 and a wait for the payment platform's 'fee_paid' message (unpaid after "
        "5 working days: not received); the receipt and appointment once paid; dossiers "
        "handed in at a desk are digitized; electronic transfer; resolution (process "
        "'resolution') with the apology path and the applicant's withdrawal; the result "
        "returned electronically unless the applicant asked for the desk or the post.")
    main.lane("Lane_Desk", "Bộ phận Một cửa", agency="desk")
    main.lane("Lane_Resolver", "Cơ quan giải quyết", agency="resolver")
    desk, resolver = "Lane_Desk", "Lane_Resolver"
    gateway = reception(main, desk, ONLINE_FORM, "Kiểm tra hồ sơ trực tuyến, tiếp nhận")
    main.node("Gateway_Fee", "exclusiveGateway", "Nộp phí, lệ phí trực tuyến?", desk)
    main.flow(gateway, "Gateway_Fee", "Đầy đủ", 'outcome == "accept"')
    main.node("Event_AwaitingFee", "intermediateThrowEvent", "Chờ thanh toán phí, lệ phí",
              desk, status="6")
    main.flow("Gateway_Fee", "Event_AwaitingFee", "Có phí, nộp trực tuyến",
              "channel == 2 and fee_due > 0")
    main.node("Gateway_Payment", "eventBasedGateway", "", desk)
    main.flow("Event_AwaitingFee", "Gateway_Payment")
    main.node("Event_FeePaid", "intermediateCatchEvent", "Đã thanh toán trực tuyến",
              desk).message = "fee_paid"
    main.flow("Gateway_Payment", "Event_FeePaid")
    main.node("Gateway_Paid", "exclusiveGateway", "", desk)
    main.flow("Event_FeePaid", "Gateway_Paid")
    digitized = digitize(main, accepted(main, "Gateway_Paid", desk), desk)
    main.node("Task_TransferElectronic", "task", "Chuyển hồ sơ điện tử", desk, role="system")
    main.flow(digitized, "Task_TransferElectronic")
    resolved = resolve_call(main, "Task_TransferElectronic", desk, resolver, "resolution")
    returns(main, resolved, desk, default="online")
    # Off the main path.
    reception_alternatives(main, desk, gateway, "Task_CheckDossier")
    main.get("Gateway_Fee").default = main.flow(
        "Gateway_Fee", "Gateway_Paid", "Không thu phí, hoặc nộp tại quầy").id
    window = main.node("Timer_PaymentWindow", "intermediateCatchEvent",
                       "Quá 5 ngày làm việc chưa nộp", desk)
    window.timer = ("timeDuration", "5wd")
    main.flow("Gateway_Payment", "Timer_PaymentWindow")
    main.node("EndEvent_Unpaid", "endEvent", "Không tiếp nhận: chưa nộp phí", desk,
              status="3")
    main.flow("Timer_PaymentWindow", "EndEvent_Unpaid")
    _skip_digitize(main)
    apology_path(main, "Call_Resolve", desk, resolver)
    withdrawal(main, "Call_Resolve", desk, resolver)
    return diagram


#: The judicial-record procedure's consulted agencies and their shares of the legal time.
CONSULTED = (("police", "Cơ quan công an (phối hợp)", "30%"),
             ("enforcement", "Cơ quan thi hành án dân sự (phối hợp)", "20%"))


def interagency() -> Diagram:
    diagram = Diagram("interagency")
    desk_process(diagram, "interagency",
                 "Quy trình liên thông: lấy ý kiến các cơ quan phối hợp song song",
                 "The one-stop desk's process calling 'resolution_consulted': the consulted "
                 "agencies (slots 'police' and 'enforcement') give their opinions in "
                 "parallel, each within its own share of the legal time; the agency that "
                 "holds the dossier when it runs late owes the apology.",
                 "resolution_consulted")
    resolution(diagram, "resolution_consulted", CONSULTED)
    return diagram


def interlevel() -> Diagram:
    diagram = Diagram("interlevel")
    desk_process(diagram, "interlevel",
                 "Quy trình liên thông hai cấp: xã tiếp nhận, tỉnh giải quyết",
                 "A commune desk receives, digitizes and transfers; 'province_resolution' "
                 "runs at the province: its one-stop centre (slot 'province_desk') takes "
                 "the dossier over, the competent agency resolves it (process "
                 "'resolution'), the centre sends the result back; the commune desk returns "
                 "it to the applicant.", "province_resolution", "Cấp tỉnh giải quyết")
    pool = diagram.pool("province_resolution", "Giải quyết liên thông tại cấp tỉnh")
    pool.lane("Lane_ProvinceDesk", "Trung tâm Phục vụ hành chính công tỉnh",
              agency="province_desk", role="receiving_officer")
    pool.lane("Lane_ProvinceResolver", "Cơ quan có thẩm quyền cấp tỉnh", agency="resolver")
    centre, resolver = "Lane_ProvinceDesk", "Lane_ProvinceResolver"
    pool.node("StartEvent_FromCommune", "startEvent", "Nhận hồ sơ từ cấp xã", centre)
    pool.node("Task_TakeOver", "userTask", "Tiếp nhận hồ sơ liên thông từ cấp xã", centre,
              allotment="0.5wd", form="note?")
    pool.flow("StartEvent_FromCommune", "Task_TakeOver")
    pool.node("Call_ProvinceResolve", "callActivity", "Giải quyết hồ sơ",
              resolver).called = "resolution"
    pool.flow("Task_TakeOver", "Call_ProvinceResolve")
    pool.node("Task_SendBack", "userTask", "Chuyển kết quả về Bộ phận Một cửa cấp xã",
              centre, allotment="0.5wd", form="note?")
    pool.flow("Call_ProvinceResolve", "Task_SendBack")
    pool.node("EndEvent_SentBack", "endEvent", "Đã chuyển kết quả về xã", centre)
    pool.flow("Task_SendBack", "EndEvent_SentBack")
    return diagram


def main_folder() -> Path:
    return Path(sys.argv[1]) if len(sys.argv) > 1 else \
        Path(__file__).resolve().parent.parent / "processes"


def build(folder: Path) -> list[Path]:
    written = []
    folder.mkdir(parents=True, exist_ok=True)
    shared = Diagram("resolution")
    resolution(shared)
    for name, diagram in (("resolution", shared), ("one_stop", one_stop()),
                          ("full_online", full_online()), ("interagency", interagency()),
                          ("interlevel", interlevel())):
        path = folder / f"{name}.bpmn"
        path.write_bytes(diagram.to_xml())
        written.append(path)
    return written


if __name__ == "__main__":
    for path in build(main_folder()):
        print(f"wrote {path}")
