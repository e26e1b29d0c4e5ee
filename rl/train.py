"""The training runner: config, the sample → update loop, run folders, checkpoints, resume.

The runner lives in :mod:`rl.runner`, one module per job (settings, the run's objects, the
loop, checkpoints, evaluation, errors); this module is its public face, with every name
earlier versions had here.

>>> result = rl.train("trpo", "CartPole-v1", steps=100_000, seed=0)   # doctest: +SKIP
>>> result.evaluation["eval/return_mean"]                               # doctest: +SKIP

A run folder holds ``config.json``, ``metrics.csv`` (one row per iteration), the
checkpoint (``checkpoint.json``, a manifest, and ``checkpoint-<iteration>.npz``: policy,
value function, normaliser, optimizer, sampler, environment and RNG state as arrays and
JSON, see :mod:`rl.checkpoint`), ``evaluation.json`` and ``learning_curve.png``. Every file
is written atomically and a checkpoint is committed by its manifest, written last, so an
interrupted or failed run keeps everything already saved. Loading a run folder never
executes code from it.
"""

from __future__ import annotations

from rl.runner.build import Run  # noqa: F401 - re-exported
from rl.runner.checkpoints import (  # noqa: F401 - re-exported
    CHECKPOINT_VERSION,
    convert_pickle_checkpoint,
    load_run,
)
from rl.runner.config import (  # noqa: F401 - re-exported
    TrainConfig,
    TrainResult,
    coerce_setting,
    resolve_config,
)
from rl.runner.errors import (  # noqa: F401 - re-exported
    CheckpointError,
    CheckpointWriteError,
    ConfigError,
    ResumeWarning,
    RunTerminated,
)
from rl.runner.evaluation import evaluate, evaluate_policy  # noqa: F401 - re-exported
from rl.runner.loop import train

__all__ = ["TrainConfig", "TrainResult", "train", "evaluate", "load_run", "resolve_config",
           "convert_pickle_checkpoint", "ConfigError", "CheckpointError", "ResumeWarning",
           "RunTerminated"]
