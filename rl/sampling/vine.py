"""The vine procedure of TRPO (Schulman et al. 2015, Sec. 5.2): Q̂ by branching rollouts.

Run trunk trajectories with π, pick a rollout set of states along them, and from each state
branch K rollouts (one per action a_k), each with the same random numbers, to estimate
``Q(s, a_k)`` directly. Needs environments whose state can be saved and restored
(:func:`rl.envs.save_state`).
"""

from __future__ import annotations

import copy
import logging
import numbers

import gymnasium
import numpy as np
from gymnasium import spaces

from rl import checkpoint as ckpt
from rl.envs import (
    EnvState,
    check_spaces,
    env_factory,
    make_vector_env,
    restore_state,
    save_state,
    supports_state_restore,
    vine_unsupported_error,
)
from rl.sampling.batch import EnvAction, VineBatch
from rl.sampling.checks import (
    check_policy,
    check_policy_fits,
    checked_rng_state,
    env_name,
    generator,
    positive_int,
    seed_sequence,
)
from rl.sampling.finishing import current_params, failure, finish_batch, nonfinite
from rl.sampling.observations import ObservationStorage
from rl.sampling.single_path import SinglePathSampler
from rl.spaces import map_leaves

__all__ = ["VineRolloutWorker", "VineRollouts", "VineSampler"]

log = logging.getLogger("rl.sampling")


class VineRollouts:
    """The leaf rollouts of the vine: ``Q̂`` from restored states (step 3 of
    :class:`VineSampler`). Stateless between rollouts: each one restores its state and
    reseeds the environment and the policy noise, so rollouts can run anywhere (this
    process, or Ray actors built with :meth:`remote_args`) with the same results.

    Parameters
    ----------
    env : gymnasium.Env
        The rollout environment (state save/restore supported).
    policy : rl.policies.Policy
    rollout_length : int
        H.
    gamma : float
    """

    def __init__(self, env, policy, rollout_length, gamma):
        self.env, self.policy = env, policy
        self.rollout_length, self.gamma = rollout_length, gamma
        self._env_action = EnvAction(env.action_space)
        self._storage = ObservationStorage(env.observation_space)

    def one(self, state, first_action, env_seed: int, policy_seed: int):
        """``(Q̂, steps)``: discounted return of up to H steps from a restored state."""
        env, policy, gamma = self.env, self.policy, self.gamma
        restore_state(env, state)
        reseed_env(env, env_seed)
        rng = np.random.Generator(np.random.PCG64(policy_seed))
        storage = self._storage
        q, discount, a, obs = 0.0, 1.0, first_action, None
        for h in range(self.rollout_length):
            if h > 0:
                a = policy.act(obs, rng)[0]
            try:
                obs, r, term, trunc, _ = env.step(self._env_action(a))
                # a batch of one observation, as stored
                obs = storage.convert(map_leaves(lambda x: np.asarray(x)[None], obs))
            except Exception as exc:  # noqa: BLE001 - whatever the environment raised
                raise failure(f"at step {h} of a vine rollout", exc) from exc
            if not np.isfinite(r) or not storage.finite(obs):
                raise nonfinite("reward or observation", f"at step {h} of a vine rollout")
            q += discount * float(r)
            discount *= gamma
            if term or trunc:
                break
        return q, h + 1

    def run(self, jobs, policy_state=None) -> tuple[list, int]:
        """``([Q̂ per job], steps)`` for ``jobs`` of ``(state, action, env_seed,
        policy_seed)``; ``policy_state`` (a worker's broadcast copy) is loaded first."""
        if policy_state is not None:
            self.policy.load_state_dict(policy_state)
        qs, total = [], 0
        for state, action, env_seed, policy_seed in jobs:
            q, steps = self.one(state, action, env_seed, policy_seed)
            qs.append(q)
            total += steps
        return qs, total

    def close(self) -> None:
        self.env.close()


