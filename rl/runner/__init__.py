"""The training runner, one module per job.

- :mod:`rl.runner.config`: the runner's settings (:class:`~rl.runner.config.TrainConfig`),
  :func:`~rl.runner.config.resolve_config` (names, ``--set`` overrides, presets) and
  :class:`~rl.runner.config.TrainResult`;
- :mod:`rl.runner.build`: the objects of one run (:class:`~rl.runner.build.Run`);
- :mod:`rl.runner.loop`: :func:`~rl.runner.loop.train`, the sample → update loop;
- :mod:`rl.runner.checkpoints`: writing, reading and checking a run folder's checkpoint;
- :mod:`rl.runner.evaluation`: evaluating a policy or a run folder;
- :mod:`rl.runner.errors`: the errors and warnings a user sees.

:mod:`rl.train` re-exports the public names; the command line is :mod:`rl.__main__`.
"""
