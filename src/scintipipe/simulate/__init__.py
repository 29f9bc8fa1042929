"""Physics-based scintigram simulator: phantoms, camera models, centres and writers.

A task plugin registers a :class:`TaskSimulator` (or any ``factory(rng, center, label)``
returning a :class:`SimulatedCase`) through the ``register_simulators`` hook;
``scintipipe simulate --task NAME`` finds it there.

Example:
    >>> import numpy as np
    >>> from scintipipe.simulate import CENTERS, UPTAKE4_SIMULATOR
    >>> case = UPTAKE4_SIMULATOR(np.random.default_rng(0), CENTERS["a"], "focal_increased")
    >>> case.counts.shape, case.counts.dtype, sorted(case.masks)[:3]
    ((256, 256), dtype('uint16'), ['body', 'markers', 'nodules'])

Modules:
    camera      collimator PSF, septal penetration, scatter, count preset, Poisson
    centers     named acquisition profiles ``a``, ``b``, ``siemens``, ``remnant``, ``randomised``
    acquisition domain randomisation: the ``randomised`` centre's draws, flood field, markers
    nuisance    the one class-independent distribution of everything but the diagnosis
    findings    class-defining findings (uptake, size, nodules) and the labelling-rule loop
    anatomy     grid, projected ellipsoids, body outline, smooth random fields
    thyroid     lobes, isthmus, pyramidal lobe, nodules, texture
    head_neck   salivary glands, mouth, nasal mucosa, oesophagus, body outline
    scene       organs to depth layers to expected counts; masks
    neck        one complete anterior neck acquisition (reused by every neck task)
    syringe     full and empty syringe images for uptake truth
    uptake4     the four uptake patterns of Zhao et al. 2021 and their labelling rules
    normal      a euthyroid scan
    dicom_io, masks_io, preview, writer   output files
"""

from scintipipe.simulate.camera import CAMERAS, I131_HE, TC99M_LEHR, CameraProfile
from scintipipe.simulate.case import SimulatedCase, TaskSimulator
from scintipipe.simulate.centers import CENTERS, CenterProfile, get_center
from scintipipe.simulate.uptake4 import UPTAKE4_SIMULATOR, simulate_uptake4_case
from scintipipe.simulate.writer import write_dataset

__all__ = [
    "CAMERAS",
    "CENTERS",
    "I131_HE",
    "TC99M_LEHR",
    "UPTAKE4_SIMULATOR",
    "CameraProfile",
    "CenterProfile",
    "SimulatedCase",
    "TaskSimulator",
    "get_center",
    "simulate_uptake4_case",
    "write_dataset",
]
