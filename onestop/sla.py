"""Service levels, in one place for callers: the legal regimes (:mod:`onestop.regimes`),
the deadlines decided in working time (:mod:`onestop.rules.deadlines`) and the standing of
a dossier read from its event log (:mod:`onestop.rules.sla`)."""

from .regimes import (
    DEFAULT_APOLOGY_ROLE,
    OVERRIDABLE_FIELDS,
    SUPPLEMENT_CLOCKS,
    Regime,
    Regimes,
    effective_regime,
    load_regimes,
    parse_regime_field,
)
from .catalog import check_regime_overrides
from .rules.deadlines import (
    allotment_span,
    apology_due,
    appointment,
    cutoff_deadline,
    parse_new_appointment,
    resumed_appointment,
    step_deadline,
)
from .rules.sla import (
    Apology,
    ApologyStatus,
    Mark,
    SlaReport,
    StepSla,
    assess,
    judge,
    responsible_agency,
)

__all__ = [
    "DEFAULT_APOLOGY_ROLE", "OVERRIDABLE_FIELDS", "SUPPLEMENT_CLOCKS", "Apology",
    "ApologyStatus", "Mark", "Regime", "Regimes", "SlaReport", "StepSla", "allotment_span",
    "apology_due", "appointment", "assess", "check_regime_overrides", "cutoff_deadline",
    "effective_regime", "judge", "load_regimes", "parse_new_appointment",
    "parse_regime_field", "responsible_agency", "resumed_appointment", "step_deadline",
]
