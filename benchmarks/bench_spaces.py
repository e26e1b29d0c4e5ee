"""trpokit TRPO against sb3-contrib TRPO on image observations: MinAtar games, same steps and
seeds, final return and wall-clock.

Goal (the spaces issue, Benchmarks): on MinAtar Breakout at 1M steps over at least 3 seeds,
a return at least sb3-contrib's with a wall-clock at most its.

Both sides train in this one process, one after the other, alternating which goes first
from seed to seed, with single-threaded numerics (``OPENBLAS_NUM_THREADS=1`` before numpy is
imported, ``torch.set_num_threads(1)``), on the same environment
(:func:`rl.image_envs.make_minatar_env`: 10 x 10 x n ``bool`` frames, the game's own
actions) and the same torso:

========================  ===============================  ===============================
setting                   trpokit (``rl.train``)           sb3-contrib ``TRPO("CnnPolicy")``
========================  ===============================  ===============================
envs x steps per env      8 x 512 = 4096 per batch         ``make_vec_env`` 8 envs,
                                                           ``n_steps=512``
torso (policy and value)  MinAtar: conv 16 x 3 x 3,        the same as a features
                          stride 1, ReLU, dense 128 ReLU   extractor (``MinAtarCNN``),
                          (:func:`rl.conv.conv_torso_for`)  separate for pi and vf,
                                                           ``normalize_images=False``
KL bound, CG, line        ``max_kl=0.01``, 10 CG, damping  ``target_kl=0.01``, 10 CG,
search                    0.1, 10 trials x 0.8             damping 0.1, 10 trials x 0.8
gamma / GAE lambda        0.99 / 0.97                      0.99 / 0.97
critic fit                trpokit's default (trust-region  ``n_critic_updates=10`` epochs of
                          Gauss-Newton, 5 steps)           Adam (sb3-contrib's default)
========================  ===============================  ===============================

A third side, "ours, sb3 critic", is trpokit with sb3's critic fit and precision
(``bench_learning.SB3_CRITIC``: 10 epochs of Adam, minibatch 128, float32), so that both
libraries do the same work per iteration.

The evaluation is the same function for all, :func:`rl.train.evaluate_policy`: 10
deterministic episodes on an environment seeded ``seed + 10000``, cut at 10 000 steps (a
deterministic policy can keep a MinAtar game alive forever). Wall-clock is training only.

Run::

    python benchmarks/bench_spaces.py                              # breakout, 1M, seeds 0 1 2
    python benchmarks/bench_spaces.py --steps 4096 --seeds 0       # a check of the script

Needs ``pip install -e ".[minatar]"`` and sb3-contrib. Results:
``benchmarks/results/spaces.json`` and ``spaces.md``, rewritten after each seed and merged
with the runs recorded there (a rerun of the same game, seed and steps replaces its record).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy is imported

import argparse  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from _common import (  # noqa: E402
    RESULTS_DIR,
    command_line,
    machine_info,
    markdown_table,
    timestamp,
    write_atomic,
    write_json,
)
from bench_learning import SB3_CRITIC  # noqa: E402

SETTINGS = {"num_envs": 8, "steps_per_env": 512, "max_kl": 0.01, "cg_iterations": 10,
            "damping": 0.1, "max_backtracks": 10, "backtrack_shrink": 0.8, "gamma": 0.99,
            "lam": 0.97}
EVAL_EPISODES, EVAL_MAX_STEPS = 10, 10_000


def _env(game: str):
    from rl.image_envs import make_minatar_env

    return functools.partial(make_minatar_env, game)


class SB3Actor:
    """An sb3 model seen through trpokit's ``act`` interface, for ``evaluate_policy``."""

    def __init__(self, model):
        self.model = model

    def act(self, obs, rng, deterministic=True):
        action, _ = self.model.predict(obs.astype("float32"), deterministic=deterministic)
        return action


def run_ours(game: str, seed: int, steps: int, run_dir: Path, critic: dict | None = None) -> dict:
    import warnings

    import rl
    from rl.train import ResumeWarning, evaluate_policy

    if run_dir.exists():
        shutil.rmtree(run_dir)
    config = dict(SETTINGS, eval_episodes=0, **(critic or {}))
    t0 = time.perf_counter()
    with warnings.catch_warnings():  # MinAtar's game object is not checkpointed exactly
        warnings.simplefilter("ignore", ResumeWarning)
        result = rl.train("trpo", _env(game), steps=steps, seed=seed, out=run_dir,
                          config=config, progress=False, plot=False)
    wall = time.perf_counter() - t0
    ev = evaluate_policy(result.policy, _env(game), episodes=EVAL_EPISODES, seed=seed + 10_000,
                         max_steps=EVAL_MAX_STEPS)
    return {"eval_return_mean": ev["eval/return_mean"], "evaluation": ev, "train_wall_s": wall,
            "steps_done": int(result.history[-1]["steps"]) if result.history else 0,
            "sample_s": float(sum(r.get("time/sample_s", 0.0) for r in result.history)),
            "update_s": float(sum(r.get("time/update_s", 0.0) for r in result.history)),
            "torso": repr(result.policy.net)}


