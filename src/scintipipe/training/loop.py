"""The training loop: weighted sampling, augmentation, best checkpoint, resume, TensorBoard."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from scintipipe.training.augment import augment_batch
from scintipipe.training.data import LabelledSet


@dataclass
class FitResult:
    """What the loop produced."""

    best_state: dict[str, torch.Tensor]
    best_epoch: int
    best_metric: float
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def balanced_accuracy(probs: torch.Tensor, targets: torch.Tensor, n_classes: int) -> float:
    """Mean per-class recall over the classes present."""
    pred = probs.argmax(1)
    recalls = [float((pred[targets == c] == c).float().mean()) for c in range(n_classes) if (targets == c).any()]
    return float(np.mean(recalls)) if recalls else 0.0


def predict(model: torch.nn.Module, inputs: torch.Tensor, device: str, batch_size: int = 256) -> torch.Tensor:
    """Softmax probabilities for a tensor of inputs, in eval mode."""
    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(inputs), batch_size):
            out.append(model(inputs[start : start + batch_size].to(device)).float().softmax(1).cpu())
    return torch.cat(out)


def world() -> tuple[int, int]:
    """``(rank, world size)`` of a ``torch.distributed`` run, ``(0, 1)`` outside one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def predict_gathered(model: torch.nn.Module, inputs: torch.Tensor, device: str) -> torch.Tensor:
    """:func:`predict` with the rows shared out over the ranks and the probabilities gathered on every rank (in row order)."""
    import torch.distributed as dist

    rank, size = world()
    if size == 1:
        return predict(model, inputs, device)
    mine = predict(model, inputs[rank::size], device) if len(inputs[rank::size]) else torch.empty(0)
    parts: list[Any] = [None] * size
    dist.all_gather_object(parts, mine)
    out = torch.empty((len(inputs), *parts[0].shape[1:]), dtype=parts[0].dtype)
    for r, part in enumerate(parts):
        out[r::size] = part
    return out


def shard(order: torch.Tensor, rank: int, size: int) -> torch.Tensor:
    """This rank's share of an epoch's sample order, by MONAI's ``DistributedSampler`` (padded so every rank takes as many steps)."""
    from monai.data import DistributedSampler

    sampler = DistributedSampler(order.tolist(), even_divisible=True, num_replicas=size, rank=rank, shuffle=False)  # type: ignore[arg-type]  # any sized sequence works
    positions = list(sampler)
    return order[torch.as_tensor(positions, dtype=torch.long)]


