"""Service tasks that call a named connector the portal backend registers.

A service task names its connector in whichever way the modeler wrote it:

* ``onestop:connector="payment.confirm"``, or a ``connector`` extension property
  (Camunda 7 ``camunda:properties``, Camunda 8 ``zeebe:properties``, SpiffWorkflow
  ``spiffworkflow:properties``);
* a Camunda 7 external task: ``camunda:type="external" camunda:topic="payment.confirm"``;
* a Camunda 8 job worker: ``<zeebe:taskDefinition type="payment.confirm"/>``;
* SpiffWorkflow's own ``spiffworkflow:serviceTaskOperator id="payment.confirm"``.

Java delegates (``camunda:class``, ``camunda:delegateExpression``, ``camunda:expression``)
cannot run here and are refused at load, naming the element. At run time the engine calls
the connector with a copy of the dossier's process data; the mapping it returns is
merged into that data, so later conditions can read it.
"""

from __future__ import annotations

import json
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.spiff.parser.task_spec import SpiffTaskParser
from SpiffWorkflow.spiff.serializer.task_spec import ServiceTaskConverter, SpiffBpmnTaskConverter
from SpiffWorkflow.spiff.specs.defaults import NoneTask, ServiceTask

from ..errors import OnestopError
from .extensions import CAMUNDA_NS, ZEEBE_NS, raw_properties

_JAVA = ("class", "delegateExpression", "expression")


def connector_of(node: etree._Element) -> str | None:
    """The connector name a service task names, or None.

    Raises ValueError for a Camunda Java delegate, which cannot run here."""
    for attribute in _JAVA:
        if node.get(f"{{{CAMUNDA_NS}}}{attribute}") is not None:
            raise ValueError(f"uses a Java delegate (camunda:{attribute}), which cannot run "
                             f"here; name an onestop connector instead (onestop:connector, or "
                             f"camunda:type=\"external\" with camunda:topic)")
    name = raw_properties(node).get("connector")
    if name:
        return name.strip()
    if node.get(f"{{{CAMUNDA_NS}}}type") == "external" and node.get(f"{{{CAMUNDA_NS}}}topic"):
        return str(node.get(f"{{{CAMUNDA_NS}}}topic", "")).strip()
    for child in node.iterfind(f"./{{*}}extensionElements/{{{ZEEBE_NS}}}taskDefinition"):
        if child.get("type"):
            return str(child.get("type", "")).strip()
    for child in node.iterfind("./{*}extensionElements/{*}serviceTaskOperator"):
        if child.get("id"):
            return str(child.get("id", "")).strip()
    return None


class ConnectorTask(ServiceTask):
    """A service task whose connector's answer is merged into the process data."""

    def _execute(self, task: Any) -> bool:
        # The environment is called directly: SpiffWorkflow's own call_service wrapper
        # fails while reporting an error, hiding the connector's message.
        environment = task.workflow.script_engine.environment
        try:
            answer = environment.call_service(task.data, operation_name=self.operation_name,
                                              operation_params={})
        except Exception as exc:  # noqa: BLE001 - any connector failure is reported
            raise WorkflowTaskException(
                f"connector {self.operation_name!r} failed: {type(exc).__name__}: {exc}"
                if not isinstance(exc, OnestopError) else str(exc), task=task) from None
        result = json.loads(answer) if isinstance(answer, str) else answer
        if isinstance(result, dict):
            task.data.update(result)
        return True


class ConnectorTaskParser(SpiffTaskParser):
    """Builds a :class:`ConnectorTask` from any of the ways a connector is named."""

    def create_task(self) -> ConnectorTask:
        """The connector task of the parsed service task (ModelError if it names none)."""
        try:
            name = connector_of(self.node)
        except ValueError as exc:
            raise ValidationException(str(exc), node=self.node,
                                      file_name=self.filename) from None
        if not name:
            raise ValidationException(
                "service task names no connector: set onestop:connector (or camunda:topic "
                "with camunda:type=\"external\", or zeebe:taskDefinition type)",
                node=self.node, file_name=self.filename)
        extensions = self.parse_extensions()
        return ConnectorTask(self.spec, self.bpmn_id, operation_name=name,
                             operation_params={}, result_variable="connector_result",
                             prescript=extensions.get("preScript"),
                             postscript=extensions.get("postScript"),
                             **self.bpmn_attributes)


class AutomaticTask(NoneTask):
    """A plain ``bpmn:task`` that no officer performs: the system does it at once (an
    electronic transfer, say), as Camunda runs a task without a type."""

    def __init__(self, wf_spec: Any, bpmn_id: str, **kwargs: Any) -> None:
        super().__init__(wf_spec, bpmn_id, **kwargs)
        self.manual = False


#: The role of steps the system performs.
SYSTEM_ROLE = "system"


def adopt_automatic(spec: Any, roles: dict[str, str | None]) -> None:
    """Make the plain tasks of ``spec`` without a role (or with the ``system`` role)
    automatic; ``roles`` maps element ids to their role. A plain task with an officer's
    role stays a wait, like a manual task."""
    for task_spec in spec.task_specs.values():
        if type(task_spec) is NoneTask and roles.get(task_spec.bpmn_id) in (None, SYSTEM_ROLE):
            task_spec.__class__ = AutomaticTask
            task_spec.manual = False


#: How the specs store connector and automatic tasks: as SpiffWorkflow stores its own.
CONNECTOR_CONFIG = {ConnectorTask: ServiceTaskConverter, AutomaticTask: SpiffBpmnTaskConverter}
