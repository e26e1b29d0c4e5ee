"""The convolutional policy on Atari-sized frames: peak memory of the chunked passes, and the
cost of a Fisher-vector product against a policy gradient on the same batch.

Policy: :class:`rl.policies.CategoricalCNN` with the DQN Nature torso on 84 x 84 x 4 uint8
frames and 6 actions (Pong's action set), float32 compute, chunks of 64 frames. Frames are
uniform random bytes (the cost does not depend on their content).

Memory (``tracemalloc``, to which numpy reports every buffer it allocates; the frames
themselves are allocated before tracing starts and reported separately):

- ``forward``: :meth:`ConvNet.forward_numpy` over the batch (what the sampler and the
  evaluation of the surrogate at a trial point do);
- ``linearize+jvp+vjp``: building the linearisation and one ``J v`` and one ``J^T w``
  (one Fisher-vector product) with the default activation budget
  (``max_cache_bytes`` = 512 MiB): a batch whose activations exceed it is recomputed chunk
  by chunk in each product.

Both are measured at ``--batch`` (default 4096) and at 512 frames: a peak that does not grow
with the batch beyond the outputs and gradient shows the chunking bounds it.

Time (interleaved ABBA medians over ``--repeats`` rounds, on ``--time-batch`` frames with
activations cached, as a CG solve uses them): ``forward`` (one pass), ``gradient``
(linearise + one VJP, the policy gradient's network work), ``fvp`` (one JVP + one VJP on a
built linearisation). The figure of merit is the ratio fvp / gradient.

Run::

    python benchmarks/bench_conv.py                      # batch 4096, 3 rounds on 256

Results: ``benchmarks/results/conv.json`` and ``conv.md``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy is imported

import argparse  # noqa: E402
import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    RESULTS_DIR,
    command_line,
    interleaved_medians,
    machine_info,
    markdown_table,
    positive_int,
    save_results,
    timestamp,
)

from rl.policies import CategoricalCNN  # noqa: E402

MiB = float(1 << 20)


def peak_bytes(fn) -> int:
    """Peak traced allocation while ``fn()`` runs (its result is dropped inside)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=positive_int, default=4096)
    parser.add_argument("--time-batch", type=positive_int, default=256)
    parser.add_argument("--repeats", type=positive_int, default=3)
    parser.add_argument("--out", default=str(RESULTS_DIR))
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    policy = CategoricalCNN((84, 84, 4), 6, seed=0, dtype="float32")
    net = policy.net
    theta = policy.theta

    memory = []
    for n in sorted({512, args.batch}):
        frames = rng.integers(0, 256, (n, 84, 84, 4), dtype=np.uint8)
        v = rng.standard_normal(net.num_params)
        w = rng.standard_normal((n, 6))

        def product(frames=frames, v=v, w=w):
            lin = net.linearize(theta, frames)
            lin.jvp(v)
            lin.vjp(w)

        row = {
            "batch": n,
            "frames_MiB": frames.nbytes / MiB,
            "activations_MiB": net.activation_bytes(n) / MiB,
            "cached": net.activation_bytes(n) <= net.max_cache_bytes,
            "forward_peak_MiB": peak_bytes(lambda frames=frames: net.forward_numpy(frames)) / MiB,
            "fvp_peak_MiB": peak_bytes(product) / MiB,
        }
        memory.append(row)
        print(row, flush=True)
        del frames

    frames = rng.integers(0, 256, (args.time_batch, 84, 84, 4), dtype=np.uint8)
    v = rng.standard_normal(net.num_params)
    w = rng.standard_normal((args.time_batch, 6))
    built = net.linearize(theta, frames)

    def gradient():
        return net.linearize(theta, frames).vjp(w)

    def fvp():
        return built.vjp(built.jvp(v))

    timing = interleaved_medians({"forward": lambda: net.forward_numpy(frames),
                                  "gradient": gradient, "fvp": fvp}, args.repeats)
    for arm in timing.values():
        arm.pop("result")
    ratio = timing["fvp"]["median_s"] / timing["gradient"]["median_s"]
    frames_per_s = args.time_batch / timing["forward"]["median_s"]

    md = [f"# Convolutional policy (Nature torso, 84x84x4 uint8, float32), {timestamp()}", "",
          f"`{command_line('bench_conv.py', argv)}`", "",
          "## Peak memory (tracemalloc; the frames are allocated before tracing)", ""]
    md += markdown_table(
        ["batch", "frames (MiB)", "activations if kept (MiB)", "kept?", "forward peak (MiB)",
         "linearize + J v + J^T w peak (MiB)"],
        [[r["batch"], f"{r['frames_MiB']:.0f}", f"{r['activations_MiB']:.0f}",
          "yes" if r["cached"] else "no (recomputed per chunk)",
          f"{r['forward_peak_MiB']:.1f}", f"{r['fvp_peak_MiB']:.1f}"] for r in memory]
    ).splitlines()
    md += ["", f"## Time on {args.time_batch} frames (median of {args.repeats}, activations "
           "kept)", ""]
    md += markdown_table(
        ["arm", "median (s)", "CPU median (s)"],
        [[name, f"{t['median_s']:.3f}", f"{t['cpu_median_s']:.3f}"] for name, t in timing.items()]
    ).splitlines()
    md += ["", f"FVP / gradient: **{ratio:.2f}**; forward throughput {frames_per_s:.0f} "
           "frames/s (one core, BLAS single-threaded).", ""]
    result = {"command": command_line("bench_conv.py", argv), "date": timestamp(),
              "machine": machine_info(), "num_params": net.num_params, "memory": memory,
              "timing": timing, "fvp_over_gradient": ratio, "forward_frames_per_s": frames_per_s}
    path = save_results(args.out, "conv", result, "\n".join(md), complete=True)
    print("\n".join(md))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
