"""Evaluation of a policy or a run folder: the undiscounted return of the deterministic (or
sampled) policy over whole episodes.
"""

from __future__ import annotations

import numpy as np

from rl.algorithms.base import check_range
from rl.envs import (
    NonFiniteEnvironmentError,
    make_vector_env,
)
from rl.progress import EvaluationProgress
from rl.runner.checkpoints import load_run
from rl.sampling import EnvAction
from rl.spaces import all_finite

__all__ = ["evaluate_policy", "evaluate"]


def evaluate_policy(policy, env, *, episodes=10, seed=0, deterministic=True, max_steps=None,
                    progress=False):
    """Mean and spread of the undiscounted return of ``policy`` over ``episodes`` episodes.

    Parameters
    ----------
    policy : Policy
        Anything with ``act(obs, rng, deterministic=...)`` (the policies of
        :mod:`rl.policies`).
    env : str, callable or gymnasium.Env
        As for :func:`rl.envs.make_vector_env`; one environment, seeded ``seed`` once.
    episodes : int >= 1
    seed : int >= 0
        Seeds the environment's first reset and the action sampling.
    deterministic : bool
        Act with the distribution's mode (mean / most likely action) instead of sampling.
    max_steps : int >= 1 or None
        End an episode after this many steps if the environment has not ended it (the
        environment is then reset); ``None`` leaves episode ends to the environment.
    progress : bool
        Show the episodes done, elapsed time and ETA on standard error
        (:class:`rl.progress.EvaluationProgress`).

    Returns
    -------
    dict
        ``eval/return_mean``, ``eval/return_std``, ``eval/return_min``,
        ``eval/return_max``, ``eval/length_mean`` and ``eval/episodes``.
    """
    check_range("episodes", episodes, 1, None, integer=True)
    if max_steps is not None:
        check_range("max_steps", max_steps, 1, None, integer=True)
    venv = make_vector_env(env, 1, seed=seed)
    rng = np.random.default_rng(seed)
    env_action = EnvAction(venv.single_action_space)
    returns, lengths = [], []
    bar = EvaluationProgress(episodes, enabled=progress, description="evaluating")
    try:
        obs, _ = venv.reset(seed=seed)
        total, length = 0.0, 0
        while len(returns) < episodes:
            action = policy.act(obs, rng, deterministic=deterministic)
            obs, reward, term, trunc, _ = venv.step(env_action(action))
            if not (all_finite(obs) and np.all(np.isfinite(reward))):
                raise NonFiniteEnvironmentError("the environment returned NaN/inf during "
                                                "evaluation")
            total += float(reward[0])
            length += 1
            ended = bool(term[0] or trunc[0])  # then the vector env has reset itself
            if ended or (max_steps is not None and length >= max_steps):
                returns.append(total)
                lengths.append(length)
                bar.update(returns)
                total, length = 0.0, 0
                if not ended and len(returns) < episodes:
                    obs, _ = venv.reset()  # cut short: the next episode starts afresh
    finally:
        bar.close()
        venv.close()
    r = np.asarray(returns)
    return {"eval/return_mean": float(r.mean()), "eval/return_std": float(r.std()),
            "eval/return_min": float(r.min()), "eval/return_max": float(r.max()),
            "eval/length_mean": float(np.mean(lengths)), "eval/episodes": int(r.size)}


def evaluate(run_dir, *, episodes=10, seed=None, env=None, progress=False):
    """Evaluate the checkpointed policy of a run folder; returns the evaluation dict.

    ``env``: for a run trained on an environment object or factory, the same one again.
    ``progress=True`` shows the episodes done, elapsed time and ETA on standard error.
    """
    run = load_run(run_dir, env=env)
    try:
        return evaluate_policy(run.policy, run.cfg.env if env is None else env,
                               episodes=episodes,
                               seed=run.cfg.seed + 10_000 if seed is None else seed,
                               progress=progress)
    finally:
        run.close()
