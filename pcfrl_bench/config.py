"""Typed run configuration: schema defaults -> method YAML -> task YAML -> presets -> ``--set`` overrides.

The schema is a tree of dataclasses. The ``method`` and ``task`` sections are typed by the ``Params``
dataclass of the registered implementation, so every key, also a method's own hyper-parameter, is checked:
an unknown key is an error that lists the close matches, and every value is converted to its field's type.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import ConfigError, UnknownNameError
from .inputs import check_text, quote, read_yaml, yaml_text

PRESETS = ("smoke", "demo", "quick", "paper")
# A preset that extends another: the base preset's layers of every method and task apply first, then its own. ``demo``
# (``make demo``) is the quick preset of every method with the synthetic tasks' smaller demo budget on top.
PRESET_BASES = {"demo": "quick"}
SEED_MAX = 2**31 - 1  # seeds lie in [-SEED_MAX - 1, SEED_MAX]: random, numpy and torch take them and their epoch seeds
EPOCHS_MAX = 100_000  # the paper trains 1000 epochs
BATCH_MAX = 65_536
IMAGE_SIZE_MAX = 1024  # pixels per side; the paper's largest is 256
COUNT_MAX = 10**9  # caps on a number of items (0 = all)
TASK_SOURCE = "task"  # data.source of the supervised ceiling: the evaluated task's labelled training data


def hash_neutral(default: Any) -> Any:
    """A config field added after records were stored, whose ``default`` is the behaviour before it existed:
    at that default it is left out of the config hashes, so those records still match their registry config."""
    return field(default=default, metadata={"hash_neutral": True})


def unhashed(default: Any) -> Any:
    """How a run computes, not what: a field whose every value gives the same results up to float rounding
    (like ``run.device`` and the thread count); never part of the config hashes, so changing it, or its
    default, keeps records and pretraining checkpoints matched."""
    return field(default=default, metadata={"unhashed": True})


def bounded(default: Any, low: float, high: float | None = None, *, open_low: bool = False,
            open_high: bool = False, neutral: bool = False, execution: bool = False) -> Any:
    """A field whose value (each item of a tuple) must lie in [low, high] (bounds excluded where open); any
    float must also be finite. Checked when the config is built, before any work, so a bad value is a
    ConfigError naming the key, the value and the range. Every size, count and epoch key has a ``high``: a
    physical bound far above any real use, so a typo cannot start a run that never ends or allocates
    terabytes. ``neutral``: also :func:`hash_neutral`; ``execution``: also :func:`unhashed`."""
    metadata: dict[str, Any] = {"range": (low, high, open_low, open_high)}
    if neutral:
        metadata["hash_neutral"] = True
    if execution:
        metadata["unhashed"] = True
    return field(default=default, metadata=metadata)


def field_range(f: dataclasses.Field) -> str | None:
    """The accepted range of a bounded field as text (``[0, 100000]``, ``> 0``), None when unbounded."""
    if "range" not in f.metadata:
        return None
    low, high, open_low, open_high = f.metadata["range"]
    if high is None:
        return f"{'> ' if open_low else '>= '}{_number(low)}"
    return f"{'(' if open_low else '['}{_number(low)}, {_number(high)}{')' if open_high else ']'}"


def _number(x: float) -> str:
    return f"{int(x):_}" if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def _check_range(value: Any, f: dataclasses.Field, where: str) -> None:
    low, high, open_low, open_high = f.metadata["range"]
    for i, v in enumerate(value if isinstance(value, tuple) else (value,)):
        name = f"{where}[{i}]" if isinstance(value, tuple) else where
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"{name}: expected a finite number, got {v!r}")
        too_low = v <= low if open_low else v < low
        too_high = high is not None and (v >= high if open_high else v > high)
        if too_low or too_high:
            raise ConfigError(f"{name}: {quote(v)} is out of range; expected {field_range(f)}")


@dataclass
class ModelConfig:
    """The backbone whose frozen features are evaluated (F_s)."""

    backbone: str = "timm:resnet18"  # facecycle, pixels or timm:<model> (the task chooses it)
    small_stem: bool = True  # timm ResNets: 3x3 stride-1 first conv, no max-pool (CIFAR-style, for small inputs)
    # channel multiplier of the ``facecycle`` trunk or a timm ResNet (CPU presets use < 1)
    width: float = bounded(1.0, 0.0, 16.0, open_low=True)
    # inputs arrive in [0, 1]; "imagenet" subtracts the ImageNet mean and divides by its std before the trunk
    # (the official PCL trunk takes [0, 1] images: "none"; the small synthetic-preset trunks need "imagenet")
    input_norm: Literal["none", "imagenet"] = "none"
    batchnorm: bool = False  # facecycle: BatchNorm2d after each conv of the trunk (the official trunk has none)
    # timm ResNets: zero-initialise the last BatchNorm of each residual branch (timm's default). Off by default:
    # with it a random trunk is the identity per block and its pooled features see only a corner of the image
    zero_init_residual: bool = False
    # weights to evaluate instead of pretraining (this project's, a backbone state dict, the official PCL's)
    checkpoint: str = hash_neutral("")
    strict: bool = hash_neutral(True)  # false: missing backbone keys stay random (recorded)
    pretrained: bool = hash_neutral(False)  # timm: start from timm's pretrained weights
    pretrained_file: str = hash_neutral("")  # timm: offline weights file for ``pretrained``


@dataclass
class SyntheticWorldConfig:
    """Size of the synthetic pretraining world (``data.source: synth``): VoxCeleb-like clips per identity."""

    identities: int = bounded(500, 1, 100_000)  # people of the world
    clips_per_identity: int = bounded(4, 1, 100)
    frames_per_clip: int = bounded(16, 1, 10_000)
    seed: int = bounded(0, -SEED_MAX - 1, SEED_MAX)  # seed of the world (identities, clips)
    # the world's look, shared by the pretraining clips and every synth-* task's faces (README "The synthetic world"):
    # AU intensities x expression_scale; face size in the frame x zoom (1.35: the face fills the frame like an
    # aligned face crop)
    expression_scale: float = bounded(1.0, 0.0, 10.0, neutral=True)
    zoom: float = bounded(1.0, 0.5, 2.0, neutral=True)


@dataclass
class DataConfig:
    """Pretraining data."""

    source: str = "digits"  # pretraining data: a name of data.sources (synth, voxceleb, digits, ...) or "task"
    image_size: int = bounded(32, 8, IMAGE_SIZE_MAX)  # side of the pretraining images
    max_samples: int = bounded(0, 0, COUNT_MAX)  # 0 = the whole source; otherwise the first ``max_samples`` items
    # DataLoader workers for pretraining and frozen-feature extraction (results unchanged)
    num_workers: int = bounded(0, 0, 256)
    synthetic: SyntheticWorldConfig = field(default_factory=SyntheticWorldConfig)


@dataclass
class OptimConfig:
    name: Literal["adam", "adamw", "sgd"] = "adam"  # the pretraining optimiser
    lr: float = bounded(1e-3, 0.0)
    weight_decay: float = bounded(1e-6, 0.0)
    betas: tuple[float, float] = bounded((0.9, 0.999), 0.0, 1.0, open_high=True)
    momentum: float = bounded(0.9, 0.0, 1.0)
    scheduler: Literal["cosine", "constant", "official"] = "cosine"  # official: PCL code's T_max=6000 epochs
    warmup_epochs: int = bounded(0, 0, EPOCHS_MAX)  # linear warm-up before the schedule
    min_lr: float = bounded(0.0, 0.0)  # the cosine schedule's floor


@dataclass
class PretrainConfig:
    epochs: int = bounded(100, 0, EPOCHS_MAX)  # 0 = no pretraining (random-init)
    batch_size: int = bounded(256, 2, BATCH_MAX)  # images per step (the global batch under torchrun)
    checkpoint_every: int = bounded(10, 1, EPOCHS_MAX)  # epochs between checkpoints; the last epoch is always saved
    optim: OptimConfig = field(default_factory=OptimConfig)
    precision: Literal["fp32", "bf16", "fp16"] = hash_neutral("fp32")  # autocast dtype (fp16: GradScaler); fp32 losses
    sync_bn: bool = hash_neutral(True)  # under torchrun: BatchNorm over the global batch, as one process
    channels_last: bool = unhashed(True)  # NHWC memory for convolutions: faster, same results up to rounding, never hashed
    # keep the trunk every N epochs (and at epochs 0 and the last) in the pretraining folder's snapshots/, for learning curves
    # (`pcfrl-bench curves`); 0 = none. Training is unchanged, so never hashed
    snapshot_every: int = bounded(0, 0, EPOCHS_MAX, execution=True)


@dataclass
class ProbeConfig:
    """A probe trained on cached frozen features (docs/design.md, Linear evaluation)."""

    head: Literal["linear", "bn_linear"] = "linear"  # bn_linear: BatchNorm1d before the linear layer
    epochs: int = bounded(300, 1, EPOCHS_MAX)  # the probe's epochs; the final epoch is the result
    batch_size: int = bounded(256, 1, BATCH_MAX)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = bounded(1e-2, 0.0, open_low=True)
    weight_decay: float = bounded(0.0, 0.0)
    scheduler: Literal["cosine", "constant"] = "cosine"
    normalize: Literal["none", "standardize", "l2"] = "standardize"  # fitted on the training split
    # AU probes (BCE): "balanced" weighs each AU's positives by its negative/positive ratio in the training fold
    pos_weight: Literal["none", "balanced"] = "none"


@dataclass
class EvalConfig:
    image_size: int = bounded(32, 8, IMAGE_SIZE_MAX)  # side of the evaluation images (the trunk is fully convolutional)
    feature_batch_size: int = bounded(256, 1, BATCH_MAX)  # images per frozen-feature batch (results unchanged)
    max_train: int = bounded(0, 0, COUNT_MAX)  # 0 = all; smoke presets cap the probe's data
    max_test: int = bounded(0, 0, COUNT_MAX)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    # verification (LFW/CPLFW/synth-fr): "train_folds" subtracts the mean feature of the 9 folds that choose the
    # threshold before the cosine (FaceNet's LFW evaluation option); "none" is the paper's plain cosine
    verification_center: Literal["none", "train_folds"] = hash_neutral("none")


@dataclass
class RunInfo:
    """What is run; only ``seed`` affects the pretraining checkpoint."""

    method: str = ""
    task: str = ""
    preset: str = "quick"
    seed: int = bounded(0, -SEED_MAX - 1, SEED_MAX)
    device: str = "auto"


@dataclass
class EmptyParams:
    """A method or task without parameters of its own."""


@dataclass
class RunConfig:
    run: RunInfo = field(default_factory=RunInfo)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    method: Any = field(default_factory=EmptyParams)
    task: Any = field(default_factory=EmptyParams)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    def result_hash(self) -> str:
        """Hash of everything that determines a run's result (the whole config except ``run.device``)."""
        d = to_plain(self, hashing=True)
        del d["run"]["device"]
        return config_hash(d)

    def pretrain_identity(self, implementation: str) -> dict[str, Any]:
        """Everything that determines the pretraining checkpoint (not the task, the evaluation or the device)."""
        d = to_plain(self, hashing=True)
        identity = {
            "implementation": implementation,
            "seed": self.run.seed,
            "model": d["model"],
            "data": d["data"],
            "pretrain": d["pretrain"],
            "method": d["method"],
        }
        if self.data.source == TASK_SOURCE:  # trained on the task's own labels: the task is part of the checkpoint
            identity["task"] = {"name": self.run.task, "params": d["task"]}
        return identity

    def pretrain_hash(self, implementation: str) -> str:
        return config_hash(self.pretrain_identity(implementation))


