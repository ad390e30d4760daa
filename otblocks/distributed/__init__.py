"""Pipeline-parallel block-wise training on ``torch.distributed``.

``torchrun --nproc-per-node=K -m otblocks train CONFIG --out DIR --distributed`` runs the
``parallel`` regime as a pipeline: each of the K ranks owns consecutive modules, receives the
previous rank's detached activations and labels by point-to-point messages, trains its modules
on their own losses and sends its outputs on. See ``docs/guide/distributed.md``.
"""

from .failure import FAULT_ENV, Fault, PipelineError
from .placement import (
    Placement,
    balanced_placement,
    choose_placement,
    measured_costs,
    parameter_costs,
)
from .run import train_distributed

__all__ = [
    "FAULT_ENV",
    "Fault",
    "PipelineError",
    "Placement",
    "balanced_placement",
    "choose_placement",
    "measured_costs",
    "parameter_costs",
    "train_distributed",
]
