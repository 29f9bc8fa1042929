"""`scintipipe listen` and `scintipipe outbox` against a real PACS: Orthanc with its DICOMweb plugin.

Orthanc (Debian packages ``orthanc`` and ``orthanc-dicomweb``, installed by .ci/run) is
started on loopback with a configuration written here: free HTTP and DICOM ports, its own
storage folder. The tests that need it skip, with the reason, when it is not installed.
The listener runs in this process (a thread) with the shape-only ``tiny_bundle``, except in
the kill test, where it is a ``scintipipe listen`` subprocess killed with SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orthanc_server import NM_CLASS, SC_CLASS, SR_CLASS, Orthanc, free_port, orthanc_binary, wait_for
from scintipipe.dicomnet.outbox import Backoff, Outbox
from scintipipe.dicomnet.sender import CStoreDestination, StowDestination, parse_destination
from scintipipe.dicomnet.store import StudyStore, valid_uid
from scintipipe.testing import run_cli

IDLE = 0.3


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    server = Orthanc(tmp_path_factory.mktemp("orthanc"))
    yield server
    server.stop()


# ---- a simulated data set and the listener -----------------------------------------------


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, list[Path]]]:
    """Four simulated studies: each a thyroid scan and its full and empty syringe images."""
    import pydicom

    out = tmp_path_factory.mktemp("simulated")
    run_cli("simulate", "--task", "uptake4", "--n", "4", "--syringes", "--out", out, "--no-progress")
    result = []
    for index in range(4):
        files = [out / f"case-{index:05d}.dcm", *sorted((out / "syringes").glob(f"case-{index:05d}_*.dcm"))]
        assert len(files) == 3
        result.append((str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID), files))
    return result


@pytest.fixture(scope="module")
def processor(tiny_bundle: Path) -> Any:
    from scintipipe.bundle import resolve_bundle
    from scintipipe.dicomnet.processing import pipeline_processor
    from scintipipe.pipeline import RunOptions
    from scintipipe.plugins import make_plugin_manager, tasks_and_bundles

    pm = make_plugin_manager()
    bundle = resolve_bundle(str(tiny_bundle), tasks_and_bundles(pm).bundles)
    return pipeline_processor(pm, bundle, RunOptions(device="cpu", explain=False, progress=False, workers=0))


def make_listener(out: Path, processor: Any, **kwargs: Any) -> Any:
    from scintipipe.dicomnet.listener import Listener

    kwargs.setdefault("idle_seconds", IDLE)
    kwargs.setdefault("backoff", Backoff(0.2, 1.0))
    listener = Listener(out, processor, port=0, **kwargs)
    listener.start()
    return listener


def send_study(port: int, files: list[Path], calling_ae: str = "CAMERA") -> list[int]:
    """C-STORE ``files`` to the listener from a pynetdicom SCU; their statuses."""
    from pynetdicom import AE
    from pynetdicom.sop_class import NuclearMedicineImageStorage

    ae = AE(ae_title=calling_ae)
    ae.add_requested_context(NuclearMedicineImageStorage)
    assoc = ae.associate("127.0.0.1", port, ae_title="SCINTIPIPE")
    assert assoc.is_established
    try:
        return [int(assoc.send_c_store(path).Status) for path in files]
    finally:
        assoc.release()


# ---- without Orthanc: the folder and the outbox --------------------------------------------


def test_destinations_are_parsed() -> None:
    node = parse_destination("PACS@[::1]:4242", calling_ae="ME")
    assert isinstance(node, CStoreDestination) and (node.called_ae, node.host, node.port, node.calling_ae) == ("PACS", "::1", 4242, "ME")
    assert isinstance(parse_destination("https://pacs/dicom-web/"), StowDestination)
    with pytest.raises(ValueError, match="neither"):
        parse_destination("pacs:104")
    assert valid_uid("1.2.3") and not valid_uid("1.2/../3") and not valid_uid("1" * 65)


def test_store_claims_runs_and_archives_each_instance_once(tmp_path: Path) -> None:
    store = StudyStore(tmp_path)
    store.receive("1.2.3", "1.2.3.1", b"one")
    store.receive("1.2.3", "1.2.3.2", b"two")
    run = store.begin("1.2.3")
    assert run is not None and run.run == 1 and sorted(run.new_instances) == ["1.2.3.1", "1.2.3.2"]
    store.receive("1.2.3", "1.2.3.3", b"late")  # arrives while run 1 is processed: waits for run 2
    run.partial_dir.mkdir()
    store.publish(run)
    store.finish(run, [])
    assert store.waiting() == ["1.2.3"] and store.processed_instances("1.2.3") == {"1.2.3.1", "1.2.3.2"}
    second = store.begin("1.2.3")
    assert second is not None and second.run == 2 and second.new_instances == ["1.2.3.3"]
    assert len(second.inputs) == 3 and second.results_dir.name == "1.2.3.run2"
    second.partial_dir.mkdir()
    store.publish(second)
    store.finish(second, [])
    store.receive("1.2.3", "1.2.3.1", b"one")  # the same instance sent again: no new run
    assert store.begin("1.2.3") is None
    assert len(store.journal("1.2.3")["runs"]) == 2 and store.waiting() == []


def test_outbox_backs_off_keeps_failures_and_never_queues_twice(tmp_path: Path) -> None:
    result = tmp_path / "report_sr.dcm"
    result.write_bytes(b"sr")
    box = Outbox(tmp_path / "outbox", Backoff(10, 60))
    entry_id = box.enqueue("1.2.3", 1, "PACS@127.0.0.1:1", [result])
    assert box.enqueue("1.2.3", 1, "PACS@127.0.0.1:1", [result]) == entry_id and len(box.pending()) == 1

    def down(entry: Any) -> None:
        raise ConnectionRefusedError("nobody there")

    entry = box.due()[0]
    assert box.attempt(entry, down) is False
    assert box.attempt(entry, down) is False
    waiting = box.pending()[0].data
    assert waiting["attempts"] == 2 and "nobody there" in waiting["last_error"]
    assert 19 < waiting["next_attempt"] - time.time() <= 20 and box.due() == []
    assert box.attempt(box.pending()[0], lambda entry: None) is True
    assert box.pending() == [] and [e.id for e in box.sent()] == [entry_id]
    assert box.enqueue("1.2.3", 1, "PACS@127.0.0.1:1", [result]) == entry_id and box.pending() == []  # sent: not queued again


def test_listen_and_outbox_help_stay_light() -> None:
    probe = (
        "import json, sys\nfrom scintipipe.cli import cli\n"
        "for args in (['listen', '--help'], ['outbox', '--help']):\n"
        "    try:\n        cli(args, prog_name='scintipipe', standalone_mode=False)\n    except BaseException:\n        pass\n"
        "print(json.dumps(sorted(m for m in ('torch', 'monai', 'pynetdicom', 'dicomweb_client', 'highdicom') if m in sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert "--ae-title" in done.stdout and "--retry" in done.stdout and "--segmenter" in done.stdout  # and the plugins' options
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_run_needs_inputs_or_a_study_to_fetch(tiny_bundle: Path) -> None:
    assert "INPUTS" in run_cli("run", "--bundle", tiny_bundle, expect_exit=2).output
    assert "both or neither" in run_cli("run", "--bundle", tiny_bundle, "--study", "1.2.3", expect_exit=2).output
    assert "both or neither" in run_cli("run", "--bundle", tiny_bundle, "--from-pacs", "http://127.0.0.1:1/dicom-web", expect_exit=2).output


# ---- against Orthanc -----------------------------------------------------------------------


def test_echo_from_orthanc_and_refusals(tmp_path: Path, orthanc: Orthanc, processor: Any, caplog: pytest.LogCaptureFixture) -> None:
    from pynetdicom import AE
    from pynetdicom.sop_class import ComprehensiveSRStorage, NuclearMedicineImageStorage, Verification

    caplog.set_level("INFO", logger="scintipipe.dicomnet")
    listener = make_listener(tmp_path / "out", processor, allowed_aes=["ORTHANC", "CAMERA"])
    try:
        orthanc.add_modality("scintipipe", "SCINTIPIPE", listener.port)
        echo = orthanc.session.post(f"{orthanc.url}/modalities/scintipipe/echo", json={}, timeout=30)
        assert echo.ok, echo.text  # (a) C-ECHO from a real PACS
        ae = AE(ae_title="INTRUDER")
        ae.add_requested_context(Verification)
        refused = ae.associate("127.0.0.1", listener.port, ae_title="SCINTIPIPE")
        assert refused.is_rejected  # (c) a calling AE title not in --allow-ae
        camera = AE(ae_title="CAMERA")
        for sop_class in (Verification, NuclearMedicineImageStorage, ComprehensiveSRStorage):
            camera.add_requested_context(sop_class)
        assoc = camera.associate("127.0.0.1", listener.port, ae_title="SCINTIPIPE")
        assert assoc.is_established and int(assoc.send_c_echo().Status) == 0
        accepted = {str(context.abstract_syntax) for context in assoc.accepted_contexts}
        assoc.release()
        assert NM_CLASS in accepted and SR_CLASS not in accepted  # a non-image SOP class is not accepted
    finally:
        listener.stop()
    assert "INTRUDER" in caplog.text and "rejected" in caplog.text
    assert "association from CAMERA" in caplog.text


def test_study_by_cstore_results_back_by_cstore(tmp_path: Path, orthanc: Orthanc, processor: Any, studies: list[tuple[str, list[Path]]]) -> None:
    study, files = studies[0]
    out = tmp_path / "out"
    listener = make_listener(out, processor, destinations=[f"{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}"])
    try:
        assert send_study(listener.port, files) == [0, 0, 0]
        assert listener.wait_idle(60)
    finally:
        listener.stop()
    assert orthanc.sop_classes(study) == sorted([SC_CLASS, SR_CLASS])  # in the study, read back through DICOMweb
    runs = json.loads((out / "journal" / f"{study}.json").read_text())["runs"]
    assert len(runs) == 1 and len(runs[0]["instances"]) == 3
    report = json.loads(next((out / "results" / study).glob("*/report.json")).read_text())
    assert report["quantities"]["uptake_percent"] > 0  # the syringe images of the study gave the uptake


def test_orthanc_routes_a_study_and_results_return_by_stow(
    tmp_path: Path, orthanc: Orthanc, processor: Any, studies: list[tuple[str, list[Path]]]
) -> None:
    study, files = studies[1]
    for path in files:
        orthanc.session.post(f"{orthanc.url}/instances", data=path.read_bytes(), timeout=30).raise_for_status()
    listener = make_listener(tmp_path / "out", processor, destinations=[f"{orthanc.url}/dicom-web"])
    try:
        orthanc.add_modality("scintipipe", "SCINTIPIPE", listener.port)
        found = orthanc.session.post(f"{orthanc.url}/tools/find", json={"Level": "Study", "Query": {"StudyInstanceUID": study}}, timeout=10).json()
        routed = orthanc.session.post(f"{orthanc.url}/modalities/scintipipe/store", json={"Resources": found, "Synchronous": True}, timeout=60)
        assert routed.ok, routed.text
        assert listener.wait_idle(60)
    finally:
        listener.stop()
    assert orthanc.sop_classes(study) == sorted([NM_CLASS] * 3 + [SC_CLASS, SR_CLASS])


def test_kill_after_acknowledge_then_restart_processes_once(
    tmp_path: Path, orthanc: Orthanc, processor: Any, studies: list[tuple[str, list[Path]]], tiny_bundle: Path
) -> None:
    study, files = studies[2]
    out, port = tmp_path / "out", free_port()
    destination = f"{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}"
    command = [sys.executable, "-m", "scintipipe", "listen", "--bundle", str(tiny_bundle), "--out", str(out), "--port", str(port)]
    command += ["--idle-seconds", "600", "--no-explain", "--workers", "0", "--device", "cpu", "--send-to", destination]
    log = (tmp_path / "listen.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:

        def accepting() -> bool:
            assert process.poll() is None, (tmp_path / "listen.log").read_text()
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", port)) == 0

        wait_for(accepting, 90, "scintipipe listen to accept connections", interval=0.25)
        assert send_study(port, files) == [0, 0, 0]  # acknowledged: on disk
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        log.close()
    assert len(list((out / "incoming" / study).glob("*.dcm"))) == 3 and not (out / "journal" / f"{study}.json").exists()

    listener = make_listener(out, processor, destinations=[destination])  # the restart picks the study up
    try:
        assert listener.wait_idle(60) and listener.processed == 1
    finally:
        listener.stop()
    again = make_listener(out, processor, destinations=[destination])  # and a second restart does nothing
    try:
        assert send_study(again.port, files[:1]) == [0]  # an instance sent again starts no run
        assert again.wait_idle(30) and again.processed == 0
    finally:
        again.stop()
    runs = json.loads((out / "journal" / f"{study}.json").read_text())["runs"]
    assert len(runs) == 1 and len(runs[0]["instances"]) == 3 and len(list((out / "results").iterdir())) == 1
    assert orthanc.sop_classes(study) == sorted([SC_CLASS, SR_CLASS])  # one SR and one SC: nothing doubled


def test_results_wait_in_the_outbox_until_the_destination_is_up(tmp_path: Path, processor: Any, studies: list[tuple[str, list[Path]]]) -> None:
    orthanc_binary()  # skip before any work when the destination cannot be brought up
    study, files = studies[3]
    out, dicom_port = tmp_path / "out", free_port()
    listener = make_listener(out, processor, destinations=[f"LATE@127.0.0.1:{dicom_port}"])
    try:
        assert send_study(listener.port, files) == [0, 0, 0]
        box = Outbox(out / "outbox")
        wait_for(lambda: box.pending() and box.pending()[0].data["attempts"] >= 2, 60, "two failed attempts (back-off)")
    finally:
        listener.stop()
    listed = run_cli("outbox", out).output
    assert study in listed and f"LATE@127.0.0.1:{dicom_port}" in listed and "attempts" in listed
    assert run_cli("outbox", out, "--retry", expect_exit=1).output.count("failed") == 1  # still down
    late = Orthanc(tmp_path / "orthanc", aet="LATE", dicom_port=dicom_port)  # the destination comes up
    try:
        retried = run_cli("outbox", out, "--retry").output
        assert "sent" in retried and "outbox empty" in retried
        assert late.sop_classes(study) == sorted([SC_CLASS, SR_CLASS])
    finally:
        late.stop()
    sent = json.loads(run_cli("outbox", out, "--sent", "--json").output)["entries"]
    assert [row["state"] for row in sent] == ["sent"] and sent[0]["study"] == study


def test_run_from_pacs_fetches_a_study_by_wado_rs(tmp_path: Path, orthanc: Orthanc, tiny_bundle: Path) -> None:
    import csv

    import pydicom

    simulated = tmp_path / "simulated"
    run_cli("simulate", "--task", "uptake4", "--n", "2", "--seed", "17", "--syringes", "--out", simulated, "--no-progress")  # not `studies`
    files = sorted(simulated.rglob("*.dcm"))
    for path in files:
        orthanc.session.post(f"{orthanc.url}/instances", data=path.read_bytes(), timeout=30).raise_for_status()
    headers = [pydicom.dcmread(path, stop_before_pixels=True) for path in files]
    study = str(pydicom.dcmread(simulated / "case-00000.dcm", stop_before_pixels=True).StudyInstanceUID)
    instances = {str(header.SOPInstanceUID) for header in headers if header.StudyInstanceUID == study}
    out, url = tmp_path / "out", f"{orthanc.url}/dicom-web"
    base = ["run", "--bundle", tiny_bundle, "--out", out, "--no-explain", "--no-progress", "--workers", "0", "--device", "cpu"]
    done = run_cli(*base, "--from-pacs", url, "--study", study)
    fetched = out / f"incoming-{study}"
    assert {path.stem for path in fetched.glob("*.dcm")} == instances and len(instances) == 3  # the thyroid view and its two syringes
    with (out / "predictions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [Path(row["source"].split("#")[0]).parent for row in rows] == [fetched]  # the study's one thyroid view; the syringes give its uptake
    assert study in done.output and json.loads(next(out.rglob("report.json")).read_text())["quantities"]["uptake_percent"] > 0
    results = [*out.rglob("report_sr.dcm"), *out.rglob("overlay_sc.dcm")]
    assert len(results) == 2
    for result in results:  # our results sent back to the study
        orthanc.session.post(f"{orthanc.url}/instances", data=result.read_bytes(), timeout=30).raise_for_status()
    again = tmp_path / "again"
    run_cli(*base[:3], "--out", again, *base[5:], "--from-pacs", url, "--study", study)  # a re-run leaves them out
    assert {path.stem for path in (again / f"incoming-{study}").glob("*.dcm")} == instances

    unknown = run_cli(*base, "--from-pacs", url, "--study", "1.2.3.4.5.6.7", expect_exit=2).output
    assert "1.2.3.4.5.6.7" in unknown and "no such study" in unknown
    down = f"http://127.0.0.1:{free_port()}/dicom-web"
    assert down in run_cli(*base, "--from-pacs", down, "--study", study, expect_exit=2).output


def test_listen_passes_plugin_options_to_the_pipeline(tmp_path: Path, studies: list[tuple[str, list[Path]]], tiny_bundle: Path) -> None:
    pytest.importorskip("pynetdicom", reason="the dicom-network extra is not installed")
    base = ["listen", "--bundle", tiny_bundle, "--out", tmp_path / "refused"]
    assert "--segmenter" in run_cli(*base, "--segmenter", "nonsense", expect_exit=2).output  # declared by a plugin, checked as for run
    study, files = studies[0]
    out, port = tmp_path / "out", free_port()
    command = [sys.executable, "-m", "scintipipe", "listen", "--bundle", str(tiny_bundle), "--out", str(out), "--port", str(port)]
    command += ["--idle-seconds", "0.3", "--no-explain", "--workers", "0", "--device", "cpu", "--no-dicom"]  # --no-dicom: a plugin's option
    log = (tmp_path / "listen.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:

        def accepting() -> bool:
            assert process.poll() is None, (tmp_path / "listen.log").read_text()
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", port)) == 0

        wait_for(accepting, 90, "scintipipe listen to accept connections", interval=0.25)
        assert send_study(port, files) == [0, 0, 0]
        wait_for(lambda: (out / "journal" / f"{study}.json").exists(), 120, "the study to be processed", interval=0.25)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        log.close()
    results = out / "results" / study
    assert list(results.rglob("report.json")) and not list(results.rglob("*.dcm"))  # no SR, no SC: --no-dicom reached the pipeline
    assert json.loads((out / "journal" / f"{study}.json").read_text())["runs"][0]["outbox"] == []
