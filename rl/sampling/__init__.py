"""Sampling: the batches the updates learn from, and the samplers that fill them.

Two schemes estimate the quantities the policy update needs (TRPO paper, Sec. 5):

- **Single path** (:class:`SinglePathSampler`): run the policy π in N vectorised
  environments for T steps and store every transition with the old policy's
  log-probabilities and distribution parameters (a :class:`Batch`). Advantages are estimated
  later from the rewards (:mod:`rl.advantages`).
- **Vine** (:class:`VineSampler`): run trunk trajectories with π, pick a rollout set of
  states along them, and from each state branch K rollouts (one per action a_k), each with
  the same random numbers, to estimate ``Q(s, a_k)`` directly (a :class:`VineBatch`).

Every sampler follows the :class:`Sampler` protocol (``sample``, ``state_dict``,
``load_state_dict``, ``close`` and ``resume_problem``) and every batch exposes the same
summary (:class:`SampledBatch`), so the runner and the algorithms never ask which kind they
hold. The package's files name its parts:

========================  ==================================================================
``protocol.py``           :class:`Sampler`, :class:`SampledBatch`
``batch.py``              :class:`Batch`, :class:`VineBatch`, :class:`EnvAction`
``single_path.py``        :class:`SinglePathSampler`
``vine.py``               :class:`VineSampler`
``finishing.py``          the step every backend shares: normaliser update and log-prob
                          recompute, joining blocks; the environment's errors
``blocks.py``             :class:`BlockSampler`: blocks of environments with their own
                          random streams, in this process or on Ray actors
``checks.py``             seeds, RNG states, spaces and policy checks
``observations.py``       :class:`~rl.sampling.observations.ObservationStorage`: how a batch
                          holds the observations of each kind of space
========================  ==================================================================
"""

from rl.sampling.batch import Batch, EnvAction, VineBatch
from rl.sampling.blocks import BlockSampler, BlockWorker, RayUnavailableError
from rl.sampling.protocol import SampledBatch, Sampler
from rl.sampling.single_path import SinglePathSampler
from rl.sampling.vine import VineSampler

__all__ = ["Batch", "BlockSampler", "BlockWorker", "EnvAction", "RayUnavailableError",
           "SampledBatch", "Sampler", "SinglePathSampler", "VineBatch", "VineSampler"]
