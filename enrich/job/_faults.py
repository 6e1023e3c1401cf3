"""A test-only fault hook: the job SIGKILLs itself at a named phase.

Not API. The crash tests set :data:`KILL_AT_ENV` to a phase name (``"locked"``, ``"read"``,
``"voted"``, ``"fitted"``, ``"enriched"``, ``"before_commit"``, ``"after_commit"``,
``"after_runs"``, ``"done"``) in a child process and check that the next run recovers.
"""

from __future__ import annotations

import logging
import os
import signal
import sys

__all__ = ["KILL_AT_ENV", "checkpoint"]

logger = logging.getLogger(__name__)

KILL_AT_ENV = "ENRICH_TEST_KILL_AT"
"""Test hook: a phase name; the job SIGKILLs itself when it reaches that phase."""


def checkpoint(phase: str) -> None:
    """Kill this process at ``phase`` when the test hook asks for it (see KILL_AT_ENV)."""
    if os.environ.get(KILL_AT_ENV) == phase:
        logger.warning("test hook: killing the run at phase %r", phase)
        sys.stdout.flush()
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)
