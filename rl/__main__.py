"""Command line: ``python -m rl train | evaluate | plot | settings | convert`` (or ``trpokit ...``).

Bad input (an unknown algorithm, environment or setting, a value out of range, a corrupt
or mismatched checkpoint) prints one line naming the problem and the fix and exits with
status 2; nothing already saved is touched. A run that stops (NaN or an exception from the
environment, a checkpoint that cannot be written) exits with 1; Ctrl-C with 130, SIGTERM
and SIGHUP with 128 + the signal number, each after saving the last completed iteration.
"""

from __future__ import annotations

import argparse
import json
import os
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


class _Given(argparse.Action):
    """Store the value and remember that it was given (a resumed run checks those)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace.given = getattr(namespace, "given", frozenset()) | {self.dest}


def _prog() -> str:
    """The name the program was started by: ``trpokit`` for the console script."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "python -m rl" if name in ("", "__main__.py", "-c", "-m") else name


def _parser():
    from rl.plotting import FORMATS
    from rl.settings import settings_help

    p = argparse.ArgumentParser(prog=_prog(), description="Policy optimization with trust "
                                "regions: train, evaluate and plot runs.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser(
        "train", help="train a policy (default: TRPO on CartPole-v1)",
        description="Train a policy. Every setting below can be changed with --set KEY=VALUE;\n"
        "'settings' prints the values a run would use and where each comes from.",
        epilog=settings_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--algo", default="trpo", action=_Given,
                   help="trpo (default), npg, ppo or vpg")
    t.add_argument("--env", default="CartPole-v1", action=_Given,
                   help="a Gymnasium id (default CartPole-v1)")
    t.add_argument("--steps", type=int, default=None,
                   help="environment steps (default 100000; training runs whole batches, so "
                   "the last one may pass it)")
    t.add_argument("--seed", type=int, default=0, action=_Given, help="the run's seed (default 0)")
    t.add_argument("--out", default=None, help="run folder (default runs/<algo>-<env>-...)")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="override a setting, e.g. --set max_kl=0.02 (repeatable; the keys are "
                   "listed below)")
    t.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue the run in RUN_DIR from its checkpoint")
    t.add_argument("--no-progress", action="store_true", help="no progress output")
    e = sub.add_parser("evaluate", help="evaluate a run's checkpointed policy",
                       description="Run the checkpointed policy of RUN_DIR deterministically "
                       "(the mode of its action distribution) and print the returns as JSON.")
    e.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by 'train'")
    e.add_argument("--episodes", type=int, default=10,
                   help="episodes to run (default 10)")
    e.add_argument("--seed", type=int, default=None,
                   help="seed of the environments and actions (default: the run's seed + 10000, "
                   "as the final evaluation of 'train')")
    e.add_argument("--no-progress", action="store_true", help="no progress output")
    pl = sub.add_parser("plot", help="plot learning curves of one or more runs on one figure",
                        description="Plot metrics against environment steps. Runs that differ "
                        "only in their seed are drawn as their mean with a min-max band.")
    pl.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folders")
    pl.add_argument("--output", default=None,
                    help=f"the figure; its extension ({', '.join(FORMATS)}) sets the format "
                    "(default: learning_curves.png, or RUN_DIR/learning_curve.png for one run)")
    pl.add_argument("--metric", action="append", default=None, metavar="KEY",
                    help="a metrics.csv column, one panel each (repeatable or comma separated; "
                    "default episode/return_mean)")
    st = sub.add_parser("settings", help="print the settings a run would use and their source",
                        description="Print every setting of a run with these options, and "
                        "where its value comes from (default, an option, --set or a preset).")
    st.add_argument("--algo", default="trpo", help="trpo (default), npg, ppo or vpg")
    st.add_argument("--env", default="CartPole-v1", help="a Gymnasium id (default CartPole-v1)")
    st.add_argument("--steps", type=int, default=None, help="environment steps")
    st.add_argument("--seed", type=int, default=0, help="the run's seed (default 0)")
    st.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                    help="override a setting (repeatable)")
    c = sub.add_parser("convert", help="convert the pickle checkpoint of an older trpokit run "
                       "folder (UNSAFE: unpickling runs any code the file names)")
    c.add_argument("run_dir", metavar="RUN_DIR",
                   help="a run folder of an older trpokit holding checkpoint.pkl")
    c.add_argument("--trust-pickle", action="store_true",
                   help="required: you trust the source of RUN_DIR/checkpoint.pkl")
    return p


