"""Mutation testing of the solvers and the RL identities, one source file at a time.

Each target file is mutated by mutmut (the version pinned in the ``mutation`` extra) in a
scratch copy of the checkout, against its own selection of tests, so that one file takes
minutes rather than the whole package hours. A mutant is *killed* when a selected test
fails (or times out) with it; the score is killed / (killed + survived), mutants that no
selected test reaches counted as survivors.

Usage::

    pip install -e .[mutation]
    python benchmarks/mutation.py trustregion/line_search.py   # one file
    python benchmarks/mutation.py --all                        # every target, in turn
    python benchmarks/mutation.py --list                       # targets and their tests

Each run merges its file's row into ``benchmarks/results/mutation.json`` and rewrites
``mutation.md`` from it; surviving mutants are listed there with their diffs. Runs are
sequential and single-process (``--max-children 1`` by default): the machine is shared.
Mutation runs are not part of the test suite.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import RESULTS_DIR, ROOT, write_atomic, write_json

# target file -> the tests run against its mutants (mutmut then runs, per mutant, only
# those of them that call the mutated function)
TARGETS: dict[str, list[str]] = {
    "trustregion/conjugate_gradient.py": ["tests/trustregion"],
    "trustregion/steihaug.py": ["tests/trustregion"],
    "trustregion/natural_step.py": ["tests/trustregion"],
    "trustregion/line_search.py": ["tests/trustregion"],
    "trustregion/subproblem.py": ["tests/trustregion"],
    "trustregion/minimize.py": ["tests/trustregion"],
    "trustregion/operators.py": ["tests/trustregion"],
    "trustregion/result.py": ["tests/trustregion"],
    "trustregion/_checks.py": ["tests/trustregion"],
    "rl/distributions.py": ["tests/rl/test_distributions.py", "tests/rl/test_identities.py",
                            "tests/rl/test_algorithms.py"],
    "rl/advantages.py": ["tests/rl/test_advantages.py", "tests/rl/test_estimators.py",
                         "tests/rl/test_theory_additions.py", "tests/rl/test_theory_checks.py"],
    "rl/mdp.py": ["tests/rl/test_mdp.py", "tests/rl/test_identities.py",
                  "tests/rl/test_theory_additions.py", "tests/rl/test_theory_checks.py"],
    "rl/algorithms/objective.py": ["tests/rl/test_algorithms.py",
                                   "tests/rl/test_identities.py"],
}

MUTMUT_STATUS = {"killed", "survived", "timeout", "no tests", "suspicious", "skipped",
                 "segfault", "caught by type check", "not checked"}


def _copy_checkout(dst: Path) -> None:
    """The tracked files of the checkout (working-tree contents), without docs and results."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    for rel in files:
        if rel.startswith(("trustregion/", "rl/", "tests/")) or rel == "pyproject.toml":
            src = ROOT / rel
            if src.is_file():
                (dst / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst / rel)


def _setup_cfg(target: str, tests: list[str]) -> str:
    def listing(items):
        return "\n" + "\n".join(f"    {x}" for x in items)

    return (
        "[mutmut]\n"
        f"source_paths ={listing(['trustregion', 'rl'])}\n"
        f"only_mutate ={listing([target])}\n"
        f"pytest_add_cli_args_test_selection ={listing(tests)}\n"
        f"pytest_add_cli_args ={listing(['-p', 'no:cacheprovider', '-q'])}\n"
    )


