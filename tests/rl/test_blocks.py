"""Blocks of environments (BlockSampler), in this process and on Ray actors.

Most tests run the blocks in this process; the Ray tests share one session-scoped
``ray.init(num_cpus=2)`` and are skipped when Ray is not installed.
"""

from __future__ import annotations

import logging
import os
import sys

import numpy as np
import pytest

from rl.checkpoint import encode
from rl.policies import CategoricalMLP, GaussianMLP, ObservationNormalizer
from rl.sampling import Batch, BlockSampler, BlockWorker, RayUnavailableError, SinglePathSampler
from rl.sampling.finishing import join_blocks
from rl.train import ConfigError, train

SMALL = {"num_envs": 4, "steps_per_env": 64, "eval_episodes": 0, "checkpoint_every": 1,
         "value_iterations": 2}


def _assert_batches_equal(a: Batch, b: Batch):
    for name in Batch.STEP_FIELDS + ("episode_returns", "episode_lengths"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def _pendulum_policy():
    return GaussianMLP(3, 1, hidden_sizes=(8,), seed=0, obs_normalizer=ObservationNormalizer(3))


# ----------------------------------------------------------------------- in process
def test_join_blocks_rebuilds_the_batch_of_one_sampler():
    """Split one sampler's batch into blocks of environments (each piece listing its own
    episodes, in order of ending): joining them gives back the batch, episode order
    included (by step of ending, ties by environment index)."""
    from rl.envs import make_vector_env

    sampler = SinglePathSampler(make_vector_env("CartPole-v1", 6), CategoricalMLP(
        4, 2, hidden_sizes=(8,), seed=0), 100, seed=0)
    full = sampler.sample()
    sampler.close()
    ends = np.argwhere(full.dones)  # (t, i) of each episode, in the batch's order
    assert len(ends) == full.episode_returns.size > 6
    pieces = []
    for k in range(3):
        cols = slice(2 * k, 2 * k + 2)
        mine = (ends[:, 1] >= 2 * k) & (ends[:, 1] < 2 * k + 2)
        pieces.append(Batch(*(getattr(full, n)[:, cols] for n in Batch.STEP_FIELDS),
                            full.episode_returns[mine], full.episode_lengths[mine]))
    _assert_batches_equal(join_blocks(pieces), full)


def test_block_sampler_is_its_blocks_joined_and_finished_once():
    """Each block is a SinglePathSampler with the k-th spawned seed and disjoint env seeds,
    normaliser frozen; the normaliser is then updated once from the joined batch and
    log π_old recomputed under it."""
    from rl.envs import make_vector_env
    from rl.sampling.finishing import current_params

    policy, reference = _pendulum_policy(), _pendulum_policy()
    blocks = BlockSampler("Pendulum-v1", policy, num_envs=4, steps_per_env=30, num_blocks=2,
                          seed=7, env_seed=11)
    children = np.random.SeedSequence(7).spawn(2)
    by_hand = [SinglePathSampler(make_vector_env("Pendulum-v1", 2, seed=11 + 2 * k), reference,
                                 30, seed=children[k], update_normalizer=False)
               for k in range(2)]
    batch = blocks.sample()
    pieces = [s.sample() for s in by_hand]
    joined = join_blocks(pieces)
    np.testing.assert_array_equal(batch.observations, joined.observations)
    np.testing.assert_array_equal(batch.actions, joined.actions)
    reference.obs_normalizer.update(joined.flat("observations"))
    np.testing.assert_array_equal(policy.obs_normalizer.mean, reference.obs_normalizer.mean)
    params, logp = current_params(policy, batch.flat("observations"), batch.flat("actions"))
    np.testing.assert_array_equal(batch.flat("log_probs"), logp)
    np.testing.assert_array_equal(batch.flat("dist_params"), params)
    assert batch.diagnostics["sampler/restarts"] == 0
    encode(blocks.state_dict())  # arrays and plain values: a checkpoint can hold it
    blocks.close()
    for s in by_hand:
        s.close()


def test_a_worker_restored_from_its_saved_state_samples_the_same_piece():
    """The fault path in process: a new worker loaded with the state saved after the last
    piece samples exactly the piece the old one samples next (environments included)."""
    policy = CategoricalMLP(4, 2, hidden_sizes=(8,), seed=0)
    args = ("CartPole-v1", 3, policy.state_dict(), 40, np.random.SeedSequence(1), 5)
    worker = BlockWorker(*args)
    _, state, _ = worker.sample(policy.state_dict())
    expected, _, _ = worker.sample(policy.state_dict())
    fresh = BlockWorker(*args)
    fresh.load_state_dict(state)
    _assert_batches_equal(fresh.sample(policy.state_dict())[0], expected)
    assert worker.resume_problem() is None
    worker.close()
    fresh.close()


def test_local_blocks_resume_to_the_numbers_of_an_uninterrupted_run(tmp_path):
    config = dict(SMALL, num_workers=2)
    full = train("trpo", "CartPole-v1", steps=768, seed=2, out=tmp_path / "full",
                 config=config, progress=False, plot=False)
    train("trpo", "CartPole-v1", steps=512, seed=2, out=tmp_path / "part", config=config,
          progress=False, plot=False)
    resumed = train(resume=tmp_path / "part", steps=768, progress=False, plot=False)
    np.testing.assert_array_equal(resumed.policy.theta, full.policy.theta)
    assert [r["episode/return_mean"] for r in resumed.history] == [
        r["episode/return_mean"] for r in full.history]


@pytest.mark.parametrize("config, words", [
    ({"num_workers": 3}, "multiple of num_workers=3"),
    ({"num_workers": 0}, "num_workers"),
    ({"sampler": "gpu"}, "sampler must be one of"),
    ({"ray_address": "127.0.0.1:6379"}, "sampler=ray"),
    ({"sampling": "vine", "num_workers": 2}, "add --set sampler=ray"),
])
def test_bad_sampler_settings_are_one_line_errors(tmp_path, config, words):
    with pytest.raises(ConfigError, match=words) as info:
        train("trpo", "CartPole-v1", steps=128, out=tmp_path / "r",
              config=dict(SMALL, **config), progress=False, plot=False)
    assert "\n" not in str(info.value)


def test_an_unreachable_ray_address_is_a_one_line_error(tmp_path):
    pytest.importorskip("ray")
    with pytest.raises(ConfigError, match="cannot reach a Ray cluster at '127.0.0.1:1'.*"
                                          "ray start --head") as info:
        train("trpo", "CartPole-v1", steps=128, out=tmp_path / "r", progress=False, plot=False,
              config=dict(SMALL, sampler="ray", num_workers=2, ray_address="127.0.0.1:1"))
    assert "\n" not in str(info.value)


def test_sampler_ray_without_ray_installed_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(ConfigError, match=r"pip install -e '\.\[ray\]'"):
        train("trpo", "CartPole-v1", steps=128, out=tmp_path / "r",
              config=dict(SMALL, sampler="ray", num_workers=2), progress=False, plot=False)


# ----------------------------------------------------------------------------- Ray
@pytest.fixture(scope="session")
def ray_cluster():
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    yield ray
    ray.shutdown()


def test_ray_workers_give_the_batch_of_the_in_process_blocks(ray_cluster):
    """2 Ray workers x 2 envs and 2 in-process blocks of 2 envs: the same batches, bit for
    bit, over iterations in which the parameters and the normaliser change."""
    local_policy, ray_policy = _pendulum_policy(), _pendulum_policy()
    local = BlockSampler("Pendulum-v1", local_policy, num_envs=4, steps_per_env=50,
                         num_blocks=2, seed=3)
    remote = BlockSampler("Pendulum-v1", ray_policy, num_envs=4, steps_per_env=50,
                          num_blocks=2, seed=3, backend="ray")
    for _ in range(3):
        _assert_batches_equal(remote.sample(), local.sample())
        np.testing.assert_array_equal(ray_policy.obs_normalizer.mean,
                                      local_policy.obs_normalizer.mean)
        for p in (local_policy, ray_policy):
            p.theta = p.theta + 0.05
    assert remote.state_dict()["blocks"][1]["total_steps"] == 300
    local.close()
    remote.close()


def _dies_once_factory(marker):
    """A CartPole factory whose environments kill their worker process (never this one)
    at a step while ``marker`` exists (removing it first, so the restarted worker lives)."""
    import gymnasium

    here = os.getpid()

    class DiesOnce(gymnasium.Wrapper):
        def step(self, action):
            if os.getpid() != here:
                try:
                    os.rename(marker, marker + ".taken")  # atomic: one process claims it
                except FileNotFoundError:
                    pass
                else:
                    os._exit(1)
            return self.env.step(action)

    return lambda: DiesOnce(gymnasium.make("CartPole-v1"))


def test_a_ray_worker_that_dies_mid_batch_is_restarted_and_its_part_resampled(
        ray_cluster, tmp_path, caplog):
    marker = tmp_path / "die"
    policy = CategoricalMLP(4, 2, hidden_sizes=(8,), seed=0)
    factory = _dies_once_factory(str(marker))
    remote = BlockSampler(factory, policy, num_envs=4, steps_per_env=20, num_blocks=2, seed=0,
                          backend="ray")
    local = BlockSampler(factory, policy, num_envs=4, steps_per_env=20, num_blocks=2, seed=0)
    _assert_batches_equal(remote.sample(), local.sample())
    marker.write_text("")  # the next batch kills the first worker that steps
    with caplog.at_level(logging.WARNING, logger="rl.sampling"):
        batch = remote.sample()
    assert not marker.exists()
    _assert_batches_equal(batch, local.sample())
    assert batch.diagnostics["sampler/restarts"] == 1
    assert "restarted from its saved state" in caplog.text
    _assert_batches_equal(remote.sample(), local.sample())  # and it goes on
    remote.close()
    local.close()


def test_a_training_run_on_ray_has_the_numbers_of_the_local_blocks(ray_cluster, tmp_path):
    runs = {}
    for sampler in ("local", "ray"):
        runs[sampler] = train("trpo", "CartPole-v1", steps=512, seed=4, out=tmp_path / sampler,
                              config=dict(SMALL, sampler=sampler, num_workers=2),
                              progress=False, plot=False)
    np.testing.assert_array_equal(runs["ray"].policy.theta, runs["local"].policy.theta)
    assert [r["episode/return_mean"] for r in runs["ray"].history] == [
        r["episode/return_mean"] for r in runs["local"].history]


def test_a_ray_run_resumes_to_the_numbers_of_an_uninterrupted_one(ray_cluster, tmp_path):
    """The checkpoint holds every block's state (environments included), so a resumed Ray
    run continues exactly."""
    config = dict(SMALL, sampler="ray", num_workers=2)
    full = train("trpo", "CartPole-v1", steps=768, seed=6, out=tmp_path / "full",
                 config=config, progress=False, plot=False)
    train("trpo", "CartPole-v1", steps=512, seed=6, out=tmp_path / "part", config=config,
          progress=False, plot=False)
    resumed = train(resume=tmp_path / "part", steps=768, progress=False, plot=False)
    np.testing.assert_array_equal(resumed.policy.theta, full.policy.theta)


def test_a_vine_run_with_ray_rollouts_has_the_numbers_of_an_in_process_one(ray_cluster,
                                                                          tmp_path):
    import functools

    import gymnasium as gym

    from rl.mdp import random_mdp

    env_id = "TrpokitBlocksRandomMDP-v0"
    gym.register(env_id, entry_point=functools.partial(random_mdp, 4, 2, gamma=0.9, seed=0,
                                                       horizon=30))
    config = {"sampling": "vine", "num_envs": 1, "steps_per_env": 32, "gamma": 0.9,
              "vine_rollout_states": 4, "vine_actions_per_state": 2, "vine_rollout_length": 10,
              "baseline": "linear", "eval_episodes": 0}
    try:
        local = train("trpo", env_id, steps=300, seed=3, out=tmp_path / "local", config=config,
                      progress=False, plot=False)
        remote = train("trpo", env_id, steps=300, seed=3, out=tmp_path / "ray", progress=False,
                       plot=False, config=dict(config, sampler="ray", num_workers=2))
    finally:
        del gym.registry[env_id]
    np.testing.assert_array_equal(remote.policy.theta, local.policy.theta)
    assert [r["vine/q_mean"] for r in remote.history] == [r["vine/q_mean"] for r in local.history]


def test_more_ray_workers_than_cpus_is_a_one_line_error(ray_cluster):
    policy = CategoricalMLP(4, 2, hidden_sizes=(8,), seed=0)
    with pytest.raises(RayUnavailableError, match="more than the 2 CPUs"):
        BlockSampler("CartPole-v1", policy, num_envs=3, steps_per_env=5, num_blocks=3, seed=0,
                     backend="ray")


def test_vine_rollouts_on_ray_workers_give_the_in_process_batch(ray_cluster):
    """The vine's leaf rollouts split over 2 Ray workers: the same VineBatch, bit for bit
    (each rollout restores its state and reseeds its noise wherever it runs)."""
    import functools

    from rl.mdp import random_mdp
    from rl.policies import TabularSoftmax
    from rl.sampling import VineSampler

    factory = functools.partial(random_mdp, 4, 2, gamma=0.9, seed=0, horizon=30)
    kwargs = dict(num_trunk_steps=40, num_rollout_states=6, actions_per_state=2,
                  rollout_length=10, gamma=0.9, seed=5)
    policy = TabularSoftmax(4, 2, init_std=0.5, seed=1)
    local = VineSampler(factory, policy, **kwargs)
    remote = VineSampler(factory, policy, rollout_workers=2, **kwargs)
    for _ in range(2):
        a, b = local.sample(), remote.sample()
        for name in ("observations", "actions", "q_values", "advantages", "log_probs"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        assert a.num_env_steps == b.num_env_steps
        assert b.diagnostics["vine/restarts"] == 0
        policy.theta = policy.theta + 0.3  # the workers follow the broadcast policy
    local.close()
    remote.close()
