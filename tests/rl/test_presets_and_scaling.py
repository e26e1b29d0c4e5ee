"""Reward scaling (VecNormalize's rule), the learning options of the runner, and presets."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rl
from rl.presets import PRESETS, preset_settings, resolve_preset
from rl.reward_scaling import RewardScaler
from rl.train import ConfigError, TrainConfig, resolve_config


# ---------------------------------------------------------------------------- RewardScaler
def _reference(rewards, dones, gamma, clip=10.0, eps=1e-8):
    """VecNormalize's reward rule written out from its definition: the variance of the
    pooled sample {prior pseudo-count 1e-4 at mean 0, variance 1} ∪ {every G_i seen so far},
    computed directly (not by the parallel update)."""
    T, N = rewards.shape
    G = np.zeros(N)
    seen = []
    out = np.empty_like(rewards)
    c0 = 1e-4
    for t in range(T):
        G = G * gamma + rewards[t]
        seen.extend(G.tolist())
        x = np.asarray(seen)
        n = x.size
        M = x.sum() / (c0 + n)  # prior mean 0 contributes c0 * 0
        var = (c0 * (1.0 + M * M) + np.sum((x - M) ** 2)) / (c0 + n)
        out[t] = np.clip(rewards[t] / np.sqrt(var + eps), -clip, clip)
        G[dones[t]] = 0.0
    return out


@settings(max_examples=40, deadline=None)
@given(T=st.integers(1, 30), N=st.integers(1, 4), gamma=st.floats(0.0, 1.0),
       scale=st.floats(1e-3, 1e3), seed=st.integers(0, 2**31))
def test_reward_scaling_matches_the_pooled_variance_definition(T, N, gamma, scale, seed):
    rng = np.random.default_rng(seed)
    rewards = rng.normal(size=(T, N)) * scale + rng.normal() * scale
    dones = rng.random((T, N)) < 0.2
    got = RewardScaler(N, gamma).scale_rewards(rewards, dones)
    np.testing.assert_allclose(got, _reference(rewards, dones, gamma), rtol=1e-9, atol=1e-12)


def test_scaling_in_two_batches_equals_one_batch_and_state_round_trips():
    rng = np.random.default_rng(0)
    rewards = rng.normal(3.0, 2.0, size=(40, 3))
    dones = rng.random((40, 3)) < 0.1
    whole = RewardScaler(3, 0.99).scale_rewards(rewards, dones)
    first = RewardScaler(3, 0.99)
    a = first.scale_rewards(rewards[:17], dones[:17])
    second = RewardScaler(3, 0.99)
    second.load_state_dict(first.state_dict())
    b = second.scale_rewards(rewards[17:], dones[17:])
    assert np.array_equal(np.concatenate([a, b]), whole)


def test_reward_scaling_keeps_signs_clips_and_resets_at_episode_ends():
    s = RewardScaler(1, 1.0, clip=0.5)
    out = s.scale_rewards(np.array([[1e6], [-1e6]]), np.array([[True], [False]]))
    assert out[0, 0] == 0.5 and out[1, 0] == -0.5  # clipped, signs kept
    assert s.returns[0] == -1e6  # reset after the first step's done, then one reward


@pytest.mark.parametrize("kwargs, name", [({"num_envs": 0, "gamma": 0.9}, "num_envs"),
                                          ({"num_envs": 1, "gamma": 1.5}, "gamma"),
                                          ({"num_envs": 1, "gamma": 0.9, "clip": 0.0}, "clip")])
def test_reward_scaler_bad_input_names_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        RewardScaler(**kwargs)


def test_reward_scaler_refuses_bad_shapes_nonfinite_rewards_and_foreign_state():
    s = RewardScaler(2, 0.9)
    with pytest.raises(ValueError, match="shape"):
        s.scale_rewards(np.zeros((3, 3)), np.zeros((3, 3), bool))
    with pytest.raises(ValueError, match="finite"):
        s.scale_rewards(np.array([[np.nan, 0.0]]), np.zeros((1, 2), bool))
    with pytest.raises(ValueError, match="settings"):
        RewardScaler(2, 0.99).load_state_dict(s.state_dict())
    bad = {**s.state_dict(), "var": -1.0}
    with pytest.raises(ValueError, match="var"):
        s.load_state_dict(bad)


# --------------------------------------------------------------------------------- presets
def test_every_preset_resolves_to_valid_configs_for_every_sampling_algorithm():
    for name in PRESETS:
        for algo in ("trpo", "npg", "ppo", "vpg"):
            cfg, algo_cfg = resolve_config(algo, name)
            assert cfg.preset == name
            for key, value in preset_settings(name, algo).items():
                assert getattr(cfg, key, getattr(algo_cfg, key, None)) == value, (name, key)


def test_presets_are_applied_beneath_set_and_can_be_turned_off_or_chosen():
    cfg, algo_cfg = resolve_config("trpo", "HalfCheetah-v5")
    assert (cfg.preset, cfg.reward_scaling, algo_cfg.max_kl) == ("HalfCheetah-v5", True, 0.04)
    cfg, algo_cfg = resolve_config("trpo", "HalfCheetah-v5", overrides={"max_kl": 0.02,
                                                                       "num_envs": 4})
    assert (algo_cfg.max_kl, cfg.num_envs, cfg.steps_per_env) == (0.02, 4, 1024)
    cfg, algo_cfg = resolve_config("trpo", "HalfCheetah-v5", overrides={"preset": "none"})
    defaults = TrainConfig()
    assert (cfg.preset, cfg.num_envs, cfg.reward_scaling) == ("none", defaults.num_envs, False)
    assert algo_cfg.max_kl == 0.01
    cfg, _ = resolve_config("trpo", "InvertedPendulum-v5", overrides={"preset": "Hopper-v5"})
    assert (cfg.preset, cfg.num_envs) == ("Hopper-v5", 2)
    cfg, _ = resolve_config("trpo", "CartPole-v1")
    assert cfg.preset == "none" and cfg.num_envs == defaults.num_envs
    assert resolve_preset("auto", "Walker2d-v5") == "Walker2d-v5"


def test_an_unknown_preset_is_a_one_line_error_with_the_closest_name():
    with pytest.raises(ConfigError, match="Did you mean 'Hopper-v5'"):
        resolve_config("trpo", "CartPole-v1", overrides={"preset": "Hoper-v5"})
    with pytest.raises(ConfigError, match="preset"):
        TrainConfig(preset="Hoper-v5")


@pytest.mark.parametrize("key, value", [("obs_clip", 0.0), ("reward_clip", -1.0),
                                        ("policy_output_gain", -0.1),
                                        ("init_log_std", float("nan"))])
def test_learning_options_refuse_bad_values_naming_them(key, value):
    with pytest.raises(ValueError, match=key):
        TrainConfig(**{key: value})
    with pytest.raises(ConfigError, match=key):
        resolve_config("trpo", "CartPole-v1", overrides={key: value})


def test_reward_scaling_is_refused_with_the_vine():
    with pytest.raises(ConfigError, match="reward_scaling"):
        TrainConfig(sampling="vine", reward_scaling=True)


# ----------------------------------------------------------------------- runner, end to end
def _run(out, steps, **config):
    config = {"eval_episodes": 0, "checkpoint_every": 1, "num_envs": 2, "steps_per_env": 128,
              **config}
    return rl.train("trpo", "Pendulum-v1", steps=steps, seed=3, out=out, progress=False,
                    plot=False, config=config)


def test_learning_options_reach_the_objects_they_configure(tmp_path):
    from rl.train import load_run

    opts = {"obs_normalization": True, "obs_clip": 3.0, "init_log_std": -0.5,
            "policy_output_gain": 0.0, "value_target_normalization": False,
            "reward_scaling": True, "reward_clip": 2.0}
    _run(tmp_path / "r", 256, **opts)
    run = load_run(tmp_path / "r")
    try:
        assert run.policy.obs_normalizer.clip == 3.0
        assert run.baseline.normalize_targets is False
        assert run.reward_scaler.clip == 2.0 and run.reward_scaler.count > 256
        cfg = json.loads((tmp_path / "r" / "config.json").read_text())["train"]
        assert {k: cfg[k] for k in opts} == opts and cfg["preset"] == "none"
    finally:
        run.close()
    fresh = rl.make_policy(*_spaces(), obs_normalization=True, init_log_std=-0.5,
                           output_gain=0.0, seed=0)
    assert np.all(fresh.theta[-1:] == -0.5)  # log-std entries
    assert np.all(fresh.net.params[-fresh.net.sizes[-2] - 1:] == 0.0)  # zero output layer


def _spaces():
    import gymnasium

    env = gymnasium.make("Pendulum-v1")
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()


def test_reward_scaling_changes_learning_but_not_the_reported_returns(tmp_path):
    plain = _run(tmp_path / "a", 1024, steps_per_env=256)  # episodes of 200 steps end
    scaled = _run(tmp_path / "b", 1024, steps_per_env=256, reward_scaling=True)
    # the same episodes are sampled in the first iteration; only the update differs
    assert np.isfinite(plain.history[0]["episode/return_mean"])
    assert plain.history[0]["episode/return_mean"] == scaled.history[0]["episode/return_mean"]
    assert "reward/scale" in scaled.history[0] and "reward/scale" not in plain.history[0]
    assert not np.array_equal(plain.policy.theta, scaled.policy.theta)


def test_a_resumed_run_with_reward_scaling_is_bit_identical(tmp_path):
    whole = _run(tmp_path / "whole", 768, reward_scaling=True, obs_normalization=True)
    _run(tmp_path / "part", 256, reward_scaling=True, obs_normalization=True)
    resumed = rl.train(resume=tmp_path / "part", steps=768, progress=False, plot=False)
    assert np.array_equal(whole.policy.theta, resumed.policy.theta)
    assert [r["reward/scale"] for r in whole.history] == [
        r["reward/scale"] for r in resumed.history]


def test_the_memory_check_counts_images_in_their_own_dtype():
    """A batch of uint8 frames is counted one byte a pixel, a Dict by its leaves; the
    check refuses by that count."""
    import gymnasium

    from rl.runner.build import _space_bytes

    frames = gymnasium.spaces.Box(0, 255, (84, 84, 4), np.uint8)
    assert _space_bytes(frames) == 84 * 84 * 4
    assert _space_bytes(gymnasium.spaces.Box(-1.0, 1.0, (3,))) == 3 * 4  # float32
    both = gymnasium.spaces.Dict({"image": frames, "pos": gymnasium.spaces.Discrete(5)})
    assert _space_bytes(both) == 84 * 84 * 4 + 8
    assert _space_bytes(gymnasium.spaces.Tuple((frames, frames))) == 2 * 84 * 84 * 4