def _minatar_extractor():
    """sb3 features extractor with our MinAtar torso (frames HWC in, channels moved first)."""
    import torch
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

    class MinAtarCNN(BaseFeaturesExtractor):
        def __init__(self, observation_space, features_dim=128):
            super().__init__(observation_space, features_dim)
            h, w, c = observation_space.shape
            self.conv = torch.nn.Sequential(torch.nn.Conv2d(c, 16, 3, stride=1),
                                            torch.nn.ReLU(), torch.nn.Flatten())
            self.linear = torch.nn.Sequential(
                torch.nn.Linear(16 * (h - 2) * (w - 2), features_dim), torch.nn.ReLU())

        def forward(self, obs):
            return self.linear(self.conv(obs.permute(0, 3, 1, 2).float()))

    return MinAtarCNN


def run_sb3(game: str, seed: int, steps: int) -> tuple[dict, dict]:
    import torch
    from sb3_contrib import TRPO
    from stable_baselines3.common.env_util import make_vec_env

    from rl.train import evaluate_policy

    torch.set_num_threads(1)
    kwargs = {"n_steps": SETTINGS["steps_per_env"], "target_kl": SETTINGS["max_kl"],
              "cg_max_steps": SETTINGS["cg_iterations"], "cg_damping": SETTINGS["damping"],
              "line_search_max_iter": SETTINGS["max_backtracks"],
              "line_search_shrinking_factor": SETTINGS["backtrack_shrink"],
              "gamma": SETTINGS["gamma"], "gae_lambda": SETTINGS["lam"]}
    policy_kwargs = {"features_extractor_class": _minatar_extractor(),
                     "normalize_images": False, "share_features_extractor": False,
                     "net_arch": []}
    t0 = time.perf_counter()
    venv = make_vec_env(_env(game), n_envs=SETTINGS["num_envs"], seed=seed)
    model = TRPO("CnnPolicy", venv, seed=seed, device="cpu", verbose=0,
                 policy_kwargs=policy_kwargs, **kwargs)
    model.learn(total_timesteps=steps)
    wall = time.perf_counter() - t0
    venv.close()
    ev = evaluate_policy(SB3Actor(model), _env(game), episodes=EVAL_EPISODES,
                         seed=seed + 10_000, max_steps=EVAL_MAX_STEPS)
    settings = {"policy": "CnnPolicy", "features_extractor": "MinAtarCNN (conv 16x3x3, "
                "dense 128)", "n_envs": SETTINGS["num_envs"], **kwargs,
                "n_critic_updates": model.n_critic_updates,
                "learning_rate": float(model.learning_rate)}
    return ({"eval_return_mean": ev["eval/return_mean"], "evaluation": ev,
             "train_wall_s": wall, "steps_done": int(model.num_timesteps)}, settings)


