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


def reception(main: Pool, desk: str, form: str = ACCEPT_FORM) -> str:
    """The three reception outcomes; returns the id of the 'accepted' event."""
    main.node("StartEvent_Submitted", "startEvent", "Hồ sơ được nộp", desk)
    main.node("Task_CheckDossier", "userTask", "Kiểm tra, tiếp nhận hồ sơ", desk,
              role="receiving_officer", form=form)
    main.flow("StartEvent_Submitted", "Task_CheckDossier")
    main.node("Gateway_CheckOutcome", "exclusiveGateway", "Hồ sơ đầy đủ, hợp lệ?", desk)
    main.flow("Task_CheckDossier", "Gateway_CheckOutcome")
    main.node("Event_Accepted", "intermediateThrowEvent", "Đã tiếp nhận, hẹn trả kết quả",
              desk, status="2")
    main.flow("Gateway_CheckOutcome", "Event_Accepted", "Đầy đủ", 'outcome == "accept"')
    return "Event_Accepted"


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


def returns(main: Pool, previous: str, desk: str) -> None:
    """Return at the desk (default), by post, or electronically."""
    main.node("Gateway_ReturnMode", "exclusiveGateway", "Hình thức trả kết quả?", desk)
    main.flow(previous, "Gateway_ReturnMode")
    gateway = main.get("Gateway_ReturnMode")
    main.node("Task_ReturnAtDesk", "userTask", "Trả kết quả tại Bộ phận Một cửa", desk,
              role="receiving_officer", allotment="5%", form="receiver?")
    gateway.default = main.flow("Gateway_ReturnMode", "Task_ReturnAtDesk", "Tại quầy").id
    main.node("Task_SendByPost", "userTask", "Chuyển kết quả qua dịch vụ bưu chính công ích",
              desk, role="receiving_officer", allotment="5%", form="postal_code")
    main.flow("Gateway_ReturnMode", "Task_SendByPost", "Bưu chính", 'return_mode == "post"')
    main.node("Task_ReturnOnline", "task", "Trả kết quả điện tử vào kho dữ liệu của công dân",
              desk, role="system")
    main.flow("Gateway_ReturnMode", "Task_ReturnOnline", "Trực tuyến",
              'return_mode == "online"')
    main.node("Gateway_Returned", "exclusiveGateway", "", desk)
    for task in ("Task_ReturnAtDesk", "Task_SendByPost", "Task_ReturnOnline"):
        main.flow(task, "Gateway_Returned")
    main.node("EndEvent_Returned", "endEvent", "Đã trả kết quả", desk, status="10")
    main.flow("Gateway_Returned", "EndEvent_Returned")


def resolution(diagram: Diagram, process_id: str = "resolution",
               consulted: tuple[str, ...] = ()) -> None:
    """The resolving agency's work; with ``consulted`` agency slots, their opinions in
    parallel, each within its own share."""
    pool = diagram.pool(process_id, "Giải quyết hồ sơ tại cơ quan có thẩm quyền")
    pool.lane(f"Lane_{process_id}_Specialist", "Chuyên viên thụ lý", agency="resolver",
              role="specialist")
    for slot in consulted:
        pool.lane(f"Lane_{process_id}_{slot}", f"Cơ quan phối hợp ({slot})", agency=slot,
                  role="consulted_agency")
    pool.lane(f"Lane_{process_id}_Leader", "Lãnh đạo cơ quan", agency="resolver",
              role="leader")
    pool.lane(f"Lane_{process_id}_Desk", "Bộ phận Một cửa", agency="desk",
              role="receiving_officer")
    spec, lead, desk = (f"Lane_{process_id}_Specialist", f"Lane_{process_id}_Leader",
                        f"Lane_{process_id}_Desk")
    share = "40%" if consulted else "50%"
    pool.node("StartEvent_Resolve", "startEvent", "", spec)
    pool.node("Task_Examine", "userTask", "Thẩm định hồ sơ, dự thảo kết quả", spec,
              status="4", allotment=share,
              form="verdict:approve|verify|supplement|refuse|stop; missing?; note?")
    previous = "StartEvent_Resolve"
    if consulted:
        pool.node("Gateway_Consult", "parallelGateway", "", spec)
        pool.flow(previous, "Gateway_Consult")
        for slot in consulted:
            pool.node(f"Task_Consult_{slot}", "userTask", "Cho ý kiến về hồ sơ",
                      f"Lane_{process_id}_{slot}", allotment="20%", form="opinion; note?")
            pool.flow("Gateway_Consult", f"Task_Consult_{slot}")
        pool.node("Gateway_Consulted", "parallelGateway", "", spec)
        for slot in consulted:
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


