"""`Pipeline.process`: order, failures, bounded memory, workers, stage timing, interrupted runs.

The bundle is the shape-only test bundle (random weights) and the scans are the docs'
raw-camera files: these tests check the machinery, never what the labels say.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from cli_helpers import read_csv, run
from scintipipe import hookimpl
from scintipipe.bundle import Bundle
from scintipipe.pipeline import Pipeline, RunOptions
from scintipipe.plugins import make_plugin_manager
from scintipipe.runner import (
    MIN_CHUNKS_PER_WORKER,
    PROCESS_CHUNK_SIZE,
    Failure,
    can_fork_workers,
    chunk_size_for,
    dumps,
    ordered_map,
    portable,
    process_chunks,
)
from test_run import blob, write_raw


class CountingLoader:
    """Counts the views loaded (a ``wrapper`` around ``load_scans``), and fails hard on one file."""

    def __init__(self, interrupt_on: str | None = None) -> None:
        self.loaded = 0
        self.lock = threading.Lock()
        self.interrupt_on = interrupt_on

    @hookimpl(wrapper=True)
    def load_scans(self, path: Path) -> Any:
        if self.interrupt_on and path.name == self.interrupt_on:
            raise KeyboardInterrupt
        scans = yield
        with self.lock:
            self.loaded += len(scans or [])
        return scans


def make_pipeline(plugins_dir: Path, bundle: Path, **options: Any) -> tuple[Pipeline, Any]:
    pm = make_plugin_manager(plugins_dir=plugins_dir)
    settings = {"explain": False, "report": False, "progress": False, **options}
    return Pipeline(pm, Bundle(bundle), RunOptions(**settings), log=lambda message: None), pm


def scans(folder: Path, n: int) -> list[Path]:
    folder.mkdir(exist_ok=True)
    return [write_raw(folder / f"case{i:02d}.raw", blob(i % 7)) for i in range(n)]


def source_of(item: dict[str, Any] | Failure) -> str:
    return item.source if isinstance(item, Failure) else item["source"]


def test_ordered_map_keeps_order_and_runs_inline_with_no_workers() -> None:
    assert list(ordered_map(lambda x: x + 1, range(7), workers=3, in_flight=2)) == list(range(1, 8))
    assert list(ordered_map(lambda x: threading.current_thread().name, range(2), workers=0)) == [threading.current_thread().name] * 2


@pytest.mark.parametrize("workers", [0, 2])
def test_process_yields_in_order_and_a_failure_does_not_stop_the_rest(workers: int, tiny_bundle: Path, docs_plugin_dir: Path, tmp_path: Path) -> None:
    files = scans(tmp_path / "scans", 6)
    files[2].write_bytes(files[2].read_bytes()[:20])  # a truncated file: fails in load
    pipeline, _ = make_pipeline(docs_plugin_dir, tiny_bundle, workers=workers, batch_size=2)
    items = list(pipeline.process(files))
    assert [source_of(item) for item in items] == [str(path) for path in files]
    (failure,) = [item for item in items if isinstance(item, Failure)]
    assert failure.source == str(files[2]) and failure.stage == "load" and not failure.skipped
    for item in items:
        if not isinstance(item, Failure):
            assert set(item["prediction"]) >= {"label", "confidence"} and "gate" in item


def test_process_takes_scans_already_loaded(tiny_bundle: Path, docs_plugin_dir: Path, tmp_path: Path) -> None:
    files = scans(tmp_path / "scans", 3)
    pipeline, _ = make_pipeline(docs_plugin_dir, tiny_bundle)
    loaded = [scan for path in files for scan in pipeline.load(path)]
    from_scans = [item["prediction"] for item in pipeline.process(loaded)]
    from_files = [item["prediction"] for item in pipeline.process(files)]
    assert from_scans == from_files


def test_memory_stays_bounded(tiny_bundle: Path, docs_plugin_dir: Path, tmp_path: Path) -> None:
    """At any moment the views loaded but not yet handed back are at most a batch plus the units in flight."""
    files = scans(tmp_path / "scans", 24)
    batch_size, in_flight = 2, 3
    pipeline, pm = make_pipeline(docs_plugin_dir, tiny_bundle, workers=2, batch_size=batch_size, in_flight=in_flight)
    counter = CountingLoader()
    pm.register(counter, name="counter")
    alive = []
    for yielded, _ in enumerate(pipeline.process(files), start=1):
        alive.append(counter.loaded - yielded)
    assert counter.loaded == len(files) == yielded
    assert max(alive) <= batch_size + in_flight < len(files)


def test_workers_give_the_same_predictions(tiny_bundle: Path, docs_plugin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Processes (the default of run, from 4 units here), threads, and none: the same rows."""
    monkeypatch.setattr("scintipipe.runner.MIN_UNITS_FOR_PROCESSES", 4)
    files = scans(tmp_path / "scans", 9)
    outputs = {}
    for workers in (0, 1, 2, "2 --worker-threads"):
        out = tmp_path / f"out{workers}"
        code, output = run(
            [
                "--plugins-dir",
                str(docs_plugin_dir),
                "run",
                "--bundle",
                str(tiny_bundle),
                *map(str, files),
                "--out",
                str(out),
                "--batch-size",
                "4",
                "--workers",
                *str(workers).split(),
                "--no-explain",
            ]
        )
        assert code == 0, output
        outputs[workers] = (out / "predictions.csv").read_text()
    assert len(read_csv(tmp_path / "out2" / "predictions.csv")) == len(files)
    assert outputs[0] == outputs[1] == outputs[2] == outputs["2 --worker-threads"]


