"""What the runner and the algorithms know of a sampler and of its batches.

A sampler is anything with the four methods and the attribute of :class:`Sampler`; the
runner builds one from the configuration and from then on calls only these. The backends:
:class:`~rl.sampling.SinglePathSampler` (one vector environment in this process),
:class:`~rl.sampling.VineSampler` (TRPO's vine), and
:class:`~rl.sampling.BlockSampler` (blocks of environments, each with its own random
streams, sampled in this process or by Ray actors, joined and finished once).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Sampler", "SampledBatch"]


@runtime_checkable
class SampledBatch(Protocol):
    """What every batch tells the runner and the update, whatever sampled it.

    Attributes
    ----------
    num_env_steps : int
        Environment steps spent on the batch (a vine batch counts trunk and rollouts).
    episode_returns, episode_lengths : ndarray (E,)
        The episodes that ended during the batch, in order of ending.
    diagnostics : dict
        The sampler's namespaced diagnostics (``"vine/q_mean"`` ...), possibly empty.
    has_advantages : bool
        The rows carry their own advantage estimates (vine); otherwise the update
        estimates them from the rewards.
    value_batch : Batch
        The trajectories the value function is fitted on.
    """

    num_env_steps: int
    episode_returns: np.ndarray
    episode_lengths: np.ndarray
    diagnostics: dict
    has_advantages: bool


@runtime_checkable
class Sampler(Protocol):
    """A source of batches whose state can be checkpointed.

    Attributes
    ----------
    resume_problem : str or None
        None when :meth:`state_dict` holds the environments' exact state (a sampler
        restored from it continues the open episodes bit for bit); otherwise why not (a
        restored sampler then starts fresh episodes, from its restored random streams).
    """

    resume_problem: str | None

    def sample(self) -> SampledBatch:
        """The next batch."""

    def state_dict(self) -> dict:
        """Everything needed to continue sampling, as arrays and plain values (what
        :func:`rl.checkpoint.encode` stores): random streams, counters, open episodes and
        the environments' state where :attr:`resume_problem` is None."""

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict` of a sampler built with the same settings."""

    def close(self) -> None:
        """Release the environments (and workers) the sampler holds."""
