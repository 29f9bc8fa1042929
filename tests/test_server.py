"""scintipipe serve with the real MONAI Label client against a real server on 127.0.0.1.

The tiny bundle has random weights: answers are checked for shape, consistency and
per-image correctness under concurrency, never for their meaning.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests

from dicom_factory import thyroid_pattern, write_nm_dicom
from scintipipe.server.datastore import Datastore
from scintipipe.server.label_images import ROI_LABELS, read_label_nifti
from scintipipe.server.local import running_server

client_module = pytest.importorskip("monailabel.client.client", reason="install with: pip install --no-deps monailabel")
MONAILabelClient = client_module.MONAILabelClient
MONAILabelClientException = client_module.MONAILabelClientException

N_SCANS = 8
LABELS = ["diffusely_increased", "diffusely_decreased", "focal_increased", "heterogeneous"]


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Eight NM DICOMs that differ (lobe brightness, noise), 64 x 64 at 2 mm."""
    folder = tmp_path_factory.mktemp("scans")
    return [write_nm_dicom(folder / f"scan{i}.dcm", thyroid_pattern(64, 64, peak=40 + 60 * i, seed=i)) for i in range(N_SCANS)]


@pytest.fixture(scope="module")
def server(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory):
    """A server over the tiny bundle with a fresh datastore and a 1 MB upload limit."""
    datastore = tmp_path_factory.mktemp("served") / "datastore"
    with running_server({"tiny": tiny_bundle}, datastore, max_upload_bytes=1024 * 1024) as url:
        yield url, datastore


def client_for(url: str, tmp_path: Path) -> MONAILabelClient:
    return MONAILabelClient(url, tmpdir=str(tmp_path))


def classification(params: bytes | dict) -> dict:
    """The client hands JSON-only answers back as raw bytes."""
    return json.loads(params) if isinstance(params, (bytes, str)) else params


def write_class_label(folder: Path, label: str) -> Path:
    path = folder / f"{label}.json"
    path.write_text(json.dumps({"label": label}))
    return path


def test_info_lists_a_classification_and_segmentation_models_per_bundle(server, tmp_path: Path) -> None:
    info = client_for(server[0], tmp_path).info()
    assert info["name"] == "scintipipe" and info["version"]
    models = info["models"]
    assert models["tiny"]["type"] == "classification" and models["tiny"]["dimension"] == 2
    assert list(models["tiny"]["labels"]) == LABELS and models["tiny"]["description"]
    assert models["tiny_roi"]["type"] == "segmentation" and models["tiny_roi"]["labels"] == ROI_LABELS
    assert models["tiny_gradcam"]["type"] == "segmentation"
    assert set(LABELS) <= set(info["labels"]) and {"random", "least_confidence"} <= set(info["strategies"])
    assert "tiny" in info["trainers"]
    assert requests.get(server[0] + "/docs", timeout=10).status_code == 200
    assert "/infer/{model}" in requests.get(server[0] + "/openapi.json", timeout=10).json()["paths"]


