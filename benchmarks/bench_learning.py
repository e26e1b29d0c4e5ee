"""Learning benchmark: final evaluation return of TRPO, NPG, PPO and VPG over seeds.

Goals (issue "algorithms", Benchmarks): mean final evaluation return over 5 seeds for
TRPO, NPG, PPO and VPG on CartPole-v1 (100k steps; TRPO ≥ 475 on at least 4 of 5
seeds), Pendulum-v1 (200k steps; TRPO ≥ −250) and Hopper-v5 (1M steps; ≥ 2000, the level
OpenAI Baselines' TRPO reports).

Every (env, algo, seed) is one call of :func:`rl.train` with the runner's defaults plus
the per-environment overrides of :data:`ENV_OVERRIDES`, in its own run folder
``<out>/runs/<env>/<algo>-seed<k>/`` (config, metrics, checkpoint, evaluation). The final
evaluation is the runner's: 10 episodes of the deterministic policy on a fresh env seeded
``seed + 10000``. Runs go to ``--jobs`` worker processes; after each finished run the
summary ``<out>/learning.json`` / ``learning.md`` is rewritten atomically (merged with
the runs recorded there, re-read before every write so that invocations running side by
side keep each other's runs), so partial results survive an interruption. A run
whose folder already holds a finished record is reused unless ``--force``.

Learning curves: ``<out>/learning_<env>.png``, the training episode return (mean over
the iteration's completed episodes) against environment steps, all algorithms on one
figure, the line the mean over seeds and the band the min/max over seeds.

Run::

    python benchmarks/bench_learning.py --envs CartPole-v1            # 4 algos x 5 seeds
    python benchmarks/bench_learning.py --envs Pendulum-v1 --algos trpo
    python benchmarks/bench_learning.py --envs Hopper-v5 --seeds 0 --steps 20000   # smoke
    python benchmarks/bench_learning.py --envs Pendulum-v1 --algos trpo --runner-defaults
    python benchmarks/bench_learning.py --envs Hopper-v5 --algos trpo --sb3-critic
    python benchmarks/bench_learning.py --envs Swimmer-v5 --algos trpo --label gamma-0.9999 \
        --set gamma=0.9999                                            # an ablation arm

``OPENBLAS_NUM_THREADS=1`` is set before numpy is imported (see the README).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy is imported

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
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

ALGOS = ("trpo", "npg", "ppo", "vpg")
#: The MuJoCo tasks of the TRPO paper's locomotion suite (and sb3-contrib's table).
MUJOCO = ("Swimmer-v5", "Hopper-v5", "Walker2d-v5", "HalfCheetah-v5", "Ant-v5")
ENV_STEPS = {"CartPole-v1": 100_000, "Pendulum-v1": 200_000,
             **{env: 1_000_000 for env in MUJOCO}}
GOAL_SEEDS = 5  # the seeds the goals are stated over (fewer: not judged)
GOALS = {
    "CartPole-v1": {"algo": "trpo", "threshold": 475.0, "min_seeds": 4,
                    "text": "TRPO eval return ≥ 475 on at least 4 of 5 seeds"},
    "Pendulum-v1": {"algo": "trpo", "threshold": -250.0, "mean": True,
                    "text": "TRPO mean eval return ≥ −250"},
    "Hopper-v5": {"algo": "trpo", "threshold": 3400.0, "mean": True, "min_each": 2500.0,
                  "text": "TRPO mean eval return ≥ 3400 and no seed below 2500"},
}
#: Settings passed to ``rl.train(config=...)`` on top of the runner's defaults, the same
#: for every algorithm on that environment. Pendulum-v1: the runner's defaults (gamma
#: 0.99, batch 4096) are replaced by rl-baselines3-zoo's tuned TRPO settings for
#: Pendulum-v1 (hyperparams/trpo.yml: gamma 0.9, 2 envs x 1024 steps = 2048 per batch);
#: its gSDE exploration has no counterpart here and is not used.
SETTINGS_LABEL = "benchmark"
DEFAULTS_LABEL = "runner defaults"
SB3_CRITIC_LABEL = "sb3 critic, float32"
ENV_OVERRIDES = {
    "Pendulum-v1": {"gamma": 0.9, "num_envs": 2, "steps_per_env": 1024},
}
#: Published TRPO results at 1M steps (mean ± std over seeds): sb3-contrib's benchmark
#: (3 seeds, v3 tasks) and Tianshou's (10 seeds).
PUBLISHED = {"Hopper-v5": ("3372 ± 215", "2046 ± 1038"),
             "Walker2d-v5": ("4502 ± 234", "3827 ± 783"),
             "HalfCheetah-v5": ("1803 ± 46", "4471 ± 805"),
             "Swimmer-v5": ("359 ± 2", "41 ± 20"),
             "Ant-v5": ("3554 ± 591", "2867 ± 708")}
#: The MuJoCo tasks have presets (:mod:`rl.presets`), which the runner applies by itself:
#: their "benchmark" settings are the runner's defaults. Runs recorded before the presets
#: existed carry ``preset: none`` and their own label (``BASELINES_LABEL``: observation
#: normalisation, as in Spinning Up / OpenAI Baselines' MuJoCo runs, and OpenAI Baselines'
#: TRPO MuJoCo batch and GAE settings, ``run_mujoco.py``: timesteps_per_batch 1024, lam 0.98,
#: here 2 envs x 512 steps).
BASELINES_LABEL = "Baselines batch, no preset"
BASELINES_HOPPER = {"obs_normalization": True, "num_envs": 2, "steps_per_env": 512,
                    "lam": 0.98, "preset": "none"}
#: sb3-contrib TRPO's critic (``n_critic_updates=10`` epochs of Adam, minibatch 128, lr
#: 1e-3) and torch's float32 arithmetic: with these settings trpokit does the same work
#: per iteration as sb3-contrib (``bench_sb3.py``); ``--sb3-critic`` adds them to
#: ``ENV_OVERRIDES`` to show how that configuration learns.
SB3_CRITIC = {"value_optimizer": "adam", "value_iterations": 10, "value_minibatch_size": 128,
              "value_learning_rate": 1e-3, "dtype": "float32"}


# ------------------------------------------------------------------------------- one run
def run_one(env: str, algo: str, seed: int, steps: int, overrides: dict, run_dir: str,
            label: str = SETTINGS_LABEL) -> dict:
    """Train one (env, algo, seed) in ``run_dir``; return the record for the summary."""
    import rl

    run_dir = Path(run_dir)
    if run_dir.exists():
        shutil.rmtree(run_dir)  # an unfinished earlier attempt: start clean
    load_start = list(os.getloadavg())
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    result = rl.train(algo, env, steps=steps, seed=seed, out=run_dir, config=dict(overrides),
                      progress=False, plot=False)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    hist = result.history
    record = {
        "env": env, "algo": algo, "seed": seed, "steps": steps,
        "overrides": dict(overrides),
        "settings": label,
        "status": result.status,
        "eval_return_mean": result.evaluation.get("eval/return_mean", math.nan),
        "eval_return_std": result.evaluation.get("eval/return_std", math.nan),
        "evaluation": result.evaluation,
        "wall_s": wall,
        "cpu_s": cpu,
        "sample_s": float(sum(r.get("time/sample_s", 0.0) for r in hist)),
        "update_s": float(sum(r.get("time/update_s", 0.0) for r in hist)),
        "iterations": len(hist),
        "final_train_return": _last_finite(r.get("episode/return_mean") for r in hist),
        "curve": {"steps": [int(r["steps"]) for r in hist],
                  "return_mean": [_num(r.get("episode/return_mean")) for r in hist]},
        "load_average_start": load_start,
        "load_average_end": list(os.getloadavg()),
        "run_dir": str(run_dir),
        "preset": json.loads((run_dir / "config.json").read_text())["train"]["preset"],
        "date": timestamp(),
        "code_version": code_version(),
        "machine": machine_info(),
    }
    write_json(run_dir / "benchmark_record.json", record)
    return record


def _num(v):
    return float(v) if v is not None and np.isfinite(v) else None


def _last_finite(values):
    out = None
    for v in values:
        if v is not None and np.isfinite(v):
            out = float(v)
    return out


# ------------------------------------------------------------------------------- summary
def _label(rec):
    return rec.get("settings", SETTINGS_LABEL)


def _key(rec):
    return f"{rec['env']}|{rec['algo']}|{rec['seed']}|{rec['steps']}|{_label(rec)}"


def summarize(records: dict, out: Path, command: str, jobs: int,
              training: tuple[str, str] | None = None) -> str:
    """Rewrite ``learning.json`` / ``learning.md`` from all ``records``; return the Markdown.

    ``training`` is ``(command, date)`` of the last invocation that trained runs (default:
    this one, ``command`` now)."""
    training = training or (command, timestamp())
    recs = sorted(records.values(), key=lambda r: (r["env"], ALGOS.index(r["algo"])
                                                   if r["algo"] in ALGOS else 99,
                                                   r["steps"], _label(r), r["seed"]))
    groups = {}
    for r in recs:
        groups.setdefault((r["env"], r["algo"], r["steps"], _label(r)), []).append(r)
    rows, summary = [], []
    for (env, algo, steps, label), rs in groups.items():
        rets = [r["eval_return_mean"] for r in rs]
        walls = [r["wall_s"] for r in rs]
        goal = GOALS.get(env)
        goal_text = ""
        entry = {"env": env, "algo": algo, "steps": steps, "settings": label,
                 "seeds": [r["seed"] for r in rs],
                 "eval_returns": rets, "mean": statistics.fmean(rets),
                 "std": statistics.stdev(rets) if len(rets) > 1 else 0.0,  # sample SD
                 "min": min(rets), "max": max(rets),
                 "wall_s_mean": statistics.fmean(walls), "wall_s": walls,
                 "overrides": rs[0]["overrides"]}
        if goal and goal["algo"] == algo and steps == ENV_STEPS.get(env) \
                and label == SETTINGS_LABEL:
            n = len(rets)
            if n < GOAL_SEEDS:  # the goals are stated over 5 seeds
                met = None
                goal_text = f"not judged: {n} seed{'s' if n > 1 else ''} of {GOAL_SEEDS}"
            elif goal.get("mean"):
                met = entry["mean"] >= goal["threshold"] and entry["min"] >= goal.get(
                    "min_each", -math.inf)
                goal_text = f"{'met' if met else 'not met'} ({n} seeds)"
            else:
                # "4 of 5" as a fraction of the seeds run: 8 of 10, ...
                need = math.ceil(goal["min_seeds"] * n / GOAL_SEEDS)
                hits = sum(r >= goal["threshold"] for r in rets)
                met = hits >= need
                goal_text = f"{hits}/{n} ≥ {goal['threshold']:g} (need {need}): " \
                            f"{'met' if met else 'not met'}"
            entry["goal"] = goal["text"]
            entry["goal_met"] = None if met is None else bool(met)
        summary.append(entry)
        rows.append([env, algo, f"{steps:,}", label, len(rs),
                     f"{entry['mean']:.1f} ± {entry['std']:.1f}",
                     " / ".join(f"{r['seed']}: {r['eval_return_mean']:.1f}" for r in rs),
                     f"{entry['min']:.1f} – {entry['max']:.1f}",
                     f"{entry['wall_s_mean']:.0f}", goal_text])
    run_rows = [[r["env"], r["algo"], r["seed"], f"{r['steps']:,}", _label(r),
                 f"{r['eval_return_mean']:.1f}", f"{r['final_train_return']:.1f}"
                 if r["final_train_return"] is not None else "–",
                 f"{r['wall_s']:.0f}", f"{r['sample_s']:.0f}", f"{r['update_s']:.0f}",
                 r["iterations"], r["status"],
                 f"{r['load_average_start'][0]:.1f} → {r['load_average_end'][0]:.1f}"]
                for r in recs]
    overrides = {env: ENV_OVERRIDES.get(env, {}) for env in sorted({r["env"] for r in recs})}
    suite, suite_md = suite_table(records, out)
    md = "\n".join([
        "# Learning benchmark: final evaluation return over seeds",
        "",
        "Final evaluation: 10 episodes of the deterministic policy (the runner's "
        "`eval/return_mean`), per seed; mean ± sample standard deviation over seeds. "
        "Goals are judged on at least 5 seeds. Wall-clock "
        f"per run with up to {jobs} runs in parallel on a shared "
        f"{os.cpu_count()}-CPU machine, OPENBLAS_NUM_THREADS=1.",
        "",
        markdown_table(["env", "algo", "steps", "settings", "seeds", "eval return",
                        "per seed", "min – max", "wall-clock per run (s)", "goal"], rows,
                       "llllrrlrrl"),
        "",
        "Settings \"benchmark\": runner defaults (`rl.train`) plus, per environment: "
        + "; ".join(f"{env}: {ov or 'none'}" for env, ov in overrides.items())
        + ", and the environment's preset where it has one (the MuJoCo tasks: "
        "`rl.presets`, recorded in each run's config.json). See `ENV_OVERRIDES` in "
        "`benchmarks/bench_learning.py` for the sources. "
        f"Settings \"{BASELINES_LABEL}\" (runs recorded before the presets existed): "
        f"{BASELINES_HOPPER}. Other labels: the settings given with `--label`/`--set`, on "
        "top of the runner's defaults (the overrides are in learning.json). "
        "Settings \"runner defaults\": `rl.train` without overrides (`--runner-defaults`). "
        f"Settings \"{SB3_CRITIC_LABEL}\": the benchmark settings plus sb3-contrib's critic "
        f"and precision, {SB3_CRITIC} (`--sb3-critic`).",
        "",
        "## MuJoCo suite",
        "",
        "TRPO at 1M steps, final evaluation (10 deterministic episodes, env seed = seed + "
        "10000, the same function for both libraries), mean ± sample std over seeds. sb3-"
        "contrib as run here: `bench_sb3.py --zoo` (`sb3_zoo.md`). Published: sb3-contrib's "
        "benchmark (3 seeds, v3 tasks) and Tianshou's (10 seeds).",
        "",
        suite_md,
        "",
        "## Runs",
        "",
        markdown_table(["env", "algo", "seed", "steps", "settings", "eval return",
                        "last training return", "wall (s)", "sampling (s)", "updates (s)",
                        "iterations", "status", "1-min load start → end"], run_rows,
                       "llrrlrrrrrrll"),
        "",
        f"Last command: `{command}`; {timestamp()}."
        + ("" if training[0] == command else
           f" Last command that trained runs: `{training[0]}`; {training[1]}."),
        "",
    ])
    write_json(out / "learning.json", {
        "benchmark": "learning", "summary": summary, "runs": recs,
        "env_overrides": ENV_OVERRIDES, "goals": GOALS, "mujoco_suite": suite,
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "machine": machine_info(), "command": command, "date": timestamp(),
        "training_command": training[0], "training_date": training[1],
    })
    write_atomic(out / "learning.md", md)
    return md


def load_sb3_zoo(out: Path) -> dict:
    """sb3-contrib's runs with rl-baselines3-zoo's settings (``bench_sb3.py --zoo``), by env."""
    try:
        runs = json.loads((out / "sb3_zoo.json").read_text())["runs"]
    except (OSError, json.JSONDecodeError, KeyError):
        return {}
    by_env = {}
    for r in runs:
        if r["steps"] == ENV_STEPS.get(r["env"]):
            by_env.setdefault(r["env"], []).append(r)
    return by_env


def _mean_sd(values):
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def suite_table(records: dict, out: Path) -> tuple[list, str]:
    """The MuJoCo suite: ours (TRPO, benchmark settings = preset) against sb3-contrib as run
    here and the published figures; the goal per task is ours' mean at least sb3's and
    ours' seed standard deviation no larger."""
    sb3 = load_sb3_zoo(out)
    entries, rows = [], []
    for env in MUJOCO:
        ours = [r["eval_return_mean"] for r in records.values()
                if r["env"] == env and r["algo"] == "trpo" and _label(r) == SETTINGS_LABEL
                and r["steps"] == ENV_STEPS[env]]
        theirs = [r["eval_return_mean"] for r in sb3.get(env, [])]
        om, osd = _mean_sd(ours)
        tm, tsd = _mean_sd(theirs)
        judged = len(ours) >= GOAL_SEEDS and len(theirs) >= 3
        met = bool(om >= tm and osd <= tsd) if judged else None
        entries.append({"env": env, "ours_seeds": len(ours), "ours_mean": om, "ours_std": osd,
                        "ours_min": min(ours) if ours else None,
                        "sb3_seeds": len(theirs), "sb3_mean": tm, "sb3_std": tsd,
                        "sb3_min": min(theirs) if theirs else None,
                        "published_sb3": PUBLISHED[env][0],
                        "published_tianshou": PUBLISHED[env][1], "goal_met": met})

        def cell(m, sd, n, lo):
            return "–" if m is None else f"{m:.0f} ± {sd:.0f} (n={n}, min {lo:.0f})"

        rows.append([env, cell(om, osd, len(ours), entries[-1]["ours_min"]),
                     cell(tm, tsd, len(theirs), entries[-1]["sb3_min"]),
                     PUBLISHED[env][0], PUBLISHED[env][1],
                     "not judged (needs ≥ 5 + ≥ 3 seeds)" if met is None
                     else ("met" if met else "not met")])
    md = markdown_table(["task (1M steps)", "trpokit TRPO (preset)",
                         "sb3-contrib TRPO, zoo settings, run here", "sb3-contrib published",
                         "Tianshou published", "goal: mean ≥ sb3's, std ≤ sb3's"], rows,
                        "llllll")
    return entries, md


