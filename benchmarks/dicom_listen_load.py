"""Load test of ``scintipipe listen`` (issue 17): N studies from 4 concurrent senders, results back to Orthanc.

Run from the repository root::

    python benchmarks/dicom_listen_load.py                          # 200 studies, uptake4, idle 2 s
    python benchmarks/dicom_listen_load.py --studies 8 --bundle PATH --out-json x.json

Each study is a simulated uptake4 thyroid scan with its full and empty syringe images (three
instances, one StudyInstanceUID). ``--senders`` threads, each a pynetdicom SCU, send the
studies one association per study (round robin), as cameras would, to a ``scintipipe
listen`` subprocess on loopback, which C-STOREs its SR and Secondary Capture to an Orthanc
started here (tests/orthanc_server.py; the Debian packages ``orthanc`` and
``orthanc-dicomweb``).

The listener processes the studies that are ready at the same time in one pipeline pass
and sends the results that are due over one association; the figures say how many passes
and associations there were.

Checks: every study processed exactly once (one run in its journal, with its three
instances), every outbox entry sent and none waiting, and Orthanc holding exactly one SR
and one SC in each study (read back by DICOMweb QIDO-RS) and nothing else: none lost, none
doubled. Latency per study: from the acknowledgement of its last instance (sender side) to
the moment Orthanc acknowledged its results (the outbox entry's ``sent_at``), against the
issue's target of ``--idle-seconds`` + 5 s. Prints a Markdown summary; ``--out-json`` and
``--out-md`` write the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "tests"))  # the Orthanc launcher the tests use

SR_CLASS = "1.2.840.10008.5.1.4.1.1.88.33"
SC_CLASS = "1.2.840.10008.5.1.4.1.1.7"
TARGET_MARGIN_S = 5.0


def simulate_studies(folder: Path, n: int, seed: int) -> list[tuple[str, list[Path]]]:
    """``n`` simulated studies: (StudyInstanceUID, [thyroid, full syringe, empty syringe])."""
    import pydicom

    from scintipipe.testing import run_cli

    run_cli("simulate", "--task", "uptake4", "--n", str(n), "--seed", str(seed), "--syringes", "--out", folder, "--no-progress")
    studies = []
    for index in range(n):
        files = [folder / f"case-{index:05d}.dcm", *sorted((folder / "syringes").glob(f"case-{index:05d}_*.dcm"))]
        if len(files) != 3:
            raise RuntimeError(f"simulated study {index} has {len(files)} files, not 3")
        studies.append((str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID), files))
    if len({uid for uid, _ in studies}) != n:
        raise RuntimeError("simulated studies share a StudyInstanceUID")
    return studies


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_listener(bundle: str, out: Path, port: int, idle: float, destination: str, explain: bool, log: Path) -> subprocess.Popen[bytes]:
    """``scintipipe listen`` as a subprocess; returns once it accepts connections and its bundle has loaded."""
    command = [sys.executable, "-m", "scintipipe", "listen", "--bundle", bundle, "--out", str(out), "--port", str(port)]
    command += ["--idle-seconds", str(idle), "--send-to", destination, "--retry-seconds", "1", "--device", "cpu", "--workers", "0"]
    command += [] if explain else ["--no-explain"]
    handle = log.open("wb")
    process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"scintipipe listen exited: {log.read_text()[-2000:]}")
        if "ready to process" in log.read_text():  # the listener's line once PyTorch and the bundle have loaded
            return process
        time.sleep(0.25)
    process.kill()
    raise RuntimeError("scintipipe listen did not load its bundle within 180 s")


def send_all(port: int, studies: list[tuple[str, list[Path]]], senders: int, interval: float = 0.0) -> dict[str, float]:
    """Send every study from ``senders`` threads (one association per study); epoch time its last instance was acknowledged.

    ``interval``: seconds each sender waits between its studies (0: a burst), the senders
    starting ``interval / senders`` apart so that studies arrive evenly.
    """
    from pynetdicom import AE

    done: dict[str, float] = {}
    errors: list[str] = []
    lock = threading.Lock()

    def sender(index: int) -> None:
        ae = AE(ae_title=f"CAMERA{index}")
        ae.add_requested_context("1.2.840.10008.5.1.4.1.1.20")  # NM Image Storage
        time.sleep(index * interval / senders)
        for number, (uid, files) in enumerate(studies[index::senders]):
            if number:
                time.sleep(interval)
            assoc = ae.associate("127.0.0.1", port, ae_title="SCINTIPIPE")
            if not assoc.is_established:
                with lock:
                    errors.append(f"{uid}: association not established")
                continue
            try:
                statuses = [int(getattr(assoc.send_c_store(path), "Status", -1)) for path in files]
            finally:
                assoc.release()
            with lock:
                if statuses == [0] * len(files):
                    done[uid] = time.time()
                else:
                    errors.append(f"{uid}: statuses {statuses}")

    threads = [threading.Thread(target=sender, args=(index,)) for index in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"{len(errors)} studies not acknowledged: {errors[:5]}")
    return done


def sent_entries(out: Path) -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted((out / "outbox" / "sent").glob("*/entry.json"))]


def wait_until_stored(out: Path, n: int, timeout: float) -> bool:
    """Wait until ``n`` outbox entries have been sent (or the timeout passes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(list((out / "outbox" / "sent").glob("*/entry.json"))) >= n:
            return True
        time.sleep(0.5)
    return False


def check(out: Path, orthanc: Any, studies: list[tuple[str, list[Path]]]) -> dict[str, Any]:
    """None lost, none doubled: journals, outbox and what Orthanc holds."""
    problems: list[str] = []
    seconds, batches = [], []
    for uid, files in studies:
        journal_path = out / "journal" / f"{uid}.json"
        runs = json.loads(journal_path.read_text())["runs"] if journal_path.exists() else []
        if len(runs) != 1 or len(runs[0]["instances"]) != len(files):
            problems.append(f"{uid}: {len(runs)} runs in the journal")
        elif runs[0]["summary"].get("classified") != 1:
            problems.append(f"{uid}: {runs[0]['summary']}")
        else:
            seconds.append(float(runs[0]["summary"]["seconds"]))
            batches.append(int(runs[0]["summary"].get("batch", 1)))
        held = orthanc.sop_classes(uid)
        if held != sorted([SC_CLASS, SR_CLASS]):
            problems.append(f"{uid}: Orthanc holds {held}")
    waiting = [path.parent.name for path in (out / "outbox").glob("*/entry.json")]
    statistics_ = orthanc.session.get(f"{orthanc.url}/statistics", timeout=30).json()
    return {
        "studies_processed_once": len(studies) - sum("runs in the journal" in p for p in problems),
        "studies_with_one_sr_and_one_sc_in_orthanc": len(studies) - sum("Orthanc holds" in p for p in problems),
        "orthanc_instances": int(statistics_["CountInstances"]),
        "outbox_waiting": len(waiting),
        "outbox_sent": len(sent_entries(out)),
        "problems": problems[:20],
        "pipeline_seconds_per_study": seconds,
        "studies_per_pass": batches,
    }


def summarise(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}
    return {
        "median": round(statistics.median(ordered), 2),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
        "max": round(ordered[-1], 2),
        "min": round(ordered[0], 2),
    }


def run_benchmark(
    studies_n: int, senders: int, bundle: str, idle: float, explain: bool, seed: int, timeout: float, work: Path, interval: float = 0.0
) -> dict[str, Any]:
    """Simulate, start Orthanc and the listener, send, wait, check; the figures."""
    from orthanc_server import Orthanc

    studies = simulate_studies(work / "simulated", studies_n, seed)
    orthanc = Orthanc(work / "orthanc")
    out, port = work / "listen", free_port()
    listener = None
    try:
        destination = f"{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}"
        load_at_start = os.getloadavg()[0]
        listener = start_listener(bundle, out, port, idle, destination, explain, work / "listen.log")
        begin = time.time()
        acknowledged = send_all(port, studies, senders, interval)
        sending_s = time.time() - begin
        complete = wait_until_stored(out, studies_n, timeout)
        elapsed = time.time() - begin
        listener.send_signal(signal.SIGTERM)
        listener.wait(60)
        listener = None
        checked = check(out, orthanc, studies)
    finally:
        if listener is not None:
            listener.kill()
            listener.wait()
        orthanc.stop()
    stored_at = {entry["study"]: float(entry["sent_at"]) for entry in sent_entries(out)}
    latencies = [stored_at[uid] - acknowledged[uid] for uid in acknowledged if uid in stored_at]
    target = idle + TARGET_MARGIN_S
    pipeline = checked.pop("pipeline_seconds_per_study")
    batches = checked.pop("studies_per_pass")
    together = [int(entry.get("sent_with", 1)) for entry in sent_entries(out)]
    ok = complete and not checked["problems"] and checked["outbox_waiting"] == 0 and checked["orthanc_instances"] == 2 * studies_n
    return {
        "studies": studies_n,
        "instances_sent": 3 * studies_n,
        "senders": senders,
        "sender_interval_seconds": interval,
        "bundle": bundle,
        "idle_seconds": idle,
        "explain": explain,
        "all_stored_in_time": complete,
        "none_lost_or_doubled": ok,
        **checked,
        "sending_seconds": round(sending_s, 2),
        "instances_per_s_received": round(3 * studies_n / sending_s, 1),
        "first_sent_to_last_stored_seconds": round(elapsed, 2),
        "studies_per_s_end_to_end": round(studies_n / elapsed, 3),
        "latency_target_seconds": target,
        "latency_seconds": summarise(latencies),
        "latency_within_target": sum(value <= target for value in latencies),
        "pipeline_seconds": summarise(pipeline),
        "pipeline_passes": round(sum(1 / size for size in batches)),
        "studies_per_pass": summarise([float(size) for size in batches]),
        "associations": round(sum(1 / size for size in together)),
        "studies_per_association": summarise([float(size) for size in together]),
        "machine": {"cpus": os.cpu_count(), "load_average_at_start": round(load_at_start, 2), "python": platform.python_version()},
    }


def markdown(result: dict[str, Any], command: str) -> str:
    lat, pipe = result["latency_seconds"], result["pipeline_seconds"]
    lines = [
        "# `scintipipe listen` under load (issue 17)",
        "",
        f"Command: `{command}`. {result['machine']['cpus']} CPUs, load average {result['machine']['load_average_at_start']} at start; "
        "figures of one run on a shared machine.",
        "",
        f"- {result['studies']} studies ({result['instances_sent']} instances: thyroid, full and empty syringe) from {result['senders']} concurrent senders; "
        f"bundle `{result['bundle']}`, idle time {result['idle_seconds']} s, explain {'on' if result['explain'] else 'off'}; "
        + (
            f"each sender waits {result['sender_interval_seconds']} s between studies."
            if result["sender_interval_seconds"]
            else "all sent at once (a burst)."
        ),
        f"- None lost or doubled: **{'yes' if result['none_lost_or_doubled'] else 'NO'}**: {result['studies_processed_once']} studies processed once, "
        f"{result['studies_with_one_sr_and_one_sc_in_orthanc']} with exactly one SR and one SC in Orthanc, {result['orthanc_instances']} instances in Orthanc, "
        f"{result['outbox_sent']} outbox entries sent, {result['outbox_waiting']} waiting.",
        f"- Received {result['instances_per_s_received']} instances/s while sending ({result['sending_seconds']} s); first instance sent to last result "
        f"stored {result['first_sent_to_last_stored_seconds']} s ({result['studies_per_s_end_to_end']} studies/s).",
        "",
        "| per study | median | p95 | max |",
        "|---|---:|---:|---:|",
        f"| last instance acknowledged to results stored in Orthanc (s) | {lat.get('median')} | {lat.get('p95')} | {lat.get('max')} |",
        f"| pipeline: start of its pass to its results written (s) | {pipe.get('median')} | {pipe.get('p95')} | {pipe.get('max')} |",
        "",
        f"{result['pipeline_passes']} pipeline passes (studies per pass, per study: median {result['studies_per_pass'].get('median')}, "
        f"max {result['studies_per_pass'].get('max')}); results sent over {result['associations']} associations "
        f"(studies per association, per study: median {result['studies_per_association'].get('median')}, max {result['studies_per_association'].get('max')}).",
        "",
        f"Latency target (idle time + {TARGET_MARGIN_S:g} s = {result['latency_target_seconds']} s): met by "
        f"{result['latency_within_target']} of {result['studies']} studies.",
    ]
    if result["problems"]:
        lines += ["", "Problems:", *(f"- {problem}" for problem in result["problems"])]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=200)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--bundle", default="uptake4", help="Bundle name or folder for the listener.")
    parser.add_argument("--idle-seconds", type=float, default=2.0)
    parser.add_argument("--explain", action="store_true", help="Run the explain stage (the listener's default; off here by default).")
    parser.add_argument("--interval", type=float, default=0.0, help="Seconds each sender waits between its studies (default 0: a burst).")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--timeout", type=float, default=1800.0, help="Seconds to wait for all results after the last study was sent.")
    parser.add_argument("--out-json", type=Path, default=None)
    parser.add_argument("--out-md", type=Path, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="Work in this folder and keep it (default: a temporary one).")
    args = parser.parse_args(argv)

    command = "python benchmarks/dicom_listen_load.py " + " ".join(argv if argv is not None else sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="listen-load-") as tmp_name:
        work = args.keep or Path(tmp_name)
        work.mkdir(parents=True, exist_ok=True)
        result = run_benchmark(args.studies, args.senders, args.bundle, args.idle_seconds, args.explain, args.seed, args.timeout, work, args.interval)
    result["command"] = command.strip()
    text = markdown(result, result["command"])
    print(text)
    for path, content in ((args.out_json, json.dumps(result, indent=2) + "\n"), (args.out_md, text)):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
    return 0 if result["none_lost_or_doubled"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