def test_real_client_upload_infer_label_and_next_sample(server, scans: list[Path], tmp_path: Path) -> None:
    client = client_for(server[0], tmp_path)
    assert client.upload_image(str(scans[0]), image_id="case0") == {"image": "case0"}
    assert client.upload_image(str(scans[1]), image_id="case1") == {"image": "case1"}

    image_out, params = client.infer("tiny", "case0", {})
    answer = classification(params)
    assert image_out is None
    assert [row["label"] for row in sorted(answer["prediction"], key=lambda r: r["idx"])] == LABELS
    scores = [row["score"] for row in answer["prediction"]]
    assert scores == sorted(scores, reverse=True) and sum(scores) == pytest.approx(1.0, abs=1e-4)
    assert answer["probabilities"][answer["label"]] == answer["prediction"][0]["score"]
    assert answer["image"] == "case0" and answer["latency"]["total_s"] > 0
    assert answer["quantities"]["thyroid_counts"] > 0

    label_file, roi = client.infer("tiny_roi", "case0", {})
    labels = read_label_nifti(Path(label_file))
    assert labels.shape == (64, 64) and set(np.unique(labels)) <= {0, *ROI_LABELS.values()}
    assert roi["pixels"]["thyroid_right"] > 0 and roi["pixels"]["thyroid_left"] > 0

    label_file, gradcam = client.infer("tiny_gradcam", "", {"threshold": 0.6}, file=str(scans[2]))
    assert read_label_nifti(Path(label_file)).shape == (64, 64) and gradcam["threshold"] == 0.6

    saved = client.save_label("case0", str(write_class_label(tmp_path, "heterogeneous")))
    assert saved["class_label"] == "heterogeneous"
    assert client.next_sample("random", {})["id"] == "case1"
    assert client.next_sample("least_confidence", {})["id"] == "case1"
    roi_label = Path(client.infer("tiny_roi", "case1", {})[0])
    assert client.save_label("case1", str(roi_label), params={"label": "focal_increased"})["class_label"] == "focal_increased"
    assert client.next_sample("random", {}) == {}
    store = client.datastore()
    assert store["objects"]["case1"]["labels"]["final"]["info"]["kind"] == "image"
    downloaded = Path(client.download_label("case1", "final"))
    assert np.array_equal(read_label_nifti(downloaded), read_label_nifti(roi_label))


def status_and_detail(response: requests.Response) -> tuple[int, str]:
    return response.status_code, response.json()["detail"]


def test_bad_input_gets_4xx_with_a_reason_and_leaves_the_datastore_intact(server, scans: list[Path], tmp_path: Path) -> None:
    url, datastore_dir = server
    client = client_for(url, tmp_path)
    client.upload_image(str(scans[3]), image_id="keep")
    before = (datastore_dir / "datastore.json").read_bytes()
    files_before = sorted(p.name for p in datastore_dir.rglob("*") if p.is_file())

    text = tmp_path / "notes.txt"
    text.write_text("not a scan")
    status, detail = status_and_detail(requests.put(f"{url}/datastore/image?image=notes", files={"file": text.open("rb")}, timeout=30))
    assert status == 415 and "not an image" in detail
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"\x00garbage" * 100)
    assert requests.put(f"{url}/datastore/image?image=junk", files={"file": junk.open("rb")}, timeout=30).status_code == 415
    big = tmp_path / "big.dcm"
    big.write_bytes(b"\x00" * (3 * 1024 * 1024))
    status, detail = status_and_detail(requests.put(f"{url}/datastore/image?image=big", files={"file": big.open("rb")}, timeout=30))
    assert status == 413 and "limit" in detail
    status, detail = status_and_detail(requests.post(f"{url}/infer/nosuchmodel?image=keep", timeout=30))
    assert status == 404 and "tiny_roi" in detail
    with pytest.raises(MONAILabelClientException, match="Status: 404"):
        client.infer("nosuchmodel", "keep", {})
    assert requests.post(f"{url}/infer/tiny?image=nosuchimage", timeout=30).status_code == 404
    assert requests.post(f"{url}/infer/tiny", timeout=30).status_code == 400
    assert requests.post(f"{url}/infer/tiny?image=keep", data={"params": "{not json"}, timeout=30).status_code == 400
    assert requests.post(f"{url}/infer/tiny?image=keep&output=image", timeout=30).status_code == 400
    assert requests.post(f"{url}/infer/tiny_gradcam?image=keep", data={"params": '{"threshold": 7}'}, timeout=30).status_code == 400
    assert requests.put(f"{url}/datastore/image?image=..%2Fescape", files={"file": scans[0].open("rb")}, timeout=30).status_code == 400
    assert requests.put(f"{url}/datastore/label?image=keep", files={"label": text.open("rb")}, timeout=30).status_code == 400
    assert requests.put(f"{url}/datastore/label?image=keep", files={"label": junk.open("rb")}, timeout=30).status_code == 415
    assert requests.put(f"{url}/datastore/label?image=nosuchimage", files={"label": text.open("rb")}, timeout=30).status_code == 404
    assert requests.post(f"{url}/activelearning/nosuchstrategy", timeout=30).status_code == 404
    assert requests.post(f"{url}/train/tiny_roi", timeout=30).status_code == 404

    assert (datastore_dir / "datastore.json").read_bytes() == before
    assert sorted(p.name for p in datastore_dir.rglob("*") if p.is_file()) == files_before
    assert client.infer("tiny", "keep", {})[1]  # still serving


