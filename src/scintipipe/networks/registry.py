"""Networks by name: :func:`build_network`, their Grad-CAM layers and minimum input sizes.

MONAI's own networks are used where MONAI has them (ResNet, DenseNet, EfficientNet,
SE-ResNet); the others are written in this package. Every network takes ``in_channels``
and ``num_classes`` and classifies 2-D images.

:data:`NETWORKS` is the read-only table of the networks scintipipe ships; the built-in
plugin ``scintipipe.builtin.networks`` registers them through ``register_networks``, the
same hook a plugin uses for its own. Look-ups by name (:func:`network_spec`,
:func:`build_network`) go through the networks a plugin manager collects: the one passed as
``pm``, else the process-wide one (built-in and installed plugins), which is what a bundle's
``inference.json`` gets when it builds ``scintipipe.networks.build_network`` by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from monai.networks import nets as monai_nets
from torch import nn

from scintipipe.networks.alexnet import AlexNet
from scintipipe.networks.inception_resnet_v2 import InceptionResNetV2
from scintipipe.networks.inception_v3 import InceptionV3
from scintipipe.networks.mobilenet_v3 import MobileNetV3
from scintipipe.networks.scintinet import ScintiNet
from scintipipe.networks.shufflenet_v2 import ShuffleNetV2
from scintipipe.networks.squeezenet import SqueezeNet11
from scintipipe.registry import network_key

Builder = Callable[..., nn.Module]


@dataclass(frozen=True)
class NetworkSpec:
    """How to build one named network and where its parts are.

    Attributes:
        builder: ``builder(num_classes=..., in_channels=..., **kwargs)`` returns the module.
        gradcam_layer: dotted module path of the last convolution block, for
            ``monai.visualize.GradCAM(target_layers=...)``.
        classifier: dotted module path of the last (classifying) layer.
        min_size: smallest input height/width the network accepts.
        source: ``"monai"`` or ``"scintipipe"``.
    """

    builder: Builder
    gradcam_layer: str
    classifier: str
    min_size: int
    source: str = "scintipipe"


def _monai_resnet(depth: int) -> Builder:
    factory = getattr(monai_nets, f"resnet{depth}")

    def build(num_classes: int, in_channels: int = 1, **kwargs: Any) -> nn.Module:
        # A 7x7 stride-2 stem and bias-free projection shortcuts, as in He et al. (MONAI's
        # defaults are stride 1 and biased shortcuts).
        options = {"conv1_t_stride": 2, "bias_downsample": False, **kwargs}
        return factory(pretrained=False, spatial_dims=2, n_input_channels=in_channels, num_classes=num_classes, **options)

    return build


def _monai_resnet_tiny(num_classes: int, in_channels: int = 1, **kwargs: Any) -> nn.Module:
    options = {"block": "basic", "layers": [1, 1, 1, 1], "block_inplanes": [16, 32, 64, 128], "conv1_t_stride": 2, "bias_downsample": False, **kwargs}
    return monai_nets.ResNet(spatial_dims=2, n_input_channels=in_channels, num_classes=num_classes, **options)


def _monai_densenet(cls: type[nn.Module]) -> Builder:
    def build(num_classes: int, in_channels: int = 1, **kwargs: Any) -> nn.Module:
        return cls(spatial_dims=2, in_channels=in_channels, out_channels=num_classes, pretrained=False, **kwargs)

    return build


def _monai_efficientnet(variant: str) -> Builder:
    def build(num_classes: int, in_channels: int = 1, **kwargs: Any) -> nn.Module:
        return monai_nets.EfficientNetBN(variant, pretrained=False, spatial_dims=2, in_channels=in_channels, num_classes=num_classes, **kwargs)

    return build


def _monai_seresnet50(num_classes: int, in_channels: int = 1, **kwargs: Any) -> nn.Module:
    return monai_nets.SEResNet50(spatial_dims=2, in_channels=in_channels, num_classes=num_classes, pretrained=False, **kwargs)


def _project(cls: type[nn.Module], **fixed: Any) -> Builder:
    def build(num_classes: int, in_channels: int = 1, **kwargs: Any) -> nn.Module:
        return cls(in_channels=in_channels, num_classes=num_classes, **fixed, **kwargs)

    return build


NETWORKS: Mapping[str, NetworkSpec] = MappingProxyType(
    {
        "scintinet": NetworkSpec(_project(ScintiNet), "features.4", "fc", 16),
        "resnet_tiny": NetworkSpec(_monai_resnet_tiny, "layer4", "fc", 32, "monai"),
        "resnet18": NetworkSpec(_monai_resnet(18), "layer4", "fc", 32, "monai"),
        "resnet34": NetworkSpec(_monai_resnet(34), "layer4", "fc", 32, "monai"),
        "resnet50": NetworkSpec(_monai_resnet(50), "layer4", "fc", 32, "monai"),
        "densenet121": NetworkSpec(_monai_densenet(monai_nets.DenseNet121), "class_layers.relu", "class_layers.out", 32, "monai"),
        "densenet169": NetworkSpec(_monai_densenet(monai_nets.DenseNet169), "class_layers.relu", "class_layers.out", 32, "monai"),
        "efficientnet_b0": NetworkSpec(_monai_efficientnet("efficientnet-b0"), "_bn1", "_fc", 32, "monai"),
        "seresnet50": NetworkSpec(_monai_seresnet50, "layer4", "last_linear", 32, "monai"),
        "inception_v3": NetworkSpec(_project(InceptionV3), "Mixed_7c", "fc", 75),
        "inception_resnet_v2": NetworkSpec(_project(InceptionResNetV2), "conv2d_7b", "last_linear", 75),
        "alexnet": NetworkSpec(_project(AlexNet), "features.11", "classifier.6", 63),
        "squeezenet1_1": NetworkSpec(_project(SqueezeNet11), "features.12", "classifier.1", 17),
        "shufflenet_v2_x0_5": NetworkSpec(_project(ShuffleNetV2, width=0.5), "conv5", "fc", 32),
        "shufflenet_v2_x1_0": NetworkSpec(_project(ShuffleNetV2, width=1.0), "conv5", "fc", 32),
        "mobilenet_v3_small": NetworkSpec(_project(MobileNetV3, mode="small"), "features.12", "classifier.3", 32),
        "mobilenet_v3_large": NetworkSpec(_project(MobileNetV3, mode="large"), "features.16", "classifier.3", 32),
    }
)
"""The networks scintipipe ships, by name (read-only; plugins add theirs through ``register_networks``)."""


def registered_networks(pm: Any = None) -> dict[str, NetworkSpec]:
    """Every network the plugins of ``pm`` register, by name.

    Args:
        pm: a plugin manager; default the process-wide one (built-in and installed plugins).
    """
    from scintipipe.plugins import default_plugin_manager, networks

    return networks(pm if pm is not None else default_plugin_manager()).networks


def network_spec(name: str, pm: Any = None) -> NetworkSpec:
    """The :class:`NetworkSpec` registered as ``name`` (dashes and case are ignored).

    Args:
        name: registry name, e.g. ``"resnet18"``.
        pm: the plugin manager whose networks to search; default the process-wide one.

    Raises:
        KeyError: for an unknown name, listing the known ones.
    """
    known = registered_networks(pm)
    key = network_key(name)
    if key not in known:
        raise KeyError(f"unknown network {name!r}; known: {', '.join(sorted(known))}")
    return known[key]


def build_network(name: str, num_classes: int, in_channels: int = 1, *, pm: Any = None, **kwargs: Any) -> nn.Module:
    """Build the network registered as ``name`` (built-in ones: :data:`NETWORKS`).

    The module gets a ``gradcam_layer`` attribute (dotted path of its last convolution
    block) when it has none. Usable from a bundle config:
    ``{"_target_": "scintipipe.networks.build_network", "name": "resnet18", "num_classes": 4}``.

    Args:
        name: registry name, e.g. ``"scintinet"``, ``"resnet18"``, ``"inception_v3"``, or
            one a plugin registers with ``register_networks``.
        num_classes: number of output classes.
        in_channels: input channels (1 for a scintigram).
        pm: the plugin manager whose networks to search; default the process-wide one.
        **kwargs: passed to the network's constructor.
    """
    spec = network_spec(name, pm)
    model = spec.builder(num_classes=num_classes, in_channels=in_channels, **kwargs)
    if not isinstance(getattr(model, "gradcam_layer", None), str):
        model.gradcam_layer = spec.gradcam_layer  # type: ignore[assignment]  # torch's stub types Module.__setattr__ for tensors and modules; plain attributes work
    return model


def gradcam_layer(network: str | nn.Module, pm: Any = None) -> str:
    """Dotted path of the layer to give ``monai.visualize.GradCAM(target_layers=...)``.

    Args:
        network: a registry name, or a module built here (or any module with a
            ``gradcam_layer`` attribute).
        pm: the plugin manager whose networks a name is looked up in; default the
            process-wide one.

    Raises:
        ValueError: for a module that declares no layer.
    """
    if isinstance(network, str):
        return network_spec(network, pm).gradcam_layer
    layer = getattr(network, "gradcam_layer", None)
    if not isinstance(layer, str):
        raise ValueError(f"{type(network).__name__} declares no gradcam_layer; pass a registry name or set the attribute")
    return layer
