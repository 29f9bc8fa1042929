"""scintipipe-gan: class-conditional DCGAN augmentation for planar thyroid scintigrams.

``scintipipe gan train`` fits the GAN on a labelled folder, ``scintipipe gan check`` measures
it (FID and KID from the task bundle's own network, per-class diversity, memorisation) and
``scintipipe gan sample`` writes tagged synthetic DICOMs, refusing what the checks refused.
``scintipipe gan srgan train`` trains the SRGAN stage on simulated low/high pairs, which
``gan sample --super-resolve`` applies to the GAN's images.
"""

__version__ = "0.1.0"

#: files of a GAN folder
CONFIG = "config.json"
CHECKPOINT = "checkpoint.pt"
QUALITY = "quality.json"
REFERENCE = "memorisation_reference.pt"
