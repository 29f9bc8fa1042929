"""The network library: every classifier a recipe or bundle can name.

Build by registered name with :func:`build_network` (the built-in networks are
:data:`NETWORKS`; plugins add theirs through the ``register_networks`` hook), or by dotted
path from a bundle config (``"_target_": "scintipipe.networks.InceptionV3"``). Every network takes ``in_channels``
and ``num_classes``, classifies 2-D images, and names its last convolution block for
Grad-CAM (:func:`gradcam_layer`). :func:`load_init_weights` initialises any of them from
a local weights file. :class:`ProbabilityEnsemble` combines trained classifiers into one.
"""

from scintipipe.networks.alexnet import AlexNet
from scintipipe.networks.backbone_head import PAPER_BACKBONES, BackboneWithHead
from scintipipe.networks.ensemble import ProbabilityEnsemble
from scintipipe.networks.head import PaperHead
from scintipipe.networks.inception_resnet_v2 import InceptionResNetV2
from scintipipe.networks.inception_v3 import InceptionV3
from scintipipe.networks.init_weights import InitWeightsError, load_init_weights, read_state_dict
from scintipipe.networks.mobilenet_v3 import MobileNetV3, MobileNetV3Large, MobileNetV3Small
from scintipipe.networks.registry import NETWORKS, NetworkSpec, build_network, gradcam_layer, network_spec, registered_networks
from scintipipe.networks.scintinet import ScintiNet
from scintipipe.networks.shufflenet_v2 import ShuffleNetV2, ShuffleNetV2x05, ShuffleNetV2x10
from scintipipe.networks.squeezenet import SqueezeNet11

__all__ = [
    "NETWORKS",
    "PAPER_BACKBONES",
    "AlexNet",
    "BackboneWithHead",
    "InceptionResNetV2",
    "InceptionV3",
    "InitWeightsError",
    "MobileNetV3",
    "MobileNetV3Large",
    "MobileNetV3Small",
    "NetworkSpec",
    "PaperHead",
    "ProbabilityEnsemble",
    "ScintiNet",
    "ShuffleNetV2",
    "ShuffleNetV2x05",
    "ShuffleNetV2x10",
    "SqueezeNet11",
    "build_network",
    "gradcam_layer",
    "load_init_weights",
    "network_spec",
    "read_state_dict",
    "registered_networks",
]
