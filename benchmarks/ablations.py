"""The TRPO paper's ablations, summarised from the learning benchmark's recorded runs.

The runs are made by ``bench_learning.py`` with one ``--label`` per arm (``abl-...``), the
same steps and seeds for every arm of a task; this script reads ``learning.json`` and
compares each arm with its control:

========================  =============================  ===============================
arm                        control                        paper's question (§8)
========================  =============================  ===============================
``abl-max-kl``             ``abl-base``                   mean-KL constraint vs max-KL
``abl-fisher-0.1``         ``abl-base``                   Fisher-vector products on 10 %
``abl-npg-normalised``     ``abl-base``                   natural gradient (normalised
                                                          step, no line search) vs TRPO
``abl-vine``               ``abl-base``                   vine vs single path (Swimmer)
``abl-vine-no-reward-      ``abl-no-reward-scaling``      vine vs single path (Hopper;
scaling``                                                 the vine needs raw rewards)
``abl-no-reward-scaling``  ``abl-base``                   the preset's reward scaling
========================  =============================  ===============================

Two figures per run: the final evaluation (10 deterministic episodes) and the mean
training return over the last fifth of the iterations (less noisy than one evaluation).
Each arm: mean ± sample standard deviation over seeds; the difference to the control with
its standard error (Welch), so "held" means a difference larger than two standard errors.

Run::

    python benchmarks/ablations.py            # after the runs: see docs/reproducing_trpo.rst

Results: ``benchmarks/results/ablations.md`` / ``ablations.json``, and ``ablations.rst``,
the table the docs page "Reproducing the TRPO paper" includes.
"""

from __future__ import annotations

import json
import math
import statistics

from _common import RESULTS_DIR, command_line, markdown_table, timestamp, write_atomic, write_json

ARMS = {  # arm: (control, what it tests)
    "abl-max-kl": ("abl-base", "max-KL constraint instead of mean KL"),
    "abl-fisher-0.1": ("abl-base", "Fisher-vector products on 10 % of the batch"),
    "abl-npg-normalised": ("abl-base", "NPG: normalised natural step, no line search"),
    "abl-vine": ("abl-base", "vine sampling instead of single path"),
    "abl-no-reward-scaling": ("abl-base", "no reward scaling"),
    "abl-vine-no-reward-scaling": ("abl-no-reward-scaling",
                                   "vine instead of single path (both without reward scaling)"),
}


def late_return(rec: dict) -> float:
    """Mean training return over the last fifth of the run's iterations."""
    vals = [v for v in rec["curve"]["return_mean"] if v is not None]
    if not vals:
        return math.nan
    k = max(1, len(vals) // 5)
    return statistics.fmean(vals[-k:])


def stats(values):
    n = len(values)
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if n > 1 else math.nan
    return mean, sd, n


def diff(a, b):
    """Mean difference a - b with Welch's standard error."""
    (ma, sa, na), (mb, sb, nb) = stats(a), stats(b)
    se = math.sqrt(sa * sa / na + sb * sb / nb) if na > 1 and nb > 1 else math.nan
    return ma - mb, se


def main(argv=None):
    runs = json.loads((RESULTS_DIR / "learning.json").read_text())["runs"]
    groups = {}
    for r in runs:
        label = r.get("settings", "")
        if label.startswith("abl-"):
            groups.setdefault((r["env"], r["steps"], label), []).append(r)
    rows, out = [], []
    for (env, steps, label), rs in sorted(groups.items()):
        if label == "abl-base" or label not in ARMS:
            continue
        control, what = ARMS[label]
        cs = groups.get((env, steps, control))
        if not cs:
            continue
        seeds = sorted({r["seed"] for r in rs} & {r["seed"] for r in cs})
        a = [r for r in rs if r["seed"] in seeds]
        c = [r for r in cs if r["seed"] in seeds]
        if len(seeds) < 2:
            continue
        entry = {"env": env, "steps": steps, "arm": label, "control": control, "what": what,
                 "seeds": seeds, "algo": a[0]["algo"]}
        for name, f in (("eval", lambda r: r["eval_return_mean"]), ("late", late_return)):
            xa, xc = [f(r) for r in a], [f(r) for r in c]
            (ma, sa, _), (mc, sc, _) = stats(xa), stats(xc)
            d, se = diff(xa, xc)
            entry[name] = {"arm": [ma, sa], "control": [mc, sc], "diff": d, "se": se}
        out.append(entry)

        def cell(e):
            return (f"{e['arm'][0]:.0f} ± {e['arm'][1]:.0f} vs {e['control'][0]:.0f} ± "
                    f"{e['control'][1]:.0f}: {e['diff']:+.0f} (SE {e['se']:.0f})")

        rows.append([env, f"{steps:,}", f"`{label}` vs `{control}`", what, len(seeds),
                     cell(entry["eval"]), cell(entry["late"])])
    command = command_line("ablations.py", argv)
    md = "\n".join([
        "# The TRPO paper's ablations",
        "",
        "TRPO with the task's preset (`abl-base`) against one change at a time, same steps "
        "and seeds (`bench_learning.py --label ...`). Final evaluation (10 deterministic "
        "episodes) and the mean training return over the last fifth of the iterations; "
        "mean ± sample std over seeds; difference to the control with Welch's standard "
        "error.",
        "",
        markdown_table(["env", "steps", "arm vs control", "change", "seeds",
                        "final evaluation", "training return, last fifth"], rows,
                       "lrllrll"),
        "",
        f"Command: `{command}`; {timestamp()}.",
        "",
    ])
    rst = [".. list-table::", "   :header-rows: 1", "",
           "   * - task", "     - change (arm vs control)", "     - seeds",
           "     - final evaluation", "     - training return, last fifth"]
    for e in out:
        def rcell(x):
            return (f"{x['arm'][0]:.0f} ± {x['arm'][1]:.0f} vs {x['control'][0]:.0f} ± "
                    f"{x['control'][1]:.0f}: {x['diff']:+.0f} (SE {x['se']:.0f})")
        rst += [f"   * - {e['env']}, {e['steps']:,} steps",
                f"     - {e['what']} (``{e['arm']}`` vs ``{e['control']}``)",
                f"     - {len(e['seeds'])}", f"     - {rcell(e['eval'])}",
                f"     - {rcell(e['late'])}"]
    write_atomic(RESULTS_DIR / "ablations.rst", "\n".join(rst) + "\n")
    write_json(RESULTS_DIR / "ablations.json", {"arms": out, "command": command,
                                                "date": timestamp()})
    write_atomic(RESULTS_DIR / "ablations.md", md)
    print(md)


if __name__ == "__main__":
    main()
