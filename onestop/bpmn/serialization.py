"""Workflow state without the model inside it.

SpiffWorkflow's stock serializer writes the whole process spec into every workflow's
JSON. Here a dossier's state holds only its task tree and data; the spec is stored once
(by content hash) and handed back when the state is restored.
"""

from __future__ import annotations

import json
import zlib
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer.default.workflow import (
    BpmnWorkflowConverter,
    WorkflowConverter,
)
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

if TYPE_CHECKING:
    from SpiffWorkflow.bpmn.serializer.helpers.registry import DefaultRegistry

    from .loader import ProcessModel

STATE_FORMAT = 1


class _StateConverter(BpmnWorkflowConverter):
    """Converts a top-level workflow, leaving its specs out."""

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def restore(self, dct: dict[str, Any], model: "ProcessModel",
                script_engine: Any) -> BpmnWorkflow:
        workflow = BpmnWorkflow(model.spec, dict(model.subprocess_specs),
                                script_engine=script_engine, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


@lru_cache(maxsize=1)
def spec_registry() -> "DefaultRegistry":
    """The converter registry for specs (Spiff's, unchanged)."""
    return BpmnWorkflowSerializer.configure(SPIFF_CONFIG)


@lru_cache(maxsize=1)
def _state_converter() -> _StateConverter:
    registry = BpmnWorkflowSerializer.configure(SPIFF_CONFIG)
    return _StateConverter(BpmnWorkflow, registry)


def dump_state(workflow: BpmnWorkflow) -> bytes:
    """The workflow's state (no spec), as compressed JSON."""
    dct = _state_converter().to_dict(workflow)
    dct["format"] = STATE_FORMAT
    text = json.dumps(dct, separators=(",", ":"), ensure_ascii=False)
    return zlib.compress(text.encode("utf-8"), 6)


def load_state(data: bytes, model: "ProcessModel", script_engine: Any) -> BpmnWorkflow:
    """Rebuild a workflow from :func:`dump_state` output and its model."""
    dct = json.loads(zlib.decompress(data))
    if dct.pop("format", None) != STATE_FORMAT:
        raise ValueError("unknown workflow state format")
    return _state_converter().restore(dct, model, script_engine)
