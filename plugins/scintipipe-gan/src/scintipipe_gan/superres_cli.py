"""``scintipipe gan srgan``: the SRGAN stage's commands (``train``); click only at import."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("srgan")
def srgan() -> None:
    """The SRGAN stage: raises 64-pixel GAN images (low count, low matrix) to the bundle's input size."""


@srgan.command("train")
@click.option("--task", required=True, help="Task whose bundle preprocessing makes the pairs (uptake4).")
@click.option("--bundle", "bundle_name", default=None, help="Bundle (name or folder); default: the bundle named like the task.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="The SR folder.")
@click.option("--n-pairs", type=click.IntRange(2), default=256, show_default=True, help="Simulated low/high pairs (the last 1/8 held out).")
@click.option("--low-size", type=click.IntRange(8), default=64, show_default=True, help="Side of the low image: the DCGAN's --image-size.")
@click.option(
    "--count-fraction",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.25,
    show_default=True,
    help="Share of the counts the low image keeps (Poisson thinning; 1: matrix only).",
)
@click.option("--center", default="a", show_default=True, help="Simulator centre of the pairs.")
@click.option("--steps", type=click.IntRange(1), default=1000, show_default=True, help="Total generator steps (with --resume: up to this many).")
@click.option("--warmup-steps", type=click.IntRange(0), default=200, show_default=True, help="Steps of L1 alone before the adversarial loss starts.")
@click.option("--adv-weight", type=click.FloatRange(0), default=1e-2, show_default=True, help="Weight of the adversarial loss next to L1.")
@click.option("--batch-size", type=click.IntRange(2), default=16, show_default=True)
@click.option("--width", type=click.IntRange(4), default=32, show_default=True, help="Channels of the generator's trunk.")
@click.option("--blocks", type=click.IntRange(1), default=4, show_default=True, help="Residual blocks of the generator.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-4, show_default=True)
@click.option("--checkpoint-every", type=click.IntRange(1), default=200, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="The pairs and the training.")
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoint.pt.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
def srgan_train(
    task: str,
    bundle_name: str | None,
    out_dir: Path,
    n_pairs: int,
    low_size: int,
    count_fraction: float,
    center: str,
    steps: int,
    warmup_steps: int,
    adv_weight: float,
    batch_size: int,
    width: int,
    blocks: int,
    lr: float,
    checkpoint_every: int,
    seed: int,
    resume: bool,
    progress: bool | None,
) -> None:
    """Train the SRGAN stage on low/high pairs the simulator makes in memory (same phantom, fewer counts, coarser matrix)."""
    from scintipipe.api import ScintipipeError
    from scintipipe_gan.data import find_bundle
    from scintipipe_gan.superres import SRSettings, train_srgan
    from scintipipe_gan.train import GanFolderError

    settings = SRSettings(
        low_size=low_size,
        count_fraction=count_fraction,
        center=center,
        n_pairs=n_pairs,
        width=width,
        blocks=blocks,
        batch_size=batch_size,
        steps=steps,
        warmup_steps=warmup_steps,
        lr=lr,
        adv_weight=adv_weight,
        seed=seed,
        checkpoint_every=checkpoint_every,
    )
    try:
        bundle = find_bundle(bundle_name or task)
        if bundle.task != task:
            raise click.UsageError(f"bundle {bundle.name!r} solves task {bundle.task!r}, not {task!r}")
        run = train_srgan(task, bundle, out_dir, settings, resume=resume, progress=progress, log=lambda m: click.echo(m, err=True))
    except (GanFolderError, ScintipipeError, ValueError) as exc:
        raise click.UsageError(str(exc)) from exc
    held = run.validation
    report = f"; held-out L1 {held['l1_sr']:.4f} (bilinear {held['l1_bilinear']:.4f})" if held else ""
    click.echo(
        f"SRGAN stage at step {run.steps_done} written to {out_dir} ({run.seconds:.0f} s){report}; use: scintipipe gan sample GANDIR --super-resolve {out_dir}"
    )
