"""scintipipe task plugin ``disease``: Graves' disease, subacute thyroiditis, thyroid
tumour and normal on anterior 99mTc-pertechnetate thyroid scans (the multicentre disease
study: ResNet-34 versus nuclear-medicine physicians on 3194 SPECT thyroid images).

Modules:
    plugin       the hooks scintipipe calls (task, bundle, simulator, recipes)
    simulator    the four disease classes, built from the core's neck-view pieces
"""

from pathlib import Path

__version__ = "0.1.0"

#: the shipped bundle and the training recipes live inside the package
BUNDLE_DIR = Path(__file__).parent / "bundle"
RECIPES_DIR = Path(__file__).parent / "recipes"

#: the task's labels in the network's output order (here so the plugin registers without importing the simulator)
LABELS = ("graves", "subacute_thyroiditis", "thyroid_tumour", "normal")
