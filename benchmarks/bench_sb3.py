"""trpokit TRPO against sb3-contrib TRPO: final return and wall-clock, same env, steps, seeds.

Goals (issue "algorithms", Benchmarks): equal or better final return than sb3-contrib's
TRPO, and on CartPole-v1 at most 0.2x its wall-clock for 100k steps.

Both sides train in this one process, one after the other, alternating which goes first
from seed to seed (ABBA), with single-threaded numerics on both sides
(``OPENBLAS_NUM_THREADS=1`` before numpy is imported, ``torch.set_num_threads(1)``).

Settings (both sides printed into the result files):

========================  ===============================  ===============================
setting                   trpokit (``rl.train`` defaults)  sb3-contrib ``TRPO`` as run here
========================  ===============================  ===============================
envs x steps per env      8 x 512 = 4096 per batch         ``make_vec_env`` 8 envs,
                                                           ``n_steps=512`` (default 2048x1)
KL bound                  ``max_kl=0.01`` (mean KL)        ``target_kl=0.01`` (default)
CG iterations / damping   10 / 0.1                         ``cg_max_steps=10`` (default
                                                           15) / ``cg_damping=0.1``
line search               10 trials, shrink 0.8            10 trials, shrink 0.8 (default)
gamma / GAE lambda        0.99 / 0.97                      0.99 / ``gae_lambda=0.97``
                                                           (default 0.95)
advantages                normalised per batch             normalised (default)
critic fit                5 Gauss-Newton trust-region      ``n_critic_updates=10`` epochs of
                          steps, 10 CG each, full batch    Adam, lr 1e-3, minibatch 128
                                                           (defaults)
networks                  64x64 tanh policy and value,     64x64 tanh, separate pi / vf,
                          orthogonal init, log-std 0       orthogonal init, log-std 0
                                                           (defaults)
========================  ===============================  ===============================

A third side, "ours, sb3 critic", is trpokit with sb3's critic settings
(``value_optimizer="adam"``, ``value_iterations=10``, ``value_minibatch_size=128``,
``value_learning_rate=1e-3``) and its precision (``dtype="float32"``), so that the two
libraries do the same work per iteration in the same arithmetic; the default
trust-region fit in float64 costs more and fits better (see
:class:`rl.advantages.MLPValueFunction`).

Per-environment overrides of ``bench_learning.ENV_OVERRIDES`` (e.g. Pendulum-v1:
gamma 0.9, 2 x 1024 steps) are applied to both sides. The final evaluation is the same
function for both: :func:`rl.train.evaluate_policy`, 10 deterministic episodes on an env
seeded ``seed + 10000`` (sb3's policy wrapped to answer ``act``). Wall-clock is training
only: ``rl.train`` with its checkpoints and metrics files, against building the sb3
model and ``model.learn``; the evaluation is timed separately. Before the first seed each
side trains once for two batches, untimed, so that first-use costs (imports, allocations)
fall outside the timings (``--no-warmup`` skips it). Observation normalisation, where
``ENV_OVERRIDES`` turns it on for ours (Hopper-v5), is sb3's ``VecNormalize`` on its side
(observations only, clipped at 10, as ours), applied in its evaluation as well.

Run::

    python benchmarks/bench_sb3.py                       # CartPole-v1, 100k, seeds 0-4
    python benchmarks/bench_sb3.py --zoo --envs Hopper-v5 --seeds 0 1 2   # zoo settings, 1M

Results: ``benchmarks/results/sb3.json`` and ``sb3.md``, rewritten after each seed and
merged with the runs already recorded there (a rerun of the same env, seed and steps
replaces the old record).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy is imported

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from _common import (  # noqa: E402
    RESULTS_DIR,
    code_version,
    command_line,
    machine_info,
    markdown_table,
    timestamp,
    write_atomic,
    write_json,
)
from bench_learning import ENV_OVERRIDES, ENV_STEPS, SB3_CRITIC  # noqa: E402

GOAL_WALL_RATIO = 0.2


class SB3Actor:
    """An sb3 model seen through trpokit's ``act`` interface, for ``evaluate_policy``;
    ``normalizer`` (a ``VecNormalize``) normalises the observations as in training."""

    def __init__(self, model, normalizer=None):
        self.model = model
        self.normalizer = normalizer

    def act(self, obs, rng, deterministic=True):
        if self.normalizer is not None:
            obs = self.normalizer.normalize_obs(obs)
        action, _ = self.model.predict(obs, deterministic=deterministic)
        return action


def ours_settings(env: str) -> dict:
    from rl.train import resolve_config

    cfg, algo_cfg = resolve_config("trpo", env, overrides=ENV_OVERRIDES.get(env, {}))
    return {"num_envs": cfg.num_envs, "steps_per_env": cfg.steps_per_env,
            "batch": cfg.batch_size, "max_kl": algo_cfg.max_kl, "damping": algo_cfg.damping,
            "cg_iterations": algo_cfg.cg_iterations, "max_backtracks": algo_cfg.max_backtracks,
            "backtrack_shrink": algo_cfg.backtrack_shrink, "gamma": algo_cfg.gamma,
            "lam": algo_cfg.lam, "hidden_sizes": list(cfg.hidden_sizes),
            "baseline": cfg.baseline, "value_fit": "MLPValueFunction default (trust-region, "
            "5 steps x 10 CG)", "obs_normalization": cfg.obs_normalization}


def sb3_kwargs(ours: dict) -> tuple[int, dict]:
    """``(n_envs, TRPO keyword arguments)`` matched to our settings ``ours`` (from
    :func:`ours_settings`; see the module docstring)."""
    kwargs = {"n_steps": ours["steps_per_env"], "target_kl": ours["max_kl"],
              "cg_max_steps": ours["cg_iterations"], "cg_damping": ours["damping"],
              "line_search_max_iter": ours["max_backtracks"],
              "line_search_shrinking_factor": ours["backtrack_shrink"],
              "gamma": ours["gamma"], "gae_lambda": ours["lam"]}
    return ours["num_envs"], kwargs


def run_ours(env: str, seed: int, steps: int, run_dir: Path, critic: dict | None = None) -> dict:
    import rl
    from rl.train import evaluate_policy

    if run_dir.exists():
        shutil.rmtree(run_dir)
    config = dict(ENV_OVERRIDES.get(env, {}), eval_episodes=0, **(critic or {}))
    t0 = time.perf_counter()
    result = rl.train("trpo", env, steps=steps, seed=seed, out=run_dir, config=config,
                      progress=False, plot=False)
    wall = time.perf_counter() - t0
    t1 = time.perf_counter()
    ev = evaluate_policy(result.policy, env, episodes=10, seed=seed + 10_000)
    return {"eval_return_mean": ev["eval/return_mean"], "evaluation": ev, "train_wall_s": wall,
            "eval_wall_s": time.perf_counter() - t1,
            "steps_done": int(result.history[-1]["steps"]) if result.history else 0,
            "update_s": float(sum(r.get("time/update_s", 0.0) for r in result.history)),
            "sample_s": float(sum(r.get("time/sample_s", 0.0) for r in result.history))}


def run_sb3(env: str, seed: int, steps: int) -> tuple[dict, dict]:
    from sb3_contrib import TRPO
    from stable_baselines3.common.env_util import make_vec_env

    from rl.train import evaluate_policy

    ours = ours_settings(env)
    n_envs, kwargs = sb3_kwargs(ours)
    normalize = bool(ours["obs_normalization"])
    t0 = time.perf_counter()
    venv = make_vec_env(env, n_envs=n_envs, seed=seed)
    if normalize:  # as ours: running mean / std of the observations, clipped at 10
        from stable_baselines3.common.vec_env import VecNormalize

        venv = VecNormalize(venv, norm_obs=True, norm_reward=False, clip_obs=10.0,
                            gamma=kwargs["gamma"])
    model = TRPO("MlpPolicy", venv, seed=seed, device="cpu", verbose=0, **kwargs)
    model.learn(total_timesteps=steps)
    wall = time.perf_counter() - t0
    venv.close()
    t1 = time.perf_counter()
    if normalize:
        venv.training = False  # evaluation reads the statistics, it does not update them
    ev = evaluate_policy(SB3Actor(model, venv if normalize else None), env, episodes=10,
                         seed=seed + 10_000)
    settings = {"n_envs": n_envs, "obs_normalization": "VecNormalize(norm_obs=True, "
                "norm_reward=False, clip_obs=10)" if normalize else False,
                **{k: getattr(model, k) for k in (
        "n_steps", "batch_size", "target_kl", "cg_max_steps", "cg_damping",
        "line_search_max_iter", "line_search_shrinking_factor", "n_critic_updates",
        "gamma", "gae_lambda", "normalize_advantage", "sub_sampling_factor")},
        "learning_rate": float(model.learning_rate),
        "net_arch": str(model.policy.net_arch),
        "activation_fn": model.policy.activation_fn.__name__,
        "ortho_init": bool(model.policy.ortho_init)}
    return ({"eval_return_mean": ev["eval/return_mean"], "evaluation": ev,
             "train_wall_s": wall, "eval_wall_s": time.perf_counter() - t1,
             "steps_done": int(model.num_timesteps)}, settings)


def write_results(args, records, settings, command, load_before) -> str:
    rows, summary = [], {}
    for env, steps in sorted({(r["env"], r["steps"]) for r in records}):
        rs = sorted((r for r in records if (r["env"], r["steps"]) == (env, steps)),
                    key=lambda r: r["seed"])
        for r in rs:
            m = r.get("ours_sb3_critic")
            rows.append([env, r["seed"], f"{r['steps']:,}",
                         f"{r['ours']['eval_return_mean']:.1f}",
                         f"{m['eval_return_mean']:.1f}" if m else "–",
                         f"{r['sb3']['eval_return_mean']:.1f}",
                         f"{r['ours']['train_wall_s']:.1f}",
                         f"{m['train_wall_s']:.1f}" if m else "–",
                         f"{r['sb3']['train_wall_s']:.1f}",
                         f"{r['wall_ratio']:.2f}",
                         f"{m['train_wall_s'] / r['sb3']['train_wall_s']:.2f}" if m else "–",
                         r["first"], f"{r['load_average'][0]:.1f}"])
        ours_ret = [r["ours"]["eval_return_mean"] for r in rs]
        sb3_ret = [r["sb3"]["eval_return_mean"] for r in rs]
        ours_w = [r["ours"]["train_wall_s"] for r in rs]
        sb3_w = [r["sb3"]["train_wall_s"] for r in rs]
        ratio = statistics.fmean(ours_w) / statistics.fmean(sb3_w)
        matched = [r["ours_sb3_critic"] for r in rs if "ours_sb3_critic" in r]
        m_sb3_w = [r["sb3"]["train_wall_s"] for r in rs if "ours_sb3_critic" in r]
        m_ratio = (statistics.fmean(m["train_wall_s"] for m in matched) / statistics.fmean(m_sb3_w)
                   if matched else None)
        summary[f"{env} {steps}"] = {
                        "sb3_critic_seeds": len(matched),
                        "ours_sb3_critic_return_mean": (statistics.fmean(
                            m["eval_return_mean"] for m in matched) if matched else None),
                        "ours_sb3_critic_wall_s_mean": (statistics.fmean(
                            m["train_wall_s"] for m in matched) if matched else None),
                        "sb3_critic_wall_ratio_of_means": m_ratio,
                        "sb3_critic_return_goal_met": (statistics.fmean(
                            m["eval_return_mean"] for m in matched)
                            >= statistics.fmean(r["sb3"]["eval_return_mean"] for r in rs
                                                if "ours_sb3_critic" in r)
                            if matched else None),
                        "sb3_critic_wall_goal_met": (m_ratio <= GOAL_WALL_RATIO
                                                     if matched and (env, steps)
                                                     == ("CartPole-v1", 100_000) else None),
                        "env": env, "steps": steps, "seeds": [r["seed"] for r in rs],
                        "ours_return_mean": statistics.fmean(ours_ret),
                        "sb3_return_mean": statistics.fmean(sb3_ret),
                        "ours_wall_s_mean": statistics.fmean(ours_w),
                        "sb3_wall_s_mean": statistics.fmean(sb3_w),
                        "wall_ratio_of_means": ratio,
                        "wall_ratio_median": statistics.median(r["wall_ratio"] for r in rs),
                        "return_goal_met": statistics.fmean(ours_ret)
                        >= statistics.fmean(sb3_ret),
                        "wall_goal_met": (ratio <= GOAL_WALL_RATIO
                                          if (env, steps) == ("CartPole-v1", 100_000)
                                          else None)}
    def opt(v, fmt):
        return "–" if v is None else format(v, fmt)

    sum_rows = [[s["env"], f"{s['steps']:,}", len(s["seeds"]), f"{s['ours_return_mean']:.1f}",
                 opt(s["ours_sb3_critic_return_mean"], ".1f"),
                 f"{s['sb3_return_mean']:.1f}", f"{s['ours_wall_s_mean']:.1f}",
                 opt(s["ours_sb3_critic_wall_s_mean"], ".1f"),
                 f"{s['sb3_wall_s_mean']:.1f}", f"{s['wall_ratio_of_means']:.2f}",
                 opt(s["sb3_critic_wall_ratio_of_means"], ".2f"),
                 _goal(s["return_goal_met"], s["sb3_critic_return_goal_met"]),
                 _goal(s["wall_goal_met"], s["sb3_critic_wall_goal_met"])]
                for s in summary.values()]
    result = {"benchmark": "sb3", "summary": summary, "runs": records, "settings": settings,
              "goal": f"return ours >= sb3; CartPole-v1 wall-clock ours / sb3 <= "
                      f"{GOAL_WALL_RATIO}",
              "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
              "torch_threads": settings.get("torch_threads"),
              "machine": machine_info(), "load_average_before": load_before,
              "command": command, "date": timestamp()}
    md = "\n".join([
        "# trpokit TRPO vs sb3-contrib TRPO",
        "",
        "Same env, steps and seeds, trained one after the other in one process (first side "
        "alternating by seed), single-threaded numerics on both sides (OPENBLAS_NUM_THREADS=1, "
        "torch.set_num_threads(1)). Eval: `rl.train.evaluate_policy`, 10 deterministic "
        "episodes, env seed = seed + 10000, for both. Wall-clock = training only. "
        "\"ours\" is `rl.train` with its defaults (trust-region value fit, float64); \"ours, "
        "sb3 critic\" fits the value network as sb3 does and computes in float32 as torch "
        "does (" + str(SB3_CRITIC) + "), so both libraries do the same work per iteration "
        "in the same precision. The goals are judged on both.",
        "",
        markdown_table(["env", "steps", "seeds", "return, ours", "return, ours sb3 critic",
                        "return, sb3", "wall ours (s)", "wall ours sb3 critic (s)",
                        "wall sb3 (s)", "wall ours / sb3 (ratio of means)",
                        "wall ours sb3 critic / sb3 (ratio of means)",
                        "return goal (≥ sb3)", f"wall goal (≤ {GOAL_WALL_RATIO})"], sum_rows,
                       "lrrrrrrrrrrll"),
        "",
        markdown_table(["env", "seed", "steps", "return, ours", "return, ours sb3 critic",
                        "return, sb3", "wall ours (s)", "wall ours sb3 critic (s)",
                        "wall sb3 (s)", "ours / sb3", "ours sb3 critic / sb3", "first",
                        "1-min load"], rows, "lrrrrrrrrrrlr"),
        "",
        "Settings, ours: `" + str(settings.get("ours")) + "`.",
        "",
        "Settings, sb3-contrib " + str(settings.get("sb3_contrib_version")) + " (torch "
        + str(settings.get("torch_version")) + "): `" + str(settings.get("sb3")) + "`.",
        "",
        f"Command: `{command}`; {timestamp()}; load average before {load_before}, now "
        f"{result['machine']['load_average']} ({result['machine']['cpu_count']} CPUs).",
        "",
    ])
    write_json(args.out / "sb3.json", result)
    write_atomic(args.out / "sb3.md", md)
    return md


def _goal(ours, matched) -> str:
    """``"ours: met / sb3 critic: not met"``; ``–`` where a goal does not apply."""
    def word(v):
        return "–" if v is None else ("met" if v else "not met")

    return f"ours: {word(ours)} / sb3 critic: {word(matched)}"


def load_previous(out: Path, settings: dict) -> tuple[list, dict]:
    """Runs and settings already in ``sb3.json``; a new run of the same (env, seed, steps)
    replaces its old record, other records are kept."""
    path = out / "sb3.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return [], settings
    old = data.get("settings", {})
    for side in ("ours", "sb3"):
        settings[side] = dict(old.get(side, {}))
    return list(data.get("runs", [])), settings


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=["CartPole-v1"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--steps", type=int, default=None,
                        help="environment steps per run (default: CartPole-v1 100k, "
                             "Pendulum-v1 200k)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--no-warmup", action="store_true",
                        help="skip the untimed short run of each side before the first seed")
    parser.add_argument("--zoo", action="store_true",
                        help="learning runs of sb3-contrib alone with rl-baselines3-zoo's "
                             "MuJoCo settings (results: sb3_zoo.json / sb3_zoo.md; see "
                             "sb3_zoo.py); default steps 1M")
    args = parser.parse_args(argv)
    if len(set(args.seeds)) != len(args.seeds) or any(s < 0 for s in args.seeds):
        parser.error(f"--seeds must be distinct non-negative integers; got {args.seeds}")
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps must be a positive integer; got {args.steps}")

    if args.zoo:
        import sb3_zoo

        return {"runs": sb3_zoo.main(args.envs, args.seeds, args.steps, args.out, argv)}
    import sb3_contrib
    import torch

    torch.set_num_threads(1)
    command = command_line("bench_sb3.py", argv)
    load_before = machine_info()["load_average"]
    settings = {"torch_version": torch.__version__, "torch_threads": torch.get_num_threads(),
                "sb3_contrib_version": sb3_contrib.__version__}
    records, settings = load_previous(args.out, settings)
    if not args.no_warmup:  # first-use costs (imports, allocations) outside the timings
        warm = args.out / "runs" / "sb3" / "warmup"
        batch = ours_settings(args.envs[0])["batch"]
        run_ours(args.envs[0], 0, 2 * batch, warm / "ours")
        run_ours(args.envs[0], 0, 2 * batch, warm / "ours-sb3-critic", SB3_CRITIC)
        run_sb3(args.envs[0], 0, 2 * batch)
        shutil.rmtree(warm, ignore_errors=True)
    k = 0
    for env in args.envs:
        steps = args.steps or ENV_STEPS.get(env, 1_000_000)
        settings.setdefault("ours", {})[env] = ours_settings(env)
        for seed in args.seeds:
            first = "ours" if k % 2 == 0 else "sb3"
            k += 1
            load = list(os.getloadavg())
            run_dir = args.out / "runs" / "sb3" / env / f"trpokit-seed{seed}-{steps}"
            matched_dir = run_dir.with_name(run_dir.name + "-sb3-critic")
            if first == "ours":
                ours = run_ours(env, seed, steps, run_dir)
                matched = run_ours(env, seed, steps, matched_dir, SB3_CRITIC)
                theirs, sb3_set = run_sb3(env, seed, steps)
            else:
                theirs, sb3_set = run_sb3(env, seed, steps)
                matched = run_ours(env, seed, steps, matched_dir, SB3_CRITIC)
                ours = run_ours(env, seed, steps, run_dir)
            settings.setdefault("sb3", {})[env] = sb3_set
            rec = {"env": env, "seed": seed, "steps": steps, "first": first,
                   "ours": ours, "ours_sb3_critic": matched, "sb3": theirs,
                   "wall_ratio": ours["train_wall_s"] / theirs["train_wall_s"],
                   "load_average": load, "load_average_end": list(os.getloadavg()),
                   "command": command, "date": timestamp(), "code_version": code_version()}
            records = [r for r in records
                       if (r["env"], r["seed"], r["steps"]) != (env, seed, steps)] + [rec]
            print(f"{env} seed {seed}: ours {ours['eval_return_mean']:.1f} in "
                  f"{ours['train_wall_s']:.1f} s, ours with sb3's critic "
                  f"{matched['eval_return_mean']:.1f} in {matched['train_wall_s']:.1f} s, "
                  f"sb3 {theirs['eval_return_mean']:.1f} in "
                  f"{theirs['train_wall_s']:.1f} s", flush=True)
            md = write_results(args, records, settings, command, load_before)
    print(md)
    return {"runs": records}


if __name__ == "__main__":
    main()
