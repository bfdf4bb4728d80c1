"""Keep solver banners out of notebook output.

HiGHS (through ``highspy``, cvxpy's ``cp.HIGHS``) prints its version and licence banner to the process's
standard output (file descriptor 1, from C++) when the first ``highspy.Highs()`` object of a process is
created, before any option such as ``output_flag`` or cvxpy's ``verbose=False`` can take effect. Creating
that first object once with fd 1 redirected to ``/dev/null`` uses the banner up; later solves print nothing.
"""
from __future__ import annotations

import os
import sys

__all__ = ["silence_highs_banner"]

_done = False


def silence_highs_banner() -> bool:
    """Swallow HiGHS's once-per-process banner; ``False`` if ``highspy`` is not installed. Idempotent."""
    global _done
    if _done:
        return True
    try:
        import highspy
    except ImportError:
        return False
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            solver = highspy.Highs()
            solver.setOptionValue("output_flag", False)
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    _done = True
    return True
