r"""Trainer overhead, memory of block-wise training, and cost of the transport penalty.

Prints four figures, each a ratio of two measurements taken in this one run:

1. **step time, trainer / hand-written loop** (goal <= 1.05): the trainer's
   ``Trainer.module_step`` against a minimal PyTorch loop (zero_grad, forward, cross-entropy,
   backward, step) over the same modules, optimizers and batches, with :math:`\tau = \infty`;
   each batch goes through the 8 modules in turn, every module getting the previous
   module's detached output (the parallel regime's step).
2. **peak memory, sequential / end-to-end** (goal <= 0.35) for an 8-module conv ResNet, one
   block per module, through ``Trainer.run_item`` (frozen outputs not cached, so the figure
   does not depend on the training-set size). The figure is for the papers' simple network,
   8 blocks of constant width after a stem; the line below it gives the same ratio for a
   3-stage ResNet (16/32/64 channels), whose later blocks hold 2 and 4 times smaller maps, so
   that the first module dominates the sequential peak. CUDA: the allocator's peak of allocated bytes,
   as the trainer records it. CPU: the peak of live tensor bytes, i.e. the bytes of the
   parameters and buffers plus the highest running sum of the CPU allocator's allocations
   and frees (``torch.profiler`` memory events) while training; the process's resident size
   would be dominated by the interpreter and libraries.
3. **step time with the penalty / with tau = inf** (goal <= 1.03): the same trainer loop with
   :math:`\tau = 1` against :math:`\tau = \infty` (where the cost is still measured, without
   gradient).
4. **validation time / training time** (goal <= 0.15) in sequential training of a 10-block,
   16-channel network on 1x28x28 images (one block per module, conv heads; 500 training and
   500 validation images, synthetic: only the time matters), summed over the run from the
   records' ``seconds``. The trainer validates the current head on cached module inputs
   (``Trainer._validate``); the line below it gives the previous behaviour, every head up to
   the current one through the frozen modules on the raw split, run in the same process.
   Wall-clock time (``time.perf_counter``), as the records measure it.

Each ratio is the median, over all steps of all rounds, of the ratio of two variants run back
to back on the same batch (the order of the variants rotates from step to step). On CUDA a
step is timed by the wall clock between synchronisations; on the CPU by the process's CPU
time, which leaves out the time the process waits for a core on a shared machine.

Usage::

    python benchmarks/bench_trainer.py            # 32 channels on 3x32x32, batch 64 (minutes on a CPU)
    python benchmarks/bench_trainer.py --quick    # 16 channels on 3x16x16, batch 32: under a minute on a CPU
    python benchmarks/bench_trainer.py --only validation   # figure 4 alone
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from otblocks import Penalty, build_model, load_config
from otblocks.data import DataBundle
from otblocks.training import Trainer, evaluate_depths
from otblocks.training.optim import make_optimizer
from otblocks.training.stats import Accumulator

COMMON = [
    "data.name=cifar10",
    "model.kind=resnet",
    "model.depth=8",
    "model.blocks_per_module=1",
    "model.head=conv",
    "model.head_pool=2",
    "train.optimizer=sgd",
    "train.lr=0.003",
    "train.momentum=0.9",
    "train.weight_decay=2e-4",
    "train.epochs=1",
    "train.cache_frozen=false",
]
STAGES = ["model.stem_channels=16", "model.stage_blocks=[3, 3, 2]", "model.stage_channels=[16, 32, 64]"]
"""A CIFAR ResNet of 3 stages, 16/32/64 channels, stride 2 between stages."""


def flat(width: int) -> list[str]:
    """8 blocks of ``width`` channels after a stem, no downsampling (the papers' "K blocks after a stem")."""
    return [f"model.stem_channels={width}"]


def make_trainer(regime: str, size: int, batch: int, n_batches: int, device: torch.device, model: list[str]) -> Trainer:
    config = load_config(None, COMMON + model + [f"train.regime={regime}", f"train.batch_size={batch}"])
    g = torch.Generator().manual_seed(0)
    images = lambda n: TensorDataset(
        torch.randn(n, 3, size, size, generator=g), torch.randint(0, 10, (n,), generator=g)
    )
    data = DataBundle(images(batch * n_batches), images(batch), images(batch), 10, (3, size, size))
    torch.manual_seed(0)
    net = build_model(config.model, data.input_shape, data.n_classes).to(device)
    return Trainer(config, net, data, device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---------------------------------------------------------------- 1 and 3: step times
def trainer_step(trainer: Trainer, penalty: Penalty, x: torch.Tensor, y: torch.Tensor) -> None:
    trainer.penalty = penalty
    for k in range(trainer.net.n_modules):
        x = trainer.module_step(k, x, y, 0, Accumulator())


def hand_step(net, opts, x: torch.Tensor, y: torch.Tensor) -> None:
    for k in range(net.n_modules):
        opts[k].zero_grad(set_to_none=True)
        h = net.stem(x) if k == 0 else x
        out = net.block_modules[k](h)
        loss = F.cross_entropy(net.heads[k](out), y)
        loss.backward()
        opts[k].step()
        x = out.detach()


def step_times(
    size: int, batch: int, n_batches: int, rounds: int, device: torch.device, model: list[str]
) -> dict[str, list[float]]:
    """Seconds of every step (one batch through all modules) of each variant, in matching order."""
    trainer = make_trainer("parallel", size, batch, n_batches, device, model)
    trainer.set_modes(None)
    free = Penalty(lambda k, epoch: float("inf"), trainer.net.n_modules)
    tight = Penalty(lambda k, epoch: 1.0, trainer.net.n_modules)
    hand_net = copy.deepcopy(trainer.net)
    hand_opts = [make_optimizer(hand_net.trainable(k), trainer.config.train) for k in range(hand_net.n_modules)]
    g = torch.Generator().manual_seed(1)
    batches = [
        (
            torch.randn(batch, 3, size, size, generator=g).to(device),
            torch.randint(0, 10, (batch,), generator=g).to(device),
        )
        for _ in range(n_batches)
    ]
    variants = {
        "trainer": lambda x, y: trainer_step(trainer, free, x, y),
        "hand": lambda x, y: hand_step(hand_net, hand_opts, x, y),
        "penalty": lambda x, y: trainer_step(trainer, tight, x, y),
    }
    clock = time.perf_counter if device.type == "cuda" else time.process_time
    names = list(variants)
    for x, y in batches:  # warm-up
        for run in variants.values():
            run(x, y)
    times: dict[str, list[float]] = {name: [] for name in variants}
    step = 0
    for _ in range(rounds):
        for x, y in batches:
            for name in names[step % 3 :] + names[: step % 3]:
                sync(device)
                start = clock()
                variants[name](x, y)
                sync(device)
                times[name].append(clock() - start)
            step += 1
    return times


def median_ratio(a: list[float], b: list[float]) -> float:
    return statistics.median(x / y for x, y in zip(a, b))


# ---------------------------------------------------------------- 2: memory
def tensor_bytes(net: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in (*net.parameters(), *net.buffers()))


def cpu_peak(run) -> int:
    """Highest running sum of CPU allocations minus frees while ``run()`` executes (profiler events)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    events = sorted(
        (e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"), key=lambda e: e.start_ns()
    )
    live = peak = 0
    for e in events:
        live += e.nbytes()
        peak = max(peak, live)
    return peak


def peak_memory(regime: str, size: int, batch: int, device: torch.device, model: list[str]) -> int:
    trainer = make_trainer(regime, size, batch, 2, device, model)
    items = trainer.plan
    if device.type == "cuda":
        peaks = [r["peak_memory_bytes"] for item in items for r in trainer.run_item(item) if r["split"] == "train"]
        return max(peaks)
    return tensor_bytes(trainer.net) + cpu_peak(lambda: [trainer.run_item(item) for item in items])


# ---------------------------------------------------------------- 4: validation
VALIDATION_NET = [
    "data.name=mnist",
    "model.kind=resnet",
    "model.stem_channels=16",
    "model.depth=10",
    "model.blocks_per_module=1",
    "model.head=conv",
    "model.head_pool=2",
    "train.regime=sequential",
    "train.batch_size=128",
    "transport.tau=1",
]


class _PreviousValidation(Trainer):
    """The validation of otblocks 0.1: every head up to the current one, through the frozen modules, raw split."""

    def _validate(self, item, modules):
        taus = [self.tau(k, item.epoch) for k in range(self.net.n_modules)]
        val = evaluate_depths(
            self.net,
            self.data.val,
            batch_size=self.config.train.eval_batch_size,
            device=self.device,
            penalty=self.penalty,
            taus=taus,
            upto=max(modules),
        )
        return {k: val[k] for k in modules}


def validation_share(kind: type[Trainer], epochs: int, n: int, device: torch.device) -> float:
    """Summed validation seconds / summed training seconds of one sequential run."""
    config = load_config(None, VALIDATION_NET + [f"train.epochs={epochs}"])
    g = torch.Generator().manual_seed(0)
    images = lambda m: TensorDataset(torch.randn(m, 1, 28, 28, generator=g), torch.randint(0, 10, (m,), generator=g))
    data = DataBundle(images(n), images(n), images(n), 10, (1, 28, 28))
    torch.manual_seed(0)
    trainer = kind(config, build_model(config.model, data.input_shape, data.n_classes).to(device), data, device)
    seconds = {"train": 0.0, "val": 0.0}
    for item in trainer.plan:
        for split in {r["split"]: r["seconds"] for r in trainer.run_item(item)}.items():
            seconds[split[0]] += split[1]
    return seconds["val"] / seconds["train"]


# ---------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller images and batches, fewer rounds")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=("cpu", "cuda"))
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--only", choices=("validation",), help="measure figure 4 only")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    size, width, batch, n_batches, rounds = (16, 16, 32, 4, 15) if args.quick else (32, 32, 64, 4, 9)
    model = flat(width)

    start = time.perf_counter()
    epochs = 2 if args.quick else 3
    validation = validation_share(Trainer, epochs, 500, device)
    previous = validation_share(_PreviousValidation, epochs, 500, device)
    if args.only == "validation":
        print(
            f"bench_trainer: validation time / training time, sequential, 10 blocks of 16 channels at 1x28x28, "
            f"{epochs} epochs per module, 500 training and 500 validation images; device {device}, "
            f"{torch.get_num_threads()} threads"
        )
        print(
            f"| validation / training: {validation:.3f} (goal <= 0.15, {'yes' if validation <= 0.15 else 'NO'}); "
            f"previous behaviour (every head through the frozen modules): {previous:.3f} |"
        )
        print(f"total {time.perf_counter() - start:.0f} s")
        return
    times = step_times(size, batch, n_batches, rounds, device, model)
    seq = peak_memory("sequential", size, batch, device, model)
    e2e = peak_memory("e2e", size, batch, device, model)
    seq_stages = peak_memory("sequential", size, batch, device, STAGES)
    e2e_stages = peak_memory("e2e", size, batch, device, STAGES)
    overhead = median_ratio(times["trainer"], times["hand"])
    penalty = median_ratio(times["penalty"], times["trainer"])
    memory = seq / e2e

    ms = lambda name: 1e3 * statistics.median(times[name])
    how = "CUDA allocator peak" if device.type == "cuda" else "live tensor bytes (torch.profiler)"
    print(
        f"bench_trainer: 8-module conv ResNet (8 blocks of {width} channels after a stem, 1 block per module, "
        "conv heads), "
        f"3x{size}x{size} inputs, batch {batch}, "
        f"SGD; device {device}, {torch.get_num_threads()} threads; {rounds} rounds of {n_batches} steps"
    )
    print()
    print(f"| {'figure':<44} | {'measured':>9} | {'goal':>7} | {'ok':<3} |")
    print(f"|{'-' * 46}|{'-' * 11}|{'-' * 9}|{'-' * 5}|")
    for name, value, goal in (
        ("step time, trainer / hand-written loop", overhead, 1.05),
        ("peak memory, sequential / end-to-end", memory, 0.35),
        ("step time, penalty (tau = 1) / tau = inf", penalty, 1.03),
        ("validation / training time, sequential", validation, 0.15),
    ):
        print(
            f"| {name:<44} | {value:>9.3f} | {'<= ' + format(goal, '.2f'):>7} | {'yes' if value <= goal else 'NO':<3} |"
        )
    print()
    ratios = sorted(t / h for t, h in zip(times["trainer"], times["hand"]))
    quartiles = f"{ratios[len(ratios) // 4]:.3f}..{ratios[3 * len(ratios) // 4]:.3f}"
    print(
        f"step (8 modules, median {'wall' if device.type == 'cuda' else 'CPU'} time): hand {ms('hand'):.1f} ms, "
        f"trainer {ms('trainer'):.1f} ms, trainer with penalty {ms('penalty'):.1f} ms; "
        f"trainer/hand over {len(ratios)} steps: quartiles {quartiles}"
    )
    print(
        f"peak memory ({how}): sequential {seq / 2**20:.1f} MiB, end-to-end {e2e / 2**20:.1f} MiB "
        "(end-to-end also trains the 7 intermediate heads as probes on detached features)"
    )
    print(
        f"peak memory of a 3-stage ResNet (16/32/64 channels, 3+3+2 blocks): sequential {seq_stages / 2**20:.1f} MiB, "
        f"end-to-end {e2e_stages / 2**20:.1f} MiB, ratio {seq_stages / e2e_stages:.3f}"
    )
    print(
        f"validation / training time (10 blocks of 16 channels at 1x28x28, sequential, {epochs} epochs per module, "
        f"500 training and 500 validation images): {validation:.3f}; previous behaviour (every head through the "
        f"frozen modules on the raw split): {previous:.3f}"
    )
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
