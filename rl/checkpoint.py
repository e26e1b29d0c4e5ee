"""The checkpoint format of a run folder: arrays in ``.npz``, everything else JSON, nothing
that can execute code.

A checkpoint is a tree of dicts (string keys), lists, tuples, ``None``, bools, ints,
floats, strings and numpy arrays or scalars: the ``state_dict()`` of every part of a run.
:func:`encode` splits such a tree into a JSON document, in which every array is replaced by
a reference, and the arrays themselves; :func:`write_checkpoint` stores both in one
``checkpoint-<iteration>.npz`` (the JSON document as the member ``__state__``), read back by
:func:`read_checkpoint` with ``numpy.load(..., allow_pickle=False)``. Any other object (a
class, a function, an environment) is refused by :func:`encode` with the path of the value,
so the writer never falls back to pickle.

One commit point per checkpoint
-------------------------------
The files of an iteration become visible together through a manifest written last:

1. ``checkpoint-<iteration>.npz`` is written under a new name (the previous checkpoint stays);
2. ``metrics.csv`` is replaced;
3. the manifest ``checkpoint.json`` is replaced: it names the ``.npz`` file and holds the
   SHA-256 of it and of ``metrics.csv`` and the number of metrics rows it commits;
4. the folder is synced, and checkpoint files the manifest no longer names are removed.

Every file is replaced atomically (written to a temporary file in the same folder, synced,
renamed). A process killed at any point leaves the previous manifest, which names a
complete checkpoint; ``metrics.csv`` may then hold rows of an uncommitted iteration, which
readers ignore (they read the number of rows the manifest commits) and the next checkpoint
replaces. Loading checks the manifest's keys and types, the file's hash, every member of the
``.npz`` against the references of the JSON document, and the arrays' finiteness.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import zipfile
from pathlib import Path

import numpy as np

__all__ = [
    "MANIFEST",
    "FORMAT",
    "FORMAT_VERSION",
    "CheckpointFormatError",
    "NotExpressibleError",
    "encode",
    "decode",
    "pack",
    "write_checkpoint",
    "read_checkpoint",
    "read_manifest",
    "committed_rows",
    "remove_stale_files",
    "atomic_write_bytes",
    "atomic_write_text",
]

MANIFEST = "checkpoint.json"
FORMAT = "trpokit-checkpoint"
FORMAT_VERSION = 2
_STATE_FILE = re.compile(r"^checkpoint-(\d{6,})\.npz$")
_STATE_MEMBER = "__state__"
_MANIFEST_KEYS = {"format": str, "version": int, "iteration": int, "total_steps": int,
                  "state_file": str, "state_sha256": str, "state_bytes": int,
                  "metrics_rows": int, "metrics_sha256": str}
# the temporary files of atomic_write_bytes: "." + name + ".tmp" + pid
_TEMPORARY = re.compile(r"^\..+\.tmp\d+$")

#: Called as ``fault_hook(stage)`` between the steps of :func:`write_checkpoint` (stages
#: ``"state"``, ``"metrics"``, ``"manifest"``, ``"cleanup"``); ``None`` in normal use. The
#: fault-injection tests set it to kill the process inside a checkpoint write.
fault_hook = None


class CheckpointFormatError(ValueError):
    """A checkpoint file that is missing, damaged, or not in this format."""


class NotExpressibleError(TypeError):
    """A value that cannot be stored as arrays and JSON (its path is in the message)."""


# ------------------------------------------------------------------------------- codec
def encode(tree) -> tuple[object, dict]:
    """Split ``tree`` into a JSON-ready document and a dict of numpy arrays.

    Parameters
    ----------
    tree : object
        Dicts with string keys, lists, tuples, None, bool, int, float, str, numpy arrays
        and numpy scalars, nested.

    Returns
    -------
    document : object
        The tree with every array replaced by ``{"__array__": name}``, every tuple by
        ``{"__tuple__": [...]}``, every numpy scalar other than int64/bool by a 0-d array
        reference ``{"__scalar__": name}`` (so its dtype survives) and every non-finite
        float by ``{"__float__": "nan" | "inf" | "-inf"}`` (standard JSON has no NaN).
    arrays : dict of str to ndarray
        The arrays, named ``a0``, ``a1``, ...

    Raises
    ------
    NotExpressibleError
        For any other value (an object array, a non-string key, a class instance), naming
        its path in the tree.

    Examples
    --------
    >>> doc, arrays = encode({"theta": np.zeros(3), "steps": 5, "shape": (2, 2)})
    >>> doc
    {'theta': {'__array__': 'a0'}, 'steps': 5, 'shape': {'__tuple__': [2, 2]}}
    >>> decode(doc, arrays)["shape"]
    (2, 2)
    """
    arrays: dict = {}

    def walk(x, path):
        if x is None or isinstance(x, (bool, str)):
            return x
        if isinstance(x, int) and not isinstance(x, np.integer):
            return int(x)
        if isinstance(x, float) and type(x) in (float, np.float64):
            v = float(x)
            if math.isfinite(v):
                return v
            return {"__float__": "nan" if v != v else ("inf" if v > 0 else "-inf")}
        if isinstance(x, (np.bool_, np.int64)):
            return x.item()
        if isinstance(x, np.generic):
            if x.dtype.kind not in "biufc":
                raise NotExpressibleError(f"{path}: numpy scalar of dtype {x.dtype}")
            name = f"a{len(arrays)}"
            arrays[name] = np.asarray(x)
            return {"__scalar__": name}
        if isinstance(x, np.ndarray):
            if x.dtype.kind not in "biufc":
                raise NotExpressibleError(f"{path}: array of dtype {x.dtype}")
            name = f"a{len(arrays)}"
            arrays[name] = np.array(x, copy=True)
            return {"__array__": name}
        if isinstance(x, dict):
            out = {}
            for k, v in x.items():
                if not isinstance(k, str):
                    raise NotExpressibleError(f"{path}: key {k!r} is not a string")
                if k.startswith("__") and k.endswith("__"):
                    raise NotExpressibleError(f"{path}: key {k!r} is reserved by the format")
                out[k] = walk(v, f"{path}.{k}" if path else k)
            return out
        if isinstance(x, tuple):
            return {"__tuple__": [walk(v, f"{path}[{i}]") for i, v in enumerate(x)]}
        if isinstance(x, list):
            return [walk(v, f"{path}[{i}]") for i, v in enumerate(x)]
        raise NotExpressibleError(f"{path or 'value'}: a {type(x).__module__}."
                                  f"{type(x).__qualname__} object")

    return walk(tree, ""), arrays


def decode(document, arrays: dict):
    """Rebuild the tree :func:`encode` split (arrays are taken from ``arrays`` by name).

    Raises
    ------
    CheckpointFormatError
        If the document references a missing array or holds an unknown tag.
    """
    used = set()

    def walk(x):
        if isinstance(x, list):
            return [walk(v) for v in x]
        if not isinstance(x, dict):
            return x
        if len(x) == 1:
            (tag, value), = x.items()
            if tag in ("__array__", "__scalar__"):
                if not isinstance(value, str) or value not in arrays:
                    raise CheckpointFormatError(f"it references a missing array {value!r}")
                used.add(value)
                arr = arrays[value]
                return arr[()] if tag == "__scalar__" else arr
            if tag == "__tuple__":
                if not isinstance(value, list):
                    raise CheckpointFormatError("a __tuple__ entry is not a list")
                return tuple(walk(v) for v in value)
            if tag == "__float__":
                if value not in ("nan", "inf", "-inf"):
                    raise CheckpointFormatError(f"a __float__ entry holds {value!r}")
                return float(value)
        for k in x:
            if k.startswith("__") and k.endswith("__"):
                raise CheckpointFormatError(f"it holds an unknown entry {k!r}")
        return {k: walk(v) for k, v in x.items()}

    tree = walk(document)
    unused = sorted(set(arrays) - used)
    if unused:
        raise CheckpointFormatError(f"it holds arrays no entry references: {unused[:5]}")
    return tree


# --------------------------------------------------------------------------- file output
def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. a platform without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a synced temporary file and an atomic rename.

    A failure (a full disk, say) removes the temporary file and leaves ``path`` as it was.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise


def atomic_write_text(path, text: str) -> None:
    """:func:`atomic_write_bytes` of ``text`` encoded as UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _npz_bytes(document, arrays: dict) -> bytes:
    text = json.dumps(document, allow_nan=False, separators=(",", ":")).encode("utf-8")
    buf = io.BytesIO()
    np.savez(buf, **{_STATE_MEMBER: np.frombuffer(text, dtype=np.uint8)}, **arrays)
    return buf.getvalue()


