"""Run-wide switches, read in one place."""
from __future__ import annotations

import os

#: Environment variable that selects quick mode (small data, few epochs) for notebooks, demo and CI.
QUICK_ENV = "STRUCSPARS_QUICK"


def quick_mode(default: bool = False) -> bool:
    """True when ``$STRUCSPARS_QUICK`` is set to 1/true/yes/on."""
    value = os.environ.get(QUICK_ENV)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}
