"""The SpiffWorkflow adapter: loading models and running them. Private to onestop."""

from ..model import FormField
from ..steps import StepInfo
from .loader import ProcessModel, load_models, model_from_body
from .runtime import Instance, OpenTask, WaitingTimer, evaluate, model_dictionary

__all__ = ["FormField", "Instance", "OpenTask", "WaitingTimer", "ProcessModel", "StepInfo",
           "evaluate", "load_models", "model_dictionary", "model_from_body"]
