r"""``RUN_DIR/features/{split}.npz``: every block's and module's inputs and outputs, to a file.

The points (:func:`otblocks.walk.sample_points`) and the block walk
(:func:`otblocks.walk.compute_features`, which describes the shortcut images of
dimension-changing blocks and the optional ``pool`` / ``project`` reductions) are those of
``otblocks analyze``: the same ``seed`` and ``n`` give the same points.

The file written by :func:`write_run_features` (NumPy's ``npz``) holds float32 arrays
``block{i}_in``, ``block{i}_out`` (shape ``(N, C, H, W)``, ``(N, C, P, P)`` when pooled,
``(N, D)`` when projected), ``block{i}_shortcut`` for blocks whose shortcut is not the
identity, ``module{k}_in``, ``module{k}_out``, ``labels`` (int64, ``(N,)``), ``indices``
(int64, ``(N,)``: the points' positions in the split) and ``metadata`` (a JSON string: split,
N, seed, pool, project, and per block its module, original and stored shapes and whether it
has a shortcut image). Read it with :func:`read_features`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .errors import FileSystemError
from .rundir import RunPaths
from .trained import load_run
from .walk import Features, compute_features, sample_points

__all__ = ["FORMAT", "read_features", "write_run_features"]

FORMAT = "otblocks-features/1"
"""Value of ``metadata["format"]`` in the files this module writes."""


def _arrays(features: Features) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for i in range(features.n_blocks):
        arrays[f"block{i}_in"], arrays[f"block{i}_out"] = (t.numpy() for t in features.block(i))
        if i in features.shortcuts:
            arrays[f"block{i}_shortcut"] = features.shortcuts[i].numpy()
    for k in range(max(features.module_of_block) + 1):
        arrays[f"module{k}_in"], arrays[f"module{k}_out"] = (t.numpy() for t in features.module(k))
    return arrays


def write_run_features(
    run_dir: str | Path,
    split: str = "val",
    n: int = 1000,
    *,
    pool: int | None = None,
    project: int | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    device: str = "cpu",
) -> Path:
    """Write the features of ``n`` points of a finished run's ``split`` (format: module docstring).

    The points are those of :func:`otblocks.walk.sample_points` (the same as ``otblocks
    analyze`` with the same ``seed`` and ``n``). Returns the path written
    (``RUN_DIR/features/{split}.npz`` by default).
    """
    if split not in ("val", "test"):
        raise ValueError(
            f"The 'split' parameter of `write_run_features` must be one of {{'val', 'test'}}; got {split!r}."
        )
    if out is not None and (Path(out).is_dir() or any(p.exists() and not p.is_dir() for p in Path(out).parents)):
        raise FileSystemError(
            f"The '--out' path '{out}' must be a file name whose folders are directories; "
            f"got {'a directory' if Path(out).is_dir() else 'a path below a file'}."
        )
    run = load_run(run_dir, device)
    dataset = run.data.split(split)
    if not 1 <= n <= len(dataset):
        raise ValueError(f"The 'n' parameter of `write_run_features` must be an int in [1, {len(dataset)}]; got {n}.")
    indices, x, y = sample_points(dataset, n, seed)
    features = compute_features(
        run.net,
        (x, y),
        pool=pool,
        project=project,
        seed=seed,
        batch_size=run.config.train.batch_size,
        device=device,
    )
    arrays = _arrays(features)
    metadata = {
        "format": FORMAT,
        "run": str(run.path),
        "split": split,
        "n": n,
        "seed": seed,
        "pool": pool,
        "project": project,
        "blocks": [
            {
                "module": features.module_of_block[i],
                "in_shape": list(features.shapes[i]),
                "out_shape": list(features.shapes[i + 1]),
                "stored_in_shape": list(arrays[f"block{i}_in"].shape[1:]),
                "stored_out_shape": list(arrays[f"block{i}_out"].shape[1:]),
                "has_shortcut_image": i in features.shortcuts,
            }
            for i in range(features.n_blocks)
        ],
    }
    path = Path(out) if out is not None else RunPaths(run.path).features_file(split)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(
        tmp,
        labels=features.labels.numpy(),
        indices=indices.astype(np.int64),
        metadata=np.array(json.dumps(metadata)),
        **arrays,
    )
    tmp.replace(path)
    return path


def read_features(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and the metadata of a file written by :func:`write_run_features`."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files if name != "metadata"}
        metadata = json.loads(str(archive["metadata"]))
    if metadata.get("format") != FORMAT:
        raise ValueError(f"The file '{path}' is not an otblocks features file (format {FORMAT!r}).")
    return arrays, metadata