def to_plain(obj: Any, hashing: bool = False) -> Any:
    """Dataclasses/tuples -> dicts/lists of plain values (JSON- and YAML-safe).

    ``hashing``: leave out :func:`unhashed` fields and :func:`hash_neutral` fields that are at their default, and
    add a dataclass's ``HASH_REVISION`` when it is not 1 (so records and checkpoints of older code are not reused).
    """
    if dataclasses.is_dataclass(obj):
        plain = {f.name: to_plain(getattr(obj, f.name), hashing) for f in dataclasses.fields(obj)
                 if not (hashing and (f.metadata.get("unhashed")
                                      or f.metadata.get("hash_neutral") and getattr(obj, f.name) == f.default))}
        if hashing and getattr(obj, "HASH_REVISION", 1) != 1:  # code that changed the results of unchanged configs
            plain["hash_revision"] = obj.HASH_REVISION
        return plain
    if isinstance(obj, (list, tuple)):
        return [to_plain(v, hashing) for v in obj]
    if isinstance(obj, dict):
        return {k: to_plain(v, hashing) for k, v in obj.items()}
    return obj


def config_hash(data: Any) -> str:
    """A stable SHA-256 of a plain config tree."""
    blob = json.dumps(to_plain(data), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def preset_chain(preset: str) -> tuple[str, ...]:
    """The presets whose layers make ``preset``, base first (``demo`` -> ("quick", "demo"))."""
    base = PRESET_BASES.get(preset)
    return (*preset_chain(base), preset) if base else (preset,)


def preset_layer(presets: dict[str, Any], preset: str) -> dict[str, Any]:
    """An entry's layer for ``preset``: its layers of the chain of ``preset`` merged in order."""
    layer: dict[str, Any] = {}
    for name in preset_chain(preset):
        layer = deep_merge(layer, presets.get(name, {}))
    return layer


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """A new dict: ``update`` merged into ``base`` recursively (dicts merge, everything else replaces)."""
    out = copy.deepcopy(base)
    for key, value in (update or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(text: str) -> dict[str, Any]:
    """``'a.b.c=value'`` -> ``{'a': {'b': {'c': value}}}``; the value is parsed as YAML and typed later."""
    key, sep, raw = check_text(text, "--set").partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set expects key=value with a dotted key, e.g. pretrain.epochs=5; got {quote(text)}")
    value: Any = yaml_text(raw, f"--set {quote(key)}") if raw.strip() else ""
    for part in reversed(key.split(".")):
        if not part:
            raise ConfigError(f"--set key {quote(key)} has an empty part")
        value = {part: value}
    return value


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Convert a YAML value to the annotated type ``tp``, or raise a ConfigError naming ``where``."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if dataclasses.is_dataclass(value):
            value = to_plain(value)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {quote(value)}")
        return build_dataclass(tp, value, where)
    if tp is Any:
        return value
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(f"{where}: {quote(value)} is not one of {', '.join(map(repr, choices))}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {quote(value)}")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {quote(value)}")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
            return tuple(_convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        items = [_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {quote(value)}")
    if tp in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {quote(value)}")
        try:
            converted = tp(value)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"{where}: expected {tp.__name__}, got {quote(value)}") from None
        if tp is int and isinstance(value, float) and converted != value:
            raise ConfigError(f"{where}: expected an integer, got {quote(value)}")
        return converted
    if tp is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{where}: expected a string, got {quote(value)}")
        return check_text(str(value), where)
    return value


def build_dataclass(cls: type, values: dict[str, Any], where: str = "") -> Any:
    """Instantiate ``cls`` from a (partial) mapping; unknown keys raise with close matches."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in values.items():
        path = f"{where}.{key}" if where else key
        if key not in fields:
            raise UnknownNameError("config key", path, [f"{where}.{k}" if where else k for k in fields])
        default = fields[key].default_factory
        if isinstance(value, dict) and dataclasses.is_dataclass(hints[key]) and default is not dataclasses.MISSING:
            value = deep_merge(to_plain(default()), value)  # a partial section completes the field's own default
        kwargs[key] = _convert(value, hints[key], path)
        if "range" in fields[key].metadata:
            _check_range(kwargs[key], fields[key], path)
    return cls(**kwargs)


def load_yaml(path: Any) -> dict[str, Any]:
    """Read a YAML mapping behind the size, nesting and alias limits of ``inputs.read_yaml``, with the file
    named in any error."""
    data = read_yaml(path) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def resolve_config(
    layers: list[dict[str, Any]],
    method_params: type,
    task_params: type,
) -> RunConfig:
    """Merge the layers in order (later wins) and build the typed RunConfig."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = deep_merge(merged, layer)
    method_values = merged.pop("method", {}) or {}
    task_values = merged.pop("task", {}) or {}
    cfg = build_dataclass(RunConfig, merged)
    cfg.method = _convert(method_values, method_params, "method")
    cfg.task = _convert(task_values, task_params, "task")
    return cfg
