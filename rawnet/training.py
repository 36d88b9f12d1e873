"""One trainer for the raw-waveform models (RawNet2, AASIST): official recipes, exact resume, DistributedDataParallel.

Any model mapping float32 (batch, samples) to (batch, 2) trains here; class 1 is bona fide. The loss is the
official weighted cross-entropy, ``F.cross_entropy(output, label, weight=[spoof, bona fide])``, applied to the
output as it is: for logits (RawNet2 ``icassp2021``, AASIST) that is weighted cross-entropy, and for the log-softmax
of RawNet2 ``asvspoof2021`` it is the weighted NLL of those log-probabilities, the same value, because
``log_softmax(log_softmax(z)) == log_softmax(z)``. The dev score of a trial is class 1 of the output after the
variant's :meth:`~rawnet.spec.ModelSpec.score_head`, as the scorers and the official evaluation rank trials: for
RawNet2 ``asvspoof5`` the softmax probability (its official code ranks by it), elsewhere output index 1 as it is.

Run directory (only rank 0 writes; every file is replaced atomically)::

    run.json        model, recipe, options and data sizes of the run, written at start (and again on resume)
    checkpoint.pth  everything needed to continue exactly: model, optimizer, scheduler, gradient scaler, RNG
                    states, best so far, metrics history; rewritten after every epoch; ``resume=True`` reads it
    best.pth        the model file to score with (format: :mod:`rawnet.checkpoint`): lowest dev EER, later epochs
                    winning ties as in the official AASIST script; without a dev set, the last epoch
    metrics.csv     one row per epoch: epoch, train_loss, train_accuracy, dev_loss, dev_eer, lr, seconds
    metrics.json    the same rows as a JSON list (dev fields null without a dev set; accuracy and EER as fractions)

Under ``torchrun`` (``WORLD_SIZE`` > 1) each process trains on its shard of every epoch with the batch size given
(the effective batch is that times the number of processes); ``RUN_DIR`` must be on a file system every node sees.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import json
import math
import os
import random
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from lfcc_gmm.atomic import atomic_write
from lfcc_gmm.metrics import compute_eer
from lfcc_gmm.protocols import Trial
from rawnet.catalog import DEVICES, Recipe, official_recipe
from rawnet.checkpoint import CheckpointError, load_weights, read_torch_file, write_model_file
from rawnet.data import (
    BONAFIDE_LABEL,
    SPOOF_LABEL,
    Augment,
    WaveformDataset,
    make_loader,
    set_loader_epoch,
    shard_indices,
    warn_conversions,
)
from rawnet.spec import ModelSpec
from rawnet.weights import resolve_weights

CHECKPOINT = "checkpoint.pth"
BEST = "best.pth"
RUN_JSON = "run.json"
METRICS_CSV = "metrics.csv"
METRICS_JSON = "metrics.json"
METRIC_FIELDS = ("epoch", "train_loss", "train_accuracy", "dev_loss", "dev_eer", "lr", "seconds")
CHECKPOINT_FORMAT = "antispoof-checkpoint"

#: ``progress(stage, done, total)``, e.g. ``("epoch 3/100 train", 120, 793)``.
Progress = Callable[[str, int, int], None]


@dataclass
class TrainResult:
    """What :func:`train` produced.

    Attributes
    ----------
    run_dir : the run directory.
    model : the trained model after the last epoch (unwrapped from DDP), on the training device.
    history : one metrics row per epoch, including epochs of earlier sessions of a resumed run.
    best_epoch, best_dev_eer : the epoch saved as ``best.pth`` and its dev EER (None without a dev set).
    rank : this process's rank (0 unless under torchrun); only rank 0 wrote files.
    """

    run_dir: Path
    model: nn.Module
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    best_dev_eer: float | None = None
    rank: int = 0

    @property
    def best_path(self) -> Path:
        return self.run_dir / BEST


class RunDirError(ValueError):
    """The run directory cannot be used as asked (an earlier run in the way, nothing to resume, a mismatch)."""


def resolve_device(device: str | torch.device = "auto", local_rank: int = 0) -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; ``"cuda"`` → this process's GPU (``LOCAL_RANK`` under DDP)."""
    name = str(device)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} asked for, but CUDA is not available (torch {torch.__version__})")
        return torch.device(name if ":" in name else f"cuda:{local_rank}")
    if name != "cpu":
        raise ValueError(f"unknown device {device!r}; expected one of {', '.join(map(repr, DEVICES))}")
    return torch.device("cpu")


