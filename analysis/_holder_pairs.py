"""The pairs a Hölder fit measures: of sample points (by band of distance) or of probes through a callable."""

from __future__ import annotations

import math

import numpy as np
import torch

from ._callables import as_tensor_for, eval_mode
from ._pairwise import KDTREE_MAX_FEATURES, all_pair_distances, close_pairs, pair_distances
from ._validation import is_torch_tensor, to_numpy

__all__ = ["BANDS_PER_OCTAVE", "Pairs", "probe_pairs", "sample_pairs"]

#: Distance bands per octave of the sample-mode profile (half-octaves): twice as many bands
#: as octaves, so that 1.5 octaves of converged bands hold four levels.
BANDS_PER_OCTAVE = 2


class Pairs:
    """Measured pairs: distances ``r`` (input) and ``s`` (output), the scale range, the band
    of each pair (-1 below the resolution), the band edges, and the units (points, or probe
    anchors) each pair is made of, which the bootstrap and the convergence test resample."""

    def __init__(self, r, s, lo, hi, band, lower, upper, owners, n_units, probe, uniform=None):
        self.r, self.s, self.lo, self.hi = r, s, lo, hi
        self.band, self.lower, self.upper = band, lower, upper
        self.owners, self.n_units, self.probe = owners, n_units, probe
        #: Pairs drawn alike at every scale (all but the k-d tree's extra small pairs): the
        #: range fit regresses on these only, so that no scale is over-represented.
        self.uniform = np.ones(r.shape, dtype=bool) if uniform is None else uniform

    def draw(self, rng):
        """Unit multiplicities of one bootstrap replicate: the units drawn with replacement."""
        return np.bincount(rng.integers(0, self.n_units, self.n_units), minlength=self.n_units)

    def half(self, rng):
        """Unit weights (0 or 1) of a random half of the units."""
        inside = np.zeros(self.n_units)
        inside[rng.choice(self.n_units, self.n_units // 2, replace=False)] = 1.0
        return inside

    def present(self, units, idx):
        """Whether each pair ``idx`` is in a replicate of unit weights ``units``: all its units weigh > 0."""
        out = units[self.owners[0][idx]] > 0
        if len(self.owners) > 1:
            out &= units[self.owners[1][idx]] > 0
        return out

    def weights(self, units, idx):
        """Weights of the pairs ``idx`` from unit weights ``units``: the product over a pair's units
        (in a bootstrap replicate, the product of their multiplicities)."""
        out = units[self.owners[0][idx]].astype(np.float64)
        if len(self.owners) > 1:
            out *= units[self.owners[1][idx]]
        return out


def sample_pairs(x, tx, scales, n_pairs, rng) -> Pairs:
    r"""Pairs of sample points, binned in half-octaves of distance from the sampling resolution.

    All pairs of the points when there are at most ``n_pairs``; else all pairs of a seeded
    random subset of :math:`m` points (:math:`m(m-1)/2 \le` ``n_pairs``; one Gram product per
    side), and, in at most :data:`~analysis._pairwise.KDTREE_MAX_FEATURES` features, every
    pair of *all* the points below a radius :math:`\rho` (a k-d tree), which replaces the
    subset's pairs there: the small bands, which decide the exponent and hold few pairs,
    are then measured exhaustively, down to the resolution of the whole sample. :math:`\rho`
    is the largest band edge below which the subset's pair count, scaled by
    :math:`n(n-1) / (m(m-1))`, is at most ``n_pairs / 2``.
    """
    n, d = x.shape
    pts = np.arange(n)
    if n * (n - 1) // 2 > n_pairs:
        m = int((1 + math.isqrt(1 + 8 * n_pairs)) // 2)
        while m * (m - 1) // 2 > n_pairs:
            m -= 1
        pts = np.sort(rng.choice(n, m, replace=False))
    sub_x, sub_tx = _rows(x, pts), _rows(tx, pts)
    r, s = all_pair_distances(sub_x), all_pair_distances(sub_tx)  # (m (m - 1) / 2,) each
    a, b = np.triu_indices(pts.size, 1)
    i, j = pts[a], pts[b]
    uniform = None
    if pts.size < n and d <= KDTREE_MAX_FEATURES:
        budget = (n_pairs // 2) * pts.size * (pts.size - 1) / (n * (n - 1))
        radius = float(np.partition(r, int(budget))[int(budget)])
        ci, cj, cr, nn = close_pairs(x, radius)
        resolution = float(np.median(nn))
        if resolution > 0 and radius > resolution:
            octaves = math.floor(BANDS_PER_OCTAVE * math.log2(radius / resolution)) / BANDS_PER_OCTAVE
            edge = resolution * 2.0**octaves  # a band edge: each band is all near or all far pairs
            far, near = r >= edge, cr < edge
            n_near = int(near.sum())
            i, j = np.concatenate([ci[near], i[far]]), np.concatenate([cj[near], j[far]])
            r = np.concatenate([cr[near], r[far]])
            s = np.concatenate([pair_distances(tx, i[:n_near], j[:n_near]), s[far]])
            uniform = np.arange(r.size) >= n_near
    else:
        nn = np.full(pts.size, np.inf)
        np.minimum.at(nn, a, r)
        np.minimum.at(nn, b, r)
        resolution = float(np.median(nn))
    r_max = float(r.max())
    lo, hi = (float(scales[0]), float(scales[1])) if scales is not None else (resolution, r_max)
    if resolution > 0:
        band = np.full(r.shape, -1, dtype=np.int64)
        above = r >= resolution
        band[above] = np.floor(BANDS_PER_OCTAVE * np.log2(r[above] / resolution)).astype(np.int64)
        lower = resolution * 2.0 ** (np.arange(int(band.max()) + 1) / BANDS_PER_OCTAVE)
    else:  # duplicates at most points, or all pairs at one distance
        lower = np.array([resolution])
        band = np.where(r == resolution, 0, -1)
    upper = lower * 2.0 ** (1 / BANDS_PER_OCTAVE)
    return Pairs(r, s, lo, hi, band, lower, upper, (i, j), n, probe=False, uniform=uniform)


def _rows(a, idx):
    if is_torch_tensor(a):
        return a[torch.as_tensor(idx, device=a.device)]
    return a[idx]


def probe_pairs(fn, x, scales, n_pairs, batch_size, rng) -> Pairs:
    """Probe pairs ``(x_i, x_i + delta u_i)``: distances of shape (anchors * radii,)."""
    func = "holder_fit"
    n = x.shape[0]
    flat = to_numpy(x).reshape(n, -1)  # (n, d)
    spread = float(np.sqrt(np.square(flat - flat.mean(axis=0)).sum(axis=1).mean()))
    deltas = np.geomspace(1e-3, 1.0, 7) * spread if scales is None else np.unique(scales)
    if not deltas.min() > 0:
        raise ValueError(
            f"The 'x' parameter of `{func}` must not be constant when 'scales' is None in "
            f"probe mode (the default radii scale with its spread); got a spread of 0."
        )
    n_anchor = min(n, max(1, math.ceil(n_pairs / deltas.size)))
    anchors = np.sort(rng.choice(n, n_anchor, replace=False))
    base_in = as_tensor_for([fn], x)[torch.as_tensor(anchors)]  # (n_anchor, ...)
    gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
    u = torch.randn(base_in.shape, generator=gen, dtype=torch.float64)  # one direction per anchor
    u = u / torch.linalg.vector_norm(u.reshape(n_anchor, -1), dim=1).reshape((-1,) + (1,) * (u.ndim - 1))
    moved = [base_in + (delta * u).to(device=base_in.device, dtype=base_in.dtype) for delta in deltas]
    # the anchors and every radius in one run of batches: a few calls of the map, not one per radius
    out = _run(fn, torch.cat([base_in, *moved]), batch_size).split(n_anchor)  # (n_anchor, ...) each
    base_out = out[0]
    r = np.empty((n_anchor, deltas.size))
    s = np.empty((n_anchor, deltas.size))
    for k in range(deltas.size):
        r[:, k] = _flat_dist(moved[k], base_in)
        s[:, k] = _flat_dist(out[k + 1], base_out)
    band = np.broadcast_to(np.arange(deltas.size), r.shape).ravel()
    owner = np.repeat(np.arange(n_anchor), deltas.size)
    return Pairs(
        r.ravel(),
        s.ravel(),
        float(deltas.min()),
        float(deltas.max()),
        band,
        deltas,
        deltas,
        (owner,),
        n_anchor,
        probe=True,
    )


def _run(fn, h, batch_size):
    with torch.no_grad(), eval_mode([fn]):
        return torch.cat([fn(h[i : i + batch_size]) for i in range(0, h.shape[0], batch_size)])


def _flat_dist(a, b):
    """Row distances of two tensors of shape (n, ...), in float64, by direct difference."""
    diff = a.reshape(a.shape[0], -1).double() - b.reshape(b.shape[0], -1).double()
    return torch.linalg.vector_norm(diff, dim=1).cpu().numpy()
