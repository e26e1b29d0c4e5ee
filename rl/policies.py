"""Stochastic policies on one flat float64 parameter vector θ.

Every policy maps a batch of observations to distribution parameters of shape (N, P)
(:mod:`rl.distributions`) in two ways:

* :meth:`Policy.distribution_params` — traceable by autograd in θ (and plain numpy
  when θ is a plain array): log-probabilities, KL and entropy at trial points;
* :meth:`Policy.linearize` — the parameters with hand-written Jacobian products ``J v``
  and ``J^T w`` (:meth:`rl.networks.MLP.linearize`), which the update's gradients and
  Fisher-vector products go through;
* :meth:`Policy.act` / :meth:`Policy.step` — plain numpy on weights cached when θ is
  set, used by the sampler (no autograd boxes, no per-row Python loops).

The Fisher-vector product over a batch is the Gauss–Newton form ``J^T F_dist J v`` of
TRPO's Appendix C.1, built by :func:`trustregion.fisher_operator` on the policy's
linearisation with the distribution's analytic
:meth:`~rl.distributions.Categorical.fisher_vector`.
"""

from __future__ import annotations

import numbers

import autograd.numpy as anp
import numpy as np
from autograd import make_jvp, make_vjp
from scipy.sparse.linalg import LinearOperator

from rl.conv import NATURE_CONV, ConvNet, conv_torso_for
from rl.distributions import Bernoulli, Categorical, DiagGaussian, MultiCategorical
from rl.networks import MLP
from rl.validation import as_generator, checked_hidden_sizes, positive_int
from trustregion.operators import Linearization
from trustregion.operators import fisher_operator as _fisher_operator

__all__ = [
    "ObservationNormalizer",
    "Policy",
    "TabularSoftmax",
    "CategoricalMLP",
    "GaussianMLP",
    "MultiCategoricalMLP",
    "BernoulliMLP",
    "CategoricalCNN",
    "MultiInputPolicy",
    "make_policy",
]


