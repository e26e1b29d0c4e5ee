"""The policy objective every algorithm steps on: a weighted set of state-action pairs.

A sampled batch and an exact tabular expectation are the same object here. A batch
gives each sample the weight ``1/N``; the exact form lists every state-action pair
``(s, a)`` with weight ``d_pi(s) pi(a|s)`` and its exact advantage. The surrogate, the KL
and the Fisher operator are then one formula for both, so an algorithm run in exact
mode on a :class:`~rl.mdp.TabularMDP` exercises the very code that trains on samples.
"""

from __future__ import annotations

import autograd.numpy as anp
import numpy as np
from autograd import value_and_grad

import trustregion as tr

__all__ = ["PolicyObjective"]


class PolicyObjective:
    """Surrogate, KL and Fisher of a policy around its current parameters.

    Parameters
    ----------
    policy : rl.policies.Policy
        The policy; its current parameters are :math:`\\theta_{old}`.
    observations, actions : ndarray
        The states and actions, first axis of length ``M``.
    advantages : ndarray, shape (M,)
        Advantage estimates :math:`\\hat A(s_i, a_i)` (or exact advantages).
    old_log_probs : ndarray, shape (M,)
        :math:`\\log \\pi_{old}(a_i | s_i)`.
    old_params : ndarray, shape (M, P)
        Distribution parameters of :math:`\\pi_{old}(\\cdot | s_i)`.
    weights : ndarray, shape (M,), optional
        Non-negative weights summing to one; default ``1/M`` each (a sampled batch).
    groups : ndarray of int, shape (M,), optional
        A group label per sample (the rollout state ``n`` of a vine batch). Given, the
        surrogate is the self-normalised importance-sampling estimator within each group
        (TRPO paper eq. (16)) instead of the plain importance-sampled sum; see Notes.

    Notes
    -----
    With weights :math:`w_i` the objective is the importance-sampled surrogate
    (TRPO paper eq. (14), normalised by the visitation mass)

    .. math::

        L(\\theta) = \\sum_i w_i\\, \\frac{\\pi_\\theta(a_i|s_i)}{\\pi_{old}(a_i|s_i)}\\,\\hat A_i,
        \\qquad
        \\bar D_{KL}(\\theta) = \\sum_i w_i\\, D_{KL}\\big(\\pi_{old}(\\cdot|s_i)\\,\\|\\,
        \\pi_\\theta(\\cdot|s_i)\\big),

    and the Fisher matrix is the Hessian of :math:`\\bar D_{KL}` at :math:`\\theta_{old}`,
    applied as :math:`J^T F_{dist} J v` (TRPO paper App. C.1).

    With ``groups`` the surrogate is, over the groups :math:`G_n` with weight
    :math:`W_n = \\sum_{i \\in G_n} w_i`,

    .. math::

        L(\\theta) = \\sum_n W_n\\,
        \\frac{\\sum_{i \\in G_n} w_i r_i(\\theta) \\hat A_i}{\\sum_{i \\in G_n} w_i r_i(\\theta)},
        \\qquad r_i(\\theta) = \\frac{\\pi_\\theta(a_i|s_i)}{\\pi_{old}(a_i|s_i)},

    the self-normalised estimator of the vine procedure with :math:`\\hat A_i = \\hat
    Q(s_n, a_{n,k})`: adding a constant to a group's values leaves its gradient unchanged,
    so no baseline is needed. PPO's clipped objective is defined per sample and refuses a
    grouped objective.
    """

    def __init__(self, policy, observations, actions, advantages, old_log_probs, old_params,
                 weights=None, groups=None):
        self.policy = policy
        self.theta_old = policy.theta
        # structured observations (a dict / tuple of arrays, one row per sample) stay as
        # they are: the policy encodes them (rl.policies.MultiInputPolicy)
        self.observations = (observations if isinstance(observations, (dict, tuple))
                             else np.asarray(observations))
        self.actions = np.asarray(actions)
        self.advantages = np.asarray(advantages, dtype=np.float64).reshape(-1)
        self.old_log_probs = np.asarray(old_log_probs, dtype=np.float64).reshape(-1)
        self.old_params = np.asarray(old_params, dtype=np.float64)
        m = self.advantages.shape[0]
        for name, arr in (("observations", self.observations), ("actions", self.actions),
                          ("old_log_probs", self.old_log_probs), ("old_params", self.old_params)):
            rows = _num_rows(arr)
            if rows != m:
                raise ValueError(
                    f"{name} has {rows} rows but advantages has {m}; pass one row per sample"
                )
        if m == 0:
            raise ValueError("the objective needs at least one sample; got an empty batch")
        if weights is None:
            self.weights = np.full(m, 1.0 / m)
        else:
            self.weights = np.asarray(weights, dtype=np.float64).reshape(-1)
            if self.weights.shape[0] != m or np.any(self.weights < 0):
                raise ValueError(f"weights must be {m} non-negative numbers; got shape "
                                 f"{self.weights.shape}")
            total = self.weights.sum()
            if not np.isclose(total, 1.0, rtol=1e-9, atol=0.0):
                raise ValueError(f"weights must sum to 1; they sum to {total!r}")
        if groups is None:
            self.groups = None
        else:
            self.groups = np.asarray(groups).reshape(-1)
            if self.groups.shape[0] != m or self.groups.dtype.kind not in "iu":
                raise ValueError(f"groups must be {m} integer labels, one per sample; got "
                                 f"{self.groups.dtype} of shape {self.groups.shape}")
        self.mdp = None  # the TabularMDP of an exact objective (see exact)
        self._batch_groups = None  # see _group_matrix
        self._dist = policy.distribution_class
        self._last_params = None
        self._linearization_old = None  # see _linearization_at_old

    # -- constructors ---------------------------------------------------------------------
    @classmethod
    def from_arrays(cls, policy, observations, actions, advantages, old_log_probs, old_params):
        """The sampled objective: every sample weighted ``1/M``."""
        return cls(policy, observations, actions, advantages, old_log_probs, old_params)

    @classmethod
    def exact(cls, mdp, policy):
        """The exact objective of a tabular policy on a :class:`~rl.mdp.TabularMDP`.

        Every pair ``(s, a)`` enters with weight :math:`d_\\pi(s)\\,\\pi(a|s)` (normalised
        discounted visitation) and its exact advantage :math:`A_\\pi(s, a)`, so that
        :meth:`surrogate` equals :math:`(1-\\gamma)\\,(L_\\pi(\\tilde\\pi) - \\eta(\\pi))` and
        :meth:`mean_kl` equals ``mdp.mean_kl(pi, pi_new)``. The objective keeps ``mdp`` as
        its attribute ``mdp`` (``None`` on a sampled objective): conservative policy
        iteration and the penalised step of the TRPO paper's Algorithm 1 need all
        advantages, the discount and the maximal KL over states.
        """
        S, A = mdp.num_states, mdp.num_actions
        states = np.repeat(np.arange(S), A)
        actions = np.tile(np.arange(A), S)
        pi = np.asarray(policy.probs(policy.theta))
        d = np.asarray(mdp.visitation(pi, normalized=True))
        weights = (d[:, None] * pi).reshape(-1)
        adv = np.asarray(mdp.advantages(pi)).reshape(-1)
        old_params = np.asarray(policy.distribution_params(states))
        with np.errstate(divide="ignore"):
            old_logp = np.log(pi.reshape(-1))
        keep = weights > 0
        objective = cls(policy, states[keep], actions[keep], adv[keep], old_logp[keep],
                        old_params[keep], weights[keep] / weights[keep].sum())
        objective.mdp = mdp  # for the algorithms that need more than the weighted rows
        return objective

    # -- the objective --------------------------------------------------------------------
    # Every quantity is a function of the distribution parameters y_i = y(s_i; theta): the
    # *_from(params, idx) forms are traceable by autograd in ``params``, and the theta forms
    # evaluate y by the policy's forward pass. Gradients chain the two by hand: autograd
    # differentiates the (cheap, elementwise) head in y, and the policy's linearisation
    # pulls the result back through the network (Policy.linearize).

    def _rows(self, idx):
        if idx is None:
            return self.observations, self.actions, self.old_log_probs, self.old_params
        return (_take_rows(self.observations, idx), self.actions[idx], self.old_log_probs[idx],
                self.old_params[idx])

    def distribution_params(self, theta, idx=None):
        """:math:`y(s_i; \\theta)` for the samples (traceable in ``theta``).

        The last evaluation at a plain array ``theta`` over all samples is remembered, so a
        line search that asks for the surrogate and then the KL at the same trial point
        runs the network once.
        """
        if idx is not None or not isinstance(theta, np.ndarray):
            return self.policy.distribution_params(self._rows(idx)[0], theta)
        cached = self._last_params
        if cached is not None and np.array_equal(cached[0], theta):
            return cached[1]
        params = self.policy.distribution_params(self.observations, theta)
        self._last_params = (theta.copy(), params)
        return params

    def surrogate_from(self, params, idx=None):
        """:math:`L = \\sum_i w_i r_i \\hat A_i` from distribution parameters ``params`` (the
        self-normalised form per group when the objective has ``groups``)."""
        w, adv = self._select(idx)
        _, act, old, _ = self._rows(idx)
        wr = w * anp.exp(self._dist(params).log_prob(act) - old)
        if self.groups is None:
            return anp.sum(wr * adv)
        members, group_weight = self._group_matrix(idx)
        return anp.sum(group_weight * anp.dot(members, wr * adv) / anp.dot(members, wr))

    def _group_matrix(self, idx):
        """``(members, W)``: the 0/1 matrix (groups x rows) of the selected rows' groups and
        each group's weight :math:`W_n`; kept for the whole batch, which a line search
        evaluates many times."""
        if idx is None and self._batch_groups is not None:
            return self._batch_groups
        labels = self.groups if idx is None else self.groups[idx]
        w, _ = self._select(idx)
        _, inverse = np.unique(labels, return_inverse=True)
        members = (inverse[None, :] == np.arange(inverse.max() + 1)[:, None]).astype(np.float64)
        result = (members, members @ w)
        if idx is None:
            self._batch_groups = result
        return result

    def clipped_surrogate_from(self, params, clip, idx=None):
        """PPO's clipped objective (see :meth:`clipped_surrogate`) from ``params``."""
        if self.groups is not None:
            raise ValueError(
                "PPO's clipped objective is defined per sample, not for the self-normalised "
                "(grouped) vine estimator; use vine_estimator='leave_one_out' with PPO")
        w, adv = self._select(idx)
        _, act, old, _ = self._rows(idx)
        r = anp.exp(self._dist(params).log_prob(act) - old)
        return anp.sum(w * anp.minimum(r * adv, anp.clip(r, 1.0 - clip, 1.0 + clip) * adv))

    def kl_per_sample_from(self, params, idx=None):
        """:math:`D_{KL}(\\pi_{old}(\\cdot|s_i) \\| \\pi(\\cdot|s_i))` from ``params``."""
        return self._dist(self._rows(idx)[3]).kl(self._dist(params))

    def mean_kl_from(self, params, idx=None):
        """:math:`\\sum_i w_i D_{KL}` from ``params``."""
        w, _ = self._select(idx)
        return anp.sum(w * self.kl_per_sample_from(params, idx))

    def entropy_from(self, params, idx=None):
        """Weighted mean entropy from ``params``."""
        w, _ = self._select(idx)
        return anp.sum(w * self._dist(params).entropy())

    def surrogate(self, theta, idx=None):
        """:math:`L(\\theta) = \\sum_i w_i r_i(\\theta) \\hat A_i` (autograd-traceable)."""
        return self.surrogate_from(self.distribution_params(theta, idx), idx)

    def clipped_surrogate(self, theta, clip, idx=None):
        """PPO's clipped objective :math:`\\sum_i w_i \\min(r_i \\hat A_i,
        \\mathrm{clip}(r_i, 1-\\epsilon, 1+\\epsilon) \\hat A_i)` (PPO paper eq. (7))."""
        return self.clipped_surrogate_from(self.distribution_params(theta, idx), clip, idx)

    def kl_per_sample(self, theta, idx=None):
        """:math:`D_{KL}(\\pi_{old}(\\cdot|s_i) \\| \\pi_\\theta(\\cdot|s_i))` for every sample."""
        return self.kl_per_sample_from(self.distribution_params(theta, idx), idx)

    def mean_kl(self, theta, idx=None):
        """:math:`\\bar D_{KL}(\\theta) = \\sum_i w_i D_{KL}(\\pi_{old}\\|\\pi_\\theta)(s_i)`."""
        return self.mean_kl_from(self.distribution_params(theta, idx), idx)

    def max_kl(self, theta):
        """:math:`\\max_i D_{KL}(\\pi_{old}\\|\\pi_\\theta)(s_i)` over the samples."""
        return float(np.max(self.kl_per_sample(theta)))

    def entropy(self, theta=None):
        """Weighted mean entropy of :math:`\\pi_\\theta(\\cdot|s_i)`."""
        theta = self.theta_old if theta is None else theta
        return float(self.entropy_from(self.distribution_params(theta)))

    def value_and_gradient_of(self, head, theta=None, idx=None):
        """``(h, ∇_θ h)`` for a head ``h = head(params, idx)`` of the distribution parameters.

        One forward pass (:meth:`rl.policies.Policy.linearize`), autograd's gradient of
        ``head`` in the parameters, and one vector-Jacobian product back to θ.
        """
        at_old = theta is None or np.array_equal(theta, self.theta_old)
        theta = self.theta_old if theta is None else np.asarray(theta, dtype=np.float64)
        if at_old and idx is None:
            lin = self._linearization_at_old()
        else:
            lin = self.policy.linearize(self._rows(idx)[0], theta)
        value, dy = value_and_grad(head)(lin.output, idx)
        return float(value), lin.vjp(dy)

    def gradient(self, theta=None, idx=None):
        """:math:`\\nabla_\\theta L` at ``theta`` (default :math:`\\theta_{old}`)."""
        return self.value_and_gradient(theta, idx)[1]

    def value_and_gradient(self, theta=None, idx=None):
        """``(L(theta), grad L(theta))`` from one forward and one backward pass."""
        return self.value_and_gradient_of(self.surrogate_from, theta, idx)

    def fisher_operator(self, *, fraction=1.0, rng=None):
        """The Fisher matrix at :math:`\\theta_{old}` as a matrix-free ``LinearOperator``.

        ``fraction < 1`` estimates it on a random subset of the samples (TRPO paper §6:
        "we can subsample the data for the Fisher-vector products"); ``rng`` draws it.
        """
        idx = None
        if fraction < 1.0:
            if rng is None:
                raise ValueError("fisher fraction < 1 subsamples: pass rng=numpy.random.Generator")
            m = self.weights.shape[0]
            k = max(1, int(round(fraction * m)))
            idx = np.sort(rng.choice(m, size=k, replace=False))
        obs = self.observations if idx is None else _take_rows(self.observations, idx)
        w = self.weights if idx is None else self.weights[idx] / self.weights[idx].sum()
        # J v and J^T u by the policy's hand-written products (one forward pass, shared
        # with the gradient at theta_old when both use all samples)
        lin = self._linearization_at_old() if idx is None else self.policy.linearize(
            obs, self.theta_old)
        # the output Fisher at lin.output, its softmax / variances computed once
        weighted_fisher = self._dist.fisher_product(lin.output, w)

        def output_fisher(y, u):  # y is lin.output
            return weighted_fisher(u)

        return tr.fisher_operator(lin, self.theta_old, output_fisher)

    def _linearization_at_old(self):
        """The policy linearised at θ_old on all samples, computed once: TRPO's gradient
        (step 1) and Fisher operator (step 2) share its forward pass."""
        if self._linearization_old is None:
            self._linearization_old = self.policy.linearize(self.observations, self.theta_old)
        return self._linearization_old

    def minibatches(self, size, rng):
        """Index arrays of a random partition into minibatches of about ``size`` samples."""
        m = self.weights.shape[0]
        perm = rng.permutation(m)
        return [perm[i:i + size] for i in range(0, m, size)]

    def _select(self, idx):
        if idx is None:
            return self.weights, self.advantages
        w = self.weights[idx]
        return w / w.sum(), self.advantages[idx]


def _num_rows(arr) -> int:
    """Rows of an array, or of the first leaf of a dict / tuple of arrays."""
    while isinstance(arr, (dict, tuple)):
        arr = next(iter(arr.values())) if isinstance(arr, dict) else arr[0]
    return np.shape(arr)[0]


def _take_rows(obs, idx):
    """``obs[idx]`` for an array, leaf by leaf for a dict / tuple of arrays."""
    if isinstance(obs, dict):
        return {k: _take_rows(v, idx) for k, v in obs.items()}
    if isinstance(obs, tuple):
        return tuple(_take_rows(v, idx) for v in obs)
    return obs[idx]