needs_fork = pytest.mark.skipif(not can_fork_workers(), reason="worker processes need fork (POSIX)")


@needs_fork
def test_ordered_map_in_processes_keeps_order_and_sets_up_each_worker() -> None:
    import os

    marks: list[str] = []
    results = list(
        ordered_map(
            lambda x: (x * x, os.getpid(), list(marks)), range(9), workers=2, in_flight=3, processes=True, worker_setup=lambda: marks.append("set up")
        )
    )
    assert [square for square, _, _ in results] == [x * x for x in range(9)]
    assert {pid for _, pid, _ in results} - {os.getpid()}, "the function ran in forked workers"
    assert os.getpid() not in {pid for _, pid, _ in results}
    assert all(seen == ["set up"] for _, _, seen in results) and marks == [], "setup runs in each worker, never in the caller"


@needs_fork
def test_ordered_map_sends_chunks_to_worker_processes_and_caps_them_by_in_flight() -> None:
    import os

    calls: list[int] = []  # filled in the workers, so the caller's list stays empty

    def tagged(x: int) -> tuple[int, int, int]:
        calls.append(x)
        return x, os.getpid(), len(calls)  # calls made so far in this worker's current process

    results = list(ordered_map(tagged, range(20), workers=2, processes=True, chunk_size=5))
    assert [x for x, _, _ in results] == list(range(20)), "order kept across chunks"
    by_chunk = [results[i : i + 5] for i in range(0, 20, 5)]
    assert all(len({pid for _, pid, _ in chunk}) == 1 for chunk in by_chunk), "each chunk ran in one worker"
    assert all([seen for _, _, seen in chunk] == list(range(chunk[0][2], chunk[0][2] + 5)) for chunk in by_chunk), "one task per chunk"
    assert calls == []
    capped = list(ordered_map(tagged, range(7), workers=2, in_flight=4, processes=True, chunk_size=50))
    assert [x for x, _, _ in capped] == list(range(7))


def test_short_runs_get_smaller_chunks_so_every_worker_has_several() -> None:
    assert chunk_size_for(100_000, 2) == PROCESS_CHUNK_SIZE
    assert chunk_size_for(200, 2) == 12 and chunk_size_for(40, 2) == 2 and chunk_size_for(10, 4) == 1
    for n_units, workers in ((40, 2), (200, 2), (1000, 8)):
        assert n_units / chunk_size_for(n_units, workers) >= MIN_CHUNKS_PER_WORKER * workers


