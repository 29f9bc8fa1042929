"""Everything about a neck scan that is *not* the diagnosis: one shared distribution.

A classifier should learn the medicine, not the simulator. So every property that does not
define a class (parenchymal texture, salivary, oral, nasal and oesophageal uptake, blood
pool, head perfusion, body habitus, neck extension, lobe asymmetry, isthmus, pyramidal
lobe, the normal-sized gland's anatomy, head-and-neck anatomy) is drawn here, by
:func:`sample_nuisance`, the same way for every class of every task. Class samplers
(:mod:`~scintipipe.simulate.uptake4`, :mod:`~scintipipe.simulate.normal`, task plugins)
draw only the class-defining findings: thyroid uptake, gland enlargement and nodules.

No nuisance differs by class. In real patients a pyramidal lobe is seen more often in
Graves' disease (the hyperplastic gland makes it visible) and salivary glands look fainter
next to an avid thyroid; here the pyramidal lobe's presence is anatomy (15 %) whose
visibility follows from the uptake, and salivary faintness follows from the thyroid's
higher uptake, so neither is a separate class-tied cue.

Call :func:`sample_nuisance` first, before any class-dependent draw: the same random state
then gives the same nuisance for every label.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from scintipipe.simulate.head_neck import HeadNeck, sample_head_neck
from scintipipe.simulate.neck import NeckActivities
from scintipipe.simulate.thyroid import GlandAnatomy, ThyroidShape, build_thyroid_shape, sample_gland_anatomy

#: shared ranges (min, max); see docs/simulator.md "Class definitions"
TEXTURE_SIGMA = (0.03, 0.3)  # log-uniform: from smooth to coarse parenchyma
TEXTURE_MM = (5.0, 12.0)
SALIVARY_SCALE = (0.7, 1.6)  # times parotid 0.1-0.3 %, submandibular 0.05-0.15 % each
BLOOD_POOL_SCALE = (0.8, 1.4)
HEAD_EXCESS = (0.3, 1.0)
HABITUS_SCALE = (0.85, 1.2)
NECK_EXTENSION_MM = (-10.0, 15.0)
LOBE_ASYMMETRY = 0.15
ISTHMUS_PROBABILITY = 0.85
PYRAMIDAL_PROBABILITY = 0.15
OESOPHAGUS_PROBABILITY = 0.15


@dataclass(frozen=True)
class Nuisance:
    """The class-independent part of one patient and scan.

    Attributes:
        texture_sigma: log-standard deviation of the parenchymal texture.
        texture_mm: its correlation length.
        salivary_scale: common factor of salivary, oral and nasal uptake.
        parotid, submandibular: uptake per gland (fraction of the injected activity).
        oral_cavity, nasal_mucosa, oesophagus_uptake: uptake fractions.
        blood_pool_scale: background concentration relative to an even spread.
        head_excess: extra concentration in the head's soft tissue.
        habitus_scale: neck width and thickness, chest thickness and thyroid depth factor.
        neck_extension_mm: extra thyroid-to-chin distance.
        gland: the normal-sized gland (before the class's enlargement).
        head_neck: salivary glands, mouth, nose, oesophagus, body outline.
    """

    texture_sigma: float
    texture_mm: float
    salivary_scale: float
    parotid: float
    submandibular: float
    oral_cavity: float
    nasal_mucosa: float
    oesophagus_uptake: float
    blood_pool_scale: float
    head_excess: float
    habitus_scale: float
    neck_extension_mm: float
    gland: GlandAnatomy
    head_neck: HeadNeck

    def activities(self, thyroid_uptake: float) -> NeckActivities:
        """Uptake fractions with the class's ``thyroid_uptake``."""
        return NeckActivities(
            thyroid=thyroid_uptake,
            parotid=self.parotid,
            submandibular=self.submandibular,
            oral_cavity=self.oral_cavity,
            nasal_mucosa=self.nasal_mucosa,
            oesophagus=self.oesophagus_uptake,
            blood_pool_scale=self.blood_pool_scale,
            head_excess=self.head_excess,
        )

    def thyroid_shape(self, enlargement: float = 1.0) -> ThyroidShape:
        """This patient's gland enlarged by ``enlargement`` (no nodules)."""
        return build_thyroid_shape(self.gland, enlargement, depth_scale=self.habitus_scale)

    def as_metadata(self) -> dict[str, float | bool]:
        """Every sampled value as a flat ``{name: float or bool}`` dict."""
        out: dict[str, float | bool] = {f.name: _plain(getattr(self, f.name)) for f in fields(self) if f.name not in ("gland", "head_neck")}
        out |= {f"gland_{key}": _plain(value) for key, value in asdict(self.gland).items()}
        anatomy = self.head_neck
        out |= {f"body_{key}": _plain(value) for key, value in asdict(anatomy.body).items()}
        for name in ("parotid_right", "parotid_left", "submandibular_right", "submandibular_left", "nasal"):
            out |= {f"{name}_{key}": _plain(value) for key, value in asdict(getattr(anatomy, name)).items()}
        for index, blob in enumerate(anatomy.oral_cavity):
            out |= {f"oral_{index}_{key}": _plain(value) for key, value in asdict(blob).items()}
        out["oesophagus_visible"] = anatomy.oesophagus is not None
        return out


def _plain(value: Any) -> float | bool:
    return value if isinstance(value, bool) else round(float(value), 6)


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def sample_nuisance(rng: np.random.Generator) -> Nuisance:
    """Draw the class-independent nuisance of one scan (the one distribution for all classes)."""
    salivary_scale = rng.uniform(*SALIVARY_SCALE)
    values = {
        "texture_sigma": _log_uniform(rng, *TEXTURE_SIGMA),
        "texture_mm": rng.uniform(*TEXTURE_MM),
        "salivary_scale": salivary_scale,
        "parotid": salivary_scale * rng.uniform(0.001, 0.003),
        "submandibular": salivary_scale * rng.uniform(0.0005, 0.0015),
        "oral_cavity": salivary_scale * rng.uniform(0.0003, 0.002),
        "nasal_mucosa": salivary_scale * rng.uniform(0.0001, 0.0005),
        "oesophagus_uptake": rng.uniform(0.0005, 0.002),
        "blood_pool_scale": rng.uniform(*BLOOD_POOL_SCALE),
        "head_excess": rng.uniform(*HEAD_EXCESS),
        "habitus_scale": rng.uniform(*HABITUS_SCALE),
        "neck_extension_mm": rng.uniform(*NECK_EXTENSION_MM),
    }
    gland = sample_gland_anatomy(rng, LOBE_ASYMMETRY, ISTHMUS_PROBABILITY, PYRAMIDAL_PROBABILITY)
    head_neck = sample_head_neck(rng, OESOPHAGUS_PROBABILITY, values["neck_extension_mm"], values["habitus_scale"])
    return Nuisance(**{key: float(value) for key, value in values.items()}, gland=gland, head_neck=head_neck)
