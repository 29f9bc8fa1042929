"""Served models are registered like everything else: a third-party plugin's model sits beside
the built-in ones in ``/info/`` and answers ``/infer/<name>``, and a clashing name is refused
naming both plugins (the ``register_served_models`` hook)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import requests

from dicom_factory import thyroid_pattern, write_nm_dicom
from scintipipe.api import BadRequest, InferResult, ServedModel, hookimpl
from scintipipe.bundle import Bundle
from scintipipe.errors import RegistrationError
from scintipipe.plugins import make_plugin_manager, served_models
from scintipipe.server.label_images import read_label_nifti
from scintipipe.server.local import running_server
from scintipipe.server.models import ModelService

BUILTIN = "scintipipe.builtin.served_models"


class HotRegion(ServedModel):
    """A third party's segmentation model: the admitted view's pixels at or above ``fraction`` of its maximum."""

    def __init__(self, bundle_name: str, bundle: Bundle):
        super().__init__(
            bundle_name + "_hot",
            "segmentation",
            ["background", "hot"],
            "Pixels at or above a fraction of the maximum.",
            {"fraction": 0.5},
            bundle=bundle,
            bundle_name=bundle_name,
        )

    def infer(self, scans, params, context):
        fraction = float(params.get("fraction", self.config["fraction"]))
        if not 0 < fraction <= 1:
            raise BadRequest(f"fraction must be in (0, 1], not {fraction}")
        scan, gate = context.admit(self.bundle_name, scans, params.get("view"))
        with context.timer.step("threshold_s"):
            counts = np.asarray(scan["image"])[0]
            labels = (counts >= fraction * counts.max()).astype(np.uint8)
        path = context.write_label_image(labels, scan, self.name)
        answer = {
            "type": "segmentation",
            "fraction": fraction,
            "pixels": {"hot": int(labels.sum())},
            "segmenter": context.options["segmenter"],
            "gate": gate,
        }
        return InferResult(answer, path)


class Counts(ServedModel):
    """A third party's model tied to no bundle: the file's total counts per view."""

    def __init__(self):
        super().__init__("counts", "classification", {"counted": 0}, "Total counts per view.")

    def infer(self, scans, params, context):
        return InferResult({"type": "classification", "counts": [float(np.asarray(scan["image"]).sum()) for scan in scans]})


class ThirdParty:
    """The plugin: a model per served bundle, and one of its own."""

    @hookimpl
    def register_served_models(self, register):
        for name, bundle in register.bundles.items():
            register.served_model(HotRegion(name, bundle))
        register.served_model(Counts())


class Clash:
    """A plugin that takes a built-in model's name."""

    @hookimpl
    def register_served_models(self, register):
        register.served_model(Counts())
        register.served_model(ServedModel("tiny_roi", "segmentation", ["region"], "mine"))


def plugin_manager(*plugins: tuple[str, object]):
    pm = make_plugin_manager(load_entry_points=False)
    for name, plugin in plugins:
        pm.register(plugin, name=name)
    return pm


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_nm_dicom(tmp_path_factory.mktemp("scans") / "scan.dcm", thyroid_pattern(64, 64, peak=120, seed=3))


@pytest.fixture(scope="module")
def server(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory):
    datastore = tmp_path_factory.mktemp("served") / "datastore"
    with running_server({"tiny": tiny_bundle}, datastore, pm=plugin_manager(("third_party", ThirdParty()))) as url:
        yield url


def test_a_plugins_models_are_listed_beside_the_builtin_ones(server: str) -> None:
    info = requests.get(server + "/info/", timeout=30).json()
    models = info["models"]
    assert list(models) == [
        "tiny",
        "tiny_roi",
        "tiny_gradcam",
        "tiny_hot",
        "counts",
    ]  # the built-in plugin's, in bundle order, then the third party's
    hot = models["tiny_hot"]
    assert hot["type"] == "segmentation" and hot["labels"] == {"background": 0, "hot": 1} and hot["dimension"] == 2
    assert hot["description"] == "Pixels at or above a fraction of the maximum." and hot["bundle"]["name"] == "tiny"
    assert hot["config"]["fraction"] == 0.5 and hot["config"]["segmenter"] == "classical"  # its own params and the served plugin options
    assert hot["options"] == models["tiny_roi"]["options"]
    assert models["counts"]["type"] == "classification" and "bundle" not in models["counts"]
    assert {"hot", "counted"} <= set(info["labels"])


