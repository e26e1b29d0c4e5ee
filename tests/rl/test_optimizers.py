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