def test_process_chunks_keep_two_a_worker_in_flight_within_in_flight() -> None:
    assert process_chunks(2, None, 16) == (16, 4)
    assert process_chunks(2, 4, 50) == (1, 4), "in_flight counts items: 4 items for 2 workers are chunks of 1"
    assert process_chunks(3, 60, 8) == (8, 7)
    assert process_chunks(4, 1, 8) == (1, 1)


@needs_fork
def test_a_worker_process_that_dies_fails_the_run_instead_of_hanging() -> None:
    import os
    from concurrent.futures.process import BrokenProcessPool

    def die_on_three(x: int) -> int:
        if x == 3:
            os._exit(9)  # as the kernel's OOM killer would
        return x

    with pytest.raises(BrokenProcessPool):
        list(ordered_map(die_on_three, range(6), workers=2, processes=True))


def test_dumps_keeps_metatensors_and_their_metadata() -> None:
    import pickle

    import torch
    from monai.data import MetaTensor

    image = MetaTensor(torch.arange(12.0).reshape(1, 3, 4), meta={"source": "a.dcm", "spacing": (2.0, 2.0)})
    item = {"image": image, "input": image[:, :2], "counts": torch.tensor([3, 4])}
    back = pickle.loads(dumps(item))
    assert isinstance(back["image"], MetaTensor) and torch.equal(back["image"], image)
    assert back["image"].meta["source"] == "a.dcm" and back["image"].meta["spacing"] == (2.0, 2.0)
    assert back["input"].shape == (1, 2, 4) and back["counts"].dtype == torch.int64


class LocalError(Exception):
    """An exception that cannot be pickled: it holds a lock (and its constructor needs two
    arguments where its args hold one; tblib, which Dask installs, would mend only that)."""

    def __init__(self, what: str, why: str) -> None:
        super().__init__(f"{what}: {why}")
        self.lock = threading.Lock()


def test_portable_replaces_an_exception_that_cannot_be_pickled() -> None:
    failure = Failure("a.dcm", "load", "plugin 'x' failed", LocalError("a", "b"))
    replaced = portable(failure)
    assert replaced.reason == failure.reason and replaced.stage == "load"
    assert type(replaced.error).__name__ == "ScanError" and "LocalError" in str(replaced.error)
    kept = Failure("b.dcm", "load", "bad", ValueError("bad"))
    assert portable(kept) is kept


class FailingPlugin:
    """Raises an unpicklable exception on one file (registered on the live plugin manager, which forked workers share)."""

    def __init__(self, name: str) -> None:
        self.name = name

    @hookimpl(tryfirst=True)
    def load_scans(self, path: Path) -> Any:
        if path.name == self.name:
            raise LocalError(path.name, "this plugin cannot read it")
        return None