def main(argv=None):
    """Entry point; returns the exit status (0 ok, 1 run stopped, 2 bad input)."""
    from rl.envs import EnvironmentFailure, NonFiniteEnvironmentError
    from rl.progress import EVAL_RETURN
    from rl.train import CheckpointError, ConfigError, RunTerminated

    args = _parser().parse_args(argv)
    try:
        if args.command == "train":
            from rl.train import train

            if args.resume is not None:
                _check_resume_arguments(args)
            _check_given_once(args)
            result = train(args.algo, args.env, steps=args.steps, seed=args.seed, out=args.out,
                           config=_parse_sets(args.set), resume=args.resume,
                           progress=not args.no_progress)
            ev = result.evaluation
            if ev:
                print(f"{EVAL_RETURN}: {ev['eval/return_mean']:.1f} ± "
                      f"{ev['eval/return_std']:.1f} over {ev['eval/episodes']} episodes")
            print(f"run folder: {result.run_dir}")
            if (result.run_dir / "learning_curve.png").exists():
                print(f"learning curve: {result.run_dir / 'learning_curve.png'}")
            if result.status != "completed":
                print(f"error: {result.status}; {_kept(result.run_dir)}", file=sys.stderr)
                return 1
            return 0
        if args.command == "evaluate":
            from rl.train import evaluate

            if args.episodes < 1:
                raise ConfigError(f"--episodes must be >= 1; got {args.episodes}")
            if args.seed is not None and args.seed < 0:
                raise ConfigError(f"--seed must be >= 0; got {args.seed}")
            try:
                ev = evaluate(args.run_dir, episodes=args.episodes, seed=args.seed,
                              progress=not args.no_progress and sys.stderr is not None)
            except (NonFiniteEnvironmentError, EnvironmentFailure) as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            print(json.dumps(ev, indent=2))
            return 0
        if args.command == "plot":
            from rl.plotting import plot_runs

            metrics = args.metric or ["episode/return_mean"]
            output = args.output or (Path(args.run_dirs[0]) / "learning_curve.png"
                                     if len(args.run_dirs) == 1 else "learning_curves.png")
            try:
                print(f"plot: {plot_runs(args.run_dirs, output, metric=metrics)}")
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
            except OSError as exc:
                raise ConfigError(f"cannot write the plot {output}: {exc.strerror or exc}; "
                                  "pass an --output in an existing, writable folder") from None
            return 0
        if args.command == "settings":
            from rl.settings import format_settings, resolved_settings

            print(format_settings(resolved_settings(args.algo, args.env, steps=args.steps,
                                                    seed=args.seed,
                                                    overrides=_parse_sets(args.set))))
            return 0
        if args.command == "convert":
            from rl.train import convert_pickle_checkpoint

            path = convert_pickle_checkpoint(args.run_dir, trust_pickle=args.trust_pickle)
            print(f"converted: {path} (checkpoint.pkl is left in place; delete it when you no "
                  "longer need it)")
            return 0
    except (ConfigError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except MemoryError:
        print("error: out of memory; a batch of num_envs x steps_per_env steps must fit in "
              "memory: lower them with --set", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        run_dir = getattr(exc, "run_dir", None)
        print("interrupted" + (f"; {_kept(run_dir)}" if run_dir is not None else ""),
              file=sys.stderr)
        return 130
    except RunTerminated as exc:
        run_dir = getattr(exc, "run_dir", None)
        print(f"{exc}" + (f"; {_kept(run_dir)}" if run_dir is not None else ""),
              file=sys.stderr)
        return 128 + exc.signum
    return 2


def _kept(run_dir) -> str:
    """What a stopped run left: its last committed iteration, if any."""
    from rl.checkpoint import CheckpointFormatError, read_manifest

    try:
        iteration = read_manifest(run_dir)["iteration"]
    except CheckpointFormatError:
        return f"no iteration completed, so {run_dir} holds no checkpoint"
    return (f"the run folder {run_dir} keeps iteration {iteration}; continue it with "
            f"--resume {run_dir}")


def _check_given_once(args) -> None:
    """``--steps`` / ``--seed`` and ``--set steps=`` / ``--set seed=`` name one setting."""
    from rl.train import ConfigError

    given = getattr(args, "given", frozenset()) | ({"steps"} if args.steps is not None else
                                                   set())
    for item in args.set or []:
        key = item.partition("=")[0].strip()
        name = key.rpartition(".")[2]
        if name in ("steps", "seed") and name in given:
            raise ConfigError(f"--{name} and --set {key}=... both set {name}; give it once")


def _check_resume_arguments(args) -> None:
    """A resumed run keeps its settings: refuse arguments that would contradict them."""
    from rl.train import ConfigError

    if args.set:
        raise ConfigError("--set cannot change a resumed run; start a new run instead")
    if args.out is not None:
        raise ConfigError(f"--out cannot be used with --resume: the run continues in "
                          f"{args.resume}")
    try:
        saved = json.loads((Path(args.resume) / "config.json").read_text())["train"]
    except (OSError, ValueError, KeyError, TypeError):
        return  # no readable config.json: the checkpoint check in train() reports the folder
    for name in sorted(getattr(args, "given", ())):
        given = getattr(args, name)
        if given != saved.get(name):
            raise ConfigError(f"--{name} {given} does not match the resumed run's {name} "
                              f"{saved.get(name)!r}; drop --{name} or start a new run")


if __name__ == "__main__":
    sys.exit(main())
