"""Blocks of environments with their own random streams, in this process or on Ray actors.

A :class:`BlockSampler` splits its ``num_envs`` environments into K blocks. Block ``k`` is a
:class:`BlockWorker`: a vector env of ``num_envs / K`` environments (initial seeds
``env_seed + k * num_envs / K + i``, a disjoint block), a numpy copy of the policy and a
:class:`~rl.sampling.SinglePathSampler` seeded with the ``k``-th child of the sampler's
``SeedSequence`` (``SeedSequence.spawn``). One :meth:`BlockSampler.sample`:

1. broadcast the policy's parameters and normaliser statistics once (``ray.put`` on Ray);
2. every block samples its T steps with them, normaliser frozen;
3. gather the pieces in block order and join them (:func:`~rl.sampling.finishing.join_blocks`)
   into the batch of one sampler holding all the environments;
4. finish the joined batch once (:func:`~rl.sampling.finishing.finish_batch`): the
   normaliser is updated from the whole batch and ``log π_old`` recomputed, exactly as a
   single sampler does.

The blocks run the same code wherever they are, and arrays cross process boundaries
unchanged, so K Ray workers give the batch of the in-process sampler with K blocks, bit for
bit (``tests/rl/test_blocks.py``). K blocks differ from one :class:`SinglePathSampler` with
all the environments only in their random streams.

**Faults.** The sampler keeps every block's state after its last piece (random streams,
open episodes and, where they can be saved, the environments: :attr:`resume_problem`). A
worker that dies while sampling is restarted from that state and its piece sampled again,
so the batch is the one an undisturbed run draws; the restart is logged (logger
``rl.sampling``) and counted in the ``sampler/restarts`` diagnostic.
"""

from __future__ import annotations

import functools
import logging
import time

from rl.envs import make_vector_env
from rl.sampling.batch import Batch
from rl.sampling.checks import positive_int, seed_sequence
from rl.sampling.finishing import finish_batch, join_blocks
from rl.sampling.single_path import SinglePathSampler

__all__ = ["BlockSampler", "BlockWorker", "RayUnavailableError", "connect_ray", "import_ray",
           "shippable"]

log = logging.getLogger("rl.sampling")


class RayUnavailableError(ValueError):
    """``backend="ray"`` cannot start: Ray is missing, the cluster cannot be reached, or it
    has fewer CPUs than workers (the message says what to do)."""


class BlockWorker:
    """One block of environments and a copy of the policy (in this process or a Ray actor).

    Parameters
    ----------
    env : str or callable
        A Gymnasium id or a factory (as for :func:`rl.envs.make_vector_env`).
    num_envs : int
        Environments in the block.
    policy_state : dict
        ``policy.state_dict()`` of the policy to copy (:meth:`rl.policies.Policy.from_state_dict`).
    steps_per_env : int
        T.
    seed : numpy.random.SeedSequence
        The block's own stream (a ``spawn`` child of the sampler's).
    env_seed : int
        Seed of the block's vector env (``env_seed + i`` for environment ``i``).
    vectorization : str
        As for :func:`rl.envs.make_vector_env`.
    """

    def __init__(self, env, num_envs, policy_state, steps_per_env, seed, env_seed,
                 vectorization="sync"):
        from rl.policies import Policy

        venv = make_vector_env(env, num_envs, seed=env_seed, vectorization=vectorization)
        self.policy = Policy.from_state_dict(
            policy_state, observation_space=venv.single_observation_space,
            action_space=venv.single_action_space)
        self.sampler = SinglePathSampler(venv, self.policy, steps_per_env, seed=seed,
                                         update_normalizer=False)

    def resume_problem(self) -> str | None:
        """The block sampler's :attr:`~rl.sampling.SinglePathSampler.resume_problem`."""
        return self.sampler.resume_problem

    def sample(self, policy_state: dict) -> tuple[Batch, dict, float]:
        """``(piece, state after it, seconds spent sampling)`` with the broadcast policy."""
        self.policy.load_state_dict(policy_state)
        t0 = time.perf_counter()
        piece = self.sampler.sample()
        return piece, self.sampler.state_dict(), time.perf_counter() - t0

    def state_dict(self) -> dict:
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.sampler.load_state_dict(state)

    def close(self) -> None:
        self.sampler.close()


def shippable(env):
    """``env`` as workers in other processes can build it: a registered id becomes a
    factory holding its ``EnvSpec`` (``gymnasium.make(spec)``), so an id registered only in
    this process (``gymnasium.register``) works there too; anything else is returned as is."""
    if isinstance(env, str):
        import gymnasium

        try:
            spec = gymnasium.spec(env)
        except Exception:  # noqa: BLE001 - an unknown id is reported where it is made
            return env
        return functools.partial(gymnasium.make, spec)
    return env


def import_ray():
    try:
        import ray
    except ImportError:
        raise RayUnavailableError(
            "sampler='ray' needs Ray, which is not installed: pip install -e '.[ray]' (or "
            "pip install ray), or use sampler='local'") from None
    return ray


