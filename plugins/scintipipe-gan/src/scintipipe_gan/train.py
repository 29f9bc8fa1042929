"""``scintipipe gan train``: fit the class-conditional DCGAN on a labelled folder.

A GAN folder holds ``config.json`` (task, bundle, labels, sizes, steps, seed, the data
hash and everything else the run used), ``checkpoint.pt`` (both networks, both
optimisers, the random states and the loss history: ``--resume`` continues from it), and
``logs/`` (TensorBoard scalars, when TensorBoard is installed).

Losses: least squares on the discriminator's raw scores (LSGAN, Mao et al. 2017) through
:class:`monai.losses.PatchAdversarialLoss`; Adam with the DCGAN settings (lr 2e-4, betas
0.5 and 0.999). Real images are drawn class-balanced, fake labels likewise.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from scintipipe_gan import CHECKPOINT, CONFIG, __version__
from scintipipe_gan.data import DEFAULT_INPUT_MAX, RealSet, to_gan
from scintipipe_gan.networks import Discriminator, Generator, diff_augment


@dataclass
class GanSettings:
    """What ``scintipipe gan train`` trains with (all of it goes into ``config.json``)."""

    image_size: int = 64
    z_dim: int = 64
    width: int = 32
    batch_size: int = 32
    steps: int = 2000
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    diffaugment: bool = True
    seed: int = 0
    checkpoint_every: int = 200
    input_max: float = DEFAULT_INPUT_MAX


@dataclass
class GanRun:
    """What :func:`train_gan` did."""

    out: Path
    steps_done: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


class GanFolderError(ValueError):
    """A GAN folder that cannot be used as asked (exists without ``--resume``, other data, ...)."""


def build_networks(config: dict[str, Any]) -> tuple[Generator, Discriminator]:
    """The generator and discriminator ``config.json`` describes."""
    n_classes, channels = len(config["labels"]), int(config["channels"])
    s = config["settings"]
    generator = Generator(n_classes, s["z_dim"], s["width"], s["image_size"], channels)
    discriminator = Discriminator(n_classes, s["width"], s["image_size"], channels)
    return generator, discriminator


def make_config(task: str, bundle: Any, real: RealSet, settings: GanSettings, data_dir: Path, labels_csv: Path | None) -> dict[str, Any]:
    """``config.json``: everything needed to rebuild, resume, check and sample the GAN."""
    return {
        "kind": "scintipipe-gan DCGAN",
        "plugin_version": __version__,
        "task": task,
        "bundle": {"name": bundle.name, "path": str(bundle.root), "version": bundle.version},
        "labels": real.labels,
        "class_counts": real.class_counts(),
        "channels": int(real.inputs.shape[1]),
        "input_size": [int(v) for v in real.inputs.shape[-2:]],
        "settings": asdict(settings),
        "data": {
            "dir": str(data_dir),
            "labels_csv": str(labels_csv or Path(data_dir) / "labels.csv"),
            "hash": real.data_hash,
            "views": len(real.sources),
            "left_out": len(real.failures),
        },
        "steps_done": 0,
    }


def write_config(out: Path, config: dict[str, Any]) -> None:
    (out / CONFIG).write_text(json.dumps(config, indent=2) + "\n")


def read_config(gan_dir: Path) -> dict[str, Any]:
    """``config.json`` of a GAN folder.

    Raises:
        GanFolderError: the folder holds no GAN.
    """
    path = Path(gan_dir) / CONFIG
    if not path.is_file():
        raise GanFolderError(f"{gan_dir} holds no GAN (no {CONFIG}); train one with scintipipe gan train")
    return json.loads(path.read_text())


def _summary_writer(out: Path, log: Callable[[str], None]) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional for this plugin
        log("note: TensorBoard is not installed; no logs/ scalars (pip install tensorboard)")
        return None
    return SummaryWriter(log_dir=str(out / "logs"))


def train_gan(
    task: str,
    bundle: Any,
    real: RealSet,
    out: Path,
    settings: GanSettings,
    data_dir: Path,
    labels_csv: Path | None = None,
    resume: bool = False,
    progress: bool | None = None,
    log: Callable[[str], None] = print,
) -> GanRun:
    """Train (or continue) the GAN on ``real`` and write the GAN folder ``out``.

    Args:
        task: the task name (recorded).
        bundle: the task bundle whose preprocessing made ``real``.
        real: the preprocessed labelled scans (:func:`scintipipe_gan.data.load_real`).
        out: the GAN folder.
        settings: sizes, steps, seed, optimiser.
        data_dir: where ``real`` came from (recorded).
        labels_csv: its labels (recorded).
        resume: continue from ``out/checkpoint.pt`` up to ``settings.steps``.
        progress: progress bar (``None``: on a terminal).
        log: where messages go.

    Raises:
        GanFolderError: ``out`` holds a GAN and not ``resume``; or ``resume`` with other
            data, labels or network sizes than the checkpoint's.
    """
    from monai.losses import PatchAdversarialLoss

    out = Path(out)
    checkpoint_path = out / CHECKPOINT
    config = make_config(task, bundle, real, settings, data_dir, labels_csv)
    state = None
    if checkpoint_path.is_file() or (out / CONFIG).is_file():
        if not resume:
            raise GanFolderError(f"{out} already holds a GAN; give --resume to continue it, or choose another folder")
        old = read_config(out)
        for key, what in (("labels", "labels"), ("channels", "channels")):
            if old[key] != config[key]:
                raise GanFolderError(f"--resume: the checkpoint was trained with {what} {old[key]}, this data has {config[key]}")
        if old["data"]["hash"] != config["data"]["hash"]:
            raise GanFolderError(
                f"--resume: the checkpoint was trained on other data (hash {old['data']['hash'][:12]}, now {config['data']['hash'][:12]})"
            )
        for key in ("image_size", "z_dim", "width"):
            if old["settings"][key] != config["settings"][key]:
                raise GanFolderError(f"--resume: the checkpoint has {key} {old['settings'][key]}, asked for {config['settings'][key]}")
        if checkpoint_path.is_file():
            state = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
    out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(settings.seed)
    rng = torch.Generator().manual_seed(settings.seed)
    generator, discriminator = build_networks(config)
    opt_g = torch.optim.Adam(generator.parameters(), lr=settings.lr, betas=settings.betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=settings.lr, betas=settings.betas)
    history: list[dict[str, float]] = []
    start = 0
    if state is not None:
        start, history = restore_checkpoint(state, generator, discriminator, opt_g, opt_d, rng)
        log(f"resumed from {checkpoint_path} after step {start} of {settings.steps}")
    write_config(out, {**config, "steps_done": start})

    images = to_gan(real.inputs, settings.image_size, settings.input_max)
    targets = real.targets
    n_classes = len(real.labels)
    counts = torch.bincount(targets, minlength=n_classes).float()
    weights = (1.0 / counts.clamp(min=1))[targets]  # class-balanced draws of real images
    present = (counts > 0).float()  # fake labels: the classes there are real images of
    adversarial = PatchAdversarialLoss(criterion="least_squares", no_activation_leastsq=True)

    def augment(x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, rng) if settings.diffaugment else x

    writer = _summary_writer(out, log)
    started = time.perf_counter()
    generator.train()
    discriminator.train()
    bar = tqdm(
        range(start, settings.steps), desc="gan", unit="step", initial=start, total=settings.steps, disable=None if progress is None else not progress
    )
    step = start
    for step in bar:
        idx = torch.multinomial(weights, settings.batch_size, replacement=True, generator=rng)
        real_x, real_y = images[idx], targets[idx]
        fake_y = torch.multinomial(present, settings.batch_size, replacement=True, generator=rng)
        z = torch.randn(settings.batch_size, settings.z_dim, generator=rng)
        fake_x = generator(z, fake_y)

        d_real = discriminator(augment(real_x), real_y)
        d_fake = discriminator(augment(fake_x.detach()), fake_y)
        loss_d = 0.5 * (
            adversarial(d_real, target_is_real=True, for_discriminator=True) + adversarial(d_fake, target_is_real=False, for_discriminator=True)
        )
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()

        loss_g = adversarial(discriminator(augment(fake_x), fake_y), target_is_real=True, for_discriminator=False)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()

        row = {
            "step": step + 1,
            "loss_d": loss_d.item(),
            "loss_g": loss_g.item(),
            "d_real": d_real.detach().mean().item(),
            "d_fake": d_fake.detach().mean().item(),
        }
        history.append(row)
        if writer is not None:
            for key in ("loss_d", "loss_g", "d_real", "d_fake"):
                writer.add_scalar(key.replace("_", "/", 1), row[key], step + 1)
        bar.set_postfix(d=f"{row['loss_d']:.3f}", g=f"{row['loss_g']:.3f}")
        if (step + 1) % settings.checkpoint_every == 0 or step + 1 == settings.steps:
            save_checkpoint(out, config, generator, discriminator, opt_g, opt_d, rng, step + 1, history)
    if writer is not None:
        if settings.steps > start:
            with torch.no_grad():
                generator.eval()
                labels = torch.arange(n_classes).repeat_interleave(4)
                preview = generator(torch.randn(len(labels), settings.z_dim, generator=rng), labels)
            writer.add_images("samples", (preview + 1) / 2, settings.steps)
        writer.close()
    steps_done = max(start, settings.steps) if settings.steps > start else start
    if settings.steps <= start:
        log(f"nothing to do: the checkpoint has {start} steps, --steps is {settings.steps}")
    return GanRun(out, steps_done, time.perf_counter() - started, history)


def restore_checkpoint(
    state: dict[str, Any],
    generator: torch.nn.Module,
    discriminator: torch.nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    rng: torch.Generator,
) -> tuple[int, list[dict[str, float]]]:
    """Load what :func:`save_checkpoint` wrote into the networks, optimisers and random states.

    Returns:
        ``(steps done, loss history)``, to continue from.
    """
    generator.load_state_dict(state["generator"])
    discriminator.load_state_dict(state["discriminator"])
    opt_g.load_state_dict(state["opt_g"])
    opt_d.load_state_dict(state["opt_d"])
    rng.set_state(state["rng"])
    torch.set_rng_state(state["torch_rng"])
    return int(state["step"]), list(state["history"])


def save_checkpoint(
    out: Path,
    config: dict[str, Any],
    generator: torch.nn.Module,
    discriminator: torch.nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    rng: torch.Generator,
    step: int,
    history: list[dict[str, float]],
) -> None:
    """Write ``checkpoint.pt`` (atomically) and the step into ``config.json``."""
    state = {
        "generator": generator.state_dict(),
        "discriminator": discriminator.state_dict(),
        "opt_g": opt_g.state_dict(),
        "opt_d": opt_d.state_dict(),
        "rng": rng.get_state(),
        "torch_rng": torch.get_rng_state(),
        "step": step,
        "history": history,
    }
    partial = out / (CHECKPOINT + ".partial")
    torch.save(state, partial)
    partial.replace(out / CHECKPOINT)
    write_config(out, {**config, "steps_done": step})


def load_generator(gan_dir: Path) -> tuple[Generator, dict[str, Any]]:
    """The trained generator (eval mode) and ``config.json`` of a GAN folder.

    Raises:
        GanFolderError: no GAN or no checkpoint in the folder.
    """
    return load_trained(gan_dir, read_config(gan_dir), build_networks, "training")


def load_trained(folder: Path, config: dict[str, Any], build: Callable[[dict[str, Any]], tuple[Any, Any]], what: str) -> tuple[Any, dict[str, Any]]:
    """A folder's trained generator (eval mode) from its checkpoint, and its config with ``steps_done``.

    Args:
        folder: the GAN or SRGAN folder.
        config: its ``config.json``.
        build: builds ``(generator, discriminator)`` from the config.
        what: the training's name, for the error.

    Raises:
        GanFolderError: the folder has no checkpoint.
    """
    path = Path(folder) / CHECKPOINT
    if not path.is_file():
        raise GanFolderError(f"{folder} has no {CHECKPOINT}; the {what} never reached a checkpoint")
    state = torch.load(path, map_location="cpu", weights_only=False)
    generator, _ = build(config)
    generator.load_state_dict(state["generator"])
    config["steps_done"] = int(state["step"])
    return generator.eval(), config


def generate(generator: Generator, labels: torch.Tensor, seed: int, batch_size: int = 64) -> torch.Tensor:
    """GAN images for ``labels`` (``(N,)`` indices), reproducible from ``seed``."""
    rng = torch.Generator().manual_seed(int(seed))
    out = []
    generator.eval()
    with torch.inference_mode():
        for start in range(0, len(labels), batch_size):
            y = labels[start : start + batch_size]
            out.append(generator(torch.randn(len(y), generator.z_dim, generator=rng), y))
    return torch.cat(out) if out else torch.empty(0)
