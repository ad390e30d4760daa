"""Two-dimensional toy classification problems: moons, circles, spirals, Gaussian mixture.

Each generator returns ``(x, y)`` with ``x`` of shape ``(n, 2)`` (float32) and ``y`` of
shape ``(n,)`` (int64), drawn with a NumPy generator so that a seed fixes the sample.
"""

from __future__ import annotations

import numpy as np

__all__ = ["make_circles", "make_gaussians", "make_moons", "make_spirals", "make_toy"]


def _split_counts(n: int, n_classes: int) -> np.ndarray:
    counts = np.full(n_classes, n // n_classes)
    counts[: n % n_classes] += 1
    return counts


def _finish(x: np.ndarray, y: np.ndarray, noise: float, rng: np.random.Generator):
    x = x + noise * rng.standard_normal(x.shape)
    order = rng.permutation(len(y))
    return x[order].astype(np.float32), y[order].astype(np.int64)


def make_moons(n: int, noise: float, rng: np.random.Generator):
    """Two interleaving half circles of radius 1 (centres (0, 0) and (1, 0.5))."""
    n0, n1 = _split_counts(n, 2)
    t0 = rng.uniform(0.0, np.pi, n0)
    t1 = rng.uniform(0.0, np.pi, n1)
    upper = np.stack([np.cos(t0), np.sin(t0)], axis=1)
    lower = np.stack([1.0 - np.cos(t1), 0.5 - np.sin(t1)], axis=1)
    x = np.concatenate([upper, lower])
    y = np.concatenate([np.zeros(n0), np.ones(n1)])
    return _finish(x, y, noise, rng)


def make_circles(n: int, noise: float, rng: np.random.Generator, factor: float = 0.5):
    """Two concentric circles of radii 1 (class 0) and ``factor`` (class 1)."""
    n0, n1 = _split_counts(n, 2)
    t = rng.uniform(0.0, 2 * np.pi, n0 + n1)
    radius = np.concatenate([np.ones(n0), np.full(n1, factor)])
    x = radius[:, None] * np.stack([np.cos(t), np.sin(t)], axis=1)
    y = np.concatenate([np.zeros(n0), np.ones(n1)])
    return _finish(x, y, noise, rng)


def make_spirals(n: int, noise: float, rng: np.random.Generator, n_classes: int = 2, turns: float = 1.5):
    """``n_classes`` interleaved Archimedean spiral arms of radius up to 1."""
    xs, ys = [], []
    for c, count in enumerate(_split_counts(n, n_classes)):
        s = np.sqrt(rng.uniform(0.0, 1.0, count))  # uniform along the arm's area
        angle = 2 * np.pi * (turns * s + c / n_classes)
        xs.append(np.stack([s * np.cos(angle), s * np.sin(angle)], axis=1))
        ys.append(np.full(count, c))
    return _finish(np.concatenate(xs), np.concatenate(ys), noise, rng)


def make_gaussians(n: int, noise: float, rng: np.random.Generator, n_classes: int = 2):
    """Isotropic Gaussians of standard deviation ``noise`` centred on the unit circle."""
    xs, ys = [], []
    for c, count in enumerate(_split_counts(n, n_classes)):
        angle = 2 * np.pi * c / n_classes
        xs.append(np.tile([np.cos(angle), np.sin(angle)], (count, 1)))
        ys.append(np.full(count, c))
    return _finish(np.concatenate(xs), np.concatenate(ys), noise, rng)


def make_toy(name: str, n: int, noise: float, seed: int, n_classes: int = 2):
    """Draw ``n`` points of the named toy problem with ``np.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    if name == "moons":
        return make_moons(n, noise, rng)
    if name == "circles":
        return make_circles(n, noise, rng)
    if name == "spirals":
        return make_spirals(n, noise, rng, n_classes)
    if name == "gaussians":
        return make_gaussians(n, noise, rng, n_classes)
    raise ValueError(
        "The 'name' parameter of `make_toy` must be one of "
        f"{{'moons', 'circles', 'spirals', 'gaussians'}}; got {name!r}."
    )