def run_target(target: str, max_children: int, keep: bool, only=None) -> dict:
    """Mutate ``target`` in a scratch copy; return its row (counts, score, survivors).

    ``only``: run just these mutants (the survivors of an earlier row, ``--survivors``)."""
    tests = TARGETS[target]
    work = Path(tempfile.mkdtemp(prefix="trpokit-mutation-"))
    try:
        _copy_checkout(work)
        # mutmut reads [tool.mutmut] from pyproject.toml, else [mutmut] from setup.cfg
        (work / "setup.cfg").write_text(_setup_cfg(target, tests))
        env = dict(os.environ, CI="true", HYPOTHESIS_PROFILE="ci", PYTHONHASHSEED="0",
                   OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children",
                               str(max_children), *(only or [])], cwd=work, env=env,
                              capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"mutmut run failed on {target}:\n{proc.stdout[-3000:]}\n"
                               f"{proc.stderr[-3000:]}")
        listing = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"],
                                 cwd=work, env=env, capture_output=True, text=True,
                                 check=True).stdout
        status = {}
        for line in listing.splitlines():
            m = re.match(r"\s*(\S+): (.+)$", line)
            if m and m.group(2).strip() in MUTMUT_STATUS:
                status[m.group(1)] = m.group(2).strip()
        if only is not None:
            status = {k: v for k, v in status.items() if k in set(only)}
        survivors = sorted(k for k, v in status.items() if v in ("survived", "no tests"))
        diffs = {}
        for name in survivors:
            shown = subprocess.run([sys.executable, "-m", "mutmut", "show", name], cwd=work,
                                   env=env, capture_output=True, text=True).stdout
            diffs[name] = "\n".join(line for line in shown.splitlines()
                                    if line.startswith(("+", "-"))
                                    and not line.startswith(("+++", "---")))
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    counts = {s: sum(v == s for v in status.values()) for s in sorted(set(status.values()))}
    killed = counts.get("killed", 0) + counts.get("timeout", 0)
    tested = killed + counts.get("survived", 0) + counts.get("no tests", 0)
    return {
        "file": target,
        "tests": tests,
        "mutants": len(status),
        "counts": counts,
        "killed": killed,
        "tested": tested,
        "score": killed / tested if tested else None,
        "survivors": diffs,
        "seconds": round(elapsed, 1),
        "command": f"python benchmarks/mutation.py {target}",
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                 capture_output=True, text=True).stdout.strip(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _merge(previous: dict, rerun: dict) -> dict:
    """The row of a full run updated by a rerun of its survivors: those the rerun killed
    move to killed; the mutant total, and the killed ones, of the full run stay."""
    newly = rerun["killed"]
    counts = dict(previous["counts"])
    counts["killed"] = counts.get("killed", 0) + rerun["counts"].get("killed", 0)
    counts["timeout"] = counts.get("timeout", 0) + rerun["counts"].get("timeout", 0)
    for key in ("survived", "no tests"):
        counts[key] = rerun["counts"].get(key, 0)
    row = dict(previous, counts=counts, killed=previous["killed"] + newly,
               survivors=rerun["survivors"],
               score=(previous["killed"] + newly) / previous["tested"])
    row["reruns"] = previous.get("reruns", []) + [
        {k: rerun[k] for k in ("date", "commit", "seconds", "killed", "tested")}]
    row["command"] = previous["command"] + f" (then --survivors at {rerun['commit']})"
    return row


def _load(path: Path) -> dict:
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    return {"files": {}}


EQUIVALENT = Path(__file__).resolve().parent / "mutation_equivalent.json"


def _equivalent() -> dict:
    """``{file: {mutant: reason}}``: surviving mutants judged equivalent (no input tells
    them from the original), each with a one-line reason; kept by hand in
    ``benchmarks/mutation_equivalent.json``."""
    if EQUIVALENT.is_file():
        return json.loads(EQUIVALENT.read_text(encoding="utf-8"))
    return {}


def _reruns(row: dict) -> str:
    return "".join(f"; survivors rerun {r['date'][:16]} ({r['commit']})"
                   for r in row.get("reruns", []))


def render_md(data: dict) -> str:
    import mutmut

    lines = [
        "# Mutation testing",
        "",
        f"mutmut {mutmut.__version__ if hasattr(mutmut, '__version__') else ''} mutates one "
        "file at a time in a scratch copy of the checkout and runs the listed tests against "
        "each mutant (Hypothesis profile `ci`, derandomized). Score = killed / (killed + "
        "survived), timeouts counted as killed, mutants no test reaches as survived; the "
        "last column also leaves out the mutants listed as equivalent below.",
        "",
        "| file | tests | mutants | killed | survived | score | score without equivalent "
        "| run (s) | date (commit) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    equivalent = _equivalent()
    total_k = total_t = 0
    for f in TARGETS:
        row = data["files"].get(f)
        if row is None:
            lines.append(f"| `{f}` | {', '.join(TARGETS[f])} | not run | | | | | | |")
            continue
        eq = len(set(equivalent.get(f, {})) & set(row["survivors"]))
        survived = row["tested"] - row["killed"]
        net = row["killed"] / (row["tested"] - eq) if row["tested"] - eq else float("nan")
        total_k += row["killed"]
        total_t += row["tested"]
        lines.append(
            f"| `{f}` | {', '.join(row['tests'])} | {row['mutants']} | {row['killed']} | "
            f"{survived} | {100 * row['score']:.1f} % | {100 * net:.1f} % | {row['seconds']} "
            f"| {row['date'][:16]} ({row.get('commit', '?')}){_reruns(row)} |"
        )
    if total_t:
        lines += ["", f"**All files run:** {total_k} / {total_t} killed "
                      f"({100 * total_k / total_t:.1f} %)."]
    lines += ["", "Command: `python benchmarks/mutation.py <file>` (one file) or "
                  "`python benchmarks/mutation.py --all`; `tox -e mutation` runs `--all`. "
                  f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, one mutmut child."]
    for f in TARGETS:
        row = data["files"].get(f)
        if not row or not row["survivors"]:
            continue
        lines += ["", f"## Surviving mutants of `{f}`", ""]
        for name, diff in row["survivors"].items():
            reason = equivalent.get(f, {}).get(name)
            tag = f" — equivalent: {reason}" if reason else ""
            lines += [f"- `{name}`{tag}", "", "  ```diff",
                      *("  " + d for d in diff.splitlines()), "  ```"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", help="target files (see --list)")
    parser.add_argument("--all", action="store_true", help="run every target in turn")
    parser.add_argument("--list", action="store_true", help="print the targets and exit")
    parser.add_argument("--max-children", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the scratch copies")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--survivors", action="store_true",
                        help="rerun only the surviving mutants of the file's last row (after "
                             "adding tests; mutants killed before stay killed) and merge")
    parser.add_argument("--render", action="store_true",
                        help="only rewrite mutation.md (and the equivalents in mutation.json)")
    args = parser.parse_args(argv)
    if args.render:
        data = _load(args.out / "mutation.json")
        data["equivalent"] = _equivalent()
        write_json(args.out / "mutation.json", data)
        write_atomic(args.out / "mutation.md", render_md(data))
        return 0
    if args.list:
        for f, tests in TARGETS.items():
            print(f"{f}: {' '.join(tests)}")
        return 0
    files = list(TARGETS) if args.all else args.files
    unknown = [f for f in files if f not in TARGETS]
    if unknown or not files:
        parser.error(f"name target files from --list (or --all); got {unknown or 'none'}")
    json_path = args.out / "mutation.json"
    for f in files:
        print(f"mutating {f} against {' '.join(TARGETS[f])} ...", flush=True)
        previous = _load(json_path)["files"].get(f)
        if args.survivors and previous is not None:
            row = _merge(previous, run_target(f, args.max_children, args.keep,
                                              only=list(previous["survivors"])))
        else:
            row = run_target(f, args.max_children, args.keep)
        data = _load(json_path)  # reread: merge into what other runs wrote meanwhile
        data["files"][f] = row
        data["equivalent"] = _equivalent()
        write_json(json_path, data)
        write_atomic(args.out / "mutation.md", render_md(data))
        print(f"  {row['killed']} / {row['tested']} killed ({100 * row['score']:.1f} %) "
              f"in {row['seconds']} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