def test_datastore_survives_a_restart(tiny_bundle: Path, scans: list[Path], tmp_path: Path) -> None:
    datastore = tmp_path / "datastore"
    with running_server({"tiny": tiny_bundle}, datastore) as url:
        client = client_for(url, tmp_path)
        client.upload_image(str(scans[4]), image_id="first scan")
        label = Path(client.infer("tiny_roi", "first scan", {})[0])
        client.save_label("first scan", str(label), params={"label": "diffusely_decreased"})
    with running_server({"tiny": tiny_bundle}, datastore) as url:
        client = client_for(url, tmp_path)
        assert client.datastore()["objects"]["first scan"]["labels"]["final"]["info"]["class_label"] == "diffusely_decreased"
        assert np.array_equal(read_label_nifti(Path(client.download_label("first scan", "final"))), read_label_nifti(label))
        assert classification(client.infer("tiny", "first scan", {})[1])["image"] == "first scan"


def test_label_writes_are_atomic(scans: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Datastore(tmp_path / "datastore")
    store.add_image("a", scans[0], ".dcm")
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text('{"label": "heterogeneous"}')
    new.write_text('{"label": "focal_increased"}' + " " * 100_000)
    store.save_label("a", old, ".json", info={"class_label": "heterogeneous"})
    index_before = store.index_path.read_bytes()

    import shutil

    real_copy = shutil.copyfileobj

    def copy_half_then_fail(source, target, length=0):
        target.write(source.read(1000))
        raise OSError("disk full")

    monkeypatch.setattr(shutil, "copyfileobj", copy_half_then_fail)
    with pytest.raises(OSError):
        store.save_label("a", new, ".json", info={"class_label": "focal_increased"})
    monkeypatch.setattr(shutil, "copyfileobj", real_copy)
    assert store.label_path("a").read_bytes() == old.read_bytes()
    assert store.index_path.read_bytes() == index_before
    assert not [p for p in store.root.rglob("*.tmp")]
    assert Datastore(store.root).label_info("a")["class_label"] == "heterogeneous"


def test_files_recovered_after_two_crashes_are_both_kept(scans: list[Path], tmp_path: Path) -> None:
    """A file the index does not name (a write cut short by a crash) goes to .recovered/ on
    opening; its namesake after a later crash must not replace it (the kill -9 test found that)."""
    store = Datastore(tmp_path / "datastore")
    store.add_image("a", scans[0], ".dcm")
    orphan = store.root / "labels" / "final" / "b.json"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    for attempt in ("first", "second"):
        orphan.write_text(json.dumps({"label": attempt}))  # written, then the crash before the index named it
        Datastore(store.root)
        assert not orphan.exists()
    recovered = sorted((store.root / ".recovered").rglob("b.json"))
    assert sorted(json.loads(path.read_text())["label"] for path in recovered) == ["first", "second"]
    assert Datastore(store.root).json()["objects"].keys() == {"a"}


def test_concurrent_requests_get_their_own_answers(server, scans: list[Path], tmp_path: Path) -> None:
    client = client_for(server[0], tmp_path)
    expected = [classification(client.infer("tiny", "", {}, file=str(scan))[1])["probabilities"] for scan in scans]
    assert len({json.dumps(p, sort_keys=True) for p in expected}) > 1, "the scans should not all give the same answer"
    expected_roi = [int(client.infer("tiny_roi", "", {}, file=str(scan))[1]["pixels"]["thyroid_right"]) for scan in scans]

    def ask(index: int) -> tuple[int, dict, int]:
        own = MONAILabelClient(server[0], tmpdir=str(tmp_path / f"t{index}"))
        (tmp_path / f"t{index}").mkdir(exist_ok=True)
        probabilities = classification(own.infer("tiny", "", {}, file=str(scans[index]))[1])["probabilities"]
        roi = own.infer("tiny_roi", "", {}, file=str(scans[index]))[1]["pixels"]["thyroid_right"]
        return index, probabilities, roi

    start = threading.Barrier(N_SCANS)

    def together(index: int) -> tuple[int, dict, int]:
        start.wait(timeout=30)
        return ask(index)

    with ThreadPoolExecutor(N_SCANS) as pool:
        results = list(pool.map(together, range(N_SCANS)))
    for index, probabilities, roi in results:
        assert probabilities == pytest.approx(expected[index], abs=1e-6), f"scan {index} got another scan's answer"
        assert roi == expected_roi[index]


@pytest.mark.slow
def test_train_retrains_on_labelled_images_in_the_background(tiny_bundle: Path, scans: list[Path], tmp_path: Path) -> None:
    with running_server({"tiny": tiny_bundle}, tmp_path / "datastore") as url:
        client = client_for(url, tmp_path)
        with pytest.raises(MONAILabelClientException, match="need at least 4"):
            client.train_start("tiny", {"epochs": 1})
        for index, label in enumerate(["focal_increased", "focal_increased", "heterogeneous", "heterogeneous"]):
            client.upload_image(str(scans[index]), image_id=f"c{index}")
            client.save_label(f"c{index}", str(write_class_label(tmp_path, label)))
        job = client.train_start("tiny", {"epochs": 1, "deploy": True})
        assert job["status"] == "RUNNING" and job["images"] == 4
        deadline = time.monotonic() + 120
        while client.train_status(check_if_running=True) and time.monotonic() < deadline:
            time.sleep(0.5)
        status = client.train_status()
        assert status["status"] == "DONE", json.dumps(status, indent=1)
        assert status["result"]["deployed"] and (tmp_path / "datastore" / status["result"]["bundle_dir"] / "models/model.pt").is_file()
        served = client.info()["models"]["tiny"]["bundle"]["path"]  # relative to the datastore: answers name no server path
        assert served == status["result"]["bundle_dir"]
        assert len(classification(client.infer("tiny", "c0", {})[1])["prediction"]) == 4


def test_serve_command_is_registered_and_refuses_an_unknown_bundle(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from scintipipe.cli import cli

    runner = CliRunner()
    assert "serve" in runner.invoke(cli, ["--help"]).output
    assert "--datastore" in runner.invoke(cli, ["serve", "--help"]).output
    result = runner.invoke(cli, ["serve", "--bundle", str(tmp_path / "nothing-here"), "--datastore", str(tmp_path / "ds")])
    assert result.exit_code == 2 and "no bundle named" in result.output


def test_default_bundles_skip_those_that_do_not_load(tiny_bundle: Path, tmp_path: Path) -> None:
    from scintipipe import hookimpl
    from scintipipe.plugins import make_plugin_manager
    from scintipipe.server.run import served_bundles

    broken = tmp_path / "broken"
    broken.mkdir()

    class Registers:
        @hookimpl
        def register_tasks(self, register):
            register.bundle("tiny_test", tiny_bundle, task="uptake4")
            register.bundle("broken_test", broken, task="uptake4")

    pm = make_plugin_manager(load_entry_points=False)
    pm.register(Registers(), name="test_registers")
    notes: list[str] = []
    bundles = served_bundles(pm, [], log=notes.append)
    assert "tiny_test" in bundles and "broken_test" not in bundles
    assert any("broken_test" in note for note in notes)
