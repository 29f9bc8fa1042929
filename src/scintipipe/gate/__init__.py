"""The gate stage: decide, before classification, whether a view is a thyroid scintigram.

A bundle classifies whatever it is given, so a CT slice, a photograph or a syringe image
would get a confident thyroid label. The gate refuses such inputs, in layers, and each
layer says why:

``metadata``
    DICOM facts: a modality that cannot hold a planar thyroid view (CT, MR, US, PT, RT,
    SR), an NM radionuclide the bundle was not made for, a body part or series
    description naming another organ, or a Secondary Capture scintipipe itself wrote.
    (:mod:`scintipipe.gate.metadata`)
``content``
    What the pixels show: syringe, point-source and flood images (one compact hot object,
    no neck anatomy) are *skipped*, not refused, and offered for the thyroid uptake of
    their study; photographs and text or line-art images are refused.
    (:mod:`scintipipe.gate.content`)
``ood``
    A learned out-of-distribution score on the network's penultimate features, fitted on
    the bundle's training data and shipped in the bundle with its threshold
    (``configs/gate.json`` and ``models/ood.pt``). (:mod:`scintipipe.gate.ood`)

Plugins add layers with the ``gate_scan`` hook (every implementation runs; any refusal
counts) and may replace the learned score with ``gate_batch``. ``scintipipe run
--accept-ood`` classifies views the ``content`` (but not the syringe skip) and ``ood``
layers refused, and every report says so; ``metadata`` refusals are final.
"""

from scintipipe.gate.refusal import GATE_COLUMNS, GateRefused, Refusal

__all__ = ["GATE_COLUMNS", "GateRefused", "Refusal"]
