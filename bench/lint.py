"""How loading and linting a model grow with its size: onestop vs. SpiffWorkflow vs. lxml.

Generates one BPMN file per size (default 2,500 / 5,000 / 10,000 / 20,000 / 40,000
sequence flows): processes of 100 steps each (the engine runs at most 600 steps in a row
in one process, so a large library is many processes), each a chain of user tasks, each
followed by an exclusive gateway whose conditional flow loops back to the task
(``verdict == "redo"``) and whose default flow goes on; every tenth task has a
non-interrupting boundary timer (``P2D``) leading to a notification task and an end
event; every node and flow is drawn (BPMNDI shapes and edges), as a modeler saves it. On
each file, in the same run:

* ours: ``onestop.bpmn.loader.load_models`` (what ``Engine`` loads) and
  ``onestop.modeling.lint.lint`` (every check, the load and the dry run);
* peer: SpiffWorkflow's own parser (``SpiffBpmnParser``, the one onestop extends)
  parsing the same file and building the process spec, with no onestop checks;
* floor: lxml parsing the file.

SpiffWorkflow's parser recurses once per node along a path, so a long chain needs a
higher recursion limit than Python's default: the bench raises it for every contender
(onestop's loader raises it itself for the time of a load).

Each figure is the median of ``--rounds`` runs (default 3). The growth exponent of each
contender is the slope of log(time) against log(flows), fitted over all sizes: 1 is
linear, 2 quadratic.

Usage: python bench/lint.py [--sizes 2500,5000,10000,20000,40000] [--rounds 3]
The last line printed is one JSON object with the times and exponents.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/calendar.py would shadow the standard library's calendar module (imported by
# SpiffWorkflow and holidays): run without this folder on the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Callable  # noqa: E402

from lxml import etree  # noqa: E402
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser  # noqa: E402

from onestop.bpmn.loader import load_models  # noqa: E402
from onestop.modeling.lint import ERROR, lint  # noqa: E402

#: Steps of one process: a library file holds many processes, each a chain of this many
#: steps (the engine runs at most ``MAX_DEPTH`` steps in a row in one process).
STEPS_PER_PROCESS = 100
HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI"
    xmlns:dc="http://www.omg.org/spec/DD/20100524/DC"
    xmlns:di="http://www.omg.org/spec/DD/20100524/DI"
    xmlns:onestop="urn:onestop:bpmn:1" id="Definitions_big" targetNamespace="urn:bench">
"""


