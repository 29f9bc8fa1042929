"""``scintipipe gan srgan train``: the SRGAN stage, trained on simulated low/high pairs.

An SR folder holds ``config.json`` (kind ``scintipipe-gan SRGAN``: task, bundle, low and high
sizes, every setting, the pairs' hash, the step and the held-out L1 of the SR output and of a
plain bilinear resize) and ``checkpoint.pt`` (both networks, both optimisers, the random
states, the history: ``--resume`` continues from it). The pairs are not stored: the same
settings simulate the same pairs again (:mod:`scintipipe_gan.superres_pairs`), and a resume
checks their hash.

Loss of the generator: L1 to the high image, plus ``adv_weight`` times the least-squares
adversarial loss of MONAI's :class:`~monai.losses.PatchAdversarialLoss` on the patch
discriminator's scores, from step ``warmup_steps`` on (SRGAN trains the content loss alone
first). No perceptual loss: it would need downloaded VGG weights. Adam 1e-4, betas 0.9/0.999.
The last ``val_fraction`` of the pairs are held out for the L1 report.

:func:`super_resolve` applies a trained stage to GAN images: ``scintipipe gan sample
--super-resolve SRDIR`` raises the DCGAN's 64-pixel images to the bundle's input size.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from scintipipe_gan import CHECKPOINT, CONFIG, __version__
from scintipipe_gan.data import DEFAULT_INPUT_MAX
from scintipipe_gan.superres_networks import SRGenerator, build_patch_discriminator
from scintipipe_gan.superres_pairs import SuperResPairs, simulate_pairs
from scintipipe_gan.train import GanFolderError, load_trained, restore_checkpoint, save_checkpoint

SR_KIND = "scintipipe-gan SRGAN"


@dataclass
class SRSettings:
    """What ``scintipipe gan srgan train`` trains with (all of it goes into ``config.json``)."""

    low_size: int = 64
    count_fraction: float = 0.25
    center: str = "a"
    n_pairs: int = 256
    val_fraction: float = 0.125
    width: int = 32
    blocks: int = 4
    disc_width: int = 32
    batch_size: int = 16
    steps: int = 1000
    warmup_steps: int = 200
    lr: float = 1e-4
    adv_weight: float = 1e-2
    seed: int = 0
    checkpoint_every: int = 200
    input_max: float = DEFAULT_INPUT_MAX


@dataclass
class SRRun:
    """What :func:`train_srgan` did."""

    out: Path
    steps_done: int
    seconds: float
    validation: dict[str, float] = field(default_factory=dict)


def pairs_hash(pairs: SuperResPairs) -> str:
    """SHA-256 of the pairs' pixels (rounded to 1e-4, so it survives float noise)."""
    digest = hashlib.sha256()
    for tensor in (pairs.low, pairs.high):
        digest.update((tensor * 1e4).round().to(torch.int32).numpy().tobytes())
    return digest.hexdigest()


def read_sr_config(sr_dir: Path) -> dict[str, Any]:
    """``config.json`` of an SR folder.

    Raises:
        GanFolderError: the folder holds no SRGAN stage.
    """
    path = Path(sr_dir) / CONFIG
    if not path.is_file():
        raise GanFolderError(f"{sr_dir} holds no SRGAN stage (no {CONFIG}); train one with scintipipe gan srgan train")
    config = json.loads(path.read_text())
    if config.get("kind") != SR_KIND:
        raise GanFolderError(f"{sr_dir} holds a {config.get('kind', 'unknown')!r}, not an SRGAN stage")
    return config


def build_sr_networks(config: dict[str, Any]) -> tuple[SRGenerator, torch.nn.Module]:
    """The generator and discriminator ``config.json`` describes."""
    s, channels = config["settings"], int(config["channels"])
    generator = SRGenerator(config["high_size"], channels, s["width"], s["blocks"])
    return generator, build_patch_discriminator(channels, s["disc_width"])


