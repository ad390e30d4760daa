r"""Run configuration: frozen dataclasses loaded from TOML and overridable from the shell.

A configuration has five sections, ``[data]``, ``[model]``, ``[transport]``, ``[train]``
and ``[distributed]``, one frozen dataclass each. :func:`load_config` reads a TOML file, applies
``section.key=value`` overrides and validates everything before any work starts; a bad
value raises :class:`ConfigError` whose one-line message names the key, the value given
and what is allowed.

Units of ``transport.tau``: the penalty added to module :math:`k`'s loss is

.. math::

    \frac{1}{2\tau} \frac{1}{B} \sum_{i=1}^{B} \sum_{m<M} \lVert g_m(\psi^i_m) \rVert_2^2

(``normalization = "sample"``: squared norm summed over the feature dimensions, mean over
the batch of size :math:`B`), so :math:`\tau` is in squared feature units and does not depend
on the tensor size; ``normalization = "element"`` replaces the sum over features by the
mean over all elements, as in the authors' code, so that their published values of
:math:`\tau` can be reused.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, FileSystemError
from .footprint import check_fits

__all__ = [
    "ConfigError",
    "DataConfig",
    "ModelConfig",
    "TransportConfig",
    "TrainConfig",
    "DistributedConfig",
    "RunConfig",
    "load_config",
    "config_from_dict",
    "apply_overrides",
    "TOY_DATASETS",
    "IMAGE_DATASETS",
    "REGIMES",
]

TOY_DATASETS = ("moons", "circles", "spirals", "gaussians")
IMAGE_DATASETS = ("mnist", "fashionmnist", "cifar10", "cifar100", "stl10", "digits")
REGIMES = ("e2e", "sequential", "multilap", "parallel")


@dataclass(frozen=True)
class DataConfig:
    """Where the data come from and how much of it is used.

    Toy data sets (``moons``, ``circles``, ``spirals``, ``gaussians``) are drawn in 2-D;
    train, validation and test are independent draws seeded from ``seed``.

    Image data sets (``mnist``, ``fashionmnist``, ``cifar10``, ``cifar100``, ``stl10`` read by
    torchvision from ``root``; ``digits``, scikit-learn's 8x8 digits) keep their test set; a
    stratified validation split of ``val_fraction`` is carved out of the training set, then a
    stratified training subset of ``train_fraction`` of the rest, or of ``per_class`` images
    per class, all seeded by ``seed``. ``augment`` turns on the data set's usual augmentation
    (random crop and flip for CIFAR and STL-10; MNIST and digits have none).
    """

    name: str = "moons"
    root: str = "data"
    download: bool = False
    n_train: int = 1000
    n_val: int = 1000
    n_test: int = 2000
    noise: float = 0.1
    n_classes: int = 2
    seed: int = 0
    # image data sets: stratified subset of the training set, validation carved out of it
    train_fraction: float = 1.0
    per_class: int = 0
    val_fraction: float = 0.1
    augment: bool = True


@dataclass(frozen=True)
class ModelConfig:
    """The residual network: ``depth`` blocks grouped into modules, one head per module.

    ``kind = "mlp"`` is the vector model: an input map (identity when the data dimension
    equals ``width``), then ``depth`` blocks :math:`x + g(x)` with :math:`g` a one-hidden-layer
    MLP of ``hidden`` units.

    ``kind = "resnet"`` is the convolutional model for images: a 3x3 convolution stem of
    ``stem_channels``, then stages of ``stage_blocks[i]`` pre-activation basic blocks of
    ``stage_channels[i]`` channels, the first block of every stage after the first with
    stride 2 (``depth`` must equal ``sum(stage_blocks)``; empty lists: one stage of ``depth``
    blocks of ``stem_channels``). ``shortcut`` of the blocks that change shape: ``projection``
    (1x1 convolution) or ``pad`` (average pooling and zero channels). ``head``: ``linear``
    (global pooling, linear), ``mlp`` or ``conv`` (the papers' auxiliary classifier, pooled to
    ``head_pool`` x ``head_pool``). ``init``: ``default`` (PyTorch's), ``orthogonal`` or
    ``kaiming``, scaled by ``init_gain``.
    """

    kind: str = "mlp"
    depth: int = 8
    width: int = 2
    hidden: int = 16
    activation: str = "tanh"
    blocks_per_module: int = 1
    head: str = "linear"
    head_hidden: int = 32
    # conv models
    stem_channels: int = 16
    stage_blocks: list[int] = field(default_factory=list)
    stage_channels: list[int] = field(default_factory=list)
    shortcut: str = "projection"
    head_pool: int = 2
    split_points: list[int] = field(default_factory=list)
    init: str = "default"
    init_gain: float = 1.0


@dataclass(frozen=True)
class TransportConfig:
    r"""The transport (kinetic-energy) penalty and its :math:`\tau` schedule.

    ``tau`` is a positive number or ``inf`` (no penalty, plain greedy training). ``schedule``:
    ``constant``; ``varying`` (the first :math:`\lfloor K/2 \rfloor` modules use
    :math:`\tau/2`, the others :math:`\tau`); ``list`` (``taus`` gives one value per module);
    ``multiplier`` (method of multipliers: every module starts at :math:`\lambda_k = \tau` and
    after every ``multiplier_period`` optimizer steps adds ``multiplier_step`` times its task
    loss; see :class:`otblocks.transport.Penalty`).
    ``form``: ``kinetic`` (sum over the blocks of :math:`\lVert g_m \rVert^2`) or ``monge``
    (:math:`\lVert T(x) - x \rVert^2` over the whole module). ``normalization``: ``sample``
    (sum over features, mean over the batch) or ``element`` (mean over all elements).
    """

    tau: float = math.inf
    schedule: str = "constant"
    taus: list[float] = field(default_factory=list)
    form: str = "kinetic"
    normalization: str = "sample"
    multiplier_step: float = 0.1
    multiplier_period: int = 100


@dataclass(frozen=True)
class TrainConfig:
    """How the modules are trained.

    ``epochs`` is each module's budget: in ``sequential`` every module gets ``epochs``
    epochs in turn; in ``multilap`` ``laps`` laps give it ``epochs / laps`` each; in
    ``parallel`` and ``e2e`` all modules train together for ``epochs`` epochs.

    ``amp`` (autocast to ``bf16`` or ``fp16``, with a gradient scaler for ``fp16``) acts on CUDA
    only; ``channels_last`` and ``compile`` (``torch.compile`` of the blocks' parts and the
    heads) act on any device but pay off on CUDA.
    ``cache_frozen``: in ``sequential`` and ``multilap``, without augmentation, the frozen
    modules' outputs on the whole training set are computed once per module and lap and kept on
    the training device, if they fit in ``cache_budget_mb`` MiB; otherwise they are recomputed
    batch by batch. The same holds for the validation set's inputs of the current module.
    ``eval_every``: the validation records of an epoch are written every ``eval_every`` epochs
    of a module (always at its last epoch of a lap, and at the run's last epoch); the summary
    does not depend on it. ``tensorboard``: also write the records as TensorBoard scalars
    (``tensorboard/`` beside ``metrics.jsonl``; needs ``pip install -e ".[tensorboard]"``).
    """

    regime: str = "sequential"
    epochs: int = 20
    laps: int = 1
    batch_size: int = 128
    eval_batch_size: int = 1024
    optimizer: str = "adam"
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    lr_schedule: str = "constant"
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.1
    label_smoothing: float = 0.0
    seed: int = 0
    device: str = "auto"
    checkpoint_every: int = 1
    threads: int = 0
    # CUDA performance options
    amp: str = "none"
    channels_last: bool = False
    compile: bool = False
    workers: int = 0
    deterministic: bool = False
    cache_frozen: bool = True
    cache_budget_mb: int = 1024
    eval_every: int = 1
    tensorboard: bool = False


@dataclass(frozen=True)
class DistributedConfig:
    """Pipeline-parallel training on ``torch.distributed`` (``otblocks train --distributed``).

    ``placement`` gives the number of consecutive modules each rank owns (empty: balanced
    by ``balance``, ``parameters`` or measured step ``time``); ``max_in_flight`` bounds the
    batches sent to a stage and not yet taken by it; ``replay`` > 0 enables a replay buffer that
    reuses each stored batch at most that many times; ``timeout`` (seconds) bounds every wait
    on another rank; ``backend`` is ``auto`` (NCCL on CUDA, gloo on CPU), ``gloo`` or ``nccl``.
    """

    placement: list[int] = field(default_factory=list)
    balance: str = "parameters"
    max_in_flight: int = 1
    replay: int = 0
    timeout: float = 60.0
    backend: str = "auto"


@dataclass(frozen=True)
class RunConfig:
    """A whole run: the five sections."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    transport: TransportConfig = field(default_factory=TransportConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)

    @property
    def n_modules(self) -> int:
        """Number of modules :math:`K` (with explicit ``split_points``, their count + 1)."""
        if self.model.split_points:
            return len(self.model.split_points) + 1
        return self.model.depth // self.model.blocks_per_module

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain nested dict; ``inf`` stays a float (TOML and our JSON writer accept it)."""
        return {f.name: dataclasses.asdict(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def relevant_dict(self) -> dict[str, dict[str, Any]]:
        """:meth:`to_dict` less the ``[data]`` keys that do not apply to this data set (toy sizes
        and noise for an image set; subsets, augmentation and files for a toy)."""
        out = self.to_dict()
        unused = _IMAGE_ONLY_KEYS if self.data.name in TOY_DATASETS else _TOY_ONLY_KEYS
        out["data"] = {k: v for k, v in out["data"].items() if k not in unused}
        return out

    def replace(self, **sections: Any) -> RunConfig:
        """A copy with whole sections replaced (``RunConfig.replace(train=...)``)."""
        return dataclasses.replace(self, **sections)


_TOY_ONLY_KEYS = frozenset({"n_train", "n_val", "n_test", "noise", "n_classes"})
_IMAGE_ONLY_KEYS = frozenset({"root", "download", "train_fraction", "per_class", "val_fraction", "augment"})

_SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "transport": TransportConfig,
    "train": TrainConfig,
    "distributed": DistributedConfig,
}


def _allowed(values: Sequence[str]) -> str:
    return "{" + ", ".join(repr(v) for v in values) + "}"


def _fail(key: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"The '{key}' config key must be {allowed}; got {value!r}.")


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """Check one value against its field's type, converting ints to floats and 'inf'."""
    origin = typing.get_origin(annotation)
    if origin is list:
        (item_type,) = typing.get_args(annotation)
        if not isinstance(value, list):
            raise _fail(key, value, f"a list of {item_type.__name__}")
        return [_coerce(key, v, item_type) for v in value]
    if annotation is bool:
        if not isinstance(value, bool):
            raise _fail(key, value, "true or false")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(key, value, "an integer")
        return value
    if annotation is float:
        if isinstance(value, str) and value.strip().lower() in ("inf", "+inf", "infinity"):
            return math.inf
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(key, value, "a number")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise _fail(key, value, "a string")
        return value
    raise TypeError(f"unsupported annotation {annotation!r} for {key}")  # pragma: no cover


def config_from_dict(raw: Mapping[str, Any]) -> RunConfig:
    """Build and validate a :class:`RunConfig` from a nested mapping (e.g. parsed TOML).

    Raises
    ------
    ConfigError
        On an unknown section or key, a value of the wrong type, or a value out of range.
    """
    sections: dict[str, Any] = {}
    for name, values in raw.items():
        if name not in _SECTIONS:
            raise ConfigError(f"Unknown config section [{name}]; allowed sections are {_allowed(list(_SECTIONS))}.")
        if not isinstance(values, Mapping):
            raise ConfigError(f"The config section [{name}] must be a table; got {values!r}.")
        cls = _SECTIONS[name]
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for key, value in values.items():
            if key not in hints:
                raise ConfigError(
                    f"Unknown config key '{name}.{key}'; allowed keys of [{name}] are {_allowed(list(hints))}."
                )
            kwargs[key] = _coerce(f"{name}.{key}", value, hints[key])
        sections[name] = cls(**kwargs)
    config = RunConfig(**sections)
    validate(config)
    return config


def _parse_value(text: str) -> Any:
    """Parse the right-hand side of ``--set key=value`` as a TOML value, else a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


_EXCLUSIVE = {("data", "per_class"): "train_fraction", ("data", "train_fraction"): "per_class"}
"""Keys that choose the same thing two ways: overriding one drops the file's value of the other."""


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings to a nested dict (a new dict is returned).

    An override of one of two exclusive keys (``data.per_class`` and ``data.train_fraction``, two
    ways to size the training subset) drops the file's value of the other, unless the same
    overrides set it too: ``--set data.per_class=54`` on a config with ``train_fraction = 0.01``
    means 54 images per class.
    """
    merged = {k: dict(v) if isinstance(v, Mapping) else v for k, v in raw.items()}
    named = {tuple(o.split("=", 1)[0].strip().split(".", 1)) for o in overrides if "=" in o}
    for (section, key), other in _EXCLUSIVE.items():
        if (section, key) in named and (section, other) not in named and isinstance(merged.get(section), dict):
            merged[section].pop(other, None)
    for item in overrides:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ConfigError(
                f"An override must look like 'section.key=value' (e.g. 'transport.tau=0.5'); got {item!r}."
            )
        dotted, text = item.split("=", 1)
        section, key = dotted.strip().split(".", 1)
        merged.setdefault(section, {})
        if not isinstance(merged[section], dict):
            raise ConfigError(f"The config section [{section}] must be a table; got {merged[section]!r}.")
        merged[section][key] = _parse_value(text.strip())
    return merged


def load_config(path: str | Path | None, overrides: Sequence[str] = ()) -> RunConfig:
    """Read a TOML config file, apply overrides, validate.

    Parameters
    ----------
    path : str or Path or None
        The TOML file; ``None`` starts from the defaults.
    overrides : sequence of str
        ``section.key=value`` strings, the value in TOML syntax (bare words are strings).
    """
    if isinstance(overrides, (str, bytes)) or not all(isinstance(o, str) for o in overrides):
        raise TypeError(
            "The 'overrides' parameter of `load_config` must be a list of 'section.key=value' strings; "
            f"got {overrides!r}."
        )
    raw = read_toml(path, "config file") if path is not None else {}
    return config_from_dict(apply_overrides(raw, overrides))


def read_toml(path: str | Path, what: str = "config file", *, broken: type[Exception] = ConfigError) -> dict[str, Any]:
    """Parse a TOML file; a missing, unreadable, non-UTF-8 or malformed file is one line naming it.

    Raises
    ------
    ConfigError
        When ``path`` is not a file.
    FileSystemError
        When the file cannot be read (permissions).
    ConfigError or BrokenFileError
        (``broken``) When it is not UTF-8 or not TOML: a usage error for a file the user
        gives, a broken file for one the tool wrote (a run's ``config.toml``).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"The {what} '{path}' does not exist" + (" (it is a directory)." if path.is_dir() else "."))
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise FileSystemError(f"Cannot read the {what} '{path}': {err.strerror or err}.") from None
    except UnicodeDecodeError as err:
        raise broken(
            f"The {what} '{path}' must be UTF-8 text (TOML); got a byte {err.object[err.start]:#04x} "
            f"at offset {err.start} that is not UTF-8."
        ) from None
    except tomllib.TOMLDecodeError as err:
        raise broken(f"The {what} '{path}' is not valid TOML: {err}.") from None


def check_run_config(config: Any, func: str) -> None:
    """Raise a one-line :class:`TypeError` when ``config`` is not a :class:`RunConfig` (e.g. a dict)."""
    if not isinstance(config, RunConfig):
        hint = " (build one with otblocks.config.config_from_dict)" if isinstance(config, Mapping) else ""
        raise TypeError(
            f"The 'config' parameter of `{func}` must be a RunConfig (from otblocks.load_config){hint}; "
            f"got {type(config).__name__}."
        )


def config_differences(stored: RunConfig, config: RunConfig, allowed: Sequence[str] = ()) -> list[str]:
    """The ``section.key`` names whose values differ between ``stored`` and ``config``.

    Keys that change how a run executes but not what it computes (``train.device``,
    ``train.workers``, ``distributed.timeout``, ``distributed.backend``) and the keys in
    ``allowed`` (``otblocks train --resume --allow-change KEY``) are not reported.
    """
    ignore = {"train.device", "train.workers", "distributed.timeout", "distributed.backend", *allowed}
    old = stored.to_dict()
    return [
        f"{section}.{key}"
        for section, values in config.to_dict().items()
        for key, value in values.items()
        if f"{section}.{key}" not in ignore and old[section][key] != value
    ]


def check_allowed_keys(keys: Sequence[str]) -> None:
    """Every entry of ``--allow-change`` must be a ``section.key`` of the configuration."""
    for key in keys:
        section, _, name = key.partition(".")
        if section not in _SECTIONS or name not in typing.get_type_hints(_SECTIONS[section]):
            raise ConfigError(f"The '--allow-change' option must name config keys like 'train.lr'; got {key!r}.")


def _check_choice(key: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise _fail(key, value, f"one of {_allowed(choices)}")


def _check_positive(key: str, value: float, *, allow_zero: bool = False) -> None:
    """A finite number > 0 (``allow_zero``: >= 0); NaN and infinities are refused."""
    if not (value > 0 or (allow_zero and value == 0)) or not math.isfinite(value):
        raise _fail(key, value, "a finite number >= 0" if allow_zero else "a finite positive number")


def _validate_stages(m: ModelConfig) -> None:
    """The stage layout of a conv ResNet: lengths, positive entries, ``depth`` = their sum."""
    if len(m.stage_blocks) != len(m.stage_channels):
        raise _fail(
            "model.stage_channels",
            m.stage_channels,
            f"a list of {len(m.stage_blocks)} channel counts (one per entry of model.stage_blocks)",
        )
    if any(b < 1 for b in m.stage_blocks):
        raise _fail("model.stage_blocks", m.stage_blocks, "a list of positive block counts")
    if any(c < 1 for c in m.stage_channels):
        raise _fail("model.stage_channels", m.stage_channels, "a list of positive channel counts")
    if m.stage_blocks and sum(m.stage_blocks) != m.depth:
        raise _fail("model.depth", m.depth, f"the sum of model.stage_blocks ({sum(m.stage_blocks)})")
    widths = [m.stem_channels, *m.stage_channels]
    if m.shortcut == "pad" and any(b < a for a, b in zip(widths, widths[1:])):
        raise _fail(
            "model.shortcut",
            m.shortcut,
            f"'projection' when the channels decrease (stem, stages: {widths}); 'pad' only adds zero channels",
        )


def validate(config: RunConfig) -> None:
    """Check ranges and cross-field constraints; raise :class:`ConfigError` on the first."""
    d, m, t, tr = config.data, config.model, config.transport, config.train
    _check_choice("data.name", d.name, TOY_DATASETS + IMAGE_DATASETS)
    for key in ("n_train", "n_val", "n_test"):
        if getattr(d, key) < (2 if key != "n_val" else 1):
            raise _fail(f"data.{key}", getattr(d, key), "an integer >= 2")
    _check_positive("data.noise", d.noise, allow_zero=True)
    if d.n_classes < 2:
        raise _fail("data.n_classes", d.n_classes, "an integer >= 2")
    if d.name in ("moons", "circles") and d.n_classes != 2:
        raise _fail("data.n_classes", d.n_classes, f"2 for data.name = '{d.name}'")
    if not 0 < d.train_fraction <= 1:
        raise _fail("data.train_fraction", d.train_fraction, "a number in (0, 1]")
    if d.per_class < 0:
        raise _fail("data.per_class", d.per_class, "an integer >= 0 (0: use train_fraction)")
    if not 0 < d.val_fraction < 1:
        raise _fail("data.val_fraction", d.val_fraction, "a number in (0, 1)")
    if d.per_class and d.train_fraction != 1:
        raise _fail("data.per_class", d.per_class, "0 when data.train_fraction is set (give one of them)")
    for key, seed in (("data.seed", d.seed), ("train.seed", config.train.seed)):
        if not 0 <= seed < 2**32:
            raise _fail(key, seed, "an integer in [0, 2**32)")

    _check_choice("model.kind", m.kind, ("mlp", "resnet"))
    if m.kind == "mlp" and d.name in IMAGE_DATASETS and d.name != "digits":
        raise _fail("model.kind", m.kind, f"'resnet' for the image data set '{d.name}'")
    if m.kind == "resnet" and d.name in TOY_DATASETS:
        raise _fail("model.kind", m.kind, f"'mlp' for the toy data set '{d.name}'")
    for key in ("depth", "width", "hidden", "blocks_per_module", "head_hidden", "stem_channels", "head_pool"):
        if getattr(m, key) < 1:
            raise _fail(f"model.{key}", getattr(m, key), "a positive integer")
    _check_choice("model.activation", m.activation, ("tanh", "relu", "gelu"))
    _check_choice("model.head", m.head, ("linear", "mlp", "conv") if m.kind == "resnet" else ("linear", "mlp"))
    _check_choice("model.shortcut", m.shortcut, ("projection", "pad"))
    _check_choice("model.init", m.init, ("default", "orthogonal", "kaiming"))
    _check_positive("model.init_gain", m.init_gain)
    if m.kind == "resnet":
        _validate_stages(m)
    if m.split_points:
        if sorted(set(m.split_points)) != list(m.split_points) or not all(0 < s < m.depth for s in m.split_points):
            raise _fail("model.split_points", m.split_points, f"strictly increasing block indices in (0, {m.depth})")
    elif m.depth % m.blocks_per_module:
        raise ConfigError(
            f"The 'model.depth' config key must be divisible by 'model.blocks_per_module' "
            f"({m.blocks_per_module}); got {m.depth}."
        )

    if not t.tau > 0:
        raise _fail("transport.tau", t.tau, "a positive number or inf")
    _check_choice("transport.schedule", t.schedule, ("constant", "varying", "list", "multiplier"))
    if t.schedule == "multiplier":
        if t.tau == math.inf:
            raise _fail(
                "transport.tau", t.tau, "a positive number (the multiplier's start) with schedule = 'multiplier'"
            )
        if not (0 < t.multiplier_step < math.inf):
            raise _fail("transport.multiplier_step", t.multiplier_step, "a positive finite number (h)")
        if t.multiplier_period < 1:
            raise _fail("transport.multiplier_period", t.multiplier_period, "a positive integer (optimizer steps)")
    _check_choice("transport.form", t.form, ("kinetic", "monge"))
    _check_choice("transport.normalization", t.normalization, ("sample", "element"))
    if t.schedule == "list":
        if len(t.taus) != config.n_modules:
            raise _fail("transport.taus", t.taus, f"a list of {config.n_modules} values (one per module)")
        for value in t.taus:
            if not value > 0:
                raise _fail("transport.taus", t.taus, "a list of positive numbers or inf")
    elif t.taus:
        raise _fail("transport.taus", t.taus, "empty unless transport.schedule = 'list'")

    _check_choice("train.regime", tr.regime, REGIMES)
    for key in ("epochs", "laps", "batch_size", "eval_batch_size", "checkpoint_every", "eval_every"):
        if getattr(tr, key) < 1:
            raise _fail(f"train.{key}", getattr(tr, key), "a positive integer")
    if tr.regime == "multilap" and tr.epochs % tr.laps:
        raise ConfigError(
            f"The 'train.epochs' config key must be divisible by 'train.laps' ({tr.laps}) "
            f"in the multilap regime; got {tr.epochs}."
        )
    if tr.regime != "multilap" and tr.laps != 1:
        raise _fail("train.laps", tr.laps, "1 unless train.regime = 'multilap'")
    _check_choice("train.optimizer", tr.optimizer, ("adam", "adamw", "sgd"))
    _check_positive("train.lr", tr.lr)
    _check_positive("train.weight_decay", tr.weight_decay, allow_zero=True)
    if not 0 <= tr.momentum < 1:
        raise _fail("train.momentum", tr.momentum, "a number in [0, 1)")
    _check_choice("train.lr_schedule", tr.lr_schedule, ("constant", "cosine", "multistep"))
    if tr.lr_schedule == "multistep" and not tr.milestones:
        raise _fail("train.milestones", tr.milestones, "a non-empty list of epochs for lr_schedule = 'multistep'")
    if not 0 < tr.gamma <= 1:
        raise _fail("train.gamma", tr.gamma, "a number in (0, 1] (the factor of the learning rate at each milestone)")
    if not 0 <= tr.label_smoothing < 1:
        raise _fail("train.label_smoothing", tr.label_smoothing, "a number in [0, 1)")
    _check_choice("train.device", tr.device, ("auto", "cpu", "cuda"))
    _check_choice("train.amp", tr.amp, ("none", "bf16", "fp16"))
    if tr.workers < 0:
        raise _fail("train.workers", tr.workers, "an integer >= 0")
    if tr.threads < 0:
        raise _fail("train.threads", tr.threads, "an integer >= 0 (0: PyTorch's default)")
    if tr.cache_budget_mb < 0:
        raise _fail("train.cache_budget_mb", tr.cache_budget_mb, "an integer >= 0")
    if sorted(set(tr.milestones)) != list(tr.milestones) or any(e < 1 for e in tr.milestones):
        raise _fail("train.milestones", tr.milestones, "strictly increasing positive epochs")

    dist = config.distributed
    if any(p < 1 for p in dist.placement) or (dist.placement and sum(dist.placement) != config.n_modules):
        raise _fail(
            "distributed.placement",
            dist.placement,
            f"empty or positive module counts per rank summing to {config.n_modules}",
        )
    _check_choice("distributed.balance", dist.balance, ("parameters", "time"))
    if dist.max_in_flight < 1:
        raise _fail("distributed.max_in_flight", dist.max_in_flight, "a positive integer")
    if dist.replay < 0:
        raise _fail("distributed.replay", dist.replay, "an integer >= 0 (0: no replay buffer)")
    _check_positive("distributed.timeout", dist.timeout)
    _check_choice("distributed.backend", dist.backend, ("auto", "gloo", "nccl"))
    check_fits(config)
