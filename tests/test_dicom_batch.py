"""`scintipipe listen` processes the studies ready together in one pipeline pass, and sends their results together.

The studies are received by a listener with a long idle time, which is stopped; the next
listener finds them all waiting at its start, so that they are ready at the same moment.
The fixtures (simulated studies, the shape-only ``tiny_bundle`` processor, Orthanc) are
those of ``test_dicom_network``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orthanc_server import SC_CLASS, SR_CLASS, Orthanc
from scintipipe.dicomnet.outbox import Outbox
from scintipipe.testing import run_cli
from test_dicom_network import make_listener, orthanc, processor, send_study, studies  # noqa: F401  (fixtures)

pytest.importorskip("pynetdicom", reason="the dicom-network extra is not installed")


class Crash(BaseException):
    """Stands for a kill in the middle of a batch: nothing after it runs."""


def counting(process: Any, calls: list[int], crash_after: int | None = None) -> Any:
    """``process`` that notes the number of studies of each pass, and "crashes" once ``crash_after`` studies are done."""

    def wrapped(batch: list[tuple[list[Path], Path]], on_done: Any) -> Any:
        calls.append(len(batch))
        done: list[int] = []

        def note(index: int, summary: dict[str, Any]) -> None:
            on_done(index, summary)
            done.append(index)
            if crash_after is not None and len(done) == crash_after:
                raise Crash

        return process(batch, note)

    return wrapped


def receive(out: Path, process: Any, chosen: list[tuple[str, list[Path]]]) -> None:
    """Receive ``chosen`` by C-STORE with a listener that processes nothing yet (idle time 600 s), then stop it."""
    listener = make_listener(out, process, idle_seconds=600)
    try:
        for _, files in chosen:
            assert send_study(listener.port, files) == [0, 0, 0]
    finally:
        listener.stop()
    assert sorted(path.name for path in (out / "incoming").iterdir()) == sorted(study for study, _ in chosen)


def runs_of(out: Path, study: str) -> list[dict[str, Any]]:
    return json.loads((out / "journal" / f"{study}.json").read_text())["runs"]


def test_studies_ready_together_share_one_pass_and_each_gets_its_sr_and_sc_once(
    tmp_path: Path,
    orthanc: Orthanc,  # noqa: F811
    processor: Any,  # noqa: F811
    studies: list[tuple[str, list[Path]]],  # noqa: F811
) -> None:
    out, chosen = tmp_path / "out", studies[:3]
    receive(out, processor, chosen)
    calls: list[int] = []
    destination = f"{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}"
    listener = make_listener(out, counting(processor, calls), destinations=[destination])
    try:
        assert listener.wait_idle(120) and listener.processed == 3
    finally:
        listener.stop()
    assert calls == [3]  # one pipeline pass for the three studies
    for study, _ in chosen:
        runs = runs_of(out, study)
        assert len(runs) == 1 and len(runs[0]["instances"]) == 3 and runs[0]["summary"]["batch"] == 3
        results = out / "results" / study
        assert [path.parent.parent for path in results.rglob("report_sr.dcm")] == [results]  # its own SR, in its own folder
        assert len(list(results.rglob("overlay_sc.dcm"))) == 1
        report = json.loads(next(results.rglob("report.json")).read_text())
        assert report["quantities"]["uptake_percent"] > 0  # its own syringe images gave the uptake
        assert orthanc.sop_classes(study) == sorted([SC_CLASS, SR_CLASS])  # one SR and one SC each, in the right study
    sent = [json.loads(path.read_text()) for path in (out / "outbox" / "sent").glob("*/entry.json")]
    assert sorted(entry["study"] for entry in sent) == sorted(study for study, _ in chosen) and all(entry["attempts"] == 1 for entry in sent)

    box = Outbox(out / "outbox")  # the same results queued again (as if a run 2): the waiting entries go over one association
    for study, _ in chosen:
        box.enqueue(study, 2, destination, sorted((out / "results" / study).rglob("*.dcm")))
    assert "outbox empty" in run_cli("outbox", out, "--retry").output
    again = [entry.data for entry in box.sent() if entry.data["run"] == 2]
    assert len(again) == 3 and all(entry["sent_with"] == 3 for entry in again)
    for study, _ in chosen:
        assert orthanc.sop_classes(study) == sorted([SC_CLASS, SR_CLASS])  # the same instances: stored once


def test_a_crash_in_the_middle_of_a_batch_reprocesses_only_the_unfinished_studies(
    tmp_path: Path,
    processor: Any,  # noqa: F811
    studies: list[tuple[str, list[Path]]],  # noqa: F811
) -> None:
    out, chosen = tmp_path / "out", studies[:3]
    receive(out, processor, chosen)
    from scintipipe.dicomnet.listener import Listener

    calls: list[int] = []
    crashing = Listener(out, counting(processor, calls, crash_after=1), idle_seconds=0)
    waiting = crashing.store.waiting()
    with pytest.raises(Crash):
        crashing.process_studies(waiting)
    first = waiting[0]  # the pass follows the order given: the first study was finished, the others were not
    assert calls == [3] and len(runs_of(out, first)) == 1
    assert sorted(crashing.store.waiting()) == sorted(waiting[1:])  # still claimed: processed at the next start
    assert not (out / "results" / waiting[1]).exists()

    calls.clear()
    listener = make_listener(out, counting(processor, calls))  # the restart
    try:
        assert listener.wait_idle(120) and listener.processed == 2
    finally:
        listener.stop()
    assert calls == [2]  # the two unfinished studies, in one pass; the finished one not again
    for study in waiting:
        runs = runs_of(out, study)
        assert len(runs) == 1 and len(runs[0]["instances"]) == 3
    assert sorted(path.name for path in (out / "results").iterdir()) == sorted(waiting)  # no .partial left, no run2


def test_stop_ends_a_pass_after_the_study_being_reported(
    tmp_path: Path,
    processor: Any,  # noqa: F811
    studies: list[tuple[str, list[Path]]],  # noqa: F811
) -> None:
    from scintipipe.dicomnet.listener import Listener

    out = tmp_path / "out"
    receive(out, processor, studies[:3])

    def stopping(batch: list[tuple[list[Path], Path]], on_done: Any) -> Any:
        def note(index: int, summary: dict[str, Any]) -> None:
            listener.stop()  # SIGTERM while the first study is reported
            on_done(index, summary)

        return processor(batch, note)

    listener = Listener(out, stopping, idle_seconds=0)
    waiting = listener.store.waiting()
    assert list(listener.process_studies(waiting)) == waiting[:1]
    assert sorted(listener.store.waiting()) == sorted(waiting[1:]) and not listener._failed  # left for the next start, not failed
