"""TensorBoard logging of a run: every numeric metric of every iteration, as scalars.

With ``--set tensorboard=true`` the runner writes ``RUN_DIR/tensorboard/events.out.tfevents.*``
(through tensorboardX, the optional extra ``pip install "trpokit[tensorboard]"``), one
scalar per metrics column under its own key (``trpo/kl``, ``episode/return_mean`` ...)
against the environment steps, and the final evaluation (``eval/...``) at the last step.
View it with ``tensorboard --logdir runs/``. Text-valued columns (``trpo/status``,
``cg/status``) are not scalars and stay in ``metrics.csv`` only.
"""

from __future__ import annotations

import numbers
import os
import time
from pathlib import Path

__all__ = ["TensorBoardWriter"]


class TensorBoardWriter:
    """Write metric rows as TensorBoard scalars.

    Parameters
    ----------
    log_dir : path
        The folder of the event files (created if missing).

    Raises
    ------
    rl.train.ConfigError
        tensorboardX is not installed (the message says how to install it).
    """

    def __init__(self, log_dir):
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            from rl.train import ConfigError

            raise ConfigError("tensorboard=true needs the tensorboardX package: pip install "
                              "'trpokit[tensorboard]' (or drop --set tensorboard=true)") from None
        self.log_dir = Path(log_dir)
        # the event file is named by the second and the host; a run resumed within the same
        # second would replace its predecessor's file without a suffix of its own
        self.writer = SummaryWriter(logdir=str(self.log_dir),
                                    filename_suffix=f".{os.getpid()}.{time.time_ns()}")

    def write(self, row: dict, step: int) -> None:
        """Log every numeric value of ``row`` (a bool as 0/1) at ``step``; skip text."""
        for key, value in row.items():
            if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
                value = value.item()  # a numpy scalar
            if isinstance(value, numbers.Real):  # bool is one: 0 or 1
                self.writer.add_scalar(key, float(value), global_step=int(step))
        self.writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.close()