class ObservationNormalizer:
    """Running mean and variance of observations; normalises and clips.

    Parameters
    ----------
    shape : int or tuple of int
        Shape of one observation.
    clip : float, default 10.0
        Normalised observations are clipped to ``[-clip, clip]`` (the OpenAI baselines
        ``VecNormalize`` default).
    epsilon : float, default 1e-8
        Added to the variance inside the square root so constant features map to 0
        instead of dividing by zero.

    Attributes
    ----------
    mean, var : ndarray of shape ``shape``
        Mean and (population) variance of all observations passed to :meth:`update`;
        0 and 1 before the first update.
    count : int
        Number of observations seen.

    Notes
    -----
    :meth:`update` merges a batch of ``m`` observations with mean ``μ_B`` and variance
    ``σ²_B`` into the running ``(n, μ, σ²)`` by the parallel algorithm of Chan, Golub
    and LeVeque [1]_:

    .. math:: δ = μ_B - μ, \\quad μ' = μ + δ m/(n+m), \\quad
              σ'^2 = (n σ^2 + m σ_B^2 + δ^2 n m/(n+m)) / (n+m),

    so the statistics equal ``np.mean`` / ``np.var`` of everything seen so far.
    :meth:`normalize` returns ``clip((x - μ) / sqrt(σ² + ε), -clip, clip)``.

    References
    ----------
    .. [1] T. F. Chan, G. H. Golub, R. J. LeVeque, "Updating formulae and a pairwise
       algorithm for computing sample variances", Stanford CS Tech. Rep. 79-773, 1979.

    Examples
    --------
    >>> norm = ObservationNormalizer(2)
    >>> norm.update(np.array([[0.0, 1.0], [2.0, 3.0]]))
    >>> norm.update(np.array([[4.0, 5.0]]))
    >>> norm.mean, np.round(norm.var, 6), norm.count
    (array([2., 3.]), array([2.666667, 2.666667]), 3)
    >>> np.round(norm.normalize(np.array([[2.0, 3.0]])), 6)
    array([[0., 0.]])
    """

    def __init__(self, shape, clip: float = 10.0, epsilon: float = 1e-8):
        self.shape = _normalizer_shape(shape)
        self.clip = _normalizer_clip(clip)
        self.epsilon = _normalizer_epsilon(epsilon)
        self.mean = np.zeros(self.shape)
        self.var = np.ones(self.shape)
        self.count = 0
        self._refresh()

    def __repr__(self) -> str:
        return f"ObservationNormalizer(shape={self.shape}, clip={self.clip}, count={self.count})"

    def _refresh(self) -> None:
        self._inv_std = 1.0 / np.sqrt(self.var + self.epsilon)

    def update(self, obs_batch) -> None:
        """Merge a batch of observations, shape ``(m, *shape)``, into the running statistics."""
        x = np.asarray(obs_batch, dtype=np.float64)
        if x.shape[1:] != self.shape or x.ndim != len(self.shape) + 1:
            raise ValueError(
                f"obs_batch must have shape (m, {', '.join(map(str, self.shape))}); got {x.shape}"
            )
        m = x.shape[0]
        if m == 0:
            return
        if not np.all(np.isfinite(x)):
            raise ValueError(
                "obs_batch contains NaN or inf; normalisation statistics need finite data"
            )
        mu_B = x.mean(axis=0)
        var_B = x.var(axis=0)
        n = self.count
        total = n + m
        delta = mu_B - self.mean
        # Chan, Golub & LeVeque parallel update
        self.mean = self.mean + delta * (m / total)
        self.var = (n * self.var + m * var_B + delta * delta * (n * m / total)) / total
        self.count = total
        self._refresh()

    def normalize(self, obs) -> np.ndarray:
        """``clip((obs - mean) / sqrt(var + epsilon), -clip, clip)`` as float64.

        Parameters
        ----------
        obs : ndarray of shape ``(..., *shape)``
            One observation or a batch; its trailing axes must be the normaliser's shape.
        """
        obs = np.asarray(obs)
        nd = len(self.shape)
        if obs.ndim < nd or obs.shape[obs.ndim - nd:] != self.shape:
            raise ValueError(
                f"obs must have shape (..., {', '.join(map(str, self.shape))}), the normaliser's "
                f"observation shape {self.shape} in its last axes; got shape {obs.shape}"
            )
        z = obs - self.mean
        z *= self._inv_std
        np.clip(z, -self.clip, self.clip, out=z)
        return z

    def state_dict(self) -> dict:
        """Statistics and settings as plain arrays and numbers (copies)."""
        return {
            "shape": self.shape,
            "clip": self.clip,
            "epsilon": self.epsilon,
            "mean": self.mean.copy(),
            "var": self.var.copy(),
            "count": int(self.count),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore statistics saved by :meth:`state_dict` (shapes must match)."""
        shape = tuple(state["shape"])
        if shape != self.shape:
            raise ValueError(
                f"state has observation shape {shape} but this normaliser has shape {self.shape}; "
                "load it into an ObservationNormalizer of the same shape"
            )
        mean = np.array(state["mean"], dtype=np.float64)
        var = np.array(state["var"], dtype=np.float64)
        if mean.shape != shape or var.shape != shape:
            raise ValueError(
                f"state['mean'] and state['var'] must have the saved shape {shape}; got "
                f"{mean.shape} and {var.shape}"
            )
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(var)) and np.all(var >= 0.0)):
            raise ValueError(
                "state['mean'] must be finite and state['var'] finite and >= 0; pass the dict "
                "saved by ObservationNormalizer.state_dict() unchanged"
            )
        count = state["count"]
        if isinstance(count, (bool, np.bool_)) or not isinstance(count, numbers.Integral) or (
            count < 0
        ):
            raise ValueError(f"state['count'] must be a non-negative integer; got {count!r}")
        clip = _normalizer_clip(state["clip"], "state['clip']")
        epsilon = _normalizer_epsilon(state["epsilon"], "state['epsilon']")
        self.clip, self.epsilon = clip, epsilon
        self.mean, self.var, self.count = mean, var, int(count)
        self._refresh()


def _normalizer_shape(shape) -> tuple[int, ...]:
    sizes = (shape,) if isinstance(shape, numbers.Integral) else shape
    try:
        sizes = tuple(sizes)
    except TypeError:
        sizes = None
    if sizes is None or not all(
        isinstance(s, numbers.Integral) and not isinstance(s, (bool, np.bool_)) and s >= 1
        for s in sizes
    ):
        raise ValueError(
            f"shape must be a positive int or a tuple of positive ints (e.g. 3 or (3,)); got "
            f"{shape!r}"
        )
    return tuple(int(s) for s in sizes)


def _normalizer_clip(clip, name: str = "clip") -> float:
    clip = float(clip)
    if not clip > 0.0:
        raise ValueError(f"{name} must be > 0 (use np.inf for no clipping); got {clip!r}")
    return clip


def _normalizer_epsilon(epsilon, name: str = "epsilon") -> float:
    epsilon = float(epsilon)
    if not (np.isfinite(epsilon) and epsilon >= 0.0):
        raise ValueError(f"{name} must be finite and >= 0; got {epsilon!r}")
    return epsilon


class Policy:
    """Base class of the stochastic policies: flat θ, two forward paths, the Fisher.

    Subclasses set :attr:`distribution_class` and implement ``_params_from(x, theta)``
    (traceable, ``x`` already preprocessed), ``_fast_params(x)`` (numpy on the cache),
    ``_preprocess(obs)``, ``_refresh_cache()`` and ``_architecture()``.

    Attributes
    ----------
    distribution_class : type
        :class:`~rl.distributions.Categorical`, :class:`~rl.distributions.DiagGaussian`,
        a :class:`~rl.distributions.MultiCategorical` bound to its ``nvec``
        (:meth:`~rl.distributions.MultiCategorical.for_nvec`) or
        :class:`~rl.distributions.Bernoulli`.
    obs_normalizer : ObservationNormalizer or None
        Applied inside every forward pass; its statistics are updated only by the sampler.
    """

    distribution_class: type = Categorical

    def __init__(self, theta: np.ndarray, obs_normalizer: ObservationNormalizer | None = None):
        self._theta = np.array(theta, dtype=np.float64)
        self.obs_normalizer = obs_normalizer
        self._refresh_cache()

    # -- parameters -----------------------------------------------------------------
    @property
    def num_params(self) -> int:
        """Length of θ."""
        return self._theta.shape[0]

    @property
    def theta(self) -> np.ndarray:
        """The flat parameter vector (a copy); setting it validates and refreshes the cache."""
        return self._theta.copy()

    @theta.setter
    def theta(self, value) -> None:
        value = np.array(value, dtype=np.float64)
        if value.shape != self._theta.shape:
            raise ValueError(
                f"theta must have shape ({self.num_params},) for {self!r}; got shape {value.shape}"
            )
        if not np.all(np.isfinite(value)):
            raise ValueError("theta contains NaN or inf; a policy needs finite parameters")
        self._theta = value
        self._refresh_cache()

    def _resolve_theta(self, theta):
        if theta is None:
            return self._theta
        shape = getattr(theta, "shape", None)
        if shape is None or tuple(shape) != self._theta.shape:
            raise ValueError(
                f"theta must have shape ({self.num_params},); got "
                f"{tuple(shape) if shape is not None else type(theta).__name__}"
            )
        return theta

    # -- traced path ------------------------------------------------------------------
    def distribution_params(self, obs, theta=None):
        """Distribution parameters for a batch, traceable by autograd in ``theta``.

        Parameters
        ----------
        obs : ndarray of shape (N, obs_dim), or (N,) integer states for a tabular policy
        theta : array of shape (num_params,), optional
            Defaults to the current θ; may be an autograd box.

        Returns
        -------
        params : array of shape (N, P)
        """
        return self._params_from(self._preprocess(obs, check=True), self._resolve_theta(theta))

    def distribution(self, obs, theta=None):
        """The action distribution for a batch of observations."""
        return self.distribution_class(self.distribution_params(obs, theta))

    def log_prob(self, obs, actions, theta=None):
        """``log π_θ(a_i | s_i)`` for each row, shape (N,) (traceable in θ)."""
        return self.distribution(obs, theta).log_prob(actions)

    def entropy(self, obs, theta=None):
        """Mean entropy over the batch, a scalar (traceable in θ)."""
        return anp.mean(self.distribution(obs, theta).entropy())

    def mean_kl(self, obs, old_params, theta):
        """``(1/N) Σ_i KL(π_old(·|s_i) ‖ π_θ(·|s_i))``, a scalar (traceable in θ).

        Parameters
        ----------
        obs : observations, N rows
        old_params : ndarray of shape (N, P)
            Distribution parameters of the old policy (e.g. ``Batch.dist_params``).
        theta : array of shape (num_params,)
        """
        old = self.distribution_class(old_params)
        return anp.mean(old.kl(self.distribution(obs, theta)))

    def linearize(self, obs, theta=None) -> Linearization:
        """Distribution parameters over a batch with their Jacobian products in θ.

        Parameters
        ----------
        obs : observations, N rows
        theta : ndarray of shape (num_params,), optional
            Point of evaluation; defaults to the current θ.

        Returns
        -------
        trustregion.Linearization
            ``output`` = :meth:`distribution_params` ``(obs, theta)`` of shape (N, P);
            ``jvp(v)`` = ``J v`` of shape (N, P) and ``vjp(w)`` = ``J^T w`` of shape
            (num_params,), with ``J`` the Jacobian of the parameters in θ.

        Notes
        -----
        The MLP policies and :class:`TabularSoftmax` write both products by hand
        (:meth:`rl.networks.MLP.linearize`); this default traces
        :meth:`distribution_params` with autograd (reverse mode for ``J^T w``, forward
        mode for ``J v``), so a new subclass works before it is made fast.
        """
        x = self._preprocess(obs, check=True)
        theta = self._point(theta)

        def model(th):
            return self._params_from(x, th)

        vjp, y = make_vjp(model)(theta)
        forward = make_jvp(model)(theta)
        return Linearization(np.asarray(y), lambda v: forward(np.asarray(v, float))[1], vjp)

    def _point(self, theta) -> np.ndarray:
        if theta is None:
            return self._theta
        return np.asarray(self._resolve_theta(theta), dtype=np.float64)

    def fisher_operator(self, obs, theta=None) -> LinearOperator:
        """Fisher information over a batch as a matrix-free ``LinearOperator``.

        Parameters
        ----------
        obs : observations, N rows
        theta : array of shape (num_params,), optional
            Point of evaluation; defaults to the current θ.

        Returns
        -------
        F : LinearOperator of shape (num_params, num_params)
            ``F v = J^T (F_dist / N) J v`` with ``J`` the Jacobian of
            :meth:`distribution_params` in θ (products from :meth:`linearize`).

        Notes
        -----
        ``F = (1/N) Σ_i J_i^T F_dist(y_i) J_i`` is the Hessian of
        ``θ' ↦ mean_kl(obs, y(θ), θ')`` at ``θ' = θ`` (TRPO paper, App. C.1 [1]_): one
        Jacobian-vector product, the analytic Fisher of the distribution, one
        vector-Jacobian product.

        References
        ----------
        .. [1] J. Schulman, S. Levine, P. Moritz, M. Jordan, P. Abbeel, "Trust Region
           Policy Optimization", ICML 2015.
        """
        theta = self._point(theta)
        lin = self.linearize(obs, theta)
        n = lin.output.shape[0]
        fisher = self.distribution_class.fisher_product(lin.output, np.full(n, 1.0 / n))

        def output_fisher(y, u):  # y is lin.output
            return fisher(u)

        return _fisher_operator(lin, theta, output_fisher)

    # -- hot path -----------------------------------------------------------------------
    def act(self, obs, rng: np.random.Generator, deterministic: bool = False) -> np.ndarray:
        """Actions for a batch of observations (plain numpy, on the cached weights).

        Parameters
        ----------
        obs : ndarray, N rows
            Finite observations of shape (N, obs_dim), (N,) integer states for a
            tabular policy, (N, *image_shape) frames for :class:`CategoricalCNN`, or a dict
            / tuple of such arrays for :class:`MultiInputPolicy`.
        rng : numpy.random.Generator
        deterministic : bool, default False
            Return the mode (argmax / mean) instead of a sample.

        Returns
        -------
        actions : ndarray of shape (N,) (int), (N, act_dim) (float), or (N, K) (int: the
            sub-actions of a MultiDiscrete space or the bits of a MultiBinary one)

        Raises
        ------
        ValueError
            If ``rng`` is not a ``numpy.random.Generator``, or ``obs`` has the wrong shape
            or holds NaN or inf (or, for a tabular policy, a state out of range).
        """
        _check_rng(rng)
        obs = self._check_finite(obs)
        dist = self.distribution_class(self._fast_params(self._preprocess(obs)))
        return dist.mode() if deterministic else dist.sample(rng)

    def step(self, obs, rng: np.random.Generator):
        """Sample actions and return what the update needs (plain numpy).

        This is the samplers' per-step call: ``obs`` is checked for its shape only (and,
        for a tabular policy, the range of the states), not for NaN or inf, which the
        samplers already test in what the environment returns. Use :meth:`act` for
        observations from elsewhere.

        Parameters
        ----------
        obs : ndarray, N rows
        rng : numpy.random.Generator

        Returns
        -------
        actions : ndarray, N rows
        log_probs : ndarray of shape (N,)
        params : ndarray of shape (N, P)
            Distribution parameters, to store as the old policy.
        """
        if not isinstance(rng, np.random.Generator):
            _check_rng(rng)
        params = self._fast_params(self._preprocess(obs))
        actions, log_probs = self.distribution_class(params).sample_with_log_prob(rng)
        return actions, log_probs, params

    def _check_finite(self, obs):
        """``obs`` as an array, refused if a float entry is NaN or inf (:meth:`act`)."""
        obs = np.asarray(obs)
        if obs.dtype.kind in "fc" and not np.isfinite(obs).all():
            raise ValueError(
                "obs contains NaN or inf; a policy acts only on finite observations (check "
                "the environment or the preprocessing that produced them)"
            )
        return obs

    # -- checkpoints ------------------------------------------------------------------
    def state_dict(self) -> dict:
        """θ, the normaliser statistics and the architecture (for mismatch checks)."""
        norm = self.obs_normalizer
        return {
            "class": type(self).__name__,
            "architecture": self._architecture(),
            "theta": self._theta.copy(),
            "obs_normalizer": None if norm is None else norm.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict`; a different class or architecture is a ValueError."""
        mine = {"class": type(self).__name__, "architecture": self._architecture()}
        theirs = {"class": state.get("class"), "architecture": state.get("architecture")}
        if theirs["class"] != mine["class"] or _canonical(theirs["architecture"]) != _canonical(
            mine["architecture"]
        ):
            raise ValueError(
                f"checkpoint holds a {theirs['class']} with architecture {theirs['architecture']} "
                f"but this policy is a {mine['class']} with architecture {mine['architecture']}; "
                "build the policy with the checkpoint's architecture before loading"
            )
        saved_norm = state.get("obs_normalizer")
        if (saved_norm is None) != (self.obs_normalizer is None):
            raise ValueError(
                "checkpoint and policy disagree on observation normalisation "
                f"(checkpoint: {'on' if saved_norm is not None else 'off'}, policy: "
                f"{'on' if self.obs_normalizer is not None else 'off'}); build the policy with "
                "the checkpoint's obs_normalization setting"
            )
        self.theta = state["theta"]
        if saved_norm is not None:
            self.obs_normalizer.load_state_dict(saved_norm)

    @staticmethod
    def from_state_dict(state: dict, *, observation_space=None, action_space=None) -> Policy:
        """Build the policy a :meth:`state_dict` describes and load it.

        A :class:`MultiInputPolicy` is built from its spaces, which its state names leaf by
        leaf but does not hold: pass ``observation_space`` and ``action_space`` (a
        mismatch with the saved leaves is a ValueError naming the leaf); the other policies
        ignore them.

        Examples
        --------
        >>> pi = GaussianMLP(3, 2, hidden_sizes=(8,), seed=0,
        ...                  obs_normalizer=ObservationNormalizer(3))
        >>> clone = Policy.from_state_dict(pi.state_dict())
        >>> type(clone).__name__, bool(np.array_equal(clone.theta, pi.theta))
        ('GaussianMLP', True)
        """
        classes = {c.__name__: c for c in (TabularSoftmax, CategoricalMLP, GaussianMLP,
                                           MultiCategoricalMLP, BernoulliMLP, CategoricalCNN)}
        if state.get("class") == "MultiInputPolicy":
            if observation_space is None or action_space is None:
                raise ValueError(
                    "a MultiInputPolicy is built from its spaces: pass observation_space and "
                    "action_space, or make_policy(observation_space, action_space, ...) and "
                    "then load_state_dict(state), which checks the spaces' layout against the "
                    "checkpoint's"
                )
            return MultiInputPolicy.from_spaces_and_state(observation_space, action_space,
                                                          state)
        name = state.get("class")
        if name not in classes:
            raise ValueError(
                f"state['class'] must be one of {sorted(classes)}; got {name!r}"
            )
        kwargs = dict(state["architecture"])
        saved_norm = state.get("obs_normalizer")
        if saved_norm is not None:
            kwargs["obs_normalizer"] = ObservationNormalizer(tuple(saved_norm["shape"]))
        policy = classes[name](**kwargs)
        policy.load_state_dict(state)
        return policy

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._architecture().items())
        return f"{type(self).__name__}({args})"

    # -- subclass hooks -------------------------------------------------------------
    def _preprocess(self, obs, check: bool = False):  # pragma: no cover - abstract
        raise NotImplementedError

    def _params_from(self, x, theta):  # pragma: no cover - abstract
        raise NotImplementedError

    def _fast_params(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def _refresh_cache(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _architecture(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError


def _check_rng(rng) -> None:
    if not isinstance(rng, np.random.Generator):
        raise ValueError(
            f"rng must be a numpy.random.Generator, e.g. np.random.default_rng(seed); got "
            f"{type(rng).__name__}"
        )


def _canonical(arch):
    if isinstance(arch, dict):
        return {k: _canonical(v) for k, v in arch.items()}
    if isinstance(arch, (list, tuple)):
        return tuple(_canonical(v) for v in arch)
    return arch


class TabularSoftmax(Policy):
    """Softmax policy with one logit per (state, action): ``π(a|s) ∝ exp θ_{s,a}``.

    Parameters
    ----------
    num_states, num_actions : int
    init_std : float, default 0.0
        Standard deviation of the initial logits; 0 gives the uniform policy.
    seed : int >= 0, numpy.random.Generator, numpy.random.SeedSequence or None
        Randomness for the initial logits (used only when ``init_std > 0``).

    Notes
    -----
    θ is the (S, A) logit matrix in row-major order; observations are integer states
    ``0 <= s < S``. :meth:`probs` is the ``policy_fn`` that :class:`rl.mdp.TabularMDP`
    differentiates for the exact policy gradient and Fisher matrix.

    Examples
    --------
    >>> pi = TabularSoftmax(3, 2)
    >>> pi.probs()
    array([[0.5, 0.5],
           [0.5, 0.5],
           [0.5, 0.5]])
    >>> pi.act(np.array([0, 2]), np.random.default_rng(0)).shape
    (2,)
    """

    distribution_class = Categorical

    def __init__(self, num_states: int, num_actions: int, *, init_std: float = 0.0, seed=None):
        self.num_states = positive_int(num_states, "num_states")
        self.num_actions = positive_int(num_actions, "num_actions")
        init_std = float(init_std)
        if not (np.isfinite(init_std) and init_std >= 0.0):
            raise ValueError(f"init_std must be finite and >= 0; got {init_std!r}")
        theta = init_std * as_generator(seed).standard_normal(
            self.num_states * self.num_actions
        )
        super().__init__(theta, None)

    def _architecture(self) -> dict:
        return {"num_states": self.num_states, "num_actions": self.num_actions}

    def _refresh_cache(self) -> None:
        self._logits = self._theta.reshape(self.num_states, self.num_actions)

    def probs(self, theta=None):
        """The (S, A) row-stochastic policy matrix, traceable by autograd in ``theta``."""
        logits = anp.reshape(self._resolve_theta(theta), (self.num_states, self.num_actions))
        return Categorical(logits).probs()

    def _preprocess(self, obs, check: bool = False):
        # states are checked on every path (act and step too): a negative index would
        # silently pick another state's logits
        s = np.asarray(obs)
        if s.ndim != 1 or s.size and (
            s.dtype.kind not in "iu" or s.min() < 0 or s.max() >= self.num_states
        ):
            got = (f"shape {s.shape}" if s.ndim != 1 else f"dtype {s.dtype}"
                   if s.dtype.kind not in "iu" else f"states in [{s.min()}, {s.max()}]")
            raise ValueError(
                f"obs must be a 1-D array of integer states in [0, {self.num_states}); got "
                f"{got}"
            )
        return s

    def _params_from(self, s, theta):
        return anp.reshape(theta, (self.num_states, self.num_actions))[s]

    def linearize(self, obs, theta=None) -> Linearization:
        """The logits ``θ[s_i, :]`` of each row; ``J`` selects rows, ``J^T`` scatter-adds."""
        s = self._preprocess(obs, check=True)
        theta = self._point(theta)
        shape = (self.num_states, self.num_actions)

        def jvp(v):
            return np.asarray(v, dtype=np.float64).reshape(shape)[s]

        def vjp(w):
            g = np.zeros(shape)
            np.add.at(g, s, np.asarray(w, dtype=np.float64).reshape(-1, shape[1]))
            return g.reshape(-1)

        return Linearization(theta.reshape(shape)[s], jvp, vjp)

    def _fast_params(self, s):
        return self._logits[s]


class _MLPPolicy(Policy):
    """Shared parts of the MLP policies: input checks, normalisation, the network."""

    def _preprocess(self, obs, check: bool = False):
        x = np.asarray(obs)
        if x.ndim != 2 or x.shape[1] != self.obs_dim:
            raise ValueError(
                f"obs must have shape (N, {self.obs_dim}); got shape {x.shape} "
                "(use obs[None] for a single observation)"
            )
        if self.obs_normalizer is not None:
            return self.obs_normalizer.normalize(x)
        return x


class _LogitMLP(_MLPPolicy):
    """An MLP from observations to the logits of a distribution (``Categorical``,
    ``MultiCategorical``, ``Bernoulli``): the parts the logit policies share."""

    def _build_net(self, obs_dim, out_dim, hidden_sizes, seed, obs_normalizer, dtype,
                   output_gain=0.01):
        self.obs_dim = positive_int(obs_dim, "obs_dim")
        self.hidden_sizes = checked_hidden_sizes(hidden_sizes)
        _check_normalizer(obs_normalizer, self.obs_dim)
        self.net = MLP((self.obs_dim, *self.hidden_sizes, out_dim), output_gain=output_gain,
                       seed=seed, dtype=dtype)
        Policy.__init__(self, self.net.params, obs_normalizer)

    def _refresh_cache(self) -> None:
        self.net.set_params(self._theta)

    def _params_from(self, x, theta):
        return self.net.forward(theta, x)

    def linearize(self, obs, theta=None) -> Linearization:
        """The logits with the network's hand-written products (:meth:`MLP.linearize`)."""
        return self.net.linearize(self._point(theta), self._preprocess(obs, check=True))

    def _fast_params(self, x):
        return self.net.forward_numpy(x)


class CategoricalMLP(_LogitMLP):
    """Discrete-action policy: an MLP maps observations to logits.

    Parameters
    ----------
    obs_dim, num_actions : int
    hidden_sizes : sequence of int, default (64, 64)
        Widths of the tanh hidden layers.
    seed : int >= 0, numpy.random.Generator, numpy.random.SeedSequence or None
        Randomness for the orthogonal initialisation.
    obs_normalizer : ObservationNormalizer or None
        Shared running normaliser applied to the observations.
    dtype : {"float64", "float32"}, default "float64"
        Compute precision of the network's numpy passes (:class:`rl.networks.MLP`).
    output_gain : float >= 0, default 0.01
        Gain of the orthogonal initialisation of the logit layer (0.01: the PPO reference
        code, sb3's ``ortho_init``; the other logit policies take it too).

    Notes
    -----
    θ is the :class:`rl.networks.MLP` parameter vector of ``(obs_dim, *hidden_sizes,
    num_actions)``; orthogonal init with gain √2 on hidden layers and 0.01 on the logit
    layer, so the initial policy is nearly uniform [1]_.

    References
    ----------
    .. [1] M. Andrychowicz et al., "What matters in on-policy reinforcement learning?
       A large-scale empirical study", ICLR 2021.

    Examples
    --------
    >>> pi = CategoricalMLP(4, 2, seed=0)
    >>> obs = np.zeros((3, 4))
    >>> pi.act(obs, np.random.default_rng(0)).shape
    (3,)
    >>> bool(np.allclose(pi.distribution_params(obs), pi.step(obs, np.random.default_rng(0))[2]))
    True
    """

    distribution_class = Categorical

    def __init__(
        self, obs_dim: int, num_actions: int, hidden_sizes=(64, 64), *, seed=None,
        obs_normalizer: ObservationNormalizer | None = None, dtype="float64",
        output_gain: float = 0.01,
    ):
        self.num_actions = positive_int(num_actions, "num_actions")
        self._build_net(obs_dim, self.num_actions, hidden_sizes, seed, obs_normalizer, dtype,
                        output_gain)

    def _architecture(self) -> dict:
        return {"obs_dim": self.obs_dim, "num_actions": self.num_actions,
                "hidden_sizes": self.hidden_sizes, **_dtype_entry(self.net)}


class MultiCategoricalMLP(_LogitMLP):
    """``MultiDiscrete``-action policy: an MLP maps observations to one logit block per
    sub-action (:class:`rl.distributions.MultiCategorical`).

    Parameters
    ----------
    obs_dim : int
    nvec : sequence of int
        Number of choices of each sub-action (``MultiDiscrete.nvec``).
    hidden_sizes : sequence of int, default (64, 64)
    seed : int >= 0, numpy.random.Generator, numpy.random.SeedSequence or None
    obs_normalizer : ObservationNormalizer or None
    dtype : {"float64", "float32"}, default "float64"

    Notes
    -----
    As :class:`CategoricalMLP` with ``Σ_k n_k`` outputs: the sub-actions share the torso
    and are independent given the observation, the factorisation of sb3's
    ``MultiCategoricalDistribution`` [1]_. Actions are int64 arrays of shape (N, K).

    References
    ----------
    .. [1] A. Raffin et al., "Stable-Baselines3: Reliable reinforcement learning
       implementations", JMLR 22(268), 2021.

    Examples
    --------
    >>> pi = MultiCategoricalMLP(4, [3, 2], hidden_sizes=(8,), seed=0)
    >>> pi.act(np.zeros((5, 4)), np.random.default_rng(0)).shape
    (5, 2)
    >>> pi.distribution_params(np.zeros((5, 4))).shape
    (5, 5)
    """

    def __init__(
        self, obs_dim: int, nvec, hidden_sizes=(64, 64), *, seed=None,
        obs_normalizer: ObservationNormalizer | None = None, dtype="float64",
        output_gain: float = 0.01,
    ):
        self.distribution_class = MultiCategorical.for_nvec(nvec)
        self.nvec = self.distribution_class.nvec
        self._build_net(obs_dim, sum(self.nvec), hidden_sizes, seed, obs_normalizer, dtype,
                        output_gain)

    def _architecture(self) -> dict:
        return {"obs_dim": self.obs_dim, "nvec": self.nvec,
                "hidden_sizes": self.hidden_sizes, **_dtype_entry(self.net)}


class BernoulliMLP(_LogitMLP):
    """``MultiBinary``-action policy: an MLP maps observations to one logit per bit
    (:class:`rl.distributions.Bernoulli`).

    Parameters
    ----------
    obs_dim, num_bits : int
    hidden_sizes : sequence of int, default (64, 64)
    seed : int >= 0, numpy.random.Generator, numpy.random.SeedSequence or None
    obs_normalizer : ObservationNormalizer or None
    dtype : {"float64", "float32"}, default "float64"

    Notes
    -----
    As :class:`CategoricalMLP` with ``num_bits`` outputs, the bits independent given the
    observation (sb3's ``BernoulliDistribution``). Actions are int64 arrays of shape
    (N, num_bits) with entries 0 and 1.

    Examples
    --------
    >>> pi = BernoulliMLP(4, 3, hidden_sizes=(8,), seed=0)
    >>> a = pi.act(np.zeros((5, 4)), np.random.default_rng(0))
    >>> a.shape, bool(np.isin(a, [0, 1]).all())
    ((5, 3), True)
    """

    distribution_class = Bernoulli

    def __init__(
        self, obs_dim: int, num_bits: int, hidden_sizes=(64, 64), *, seed=None,
        obs_normalizer: ObservationNormalizer | None = None, dtype="float64",
        output_gain: float = 0.01,
    ):
        self.num_bits = positive_int(num_bits, "num_bits")
        self._build_net(obs_dim, self.num_bits, hidden_sizes, seed, obs_normalizer, dtype,
                        output_gain)

    def _architecture(self) -> dict:
        return {"obs_dim": self.obs_dim, "num_bits": self.num_bits,
                "hidden_sizes": self.hidden_sizes, **_dtype_entry(self.net)}


class GaussianMLP(_MLPPolicy):
    """Continuous-action policy: an MLP mean and a state-independent log-std.

    Parameters
    ----------
    obs_dim, act_dim : int
    hidden_sizes : sequence of int, default (64, 64)
        Widths of the tanh hidden layers.
    init_log_std : float, default 0.0
        Initial value of every log-std entry (σ = 1, as in the TRPO/PPO reference code).
    seed : int >= 0, numpy.random.Generator, numpy.random.SeedSequence or None
        Randomness for the orthogonal initialisation.
    obs_normalizer : ObservationNormalizer or None
        Shared running normaliser applied to the observations.
    dtype : {"float64", "float32"}, default "float64"
        Compute precision of the mean network's numpy passes (:class:`rl.networks.MLP`).
    output_gain : float >= 0, default 0.01
        Gain of the orthogonal initialisation of the mean's output layer (0.01: the PPO
        reference code and sb3's ``ortho_init``, so the initial mean is near 0).

    Notes
    -----
    ``θ = [w, s]``: ``w`` is the :class:`rl.networks.MLP` parameter vector of
    ``(obs_dim, *hidden_sizes, act_dim)`` (orthogonal init, gain √2 hidden, 0.01 output)
    and the last ``act_dim`` entries ``s`` are the log-std. The distribution parameters
    are ``[μ_w(s_i), s]`` per row (:class:`rl.distributions.DiagGaussian`), as in TRPO's
    continuous-control policy [1]_.

    References
    ----------
    .. [1] J. Schulman, S. Levine, P. Moritz, M. Jordan, P. Abbeel, "Trust Region
       Policy Optimization", ICML 2015, §8.

    Examples
    --------
    >>> pi = GaussianMLP(3, 2, hidden_sizes=(8,), init_log_std=-0.5, seed=0)
    >>> pi.theta[-2:]
    array([-0.5, -0.5])
    >>> pi.distribution_params(np.zeros((4, 3))).shape
    (4, 4)
    """

    distribution_class = DiagGaussian

    def __init__(
        self, obs_dim: int, act_dim: int, hidden_sizes=(64, 64), *, init_log_std: float = 0.0,
        seed=None, obs_normalizer: ObservationNormalizer | None = None, dtype="float64",
        output_gain: float = 0.01,
    ):
        self.obs_dim = positive_int(obs_dim, "obs_dim")
        self.act_dim = positive_int(act_dim, "act_dim")
        self.hidden_sizes = checked_hidden_sizes(hidden_sizes)
        init_log_std = float(init_log_std)
        if not np.isfinite(init_log_std):
            raise ValueError(f"init_log_std must be finite; got {init_log_std!r}")
        _check_normalizer(obs_normalizer, self.obs_dim)
        self.net = MLP((self.obs_dim, *self.hidden_sizes, self.act_dim),
                       output_gain=output_gain, seed=seed, dtype=dtype)
        theta = np.concatenate([self.net.params, np.full(self.act_dim, init_log_std)])
        super().__init__(theta, obs_normalizer)

    def _architecture(self) -> dict:
        return {"obs_dim": self.obs_dim, "act_dim": self.act_dim,
                "hidden_sizes": self.hidden_sizes, **_dtype_entry(self.net)}

    def _refresh_cache(self) -> None:
        self.net.set_params(self._theta[: self.net.num_params])
        self._log_std = self._theta[self.net.num_params :].copy()

    def _params_from(self, x, theta):
        n_w = self.net.num_params
        mean = self.net.forward(theta[:n_w], x)
        log_std = anp.zeros(mean.shape) + theta[n_w:]
        return anp.concatenate([mean, log_std], axis=1)

    def linearize(self, obs, theta=None) -> Linearization:
        """``[μ_w(s_i), s]`` per row; the mean's products from :meth:`MLP.linearize`, the
        log-std's by broadcasting (``J v``) and summing over rows (``J^T w``)."""
        theta = self._point(theta)
        n_w = self.net.num_params
        net = self.net.linearize(theta[:n_w], self._preprocess(obs, check=True))
        return _with_log_std(net, theta[n_w:])

    def _fast_params(self, x):
        mean = self.net.forward_numpy(x)
        params = np.empty((mean.shape[0], 2 * self.act_dim))
        params[:, : self.act_dim] = mean
        params[:, self.act_dim :] = self._log_std
        return params


class CategoricalCNN(Policy):
    """Discrete-action policy on images: a :class:`rl.conv.ConvNet` maps frames to logits.

    Parameters
    ----------
    image_shape : tuple of 3 ints
        Shape of one frame in ``layout`` order, e.g. ``(84, 84, 4)``.
    num_actions : int
    layout : {"HWC", "CHW"}, default "HWC"
    conv_layers : sequence of (out_channels, kernel, stride), default rl.conv.NATURE_CONV
    hidden_sizes : sequence of int, default (512,)
        Dense ReLU layers after the convolutions.
    seed : int >= 0, numpy.random.Generator, numpy.random.SeedSequence or None
    dtype : {"float64", "float32"}, default "float64"
        Compute precision of the network's numpy passes.
    chunk_size : int, default 64
        Frames per chunk in every numpy pass (bounds the memory, see :class:`rl.conv.ConvNet`).

    Notes
    -----
    θ is the :class:`rl.conv.ConvNet` parameter vector (orthogonal init, gain √2, and 0.01
    on the logit layer, as the PPO Atari reference [1]_). Observations are frames of
    ``uint8`` pixels (scaled by 1/255 inside the network), ``bool`` or float; they are not
    normalised. Fisher-vector products go through the network's hand-written ``J v`` and
    ``J^T w`` (:meth:`rl.conv.ConvNet.linearize`).

    References
    ----------
    .. [1] S. Huang et al., "The 37 Implementation Details of Proximal Policy
       Optimization", ICLR Blog Track, 2022.

    Examples
    --------
    >>> pi = CategoricalCNN((10, 10, 4), 3, conv_layers=((8, 3, 1),), hidden_sizes=(16,),
    ...                     seed=0)
    >>> frames = np.zeros((2, 10, 10, 4), dtype=np.uint8)
    >>> pi.act(frames, np.random.default_rng(0)).shape
    (2,)
    """

    distribution_class = Categorical

    def __init__(self, image_shape, num_actions: int, *, layout: str = "HWC",
                 conv_layers=NATURE_CONV, hidden_sizes=(512,), seed=None, dtype="float64",
                 chunk_size: int = 64):
        self.num_actions = positive_int(num_actions, "num_actions")
        self.hidden_sizes = checked_hidden_sizes(hidden_sizes)
        self.net = ConvNet(image_shape, self.num_actions, layout=layout,
                           conv_layers=conv_layers, hidden_sizes=self.hidden_sizes,
                           output_gain=0.01, seed=seed, dtype=dtype, chunk_size=chunk_size)
        self.image_shape = self.net.image_shape
        super().__init__(self.net.params, None)

    def _architecture(self) -> dict:
        net = self.net
        return {"image_shape": net.image_shape, "num_actions": self.num_actions,
                "layout": net.layout, "conv_layers": net.conv_layers,
                "hidden_sizes": self.hidden_sizes, "dtype": str(net.dtype),
                "chunk_size": net.chunk_size}

    def _preprocess(self, obs, check: bool = False):
        return np.asarray(obs)  # shape and dtype are checked by the network

    def _refresh_cache(self) -> None:
        self.net.set_params(self._theta)

    def _params_from(self, x, theta):
        return self.net.forward(theta, x)

    def linearize(self, obs, theta=None) -> Linearization:
        """The logits with the network's hand-written products (:meth:`ConvNet.linearize`)."""
        return self.net.linearize(self._point(theta), self._preprocess(obs))

    def _fast_params(self, x):
        return self.net.forward_numpy(x)


class MultiInputPolicy(Policy):
    """A policy on structured observations (``Dict`` / ``Tuple`` spaces) for any action space.

    Parameters
    ----------
    observation_space : gymnasium.spaces.Space
        Read into an :class:`rl.spaces.ObservationLayout` (its leaves and encoders).
    action_space : gymnasium.spaces.Space
        ``Discrete``, 1-D ``Box``, ``MultiDiscrete`` or ``MultiBinary``
        (:func:`rl.spaces.action_spec`).
    hidden_sizes : sequence of int, default (64, 64)
        Hidden widths of the MLP torso (no image leaf).
    conv_layers : sequence of (out_channels, kernel, stride), default rl.conv.NATURE_CONV
        The convolutions of the image leaf, if there is one.
    conv_hidden_sizes : sequence of int, default (512,)
        Dense layers after the convolutions and the other leaves' encodings.
    image_layout : {"auto", "HWC", "CHW"}, default "auto"
    init_log_std : float, default 0.0
        Initial log-std of a Gaussian (``Box``) action.
    obs_normalization : bool, default False
        Normalise the ``Box`` leaves that are not images with a running
        :class:`ObservationNormalizer` over their encoded columns (statistics are per
        column, so this is the per-leaf normalisation); the sampler updates it with
        :meth:`normalizer_input`.
    seed : int >= 0, numpy.random.Generator, numpy.random.SeedSequence or None
    dtype : {"float64", "float32"}, default "float64"

    Notes
    -----
    The non-image leaves are encoded and concatenated by
    :meth:`rl.spaces.ObservationLayout.encode` (identity, one-hot). Without an image leaf
    they feed an :class:`rl.networks.MLP` (tanh); with one, the image goes through the
    convolutions of a :class:`rl.conv.ConvNet` and the encoded leaves join its flattened
    features before the dense layers (``extra``), the ``MultiInputPolicy`` architecture of
    sb3 [1]_ with one image. The output is the distribution's parameters: logits
    (Categorical, MultiCategorical, Bernoulli) or the mean, followed by a
    state-independent log-std in θ's last entries (DiagGaussian).

    Observations are passed as the vector environment returns them: a dict (or tuple) of
    arrays with one row per environment.

    References
    ----------
    .. [1] A. Raffin et al., "Stable-Baselines3: Reliable reinforcement learning
       implementations", JMLR 22(268), 2021.

    Examples
    --------
    >>> from gymnasium import spaces
    >>> obs_space = spaces.Dict({"pos": spaces.Box(-1.0, 1.0, (2,)),
    ...                          "key": spaces.Discrete(3)})
    >>> pi = MultiInputPolicy(obs_space, spaces.MultiBinary(2), hidden_sizes=(8,), seed=0)
    >>> obs = {"pos": np.zeros((4, 2)), "key": np.array([0, 1, 2, 0])}
    >>> pi.act(obs, np.random.default_rng(0)).shape
    (4, 2)
    """

    def __init__(self, observation_space, action_space, hidden_sizes=(64, 64), *,
                 conv_layers=NATURE_CONV, conv_hidden_sizes=(512,), image_layout: str = "auto",
                 init_log_std: float = 0.0, obs_normalization: bool = False, seed=None,
                 dtype="float64", obs_clip: float = 10.0, output_gain: float = 0.01):
        from rl.spaces import ObservationLayout, action_spec

        self.layout = ObservationLayout.from_space(observation_space, image_layout=image_layout)
        self.action = action_spec(action_space)
        self.distribution_class = self.action.distribution_class
        self.hidden_sizes = checked_hidden_sizes(hidden_sizes)
        self.conv_hidden_sizes = checked_hidden_sizes(conv_hidden_sizes)
        init_log_std = float(init_log_std)
        if not np.isfinite(init_log_std):
            raise ValueError(f"init_log_std must be finite; got {init_log_std!r}")
        self.gaussian = self.action.kind == "box"
        out = sum(self.action.nvec) if self.action.nvec else self.action.size
        image = self.layout.image
        if image is not None:
            self.net = ConvNet(image.shape, out, layout=self.layout.image_layout,
                               conv_layers=conv_layers, hidden_sizes=self.conv_hidden_sizes,
                               extra_dim=self.layout.flat_dim, output_gain=output_gain,
                               seed=seed, dtype=dtype)
        else:
            self.net = MLP((self.layout.flat_dim, *self.hidden_sizes, out),
                           output_gain=output_gain, seed=seed, dtype=dtype)
        n_box = len(self.layout.box_columns)
        norm = (ObservationNormalizer(n_box, clip=obs_clip) if obs_normalization and n_box
                else None)
        theta = self.net.params
        if self.gaussian:
            theta = np.concatenate([theta, np.full(self.action.size, init_log_std)])
        super().__init__(theta, norm)

    def _architecture(self) -> dict:
        net = self.net
        arch = _space_entries(self.layout, self.action)
        if isinstance(net, MLP):
            arch["hidden_sizes"] = self.hidden_sizes
        else:
            arch.update(conv_layers=net.conv_layers, conv_hidden_sizes=self.conv_hidden_sizes,
                        image_layout=self.layout.image_layout)
        arch["torso"] = repr(net)
        if not isinstance(net, MLP) or net.dtype != np.float64:
            arch["dtype"] = str(net.dtype)
        return arch

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict`; a checkpoint of a policy built for other spaces is a
        one-line ValueError naming the first leaf (``observation['pos']``) or the action
        space that differs."""
        arch = state.get("architecture") if isinstance(state, dict) else None
        if state.get("class") == type(self).__name__ and isinstance(arch, dict):
            problem = _space_difference(arch, self._architecture())
            if problem is not None:
                raise ValueError(f"{problem}; the checkpoint's policy was built for other "
                                 "spaces: resume with the environment the run was trained on")
        super().load_state_dict(state)

    @classmethod
    def from_spaces_and_state(cls, observation_space, action_space, state) -> MultiInputPolicy:
        """The policy a :meth:`state_dict` describes, built for the given spaces and loaded
        (the leaves and the action are checked against the saved ones)."""
        arch = state.get("architecture")
        if not isinstance(arch, dict):
            raise ValueError("state['architecture'] must be the dict saved by state_dict()")
        from rl.spaces import ObservationLayout, action_spec

        layout = ObservationLayout.from_space(observation_space,
                                              image_layout=arch.get("image_layout") or "auto")
        problem = _space_difference(arch, _space_entries(layout, action_spec(action_space)))
        if problem is not None:
            raise ValueError(f"{problem}; the state's policy was built for other spaces")
        saved_norm = state.get("obs_normalizer")
        policy = cls(observation_space, action_space,
                     hidden_sizes=arch.get("hidden_sizes", (64, 64)),
                     conv_layers=arch.get("conv_layers", NATURE_CONV),
                     conv_hidden_sizes=arch.get("conv_hidden_sizes", (512,)),
                     image_layout=arch.get("image_layout") or "auto",
                     obs_normalization=saved_norm is not None,
                     obs_clip=saved_norm["clip"] if saved_norm is not None else 10.0,
                     dtype=arch.get("dtype", "float64"))
        policy.load_state_dict(state)
        return policy

    def normalizer_input(self, obs) -> np.ndarray:
        """The columns the observation normaliser's statistics are kept over: the encoded
        non-image ``Box`` leaves of a batch, shape (N, number of Box columns)."""
        return self.layout.encode(obs)[:, self.layout.box_columns]

    def _check_finite(self, obs):
        for leaf in self.layout.leaves:
            x = self.layout.leaf_batch(obs, leaf)
            if x.dtype.kind in "fc" and not np.isfinite(x).all():
                raise ValueError(f"{leaf.path} contains NaN or inf; a policy acts only on finite "
                                 "observations (check the environment)")
        return obs

    def _preprocess(self, obs, check: bool = False):
        """``(image batch or None, encoded leaves (N, flat_dim))``, normalised Box columns."""
        if not isinstance(obs, (dict, tuple, list)) and self.layout.structured:
            raise ValueError(f"obs must be a {type(self.layout.space).__name__} of arrays with "
                             f"one row per observation (as the vector env returns it); got "
                             f"{type(obs).__name__}")
        flat = self.layout.encode(obs)
        n = flat.shape[0]
        if self.obs_normalizer is not None:
            cols = self.layout.box_columns
            flat[:, cols] = self.obs_normalizer.normalize(flat[:, cols])
        image = self.layout.image
        images = None if image is None else self.layout.leaf_batch(obs, image, n)
        return images, flat

    def _refresh_cache(self) -> None:
        self.net.set_params(self._theta[: self.net.num_params])
        self._log_std = self._theta[self.net.num_params:].copy()

    def _torso(self, x, theta):
        images, flat = x
        if images is None:
            return self.net.forward(theta, flat)
        return self.net.forward(theta, images, flat if self.layout.flat_dim else None)

    def _params_from(self, x, theta):
        n_w = self.net.num_params
        y = self._torso(x, theta[:n_w])
        if not self.gaussian:
            return y
        return anp.concatenate([y, anp.zeros(y.shape) + theta[n_w:]], axis=1)

    def linearize(self, obs, theta=None) -> Linearization:
        """The torso's hand-written products (:meth:`MLP.linearize` or
        :meth:`ConvNet.linearize`), with the Gaussian log-std appended for Box actions."""
        theta = self._point(theta)
        images, flat = self._preprocess(obs, check=True)
        n_w = self.net.num_params
        if images is None:
            lin = self.net.linearize(theta[:n_w], flat)
        else:
            lin = self.net.linearize(theta[:n_w], images,
                                     flat if self.layout.flat_dim else None)
        return _with_log_std(lin, theta[n_w:]) if self.gaussian else lin

    def _fast_params(self, x):
        images, flat = x
        if images is None:
            y = self.net.forward_numpy(flat)
        else:
            y = self.net.forward_numpy(images, flat if self.layout.flat_dim else None)
        if not self.gaussian:
            return y
        params = np.empty((y.shape[0], 2 * y.shape[1]))
        params[:, : y.shape[1]] = y
        params[:, y.shape[1]:] = self._log_std
        return params


def _space_entries(layout, action) -> dict:
    """The spaces' part of a MultiInputPolicy's architecture: its leaves and its action."""
    leaves = tuple((leaf.path, leaf.kind, leaf.shape, str(leaf.dtype)) for leaf in layout.leaves)
    return {"observation_leaves": leaves, "action": (action.kind, action.shape, action.nvec)}


def _space_difference(saved: dict, mine: dict) -> str | None:
    """The first difference between two MultiInputPolicy architectures' spaces, naming the
    leaf's path or the action space, or None."""
    theirs = {leaf[0]: tuple(leaf[1:]) for leaf in saved.get("observation_leaves", ())}
    ours = {leaf[0]: tuple(leaf[1:]) for leaf in mine["observation_leaves"]}

    def describe(leaf):
        kind, shape, dtype = leaf
        return f"{kind} of shape {tuple(shape)} and dtype {dtype}"

    for path, leaf in ours.items():
        if path not in theirs:
            return f"{path} is in this environment's observations but not in the checkpoint's"
        if _canonical(theirs[path]) != _canonical(leaf):
            return (f"{path} is a {describe(theirs[path])} in the checkpoint but a "
                    f"{describe(leaf)} in this environment")
    for path in theirs:
        if path not in ours:
            return f"{path} is in the checkpoint's observations but not in this environment's"
    if _canonical(saved.get("action")) != _canonical(mine["action"]):
        return (f"action_space: the checkpoint's policy samples {saved.get('action')} actions "
                f"(kind, shape, nvec), this environment's are {mine['action']}")
    return None


def _with_log_std(net: Linearization, log_std) -> Linearization:
    """The linearisation of ``[μ(θ_w), s]`` per row from that of the mean network: ``θ =
    [θ_w, s]`` with the state-independent log-std ``s`` last; ``J v = [J_w v_w, v_s]`` (the
    log-std tangent broadcast to every row), ``J^T u = [J_w^T u_μ, Σ_rows u_s]``."""
    n, d = net.output.shape
    y = np.empty((n, 2 * d))
    y[:, :d] = net.output
    y[:, d:] = log_std

    def jvp(v):
        v = np.asarray(v, dtype=np.float64).reshape(-1)
        out = np.empty((n, 2 * d))
        out[:, :d] = net.jvp(v[:-d])
        out[:, d:] = v[-d:]
        return out

    def vjp(w):
        w = np.asarray(w, dtype=np.float64).reshape(n, 2 * d)
        return np.concatenate([net.vjp(w[:, :d]), w[:, d:].sum(axis=0)])

    return Linearization(y, jvp, vjp)


def _dtype_entry(net: MLP) -> dict:
    """The compute dtype for a checkpoint's architecture (omitted for the float64 default,
    so checkpoints written before the option existed still match)."""
    return {} if net.dtype == np.float64 else {"dtype": str(net.dtype)}


def _check_normalizer(obs_normalizer, obs_dim: int) -> None:
    if obs_normalizer is None:
        return
    if not isinstance(obs_normalizer, ObservationNormalizer):
        raise ValueError(
            f"obs_normalizer must be an ObservationNormalizer or None; got "
            f"{type(obs_normalizer).__name__}"
        )
    if obs_normalizer.shape != (obs_dim,):
        raise ValueError(
            f"obs_normalizer has shape {obs_normalizer.shape} but observations have shape "
            f"({obs_dim},); build it with ObservationNormalizer({obs_dim})"
        )


def make_policy(
    observation_space, action_space, *, hidden_sizes=(64, 64), seed=None,
    obs_normalization: bool = False, dtype="float64", conv_layers="auto",
    conv_hidden_sizes="auto", image_layout: str = "auto", obs_clip: float = 10.0,
    init_log_std: float = 0.0, output_gain: float = 0.01,
) -> Policy:
    """Build the policy that fits a pair of Gymnasium spaces.

    Parameters
    ----------
    observation_space, action_space : gymnasium.spaces.Space
    hidden_sizes : sequence of int, default (64, 64)
        Hidden widths of the MLP policies (unused by the tabular policy).
    seed : int >= 0, numpy.random.Generator, numpy.random.SeedSequence or None
        Randomness for the initial parameters.
    obs_normalization : bool, default False
        Give MLP policies a running :class:`ObservationNormalizer` (clip 10); for
        structured observations it covers the Box leaves that are not images. Integer
        states of a tabular policy and images are not normalised.
    dtype : {"float64", "float32"}, default "float64"
        Compute precision of the network policies (ignored by the tabular policy).
    conv_layers : sequence of (out_channels, kernel, stride) or "auto", default "auto"
        Convolutions for image observations (a rank-3 ``Box``, alone or as a leaf);
        ``"auto"``: :func:`rl.conv.conv_torso_for` the image (the Nature torso
        :data:`rl.conv.NATURE_CONV` on frames of at least 36 x 36 pixels, the MinAtar torso
        :data:`rl.conv.MINATAR_CONV` on smaller ones).
    conv_hidden_sizes : sequence of int or "auto", default "auto"
        Dense layers after the convolutions; ``"auto"``: those of the same torso (512 for
        Nature, 128 for MinAtar).
    image_layout : {"auto", "HWC", "CHW"}, default "auto"
        Axis order of image observations (:meth:`rl.spaces.ObservationLayout.from_space`).
    obs_clip : float > 0, default 10.0
        With ``obs_normalization``: normalised observations are clipped to
        ``[-obs_clip, obs_clip]``.
    init_log_std : float, default 0.0
        Initial log-std of a Gaussian policy (Box actions).
    output_gain : float >= 0, default 0.01
        Gain of the orthogonal initialisation of the output layer of the MLP and
        multi-input policies.

    Returns
    -------
    policy : Policy
        ``Discrete`` obs and actions → :class:`TabularSoftmax`; 1-D ``Box`` obs (any
        real or integer dtype) with ``Discrete`` actions → :class:`CategoricalMLP`, float
        ``Box`` actions → :class:`GaussianMLP`, ``MultiDiscrete`` actions →
        :class:`MultiCategoricalMLP`, ``MultiBinary`` actions → :class:`BernoulliMLP`;
        rank-3 ``Box`` obs (images, uint8 / bool / float) with ``Discrete`` actions →
        :class:`CategoricalCNN`; ``Dict`` / ``Tuple`` obs, or images with other actions →
        :class:`MultiInputPolicy`.

    Raises
    ------
    ValueError
        For any other pair of spaces; the message names the space (the leaf's path for a
        structured one) and the fix. The pairs are checked by :func:`rl.envs.check_spaces`,
        the same check the samplers make.

    Examples
    --------
    >>> from gymnasium import spaces
    >>> pi = make_policy(spaces.Box(-1.0, 1.0, (4,)), spaces.Discrete(2), seed=0)
    >>> type(pi).__name__, pi.num_params
    ('CategoricalMLP', 4610)
    >>> make_policy(spaces.Discrete(5), spaces.Discrete(3)).num_params
    15
    >>> type(make_policy(spaces.Box(-1.0, 1.0, (4,)), spaces.MultiDiscrete([3, 2]))).__name__
    'MultiCategoricalMLP'
    """
    from gymnasium import spaces

    from rl.envs import check_spaces
    from rl.spaces import ObservationLayout, action_spec

    check_spaces(observation_space, action_space)  # the pairs the samplers take
    vector_obs = isinstance(observation_space, spaces.Box) and len(observation_space.shape) == 1
    classic_actions = isinstance(action_space, (spaces.Discrete, spaces.Box))
    if isinstance(observation_space, spaces.Discrete) or (vector_obs and classic_actions):
        if isinstance(observation_space, spaces.Discrete):
            return TabularSoftmax(int(observation_space.n), int(action_space.n), seed=seed)
        obs_dim = int(observation_space.shape[0])
        norm = ObservationNormalizer(obs_dim, clip=obs_clip) if obs_normalization else None
        if isinstance(action_space, spaces.Discrete):
            return CategoricalMLP(obs_dim, int(action_space.n), hidden_sizes, seed=seed,
                                  obs_normalizer=norm, dtype=dtype, output_gain=output_gain)
        return GaussianMLP(obs_dim, int(action_space.shape[0]), hidden_sizes, seed=seed,
                           obs_normalizer=norm, dtype=dtype, init_log_std=init_log_std,
                           output_gain=output_gain)
    spec = action_spec(action_space)
    layout = ObservationLayout.from_space(observation_space, image_layout=image_layout)
    if vector_obs:
        obs_dim = layout.flat_dim
        norm = ObservationNormalizer(obs_dim, clip=obs_clip) if obs_normalization else None
        if spec.kind == "multidiscrete":
            return MultiCategoricalMLP(obs_dim, spec.nvec, hidden_sizes, seed=seed,
                                       obs_normalizer=norm, dtype=dtype,
                                       output_gain=output_gain)
        return BernoulliMLP(obs_dim, spec.size, hidden_sizes, seed=seed, obs_normalizer=norm,
                            dtype=dtype, output_gain=output_gain)
    if layout.image is not None:
        auto_layers, auto_hidden = conv_torso_for(layout.image.shape, layout.image_layout)
        conv_layers = auto_layers if _is_auto(conv_layers) else conv_layers
        conv_hidden_sizes = auto_hidden if _is_auto(conv_hidden_sizes) else conv_hidden_sizes
    else:
        conv_layers = NATURE_CONV if _is_auto(conv_layers) else conv_layers
        conv_hidden_sizes = (512,) if _is_auto(conv_hidden_sizes) else conv_hidden_sizes
    if not layout.structured and spec.kind == "discrete":
        return CategoricalCNN(layout.image.shape, spec.size, layout=layout.image_layout,
                              conv_layers=conv_layers, hidden_sizes=conv_hidden_sizes,
                              seed=seed, dtype=dtype)
    return MultiInputPolicy(observation_space, action_space, hidden_sizes,
                            conv_layers=conv_layers, conv_hidden_sizes=conv_hidden_sizes,
                            image_layout=image_layout, obs_normalization=obs_normalization,
                            seed=seed, dtype=dtype, obs_clip=obs_clip,
                            init_log_std=init_log_std, output_gain=output_gain)


def _is_auto(value) -> bool:
    return isinstance(value, str) and value == "auto"