def pack(tree) -> bytes:
    """The ``.npz`` file of a checkpoint holding ``tree``, as bytes.

    Raises
    ------
    NotExpressibleError
        If ``tree`` holds a value that cannot be stored (see :func:`encode`).
    """
    return _npz_bytes(*encode(tree))


def write_checkpoint(run_dir, data: bytes, *, iteration: int, total_steps: int,
                     metrics_csv: str, metrics_rows: int) -> Path:
    """Commit one checkpoint of a run and its ``metrics.csv`` (see the module's notes).

    Parameters
    ----------
    run_dir : path
        The run folder (it exists).
    data : bytes
        The checkpoint file, from :func:`pack`.
    iteration, total_steps : int
        The iteration and step count the state is at (recorded in the manifest).
    metrics_csv : str
        The text of ``metrics.csv`` up to this iteration.
    metrics_rows : int
        The number of rows it holds.

    Returns
    -------
    pathlib.Path
        The ``.npz`` file written.

    Raises
    ------
    OSError
        If a file cannot be written; the previous checkpoint stays committed.
    """
    run_dir = Path(run_dir)
    name = f"checkpoint-{int(iteration):06d}.npz"
    metrics = metrics_csv.encode("utf-8")
    atomic_write_bytes(run_dir / name, data)
    _fault("state")
    atomic_write_bytes(run_dir / "metrics.csv", metrics)
    _fault("metrics")
    manifest = {"format": FORMAT, "version": FORMAT_VERSION, "iteration": int(iteration),
                "total_steps": int(total_steps), "state_file": name,
                "state_sha256": _sha256(data), "state_bytes": len(data),
                "metrics_rows": int(metrics_rows), "metrics_sha256": _sha256(metrics)}
    atomic_write_text(run_dir / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    _fault("manifest")
    _fsync_dir(run_dir)
    for old in run_dir.iterdir():
        if _STATE_FILE.match(old.name) and old.name != name:
            try:
                old.unlink()
            except OSError:
                pass
    _fault("cleanup")
    return run_dir / name


def _fault(stage: str) -> None:
    if fault_hook is not None:
        fault_hook(stage)


def remove_stale_files(run_dir) -> list:
    """Remove what an interrupted write left in a run folder; return the names removed.

    That is the temporary files of :func:`atomic_write_bytes` (``.<name>.tmp<pid>``) and the
    checkpoint files the manifest does not name (written before a kill stopped the commit).
    Nothing else is touched.
    """
    run_dir = Path(run_dir)
    try:
        committed = read_manifest(run_dir)["state_file"]
    except CheckpointFormatError:
        committed = None
    removed = []
    for path in run_dir.iterdir():
        stale = _TEMPORARY.match(path.name) or (
            _STATE_FILE.match(path.name) and committed is not None and path.name != committed)
        if stale and path.is_file() and not path.is_symlink():
            try:
                path.unlink()
                removed.append(path.name)
            except OSError:
                pass
    return removed


# ---------------------------------------------------------------------------- file input
def read_manifest(run_dir) -> dict:
    """The manifest of a run folder, checked key by key.

    Raises
    ------
    CheckpointFormatError
        If there is none or it is damaged (the message names the file and the fix).
    """
    path = Path(run_dir) / MANIFEST
    fix = "delete the run folder or resume from a copy"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointFormatError(f"no checkpoint at {path}") from None
    except OSError as exc:
        raise CheckpointFormatError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CheckpointFormatError(f"checkpoint manifest {path} is not valid JSON; {fix}") \
            from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointFormatError(f"{path} is not a trpokit checkpoint manifest; {fix}")
    if manifest.get("version") != FORMAT_VERSION:
        raise CheckpointFormatError(
            f"{path} is a version-{manifest.get('version')!r} checkpoint; this trpokit reads "
            f"version {FORMAT_VERSION}: use the trpokit version that wrote it")
    for key, kind in _MANIFEST_KEYS.items():
        value = manifest.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) or (
                kind is int and value < 0):
            raise CheckpointFormatError(f"checkpoint manifest {path} has a bad {key!r} "
                                        f"entry ({value!r}); {fix}")
    if not _STATE_FILE.match(manifest["state_file"]):
        raise CheckpointFormatError(f"checkpoint manifest {path} names {manifest['state_file']!r}"
                                    f", which is not a checkpoint file of a run folder; {fix}")
    return manifest


