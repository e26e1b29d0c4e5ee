"""Command line: ``python -m rl train | evaluate | plot``.

Bad input (an unknown algorithm, environment or setting, a value out of range, a corrupt
or mismatched checkpoint) prints one line naming the problem and the fix and exits with
status 2; nothing already saved is touched.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["main"]


def _parse_sets(items):
    overrides = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            from rl.train import ConfigError

            raise ConfigError(f"--set expects key=value; got {item!r}")
        overrides[key.strip()] = value.strip()
    return overrides


def _parser():
    p = argparse.ArgumentParser(prog="python -m rl", description="Policy optimization with "
                                "trust regions: train, evaluate and plot runs.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a policy (default: TRPO on CartPole-v1)")
    t.add_argument("--algo", default="trpo", help="trpo (default), npg, ppo or vpg")
    t.add_argument("--env", default="CartPole-v1", help="a Gymnasium id (default CartPole-v1)")
    t.add_argument("--steps", type=int, default=None, help="environment steps (default 100000)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", default=None, help="run folder (default runs/<algo>-<env>-...)")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="override a setting, e.g. --set max_kl=0.02 (repeatable)")
    t.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue the run in RUN_DIR from its checkpoint")
    t.add_argument("--no-progress", action="store_true", help="no progress output")
    e = sub.add_parser("evaluate", help="evaluate a run's checkpointed policy")
    e.add_argument("run_dir")
    e.add_argument("--episodes", type=int, default=10)
    e.add_argument("--seed", type=int, default=None)
    pl = sub.add_parser("plot", help="plot learning curves of one or more runs on one figure")
    pl.add_argument("run_dirs", nargs="+")
    pl.add_argument("--output", default=None, help="PNG path (default: learning_curves.png, "
                    "or RUN_DIR/learning_curve.png for one run)")
    pl.add_argument("--metric", default="episode/return_mean")
    return p


def main(argv=None):
    """Entry point; returns the exit status (0 ok, 1 run stopped, 2 bad input)."""
    from rl.train import CheckpointError, ConfigError

    args = _parser().parse_args(argv)
    try:
        if args.command == "train":
            from rl.train import train

            if args.resume is not None and args.set:
                raise ConfigError("--set cannot change a resumed run; start a new run instead")
            result = train(args.algo, args.env, steps=args.steps, seed=args.seed, out=args.out,
                           config=_parse_sets(args.set), resume=args.resume,
                           progress=not args.no_progress)
            ev = result.evaluation
            if ev:
                print(f"evaluation: mean return {ev['eval/return_mean']:.1f} ± "
                      f"{ev['eval/return_std']:.1f} over {ev['eval/episodes']} episodes")
            print(f"run folder: {result.run_dir}")
            if (result.run_dir / "learning_curve.png").exists():
                print(f"learning curve: {result.run_dir / 'learning_curve.png'}")
            if result.status != "completed":
                print(f"error: {result.status}; the last good checkpoint is kept in "
                      f"{result.run_dir}", file=sys.stderr)
                return 1
            return 0
        if args.command == "evaluate":
            from rl.train import evaluate

            if args.episodes < 1:
                raise ConfigError(f"--episodes must be >= 1; got {args.episodes}")
            ev = evaluate(args.run_dir, episodes=args.episodes, seed=args.seed)
            print(json.dumps(ev, indent=2))
            return 0
        if args.command == "plot":
            from rl.plotting import plot_runs

            output = args.output or (Path(args.run_dirs[0]) / "learning_curve.png"
                                     if len(args.run_dirs) == 1 else "learning_curves.png")
            try:
                print(f"plot: {plot_runs(args.run_dirs, output, metric=args.metric)}")
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
            return 0
    except (ConfigError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the last checkpoint is kept", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