def test_a_plugins_model_answers_infer(server: str, scan: Path) -> None:
    with scan.open("rb") as handle:
        answer = requests.post(
            f"{server}/infer/tiny_hot?output=json",
            files={"file": handle},
            data={"params": json.dumps({"fraction": 0.6, "segmenter": "learned"})},
            timeout=60,
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"] == "tiny_hot" and body["fraction"] == 0.6 and body["pixels"]["hot"] > 0 and body["segmenter"] == "learned"
    assert body["gate"]["against_advice"] is False and {"load_s", "threshold_s", "total_s"} <= set(body["latency"])
    with scan.open("rb") as handle:
        image = requests.post(f"{server}/infer/tiny_hot?output=image", files={"file": handle}, timeout=60)
    assert image.status_code == 200 and image.headers["content-type"] == "application/gzip"
    with scan.open("rb") as handle:
        counts = requests.post(f"{server}/infer/counts", files={"file": handle}, timeout=60).json()
    assert counts["model"] == "counts" and counts["counts"][0] > 0
    with scan.open("rb") as handle:
        bad = requests.post(f"{server}/infer/tiny_hot", files={"file": handle}, data={"params": json.dumps({"fraction": 2})}, timeout=60)
    assert bad.status_code == 400 and "fraction must be in (0, 1]" in bad.json()["detail"]


def test_a_plugins_label_image_is_on_the_scan_grid(tiny_bundle: Path, scan: Path, tmp_path: Path) -> None:
    service = ModelService(plugin_manager(("third_party", ThirdParty())), {"tiny": Bundle(tiny_bundle, name="tiny")}, work_dir=tmp_path / "work")
    result = service.infer("tiny_hot", scan, {"fraction": 0.5})
    labels = read_label_nifti(result.label_file)
    assert labels.shape == (64, 64) and int(labels.sum()) == result.params["pixels"]["hot"]


def test_a_duplicate_name_is_refused_naming_both_plugins(tiny_bundle: Path, tmp_path: Path) -> None:
    bundles = {"tiny": Bundle(tiny_bundle, name="tiny")}
    with pytest.raises(RegistrationError, match=rf"served model 'tiny_roi' is registered by both plugin '{BUILTIN}' and plugin 'clash'"):
        ModelService(plugin_manager(("clash", Clash())), bundles, work_dir=tmp_path / "one")

    class Twin:
        @hookimpl
        def register_served_models(self, register):
            register.served_model(Counts())

    with pytest.raises(
        RegistrationError, match=r"served model 'counts' is registered by both plugin '(third_party|twin)' and plugin '(third_party|twin)'"
    ) as refused:
        served_models(plugin_manager(("third_party", ThirdParty()), ("twin", Twin())), bundles)
    assert "'third_party'" in str(refused.value) and "'twin'" in str(refused.value)


def test_a_served_model_must_be_one_of_a_monai_label_type(tiny_bundle: Path) -> None:
    class Odd:
        @hookimpl
        def register_served_models(self, register):
            register.served_model(ServedModel("odd", "regression"))

    class NotAModel:
        @hookimpl
        def register_served_models(self, register):
            register.served_model(lambda scans: None)

    with pytest.raises(
        RegistrationError, match="plugin 'odd' registered served model 'odd' of type 'regression'; use one of classification, segmentation"
    ):
        served_models(plugin_manager(("odd", Odd())))
    with pytest.raises(RegistrationError, match="plugin 'not_a_model' registered a served model that is not a scintipipe.api.ServedModel"):
        served_models(plugin_manager(("not_a_model", NotAModel())))


def test_the_builtin_models_are_a_plugin_like_any_other(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = Bundle(tiny_bundle, name="tiny")
    register = served_models(plugin_manager(), {"tiny": bundle})
    assert list(register.served_models) == ["tiny", "tiny_roi", "tiny_gradcam"] and {register.owner(name) for name in register.served_models} == {
        BUILTIN
    }
    pm = plugin_manager(("third_party", ThirdParty()))
    pm.unregister(name=BUILTIN)
    service = ModelService(pm, {"tiny": bundle}, work_dir=tmp_path / "work")
    assert list(service.models()) == ["tiny_hot", "counts"]
    service.set_bundle("again", Bundle(tiny_bundle, name="again"))  # a bundle served later (a retrained one) gets its models
    assert list(service.models()) == ["tiny_hot", "again_hot", "counts"]


def test_registration_goes_through_pluggy_so_wrappers_see_it(tiny_bundle: Path) -> None:
    seen: list[str] = []

    class Watcher:
        @hookimpl(wrapper=True)
        def register_served_models(self, register):
            result = yield
            seen.append(register.current_plugin)
            return result

    served_models(plugin_manager(("third_party", ThirdParty()), ("watcher", Watcher())), {"tiny": Bundle(tiny_bundle, name="tiny")})
    assert set(seen) == {BUILTIN, "third_party"}
