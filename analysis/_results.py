"""The base of the result dataclasses: conversion to JSON-ready plain Python."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

__all__ = ["Result", "plain"]


def plain(value):
    """Convert numpy scalars, arrays and tuples to plain Python; non-finite floats to strings.

    JSON has no NaN or infinity, so an infinite ratio (say ``cost_ratio`` when the output
    sample equals the input sample up to a re-pairing) is written as the string ``"inf"``,
    and likewise ``"-inf"`` and ``"nan"``: the rule of every JSON file ``otblocks`` writes
    (``otblocks.rundir.jsonable``), kept apart from ``None``, which means "not measured".
    """
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, Result):  # a nested result, e.g. a solver's certificate
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isfinite(value):
            return value
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


class Result:
    """Mixin of the frozen result dataclasses: ``to_dict``, their JSON form (``otblocks analyze`` writes it)."""

    def to_dict(self) -> dict:
        """Return the fields as JSON-serialisable plain Python.

        Floats stay floats (non-finite ones become ``"inf"``, ``"-inf"``, ``"nan"``), arrays and tuples become
        lists. Fields marked ``metadata={"to_dict": False}`` (per-sample arrays) are left out.

        Returns
        -------
        dict
            Field name to value.
        """
        return {
            f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self) if f.metadata.get("to_dict", True)
        }
