"""The runner and the command line: run folders, resume determinism, errors."""

from __future__ import annotations

import csv
import functools
import json
import math

import gymnasium as gym
import numpy as np
import pytest

import rl
from rl.__main__ import main
from rl.train import CheckpointError, ConfigError, resolve_config, train

SMALL = {"num_envs": 2, "steps_per_env": 128, "eval_episodes": 2, "checkpoint_every": 1,
         "value_iterations": 5}


def _rows(run_dir):
    with open(run_dir / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _numbers(rows):
    """The non-timing columns of metrics rows, as floats."""
    out = []
    for r in rows:
        out.append({k: float(v) for k, v in r.items()
                    if "time" not in k and v not in ("", None)
                    and k not in ("cg/status", "trpo/status", "npg/status")})
    return out


@pytest.mark.parametrize("algo", ["trpo", "npg", "ppo", "vpg"])
def test_train_writes_a_complete_run_folder(tmp_path, algo):
    """A short run leaves config.json, metrics.csv (one row per iteration), a checkpoint,
    an evaluation and the learning-curve plot."""
    config = dict(SMALL, **({"epochs": 1} if algo == "ppo" else {}))
    result = train(algo, "CartPole-v1", steps=512, seed=1, out=tmp_path / "run", config=config,
                   progress=False)
    run = tmp_path / "run"
    assert result.status == "completed"
    for name in ("config.json", "metrics.csv", "checkpoint.json", "checkpoint-000002.npz",
                 "learning_curve.png", "evaluation.json"):
        assert (run / name).exists(), name
    assert not list(run.glob("*.pkl")) and not list(run.glob(".*"))
    rows = _rows(run)
    assert len(rows) == len(result.history) == 2
    assert int(rows[-1]["steps"]) == 512
    assert json.loads((run / "config.json").read_text())["train"]["algo"] == algo
    assert math.isfinite(result.evaluation["eval/return_mean"])


def test_resume_gives_the_same_numbers_as_an_uninterrupted_run(tmp_path):
    """Train 4 iterations straight, or 2 then resume to 4: identical metrics (same seed)."""
    full = train("trpo", "CartPole-v1", steps=1024, seed=3, out=tmp_path / "full", config=SMALL,
                 progress=False, plot=False)
    train("trpo", "CartPole-v1", steps=512, seed=3, out=tmp_path / "part", config=SMALL,
          progress=False, plot=False)
    resumed = train(resume=tmp_path / "part", steps=1024, progress=False, plot=False)
    assert len(resumed.history) == len(full.history) == 4
    assert _numbers(_rows(tmp_path / "part")) == _numbers(_rows(tmp_path / "full"))
    np.testing.assert_array_equal(resumed.policy.theta, full.policy.theta)


@pytest.fixture
def tabular_env_id():
    """A registered Gymnasium id for a small random MDP (a resumed run rebuilds its env
    from the id in its config)."""
    from rl.mdp import random_mdp

    env_id = "TrpokitTestRandomMDP-v0"
    gym.register(env_id, entry_point=functools.partial(random_mdp, 4, 2, gamma=0.9, seed=0,
                                                       horizon=30))
    yield env_id
    del gym.registry[env_id]


def test_vine_resume_gives_the_same_numbers_as_an_uninterrupted_run(tmp_path, tabular_env_id):
    """Vine sampling on a tabular MDP: train straight, or stop early and resume: identical
    metrics and policy (the sampler's streams and trunk episode are checkpointed)."""
    config = {"sampling": "vine", "num_envs": 1, "steps_per_env": 32, "gamma": 0.9,
              "vine_rollout_states": 4, "vine_actions_per_state": 2, "vine_rollout_length": 10,
              "baseline": "linear", "eval_episodes": 0, "checkpoint_every": 1}
    full = train("trpo", tabular_env_id, steps=600, seed=3, out=tmp_path / "full",
                 config=config, progress=False, plot=False)
    part = train("trpo", tabular_env_id, steps=250, seed=3, out=tmp_path / "part",
                 config=config, progress=False, plot=False)
    resumed = train(resume=tmp_path / "part", steps=600, progress=False, plot=False)
    assert 1 < len(part.history) < len(resumed.history) == len(full.history)
    assert _numbers(_rows(tmp_path / "part")) == _numbers(_rows(tmp_path / "full"))
    np.testing.assert_array_equal(resumed.policy.theta, full.policy.theta)


def test_the_same_seed_gives_the_same_run(tmp_path):
    """Reproducibility: two runs with one seed agree to the last bit."""
    a = train("ppo", "CartPole-v1", steps=512, seed=5, out=tmp_path / "a",
              config=dict(SMALL, epochs=1), progress=False, plot=False)
    b = train("ppo", "CartPole-v1", steps=512, seed=5, out=tmp_path / "b",
              config=dict(SMALL, epochs=1), progress=False, plot=False)
    np.testing.assert_array_equal(a.policy.theta, b.policy.theta)


def test_resolve_config_routes_keys_and_rejects_unknown_ones():
    """--set keys go to the algorithm config or the TrainConfig; typos get a suggestion."""
    train_cfg, algo_cfg = resolve_config("trpo", overrides={"max_kl": "0.02", "num_envs": "4",
                                                            "hidden_sizes": "32,32"})
    assert algo_cfg.max_kl == 0.02 and train_cfg.num_envs == 4
    assert train_cfg.hidden_sizes == (32, 32)
    with pytest.raises(ConfigError, match="max_kl"):
        resolve_config("trpo", overrides={"max_kll": "0.02"})
    with pytest.raises(ConfigError, match="max_kl"):
        resolve_config("trpo", overrides={"max_kl": "-1"})
    with pytest.raises(ConfigError, match="trpo"):
        resolve_config("trpoo")
    with pytest.raises(ConfigError, match="value_optimizer"):
        resolve_config("trpo", overrides={"value_optimizer": "sgd"})
    assert resolve_config("ppo", overrides={"value_optimizer": "lbfgs"})[0].value_optimizer == \
        "lbfgs"
    for key, bad in (("dtype", "float16"), ("value_minibatch_size", "0"),
                     ("value_learning_rate", "-1e-3")):
        with pytest.raises(ConfigError, match=key):
            resolve_config("trpo", overrides={key: bad})


def test_float32_run_with_an_adam_critic_builds_and_resumes(tmp_path):
    """``dtype="float32"`` and the Adam critic settings reach the networks, and a float32
    run resumes from its checkpoint to the numbers of an uninterrupted run."""
    config = dict(SMALL, dtype="float32", value_optimizer="adam", value_iterations=2,
                  value_minibatch_size=128, value_learning_rate=3e-3)
    full = train("trpo", "CartPole-v1", steps=1024, seed=3, out=tmp_path / "full",
                 config=config, progress=False, plot=False)
    assert full.policy.net.dtype == np.float32
    assert full.baseline.net.dtype == np.float32 and full.baseline.minibatch_size == 128
    assert full.baseline.learning_rate == 3e-3
    train("trpo", "CartPole-v1", steps=512, seed=3, out=tmp_path / "part", config=config,
          progress=False, plot=False)
    resumed = train(resume=tmp_path / "part", steps=1024, progress=False, plot=False)
    assert resumed.policy.net.dtype == np.float32
    np.testing.assert_array_equal(resumed.policy.theta, full.policy.theta)


class NaNAfter(gym.Env):
    """An environment whose observation turns NaN after ``n`` steps."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float64)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, n=300):
        self.n, self.t = n, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2), {}

    def step(self, action):
        self.t += 1
        obs = np.full(2, np.nan) if self.t > self.n else np.ones(2) * 0.1
        return obs, 1.0, False, self.t % 50 == 0, {}


def test_a_nan_environment_stops_the_run_and_keeps_the_last_checkpoint(tmp_path):
    """NaN observations end the run with a status; the checkpoint of the last good
    iteration and its metrics stay on disk."""
    result = train("trpo", NaNAfter(300), steps=4096, seed=0, out=tmp_path / "run",
                   config=dict(SMALL, num_envs=1), progress=False)
    assert result.status.startswith("stopped")
    assert "NaN" in result.status or "non-finite" in result.status.lower()
    assert _checkpoint(tmp_path / "run")["iteration"] == 2
    assert len(_rows(tmp_path / "run")) == 2  # 2 x 128 good steps, the third batch failed


def test_cli_errors_exit_2_with_one_line(tmp_path, capsys):
    """Bad input from the command line: one 'error:' line naming the problem, exit 2."""
    assert main(["train", "--algo", "nope", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "nope" in err[0]
    assert main(["train", "--env", "NoSuchEnv-v0", "--out", str(tmp_path / "y")]) == 2
    assert "NoSuchEnv-v0" in capsys.readouterr().err
    assert main(["train", "--set", "max_kl=oops", "--out", str(tmp_path / "z")]) == 2
    assert "max_kl" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "missing")]) == 2
    assert "checkpoint" in capsys.readouterr().err


def test_corrupt_checkpoint_is_reported_and_left_in_place(tmp_path, capsys):
    """A corrupt checkpoint: resume and evaluate fail with exit 2 and leave the file."""
    run = tmp_path / "run"
    train("vpg", "CartPole-v1", steps=256, seed=0, out=run, config=SMALL, progress=False,
          plot=False)
    path = _state_file(run)
    path.write_bytes(b"not a checkpoint")
    assert main(["train", "--resume", str(run)]) == 2
    assert "does not match the hash" in capsys.readouterr().err
    assert path.read_bytes() == b"not a checkpoint"
    with pytest.raises(CheckpointError):
        rl.train(resume=run)


def test_cli_train_evaluate_plot_round_trip(tmp_path, capsys):
    """python -m rl train / evaluate / plot on one run folder."""
    run = tmp_path / "run"
    sets = sum((["--set", f"{k}={v}"] for k, v in SMALL.items()), [])
    assert main(["train", "--steps", "256", "--out", str(run), "--no-progress", *sets]) == 0
    out = capsys.readouterr().out
    assert str(run) in out and "learning curve" in out
    assert main(["evaluate", str(run), "--episodes", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["eval/episodes"] == 2
    assert main(["plot", str(run), str(run), "--output", str(tmp_path / "both.png")]) == 0
    assert (tmp_path / "both.png").exists()


def test_vine_training_improves_a_tabular_mdp(tmp_path):
    """TRPO with vine sampling (TRPO paper §5.2) through the runner: on a random MDP the
    exact performance of the trained policy beats the initial (uniform) policy's.

    The effect is what as many TRPO steps of the same δ gain on the exact objective
    (2.8, nearly all of the gap to the optimal policy); the sampled run must gain at
    least half of it (it gains 88 %)."""
    from rl.algorithms import TRPO, TRPOConfig
    from rl.algorithms.objective import PolicyObjective
    from rl.mdp import random_mdp
    from rl.policies import TabularSoftmax

    mdp = random_mdp(4, 2, gamma=0.9, seed=0, horizon=30)
    uniform = np.full((4, 2), 0.5)
    config = {"sampling": "vine", "num_envs": 1, "steps_per_env": 64, "gamma": 0.9,
              "vine_rollout_states": 8, "vine_actions_per_state": 2, "vine_rollout_length": 20,
              "baseline": "linear", "eval_episodes": 1, "max_kl": 0.05}
    result = train("trpo", mdp, steps=3000, seed=0, out=tmp_path / "vine", config=config,
                   progress=False, plot=False)
    assert result.status == "completed"
    assert all(row["trpo/kl"] <= 0.05 for row in result.history)
    eta = mdp.performance(result.policy.probs(result.policy.theta))
    exact = TabularSoftmax(4, 2)
    exact_algo = TRPO(exact, None, TRPOConfig(max_kl=0.05), seed=0)
    for _ in result.history:
        exact_algo.policy_step(PolicyObjective.exact(mdp, exact))
    exact_gain = mdp.performance(exact.probs(exact.theta)) - mdp.performance(uniform)
    assert eta - mdp.performance(uniform) >= 0.5 * exact_gain
    # the vine batch's own diagnostics reach every row and metrics.csv
    for row in result.history:
        assert row["vine/trunk_steps"] == 64
        assert 0 < row["vine/rollout_steps"] <= 8 * 2 * 20  # rollouts end with their episode
        assert math.isfinite(row["vine/q_mean"]) and row["vine/q_std_within_state"] >= 0.0
    header = (tmp_path / "vine" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"vine/trunk_steps", "vine/rollout_steps", "vine/q_mean"} <= set(header)


def test_vine_on_an_env_without_state_restore_is_a_config_error(tmp_path):
    """Vine needs save/restore of the environment state; CartPole has none → clear error."""
    with pytest.raises(ConfigError, match="vine"):
        train("trpo", "CartPole-v1", steps=256, out=tmp_path / "v", progress=False,
              config={"sampling": "vine"})


def test_mismatched_checkpoint_is_a_one_line_error(tmp_path, capsys):
    """A checkpoint whose config cannot be rebuilt, or whose policy does not fit its
    architecture, is refused with exit 2; the file is left as it was."""
    run = tmp_path / "run"
    train("vpg", "CartPole-v1", steps=256, seed=0, out=run, config=SMALL, progress=False,
          plot=False)
    state = _checkpoint(run)
    state["config"]["env"] = "NoSuchEnv-v0"
    _rewrite_checkpoint(run, state)
    assert main(["evaluate", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot rebuild" in err[0]
    state = _checkpoint(run)
    state["config"]["env"] = "CartPole-v1"
    state["config"]["hidden_sizes"] = (8,)  # the saved theta is for (64, 64)
    bad = _rewrite_checkpoint(run, state)
    assert main(["train", "--resume", str(run)]) == 2
    assert "does not match" in capsys.readouterr().err
    assert _state_file(run).read_bytes() == bad


def _checkpoint(run_dir):
    from rl.checkpoint import read_checkpoint

    return read_checkpoint(run_dir)[1]


def _state_file(run_dir):
    """The checkpoint file the run folder's manifest commits."""
    from rl.checkpoint import read_manifest

    return run_dir / read_manifest(run_dir)["state_file"]


def _rewrite_checkpoint(run_dir, state):
    """Replace a run's checkpoint with ``state`` under a manifest that matches it (what a
    crafted file would do); returns the bytes written."""
    from rl.checkpoint import pack, read_manifest, write_checkpoint

    manifest = read_manifest(run_dir)
    data = pack(state)
    write_checkpoint(run_dir, data, iteration=manifest["iteration"],
                     total_steps=manifest["total_steps"],
                     metrics_csv=(run_dir / "metrics.csv").read_text(),
                     metrics_rows=manifest["metrics_rows"])
    return data


def test_a_stop_before_the_first_checkpoint_keeps_the_last_completed_iteration(tmp_path):
    """With checkpoint_every=5, NaN at the third iteration still leaves the second
    iteration's checkpoint and metrics on disk (they are kept in memory between writes)."""
    result = train("trpo", NaNAfter(300), steps=4096, seed=0, out=tmp_path / "run",
                   config=dict(SMALL, num_envs=1, checkpoint_every=5), progress=False)
    assert result.status.startswith("stopped")
    assert _checkpoint(tmp_path / "run")["iteration"] == 2
    assert len(_rows(tmp_path / "run")) == 2
    assert (tmp_path / "run" / "learning_curve.png").exists()


def test_an_interrupt_keeps_the_last_completed_iteration_and_resumes_exactly(tmp_path):
    """Ctrl-C during a run (here raised after iteration 2, between checkpoint writes)
    leaves iteration 2's checkpoint; resuming it gives an uninterrupted run's numbers."""
    config = dict(SMALL, checkpoint_every=5)
    full = train("trpo", "CartPole-v1", steps=1024, seed=4, out=tmp_path / "full",
                 config=config, progress=False, plot=False)

    def interrupt(row):
        if row["iteration"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as info:
        train("trpo", "CartPole-v1", steps=1024, seed=4, out=tmp_path / "cut", config=config,
              progress=False, plot=False, callback=interrupt)
    assert info.value.run_dir == tmp_path / "cut"
    assert _checkpoint(tmp_path / "cut")["iteration"] == 2
    resumed = train(resume=tmp_path / "cut", progress=False, plot=False)
    np.testing.assert_array_equal(resumed.policy.theta, full.policy.theta)
    assert _numbers(_rows(tmp_path / "cut")) == _numbers(_rows(tmp_path / "full"))


class NaNWhenEvaluated(NaNAfter):
    """Finite in training; NaN observations on the env the runner evaluates a seed-0 run
    on (seeded 10000)."""

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self.n = 0 if seed == 10_000 else 10**9
        self.t = 0
        return super().reset(seed=seed)


def test_nan_during_the_final_evaluation_is_a_status_not_a_traceback(tmp_path):
    result = train("vpg", NaNWhenEvaluated(), steps=256, seed=0, out=tmp_path / "run",
                   config=dict(SMALL, num_envs=1), progress=False)
    assert result.status.startswith("stopped") and "evaluation" in result.status
    assert result.evaluation == {}
    assert (tmp_path / "run" / "checkpoint.json").exists()
    assert (tmp_path / "run" / "learning_curve.png").exists()
    assert not (tmp_path / "run" / "evaluation.json").exists()


def test_cli_reports_a_stop_truthfully(tmp_path, capsys):
    """The stop message says whether a checkpoint exists (NaN in the first batch: none)."""
    gym.register("trpokit-test/NaNAtOnce-v0", entry_point=functools.partial(NaNAfter, 5))
    try:
        assert main(["train", "--env", "trpokit-test/NaNAtOnce-v0", "--out",
                     str(tmp_path / "run"), "--no-progress", "--set", "num_envs=1",
                     "--set", "steps_per_env=64"]) == 1
    finally:
        gym.registry.pop("trpokit-test/NaNAtOnce-v0")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no iteration completed" in err[0]
    assert not (tmp_path / "run" / "checkpoint.json").exists()


def test_cli_rejects_arguments_that_contradict_a_resumed_run(tmp_path, capsys):
    run = tmp_path / "run"
    train("vpg", "CartPole-v1", steps=256, seed=0, out=run, config=SMALL, progress=False,
          plot=False)
    before = _state_file(run).read_bytes()
    for extra, word in ((["--algo", "ppo"], "--algo"), (["--env", "Pendulum-v1"], "--env"),
                        (["--seed", "5"], "--seed"), (["--out", str(tmp_path / "x")], "--out")):
        assert main(["train", "--resume", str(run), *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and word in err[0]
    assert _state_file(run).read_bytes() == before
    # arguments that agree with the run are accepted; a new budget is written to config.json
    assert main(["train", "--resume", str(run), "--algo", "vpg", "--seed", "0", "--steps",
                 "512", "--no-progress"]) == 0
    assert json.loads((run / "config.json").read_text())["train"]["steps"] == 512


def test_cli_turns_os_and_environment_errors_into_one_line(tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    gym.register("trpokit-test/Unimportable-v0", entry_point="trpokit_no_such_module:Env")
    try:
        cases = [
            (["train", "--out", str(tmp_path / "afile")], "run folder"),
            (["train", "--env", "trpokit-test/Unimportable-v0", "--out", str(tmp_path / "u")],
             "could not be made"),
            (["train", "--set", "algo.steps=5", "--out", str(tmp_path / "s")], "train.steps"),
        ]
        for argv, words in cases:
            assert main(argv) == 2, argv
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and words in err[0], (argv, err)
    finally:
        gym.registry.pop("trpokit-test/Unimportable-v0")
    run = tmp_path / "run"
    train("vpg", "CartPole-v1", steps=256, seed=0, out=run, config=SMALL, progress=False,
          plot=False)
    for argv, words in ((["plot", str(run), "--output", str(tmp_path / "no" / "x.png")],
                         "cannot write the plot"),
                        (["evaluate", str(run), "--seed", "-1"], "--seed")):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], (argv, err)


@pytest.mark.parametrize("damage", ["policy", "history", "drop algo"])
def test_a_checkpoint_with_damaged_entries_is_a_one_line_error(tmp_path, capsys, damage):
    run = tmp_path / "run"
    train("vpg", "CartPole-v1", steps=256, seed=0, out=run, config=SMALL, progress=False,
          plot=False)
    state = _checkpoint(run)
    if damage == "drop algo":
        del state["algo"]
    else:
        state[damage] = 5 if damage == "policy" else None
    bad = _rewrite_checkpoint(run, state)
    assert main(["evaluate", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and str(run) in err[0]
    assert _state_file(run).read_bytes() == bad


def test_mujoco_resume_gives_the_same_numbers_as_an_uninterrupted_run(tmp_path):
    """Unpickling a MuJoCo env gives fresh physics; the checkpoint restores the saved
    integration state over it, so a split run matches an uninterrupted one."""
    pytest.importorskip("mujoco")
    config = dict(SMALL, num_envs=2, steps_per_env=64, eval_episodes=0)
    full = train("trpo", "InvertedPendulum-v5", steps=384, seed=2, out=tmp_path / "full",
                 config=config, progress=False, plot=False)
    train("trpo", "InvertedPendulum-v5", steps=128, seed=2, out=tmp_path / "part",
          config=config, progress=False, plot=False)
    resumed = train(resume=tmp_path / "part", steps=384, progress=False, plot=False)
    np.testing.assert_array_equal(resumed.policy.theta, full.policy.theta)
    assert _numbers(_rows(tmp_path / "part")) == _numbers(_rows(tmp_path / "full"))


class _Counter(gym.Env):
    """Observation = steps since the last reset; never ends an episode by itself."""

    observation_space = gym.spaces.Box(0.0, np.inf, (1,), dtype=np.float64)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1), {}

    def step(self, action):
        self.t += 1
        return np.array([float(self.t)]), 1.0, False, False, {}


class _Recorder:
    def __init__(self):
        self.seen = []

    def act(self, obs, rng, deterministic=True):
        self.seen.append(float(obs[0, 0]))
        return np.zeros(1, dtype=np.int64)


def test_evaluate_policy_max_steps_resets_the_environment():
    """An episode cut short by max_steps is followed by a reset: every episode starts from
    the reset observation, not from where the cut one stopped. Bad max_steps is named."""
    from rl.train import evaluate_policy

    policy = _Recorder()
    ev = evaluate_policy(policy, _Counter, episodes=3, seed=0, max_steps=4)
    assert ev["eval/return_mean"] == 4.0 and ev["eval/length_mean"] == 4.0
    assert policy.seen == [0.0, 1.0, 2.0, 3.0] * 3
    with pytest.raises(ValueError, match="max_steps"):
        evaluate_policy(policy, _Counter, episodes=1, max_steps=0)



def test_vine_estimator_and_all_actions_from_the_runner(tmp_path):
    """vine_estimator=self_normalized and vine_actions_per_state=all reach the vine sampler
    through the runner (set as command-line text), train a tabular MDP, and resume; the
    self-normalised estimator with PPO's clipped objective is a ConfigError."""
    from rl.mdp import random_mdp

    mdp = random_mdp(4, 2, gamma=0.9, seed=0, horizon=30)
    base = {"sampling": "vine", "num_envs": 1, "steps_per_env": 64, "gamma": 0.9,
            "vine_rollout_states": 8, "vine_rollout_length": 20, "baseline": "linear",
            "eval_episodes": 1, "max_kl": 0.05}
    for extra in ({"vine_estimator": "self_normalized", "vine_actions_per_state": "3"},
                  {"vine_actions_per_state": "all"}):
        out = tmp_path / "-".join(extra.values())
        result = train("trpo", mdp, steps=1500, seed=0, out=out, config={**base, **extra},
                       progress=False, plot=False)
        assert result.status == "completed"
        saved = json.loads((out / "config.json").read_text())
        assert saved["train"]["vine_actions_per_state"] == (
            3 if "vine_estimator" in extra else "all")
        assert saved["train"]["vine_estimator"] == extra.get("vine_estimator", "leave_one_out")
    cfg, _ = resolve_config("trpo", overrides={"vine_actions_per_state": "all"})
    assert cfg.vine_actions_per_state == "all"
    with pytest.raises(ConfigError, match="vine_actions_per_state"):
        resolve_config("trpo", overrides={"vine_actions_per_state": "many"})
    with pytest.raises(ConfigError, match="vine_estimator"):
        resolve_config("trpo", overrides={"vine_estimator": "snis"})
    with pytest.raises(ConfigError, match="self_normalized.*clipped"):
        resolve_config("ppo", overrides={"sampling": "vine", "vine_estimator": "self_normalized"})


def test_native_vectorization_trains_and_says_it_cannot_resume_exactly(tmp_path):
    """``vectorization=native`` (CartPole's own vector env) trains through the same runner;
    its environments' state is not checkpointed, which the run says at its start."""
    from rl.train import ResumeWarning

    with pytest.warns(ResumeWarning, match="vectorization=native"):
        result = train("trpo", "CartPole-v1", steps=512, seed=1, out=tmp_path / "run",
                       config=dict(SMALL, vectorization="native"), progress=False, plot=False)
    assert result.status == "completed" and len(result.history) == 2
    assert result.history[-1]["steps"] == 512
