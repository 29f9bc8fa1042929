"""`scintipipe serve --dicomweb-url`: the datastore over a real PACS, Orthanc with its DICOMweb plugin.

A simulated study (thyroid view and two syringe images) and scintipipe's own SR and Secondary
Capture of it are stored in Orthanc by STOW-RS; the server app (FastAPI's TestClient, the
shape-only ``tiny_bundle``) lists the study's images and not the results, fetches an image by
WADO-RS when it is first read, classifies it as ``scintipipe run`` does, and keeps readers'
labels in its local folder with the UIDs. The Orthanc tests skip, with the reason, when Orthanc
or the dicom-network extra is missing.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from orthanc_server import Orthanc, free_port
from scintipipe.server.datastore_dicomweb import DicomwebSource, image_ids, public_url, source_from_options
from scintipipe.testing import run_cli

ADMIN, READ = "admin-token-for-the-dicomweb-test", "read-token-for-the-dicomweb-test"


def stow(url: str, files: list[Path]) -> None:
    from scintipipe.dicomnet.sender import StowDestination

    StowDestination(url).send(files)


def uid_of(path: Path, keyword: str) -> str:
    import pydicom

    return str(pydicom.dcmread(path, stop_before_pixels=True)[keyword].value)


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    server = Orthanc(tmp_path_factory.mktemp("orthanc-dicomweb"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def study(orthanc: Orthanc, tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One simulated study in Orthanc with scintipipe's results of it, and ``scintipipe run``'s predictions."""
    folder = tmp_path_factory.mktemp("pacs-study")
    run_cli("simulate", "--task", "uptake4", "--n", "1", "--seed", "23", "--syringes", "--out", folder / "sim", "--no-progress")
    images = sorted((folder / "sim").rglob("*.dcm"))
    thyroid = folder / "sim" / "case-00000.dcm"
    out = folder / "run"
    run_cli("run", "--bundle", tiny_bundle, "--out", out, "--no-explain", "--no-progress", "--workers", "0", "--device", "cpu", thyroid)
    with (out / "predictions.csv").open() as handle:
        (row,) = list(csv.DictReader(handle))
    results = [*out.rglob("report_sr.dcm"), *out.rglob("overlay_sc.dcm")]
    assert len(results) == 2
    stow(f"{orthanc.url}/dicom-web", [*images, *results])
    return {"images": images, "thyroid": thyroid, "run": row, "study": uid_of(thyroid, "StudyInstanceUID")}


class Client:
    """``requests`` against a running server, by route."""

    def __init__(self, url: str):
        self.url = url

    def __getattr__(self, method: str) -> Any:
        import requests

        return lambda route, **kwargs: requests.request(method, self.url + route, timeout=120, **kwargs)


@contextmanager
def serving(orthanc: Orthanc, tiny_bundle: Path, datastore: Path) -> Iterator[Client]:
    """``scintipipe serve --dicomweb-url`` on loopback, with an admin and a read token."""
    from scintipipe.server.auth import Tokens
    from scintipipe.server.local import running_server

    tokens = Tokens.from_options(token=ADMIN, read_token=READ)
    with running_server({"tiny": tiny_bundle}, datastore, tokens=tokens, dicomweb=DicomwebSource(f"{orthanc.url}/dicom-web/")) as url:
        yield Client(url)


# ---- without Orthanc -------------------------------------------------------------------------


def test_options_and_ids() -> None:
    assert public_url("http://reader:secret@pacs:8042/dicom-web") == "http://pacs:8042/dicom-web"
    source = source_from_options("https://pacs/dicom-web/", token="t", user="reader:pw:with:colons")
    assert source.url == "https://pacs/dicom-web" and source.user == ("reader", "pw:with:colons") and source.token == "t"
    for url, user in (("pacs:8042", None), ("http://pacs", "no-colon")):
        with pytest.raises(ValueError):
            source_from_options(url, user=user)
    rows = [
        {"StudyInstanceUID": "1.2", "SeriesInstanceUID": "1.2.3", "SOPInstanceUID": "1.2.3.1"},
        {"StudyInstanceUID": "1.2", "SeriesInstanceUID": "1.2.4", "SOPInstanceUID": "1.2.4.1"},
        {"StudyInstanceUID": "1.2", "SeriesInstanceUID": "1.2.4", "SOPInstanceUID": "1.2.4.2"},
    ]
    assert sorted(image_ids(rows)) == ["1.2.3", "1.2.4.1", "1.2.4.2"]  # the series id, or the instance id in a series of several


# ---- against Orthanc -------------------------------------------------------------------------


def test_lists_fetches_infers_like_run_and_keeps_labels_locally(orthanc: Orthanc, study: dict[str, Any], tiny_bundle: Path, tmp_path: Path) -> None:
    datastore = tmp_path / "cache"
    with serving(orthanc, tiny_bundle, datastore) as client:
        check_served_study(client, orthanc, study, datastore, tmp_path)