class _NoWriter:
    """Stands in for the TensorBoard writer on ranks other than 0 (only rank 0 writes)."""

    def add_images(self, *args: Any, **kwargs: Any) -> None:
        pass

    def add_scalar(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


def recalibrate_batchnorm(model: torch.nn.Module, inputs: torch.Tensor, device: str, batch_size: int = 256) -> None:
    """Recompute BatchNorm running statistics over ``inputs`` ("precise BN").

    With few steps per epoch and a high learning rate the running averages lag behind the
    weights, and eval-mode predictions suffer; a pass over the un-augmented training
    inputs with cumulative averaging fixes that.
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    model.train()
    with torch.no_grad():
        for start in range(0, len(inputs), batch_size):
            model(inputs[start : start + batch_size].to(device))
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.eval()


def make_optimizer(model: torch.nn.Module, settings: dict[str, Any]) -> torch.optim.Optimizer:
    """Adam, AdamW or SGD from the recipe's ``optimizer`` block."""
    name, lr, wd = settings["name"], settings["lr"], settings.get("weight_decay", 0.0)
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    return torch.optim.SGD(model.parameters(), lr=lr, weight_decay=wd, momentum=0.9, nesterov=True)


def sample_weights(targets: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Per-row weights that make every class equally likely to be drawn."""
    counts = torch.bincount(targets, minlength=n_classes).float().clamp(min=1)
    return (1.0 / counts)[targets]


def fit(
    model: torch.nn.Module,
    train: LabelledSet,
    val: LabelledSet,
    recipe: dict[str, Any],
    out_dir: Path,
    device: str = "cpu",
    resume: bool = False,
    progress: bool | None = None,
    log: Callable[[str], None] = print,
) -> FitResult:
    """Train ``model`` and return the weights of the best validation epoch.

    Args:
        model: the network (moved to ``device`` here).
        train: training set.
        val: validation set used to pick the best epoch (``recipe["metric"]``).
        recipe: a completed recipe (see :mod:`scintipipe.training.recipe`).
        out_dir: where ``logs/`` (TensorBoard) and ``checkpoint.pt`` go.
        device: ``cpu`` or ``cuda``.
        resume: continue from ``out_dir/checkpoint.pt`` when it exists.
        progress: progress bar over epochs (``None``: on a terminal).
        log: where one line per epoch goes.
    """
    n_classes = len(train.labels)
    seed = int(recipe["seed"])
    rank, size = world()
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    # in a distributed run every rank draws the same epoch order (its own generator) and
    # augments its share with a generator of its own
    order_generator = generator if size == 1 else torch.Generator().manual_seed(seed)
    if size > 1:
        generator = torch.Generator().manual_seed(seed + 1000 * rank + 1)
    model.to(device)
    net: torch.nn.Module = model
    if size > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[torch.device(device).index or 0] if str(device).startswith("cuda") else None)
    optimizer = make_optimizer(model, recipe["optimizer"])
    epochs = int(recipe["epochs"])
    batch_size = int(recipe["batch_size"])
    if size > 1:  # the same global batch: each rank takes its part of it
        batch_size = max(2, batch_size // size)
    steps_per_epoch = max(1, math.ceil(len(train) / (batch_size * size)))
    scheduler = (
        torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe["optimizer"]["lr"], total_steps=epochs * steps_per_epoch, pct_start=0.15)
        if recipe["schedule"] == "cosine"
        else None
    )
    class_weight = None
    if recipe["balance"] == "class_weights":
        counts = torch.bincount(train.targets, minlength=n_classes).float().clamp(min=1)
        class_weight = (counts.sum() / (n_classes * counts)).to(device)
    weights = sample_weights(train.targets, n_classes) if recipe["balance"] == "weighted_sampler" else torch.ones(len(train))

    checkpoint_path = out_dir / "checkpoint.pt"
    start_epoch, best = 0, FitResult({k: v.detach().clone() for k, v in model.state_dict().items()}, -1, -math.inf)
    if resume and checkpoint_path.is_file():
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler"):
            if state["scheduler"].get("total_steps") == scheduler.total_steps:
                scheduler.load_state_dict(state["scheduler"])
            else:  # resumed with another --epochs: stretch the schedule, keep the steps done
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    for _ in range(min(state["scheduler"].get("_step_count", 1) - 1, scheduler.total_steps - 1)):
                        scheduler.step()
                log(
                    f"note: the checkpoint was made for {state.get('epochs', '?')} epochs, now {epochs}: learning-rate schedule stretched to {epochs} epochs"
                )
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        start_epoch = state["epoch"] + 1
        best = FitResult(state["best_state"], state["best_epoch"], state["best_metric"], state["history"])
        log(f"resumed from {checkpoint_path} after epoch {start_epoch} of {epochs}")

    writer: Any = SummaryWriter(log_dir=str(out_dir / "logs")) if rank == 0 else _NoWriter()
    if start_epoch == 0:
        writer.add_images("examples/train", _display(train.inputs[:16]), 0)
    started = time.perf_counter()
    bar = tqdm(range(start_epoch, epochs), desc="epochs", unit="epoch", disable=(None if progress is None else not progress) if rank == 0 else True)
    for epoch in bar:
        model.train()
        order = torch.multinomial(weights, len(train), replacement=recipe["balance"] == "weighted_sampler", generator=order_generator)
        if size > 1:
            order = shard(order, rank, size)
        total_loss = 0.0
        for step in range(steps_per_epoch):
            idx = order[step * batch_size : (step + 1) * batch_size]
            if len(idx) < 2:
                continue
            x, targets = augment_batch(train.inputs[idx], train.targets[idx], n_classes, recipe["augment"], generator)
            logits = net(x.to(device))
            loss = _soft_cross_entropy(logits, targets.to(device), class_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            total_loss += loss.item() * len(idx)
        if size > 1:  # the training loss over every rank's steps
            import torch.distributed as dist

            summed = torch.tensor([total_loss], dtype=torch.float64)
            dist.all_reduce(summed)
            total_loss = float(summed[0]) / size * (len(train) / max(1, len(order)))
        recalibrate_batchnorm(model, train.inputs, device)  # over the whole training set on every rank: the ranks stay equal
        probs = predict_gathered(model, val.inputs, device)
        metric = (
            balanced_accuracy(probs, val.targets, n_classes)
            if recipe["metric"] == "balanced_accuracy"
            else float((probs.argmax(1) == val.targets).float().mean())
        )
        accuracy = float((probs.argmax(1) == val.targets).float().mean())
        val_loss = float(F.nll_loss(probs.clamp_min(1e-8).log(), val.targets))
        row = {
            "epoch": epoch,
            "train_loss": total_loss / len(train),
            "val_loss": val_loss,
            "val_accuracy": accuracy,
            "val_metric": metric,
            "lr": optimizer.param_groups[0]["lr"],
        }
        best.history.append(row)
        for key in ("train_loss", "val_loss", "val_accuracy", "val_metric", "lr"):
            writer.add_scalar(key.replace("_", "/", 1), row[key], epoch)
        if metric > best.best_metric:
            best.best_metric, best.best_epoch = metric, epoch
            best.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        if rank != 0:  # only rank 0 logs and writes
            continue
        log(f"epoch {epoch + 1}/{epochs}: loss {row['train_loss']:.4f}, val accuracy {accuracy:.4f}, val {recipe['metric']} {metric:.4f}")
        torch.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "generator": generator.get_state(),
                "torch_rng": torch.get_rng_state(),
                "epoch": epoch,
                "epochs": epochs,
                "best_state": best.best_state,
                "best_epoch": best.best_epoch,
                "best_metric": best.best_metric,
                "history": best.history,
            },
            checkpoint_path,
        )
    writer.close()
    best.seconds = time.perf_counter() - started
    return best


def _soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, class_weight: torch.Tensor | None) -> torch.Tensor:
    log_probs = F.log_softmax(logits.float(), dim=1)
    if class_weight is not None:
        log_probs = log_probs * class_weight
    return -(targets * log_probs).sum(1).mean()


def _display(x: torch.Tensor) -> torch.Tensor:
    lo = x.amin(dim=(1, 2, 3), keepdim=True)
    hi = x.amax(dim=(1, 2, 3), keepdim=True)
    return ((x - lo) / (hi - lo).clamp_min(1e-6))[:, :1]
