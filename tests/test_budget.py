"""The restricted evaluator runs every condition, script and timer under a budget: a
hostile or runaway model stops with BudgetExceeded, quickly and always the same way,
instead of hanging the command that holds the database's write lock."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from onestop import Engine, Officer, ProcessError
from onestop.bpmn import sandbox
from onestop.bpmn.runtime import evaluate
from onestop.bpmn.sandbox import Sandbox, check
from onestop.errors import BudgetExceeded, ModelError
from onestop.modeling.lint import ERROR, lint

from .conftest import DATA

#: Generous: exhausting a budget takes about a tenth of a second on a laptop.
QUICK = 2.0
BIG = list(range(10 ** 6))


def _fails_quickly(run: Any, match: str | None = None) -> BudgetExceeded:
    start = time.perf_counter()
    with pytest.raises(BudgetExceeded, match=match) as failed:
        run()
    assert time.perf_counter() - start < QUICK
    return failed.value


# --------------------------------------------------------------------------- expressions

@pytest.mark.parametrize(("expression", "limit"), [
    ("9**9**9", "bits"),
    ("10 ** 10 ** 6", "bits"),
    ("sum(range(10**12))", "a range of 1,000,000,000,000 items"),
    ('"x" * 3_000_000_000', "3,000,000,000 items or characters"),
    ("[0] * 10**9", "1,000,000,000 items"),
    ("1 << 10**10", "bits"),
    ("round(10**100, -10**9)", "round"),
    ('"a".zfill(10**10)', "characters"),
    ('"%*d" % (10**9, 1)', "'%' formatting"),
    ('b"%s" % b"x"', "'%' formatting"),
    ('f"{1:>{10**9}}"', "format width"),
    ('f"{1.5:.{10**7}f}"', "format width or precision of 10,000,000"),
    ("('x' * 10**6).replace('x', 'xx')", "2,000,000 characters"),
    ("'ab'.join(['x' * 600_000] * 2)", "characters"),
    ("'-'.join(str(i) for i in range(10**6))", "steps"),
    ("('a' * 10**6).strip('b' * 10**5 + 'a')", "work"),
    ("[i * j for i in range(10**6) for j in range(10**6)]", "steps"),
    ("sum(x for x in range(10**6) for y in range(10**6))", "steps"),
    ("len({i: i for i in range(10**6)})", "steps"),
    ("[x in big for x in range(10**6)]", "work"),
    ("[big.index(999_999) for i in range(1000)]", "work"),
    ("max(range(10**6), key=big.count)", "work"),
    ("sorted(range(10**6), key=big.index)", "work"),
    ("[[big] * 1000] == [[list(big)] * 1000]", "work"),
    ("str([big] * 1000)", "work"),
    ("{tuple([tuple(range(10**6))] * 1000)}", "work"),
    ("[str(1.123456789e300) for i in range(10**6)]", "work"),
    ("[round(1.123456789e300, 5) for i in range(10**6)]", "work"),
    ("[int('9' * 4300) for i in range(10**6)]", "work"),
    ("int('1' * 100_000, 2)", "bits"),
    ("[*'x' * 600_000, *'y' * 600_000]", "1,200,000 items"),
    ("all(x == x for x in range(10**7))", "a range of 10,000,000 items"),
])
def test_hostile_expressions_exceed_the_budget_quickly(expression: str, limit: str) -> None:
    error = _fails_quickly(lambda: Sandbox().evaluate(expression, {"big": BIG}))
    assert limit in str(error)
    assert repr(expression[:40])[1:-1] in str(error) or expression[:20] in str(error)


@pytest.mark.parametrize(("script", "limit"), [
    ("for i in range(10**12):\n    x = i", "range"),
    ("for i in range(10**6):\n    x = i", "steps"),
    ("s = 'ab'\nfor i in range(100):\n    s = s + s", "characters"),
    ("s = 'x'\nfor i in range(100):\n    s = f'{s}{s}'", "characters"),
    ("l = [0]\nfor i in range(100):\n    l += l", "items"),
    ("l = [0]\nfor i in range(100):\n    l.extend(l)", "items"),
    ("l = [0]\nfor i in range(100):\n    l = [*l, *l]", "items"),
    ("l = [0]\nfor i in range(100):\n    l[0:0] = l", "items"),
    ("d = {'s': 'x'}\nfor i in range(100):\n    d['s'] += d['s']", "characters"),
    ("l = []\nfor i in range(10**6):\n    l.insert(0, i)", "work"),
    ("l = list(range(10**6))\nfor i in range(10**6):\n    l.pop(0)", "work"),
    ("big = list(range(10**6))\nfor i in range(10**6):\n    y = i in big", "work"),
    ("s = 'x' * 10**6\nfor i in range(10**6):\n    t = s.replace('x', 'y')", "work"),
    ("s = 'x' * 10**6\nfor i in range(10**6):\n    t = s[1:]", "work"),
    ("x = 1\nfor i in range(10**6):\n    x = x * 3", "bits"),
    ("x = 2**32000\nfor i in range(10**6):\n    y = x // 3", "work"),
    ("x = []\ny = []\nfor i in range(1000):\n    x = [x, x]\n    y = [y, y]\nz = x == y",
     "work"),
    ("x = []\nfor i in range(1000):\n    x = [x]\ny = str(x)", "nested more than 256 deep"),
    ("l = []\nl.append(l)\ny = l == [l]", "containing itself"),
    # What a script stores is written out as JSON, with every shared part repeated.
    ("a = list(range(10**6))\nb = [a, a, a, a, a, a, a, a, a, a]\n"
     "c = [b, b, b, b, b, b, b, b, b, b]\nd = [c, c, c, c, c, c, c, c, c, c]", "work"),
    ("x = []\nfor i in range(1000):\n    x = [x]", "nested more than 256 deep"),
])
def test_hostile_scripts_exceed_the_budget_quickly(script: str, limit: str) -> None:
    data = {"kept": 1}
    error = _fails_quickly(lambda: Sandbox().execute(script, data))
    assert limit in str(error)
    assert data == {"kept": 1}  # nothing of a failed script is written back


def test_the_budget_is_deterministic_and_fresh_for_each_evaluation() -> None:
    box = Sandbox()
    most, twice = sandbox.MAX_STEPS * 3 // 4, sandbox.MAX_STEPS * 2
    # Each evaluation may use most of the budget: none carries over to the next.
    for _ in range(3):
        assert box.evaluate(f"sum(1 for i in range({most}))", {}) == most
    errors = {str(_fails_quickly(lambda: box.evaluate(f"sum(1 for i in range({twice}))", {})))
              for _ in range(3)}
    assert errors == {f"more than {sandbox.MAX_STEPS:,} steps (loop iterations and guarded "
                      f"operations), in 'sum(1 for i in range({twice}))'"}


def test_the_limits_are_far_above_what_a_model_needs() -> None:
    box = Sandbox()
    data = {"components": [f"tp-{i}" for i in range(500)], "fees": list(range(1000)),
            "applicant": {"name": "Nguyễn Thị Hoa", "address": "Ấp Phú Hòa, xã An Bình"}}
    assert box.evaluate("len([c for c in components if c.startswith('tp-1')]) == 111",
                        data)
    box.execute("total = sum(fees)\nlines = []\nfor i, c in enumerate(components):\n"
                "    if i % 2 == 0 and c not in lines:\n        lines.append(c.upper())\n"
                "report = '\\n'.join(f'{n:>4}. {c}' for n, c in enumerate(lines, 1))\n"
                "table = {c: len(c) * 1000 for c in components}\n"
                "who = str(applicant) + ' ' + applicant['name'].title()", data)
    assert data["total"] == 499_500 and len(data["lines"]) == 250
    assert data["report"].startswith("   1. TP-0") and len(data["table"]) == 500


@pytest.mark.parametrize(("expression", "expected"), [
    ("a < b < c", True),
    ("a < c < b", False),
    ("1 <= a <= 1 != b", True),
    ("x + y", [1, 2, 3, 4]),
    ("x * 2", [1, 2, 1, 2]),
    ("s % 2 if False else s * 2", "abab"),
    ("{**{'k': 1}, 'j': 2}", {"k": 1, "j": 2}),
    ("[*x, *'ab']", [1, 2, "a", "b"]),
    ("f'{s!r:>6}|{a:0{b}d}'", "  'ab'|01"),
    ("sorted(['b', 'A', 'c'], key=str.lower)", ["A", "b", "c"]),
    ("[len(v) for len in [sum] for v in [x]]", [3]),
    ("x[1:] + x[:1] + x[::-1]", [2, 1, 2, 1]),
    ("(1, 2) in {(1, 2): 0}", True),
    ("sum([[1], [2]], [])", [1, 2]),
    ("dict(b=1, func=2, receiver=3)", {"b": 1, "func": 2, "receiver": 3}),
])
def test_guarded_expressions_keep_their_python_meaning(expression: str, expected: Any) -> None:
    assert Sandbox().evaluate(expression, {"a": 1, "b": 2, "c": 3, "x": [1, 2], "y": [3, 4],
                                           "s": "ab"}) == expected


def test_in_place_operators_still_change_lists_in_place() -> None:
    data: dict[str, Any] = {"l": [1]}
    Sandbox().execute("m = l\nm += [2]\nm *= 2\nsame = m is l\nd = {'k': [0]}\n"
                      "d['k'] += [1]\nn = 5\nn -= 1", data)
    assert data["l"] == [1, 2, 1, 2] and data["same"] is True
    assert data["d"] == {"k": [0, 1]} and data["n"] == 4


def test_a_budget_error_is_a_process_error() -> None:
    assert issubclass(BudgetExceeded, ProcessError)
    with pytest.raises(ProcessError, match="bits"):
        evaluate("9 ** 9 ** 9", {})  # as the engine evaluates timers


# --------------------------------------------------------------------------- nesting

@pytest.mark.parametrize("source", [
    "not " * 3000 + "x",
    "(" * 100_000 + "x" + ")" * 100_000,
    "[" * 100_000 + "]" * 100_000,
    "{" * 100_000 + "}" * 100_000,
    "-" * 100_000 + "x",
    "**".join(["x"] * 3000),
    "x" + "[0]" * 100_000,
    "x if y else " * 3000 + "z",
    "-" * 1000 + "x",  # parses, but too deep to compile
])
@pytest.mark.parametrize("mode", ["eval", "exec"])
def test_deeply_nested_sources_are_a_model_error(source: str, mode: str) -> None:
    with pytest.raises(ModelError, match="too deeply nested"):
        check(source, mode)


def test_reasonable_nesting_is_accepted() -> None:
    check("not " * 150 + "x", "eval")
    check("+".join(["fee"] * 150), "eval")
    assert Sandbox().evaluate("(((((1 + 2)))))", {}) == 3
    assert sandbox.MAX_SOURCE_DEPTH >= 100


# --------------------------------------------------------------------------- the engine

def _catalog(tmp_path: Path, process: str) -> None:
    catalog = json.loads((DATA / "script_catalog.json").read_text(encoding="utf-8"))
    catalog["procedures"][0]["process"] = process
    (tmp_path / "catalog.json").write_text(json.dumps(catalog, ensure_ascii=False),
                                          encoding="utf-8")


def test_a_hostile_gateway_condition_fails_the_command_and_stores_nothing(
        tmp_path: Path, sqlite_url: str, make_engine: Any) -> None:
    shutil.copy(DATA / "hostile_gateway.bpmn", tmp_path)
    _catalog(tmp_path, "hostile_gateway")
    engine: Engine = make_engine(sqlite_url, library=tmp_path)
    engine.add_officer(Officer("tn.an", "Trần Ngọc An", {"AN-BINH-MC": ["receiving_officer"]}))
    code = engine.receive("2.000815", applicant={"name": "A"}, components=["ban-sao"],
                          officer="tn.an").code
    task = engine.inbox("tn.an")[0]
    history = len(engine.history(code))
    for pages, limit in (("6", f"{sandbox.MAX_STEPS:,} steps"), ("12", "a range of")):
        start = time.perf_counter()
        with pytest.raises(ProcessError) as failed:
            engine.complete(task.id, "tn.an", {"pages": pages})
        assert time.perf_counter() - start < QUICK
        error = failed.value
        assert error.dossier == code and error.element == "Gateway_Pages"
        assert limit in str(error)
        assert engine.dossier(code).current_steps == ("Task_Count",)
        assert len(engine.history(code)) == history
        assert [t.id for t in engine.inbox("tn.an")] == [task.id]
    # Within the budget the model runs as written.
    dossier = engine.complete(task.id, "tn.an", {"pages": "1"})
    assert dossier.current_steps == ("Task_Collect",)


def test_a_hostile_start_script_fails_the_receipt(tmp_path: Path, sqlite_url: str,
                                                  make_engine: Any) -> None:
    shutil.copy(DATA / "hostile_script.bpmn", tmp_path)
    _catalog(tmp_path, "hostile_script")
    engine: Engine = make_engine(sqlite_url, library=tmp_path)
    engine.add_officer(Officer("tn.an", "Trần Ngọc An", {"AN-BINH-MC": ["receiving_officer"]}))
    start = time.perf_counter()
    with pytest.raises(ProcessError) as failed:
        engine.receive("2.000815", applicant={"name": "A"}, components=["ban-sao"],
                       officer="tn.an")
    assert time.perf_counter() - start < QUICK
    assert failed.value.element == "Script_Spin" and "steps" in str(failed.value)
    assert engine.inbox("tn.an") == []


# --------------------------------------------------------------------------- lint

def test_lint_reports_a_hostile_start_script_instead_of_hanging() -> None:
    start = time.perf_counter()
    findings = lint([DATA / "hostile_script.bpmn"])
    assert time.perf_counter() - start < 10 * QUICK
    dry = [f for f in findings if f.message.startswith("dry run")]
    assert len(dry) == 1 and dry[0].severity == ERROR
    assert dry[0].element == "Script_Spin"
    assert f"more than {sandbox.MAX_STEPS:,} steps" in dry[0].message