class VineRolloutWorker(VineRollouts):
    """:class:`VineRollouts` with its own environment and policy copy, built from an id or
    factory and a ``policy.state_dict()`` (what a Ray actor is constructed from)."""

    def __init__(self, env_spec, env_kwargs, policy_state, rollout_length, gamma):
        from rl.policies import Policy

        env = env_factory(env_spec, env_kwargs)()
        policy = Policy.from_state_dict(policy_state, observation_space=env.observation_space,
                                        action_space=env.action_space)
        super().__init__(env, policy, rollout_length, gamma)


def reseed_env(env, seed: int) -> None:
    """Replace the unwrapped env's RNG by a fresh one (the noise of the next transitions)."""
    env.unwrapped.np_random = np.random.Generator(np.random.PCG64(seed))


class VineSampler:
    """The vine procedure of TRPO (Schulman et al. 2015, Sec. 5.2): Q̂ by branching rollouts.

    Parameters
    ----------
    env_fn_or_env : str, callable or gymnasium.Env
        As for :func:`rl.envs.make_vector_env`; the environment must support state
        save/restore (:class:`rl.mdp.TabularMDP`, MuJoCo), else
        :class:`rl.envs.VineUnsupportedError` is raised here, before any sampling.
    policy : rl.policies.Policy
        π, used for the trunk, to draw the K actions and inside the rollouts; it must fit
        the environment's spaces (checked here, as by :class:`SinglePathSampler`).
    num_trunk_steps : int
        Steps of trunk trajectory per :meth:`sample` (one environment; episodes continue
        across calls).
    num_rollout_states : int
        N, the size of the rollout set, drawn uniformly without replacement from the trunk
        steps (at most ``num_trunk_steps``).
    actions_per_state : int or "all"
        K actions per rollout state sampled from π, or ``"all"`` to branch on every action of
        a Discrete action space (the paper's choice for small finite action spaces).
    rollout_length : int
        H, steps per rollout including the first action ``a_k``; a rollout also stops when
        its episode terminates or is truncated.
    gamma : float
        Discount in ``[0, 1]``.
    seed : int, numpy.random.Generator, numpy.random.SeedSequence or None
        Seeds the trunk, the choice of rollout states and the rollouts' random numbers (a
        Generator as for :class:`SinglePathSampler`).
    common_random_numbers : bool, default True
        Give the K branches from one state the same random numbers (same environment RNG
        seed and same action-noise stream); otherwise independent ones.
    env_kwargs : dict or None
        Keyword arguments for ``gymnasium.make`` or the factory.
    update_normalizer : bool, default True
        Update ``policy.obs_normalizer`` with the trunk's observations after sampling (as
        :class:`SinglePathSampler`); the returned log-probabilities and distribution
        parameters are those of the policy after the update.
    estimator : {"leave_one_out", "self_normalized"}, default "leave_one_out"
        For K >= 2 sampled actions: advantages ``Q̂ - b`` with the leave-one-out baseline
        (step 4 below), or the paper's self-normalised estimator (TRPO paper eq. (16)):
        the batch carries the raw ``Q̂`` and ``self_normalized=True``, and the update
        builds a :class:`~rl.algorithms.objective.PolicyObjective` grouped by rollout
        state. At θ_old the two gradients are parallel (leave-one-out's is ``K/(K-1)``
        times the other's); away from it the surrogates differ. Enumerated actions
        (``"all"``) use the paper's exact per-state sum either way.
    rollout_workers : int or None, default None
        Run the leaf rollouts (step 3) on this many Ray actors (``pip install -e
        ".[ray]"``), each with its own environment and a copy of the policy broadcast once
        per batch; the rollouts are split in contiguous chunks and gathered in order. Each
        rollout restores its state and reseeds its noise, so the batch is the one of the
        in-process rollouts, bit for bit. ``None``: in this process. A worker that dies is
        restarted and its rollouts run again (logged, counted in ``vine/restarts``).
    ray_address : str or None
        With ``rollout_workers``: a running Ray cluster to join (None: start a local one).

    Notes
    -----
    One :meth:`sample` (TRPO paper, Sec. 5.2):

    1. run the trunk for ``num_trunk_steps`` steps with π, saving the environment state
       (:func:`rl.envs.save_state`) at the N steps chosen for the rollout set;
    2. at each rollout state ``s_n`` choose actions ``a_{n,1..K}`` (sampled from π, or every
       action);
    3. for each ``a_{n,k}``: restore ``s_n`` into a separate rollout environment, take
       ``a_{n,k}``, then follow π for ``H - 1`` more steps, and set
       ``Q̂(s_n, a_{n,k}) = Σ_{t<H} γ^t r_t``. With common random numbers every branch from
       ``s_n`` reseeds the environment RNG and the policy noise with the same two seeds, so
       ``Q̂(s_n, a_k) − Q̂(s_n, a_j)`` has far lower variance (identical actions give
       identical returns);
    4. advantages. For K sampled actions the baseline is the leave-one-out mean
       ``b_{n,k} = (1/(K−1)) Σ_{j≠k} Q̂(s_n, a_{n,j})``: it does not depend on ``a_{n,k}``,
       so ``E[Q̂_k − b_k | s_n, a_{n,k}] = Q_H(s_n, a_{n,k}) − V_H(s_n)`` exactly, an
       unbiased advantage estimate [2]_ (K = 1: ``b = 0``). With every action enumerated,
       ``b_n = Σ_a π_old(a|s_n) Q̂(s_n, a)`` and the rows carry weights
       ``K π_old(a|s_n)``: ``(1/K) Σ_a ratio_a w_a (Q̂_a − b_n) = Σ_a π_θ(a|s_n)(Q̂_a − b_n)``,
       the paper's ``L_n(θ) = Σ_k π_θ(a_k|s_n) Q̂(s_n, a_k)`` up to a θ-independent term.

    ``E[Q̂(s, a)] = Q_H(s, a)``, the H-step discounted action value under π (of the MDP
    with its time limit): the estimator is unbiased for it. The rollout set is drawn from
    the undiscounted trunk state distribution, as in the paper's experiments.

    **Checkpoints.** :meth:`state_dict` captures the random streams, the trunk's open
    episode and the trunk environment's exact state; :meth:`load_state_dict` into a new
    sampler built with the same settings continues with exactly the batches the saving
    sampler would have drawn next.

    References
    ----------
    .. [1] J. Schulman, S. Levine, P. Moritz, M. Jordan, P. Abbeel, "Trust Region Policy
       Optimization", ICML 2015, Sec. 5.2 (vine) and App. B.
    .. [2] W. Kool, H. van Hoof, M. Welling, "Buy 4 REINFORCE samples, get a baseline for
       free!", ICLR workshop 2019 (leave-one-out baseline).
    .. [3] P. Glasserman, D. Yao, "Some guidelines and guarantees for common random
       numbers", Management Science 38(6), 1992.

    Examples
    --------
    >>> import gymnasium
    >>> import numpy as np
    >>> from gymnasium import spaces
    >>> class Coin(gymnasium.Env):
    ...     # two states; action 1 moves to state 1, which pays 1 per step
    ...     observation_space, action_space = spaces.Discrete(2), spaces.Discrete(2)
    ...     def reset(self, *, seed=None, options=None):
    ...         super().reset(seed=seed); self.s = 0; return self.s, {}
    ...     def step(self, a):
    ...         r = float(self.s); self.s = int(a); return self.s, r, False, False, {}
    ...     def get_state(self): return self.s
    ...     def set_state(self, s): self.s = s
    >>> from rl.policies import TabularSoftmax
    >>> vine = VineSampler(Coin(), TabularSoftmax(2, 2), num_trunk_steps=10,
    ...                    num_rollout_states=4, actions_per_state="all", rollout_length=2,
    ...                    gamma=0.5, seed=0)
    >>> vb = vine.sample()
    >>> vb.observations.shape, vb.q_values.shape
    ((8,), (8,))
    >>> bool(np.all(vb.q_values[vb.actions == 1] >= vb.q_values[vb.actions == 0]))
    True
    """

    def __init__(
        self,
        env_fn_or_env,
        policy,
        *,
        num_trunk_steps: int,
        num_rollout_states: int,
        actions_per_state: int | str,
        rollout_length: int,
        gamma: float,
        seed,
        common_random_numbers: bool = True,
        env_kwargs: dict | None = None,
        update_normalizer: bool = True,
        estimator: str = "leave_one_out",
        rollout_workers: int | None = None,
        ray_address: str | None = None,
    ):
        self.num_trunk_steps = positive_int(num_trunk_steps, "num_trunk_steps")
        self.num_rollout_states = positive_int(num_rollout_states, "num_rollout_states")
        if self.num_rollout_states > self.num_trunk_steps:
            raise ValueError(
                f"num_rollout_states ({num_rollout_states}) must be at most num_trunk_steps "
                f"({num_trunk_steps}): the rollout set is drawn from the trunk's steps"
            )
        self.rollout_length = positive_int(rollout_length, "rollout_length")
        gamma_f = float(gamma) if isinstance(gamma, numbers.Real) else np.nan
        if not 0.0 <= gamma_f <= 1.0:
            raise ValueError(f"gamma must be a number in [0, 1]; got {gamma!r}")
        self.gamma = gamma_f
        if env_kwargs is not None and not isinstance(env_kwargs, dict):
            raise ValueError(f"env_kwargs must be a dict or None; got {type(env_kwargs).__name__}")
        check_policy(policy)
        self.policy = policy
        self.common_random_numbers = bool(common_random_numbers)
        self.update_normalizer = bool(update_normalizer)
        if estimator not in ("leave_one_out", "self_normalized"):
            raise ValueError(f"estimator must be 'leave_one_out' or 'self_normalized'; got "
                             f"{estimator!r}")
        self.estimator = estimator

        # Fail up front if the env cannot be saved/restored, before building the trunk.
        self._rollout_env = env_factory(env_fn_or_env, env_kwargs)()
        if not supports_state_restore(self._rollout_env):
            self._rollout_env.close()
            raise vine_unsupported_error(self._rollout_env)
        act_space = self._rollout_env.action_space
        try:
            check_spaces(self._rollout_env.observation_space, act_space)
            check_policy_fits(policy, self._rollout_env.observation_space, act_space)
        except ValueError:
            self._rollout_env.close()
            raise

        if isinstance(actions_per_state, str):
            if actions_per_state != "all":
                raise ValueError(
                    f'actions_per_state must be a positive integer or "all"; got '
                    f"{actions_per_state!r}"
                )
            if not isinstance(act_space, spaces.Discrete):
                raise ValueError(
                    'actions_per_state="all" needs a Discrete action space; got '
                    f"{act_space!r}; pass the number of actions to sample instead"
                )
            self.enumerate_actions = True
            self.actions_per_state = int(act_space.n)
        else:
            self.enumerate_actions = False
            self.actions_per_state = positive_int(actions_per_state, "actions_per_state")
        if self.estimator == "self_normalized" and (self.enumerate_actions
                                                    or self.actions_per_state < 2):
            self._rollout_env.close()
            raise ValueError(
                "estimator='self_normalized' needs at least 2 sampled actions per state "
                f"(got actions_per_state={actions_per_state!r}): with one action its ratio "
                "cancels, and enumerated actions already use the exact per-state sum")

        self._env_action = EnvAction(act_space)

        trunk_ss, choice_ss, rollout_ss, action_ss = seed_sequence(seed).spawn(4)
        self._venv = make_vector_env(env_fn_or_env, 1, env_kwargs=env_kwargs)
        self.trunk_sampler = SinglePathSampler(
            self._venv, policy, self.num_trunk_steps, seed=trunk_ss, update_normalizer=False
        )
        self._choice_rng = generator(choice_ss)  # which trunk steps form the rollout set
        self._rollout_seed_rng = generator(rollout_ss)  # seeds of the branches' noise
        self._action_rng = generator(action_ss)  # the K actions a_{n,k} ~ π(·|s_n)
        self._rollouts = VineRollouts(self._rollout_env, policy, self.rollout_length,
                                      self.gamma)
        self._workers, self._ray, self._owns_ray = [], None, False
        self.restarts = 0
        if rollout_workers is not None:
            self._start_workers(env_fn_or_env, env_kwargs, rollout_workers, ray_address)
        #: None, or why :meth:`state_dict` cannot hold the trunk environment's exact state
        self.resume_problem = self._probe_resume_problem()

    def _probe_resume_problem(self) -> str | None:
        """Whether a saved environment state is arrays and plain values (tried once on the
        rollout environment, which holds no state between rollouts)."""
        try:
            self._rollout_env.reset(seed=0)
            ckpt.encode(save_state(self._rollout_env).to_dict())
        except ckpt.NotExpressibleError as exc:
            return f"the environment's state holds {exc}"
        except Exception:  # noqa: BLE001 - a failing reset shows itself when sampling starts
            return None
        return None

    def __repr__(self) -> str:
        actions = "'all'" if self.enumerate_actions else self.actions_per_state
        return (
            f"VineSampler(env={env_name(self._rollout_env)}, policy={self.policy!r}, "
            f"num_trunk_steps={self.num_trunk_steps}, "
            f"num_rollout_states={self.num_rollout_states}, actions_per_state={actions}, "
            f"rollout_length={self.rollout_length}, gamma={self.gamma})"
        )

    def _start_workers(self, env_spec, env_kwargs, num_workers, address):
        """Ray actors running the rollouts, each building its own environment and policy."""
        from rl.sampling.blocks import connect_ray, import_ray, shippable

        num_workers = positive_int(num_workers, "rollout_workers")
        if isinstance(env_spec, gymnasium.Env):
            self.close()
            raise ValueError("rollout_workers build their environments from an id or a factory: "
                             "pass env as a function returning a fresh env")
        try:
            self._ray = import_ray()
            self._owns_ray = connect_ray(self._ray, address, num_workers)
        except ValueError:
            self.close()
            raise
        self._worker_args = (shippable(env_spec), env_kwargs, self.policy.state_dict(),
                             self.rollout_length, self.gamma)
        self._actor = self._ray.remote(num_cpus=1)(VineRolloutWorker)
        self._workers = [self._actor.remote(*self._worker_args) for _ in range(num_workers)]

    def _run_rollouts(self, jobs):
        """``(q, steps)`` of all jobs: here, or split in contiguous chunks over the workers
        (policy broadcast once, results gathered in order: the same numbers)."""
        if not self._workers:
            qs, steps = self._rollouts.run(jobs)
            return np.asarray(qs, dtype=np.float64), steps
        ray = self._ray
        shared = ray.put(self.policy.state_dict())
        chunks = np.array_split(np.arange(len(jobs)), len(self._workers))
        futures = [w.run.remote([jobs[i] for i in c], shared)
                   for w, c in zip(self._workers, chunks, strict=True)]
        qs, steps = [], 0
        for k, (future, chunk) in enumerate(zip(futures, chunks, strict=True)):
            for attempt in range(3):
                try:
                    part, n = ray.get(future)
                    break
                except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as exc:
                    if attempt == 2:
                        raise
                    self.restarts += 1
                    log.warning("vine rollout worker %d died (%s); restarted, its rollouts run "
                                "again (they restore their states: the same numbers)", k,
                                type(exc).__name__)
                    self._workers[k] = self._actor.remote(*self._worker_args)
                    future = self._workers[k].run.remote([jobs[i] for i in chunk], shared)
            qs.extend(part)
            steps += n
        return np.asarray(qs, dtype=np.float64), steps

    def close(self) -> None:
        """Close the trunk and rollout environments (and stop the rollout workers)."""
        self._venv.close()
        self._rollout_env.close()
        for w in getattr(self, "_workers", []):
            try:
                self._ray.kill(w)
            except Exception:  # noqa: BLE001 - a dead actor needs no stopping
                pass
        if getattr(self, "_owns_ray", False):
            self._ray.shutdown()

    def _rollout(self, state, first_action, env_seed: int, policy_seed: int):
        """``(Q̂, steps)``: discounted return of up to H steps from a restored state."""
        return self._rollouts.one(state, first_action, env_seed, policy_seed)

    def sample(self) -> VineBatch:
        """Run the trunk, branch the rollouts, and return the :class:`VineBatch`.

        Raises
        ------
        NonFiniteEnvironmentError
            If the environment returns a NaN or infinite observation or reward.
        """
        T, N, K = self.num_trunk_steps, self.num_rollout_states, self.actions_per_state
        # 1. trunk, saving the env state at the chosen steps (before π acts there)
        chosen = np.sort(self._choice_rng.choice(T, size=N, replace=False))
        wanted = {int(t): n for n, t in enumerate(chosen)}
        states: list = [None] * N
        trunk_env = self._venv.envs[0]

        def before_step(t):
            n = wanted.get(t)
            if n is not None:
                states[n] = save_state(trunk_env)

        trunk = self.trunk_sampler._sample(before_step)
        obs_n = map_leaves(lambda x: x[chosen, 0], trunk.observations)  # (N, *obs_shape)

        # 2. K actions per rollout state
        obs_rep = map_leaves(lambda x: np.repeat(x, K, axis=0), obs_n)  # (N*K, *obs_shape)
        if self.enumerate_actions:
            actions = np.tile(np.arange(K, dtype=np.int64), N)
        else:
            actions = self.policy.step(obs_rep, self._action_rng)[0]

        # 3. rollouts with common (or independent) random numbers
        jobs = []
        for n in range(N):
            seeds = self._rollout_seed_rng.integers(0, 2**63 - 1, size=(K, 2))
            if self.common_random_numbers:
                seeds[:] = seeds[0]
            for k in range(K):
                jobs.append((states[n], actions[n * K + k], int(seeds[k, 0]), int(seeds[k, 1])))
        q, rollout_steps = self._run_rollouts(jobs)

        # normaliser update (trunk observations), then π_old's parameters of the pairs
        finish_batch(self.policy, trunk, self.update_normalizer)
        dist_params, log_probs = current_params(self.policy, obs_rep, actions)

        # 4. baselines and advantages
        Q = q.reshape(N, K)
        if self.enumerate_actions:
            pi_old = np.exp(log_probs.reshape(N, K))
            b = np.repeat((pi_old * Q).sum(axis=1), K)  # V̂(s_n) = Σ_a π_old(a|s_n) Q̂(s_n, a)
            w = K * pi_old.reshape(-1)
        elif self.estimator == "self_normalized":  # eq. (16): Q̂ itself, normalised per state
            b = np.zeros(N * K)
            w = np.ones(N * K)
        elif K >= 2:
            b = ((Q.sum(axis=1, keepdims=True) - Q) / (K - 1)).reshape(-1)  # leave-one-out
            w = np.ones(N * K)
        else:
            b = np.zeros(N * K)
            w = np.ones(N * K)
        advantages = w * (q - b)

        return VineBatch(
            observations=obs_rep,
            actions=np.asarray(actions),
            q_values=q,
            baselines=b,
            weights=w,
            advantages=advantages,
            log_probs=log_probs,
            dist_params=dist_params,
            state_index=np.repeat(np.arange(N, dtype=np.int64), K),
            trunk=trunk,
            num_env_steps=T + rollout_steps,
            self_normalized=self.estimator == "self_normalized",
            diagnostics={
                "vine/trunk_steps": T,
                "vine/rollout_steps": rollout_steps,
                "vine/q_mean": float(q.mean()),
                "vine/q_std_within_state": float(Q.std(axis=1).mean()),
                **({"vine/restarts": self.restarts} if self._workers else {}),
            },
        )

    # -- checkpoints --------------------------------------------------------------------
    _STATE_KEYS = ("settings", "trunk", "trunk_env", "choice_rng", "rollout_seed_rng",
                   "action_rng")

    def _settings(self) -> dict:
        """The arguments and spaces a saved state is only valid for."""
        return {
            "num_trunk_steps": self.num_trunk_steps,
            "num_rollout_states": self.num_rollout_states,
            "actions_per_state": "all" if self.enumerate_actions else self.actions_per_state,
            "rollout_length": self.rollout_length,
            "gamma": self.gamma,
            "common_random_numbers": self.common_random_numbers,
            "update_normalizer": self.update_normalizer,
            "estimator": self.estimator,
            "observation_space": repr(self._rollout_env.observation_space),
            "action_space": repr(self._rollout_env.action_space),
        }

    def _rngs(self) -> dict:
        return {
            "choice_rng": self._choice_rng,
            "rollout_seed_rng": self._rollout_seed_rng,
            "action_rng": self._action_rng,
        }

    def state_dict(self) -> dict:
        """Everything needed to continue sampling exactly: RNG states, trunk, open episode.

        Returns
        -------
        dict
            ``settings``
                The sampler's settings and spaces (checked by :meth:`load_state_dict`).
            ``trunk``
                The trunk sampler's :meth:`SinglePathSampler.state_dict`: its action-noise
                and reset-seed streams, the current trunk observation, the open episode's
                return and length, and the step and episode counters.
            ``trunk_env``
                The trunk environment's state (:func:`rl.envs.save_state`, as
                :meth:`rl.envs.EnvState.to_dict`: simulator state, environment RNG, wrapper
                chain such as ``TimeLimit``), or None before the first :meth:`sample`.
            ``choice_rng``, ``rollout_seed_rng``, ``action_rng``
                Bit-generator states of the rollout-set choice, of the branches' seeds and
                of the K sampled actions.

            All copies, independent of later sampling, as arrays and plain values (what
            :func:`rl.checkpoint.encode` stores). If the trunk environment's state holds
            anything else, ``trunk_env`` is None, the open trunk episode is left out and
            :attr:`resume_problem` says why: a sampler restored from the state keeps the
            random streams and starts a fresh trunk episode.

        Notes
        -----
        The rollout environment holds no state between rollouts (each one restores a trunk
        state and reseeds the environment RNG), so it is not saved. The policy and its
        observation normaliser are not part of the sampler's state: checkpoint them with
        the policy.

        Examples
        --------
        >>> from rl.mdp import random_mdp
        >>> from rl.policies import TabularSoftmax
        >>> kwargs = dict(num_trunk_steps=10, num_rollout_states=3, actions_per_state=2,
        ...               rollout_length=4, gamma=0.9)
        >>> mdp, pi = random_mdp(3, 2, seed=0, horizon=5), TabularSoftmax(3, 2)
        >>> vine = VineSampler(mdp, pi, seed=0, **kwargs)
        >>> _ = vine.sample()
        >>> state = vine.state_dict()
        >>> expected = vine.sample()
        >>> resumed = VineSampler(mdp, pi, seed=1, **kwargs)
        >>> resumed.load_state_dict(state)
        >>> bool(np.array_equal(resumed.sample().q_values, expected.q_values))
        True
        >>> vine.close(); resumed.close()
        """
        trunk = self._trunk_state()
        trunk_env = None
        if trunk["observations"] is not None and self.resume_problem is None:
            trunk_env = save_state(self._venv.envs[0]).to_dict()
            try:
                ckpt.encode(trunk_env)
            except ckpt.NotExpressibleError as exc:
                self.resume_problem = f"the trunk environment's state holds {exc}"
        if trunk_env is None or self.resume_problem is not None:
            # a resumed sampler keeps the streams and starts a fresh trunk episode
            trunk_env = None
            trunk.update(observations=None)
        return {
            "settings": self._settings(),
            "trunk": trunk,
            "trunk_env": trunk_env,
            **{name: copy.deepcopy(rng.bit_generator.state) for name, rng in self._rngs().items()},
        }

    def _trunk_state(self) -> dict:
        """The trunk sampler's state without its environment (``trunk_env`` holds it)."""
        return {k: v for k, v in self.trunk_sampler.state_dict().items() if k != "envs"}

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict`: the next :meth:`sample` is the saving sampler's next.

        Parameters
        ----------
        state : dict
            From :meth:`state_dict` of a VineSampler built with the same settings on the same
            kind of environment (its seed does not matter: the saved streams replace it).
            The trunk environment is put back into its saved state, so an open trunk
            episode continues where it was.

        Raises
        ------
        ValueError
            If ``state`` is not such a dict (missing or unknown keys), was saved by a sampler
            with different settings or spaces, or holds an invalid RNG or environment
            state. The keys, settings and RNG states are checked before anything is changed.
        """
        if not isinstance(state, dict):
            raise ValueError(
                f"state must be the dict returned by VineSampler.state_dict(); got "
                f"{type(state).__name__}"
            )
        missing = sorted(set(self._STATE_KEYS) - set(state))
        unknown = sorted(set(state) - set(self._STATE_KEYS), key=str)
        if missing or unknown:
            hint = (" (this looks like a SinglePathSampler state; load it into a "
                    "SinglePathSampler)" if "env_seed_rng" in state else "")
            raise ValueError(
                f"state must be the dict returned by VineSampler.state_dict() with keys "
                f"{sorted(self._STATE_KEYS)}; missing {missing}, unknown {unknown}{hint}"
            )
        saved, mine = state["settings"], self._settings()
        if not isinstance(saved, dict):
            raise ValueError(f"state['settings'] must be a dict; got {type(saved).__name__}")
        saved = {"estimator": "leave_one_out", **saved}  # states saved before the option
        differences = [
            f"{key}: saved {saved.get(key, '<missing>')!r}, this sampler {value!r}"
            for key, value in mine.items()
            if saved.get(key, "<missing>") != value
        ]
        if differences:
            raise ValueError(
                "state was saved by a VineSampler with different settings ("
                + "; ".join(differences)
                + "); build the sampler with the saved settings (state['settings']) to resume"
            )
        rng_states = {
            name: checked_rng_state(rng, state[name], f"state[{name!r}]")
            for name, rng in self._rngs().items()
        }
        trunk, trunk_env = state["trunk"], state["trunk_env"]
        trunk_keys = set(self._trunk_state())
        if not isinstance(trunk, dict) or set(trunk) != trunk_keys:
            raise ValueError(
                f"state['trunk'] must be the trunk sampler's state_dict() with keys "
                f"{sorted(trunk_keys)}; pass the dict saved by VineSampler.state_dict() unchanged"
            )
        for name in ("rng", "env_seed_rng"):
            checked_rng_state(getattr(self.trunk_sampler, "_" + name), trunk[name],
                               f"state['trunk'][{name!r}]")
        if trunk_env is not None and not isinstance(trunk_env, EnvState):
            try:
                trunk_env = EnvState.from_dict(trunk_env)
            except ValueError as exc:
                raise ValueError(
                    f"state['trunk_env'] must be the trunk environment's state "
                    f"(rl.envs.EnvState.to_dict()) or None: {exc}"
                ) from None
        if (trunk_env is None) != (trunk["observations"] is None):
            raise ValueError(
                "state['trunk_env'] and state['trunk']['observations'] disagree (one is None, "
                "the other is not); pass the dict saved by VineSampler.state_dict() unchanged"
            )
        if trunk_env is not None:
            try:
                restore_state(self._venv.envs[0], trunk_env)
            except ValueError as exc:
                raise ValueError(f"state['trunk_env'] cannot be restored: {exc}") from None
        self.trunk_sampler.load_state_dict(trunk, reset_env=trunk_env is None)
        for name, rng in self._rngs().items():
            rng.bit_generator.state = rng_states[name]