def _validation(generator: SRGenerator, pairs: SuperResPairs, held_out: torch.Tensor) -> dict[str, float]:
    """Mean L1 (in ``[-1, 1]`` units) of the SR output and of a bilinear resize on the held-out pairs."""
    if not len(held_out):
        return {}
    generator.eval()
    with torch.inference_mode():
        low, high = pairs.low[held_out], pairs.high[held_out]
        sr = generator(low)
        bilinear = F.interpolate(low, size=high.shape[-2:], mode="bilinear", align_corners=False)
    generator.train()
    return {"n": int(len(held_out)), "l1_sr": float((sr - high).abs().mean()), "l1_bilinear": float((bilinear - high).abs().mean())}


def train_srgan(
    task: str,
    bundle: Any,
    out: Path,
    settings: SRSettings,
    resume: bool = False,
    progress: bool | None = None,
    log: Callable[[str], None] = print,
) -> SRRun:
    """Simulate the pairs, train (or continue) the SRGAN stage and write the SR folder ``out``.

    Args:
        task: the task (must be the bundle's).
        bundle: the task bundle whose preprocessing makes the pairs.
        out: the SR folder.
        settings: pairs, sizes, steps, seed, losses.
        resume: continue from ``out/checkpoint.pt`` up to ``settings.steps``.
        progress: progress bar (``None``: on a terminal).
        log: where messages go.

    Raises:
        GanFolderError: ``out`` holds a stage and not ``resume``; or ``resume`` with other
            pairs or network sizes than the checkpoint's.
    """
    from monai.losses import PatchAdversarialLoss

    out = Path(out)
    log(f"simulating {settings.n_pairs} low/high pairs (centre {settings.center}, {settings.count_fraction:g} of the counts, {settings.low_size} px)")
    pairs = simulate_pairs(
        bundle, settings.n_pairs, settings.low_size, settings.count_fraction, settings.center, settings.seed, settings.input_max, log
    )
    pairs_digest = pairs_hash(pairs)
    config: dict[str, Any] = {
        "kind": SR_KIND,
        "plugin_version": __version__,
        "task": task,
        "bundle": {"name": bundle.name, "path": str(bundle.root), "version": bundle.version},
        "channels": int(pairs.high.shape[1]),
        "low_size": [settings.low_size, settings.low_size],
        "high_size": [int(v) for v in pairs.high.shape[-2:]],
        "settings": asdict(settings),
        "pairs": {"n": settings.n_pairs, "hash": pairs_digest, "realigned": sum(1 for s in pairs.shifts if s != (0, 0))},
        "steps_done": 0,
    }
    state = None
    if (out / CONFIG).is_file():
        if not resume:
            raise GanFolderError(f"{out} already holds an SRGAN stage; give --resume to continue it, or choose another folder")
        old = read_sr_config(out)
        if old["pairs"]["hash"] != pairs_digest:
            raise GanFolderError("--resume: the checkpoint was trained on other pairs (other pair settings or seed)")
        for key in ("width", "blocks", "disc_width"):
            if old["settings"][key] != settings.__dict__[key]:
                raise GanFolderError(f"--resume: the checkpoint has {key} {old['settings'][key]}, asked for {settings.__dict__[key]}")
        if (out / CHECKPOINT).is_file():
            state = torch.load(out / CHECKPOINT, map_location="cpu", weights_only=False)
    out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(settings.seed)
    rng = torch.Generator().manual_seed(settings.seed)
    generator, discriminator = build_sr_networks(config)
    opt_g = torch.optim.Adam(generator.parameters(), lr=settings.lr, betas=(0.9, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=settings.lr, betas=(0.9, 0.999))
    start, history = 0, []
    if state is not None:
        start, history = restore_checkpoint(state, generator, discriminator, opt_g, opt_d, rng)
        log(f"resumed from {out / CHECKPOINT} after step {start} of {settings.steps}")
    n_val = int(round(settings.n_pairs * settings.val_fraction)) if settings.n_pairs > 1 else 0
    train_idx, val_idx = torch.arange(settings.n_pairs - n_val), torch.arange(settings.n_pairs - n_val, settings.n_pairs)
    adversarial = PatchAdversarialLoss(criterion="least_squares", no_activation_leastsq=True)
    config["validation"] = _validation(generator, pairs, val_idx)
    (out / CONFIG).write_text(json.dumps({**config, "steps_done": start}, indent=2) + "\n")

    started = time.perf_counter()
    generator.train()
    discriminator.train()
    bar = tqdm(
        range(start, settings.steps),
        desc="srgan",
        unit="step",
        initial=start,
        total=settings.steps,
        disable=None if progress is None else not progress,
    )
    for step in bar:
        idx = train_idx[torch.randint(len(train_idx), (settings.batch_size,), generator=rng)]
        low, high = pairs.low[idx], pairs.high[idx]
        sr = generator(low)
        adversarial_on = step >= settings.warmup_steps
        loss_d = torch.zeros(())
        if adversarial_on:
            loss_d = 0.5 * (
                adversarial(discriminator(high)[-1], target_is_real=True, for_discriminator=True)
                + adversarial(discriminator(sr.detach())[-1], target_is_real=False, for_discriminator=True)
            )
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
        l1 = (sr - high).abs().mean()
        loss_adv = adversarial(discriminator(sr)[-1], target_is_real=True, for_discriminator=False) if adversarial_on else torch.zeros(())
        loss_g = l1 + settings.adv_weight * loss_adv
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        history.append({"step": step + 1, "l1": l1.item(), "loss_adv": float(loss_adv.detach()), "loss_d": float(loss_d.detach())})
        bar.set_postfix(l1=f"{l1.item():.4f}")
        if (step + 1) % settings.checkpoint_every == 0 or step + 1 == settings.steps:
            config["validation"] = _validation(generator, pairs, val_idx)
            save_checkpoint(out, config, generator, discriminator, opt_g, opt_d, rng, step + 1, history)
    done = max(start, settings.steps)
    if settings.steps <= start:
        log(f"nothing to do: the checkpoint has {start} steps, --steps is {settings.steps}")
    validation = json.loads((out / CONFIG).read_text()).get("validation", {})
    return SRRun(out, done, time.perf_counter() - started, validation)


def load_sr(sr_dir: Path) -> tuple[SRGenerator, dict[str, Any]]:
    """The trained SR generator (eval mode) and ``config.json`` of an SR folder.

    Raises:
        GanFolderError: no SRGAN stage or no checkpoint in the folder.
    """
    return load_trained(sr_dir, read_sr_config(sr_dir), build_sr_networks, "SRGAN training")


def check_sr_fits(sr_config: dict[str, Any], gan_config: dict[str, Any]) -> None:
    """Refuse an SR stage that cannot take this GAN's images to its bundle's input.

    Raises:
        GanFolderError: another task or bundle, another low size than the GAN's image size,
            another high size than the bundle input, other channels or input scaling.
    """
    gan_size = int(gan_config["settings"]["image_size"])
    checks = (
        ("task", sr_config["task"], gan_config["task"]),
        ("bundle", sr_config["bundle"]["name"], gan_config["bundle"]["name"]),
        ("image size (SR low size vs GAN image size)", int(sr_config["low_size"][0]), gan_size),
        ("bundle input size", list(sr_config["high_size"]), list(gan_config["input_size"])),
        ("channels", int(sr_config["channels"]), int(gan_config["channels"])),
        ("input_max", float(sr_config["settings"]["input_max"]), float(gan_config["settings"]["input_max"])),
    )
    for what, sr_value, gan_value in checks:
        if sr_value != gan_value:
            raise GanFolderError(f"--super-resolve: the SRGAN stage has {what} {sr_value}, the GAN {gan_value}")


def super_resolve(generator: SRGenerator, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """GAN images (``[-1, 1]``, the SR stage's low size) raised to its high size."""
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            out.append(generator(images[start : start + batch_size]))
    return torch.cat(out) if out else images
