"""Seeded stratified subsets: the validation split and the small training sets."""

from __future__ import annotations

import numpy as np

__all__ = ["fraction_counts", "stratified_split"]


def fraction_counts(labels: np.ndarray, n_classes: int, fraction: float) -> np.ndarray:
    """Per class, ``round(fraction * n_c)`` but at least 1 (``n_c``: images of class ``c``).

    >>> fraction_counts(np.array([0, 0, 0, 0, 1, 1]), 2, 0.5).tolist()
    [2, 1]
    """
    available = np.bincount(labels, minlength=n_classes)
    return np.maximum(1, np.rint(fraction * available)).astype(np.int64)


def stratified_split(
    labels: np.ndarray, counts: np.ndarray, seed: int | tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``counts[c]`` indices of every class ``c`` at random; return ``(picked, rest)``.

    Parameters
    ----------
    labels : ndarray of int, shape (n,)
        Class of every item.
    counts : ndarray of int, shape (n_classes,)
        How many items of each class to pick.
    seed : int or tuple of int
        Seeds the choice (``numpy.random.default_rng(seed)``). With the same labels and seed, smaller counts pick
        subsets of what larger counts pick (each class is drawn in the order of one seeded
        permutation), so shrinking training sets are nested.

    Returns
    -------
    picked, rest : ndarray of int
        Sorted indices into ``labels``; together they are a partition of ``range(n)``.

    Raises
    ------
    ValueError
        When a class has fewer items than requested.
    """
    labels = np.asarray(labels)
    available = np.bincount(labels, minlength=len(counts))
    short = np.flatnonzero(available[: len(counts)] < counts)
    if short.size:
        c = int(short[0])
        raise ValueError(
            f"The 'counts' parameter of `stratified_split` must be at most the items of each class; "
            f"got {int(counts[c])} for class {c}, which has {int(available[c])}."
        )
    rng = np.random.default_rng(seed)
    picked = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in enumerate(counts)]
    chosen = np.sort(np.concatenate(picked)) if picked else np.array([], dtype=np.int64)
    mask = np.ones(len(labels), dtype=bool)
    mask[chosen] = False
    return chosen, np.flatnonzero(mask)
