"""A step's time allotment as models write it: a duration in its unit (``1.5wd``), a
share of the procedure's legal time (``20%``), or the transfer cut-off rule
(``cutoff``)."""

from __future__ import annotations

import re

#: The allotment of a paper transfer under the cut-off rule: due at the close of the day
#: the step became ready, or at the end of the next working day's first session when it
#: became ready at or after the regime's ``transfer_cutoff`` (see
#: :func:`onestop.rules.deadlines.cutoff_deadline`).
CUTOFF = "cutoff"
_SHARE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def is_cutoff(allotment: str | None) -> bool:
    """Whether an allotment is the transfer cut-off rule (``"cutoff"``)."""
    return allotment is not None and allotment.strip() == CUTOFF


def allotment_share(text: str) -> float:
    """The share of the legal time an allotment such as ``"20%"`` gives (0.2)."""
    match = _SHARE.match(text)
    if match is None or not 0 < float(match.group(1)) <= 100:
        raise ValueError(f"'{text}' is not a share: write a percentage from 0 to 100, "
                         f"e.g. '20%'")
    return float(match.group(1)) / 100
