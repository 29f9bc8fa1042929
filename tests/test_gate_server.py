"""The input gate in `scintipipe serve`: 422 answers with the layer and reason, the gate
fields of the infer answers, and params ``accept_ood``.

Three views of the shape-only test bundle (random weights) are served: ``plain`` as it
is (no learned score), and ``loose`` and ``strict`` with a ``configs/gate.json`` whose
learned score is a stand-in plugin (the spread of the network input) under a threshold
that lets everything through (``loose``) or nothing (``strict``). The answers are checked
for what the gate says, never for what the labels mean.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from pydicom.data import get_testdata_file

from dicom_factory import nm_dataset, thyroid_pattern
from scintipipe import hookimpl
from scintipipe.plugins import make_plugin_manager
from scintipipe.server.local import running_server

LABELS = ["diffusely_increased", "diffusely_decreased", "focal_increased", "heterogeneous"]


class StandInScore:
    """A learned-score layer for bundles whose gate.json names method ``stand-in``."""

    @hookimpl
    def gate_batch(self, inputs: Any, bundle: Any, device: str) -> list[dict[str, Any]] | None:
        policy = bundle.gate
        if not policy.ood or policy.ood["method"] != "stand-in":
            return None
        scores = inputs.flatten(1).std(1).tolist()
        return [
            {"ood_score": s, "in_distribution": s <= policy.threshold, "reason": f"stand-in score {s:.3f} above {policy.threshold}"} for s in scores
        ]


def gated_copy(tiny: Path, folder: Path, threshold: float) -> Path:
    copy = shutil.copytree(tiny, folder)
    gate = {"ood": {"method": "stand-in", "statistics": "models/ood.pt", "threshold": threshold}}
    (copy / "configs" / "gate.json").write_text(json.dumps(gate))
    return copy


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("gate-server-files")
    thyroid = folder / "thyroid.dcm"
    nm_dataset(thyroid_pattern(64, 64, peak=120, seed=2)).save_as(thyroid, enforce_file_format=True)
    yy, xx = np.mgrid[:64, :64]
    shape = np.exp(-(((yy - 32) / 2.0) ** 2 + ((xx - 32) / 8.0) ** 2))
    syringe = nm_dataset(np.random.default_rng(0).poisson(400_000 * shape / shape.sum()).astype(np.uint16))
    syringe.SeriesDescription = "SERINGUE PLEINE"
    syringe.save_as(folder / "seringue.dcm", enforce_file_format=True)
    ct = folder / "my ct slice.dcm"
    shutil.copy(get_testdata_file("CT_small.dcm"), ct)
    return {"thyroid": thyroid, "syringe": folder / "seringue.dcm", "ct": ct}


@pytest.fixture(scope="module")
def server(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("gate-server")
    bundles = {
        "plain": tiny_bundle,
        "loose": gated_copy(tiny_bundle, folder / "loose", 1e6),
        "strict": gated_copy(tiny_bundle, folder / "strict", -1.0),
    }
    pm = make_plugin_manager(load_entry_points=False)
    pm.register(StandInScore(), name="stand-in-score")
    with running_server(bundles, folder / "datastore", pm=pm) as url:
        yield url


def infer(url: str, model: str, path: Path, params: dict[str, Any] | None = None) -> requests.Response:
    with path.open("rb") as handle:
        return requests.post(
            f"{url}/infer/{model}?output=json", files={"file": (path.name, handle)}, data={"params": json.dumps(params or {})}, timeout=60
        )


def test_a_ct_gets_422_naming_the_uploaded_file_and_the_metadata_layer(server: str, files: dict[str, Path]) -> None:
    for model in ("plain", "plain_roi", "plain_gradcam"):
        response = infer(server, model, files["ct"])
        assert response.status_code == 422, (model, response.text)
        body = response.json()
        assert body["layer"] == "metadata" and "modality CT" in body["reason"] and body["overridable"] is False
        assert body["detail"].startswith("my ct slice.dcm") and "refused by the metadata gate" in body["detail"] and body["reason"] in body["detail"]
        assert "upload-" not in response.text and "/uploads" not in response.text  # never the server's temporary copy
    forced = infer(server, "plain", files["ct"], {"accept_ood": True})
    assert forced.status_code == 422 and forced.json()["layer"] == "metadata"  # metadata refusals are final


def test_a_datastore_ct_is_named_by_its_uploaded_name(server: str, files: dict[str, Path]) -> None:
    with files["ct"].open("rb") as handle:
        assert requests.put(f"{server}/datastore/image?image=ct1", files={"file": (files["ct"].name, handle)}, timeout=30).status_code == 200
    response = requests.post(f"{server}/infer/plain?image=ct1", timeout=60)
    assert response.status_code == 422 and response.json()["detail"].startswith("my ct slice.dcm:")
    assert "images/" not in response.text


def test_a_syringe_image_gets_422_as_skipped(server: str, files: dict[str, Path]) -> None:
    response = infer(server, "plain", files["syringe"], {"accept_ood": True})
    body = response.json()
    assert response.status_code == 422 and body["skipped"] is True
    assert body["detail"].startswith("seringue.dcm: syringe or point source") and body["detail"].endswith(": not classified")


def test_a_thyroid_scan_answers_with_the_gate_fields(server: str, files: dict[str, Path]) -> None:
    plain = infer(server, "plain", files["thyroid"]).json()
    assert plain["label"] in LABELS
    assert plain["in_distribution"] is None and plain["ood_score"] is None and plain["ood_threshold"] is None  # no learned score shipped
    assert plain["gate"] == {"in_distribution": None, "ood_score": None, "ood_threshold": None, "overridden": [], "against_advice": False}
    loose = infer(server, "loose", files["thyroid"]).json()
    assert loose["in_distribution"] is True and 0 < loose["ood_score"] < 1e6 and loose["ood_threshold"] == 1e6
    (view,) = loose["views"]
    assert view["in_distribution"] is True and view["ood_score"] == loose["ood_score"] and view["gate"] == loose["gate"]
    assert view["source"] == "thyroid.dcm"  # as sent, not the server's temporary copy
    assert loose["gate"]["against_advice"] is False and not any("against" in note for note in loose["notes"])


def test_the_learned_layer_refuses_and_accept_ood_forces_with_a_warning(server: str, files: dict[str, Path]) -> None:
    for model in ("strict", "strict_gradcam"):
        refused = infer(server, model, files["thyroid"])
        body = refused.json()
        assert refused.status_code == 422 and body["layer"] == "ood" and body["overridable"] is True, refused.text
        assert body["detail"].startswith("thyroid.dcm: refused by the ood gate: stand-in score")
    forced = infer(server, "strict", files["thyroid"], {"accept_ood": True})
    assert forced.status_code == 200, forced.text
    answer = forced.json()
    assert answer["label"] in LABELS and answer["in_distribution"] is False and answer["ood_threshold"] == -1.0
    assert answer["gate"]["against_advice"] is True and answer["gate"]["overridden"][0]["layer"] == "ood"
    assert answer["notes"][0].startswith("Classified against the input gate's advice (--accept-ood): ood: stand-in score")
    gradcam = infer(server, "strict_gradcam", files["thyroid"], {"accept_ood": "true"}).json()
    assert gradcam["gate"]["against_advice"] is True and gradcam["in_distribution"] is False
    assert infer(server, "strict", files["thyroid"], {"accept_ood": "maybe"}).status_code == 400