def one_stop() -> Diagram:
    diagram = Diagram("one_stop")
    main = diagram.pool("one_stop", "Quy trình một cửa: tiếp nhận, giải quyết, trả kết quả")
    main.documentation = ("Reception outcomes; digitize what must be and is not re-used; "
                          "electronic transfer at once or paper under the cut-off rule; "
                          "resolution (process 'resolution') with the apology path and the "
                          "applicant's withdrawal; return at the desk, by post or online.")
    main.lane("Lane_Desk", "Bộ phận Một cửa", agency="desk")
    main.lane("Lane_Resolver", "Cơ quan giải quyết", agency="resolver")
    desk, resolver = "Lane_Desk", "Lane_Resolver"
    accepted = reception(main, desk)
    main.node("Gateway_Digitize", "exclusiveGateway", "Còn thành phần cần số hóa?", desk)
    main.flow(accepted, "Gateway_Digitize")
    main.node("Task_Digitize", "userTask", "Số hóa thành phần hồ sơ", desk,
              role="receiving_officer", allotment="5%")
    main.flow("Gateway_Digitize", "Task_Digitize", "Có", "len(to_digitize) > 0")
    main.node("Gateway_Digitized", "exclusiveGateway", "", desk)
    main.flow("Task_Digitize", "Gateway_Digitized")
    main.node("Gateway_Transfer", "exclusiveGateway", "Hình thức chuyển hồ sơ?", desk)
    main.flow("Gateway_Digitized", "Gateway_Transfer")
    main.node("Task_TransferElectronic", "task", "Chuyển hồ sơ điện tử", desk, role="system")
    main.node("Task_TransferPaper", "userTask", "Chuyển hồ sơ giấy", desk,
              role="receiving_officer", allotment="cutoff")
    main.node("Gateway_Transferred", "exclusiveGateway", "", desk)
    main.flow("Task_TransferElectronic", "Gateway_Transferred")
    main.flow("Task_TransferPaper", "Gateway_Transferred")
    resolved = resolve_call(main, "Gateway_Transferred", desk, resolver, "resolution")
    returns(main, resolved, desk)
    # Off the main path.
    reception_alternatives(main, desk, "Gateway_CheckOutcome", "Task_CheckDossier")
    digitize = main.get("Gateway_Digitize")
    digitize.default = main.flow("Gateway_Digitize", "Gateway_Digitized", "Đã có (tái sử dụng)").id
    transfer = main.get("Gateway_Transfer")
    transfer.default = main.flow("Gateway_Transfer", "Task_TransferElectronic", "Điện tử").id
    main.flow("Gateway_Transfer", "Task_TransferPaper", "Hồ sơ giấy", 'transfer == "paper"')
    apology_path(main, "Call_Resolve", desk, resolver)
    withdrawal(main, "Call_Resolve", desk, resolver)
    return diagram


def main_folder() -> Path:
    return Path(sys.argv[1]) if len(sys.argv) > 1 else \
        Path(__file__).resolve().parent.parent / "processes"


def build(folder: Path) -> list[Path]:
    written = []
    shared = Diagram("resolution")
    resolution(shared)
    for name, diagram in (("resolution", shared), ("one_stop", one_stop())):
        path = folder / f"{name}.bpmn"
        path.write_bytes(diagram.to_xml())
        written.append(path)
    return written


if __name__ == "__main__":
    for path in build(main_folder()):
        print(f"wrote {path}")
