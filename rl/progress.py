"""Progress of training and evaluation: a tqdm bar on a terminal, plain lines in a log.

On a terminal the bar shows the fraction done, the elapsed time, the estimated time left,
the rate and the latest values; when standard error is a file or a pipe (a batch job's log)
every update is one plain line with the same fields, so a log reads without control
characters. The returns are labelled as what they are: the training return is the mean
return of the episodes the *stochastic* policy finished in the iteration's batch, the
evaluation return that of the *deterministic* policy (its mode), and the two differ.

Which diagnostics are shown is the algorithm's choice (its ``headline_metrics``,
``{label: key}``); nothing here knows an algorithm's keys.
"""

from __future__ import annotations

import math
import sys
import time

from tqdm import tqdm

__all__ = ["TrainingProgress", "EvaluationProgress", "TRAIN_RETURN", "EVAL_RETURN"]

#: How the progress display and the command line name the two returns.
TRAIN_RETURN = "train return (stochastic)"
EVAL_RETURN = "eval return (deterministic)"


def _number(value) -> str:
    """A value for display: 4 significant digits, ``n/a`` for a missing or NaN one."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if math.isnan(value) else f"{value:.4g}"


def _is_terminal(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


class _Display:
    """What both progress kinds share: the stream, the bar or the plain lines, the clock."""

    unit = "steps"
    #: Seconds between two plain lines (the last one is always written).
    min_interval = 0.0

    def __init__(self, total, *, enabled=True, stream=None, start=0, description=""):
        self.total, self.start, self.enabled = int(total), int(start), bool(enabled)
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.enabled and self.stream is not None
        self.terminal = self.enabled and _is_terminal(self.stream)
        self.t0 = time.perf_counter()
        self.last_line = -math.inf
        self.bar = None
        if self.terminal:
            self.bar = tqdm(total=self.total, initial=self.start, file=self.stream,
                            desc=description, unit=self.unit.rstrip("s"),
                            unit_scale=self.unit == "steps",
                            dynamic_ncols=True, leave=True)
        elif self.enabled and description:
            self._write(f"{description}: {self.total} {self.unit}"
                        + (f", from {self.start}" if self.start else ""))

    def _write(self, line):
        self.stream.write(line + "\n")
        self.stream.flush()

    def _advance(self, done, fields: dict, prefix: str):
        """Move to ``done`` units; show ``fields`` (``{label: text}``)."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix_str("  ".join([prefix] + [f"{k} {v}" for k, v in fields.items()]),
                                     refresh=False)
            if done > self.bar.total:  # the last whole batch passed the budget
                self.bar.total = done
            self.bar.update(max(done - self.bar.n, 0))
            return
        now = time.perf_counter()
        if now - self.last_line < self.min_interval and done < self.total:
            return
        self.last_line, elapsed = now, now - self.t0
        rate = (done - self.start) / elapsed if elapsed > 0 else math.nan
        left = max(self.total - done, 0) / rate if rate > 0 else math.nan
        eta = tqdm.format_interval(left) if math.isfinite(left) else "n/a"
        parts = [prefix, f"{done}/{self.total} {self.unit}",
                 f"{min(100.0 * done / max(self.total, 1), 100.0):.0f}%",
                 f"elapsed {tqdm.format_interval(elapsed)}", f"ETA {eta}",
                 f"{_number(rate)} {self.unit}/s"]
        parts += [f"{k} {v}" for k, v in fields.items()]
        self._write("  ".join(p for p in parts if p))

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class TrainingProgress(_Display):
    """Progress of a training run in environment steps.

    Parameters
    ----------
    total : int
        The run's step budget.
    enabled : bool
        ``False`` shows nothing.
    stream : file, optional
        Where to write (default ``sys.stderr``); a bar if it is a terminal, lines otherwise.
    start : int
        Steps already done (a resumed run); the rate counts only the steps of this process.
    headline : dict, optional
        ``{label: key}`` of the diagnostics to show beside the training return (an
        algorithm's ``headline_metrics``).
    description : str
        Printed before the bar, or as the first line of a log.
    """

    def __init__(self, total, *, enabled=True, stream=None, start=0, headline=None,
                 description=""):
        self.headline = dict(headline or {})
        super().__init__(total, enabled=enabled, stream=stream, start=start,
                         description=description)

    def update(self, steps, row):
        """Show the iteration that brought the run to ``steps`` (its metrics ``row``)."""
        fields = {TRAIN_RETURN: _number(row.get("episode/return_mean"))}
        fields.update({label: _number(row.get(key)) for label, key in self.headline.items()})
        self._advance(int(steps), fields, f"iteration {row.get('iteration', '?')}")


class EvaluationProgress(_Display):
    """Progress of an evaluation in episodes; shows the mean return so far.

    In a log, a line every 10 seconds at most (evaluations of thousands of short episodes
    would otherwise fill it) and always the last one.
    """

    unit = "episodes"
    min_interval = 10.0

    def update(self, returns):
        """Show the episodes finished so far (their ``returns``)."""
        mean = sum(returns) / len(returns) if returns else math.nan
        self._advance(len(returns), {EVAL_RETURN: _number(mean)}, "evaluation")
