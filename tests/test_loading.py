"""Loading through the plugins' load_scans hooks outside `scintipipe run` (MONAI transforms, training data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scintipipe import loading
from scintipipe.errors import NotAnImage, ScanError
from scintipipe.plugins import make_plugin_manager

RAW_PLUGIN = """
import numpy as np
from scintipipe.api import hookimpl, make_scan

@hookimpl
def load_scans(path):
    if path.suffix != ".raw":
        return None
    return [make_scan(np.fromfile(path, "<u2").reshape(32, 32).astype("float32"), str(path))]
"""


@pytest.fixture
def raw_file(tmp_path: Path) -> Path:
    path = tmp_path / "camera.raw"
    (np.arange(32 * 32, dtype="<u2") % 97).tofile(path)
    return path


@pytest.fixture
def with_raw_loader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The process-wide plugins plus a one-file plugin that reads ``.raw`` files."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "raw_loader.py").write_text(RAW_PLUGIN)
    pm = make_plugin_manager(plugins_dir=plugins)
    monkeypatch.setattr(loading, "_shared_plugin_manager", lambda: pm)
    return pm


def test_a_plugin_loader_serves_the_monai_transform(raw_file: Path, with_raw_loader) -> None:
    from scintipipe.transforms.io import LoadScan, list_scans

    image = LoadScan()(str(raw_file))
    assert tuple(image.shape[-2:]) == (32, 32) and float(image.max()) == 96.0
    assert list_scans(str(raw_file.parent)) == [str(raw_file)]


def test_without_the_plugin_the_file_is_not_recognised(raw_file: Path) -> None:
    with pytest.raises(ScanError, match="not a recognised image format") as caught:
        loading.load_views(make_plugin_manager(), raw_file)
    assert caught.value.source == str(raw_file)


def test_side_cars_and_empty_files_say_what_they_are(tmp_path: Path) -> None:
    notes = tmp_path / "labels.csv"
    notes.write_text("file,label\n")
    with pytest.raises(NotAnImage, match="a .csv file, not an image"):
        loading.load_views(make_plugin_manager(), notes)
    empty = tmp_path / "nothing"
    empty.write_bytes(b"")
    with pytest.raises(ScanError, match=r"empty file \(0 bytes\)"):
        loading.load_views(make_plugin_manager(), empty)