def _unreachable(address) -> str | None:
    """Why the Ray head at ``address`` (``HOST:PORT`` or ``ray://HOST:PORT``) cannot be
    reached by TCP, or None (also for ``"auto"``: Ray finds that one itself). Ray's own
    connection retries for minutes; this answers in seconds."""
    import socket

    if address is None or ":" not in address:
        return None
    host, _, port = address.split("://")[-1].rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            return None
    except (OSError, ValueError) as exc:
        return " ".join(str(exc).split()) or type(exc).__name__


def connect_ray(ray, address, num_workers):
    """Join (or start) the Ray cluster and check it has ``num_workers`` CPUs (None: any)."""
    # returns whether this call started it
    problem = _unreachable(address)
    if problem is not None:
        raise RayUnavailableError(
            f"cannot reach a Ray cluster at {address!r} ({problem}); start one with "
            "'ray start --head' and pass the address it prints as ray_address=HOST:6379, or "
            "leave ray_address unset to start a local one")
    started = False
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"at {address!r}" if address else "on this machine"
            detail = " ".join(str(exc).split())[:160]
            raise RayUnavailableError(
                f"cannot reach a Ray cluster {where} ({detail}); start one with "
                "'ray start --head' and pass its address as ray_address=HOST:6379, or leave "
                "ray_address unset to start a local one") from None
        started = True
    cpus = int(ray.cluster_resources().get("CPU", 0))
    if num_workers is not None and num_workers > cpus:
        if started:
            ray.shutdown()
        raise RayUnavailableError(
            f"num_workers={num_workers} is more than the {cpus} CPUs of the Ray cluster; "
            f"lower num_workers to at most {cpus} or add nodes (ray start --address=...)")
    return started