@needs_fork
def test_worker_processes_give_what_threads_give(tiny_bundle: Path, docs_plugin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("scintipipe.runner.MIN_UNITS_FOR_PROCESSES", 4)
    files = scans(tmp_path / "scans", 7)
    files[1].write_bytes(files[1].read_bytes()[:20])  # truncated: a load failure
    results = {}
    for processes in (False, True):
        pipeline, pm = make_pipeline(docs_plugin_dir, tiny_bundle, workers=2, batch_size=3, worker_processes=processes)
        pm.register(FailingPlugin(files[4].name), name="failing")
        assert pipeline.uses_worker_processes is processes
        items = list(pipeline.process(files))
        results[processes] = [
            (item.source, item.stage, item.reason) if isinstance(item, Failure) else (item["source"], item["prediction"]) for item in items
        ]
        assert pipeline.stage_times.by_stage()["load"]["calls"] == len(files), "the workers' stage times join the run's"
    assert results[True] == results[False]
    failed = {entry[0]: entry for entry in results[True] if len(entry) == 3}
    assert set(failed) == {str(files[1]), str(files[4])}
    assert "LocalError" in failed[str(files[4])][2] and "this plugin cannot read it" in failed[str(files[4])][2]


def test_stage_timing_reports_every_stage(tiny_bundle: Path, docs_plugin_dir: Path, tmp_path: Path) -> None:
    files = scans(tmp_path / "scans", 3)
    pipeline, _ = make_pipeline(docs_plugin_dir, tiny_bundle, explain=True, report=True, workers=1)
    summary = pipeline.run(files, tmp_path / "out")
    assert summary.classified == 3
    stages = summary.stage_seconds
    assert set(stages) == {"load", "gate", "preprocess", "segment", "classify", "explain", "report"}
    assert stages["load"]["calls"] == 3 and stages["preprocess"]["calls"] == 3
    assert stages["report"]["calls"] == 3 + 1  # report_case per case, report_run once
    assert all(entry["seconds"] > 0 for entry in stages.values())
    assert set(pipeline.stage_times.by_hook()) >= {
        "load_scans",
        "gate_scan",
        "gate_batch",
        "classify_batch",
        "explain_batch",
        "report_case",
        "report_run",
    }


def test_timing_stays_off_outside_a_run(tiny_bundle: Path, docs_plugin_dir: Path, tmp_path: Path) -> None:
    (path,) = scans(tmp_path / "scans", 1)
    pipeline, _ = make_pipeline(docs_plugin_dir, tiny_bundle)
    assert pipeline.load(path)  # no recording open: the wrappers only pass the call on
    from scintipipe.builtin.stage_timing import CURRENT_TIMES

    assert CURRENT_TIMES.get() is None


def test_an_interrupted_run_keeps_the_rows_it_finished(tiny_bundle: Path, docs_plugin_dir: Path, tmp_path: Path) -> None:
    files = scans(tmp_path / "scans", 8)
    pipeline, pm = make_pipeline(docs_plugin_dir, tiny_bundle, workers=2, batch_size=2)
    pm.register(CountingLoader(interrupt_on=files[6].name), name="interrupter")
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        pipeline.run(files, out)
    rows = read_csv(out / "predictions.csv")
    assert [row["source"] for row in rows] == [str(path) for path in files[:6]]


class PidRecorder:
    """Sends back, in each scan's metadata, the process that loaded it."""

    @hookimpl(wrapper=True)
    def load_scans(self, path: Path) -> Any:
        import os

        scans = yield
        for scan in scans or []:
            scan["image"].meta["loaded_by"] = os.getpid()
        return scans


@needs_fork
def test_a_short_run_keeps_threads_where_a_fork_would_not_pay(
    tiny_bundle: Path, docs_plugin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    files = scans(tmp_path / "scans", 3)
    loaded_by = {}
    for threshold in (32, 2):
        monkeypatch.setattr("scintipipe.runner.MIN_UNITS_FOR_PROCESSES", threshold)
        pipeline, pm = make_pipeline(docs_plugin_dir, tiny_bundle, workers=2, worker_processes=True)
        pm.register(PidRecorder(), name="pids")
        loaded_by[threshold] = {item["image"].meta["loaded_by"] for item in pipeline.process(files)}
    assert loaded_by[32] == {os.getpid()}, "3 files: worker threads in this process"
    assert os.getpid() not in loaded_by[2], "from 2 units on: forked workers"


@needs_fork
def test_the_time_budget_holds_in_worker_processes(tiny_bundle: Path, docs_plugin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each forked worker keeps a clock of its own: an input over budget fails there, named, and the run goes on."""
    monkeypatch.setattr("scintipipe.runner.MIN_UNITS_FOR_PROCESSES", 2)
    files = scans(tmp_path / "scans", 4)
    pipeline, _ = make_pipeline(docs_plugin_dir, tiny_bundle, workers=2, worker_processes=True, time_budget_s=1e-9)
    items = list(pipeline.process(files))
    assert [item.source for item in items if isinstance(item, Failure)] == [str(path) for path in files]
    assert all("over the per-input time budget" in item.reason for item in items if isinstance(item, Failure))
