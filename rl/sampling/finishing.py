"""The finishing step every sampler shares, and the errors an environment can cause.

After the acting loop a batch is *finished* in one place, whichever backend sampled it:

1. the observation normaliser (if the policy has one) is updated with the batch's
   observations, once per batch, so that every step of the batch was acted on with the same
   statistics (a policy on structured observations says which columns it normalises through
   its ``normalizer_input``: the Box leaves that are not images,
   :meth:`rl.policies.MultiInputPolicy.normalizer_input`);
2. ``log π_old(a|s)`` and the distribution parameters are recomputed under the updated
   statistics in one batched forward pass, so that they are those of the policy the update
   starts from (the ratio ``π_θ / π_old`` is exactly 1 at ``θ = θ_old``).

Pieces sampled separately (blocks of environments in this process or on workers) are first
joined by :func:`join_blocks` into the batch one sampler with all their environments would
have returned, then finished once: the normaliser statistics are those of the whole batch.
"""

from __future__ import annotations

import numpy as np

from rl.envs import EnvironmentFailure, NonFiniteEnvironmentError
from rl.sampling.batch import Batch
from rl.spaces import map_leaves

__all__ = ["current_params", "finish_batch", "join_blocks", "failure", "nonfinite"]


def current_params(policy, obs, actions) -> tuple[np.ndarray, np.ndarray]:
    """``(dist_params, log_probs)`` of ``actions`` under the policy as it stands now."""
    dist = policy.distribution(obs)
    return np.asarray(dist.params, dtype=np.float64), np.asarray(
        dist.log_prob(actions), dtype=np.float64
    )


def failure(where: str, exc: BaseException) -> EnvironmentFailure:
    detail = " ".join(str(exc).split())
    if len(detail) > 200:
        detail = detail[:197] + "..."
    return EnvironmentFailure(f"the environment failed {where}: {type(exc).__name__}: {detail}")


def nonfinite(what: str, where: str) -> NonFiniteEnvironmentError:
    return NonFiniteEnvironmentError(
        f"the environment returned a non-finite (NaN or inf) {what} {where}; check the "
        "environment (e.g. a physics blow-up from extreme actions) before sampling from it"
    )


def finish_batch(policy, batch: Batch, update_normalizer: bool) -> Batch:
    """Steps 1-2 above, in place on ``batch`` (returned for chaining).

    Without a normaliser, or with ``update_normalizer=False``, the batch keeps the values
    ``policy.step`` returned while acting.
    """
    norm = getattr(policy, "obs_normalizer", None)
    if update_normalizer and norm is not None:
        T, N = batch.rewards.shape
        flat_obs = batch.flat("observations")
        normalizer_input = getattr(policy, "normalizer_input", None)
        norm.update(flat_obs if normalizer_input is None else normalizer_input(flat_obs))
        params, logp = current_params(policy, flat_obs, batch.flat("actions"))
        batch.dist_params = params.reshape(T, N, -1)
        batch.log_probs = logp.reshape(T, N)
    return batch


def join_blocks(pieces: list[Batch]) -> Batch:
    """One :class:`Batch` from pieces sampled by blocks of environments (in block order).

    The step arrays are joined along the environment axis, so block ``k``'s environments
    follow block ``k - 1``'s. Ended episodes are put in the order one sampler with all the
    environments reports them: by the step they ended at, ties by environment index (each
    piece lists its own in that order, which ``np.argwhere`` of its ``dones`` recovers).
    """
    if len(pieces) == 1:
        return pieces[0]
    joined = {name: map_leaves(lambda *arrays: np.concatenate(arrays, axis=1),
                               *[getattr(p, name) for p in pieces])
              for name in Batch.STEP_FIELDS}
    end_step = np.concatenate([np.argwhere(p.dones)[:, 0] for p in pieces])
    order = np.argsort(end_step, kind="stable")  # block order breaks ties: env index order
    returns = np.concatenate([p.episode_returns for p in pieces])[order]
    lengths = np.concatenate([p.episode_lengths for p in pieces])[order]
    return Batch(**joined, episode_returns=returns, episode_lengths=lengths)
