"""The documentation a newcomer follows runs as written: the Python blocks of
docs/getting-started.md, in order, and the Engine signature it states."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from onestop import DossierStatus, Engine

ROOT = Path(__file__).resolve().parent.parent
GETTING_STARTED = ROOT / "docs" / "getting-started.md"


def python_blocks(path: Path) -> list[str]:
    """The ```python fenced blocks of a Markdown file, in order."""
    return re.findall(r"^```python\n(.*?)^```$", path.read_text(encoding="utf-8"),
                      flags=re.M | re.S)


def test_getting_started_blocks_run_in_order(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks(GETTING_STARTED)
    assert len(blocks) >= 5
    monkeypatch.chdir(tmp_path)          # the page says: in an empty folder
    namespace: dict[str, object] = {"__name__": "getting_started"}
    try:
        for number, block in enumerate(blocks, 1):
            try:
                exec(compile(block, f"{GETTING_STARTED.name}, block {number}", "exec"),
                     namespace)
            except Exception as exc:  # noqa: BLE001 - say which block broke
                pytest.fail(f"block {number} of {GETTING_STARTED} fails: "
                            f"{type(exc).__name__}: {exc}\n{block}")
    finally:
        engine = namespace.get("engine")
        if isinstance(engine, Engine):
            engine.close()
    assert (tmp_path / "quickstart.db").exists()
    # What the comments in the blocks say.
    dossier, refused = namespace["dossier"], namespace["refused"]
    assert re.fullmatch(r"AN-BINH-MC-\d{6}-0001", dossier.code)  # type: ignore[attr-defined]
    assert dossier.status is DossierStatus.NEWLY_REGISTERED  # type: ignore[attr-defined]
    assert namespace["check"].step == "Task_CheckDossier"  # type: ignore[attr-defined]
    slip = namespace["slip"]
    assert slip.step == "Task_IssueRefusal"  # type: ignore[attr-defined]
    assert [f.name for f in slip.form] == ["reason"]  # type: ignore[attr-defined]
    assert refused.status is DossierStatus.NOT_RECEIVED  # type: ignore[attr-defined]
    assert namespace["d"].current_steps == ("Task_Digitize",)  # type: ignore[attr-defined]


def _shown(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def test_getting_started_states_the_real_engine_signature() -> None:
    """Every parameter, keyword-only marker and default as the code has them, and each
    parameter explained in a bullet."""
    parts: list[str] = []
    star = False
    for name, parameter in inspect.signature(Engine).parameters.items():
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        parts.append(name if parameter.default is inspect.Parameter.empty
                     else f"{name}={_shown(parameter.default)}")
    signature = f"`Engine({', '.join(parts)})`"
    text = GETTING_STARTED.read_text(encoding="utf-8")
    assert signature in text
    for name in inspect.signature(Engine).parameters:
        assert re.search(rf"^- `{name}`: ", text, flags=re.M), name


def test_getting_started_gives_the_refusal_reason_at_the_refusal_step() -> None:
    """The check step's form has no reason; Task_IssueRefusal's has (the shipped model)."""
    from onestop.bpmn.extensions import ONESTOP_NS
    from onestop.bpmn.xml import parse_file

    root = parse_file(ROOT / "processes" / "standard.bpmn")
    forms = {task.get("id"): task.get(f"{{{ONESTOP_NS}}}form") for task in root.iter()
             if isinstance(task.tag, str) and task.get(f"{{{ONESTOP_NS}}}form") is not None}
    assert "reason" not in forms["Task_CheckDossier"]
    assert forms["Task_IssueRefusal"] == "reason"
    text = GETTING_STARTED.read_text(encoding="utf-8")
    assert "with a `reason`" not in text
    assert "`Task_IssueRefusal`" in text