class BlockSampler:
    """K blocks of environments sampled with one policy, joined and finished once.

    Parameters
    ----------
    env : str or callable
        A Gymnasium id or a factory returning a fresh environment (an environment instance
        cannot be shipped to workers: pass a factory).
    policy : rl.policies.Policy
        The policy the update changes; its parameters and normaliser statistics are
        broadcast to the blocks at every :meth:`sample`.
    num_envs : int
        All environments, ``K`` blocks of ``num_envs / K`` (must divide).
    steps_per_env : int
        T; a batch has ``T * num_envs`` transitions.
    num_blocks : int or None
        K; None with ``backend="ray"``: one block per CPU of the cluster.
    seed : int, numpy.random.SeedSequence or None
        Block ``k`` samples with ``SeedSequence(seed).spawn(K)[k]``.
    env_seed : int, default 0
        Block ``k``'s environments get the initial seeds ``env_seed + k * num_envs / K + i``.
    backend : {"local", "ray"}, default "local"
        Blocks in this process, or one Ray actor per block.
    ray_address : str or None
        With ``backend="ray"``: a running cluster to join (``"HOST:6379"``, or ``"auto"``);
        None starts a local one with this machine's cores (or uses the one this process
        already joined).
    vectorization : str, default "sync"
        Each block's vector env (:func:`rl.envs.make_vector_env`).
    update_normalizer : bool, default True
        Update ``policy.obs_normalizer`` from each joined batch (the shared finishing step).

    Raises
    ------
    ValueError
        Bad sizes; :class:`RayUnavailableError` when the Ray backend cannot start.

    Examples
    --------
    >>> from rl.policies import CategoricalMLP
    >>> pi = CategoricalMLP(4, 2, hidden_sizes=(8,), seed=0)
    >>> sampler = BlockSampler("CartPole-v1", pi, num_envs=4, steps_per_env=5, num_blocks=2,
    ...                        seed=0)
    >>> batch = sampler.sample()
    >>> batch.observations.shape, sorted(batch.diagnostics)
    ((5, 4, 4), ['sampler/restarts', 'time/sample_blocks_s'])
    >>> sampler.close()
    """

    def __init__(self, env, policy, *, num_envs, steps_per_env, num_blocks, seed, env_seed=0,
                 backend="local", ray_address=None, vectorization="sync",
                 update_normalizer=True):
        if backend not in ("local", "ray"):
            raise ValueError(f"backend must be 'local' or 'ray'; got {backend!r}")
        self._ray, self._owns_ray, self.workers = None, False, []
        if backend == "ray":
            self._ray = import_ray()
            self._owns_ray = connect_ray(self._ray, ray_address, num_blocks)
            if num_blocks is None:  # one worker per CPU of the cluster
                num_blocks = int(self._ray.cluster_resources().get("CPU", 1))
        try:
            self._check_sizes(num_envs, num_blocks)
        except ValueError:
            self.close()
            raise
        self.num_envs, self.per_block = int(num_envs), int(num_envs) // self.num_blocks
        self.steps_per_env = positive_int(steps_per_env, "steps_per_env")
        self.policy, self.backend = policy, backend
        self.update_normalizer = bool(update_normalizer)
        self.restarts = 0
        children = seed_sequence(seed).spawn(self.num_blocks)
        if backend == "ray":
            env = shippable(env)
        self._args = [(env, self.per_block, policy.state_dict(), self.steps_per_env, child,
                       int(env_seed) + k * self.per_block, vectorization)
                      for k, child in enumerate(children)]
        if backend == "ray":
            self._actor = self._ray.remote(num_cpus=1)(BlockWorker)
        self.workers = [self._start(k) for k in range(self.num_blocks)]
        self._states = self._call_all("state_dict")
        self.resume_problem = self._call(self.workers[0], "resume_problem")

    def _check_sizes(self, num_envs, num_blocks):
        self.num_blocks = positive_int(num_blocks, "num_blocks (num_workers)")
        num_envs = positive_int(num_envs, "num_envs")
        if num_envs % self.num_blocks:
            raise ValueError(f"num_envs={num_envs} must be a multiple of the number of blocks "
                             f"(num_workers) {self.num_blocks}: each holds num_envs / "
                             f"num_workers environments; e.g. num_envs="
                             f"{self.num_blocks * max(1, num_envs // self.num_blocks)}")

    def __repr__(self) -> str:
        return (f"BlockSampler(num_envs={self.num_envs}, num_blocks={self.num_blocks}, "
                f"steps_per_env={self.steps_per_env}, backend={self.backend!r})")

    # -- workers, wherever they run -----------------------------------------------------
    def _start(self, k):
        if self._ray is None:
            return BlockWorker(*self._args[k])
        return self._actor.remote(*self._args[k])

    def _call(self, worker, name, *args):
        if self._ray is None:
            return getattr(worker, name)(*args)
        return self._ray.get(getattr(worker, name).remote(*args))

    def _call_all(self, name, *args):
        if self._ray is None:
            return [getattr(w, name)(*args) for w in self.workers]
        return self._ray.get([getattr(w, name).remote(*args) for w in self.workers])

    def _restart(self, k, exc):
        """Replace dead worker ``k`` by a new one in its saved state."""
        self.restarts += 1
        exact = "exactly" if self.resume_problem is None else "with fresh episodes"
        log.warning("sampling worker %d died (%s); restarted from its saved state, its part "
                    "of the batch is sampled again (%s)", k, type(exc).__name__, exact)
        try:
            self._ray.kill(self.workers[k])
        except Exception:  # noqa: BLE001 - it is dead already
            pass
        self.workers[k] = self._start(k)
        self._call(self.workers[k], "load_state_dict", self._states[k])

    # -- the protocol -------------------------------------------------------------------
    def sample(self) -> Batch:
        """Steps 1-4 of the module notes; a dead Ray worker is restarted and resampled."""
        policy_state = self.policy.state_dict()
        if self._ray is None:
            results = [w.sample(policy_state) for w in self.workers]
        else:
            ray = self._ray
            shared = ray.put(policy_state)  # 1. one broadcast, read by every worker
            futures = [w.sample.remote(shared) for w in self.workers]
            results = []
            for k, future in enumerate(futures):  # 3. gathered in block order
                for attempt in range(3):
                    try:
                        results.append(ray.get(future))
                        break
                    except (ray.exceptions.RayActorError,
                            ray.exceptions.WorkerCrashedError) as exc:
                        if attempt == 2:
                            raise
                        self._restart(k, exc)
                        future = self.workers[k].sample.remote(shared)
        pieces = [piece for piece, _, _ in results]
        self._states = [state for _, state, _ in results]
        if self.resume_problem is None and any(s.get("envs") is None for s in self._states):
            self.resume_problem = ("a block's environments could not be saved as arrays and "
                                   "plain values")
        batch = finish_batch(self.policy, join_blocks(pieces), self.update_normalizer)
        batch.diagnostics = {"time/sample_blocks_s": max(s for _, _, s in results),
                             "sampler/restarts": self.restarts}
        return batch

    def state_dict(self) -> dict:
        """``{"blocks": [each block's SinglePathSampler state after its last piece]}``."""
        return {"blocks": [dict(s) for s in self._states]}

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict` of a sampler with the same blocks."""
        blocks = state.get("blocks") if isinstance(state, dict) else None
        if not isinstance(blocks, list) or len(blocks) != self.num_blocks:
            got = len(blocks) if isinstance(blocks, list) else "no"
            raise ValueError(f"state must be a BlockSampler.state_dict() with {self.num_blocks} "
                             f"blocks; got {got} blocks")
        for worker, block in zip(self.workers, blocks, strict=True):
            self._call(worker, "load_state_dict", block)
        self._states = list(blocks)

    def close(self) -> None:
        """Close the blocks' environments; stop the actors (and a cluster started here)."""
        if self._ray is None:
            for w in self.workers:
                w.close()
            return
        for w in self.workers:
            try:
                self._ray.get(w.close.remote())
                self._ray.kill(w)
            except Exception:  # noqa: BLE001 - a dead actor needs no closing
                pass
        if self._owns_ray:
            self._ray.shutdown()
