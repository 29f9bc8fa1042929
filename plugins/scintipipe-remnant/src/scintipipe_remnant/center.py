"""The ``remnant`` centre: a 131I gamma camera imaging the neck 2-3 days after a diagnostic dose.

Registered through ``register_centers``, so ``scintipipe simulate --task remnant --center
remnant`` finds it; the core ships no 131I centre of its own.
"""

from __future__ import annotations

from scintipipe.api import I131_HE, CenterProfile

#: diagnostic activity (5 mCi) and imaging delay of the paper's protocol
DIAGNOSTIC_MBQ = 185.0
IMAGING_DELAY_MIN = (48 * 60.0, 72 * 60.0)

#: high-energy parallel-hole collimator, 364 keV photopeak with a 20 % window, 256 x 256 matrix
REMNANT_CENTER = CenterProfile(
    name="remnant",
    matrix=256,
    pixel_mm=2.4,
    count_preset=150_000,
    camera=I131_HE,
    injected_mbq=DIAGNOSTIC_MBQ,
    minutes_post_injection=IMAGING_DELAY_MIN,
    collimator_gap_mm=(20.0, 50.0),
    institution="Simulated 131I centre",
)