def committed_rows(run_dir) -> int | None:
    """The number of ``metrics.csv`` rows the manifest commits (None without a manifest)."""
    try:
        return read_manifest(run_dir)["metrics_rows"]
    except CheckpointFormatError:
        return None


def read_checkpoint(run_dir) -> tuple[dict, object]:
    """Read and check the committed checkpoint of a run folder.

    Returns
    -------
    manifest : dict
    tree : object
        The state, as it was written (arrays as numpy arrays).

    Raises
    ------
    CheckpointFormatError
        If the manifest or the checkpoint file is missing, damaged (hash mismatch, a bad zip,
        an object array, a dangling reference) or holds non-finite floating-point arrays
        outside the environment's own state. Nothing is unpickled: ``numpy.load`` runs with
        ``allow_pickle=False``.
    """
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    path = run_dir / manifest["state_file"]
    fix = "delete the run folder or resume from a copy"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointFormatError(f"the checkpoint file {path} named by {MANIFEST} is "
                                    f"missing; {fix}") from None
    except OSError as exc:
        raise CheckpointFormatError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) != manifest["state_bytes"] or _sha256(data) != manifest["state_sha256"]:
        raise CheckpointFormatError(f"checkpoint {path} does not match the hash in {MANIFEST} "
                                    f"(it was changed or damaged); {fix}")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            members = {name: npz[name] for name in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise CheckpointFormatError(f"checkpoint {path} cannot be read "
                                    f"({type(exc).__name__}); {fix}") from None
    text = members.pop(_STATE_MEMBER, None)
    if text is None or text.dtype != np.uint8 or text.ndim != 1:
        raise CheckpointFormatError(f"checkpoint {path} has no state document; {fix}")
    try:
        document = json.loads(text.tobytes().decode("utf-8"))
        tree = decode(document, members)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        detail = str(exc) if isinstance(exc, CheckpointFormatError) else "not valid JSON"
        raise CheckpointFormatError(f"checkpoint {path}: {detail}; {fix}") from None
    bad = _nonfinite_path(tree, "")
    if bad is not None:
        raise CheckpointFormatError(f"checkpoint {path} holds non-finite values in {bad}; {fix}")
    return manifest, tree


# checked elsewhere: the environments' own attributes may legitimately hold inf (bounds);
# metrics rows hold NaN where a quantity is undefined; configs validate themselves
_FREE_SUBTREES = ("env", "history", "config", "algo_config")


def _nonfinite_path(x, path):
    if isinstance(x, dict):
        for k, v in x.items():
            if not path and k in _FREE_SUBTREES:
                continue
            found = _nonfinite_path(v, f"{path}.{k}" if path else k)
            if found is not None:
                return found
    elif isinstance(x, (list, tuple)):
        for i, v in enumerate(x):
            found = _nonfinite_path(v, f"{path}[{i}]")
            if found is not None:
                return found
    elif isinstance(x, (np.ndarray, np.generic)) and np.asarray(x).dtype.kind in "fc":
        if not np.all(np.isfinite(x)):
            return path
    elif isinstance(x, float) and not math.isfinite(x):
        return path
    return None
