"""The runner's errors and warnings: what a user sees when a setting, a checkpoint or a run
fails, each with the fix in its message.
"""

from __future__ import annotations

import signal

__all__ = ["ConfigError", "CheckpointError", "ResumeWarning", "RunTerminated",
           "CheckpointWriteError"]


class ConfigError(ValueError):
    """A bad algorithm, environment or setting; the message says how to fix it."""


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, or does not match the requested run."""


class ResumeWarning(UserWarning):
    """A run whose environments cannot be saved exactly: a resumed run starts fresh
    episodes, so its numbers differ from an uninterrupted run's (the message says why)."""


class RunTerminated(BaseException):
    """SIGTERM or SIGHUP arrived during :func:`train`; the run saved its last completed
    iteration. ``signum`` is the signal; the command line exits with ``128 + signum``."""

    def __init__(self, signum):
        super().__init__(f"terminated by {signal.Signals(signum).name}")
        self.signum = signum


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written (a full disk, a read-only folder ...)."""
