"""Follow the docs page 'Adding an algorithm': one new file in the algorithms folder, nothing
else touched, and the algorithm is registered, documented by --help, trains, resumes bit for
bit and improves an exact tabular MDP."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "a2c.py"


def test_the_a2c_of_the_docs_page_is_one_file(tmp_path):
    shutil.copytree(ROOT / "rl", tmp_path / "rl", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "trustregion", tmp_path / "trustregion",
                    ignore=shutil.ignore_patterns("__pycache__"))
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "rl").rglob("*.py"))
    shutil.copy(EXAMPLE, tmp_path / "rl" / "algorithms" / "a2c.py")
    script = textwrap.dedent("""
        import numpy as np, rl
        from rl.algorithms import ALGORITHMS, PolicyObjective
        from rl.mdp import random_mdp
        from rl.policies import TabularSoftmax
        assert rl.__file__.startswith(%r), rl.__file__
        assert "a2c" in ALGORITHMS, sorted(ALGORITHMS)
        cfg = dict(num_envs=2, steps_per_env=128, eval_episodes=0, value_iterations=2,
                   checkpoint_every=1, learning_rate=0.01)
        full = rl.train("a2c", "CartPole-v1", steps=1024, seed=0, out=%r + "/full",
                        config=cfg, progress=False, plot=False)
        rl.train("a2c", "CartPole-v1", steps=512, seed=0, out=%r + "/part", config=cfg,
                 progress=False, plot=False)
        resumed = rl.train(resume=%r + "/part", steps=1024, progress=False, plot=False)
        assert np.array_equal(full.policy.theta, resumed.policy.theta)
        assert {"a2c/kl", "a2c/entropy", "a2c/gain_before"} <= set(full.history[-1])
        # exact mode: 20 steps close about two thirds of the gap to the optimum on this
        # MDP (0.66-0.68 on seeds 1-3); require half that effect
        mdp = random_mdp(5, 3, gamma=0.9, seed=1)
        policy = TabularSoftmax(5, 3)
        algo = ALGORITHMS["a2c"](policy, None, ALGORITHMS["a2c"].config_class(
            learning_rate=0.05, entropy_coef=0.0))
        eta0 = mdp.performance(policy.probs(policy.theta))
        for _ in range(20):
            algo.policy_step(PolicyObjective.exact(mdp, policy))
        eta = mdp.performance(policy.probs(policy.theta))
        optimum = mdp.performance(mdp.optimal_policy())
        assert eta - eta0 >= (optimum - eta0) / 3, (eta0, eta, optimum)
        print("OK")
    """) % (str(tmp_path / "rl"), str(tmp_path), str(tmp_path), str(tmp_path))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("OK"), done.stderr[-3000:]
    helped = subprocess.run([sys.executable, "-m", "rl", "train", "--help"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0
    assert "a2c" in helped.stdout and "entropy_coef" in helped.stdout
    after = sorted(p.relative_to(tmp_path) for p in (tmp_path / "rl").rglob("*.py"))
    assert sorted(set(after) - set(before)) == [Path("rl/algorithms/a2c.py")]
