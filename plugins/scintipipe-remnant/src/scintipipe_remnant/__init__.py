"""scintipipe task plugin ``remnant``: residual thyroid tissue after thyroidectomy on 131I
neck scans (the remnant study: ResNet-18 fine-tuning on 446 131I SPECT neck images after
total thyroidectomy).

Modules:
    plugin       the hooks scintipipe calls (task, bundle, simulator, centre, recipes, command, study report)
    center       the ``remnant`` centre: a 131I camera, 2-3 days after a diagnostic dose
    simulator    two-view 131I neck studies, residual tissue absent or present
    dataset      writes simulated studies as two-frame NM DICOM files
    transforms   the paper's preprocessing as MONAI transforms (X and Xd)
    study        anterior + posterior views combined into one decision
"""

from pathlib import Path

__version__ = "0.1.0"

#: the shipped bundle and the training recipes live inside the package
BUNDLE_DIR = Path(__file__).parent / "bundle"
RECIPES_DIR = Path(__file__).parent / "recipes"

#: the task's labels in the network's output order (here so the plugin registers without importing the simulator)
LABELS = ("absent", "present")