def processes(flows: int) -> list[str]:
    """The ids of the processes :func:`model` writes for about ``flows`` flows."""
    steps = max(1, round((flows - 1) / 3.2))  # 3 flows a step, 2 more every tenth step
    return [f"big_{k}" for k in range(-(-steps // STEPS_PER_PROCESS))]


def model(flows: int) -> str:
    """A file with about ``flows`` sequence flows (see the module docstring)."""
    steps = max(1, round((flows - 1) / 3.2))
    parts = [HEAD]
    diagrams = []
    for k, pid in enumerate(processes(flows)):
        count = min(STEPS_PER_PROCESS, steps - k * STEPS_PER_PROCESS)
        process, diagram = _chain(pid, count)
        parts.append(process)
        diagrams.append(diagram)
    parts.extend(diagrams)
    parts.append("</bpmn:definitions>\n")
    return "".join(parts)


def _chain(pid: str, steps: int) -> tuple[str, str]:
    """One process of ``steps`` steps and its diagram."""
    nodes: list[str] = [f'    <bpmn:startEvent id="{pid}_Begin" />']
    edges: list[tuple[str, str, str]] = []
    shapes: list[tuple[str, int, int, int, int]] = [(f"{pid}_Begin", 0, 100, 36, 36)]
    conditions: dict[str, str] = {}

    def flow(flow_id: str, source: str, target: str, condition: str | None = None) -> None:
        edges.append((f"{pid}_{flow_id}", f"{pid}_{source}", f"{pid}_{target}"))
        if condition is not None:
            conditions[f"{pid}_{flow_id}"] = condition

    flow("Flow_Begin", "Begin", "Task_0")
    for i in range(steps):
        x = 100 + 300 * i
        after = f"Task_{i + 1}" if i + 1 < steps else "Finish"
        nodes.append(f'    <bpmn:userTask id="{pid}_Task_{i}" name="Step {i}" '
                     f'onestop:role="specialist" onestop:allotment="4wh" '
                     f'onestop:form="verdict:ok|redo" />')
        nodes.append(f'    <bpmn:exclusiveGateway id="{pid}_Gateway_{i}" '
                     f'default="{pid}_Flow_{i}_on" />')
        shapes += [(f"{pid}_Task_{i}", x, 80, 100, 80), (f"{pid}_Gateway_{i}", x + 150, 95, 50, 50)]
        flow(f"Flow_{i}_check", f"Task_{i}", f"Gateway_{i}")
        flow(f"Flow_{i}_on", f"Gateway_{i}", after)
        flow(f"Flow_{i}_redo", f"Gateway_{i}", f"Task_{i}", 'verdict == "redo"')
        if i % 10 == 0:
            nodes.append(f'    <bpmn:boundaryEvent id="{pid}_Timer_{i}" '
                         f'attachedToRef="{pid}_Task_{i}" '
                         f'cancelActivity="false"><bpmn:timerEventDefinition>'
                         f'<bpmn:timeDuration>P2D</bpmn:timeDuration>'
                         f'</bpmn:timerEventDefinition></bpmn:boundaryEvent>')
            nodes.append(f'    <bpmn:task id="{pid}_Notify_{i}" name="Remind" />')
            nodes.append(f'    <bpmn:endEvent id="{pid}_Reminded_{i}" />')
            shapes += [(f"{pid}_Timer_{i}", x + 30, 142, 36, 36),
                       (f"{pid}_Notify_{i}", x, 220, 100, 80),
                       (f"{pid}_Reminded_{i}", x + 150, 242, 36, 36)]
            flow(f"Flow_{i}_late", f"Timer_{i}", f"Notify_{i}")
            flow(f"Flow_{i}_reminded", f"Notify_{i}", f"Reminded_{i}")
    nodes.append(f'    <bpmn:endEvent id="{pid}_Finish" />')
    shapes.append((f"{pid}_Finish", 100 + 300 * steps, 102, 36, 36))
    positions = {s[0]: (s[1] + s[3] // 2, s[2] + s[4] // 2) for s in shapes}
    parts = [f'  <bpmn:process id="{pid}" name="Chain {pid}" isExecutable="true">\n',
             *(n + "\n" for n in nodes)]
    for flow_id, source, target in edges:
        condition = conditions.get(flow_id)
        if condition is None:
            parts.append(f'    <bpmn:sequenceFlow id="{flow_id}" sourceRef="{source}" '
                         f'targetRef="{target}" />\n')
        else:
            parts.append(f'    <bpmn:sequenceFlow id="{flow_id}" sourceRef="{source}" '
                         f'targetRef="{target}"><bpmn:conditionExpression>'
                         f'{condition.replace(chr(34), "&quot;")}</bpmn:conditionExpression>'
                         f'</bpmn:sequenceFlow>\n')
    parts.append("  </bpmn:process>\n")
    drawing = [f'  <bpmndi:BPMNDiagram id="Diagram_{pid}">\n'
               f'    <bpmndi:BPMNPlane id="Plane_{pid}" bpmnElement="{pid}">\n']
    for element, x, y, width, height in shapes:
        drawing.append(f'      <bpmndi:BPMNShape id="{element}_di" bpmnElement="{element}">'
                       f'<dc:Bounds x="{x}" y="{y}" width="{width}" height="{height}" />'
                       f'</bpmndi:BPMNShape>\n')
    for flow_id, source, target in edges:
        (x1, y1), (x2, y2) = positions[source], positions[target]
        drawing.append(f'      <bpmndi:BPMNEdge id="{flow_id}_di" bpmnElement="{flow_id}">'
                       f'<di:waypoint x="{x1}" y="{y1}" /><di:waypoint x="{x2}" y="{y2}" />'
                       f'</bpmndi:BPMNEdge>\n')
    drawing.append("    </bpmndi:BPMNPlane>\n  </bpmndi:BPMNDiagram>\n")
    return "".join(parts), "".join(drawing)


def ours_load(path: Path) -> None:
    assert set(load_models([path])) == EXPECTED[path]


def ours_lint(path: Path) -> None:
    errors = [str(f) for f in lint([path]) if f.severity == ERROR]
    assert not errors, errors[:3]


def peer(path: Path) -> None:
    parser = SpiffBpmnParser()
    parser.add_bpmn_file(str(path))
    for pid in EXPECTED[path]:
        parser.get_spec(pid)
        parser.get_subprocess_specs(pid)


#: The processes each generated file holds.
EXPECTED: dict[Path, set[str]] = {}


def floor(path: Path) -> None:
    etree.parse(str(path))


CONTENDERS: dict[str, Callable[[Path], None]] = {
    "ours_load": ours_load, "ours_lint": ours_lint, "peer": peer, "floor": floor}


def timed(function: Callable[[Path], None], path: Path, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        gc.collect()
        started = time.perf_counter()
        function(path)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def slope(sizes: list[int], seconds: list[float]) -> float:
    """The least-squares slope of log(seconds) against log(sizes)."""
    xs, ys = [math.log(s) for s in sizes], [math.log(max(t, 1e-9)) for t in seconds]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / \
        sum((x - mx) ** 2 for x in xs)


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--sizes", default="2500,5000,10000,20000,40000",
                      help="sequence flows per model, comma-separated")
    args.add_argument("--rounds", type=int, default=3)
    options = args.parse_args()
    sizes = [int(s) for s in options.sizes.split(",")]
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 40 * max(sizes) + 10_000))

    times: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    flows: list[int] = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            folder = Path(tmp) / str(size)
            folder.mkdir()
            path = folder / "big.bpmn"
            path.write_text(model(size), encoding="utf-8")
            EXPECTED[path] = set(processes(size))
            flows.append(sum(1 for _ in etree.parse(str(path)).iter(
                "{http://www.omg.org/spec/BPMN/20100524/MODEL}sequenceFlow")))
            for name, function in CONTENDERS.items():
                times[name].append(timed(function, path, options.rounds))
            print(f"{flows[-1]:>7,} flows ({path.stat().st_size / 1e6:5.1f} MB): "
                  + "  ".join(f"{name} {times[name][-1]:7.3f} s" for name in CONTENDERS),
                  flush=True)

    exponents = {name: round(slope(flows, seconds), 2) for name, seconds in times.items()}
    largest = {name: seconds[-1] for name, seconds in times.items()}
    result = {
        "benchmark": "lint_load_scaling",
        "flows": flows,
        "seconds": {name: [round(t, 4) for t in seconds] for name, seconds in times.items()},
        "exponent": exponents,
        "goal_exponent_max": 1.2,
        "largest_ratio_to_peer": {name: round(largest[name] / largest["peer"], 2)
                                  for name in ("ours_load", "ours_lint", "floor")},
        "rounds": options.rounds,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }
    print("growth exponents: " + ", ".join(f"{k} {v}" for k, v in exponents.items()))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
