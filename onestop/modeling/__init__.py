"""Modeling tools: building and laying out BPMN, internal-procedure tables, lint.

These sit above the engine: they read and write model files and may dry-run models in
the engine, but nothing below imports them.
"""

from .diagram import Diagram, Flow, Lane, Node, Pool
from .table import (
    ProcedureTable,
    TableStep,
    agency_slots,
    model_from_table,
    parse_table,
    read_table,
    table_from_model,
    write_table,
)

__all__ = ["Diagram", "Flow", "Lane", "Node", "Pool", "ProcedureTable", "TableStep",
           "agency_slots", "model_from_table", "parse_table", "read_table",
           "table_from_model", "write_table"]
