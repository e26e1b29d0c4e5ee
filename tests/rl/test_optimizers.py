"""Adam on flat parameter vectors: the float64 step and the in-place step in any float dtype."""

from __future__ import annotations

import numpy as np
import pytest

from rl.optimizers import Adam


def _reference_adam(theta, grads, lr, b1=0.9, b2=0.999, eps=1e-8):
    """Kingma & Ba, Alg. 1, written out."""
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        theta = theta - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return theta


def test_step_and_step_in_place_follow_kingma_and_ba():
    rng = np.random.default_rng(0)
    theta0 = rng.standard_normal(7)
    grads = [rng.standard_normal(7) for _ in range(25)]
    expected = _reference_adam(theta0, grads, 0.01)
    a, b = Adam(7, learning_rate=0.01), Adam(7, learning_rate=0.01)
    theta_a, theta_b = theta0.copy(), theta0.copy()
    for g in grads:
        theta_a = a.step(theta_a, g)
        b.step_in_place(theta_b, g.copy())
    np.testing.assert_allclose(theta_a, expected, rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(theta_b, theta_a)  # the same arithmetic, in place


def test_step_in_place_float32_keeps_float32_moments_and_checkpoints_float64():
    rng = np.random.default_rng(1)
    theta0 = rng.standard_normal(5)
    grads = [rng.standard_normal(5) for _ in range(30)]
    opt = Adam(5, learning_rate=0.05)
    theta = theta0.astype(np.float32)
    for g in grads:
        opt.step_in_place(theta, g.astype(np.float32))
    assert theta.dtype == np.float32 and opt.m.dtype == np.float32
    np.testing.assert_allclose(theta, _reference_adam(theta0, grads, 0.05), rtol=1e-5, atol=1e-5)
    state = opt.state_dict()
    assert state["m"].dtype == np.float64 and state["v"].dtype == np.float64
    restored = Adam(5, learning_rate=0.05)
    restored.load_state_dict(state)
    g = rng.standard_normal(5)
    # the float64 step after float32 ones continues from the same moments
    np.testing.assert_allclose(restored.step(theta.astype(np.float64), g),
                               opt.step(theta.astype(np.float64), g), rtol=1e-12)
    assert opt.m.dtype == np.float64


def test_step_in_place_rejects_bad_input():
    opt = Adam(3)
    with pytest.raises(ValueError, match="theta"):
        opt.step_in_place(np.zeros(4), np.zeros(4))
    with pytest.raises(ValueError, match="theta"):
        opt.step_in_place([0.0, 0.0, 0.0], np.zeros(3))
    with pytest.raises(ValueError, match="grad"):
        opt.step_in_place(np.zeros(3), np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="theta"):
        opt.step_in_place(np.zeros(3, dtype=np.int64), np.zeros(3, dtype=np.int64))


def test_step_rejects_a_non_finite_gradient_and_keeps_its_state():
    """One NaN gradient would make the first moment NaN for good; step refuses it up front,
    so the following clean steps are those of an optimizer that never saw it."""
    opt, fresh = Adam(2, learning_rate=0.1), Adam(2, learning_rate=0.1)
    for bad in ([np.nan, 1.0], [np.inf, 1.0]):
        with pytest.raises(ValueError, match="grad contains NaN or inf"):
            opt.step(np.zeros(2), np.array(bad))
    assert opt.t == 0 and np.all(opt.m == 0.0) and np.all(opt.v == 0.0)
    theta = opt.step(np.zeros(2), np.array([1.0, 1.0]))
    np.testing.assert_array_equal(theta, fresh.step(np.zeros(2), np.array([1.0, 1.0])))
    np.testing.assert_allclose(theta, [-0.1, -0.1], rtol=1e-6)


def test_state_dict_carries_the_settings_and_old_checkpoints_keep_the_current_ones():
    """beta1, beta2 and epsilon travel with the moments; a checkpoint without them (saved
    before they were part of the state) leaves the optimizer's own values."""
    opt = Adam(3, learning_rate=0.05, beta1=0.5, beta2=0.9, epsilon=1e-6)
    opt.step(np.zeros(3), np.ones(3))
    state = opt.state_dict()
    assert (state["beta1"], state["beta2"], state["epsilon"]) == (0.5, 0.9, 1e-6)
    restored = Adam(3)
    restored.load_state_dict(state)
    assert (restored.beta1, restored.beta2, restored.epsilon, restored.t) == (0.5, 0.9, 1e-6, 1)
    g = np.array([0.3, -0.2, 0.1])
    np.testing.assert_array_equal(restored.step(np.ones(3), g), opt.step(np.ones(3), g))
    old = {k: state[k] for k in ("m", "v", "t", "learning_rate")}
    kept = Adam(3, beta1=0.8, beta2=0.99, epsilon=1e-7)
    kept.load_state_dict(old)
    assert (kept.beta1, kept.beta2, kept.epsilon, kept.t) == (0.8, 0.99, 1e-7, 1)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"t": None}, r"missing the entries \['t'\]"),
        ({"t": -1}, r"state\['t'\] must be an integer >= 0"),
        ({"t": 1.5}, r"state\['t'\] must be an integer >= 0"),
        ({"m": np.array([np.nan, 0.0])}, r"state\['m'\] contains NaN"),
        ({"v": np.array([np.inf, 0.0])}, r"state\['v'\] contains NaN"),
        ({"v": np.array([-1.0, 0.0])}, r"state\['v'\] must be non-negative"),
        ({"m": np.zeros(3)}, r"state\['m'\] must have length 2"),
        ({"beta2": 1.0}, r"state\['beta2'\] must be a real number in \[0, 1\)"),
        ({"epsilon": 0.0}, r"state\['epsilon'\] must be finite and > 0"),
        ({"learning_rate": -1.0}, r"state\['learning_rate'\] must be finite and > 0"),
    ],
)
def test_load_state_dict_rejects_bad_state_before_changing_anything(change, match):
    opt = Adam(2, learning_rate=0.1)
    opt.step(np.zeros(2), np.ones(2))
    before = opt.state_dict()
    state = {**before, **change}
    if change.get("t", 0) is None:
        del state["t"]
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(state)
    after = opt.state_dict()
    assert after.keys() == before.keys()
    for key, value in before.items():
        np.testing.assert_array_equal(after[key], value)
    with pytest.raises(ValueError, match="state must be a dict"):
        opt.load_state_dict([before])


def test_repr_shows_size_settings_and_step_count():
    opt = Adam(4, learning_rate=0.01)
    opt.step(np.zeros(4), np.ones(4))
    assert repr(opt) == "Adam(num_params=4, learning_rate=0.01, betas=(0.9, 0.999), t=1)"