def write_results(out: Path, records: list, settings: dict, command: str) -> str:
    summary, rows = {}, []
    for game, steps in sorted({(r["game"], r["steps"]) for r in records}):
        rs = sorted((r for r in records if (r["game"], r["steps"]) == (game, steps)),
                    key=lambda r: r["seed"])
        for r in rs:
            m = r["ours_sb3_critic"]
            rows.append([game, r["seed"], f"{steps:,}", f"{r['ours']['eval_return_mean']:.2f}",
                         f"{m['eval_return_mean']:.2f}", f"{r['sb3']['eval_return_mean']:.2f}",
                         f"{r['ours']['train_wall_s']:.1f}", f"{m['train_wall_s']:.1f}",
                         f"{r['sb3']['train_wall_s']:.1f}",
                         f"{r['ours']['train_wall_s'] / r['sb3']['train_wall_s']:.2f}",
                         f"{m['train_wall_s'] / r['sb3']['train_wall_s']:.2f}",
                         r["first"], f"{r['load_average'][0]:.1f}"])
        ours = statistics.fmean(r["ours"]["eval_return_mean"] for r in rs)
        sb3 = statistics.fmean(r["sb3"]["eval_return_mean"] for r in rs)
        sb3_wall = statistics.fmean(r["sb3"]["train_wall_s"] for r in rs)
        ratio = statistics.fmean(r["ours"]["train_wall_s"] for r in rs) / sb3_wall
        matched = statistics.fmean(r["ours_sb3_critic"]["eval_return_mean"] for r in rs)
        matched_ratio = statistics.fmean(
            r["ours_sb3_critic"]["train_wall_s"] for r in rs) / sb3_wall
        full = steps >= 1_000_000 and len(rs) >= 3
        summary[f"{game} {steps}"] = {
            "game": game, "steps": steps, "seeds": [r["seed"] for r in rs],
            "ours_return_mean": ours, "sb3_return_mean": sb3, "wall_ratio_of_means": ratio,
            "ours_sb3_critic_return_mean": matched,
            "sb3_critic_wall_ratio_of_means": matched_ratio,
            "return_goal_met": ours >= sb3 if full else None,
            "wall_goal_met": ratio <= 1.0 if full else None}
    sum_rows = [[s["game"], f"{s['steps']:,}", len(s["seeds"]), f"{s['ours_return_mean']:.2f}",
                 f"{s['ours_sb3_critic_return_mean']:.2f}", f"{s['sb3_return_mean']:.2f}",
                 f"{s['wall_ratio_of_means']:.2f}", f"{s['sb3_critic_wall_ratio_of_means']:.2f}",
                 {None: "– (not the goal's budget)", True: "met", False: "not met"}[
                     s["return_goal_met"]],
                 {None: "–", True: "met", False: "not met"}[s["wall_goal_met"]]]
                for s in summary.values()]
    result = {"benchmark": "spaces", "summary": summary, "runs": records, "settings": settings,
              "goal": "MinAtar Breakout, 1M steps, >= 3 seeds: return ours >= sb3 and "
                      "wall-clock ours / sb3 <= 1",
              "machine": machine_info(), "command": command, "date": timestamp()}
    md = "\n".join([
        "# trpokit TRPO vs sb3-contrib TRPO on MinAtar (images)",
        "",
        "Same game, steps and seeds, trained one after the other in one process (first side "
        "alternating by seed), single-threaded numerics on both sides, the MinAtar torso on "
        "both (conv 16 x 3 x 3, dense 128). Eval: `rl.train.evaluate_policy`, "
        f"{EVAL_EPISODES} deterministic episodes cut at {EVAL_MAX_STEPS:,} steps, env seed = "
        "seed + 10000. Wall-clock = training only. The goals are judged only on runs of the "
        "goal's budget (1M steps, at least 3 seeds); shorter runs check the script.",
        "",
        markdown_table(["game", "steps", "seeds", "return, ours", "return, ours sb3 critic",
                        "return, sb3", "wall ours / sb3 (ratio of means)",
                        "wall ours sb3 critic / sb3", "return goal (ours ≥ sb3)",
                        "wall goal (ours ≤ 1)"], sum_rows, "lrrrrrrrll"),
        "",
        markdown_table(["game", "seed", "steps", "return, ours", "return, ours sb3 critic",
                        "return, sb3", "wall ours (s)", "wall ours sb3 critic (s)",
                        "wall sb3 (s)", "ours / sb3", "ours sb3 critic / sb3", "first",
                        "1-min load"], rows, "lrrrrrrrrrrlr"),
        "",
        "Settings, ours: `" + str(settings.get("ours")) + "`; ours, sb3 critic: the same with `"
        + str(settings.get("ours_sb3_critic")) + "`.",
        "",
        "Settings, sb3-contrib: `" + str(settings.get("sb3")) + "`.",
        "",
        f"Command: `{command}`; {timestamp()}; load average {result['machine']['load_average']} "
        f"({result['machine']['cpu_count']} CPUs).",
        "",
    ])
    write_json(out / "spaces.json", result)
    write_atomic(out / "spaces.md", md)
    return md


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--game", default="breakout",
                        choices=["asterix", "breakout", "freeway", "seaquest", "space_invaders"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--run-dir", type=Path, default=Path("runs") / "bench_spaces")
    args = parser.parse_args(argv)
    command = command_line("bench_spaces.py", argv)
    try:
        records = json.loads((args.out / "spaces.json").read_text())["runs"]
    except (OSError, json.JSONDecodeError, KeyError):
        records = []
    settings = {"ours": dict(SETTINGS, torso="rl.conv.conv_torso_for (MinAtar)",
                             value_fit="ConvValueFunction default (trust-region)"),
                "ours_sb3_critic": dict(SB3_CRITIC)}
    for i, seed in enumerate(args.seeds):
        order = (("ours", "ours_sb3_critic", "sb3") if i % 2 == 0
                 else ("sb3", "ours_sb3_critic", "ours"))
        record = {"game": args.game, "seed": seed, "steps": args.steps, "first": order[0],
                  "load_average": list(os.getloadavg())}
        for side in order:
            if side != "sb3":
                record[side] = run_ours(args.game, seed, args.steps,
                                        args.run_dir / f"{args.game}-seed{seed}-{side}",
                                        SB3_CRITIC if side == "ours_sb3_critic" else None)
            else:
                record["sb3"], settings["sb3"] = run_sb3(args.game, seed, args.steps)
            print(f"{args.game} seed {seed} {side}: return "
                  f"{record[side]['eval_return_mean']:.2f}, wall "
                  f"{record[side]['train_wall_s']:.1f} s", flush=True)
        records = [r for r in records if (r["game"], r["seed"], r["steps"]) !=
                   (args.game, seed, args.steps)] + [record]
        print(write_results(args.out, records, settings, command), flush=True)
    return {"runs": records}


if __name__ == "__main__":
    main()