def cosine_lr_factor(step: int, total_steps: int, lr_min_ratio: float) -> float:
    """Multiplier of the base lr after ``step`` optimizer steps of ``total_steps`` (the official cosine schedule)."""
    # A Python float: the scheduler keeps it in its state, which must load with weights_only=True.
    return lr_min_ratio + (1 - lr_min_ratio) * 0.5 * (1 + math.cos(step / total_steps * math.pi))


def make_optimizer(
    parameters, recipe: Recipe, steps_per_epoch: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler | None]:
    """Adam as the recipe says, and its per-step scheduler (None for a constant lr)."""
    optimizer = torch.optim.Adam(
        parameters, lr=recipe.lr, betas=recipe.betas, eps=recipe.eps, weight_decay=recipe.weight_decay
    )
    if recipe.scheduler == "constant":
        return optimizer, None
    total = recipe.epochs * steps_per_epoch
    ratio = recipe.lr_min / recipe.lr
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: cosine_lr_factor(step, total, ratio))


@dataclass(frozen=True)
class _Distributed:
    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> _Distributed:
        return cls(
            int(os.environ.get("WORLD_SIZE", "1")),
            int(os.environ.get("RANK", "0")),
            int(os.environ.get("LOCAL_RANK", "0")),
        )


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (user code may draw from the global generator)
    torch.manual_seed(seed)


