"""benchmarks/dicom_listen_load.py at CI scale: 8 studies from 4 senders through `scintipipe listen` to Orthanc."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from orthanc_server import orthanc_binary

REPO = Path(__file__).resolve().parents[1]


def load_benchmark() -> Any:
    spec = importlib.util.spec_from_file_location("dicom_listen_load", REPO / "benchmarks" / "dicom_listen_load.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["dicom_listen_load"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_eight_studies_from_four_senders_none_lost_or_doubled(tmp_path: Path, tiny_bundle: Path) -> None:
    orthanc_binary()  # skips, with the reason, without Orthanc or the dicom-network extra
    bench = load_benchmark()
    out_json, out_md = tmp_path / "load.json", tmp_path / "load.md"
    argv = ["--studies", "8", "--bundle", str(tiny_bundle), "--idle-seconds", "0.5", "--timeout", "300"]
    assert bench.main([*argv, "--keep", str(tmp_path / "work"), "--out-json", str(out_json), "--out-md", str(out_md)]) == 0
    result = json.loads(out_json.read_text())
    assert result["none_lost_or_doubled"] and result["all_stored_in_time"] and result["problems"] == []
    assert result["studies_processed_once"] == result["studies_with_one_sr_and_one_sc_in_orthanc"] == 8
    assert result["orthanc_instances"] == 16 and result["outbox_sent"] == 8 and result["outbox_waiting"] == 0
    latency = result["latency_seconds"]
    assert 0.5 <= latency["min"] <= latency["median"] <= latency["max"]  # never before the idle time has passed
    assert result["pipeline_seconds"]["max"] < latency["max"]
    assert "None lost or doubled: **yes**" in out_md.read_text()
    journals = sorted((tmp_path / "work" / "listen" / "journal").glob("*.json"))
    assert len(journals) == 8 and all(len(json.loads(path.read_text())["runs"]) == 1 for path in journals)
