"""Saliency maps from ``monai.visualize``: Grad-CAM, Grad-CAM++ and occlusion sensitivity.

Every method returns maps ``(batch, H, W)`` scaled to [0, 1] on the network input grid,
for one class per input. Grad-CAM and Grad-CAM++ need the layer the bundle declares
(``bundle.explain_layer``); occlusion sensitivity needs none (it only runs the network),
so it also works for a network that declares no layer, at the cost of many forward passes.

MONAI's CAM post-processing is replaced: its ``default_normalizer`` maps (min, max) to
(1, 0), which *inverts* the map (the gland, where the class evidence is, came out darkest
and the empty edges of the crop brightest); here each map is divided by its maximum
(:func:`scale_to_max`). ``docs/explanations.md`` has the measurements.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import torch
from monai.visualize import GradCAM, GradCAMpp, OcclusionSensitivity

METHODS = ("gradcam", "gradcampp", "occlusion")
DEFAULT_METHOD = "gradcam"

_CAM_CLASSES = {"gradcam": GradCAM, "gradcampp": GradCAMpp}
_cams: dict[tuple[int, str, str], GradCAM] = {}


def scale_to_max(maps: torch.Tensor) -> torch.Tensor:
    """Divide each map ``(batch, 1, H, W)`` by its maximum (an all-zero map stays zero).

    Replaces MONAI's ``default_normalizer``, which maps the maximum to 0 and the minimum to 1.
    """
    top = maps.flatten(1).amax(1).clamp_min(1e-12).view(-1, *[1] * (maps.dim() - 1))
    return (maps / top).clamp(0.0, 1.0)


def cam_for(network: torch.nn.Module, layer: str, method: str) -> GradCAM:
    """One CAM object per network, layer and method: hooks are registered once, not per batch.

    The CAM scales each map by its maximum (:func:`scale_to_max`) instead of MONAI's
    inverting ``default_normalizer``; upsampling stays MONAI's bilinear one.
    """
    key = (id(network), layer, method)
    if key not in _cams:
        _cams[key] = _CAM_CLASSES[method](nn_module=network, target_layers=layer, postprocessing=scale_to_max)
    return _cams[key]


def per_class(inputs: torch.Tensor, class_indices: list[int], one_class: Callable[[torch.Tensor, int], np.ndarray]) -> np.ndarray:
    """Run ``one_class(rows_of_inputs, class_index)`` once per distinct class; stack the maps."""
    maps = np.zeros((inputs.shape[0], *inputs.shape[2:]), dtype=np.float32)
    classes = np.asarray(class_indices)
    for cls in np.unique(classes):
        rows = np.nonzero(classes == cls)[0]
        maps[rows] = one_class(inputs[torch.as_tensor(rows)], int(cls))
    return maps


def class_activation_maps(
    network: torch.nn.Module, layer: str, inputs: torch.Tensor, class_indices: list[int], method: str = "gradcam"
) -> np.ndarray:
    """Grad-CAM or Grad-CAM++ maps ``(batch, H, W)`` in [0, 1].

    Args:
        network: the classifier, in eval mode.
        layer: dotted name of the layer (``bundle.explain_layer``).
        inputs: ``(batch, channels, H, W)`` on the network's device.
        class_indices: the class to explain for each input.
        method: ``"gradcam"`` or ``"gradcampp"``.
    """
    cam = cam_for(network, layer, method)

    def one_class(x: torch.Tensor, cls: int) -> np.ndarray:
        # an input that requires grad keeps PyTorch's full backward hooks (used by the CAM)
        # from warning on every batch that no input needs a gradient
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            if method == "gradcampp":  # MONAI's GradCAMpp broadcasts the score wrongly for batches > 1
                return np.concatenate([cam(row[None], class_idx=cls)[:, 0].detach().cpu().numpy() for row in x])
            return cam(x, class_idx=cls)[:, 0].detach().cpu().numpy()

    return np.clip(per_class(inputs, class_indices, one_class), 0.0, 1.0)


#: occlusion: the occluding patch's side as a fraction of the input side ...
OCCLUSION_FRACTION = 0.15
#: ... and the overlap of neighbouring patches (MONAI's ``overlap`` and its default; the
#: patch steps by ``1 - overlap`` of its side, about 6 px or 12 mm on uptake4's input, the
#: smallest focal nodule's diameter). At 0.25 the patch stepped by about 22 mm, and the
#: map's peak missed the nodule more often: focal pointing game 105/120 at 0.25, 117/120 at
#: 0.6 over three draws, at about three times the forward passes (docs/explanations.md)
OCCLUSION_OVERLAP = 0.6


def occlusion_maps(
    network: torch.nn.Module,
    inputs: torch.Tensor,
    class_indices: list[int],
    mask_fraction: float = OCCLUSION_FRACTION,
    overlap: float = OCCLUSION_OVERLAP,
) -> np.ndarray:
    """Occlusion sensitivity ``(batch, H, W)`` in [0, 1]: how much the class probability
    drops when a Gaussian patch (``mask_fraction`` of the side) hides each place, scaled
    so that the largest drop is 1 and the largest rise 0.

    Args:
        network: the classifier, in eval mode.
        inputs: ``(batch, channels, H, W)``.
        class_indices: the class to explain for each input.
        mask_fraction: occluding patch size relative to the input side.
        overlap: overlap of neighbouring patches, in [0, 1).
    """
    side = max(3, int(round(mask_fraction * min(inputs.shape[2:]))))
    occlusion = OcclusionSensitivity(network, mask_size=side, n_batch=32, verbose=False, overlap=overlap)

    def one_class(x: torch.Tensor, cls: int) -> np.ndarray:
        out = []
        with torch.no_grad(), warnings.catch_warnings():
            # MONAI's own indexing, deprecated by torch: nothing a user can act on
            warnings.filterwarnings("ignore", message="Using a non-tuple sequence for multidimensional indexing", category=UserWarning)
            for row in x:
                baseline = torch.softmax(network(row[None]), dim=1)[0, cls].item()
                occluded, _ = occlusion(row[None])
                out.append(normalise(baseline - occluded[0, cls].cpu().numpy()))
        return np.stack(out)

    return per_class(inputs, class_indices, one_class)


def normalise(saliency: np.ndarray) -> np.ndarray:
    """Scale a map to [0, 1] (all zeros stays zeros)."""
    saliency = np.asarray(saliency, dtype=np.float32)
    low, high = float(saliency.min()), float(saliency.max())
    return (saliency - low) / (high - low) if high > low else np.zeros_like(saliency)