def check_served_study(client: Client, orthanc: Orthanc, study: dict[str, Any], datastore: Path, tmp_path: Path) -> None:
    import pydicom

    read, admin = {"Authorization": f"Bearer {READ}"}, {"Authorization": f"Bearer {ADMIN}"}
    assert client.get("/datastore/?output=all").status_code == 401  # access control unchanged
    listing = client.get("/datastore/?output=all", headers=read).json()
    series = {uid_of(path, "SeriesInstanceUID"): path for path in study["images"]}
    assert set(listing["objects"]) == set(series)  # the thyroid view and the two syringes; not our SR and SC
    thyroid = uid_of(study["thyroid"], "SeriesInstanceUID")
    info = listing["objects"][thyroid]["image"]["info"]
    assert info["StudyInstanceUID"] == study["study"] and info["SOPInstanceUID"] == uid_of(study["thyroid"], "SOPInstanceUID")
    assert info["source"] == "dicomweb" and info["Modality"] == "NM" and (info["rows"], info["columns"]) == (256, 256)
    assert not list((datastore / "images").iterdir())  # nothing fetched yet
    status = client.get("/datastore/", headers=read).json()
    assert status["total"] == 3 and status["dicomweb"] == f"{orthanc.url}/dicom-web"

    answer = client.post(f"/infer/tiny?image={thyroid}", headers=read)
    assert answer.status_code == 200, answer.text
    result, run = answer.json(), study["run"]
    assert result["label"] == run["label"]
    for label, probability in result["probabilities"].items():
        assert probability == pytest.approx(float(run[f"prob_{label}"]), abs=2e-6)
    assert str(datastore) not in answer.text and str(tmp_path) not in answer.text  # paths stay hidden
    cached = datastore / "images" / f"{thyroid}.dcm"
    fetched, original = pydicom.dcmread(cached), pydicom.dcmread(study["thyroid"])
    assert fetched.SOPInstanceUID == original.SOPInstanceUID and (fetched.pixel_array == original.pixel_array).all()
    download = client.get(f"/datastore/image?image={thyroid}", headers=read)
    assert download.status_code == 200 and download.content == cached.read_bytes()

    instances_before = orthanc.session.get(f"{orthanc.url}/instances", timeout=10).json()
    label = tmp_path / "label.json"
    label.write_text(json.dumps({"label": result["label"]}))
    with label.open("rb") as handle:
        saved = client.put(f"/datastore/label?image={thyroid}", files={"label": ("label.json", handle)}, headers=admin)
    assert saved.status_code == 200, saved.text
    label_info = client.get(f"/datastore/label/info?label={thyroid}", headers=read).json()
    assert label_info["class_label"] == result["label"] and label_info["StudyInstanceUID"] == study["study"]
    assert label_info["SeriesInstanceUID"] == thyroid and label_info["SOPInstanceUID"] == info["SOPInstanceUID"]
    assert (datastore / "labels" / "final" / f"{thyroid}.json").is_file()
    assert orthanc.session.get(f"{orthanc.url}/instances", timeout=10).json() == instances_before  # nothing written to the PACS
    refused = client.delete(f"/datastore/image?id={thyroid}", headers=admin)
    assert refused.status_code == 400 and "PACS" in refused.json()["detail"]

    later = tmp_path / "later"
    run_cli("simulate", "--task", "uptake4", "--n", "1", "--seed", "29", "--out", later, "--no-progress")
    stow(f"{orthanc.url}/dicom-web", [later / "case-00000.dcm"])
    new = uid_of(later / "case-00000.dcm", "SeriesInstanceUID")
    late = client.post(f"/infer/tiny?image={new}", headers=read)
    assert late.status_code == 200, late.text  # an unknown id refreshes the listing


def test_an_unreachable_pacs_fails_at_start_up_naming_the_url(tiny_bundle: Path, tmp_path: Path) -> None:
    pytest.importorskip("dicomweb_client", reason="the dicom-network extra is not installed")
    down = f"http://127.0.0.1:{free_port()}/dicom-web"
    failed = run_cli("serve", "--bundle", tiny_bundle, "--datastore", tmp_path / "cache", "--dicomweb-url", down, expect_exit=1)
    assert down in failed.output and "cannot be reached" in failed.output
    bad = run_cli("serve", "--bundle", tiny_bundle, "--dicomweb-url", "pacs:8042", expect_exit=2)
    assert "http(s)://" in bad.output


def test_credentials_are_sent_and_their_absence_is_named(tmp_path: Path) -> None:
    from scintipipe.server.datastore_dicomweb import DicomwebDatastore
    from scintipipe.server.errors import BadGateway

    guarded = Orthanc(
        tmp_path / "orthanc", config={"AuthenticationEnabled": True, "RegisteredUsers": {"reader": "secret"}}, auth=("reader", "secret")
    )
    try:
        url = f"{guarded.url}/dicom-web"
        with pytest.raises(BadGateway, match="needs credentials") as refused:
            DicomwebDatastore(tmp_path / "cache", DicomwebSource(url))
        assert url in str(refused.value)
        with pytest.raises(BadGateway, match="refused"):
            DicomwebDatastore(tmp_path / "cache", DicomwebSource(url, user=("reader", "wrong")))
        opened = DicomwebDatastore(tmp_path / "cache", DicomwebSource(url, user=("reader", "secret")))
        assert opened.image_ids() == []
        with pytest.raises(Exception, match="caches the PACS at"):
            DicomwebDatastore(tmp_path / "cache", DicomwebSource(f"http://127.0.0.1:{free_port()}/dicom-web"))
    finally:
        guarded.stop()
