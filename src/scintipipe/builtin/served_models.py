"""Built-in served models: per served bundle, its classifier, its regions and its Grad-CAM region.

``scintipipe serve`` offers, for each bundle it serves (``register.bundles``), the models
:mod:`scintipipe.server.models` describes: ``<bundle>`` (classification), ``<bundle>_roi``
(segmentation) and, for bundles that name an ``explain_layer``, ``<bundle>_gradcam``
(segmentation). They are registered through ``register_served_models`` as a third-party
plugin's would be, so a plugin's own model sits beside them (and a clashing name is refused).
"""

from __future__ import annotations

from typing import Any

from scintipipe import hookimpl


@hookimpl(tryfirst=True)
def register_served_models(register: Any) -> None:
    """The classifier, regions and Grad-CAM models of every served bundle, in bundle order.

    ``tryfirst``: registered before the plugins' models, so ``/info/`` lists them first and a
    plugin that takes one of their names is the one the clash message names second.
    """
    if not register.bundles:
        return
    from scintipipe.server.models import BundleClassifier, BundleGradCAM, BundleRegions  # the server's modules: imported by the server only

    for name, bundle in register.bundles.items():
        register.served_model(BundleClassifier(name, bundle))
        register.served_model(BundleRegions(name, bundle))
        if bundle.explain_layer:
            register.served_model(BundleGradCAM(name, bundle))
