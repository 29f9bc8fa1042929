"""Orthanc on loopback for the DICOM network tests: started with a configuration the test writes, stopped at the end.

Orthanc and its DICOMweb plugin are the Debian packages ``orthanc`` and ``orthanc-dicomweb``
(installed by .ci/run); :func:`orthanc_binary` skips the test, with the reason, without them.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

ORTHANC_BINARIES = ("/usr/sbin/Orthanc", "/usr/bin/Orthanc")
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
SR_CLASS = "1.2.840.10008.5.1.4.1.1.88.33"
SC_CLASS = "1.2.840.10008.5.1.4.1.1.7"
NM_CLASS = "1.2.840.10008.5.1.4.1.1.20"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Any, timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def orthanc_binary() -> str:
    """Orthanc's executable; skip the test, with the reason, when Orthanc, its DICOMweb plugin or pynetdicom is missing."""
    pytest.importorskip("pynetdicom", reason="the dicom-network extra is not installed")
    pytest.importorskip("dicomweb_client", reason="the dicom-network extra is not installed")
    found = shutil.which("Orthanc") or next((path for path in ORTHANC_BINARIES if os.access(path, os.X_OK)), None)
    if found is None or not DICOMWEB_PLUGIN.exists():
        pytest.skip("Orthanc or its DICOMweb plugin is not installed (apt-get install orthanc orthanc-dicomweb; .ci/run does)")
    return found


class Orthanc:
    """An Orthanc on loopback with the DICOMweb plugin, for one test module or one test."""

    def __init__(
        self,
        folder: Path,
        aet: str = "ORTHANC",
        dicom_port: int | None = None,
        config: dict[str, Any] | None = None,
        auth: tuple[str, str] | None = None,
    ):
        import requests

        binary = orthanc_binary()
        self.aet = aet
        self.http_port, self.dicom_port = free_port(), dicom_port or free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        folder.mkdir(parents=True, exist_ok=True)
        settings = {
            "Name": f"scintipipe-test-{aet}",
            "StorageDirectory": str(folder / "storage"),
            "IndexDirectory": str(folder / "storage"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": aet,
            "RemoteAccessAllowed": False,  # HTTP on loopback only
            "AuthenticationEnabled": False,
            "Plugins": [str(DICOMWEB_PLUGIN)],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
            "DicomModalities": {},
            "SaveJobs": False,
            **(config or {}),
        }
        (folder / "orthanc.json").write_text(json.dumps(settings, indent=2))
        self.log = (folder / "orthanc.log").open("wb")
        self.process = subprocess.Popen([binary, str(folder / "orthanc.json")], stdout=self.log, stderr=subprocess.STDOUT)
        self.session = requests.Session()
        self.session.auth = auth

        def up() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"Orthanc exited: {(folder / 'orthanc.log').read_text()[-2000:]}")
            try:
                return self.session.get(f"{self.url}/system", timeout=1).ok
            except requests.ConnectionError:
                return False

        wait_for(up, 30, "Orthanc to start")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()

    def add_modality(self, name: str, aet: str, port: int) -> None:
        self.session.put(f"{self.url}/modalities/{name}", json={"AET": aet, "Host": "127.0.0.1", "Port": port}, timeout=10).raise_for_status()

    def sop_classes(self, study_uid: str) -> list[str]:
        """SOP Class UIDs of the study's instances, through Orthanc's DICOMweb (QIDO-RS)."""
        response = self.session.get(f"{self.url}/dicom-web/studies/{study_uid}/instances", timeout=10)
        if response.status_code == 404 or not response.content:
            return []
        response.raise_for_status()
        return sorted(item["00080016"]["Value"][0] for item in response.json())