def _band(ax, runs, label, alpha, linestyle="-"):
    """The runs' training-return curves on ``ax``: the mean over runs and a min-max band."""
    n = min(len(r["curve"]["steps"]) for r in runs)
    x = np.asarray(runs[0]["curve"]["steps"][:n], dtype=float)
    y = np.array([[np.nan if v is None else v for v in r["curve"]["return_mean"][:n]]
                  for r in runs], dtype=float)
    # an iteration without a finished episode carries the previous value forward
    for row in y:
        for i in range(1, n):
            if np.isnan(row[i]):
                row[i] = row[i - 1]
    line = ax.plot(x, np.nanmean(y, axis=0), linestyle=linestyle, label=label)[0]
    ax.fill_between(x, np.nanmin(y, axis=0), np.nanmax(y, axis=0), alpha=alpha,
                    color=line.get_color(), linewidth=0)


def plot_env(env: str, records: dict, out: Path) -> Path | None:
    """Learning curves of every algorithm on ``env``: mean over seeds, min/max band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = [r for r in records.values() if r["env"] == env and _label(r) == SETTINGS_LABEL]
    if not recs:
        return None
    steps_budget = max(r["steps"] for r in recs)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for algo in ALGOS:
        rs = [r for r in recs if r["algo"] == algo and r["steps"] == steps_budget]
        if not rs:
            continue
        _band(ax, rs, f"trpokit {algo.upper()} ({len(rs)} seeds)", alpha=0.2)
    zoo = [r for r in load_sb3_zoo(out).get(env, []) if r.get("curve")]
    if zoo:
        _band(ax, zoo, f"sb3-contrib TRPO, zoo settings ({len(zoo)} seeds)", alpha=0.15,
              linestyle="--")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("training episode return")
    ax.set_title(f"{env}: mean over seeds, band = min/max")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    path = out / f"learning_{env}.png"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path


# ---------------------------------------------------------------------------------- main
def _previous_summary(out: Path) -> dict:
    """The last ``learning.json`` as a dict (empty if there is none or it is unreadable)."""
    try:
        return json.loads((out / "learning.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def load_records(out: Path) -> dict:
    """The recorded runs of ``learning.json``, by key (none if it is missing or unreadable)."""
    return {_key(r): r for r in _previous_summary(out).get("runs", [])}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=list(ENV_STEPS))
    parser.add_argument("--algos", nargs="+", default=list(ALGOS), choices=ALGOS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--steps", type=int, default=None,
                        help="environment steps per run for every env (default: "
                             + ", ".join(f"{e} {s:,}" for e, s in ENV_STEPS.items()) + ")")
    parser.add_argument("--jobs", type=int, default=2, help="parallel worker processes")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results folder")
    parser.add_argument("--force", action="store_true", help="rerun finished runs")
    parser.add_argument("--summarize", action="store_true",
                        help="only rewrite learning.md, learning.json and the plots from the "
                             "recorded runs (no training)")
    parser.add_argument("--runner-defaults", action="store_true",
                        help="train with rl.train's defaults, without ENV_OVERRIDES")
    parser.add_argument("--sb3-critic", action="store_true",
                        help="add sb3-contrib's critic and float32 (SB3_CRITIC) to the "
                             "benchmark settings")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        dest="settings",
                        help="a setting on top of the runner's defaults (and the env's "
                             "preset), as 'python -m rl train --set'; repeatable; needs "
                             "--label")
    parser.add_argument("--label", default=None,
                        help="name of the settings given with --set (e.g. an ablation arm; "
                             "alone: the runner's defaults under that name, a control arm); "
                             "runs are grouped and stored by it")
    args = parser.parse_args(argv)
    if args.settings and not args.label:
        parser.error("--set needs --label: name the settings you give (e.g. "
                     "--label reward-scaling --set reward_scaling=true)")
    extra = {}
    for item in args.settings:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--set expects KEY=VALUE; got {item!r}")
        extra[key.strip()] = value.strip()
    if args.label is not None and (args.runner_defaults or args.sb3_critic):
        parser.error("--label/--set go on top of the runner's defaults; do not combine them "
                     "with --runner-defaults or --sb3-critic")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    if args.runner_defaults and args.sb3_critic:
        parser.error("--runner-defaults and --sb3-critic exclude each other: the first "
                     "drops ENV_OVERRIDES, the second adds to them; pass one")
    if len(set(args.seeds)) != len(args.seeds) or any(s < 0 for s in args.seeds):
        parser.error(f"--seeds must be distinct non-negative integers; got {args.seeds}")
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps must be a positive integer; got {args.steps}")
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    command = command_line("bench_learning.py", argv)

    records = load_records(out)
    if args.summarize:
        previous = _previous_summary(out)
        training = (previous.get("training_command", previous.get("command", "unknown")),
                    previous.get("training_date", previous.get("date", "unknown")))
        md = summarize(records, out, command, args.jobs, training) if records else ""
        for env in sorted({r["env"] for r in records.values()}):
            plot_env(env, records, out)
        print(md or f"no recorded runs in {out / 'learning.json'}")
        return records
    reused = {}  # finished runs read from their folders: newer than the summary file
    queue = []
    for env in args.envs:
        steps = args.steps or ENV_STEPS.get(env, 1_000_000)
        for algo in args.algos:
            for seed in args.seeds:
                if args.label is not None:
                    label, overrides = args.label, dict(extra)
                    suffix = "-" + "".join(c if c.isalnum() or c in "-_." else "_"
                                           for c in args.label)
                elif args.runner_defaults:
                    label, overrides, suffix = DEFAULTS_LABEL, {}, "-defaults"
                elif args.sb3_critic:
                    label, suffix = SB3_CRITIC_LABEL, "-sb3-critic"
                    overrides = {**ENV_OVERRIDES.get(env, {}), **SB3_CRITIC}
                else:
                    label, overrides, suffix = SETTINGS_LABEL, ENV_OVERRIDES.get(env, {}), ""
                run_dir = out / "runs" / env / f"{algo}-seed{seed}-{steps}{suffix}"
                rec_path = run_dir / "benchmark_record.json"
                if rec_path.exists() and not args.force:
                    rec = json.loads(rec_path.read_text())
                    if json.loads(json.dumps(overrides)) == rec.get("overrides"):
                        records[_key(rec)] = reused[_key(rec)] = rec
                        print(f"reused {env} {algo} seed {seed}: "
                              f"{rec['eval_return_mean']:.1f}")
                        continue
                    print(f"rerunning {env} {algo} seed {seed}: its folder was trained with "
                          f"{rec.get('overrides')}, not {overrides}")
                queue.append((env, algo, seed, steps, overrides, str(run_dir), label))

    print(f"{len(queue)} runs to do with {args.jobs} jobs; load {os.getloadavg()}", flush=True)
    mine = dict(reused)  # the runs this invocation read from their folders or finishes
    failed = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        pending = {pool.submit(run_one, *job): job for job in queue}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                env, algo, seed = pending.pop(fut)[:3]
                try:
                    rec = fut.result()
                except Exception as exc:  # noqa: BLE001 - one failed run must not lose the rest
                    print(f"FAILED {env} {algo} seed {seed}: {type(exc).__name__}: {exc}",
                          flush=True)
                    failed.append(f"{env} {algo} seed {seed}")
                    continue
                mine[_key(rec)] = rec
                # merge with what other invocations recorded meanwhile, then add ours
                records = {**records, **load_records(out), **mine}
                print(f"done {env} {algo} seed {seed}: eval {rec['eval_return_mean']:.1f}, "
                      f"{rec['wall_s']:.0f} s", flush=True)
                summarize(records, out, command, args.jobs)
                plot_env(env, records, out)
    records = {**records, **load_records(out), **mine}
    md = summarize(records, out, command, args.jobs) if records else ""
    for env in sorted({r["env"] for r in records.values()}):
        plot_env(env, records, out)
    print(md)
    if failed:  # the finished runs are saved; the status says some are missing
        print(f"{len(failed)} run(s) failed: {', '.join(failed)}", file=sys.stderr)
        raise SystemExit(1)
    return records


if __name__ == "__main__":
    main()
