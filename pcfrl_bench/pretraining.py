"""The trained encoder of a run, behind one call (:func:`obtain_encoder`): the method built from the run seed, then
its pretraining checkpoint reused, resumed or trained (``pretrain``), or the given weights loaded. The checkpoint
folder, its lock, ``--resume`` / ``--restart``, the trunk-only ``backbone.pt``, the log and the digest of the
encoder's weights stay here; the runner sees an :class:`Encoder`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from rich.console import Console

from .config import TASK_SOURCE, RunConfig
from .data.sources import build_source
from .distributed import barrier, is_main, process_group, world_size
from .errors import ConfigError, PcfrlError
from .io import atomic_torch_save, atomic_write_text, folder_lock, sweep_temp_files
from .methods import METHODS, Method
from .models.backbones import build_backbone, feature_dim
from .models.weights import LoadReport, backbone_state, load_backbone
from .resolution import Resolved
from .snapshots import missing_snapshots, snapshot_advice
from .train import CHECKPOINT, checkpoint_state, load_weights, pretrain, read_log, seed_everything, state_digest

BACKBONE_FILE = "backbone.pt"  # the trunk's weights with stripped keys, written next to every pretraining checkpoint


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; an explicit CUDA request without CUDA is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: CUDA is not available on this machine (use cpu or auto)")
    return device


def build_method(resolved: Resolved, supervision: Any = None) -> Method:
    """The method with its backbone, initialised from the run seed (same seed -> same initial weights).
    ``supervision`` (the supervised ceiling: the task's ``Supervision``) sets the method's target key, outputs
    and loss from the task."""
    cfg = resolved.config
    params = cfg.method
    if supervision is not None:
        params = dataclasses.replace(params, target=supervision.target, outputs=supervision.outputs,
                                     loss=supervision.loss)
    seed_everything(cfg.run.seed)
    backbone = build_backbone(cfg.model)
    dim = feature_dim(backbone, cfg.data.image_size)
    return METHODS.get(resolved.method.implementation)(params, backbone, dim, cfg.data.image_size)


@dataclass
class RunPaths:
    out_dir: Path
    cache_dir: Path
    data_root: Path


UNREADABLE_POLICIES = ("stop", "skip")


@dataclass
class RunOptions:
    resume: bool = False
    restart: bool = False
    progress: bool = True
    unreadable: str = "stop"  # evaluation images that cannot be decoded: stop before pretraining, or skip them
    notes: list[str] = field(default_factory=list)


def pretrain_dir(resolved: Resolved, cache_dir: Path) -> Path:
    impl = resolved.method.implementation
    return cache_dir / "pretrain" / impl / resolved.config.pretrain_hash(impl)[:16]


def ensure_pretrained(resolved: Resolved, paths: RunPaths, device: torch.device, options: RunOptions,
                      console: Console, supervision: Any = None) -> tuple[Method, Path, bool, float]:
    """(trained method, checkpoint folder, whether the checkpoint was reused, pretraining seconds).
    With ``data.source: task`` (the supervised ceiling) ``supervision`` (the task's ``Supervision``) gives the
    labelled training data that is the pretraining data.

    The checkpoint folder is locked meanwhile: a second run of the same config waits, then reuses it."""
    run_dir = pretrain_dir(resolved, paths.cache_dir)
    # under torchrun rank 0 alone holds the lock: the other ranks are the same job and wait at its barriers
    lock = folder_lock(run_dir, on_wait=lambda line: console.print(f"Waiting: {line}", highlight=False, markup=False))
    with lock if is_main() else contextlib.nullcontext():
        return _pretrained_locked(resolved, run_dir, paths, device, options, console, supervision)


def _pretrained_locked(resolved: Resolved, run_dir: Path, paths: RunPaths, device: torch.device, options: RunOptions,
                       console: Console, supervision: Any) -> tuple[Method, Path, bool, float]:
    cfg = resolved.config
    if cfg.data.source == TASK_SOURCE and supervision is None:
        raise ConfigError(f"{cfg.run.method} pretrains on the task's labelled data: give the task's supervision")
    method = build_method(resolved, supervision)
    if options.restart and is_main() and run_dir.exists():  # before reading: a corrupt checkpoint must not block it
        shutil.rmtree(run_dir)
    if is_main() and run_dir.is_dir():  # temp files of a killed write, whether this run trains or reuses
        sweep_temp_files(run_dir)
    barrier()  # under torchrun: every rank reads the folder after rank 0 cleared it
    state = checkpoint_state(run_dir)
    if state is not None and state.complete:
        console.print(f"Reusing cached pretraining checkpoint {run_dir} ({state.epoch} epochs, same config hash)",
                      markup=False)
        load_weights(method, run_dir)
        _write_backbone(method, run_dir)
        every = cfg.pretrain.snapshot_every
        missing = missing_snapshots(run_dir, cfg.pretrain.epochs, every) if every and cfg.pretrain.epochs else []
        if missing:
            console.print(f"note: pretrain.snapshot_every={every}, but {snapshot_advice(run_dir, missing, every)}",
                          soft_wrap=True, markup=False, highlight=False)
        return method.to(device), run_dir, True, 0.0
    if state is not None and not options.resume:
        raise PcfrlError(f"An interrupted pretraining with this config exists in {run_dir} (epoch {state.epoch}/"
                         f"{cfg.pretrain.epochs}). Pass --resume to continue it or --restart to discard it.")
    impl = resolved.method.implementation
    if is_main():
        atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(cfg.pretrain_identity(impl), sort_keys=False))
    dataset = supervision.dataset if supervision is not None else build_source(cfg.data, paths.data_root)
    if state is not None:
        console.print(f"Resuming pretraining from epoch {state.epoch} in {run_dir}", markup=False)
    outcome = pretrain(method, dataset, cfg.pretrain, run_dir, seed=cfg.run.seed, device=device,
                       num_workers=cfg.data.num_workers, resume=options.resume, progress=options.progress,
                       console=console, description=f"pretrain {cfg.run.method}",
                       metadata={"pretrain_hash": cfg.pretrain_hash(impl)})
    _write_backbone(method, run_dir)
    if console is not None:  # a fresh pretraining says where its checkpoint went
        console.print(f"Pretraining checkpoint: {run_dir / CHECKPOINT} (trunk only: {run_dir / BACKBONE_FILE})",
                      soft_wrap=True, markup=False)
    return method, run_dir, False, outcome.wall_time_s


def _write_backbone(method: Method, run_dir: Path) -> None:
    """``backbone.pt``: the trunk's state dict with stripped keys, so others can load it (weights only)."""
    if not (run_dir / BACKBONE_FILE).is_file():
        atomic_torch_save(backbone_state(method), run_dir / BACKBONE_FILE)


def load_given_weights(resolved: Resolved, device: torch.device, console: Console) -> tuple[Method, LoadReport]:
    """The method with its trunk loaded from ``model.checkpoint`` (no pretraining)."""
    cfg = resolved.config
    method = build_method(resolved)
    report = load_backbone(method.backbone, Path(cfg.model.checkpoint).expanduser(), cfg.model.strict)
    ignored = f", {len(report.ignored)} tensors outside the trunk ignored" if report.ignored else ""
    note = f"; layers left random: {', '.join(report.missing)}" if report.missing else ""
    console.print(f"  tensors loaded: {report.loaded}/{report.total} of the trunk{ignored}{note} (no pretraining; "
                  f"sha256 {report.sha256[:16]}...)", soft_wrap=True, highlight=False,
                  markup=False)
    return method.to(device), report


def weights_origin(cfg: RunConfig, report: LoadReport | None) -> dict[str, Any]:
    """Where the evaluated trunk's weights came from (the record's ``weights``)."""
    if report is not None:
        return report.to_dict()
    if cfg.model.pretrained:
        return {"format": "timm-pretrained", "path": cfg.model.pretrained_file or "timm's default source"}
    return {"format": "pcfrl-bench", "path": None}


@dataclass
class Encoder:
    """A run's trained method and where its weights came from (what the evaluation and the record need)."""

    method: Method
    run_dir: Path | None  # the pretraining folder (None: given weights)
    reused: bool  # the pretraining checkpoint existed
    pretrain_s: float
    processes: int  # processes that pretrained together (torchrun)
    report: LoadReport | None  # given weights: how they loaded
    digest: str  # of the encoder's weights

    @property
    def cache_key(self) -> str:
        """Key of the frozen-feature cache: any re-pretraining that changes the weights misses it; given weights
        are keyed by what they are."""
        return f"{self.run_dir.name if self.run_dir else 'given'}-{self.digest[:16]}"

    @property
    def checkpoint(self) -> str:
        return str(self.run_dir) if self.run_dir else self.report.path

    def log(self) -> list[dict[str, Any]]:
        """The epoch rows of the pretraining (none for given weights)."""
        return read_log(self.run_dir) if self.run_dir else []


def obtain_encoder(resolved: Resolved, paths: RunPaths, device: torch.device, options: RunOptions,
                   console: Console, supervision: Any = None) -> Encoder | None:
    """The run's encoder: ``model.checkpoint`` loaded (one process), or the pretraining reused, resumed or run
    (all torchrun ranks). None on the ranks other than 0, which only pretrain."""
    if resolved.config.model.checkpoint:
        method, report = load_given_weights(resolved, device, console)
        return Encoder(method, None, False, 0.0, 1, report, state_digest(method.encoder().state_dict()))
    with process_group(device) as device:
        method, run_dir, reused, seconds = ensure_pretrained(resolved, paths, device, options, console, supervision)
        processes, main = world_size(), is_main()
    if not main:
        return None
    return Encoder(method, run_dir, reused, seconds, processes, None, state_digest(method.encoder().state_dict()))
