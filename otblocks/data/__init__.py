"""Data sets: 2-D toys drawn in memory and torchvision image data sets read from disk."""

from .build import build_data, fresh_toy_points
from .bundle import DataBundle, iterate_batches
from .toy import make_circles, make_gaussians, make_moons, make_spirals, make_toy

__all__ = [
    "DataBundle",
    "build_data",
    "fresh_toy_points",
    "iterate_batches",
    "make_circles",
    "make_gaussians",
    "make_moons",
    "make_spirals",
    "make_toy",
]