def _rng_state(device: torch.device) -> dict[str, Any]:
    numpy_state = np.random.get_state(legacy=False)  # noqa: NPY002
    return {
        "python": random.getstate(),
        "numpy": {
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
    }


def _set_rng_state(state: Mapping[str, Any], device: torch.device) -> None:
    random.setstate(state["python"])
    saved = state["numpy"]
    np.random.set_state({  # noqa: NPY002
        "bit_generator": "MT19937",
        "state": {"key": saved["key"].numpy().astype(np.uint32), "pos": saved["pos"]},
        "has_gauss": saved["has_gauss"],
        "gauss": saved["gauss"],
    })
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state["cuda"] is not None:
        torch.cuda.set_rng_state(state["cuda"], device)


def _fingerprint(trials: Sequence[Trial]) -> str:
    digest = hashlib.sha256()
    for t in trials:
        digest.update(f"{t.file_id}\t{t.key}\n".encode())
    return digest.hexdigest()


def _data_summary(trials: Sequence[Trial] | None) -> dict[str, Any] | None:
    if trials is None:
        return None
    n_bonafide = sum(t.is_bonafide for t in trials)
    return {"trials": len(trials), "bonafide": n_bonafide, "spoof": len(trials) - n_bonafide,
            "fingerprint": _fingerprint(trials)}


def _check_classes(trials: Sequence[Trial], what: str) -> None:
    if any(t.key is None for t in trials):
        raise ValueError(f"{what} set: every trial needs a bonafide/spoof key")
    keys = {t.key for t in trials if t.key is not None}
    if keys != {"bonafide", "spoof"}:
        raise ValueError(f"{what} set needs both bona fide and spoof trials; it has only {sorted(keys)}")


def _plain(value: Any) -> Any:
    """JSON round trip: tuples become lists, so settings compare equal however they were stored."""
    return json.loads(json.dumps(value))


def _run_settings(spec: ModelSpec, recipe: Recipe, seed: int, train_trials, dev_trials) -> dict[str, Any]:
    """What must not change between the sessions of one run."""
    return _plain({"model": spec.to_dict(), "recipe": dataclasses.asdict(recipe), "seed": seed,
                   "train": _data_summary(train_trials), "dev": _data_summary(dev_trials)})


def _differences(saved: Mapping[str, Any], wanted: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Names of the settings that differ, one level into each section (``recipe.lr``, ``train.fingerprint``)."""
    names = []
    for key in sorted(set(saved) | set(wanted)):
        old, new = saved.get(key), wanted.get(key)
        if not prefix and isinstance(old, Mapping) and isinstance(new, Mapping):
            names += _differences(old, new, f"{key}.")
        elif old != new:
            names.append(prefix + key)
    return names


def _read_checkpoint(path: Path, settings: dict[str, Any]) -> Mapping[str, Any]:
    try:
        checkpoint = read_torch_file(path)
    except CheckpointError as exc:
        raise RunDirError(str(exc)) from exc
    if not isinstance(checkpoint, Mapping) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise RunDirError(f"{path}: not an antispoof training checkpoint")
    saved = _plain(checkpoint["settings"])
    if saved["recipe"]["scheduler"] == "constant":
        # More epochs continue a constant-lr run exactly; a cosine schedule depends on the total number of steps.
        saved["recipe"]["epochs"] = settings["recipe"]["epochs"]
    differences = _differences(saved, settings)
    if differences:
        raise RunDirError(
            f"{path}: cannot resume with different settings ({', '.join(differences)}); use the model, recipe, "
            "seed and data of the original run, or a new run directory"
        )
    return checkpoint


def _open_run_dir(run_dir: Path, resume: bool, settings: dict[str, Any]) -> Mapping[str, Any] | None:
    """The checkpoint to resume from, or None for a new run; refuses to overwrite an earlier run by accident."""
    path = run_dir / CHECKPOINT
    if resume:
        if not path.is_file():
            raise RunDirError(f"{path}: nothing to resume (no checkpoint; an earlier run ends after its first epoch)")
        return _read_checkpoint(path, settings)
    if path.exists():
        raise RunDirError(f"{run_dir} holds a checkpoint of an earlier run; resume it or choose another directory")
    return None


def _save_torch(obj: Any, path: Path) -> None:
    with atomic_write(path, "wb") as handle:
        torch.save(obj, handle)


def _write_json(obj: Any, path: Path) -> None:
    with atomic_write(path) as handle:
        json.dump(obj, handle, indent=1)
        handle.write("\n")


def _write_metrics(run_dir: Path, history: Sequence[Mapping[str, Any]]) -> None:
    with atomic_write(run_dir / METRICS_CSV) as handle:
        writer = csv.DictWriter(handle, METRIC_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: "" if row[k] is None else row[k] for k in METRIC_FIELDS} for row in history)
    _write_json(list(history), run_dir / METRICS_JSON)


def _forward(model, x, y, device, amp) -> tuple[torch.Tensor, torch.Tensor]:
    """Float32 outputs (the loss is computed in float32 under AMP too) and the labels, on ``device``."""
    x = x.to(device, non_blocking=True)
    with torch.autocast(device.type, dtype=torch.float16) if amp else contextlib.nullcontext():
        output = model(x)
    return output.float(), y.to(device, non_blocking=True)


def _report(progress: Progress | None, stage: str, total: int) -> Callable[[int], None]:
    if progress is None:
        return lambda done: None
    progress(stage, 0, total)
    return lambda done: progress(stage, done, total)


def _train_epoch(model, loader, optimizer, scheduler, scaler, weights, device, amp, report) -> torch.Tensor:
    """One pass; returns this process's [sum of batch loss × batch size, correct, examples]."""
    model.train()
    sums = torch.zeros(3, dtype=torch.float64)
    for step, (x, y) in enumerate(loader, start=1):
        output, y = _forward(model, x, y, device, amp)
        loss = F.cross_entropy(output, y, weight=weights)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if scheduler is not None:
            scheduler.step()
        n = y.numel()
        sums += torch.tensor([loss.item() * n, (output.argmax(dim=1) == y).sum().item(), n], dtype=torch.float64)
        report(step)
    return sums


@torch.no_grad()
def _dev_pass(model, head, loader, weights, device, amp, report) -> tuple[np.ndarray, np.ndarray]:
    """Scores (class 1 after the score ``head``) and weighted losses of the examples of this process's shard, in
    loader order."""
    model.eval()
    scores, losses = [], []
    for step, (x, y) in enumerate(loader, start=1):
        output, y = _forward(model, x, y, device, amp)
        scores.append(head(output)[:, BONAFIDE_LABEL].cpu())
        losses.append(F.cross_entropy(output, y, weight=weights, reduction="none").cpu())
        report(step)
    return torch.cat(scores).double().numpy(), torch.cat(losses).double().numpy()


def _evaluate(model, head, loader, weights, device, amp, report, env: _Distributed) -> tuple[float, float]:
    """Dev loss (weighted mean cross-entropy) and EER over the whole dev set, gathered from every process."""
    scores, losses = _dev_pass(model, head, loader, weights, device, amp, report)
    shards: list[Any] = [(shard_indices(loader), scores, losses)]
    if env.active:
        shards = [None] * env.world_size
        dist.all_gather_object(shards, (shard_indices(loader), scores, losses))
    labels = loader.dataset.labels
    all_scores = np.full(labels.size, np.nan)
    all_losses = np.full(labels.size, np.nan)
    # Shards are padded by repeating examples; a repeat carries the same values, so assignment dedupes.
    for indices, shard_scores, shard_losses in shards:
        all_scores[indices] = shard_scores
        all_losses[indices] = shard_losses
    class_weights = weights.double().cpu().numpy()
    dev_loss = float(all_losses.sum() / class_weights[labels].sum())
    eer, _ = compute_eer(all_scores[labels == BONAFIDE_LABEL], all_scores[labels == SPOOF_LABEL])
    return dev_loss, float(eer)


def _sync_buffers(module: nn.Module) -> None:
    # DDP broadcasts rank 0's buffers (BatchNorm statistics) at the start of each forward, so after the last step
    # of an epoch they still differ between ranks; make them rank 0's before evaluating and saving.
    for buffer in module.buffers():
        dist.broadcast(buffer, src=0)


@contextlib.contextmanager
def _process_setup(env: _Distributed, device: torch.device):
    """Join the torchrun process group (unless already joined) and pick deterministic kernels; undo both on exit."""
    deterministic = (torch.are_deterministic_algorithms_enabled(),
                     torch.is_deterministic_algorithms_warn_only_enabled())
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    created_group = False
    try:
        if device.type == "cuda":
            torch.cuda.set_device(device)  # NCCL collectives run on the current device
        if env.active and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            created_group = True
        if device.type == "cuda":
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        else:
            torch.use_deterministic_algorithms(True, warn_only=True)
        yield
    finally:
        torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn
        if created_group:
            dist.destroy_process_group()


@dataclass
class _State:
    """Everything that changes as training goes, i.e. what a checkpoint holds besides the run's settings."""

    module: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    scaler: torch.amp.GradScaler
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=lambda: {"epoch": None, "dev_eer": None})
    epoch: int = 0

    def checkpoint(self, settings: dict[str, Any], device: torch.device) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT, "settings": settings, "epoch": self.epoch,
            "model": {k: v.detach().cpu() for k, v in self.module.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(), "rng": _rng_state(device), "best": self.best, "history": self.history,
        }

    def restore(self, checkpoint: Mapping[str, Any], device: torch.device) -> None:
        self.module.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.scaler.load_state_dict(checkpoint["scaler"])
        self.history, self.best = list(checkpoint["history"]), dict(checkpoint["best"])
        self.epoch = int(checkpoint["epoch"])
        _set_rng_state(checkpoint["rng"], device)


def train(
    spec: ModelSpec,
    train_trials: Sequence[Trial],
    run_dir: str | os.PathLike,
    recipe: Recipe | None = None,
    *,
    dev_trials: Sequence[Trial] | None = None,
    device: str | torch.device = "auto",
    amp: bool = False,
    seed: int = 1234,
    workers: int = 0,
    resume: bool = False,
    augment: Augment | None = None,
    init_weights: str | os.PathLike | None = None,
    progress: Progress | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train ``spec``'s model on labelled trials, writing checkpoints, metrics and ``best.pth`` into ``run_dir``.

    Parameters
    ----------
    spec : the model to build.
    train_trials : labelled trials with paths, both classes.
    run_dir : the run directory (created; see the module docstring).
    recipe : optimisation settings; default the official recipe of the variant (:func:`rawnet.catalog.official_recipe`).
    dev_trials : labelled trials scored after every epoch; best.pth is then chosen on their EER.
    device : ``"auto"``, ``"cpu"`` or ``"cuda"``.
    amp : float16 autocast with gradient scaling (CUDA only; ignored with a warning on the CPU).
    seed : seeds Python, NumPy and torch, the shuffle and every example's crop and augmentation.
    workers : DataLoader processes per training process.
    resume : continue from ``run_dir/checkpoint.pth`` exactly where it stopped (same settings required).
    augment : ``augment(signal, seed) -> signal`` applied on the fly to training examples.
    init_weights : weights to start from (fine-tuning): a state_dict or model file, or a name of
        :data:`rawnet.weights.KNOWN_WEIGHTS` (``"aasist"``: the bundled official weights); loaded with
        ``strict=True``; ignored on resume. ``run.json`` records the file read.
    progress : ``progress(stage, done, total)`` per batch (rank 0 only).
    on_epoch : called with each epoch's metrics row (rank 0 only).

    Returns
    -------
    TrainResult
    """
    recipe = official_recipe(spec.architecture, spec.variant) if recipe is None else recipe
    run_dir = Path(run_dir)
    init_weights = None if init_weights is None else resolve_weights(init_weights)
    _check_classes(train_trials, "training")
    if dev_trials is not None:
        _check_classes(dev_trials, "dev")
    env = _Distributed.from_env()
    device = resolve_device(device, env.local_rank)
    if amp and device.type != "cuda":
        warnings.warn("mixed precision (AMP) needs CUDA; training in float32", RuntimeWarning, stacklevel=2)
        amp = False
    settings = _run_settings(spec, recipe, seed, train_trials, dev_trials)
    checkpoint = _open_run_dir(run_dir, resume, settings)
    pin = device.type == "cuda"
    shard: dict[str, Any] = {"num_replicas": env.world_size, "rank": env.rank, "workers": workers, "pin_memory": pin}
    train_set = WaveformDataset(train_trials, spec.nb_samp, train=True, random_crop=recipe.random_crop,
                                augment=augment, seed=seed)
    train_loader = make_loader(train_set, recipe.batch_size, shuffle=True, drop_last=recipe.drop_last, seed=seed,
                               **shard)
    if len(train_loader) == 0:
        raise ValueError(f"{len(train_set)} training trials over {env.world_size} process(es) make no complete "
                         f"batch of {recipe.batch_size}; lower the batch size")
    dev_loader = None
    if dev_trials is not None:
        dev_loader = make_loader(WaveformDataset(dev_trials, spec.nb_samp), recipe.batch_size, **shard)

    with _process_setup(env, device):
        _seed_everything(seed)
        module = spec.build()
        if init_weights is not None and checkpoint is None:
            load_weights(module, init_weights)
        module.to(device)
        state = _State(module, *make_optimizer(module.parameters(), recipe, len(train_loader)),
                       torch.amp.GradScaler("cuda", enabled=amp))
        if checkpoint is not None:
            state.restore(checkpoint, device)
        if env.main:
            warn_conversions(train_trials, "training")
            if dev_trials is not None:
                warn_conversions(dev_trials, "dev")
            run_dir.mkdir(parents=True, exist_ok=True)
            options = {"device": str(device), "amp": amp, "workers": workers, "augment": repr(augment),
                       "init_weights": None if init_weights is None else str(init_weights),
                       "world_size": env.world_size}
            _write_json({**settings, "options": options, "torch": torch.__version__,
                         "resumed_after_epoch": state.epoch if checkpoint is not None else None,
                         "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, run_dir / RUN_JSON)
        # static_graph lets DDP cope with parameters the loss never reaches (the BatchNorm whose output RawNet2
        # asvspoof2021 discards) without searching the graph for them at every step.
        model = DistributedDataParallel(module, device_ids=[device] if pin else None, static_graph=True) \
            if env.active else module
        weights = torch.tensor(recipe.class_weights, dtype=torch.float32, device=device)
        tell = progress if env.main else None

        for epoch in range(state.epoch, recipe.epochs):
            state.epoch = number = epoch + 1
            began = time.perf_counter()
            set_loader_epoch(train_loader, epoch)
            lr = state.optimizer.param_groups[0]["lr"]
            report = _report(tell, f"epoch {number}/{recipe.epochs} train", len(train_loader))
            sums = _train_epoch(model, train_loader, state.optimizer, state.scheduler, state.scaler, weights, device,
                                amp, report)
            if env.active:
                sums = sums.to(device)
                dist.all_reduce(sums)
                _sync_buffers(module)
            loss_sum, correct, seen = sums.tolist()
            dev_loss = dev_eer = None
            if dev_loader is not None:
                report = _report(tell, f"epoch {number}/{recipe.epochs} dev", len(dev_loader))
                dev_loss, dev_eer = _evaluate(module, spec.score_head(), dev_loader, weights, device, amp, report, env)
            row = {"epoch": number, "train_loss": loss_sum / seen, "train_accuracy": correct / seen,
                   "dev_loss": dev_loss, "dev_eer": dev_eer, "lr": lr, "seconds": time.perf_counter() - began}
            state.history.append(row)
            improved = dev_eer is None or state.best["dev_eer"] is None or dev_eer <= state.best["dev_eer"]
            if improved:
                state.best = {"epoch": number, "dev_eer": dev_eer}
            if env.main:
                if improved:
                    write_model_file(run_dir / BEST, spec.to_dict(), module.state_dict(), number, dev_eer)
                _save_torch(state.checkpoint(settings, device), run_dir / CHECKPOINT)
                _write_metrics(run_dir, state.history)
                if on_epoch is not None:
                    on_epoch(row)
        if env.active:
            dist.barrier()
    return TrainResult(run_dir, module, state.history, state.best["epoch"], state.best["dev_eer"], env.rank)
