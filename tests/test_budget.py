"""The per-input time budget and the progress line for slow inputs (issue 16)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from scintipipe import hookimpl
from scintipipe.budget import InputClock
from scintipipe.errors import ScanError
from scintipipe.runner import Failure
from test_pipeline_process import make_pipeline, scans, source_of


class SlowOn:
    """Makes the gate stage of one file slow."""

    def __init__(self, name: str, seconds: float) -> None:
        self.name, self.seconds = name, seconds

    @hookimpl
    def gate_scan(self, scan: dict[str, Any]) -> None:
        if Path(scan["source"]).name == self.name:
            time.sleep(self.seconds)


@pytest.mark.parametrize("workers", [0, 2])
def test_an_input_over_its_budget_fails_and_the_others_go_on(tiny_bundle: Path, docs_plugin_dir: Path, tmp_path: Path, workers: int) -> None:
    files = scans(tmp_path / "scans", 4)
    pipeline, pm = make_pipeline(docs_plugin_dir, tiny_bundle, workers=workers, time_budget_s=0.5)
    pm.register(SlowOn(files[1].name, 0.8))
    items = list(pipeline.process(files))
    assert [source_of(item) for item in items] == [str(f) for f in files]
    failed = [item for item in items if isinstance(item, Failure)]
    assert [f.source for f in failed] == [str(files[1])]
    assert "over the per-input time budget of 0 s" not in failed[0].reason
    assert "over the per-input time budget" in failed[0].reason and "gate stage" in failed[0].reason
    assert failed[0].stage == "gate"


def test_no_budget_means_no_failure(tiny_bundle: Path, docs_plugin_dir: Path, tmp_path: Path) -> None:
    files = scans(tmp_path / "scans", 2)
    pipeline, pm = make_pipeline(docs_plugin_dir, tiny_bundle, workers=0, time_budget_s=0)
    pm.register(SlowOn(files[0].name, 0.3))
    assert not any(isinstance(item, Failure) for item in pipeline.process(files))


def test_a_slow_input_gets_progress_lines_until_it_finishes() -> None:
    lines: list[str] = []
    with InputClock(budget_s=0, log=lines.append, notice_s=0.2) as clock:
        clock.start("scans/big.png")
        clock.stage("segment")
        time.sleep(0.75)
        clock.finish()
        time.sleep(0.3)
    assert 2 <= len(lines) <= 4, lines
    assert all(line.startswith("still working on scans/big.png") and "segment stage" in line for line in lines)


def test_check_names_the_file_the_stage_and_how_to_raise_the_budget() -> None:
    clock = InputClock(budget_s=0.01, log=lambda line: None)
    clock.start("scans/a.dcm")
    clock.stage("preprocess")
    time.sleep(0.02)
    with pytest.raises(ScanError, match="preprocess stage.*--time-budget") as caught:
        clock.check()
    assert caught.value.source == "scans/a.dcm"
