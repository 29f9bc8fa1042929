"""`scintipipe run` end to end: outputs, exit codes, failures that don't stop the batch.

The bundle is the shape-only test bundle (random weights): these tests check the
machinery, never what the labels say.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli_helpers import blob, plugins_with_camera, read_csv, run_with_plugins, write_raw
from scintipipe.cli import cli

LABELS = ["diffusely_increased", "diffusely_decreased", "focal_increased", "heterogeneous"]


def test_run_writes_predictions_and_reports(tiny_bundle: Path, docs_plugin_dir: Path, tmp_path: Path) -> None:
    scans = tmp_path / "scans"
    (scans / "sub").mkdir(parents=True)
    for i in range(3):
        write_raw(scans / f"case{i}.raw", blob(i))
    write_raw(scans / "sub" / "case9.raw", blob(9))
    out = tmp_path / "results"
    code, output = run_with_plugins(docs_plugin_dir, tiny_bundle, [scans], out, "--batch-size", "2")
    assert code == 0, output
    rows = read_csv(out / "predictions.csv")
    assert list(rows[0]) == ["source", "label", "confidence"] + [f"prob_{label}" for label in LABELS] + ["in_distribution", "ood_score"]
    assert sorted(Path(r["source"]).name for r in rows) == ["case0.raw", "case1.raw", "case2.raw", "case9.raw"]
    for row in rows:
        probs = [float(row[f"prob_{label}"]) for label in LABELS]
        assert abs(sum(probs) - 1) < 1e-4
        assert row["label"] == LABELS[int(np.argmax(probs))]
        assert float(row["confidence"]) == pytest.approx(max(probs), abs=1e-6)
    report = json.loads((out / "case0" / "report.json").read_text())
    assert report["prediction"]["label"] in LABELS
    assert report["scan"]["spacing"] == [2.21, 2.21]
    assert report["model"]["clinical_use"] is False and "Not for clinical use" in report["notice"]
    assert report["explanation"]["method"] == "gradcam"
    assert (out / "case0" / "hottest_pixel.txt").read_text().startswith(str(scans / "case0.raw"))
    assert read_csv(out / "errors.csv") == []


def test_failures_are_listed_and_the_rest_processed(tiny_bundle: Path, docs_plugin_dir: Path, tmp_path: Path) -> None:
    scans = tmp_path / "scans"
    scans.mkdir()
    write_raw(scans / "good.raw", blob(1))
    np.array([64, 64, 2210, 1, 2, 3], dtype="<u2").tofile(scans / "short.raw")
    write_raw(scans / "flat.raw", np.full((64, 64), 7))
    (scans / "notes.bin").write_text("not an image")
    (scans / "empty.bin").write_bytes(b"")
    (scans / "labels.csv").write_text("file,label\ngood.raw,heterogeneous\n")
    out = tmp_path / "results"
    code, output = run_with_plugins(docs_plugin_dir, tiny_bundle, [scans], out, "--no-explain")
    assert code == 1, output
    assert [Path(r["source"]).name for r in read_csv(out / "predictions.csv")] == ["good.raw"]
    errors = {Path(r["source"]).name: r["error"] for r in read_csv(out / "errors.csv")}
    assert set(errors) == {"short.raw", "flat.raw", "notes.bin", "empty.bin"}  # labels.csv is skipped, not failed
    assert errors["empty.bin"] == "empty file (0 bytes)"
    assert "header says 64x64" in errors["short.raw"]
    assert "constant pixel data" in errors["flat.raw"]
    assert "not a recognised image format" in errors["notes.bin"]
    assert "errors.csv" in output
    assert "skipped" in output and "labels.csv" in output
    for name in ("short.raw", "flat.raw", "notes.bin", "empty.bin"):  # each failure named on the console, with its reason
        assert re.search(rf"failed \S*{re.escape(name)}: \S", output), output


def test_plugin_failure_names_plugin_stage_and_file(tiny_bundle: Path, docs_plugin_dir: Path, tmp_path: Path) -> None:
    plugins = plugins_with_camera(
        tmp_path,
        docs_plugin_dir,
        "fragile",
        """
        from scintipipe import hookimpl

        @hookimpl
        def segment_scan(scan, bundle):
            if "bad" in scan["source"]:
                raise ZeroDivisionError("division by zero in my segmenter")
            return None
    """,
    )
    scans = tmp_path / "scans"
    scans.mkdir()
    write_raw(scans / "ok.raw", blob(2))
    write_raw(scans / "bad.raw", blob(3))
    out = tmp_path / "results"
    code, _ = run_with_plugins(plugins, tiny_bundle, [scans], out, "--no-explain")
    assert code == 1
    (error,) = read_csv(out / "errors.csv")
    assert error["source"].endswith("bad.raw")
    assert error["error"].startswith("plugin 'fragile' failed in stage 'segment' on ")
    assert "ZeroDivisionError" in error["error"]
    assert [Path(r["source"]).name for r in read_csv(out / "predictions.csv")] == ["ok.raw"]


def test_no_report_and_no_explain_skip_those_stages(tiny_bundle: Path, docs_plugin_dir: Path, tmp_path: Path) -> None:
    write_raw(tmp_path / "one.raw", blob(4))
    out = tmp_path / "results"
    code, _ = run_with_plugins(docs_plugin_dir, tiny_bundle, [tmp_path / "one.raw"], out, "--no-report", "--no-explain")
    assert code == 0
    assert len(read_csv(out / "predictions.csv")) == 1
    assert not (out / "one").exists()


def test_preprocess_hook_of_a_plugin_takes_precedence(tiny_bundle: Path, docs_plugin_dir: Path, tmp_path: Path) -> None:
    plugins = plugins_with_camera(
        tmp_path,
        docs_plugin_dir,
        "mine",
        """
        import torch
        from scintipipe import hookimpl

        CALLS = []

        @hookimpl
        def preprocess_scan(scan, bundle):
            CALLS.append(scan["source"])
            return {**scan, "input": torch.zeros(1, 32, 32)}
    """,
    )
    write_raw(tmp_path / "x.raw", blob(5))
    out = tmp_path / "results"
    code, _ = run_with_plugins(plugins, tiny_bundle, [tmp_path / "x.raw"], out, "--no-explain")
    assert code == 0
    (row,) = read_csv(out / "predictions.csv")
    # a zero input gives the same probabilities whatever the scan: the plugin's input was used
    code, _ = run_with_plugins(plugins, tiny_bundle, [tmp_path / "x.raw"], tmp_path / "again", "--no-explain")
    import torch

    from scintipipe.bundle import Bundle

    expected = Bundle(tiny_bundle).network("cpu")(torch.zeros(1, 1, 32, 32)).softmax(1)[0].tolist()
    assert [float(row[f"prob_{label}"]) for label in LABELS] == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--bundle", "no-such-bundle", "."], "no bundle named 'no-such-bundle'"),
        (["run", "--bundle", "TINY", "/no/such/folder"], "does not exist"),
        (["run", "--bundle", "TINY"], "Missing argument"),
        (["run", "--bundle", "TINY", "EMPTY"], "no files found"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str, tiny_bundle: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    args = [str(tiny_bundle) if a == "TINY" else str(tmp_path / "empty") if a == "EMPTY" else a for a in args]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert message in result.output


def test_bundles_command_lists_registered_bundles() -> None:
    result = CliRunner().invoke(cli, ["bundles", "--json"])
    assert result.exit_code == 0
    rows = json.loads(result.output)
    uptake4 = next(r for r in rows if r["name"] == "uptake4")
    assert uptake4["task"] == "uptake4" and uptake4["plugin"] == "scintipipe.builtin.uptake4"


def test_report_run_sees_every_case_and_extra_classes_are_explained(tiny_bundle: Path, docs_plugin_dir: Path, tmp_path: Path) -> None:
    plugins = plugins_with_camera(
        tmp_path,
        docs_plugin_dir,
        "summary",
        """
        import json
        from scintipipe import hookimpl

        @hookimpl
        def report_case(case, bundle, out_dir):
            path = out_dir / "explained.json"
            path.write_text(json.dumps(sorted(case["heatmaps"])))
            return [path]

        @hookimpl
        def report_run(cases, bundle, out_dir):
            path = out_dir / "summary.json"
            path.write_text(json.dumps([[c["source"], c["case_dir"], c["prediction"]["label"]] for c in cases]))
            return [path]
    """,
    )
    for i in range(3):
        write_raw(tmp_path / f"s{i}.raw", blob(i))
    out = tmp_path / "results"
    code, output = run_with_plugins(plugins, tiny_bundle, [tmp_path / f"s{i}.raw" for i in range(3)], out, "--explain-class", "heterogeneous")
    assert code == 0, output
    summary = json.loads((out / "summary.json").read_text())
    assert [Path(s).name for s, _, _ in summary] == ["s0.raw", "s1.raw", "s2.raw"]
    assert [d for _, d, _ in summary] == ["s0", "s1", "s2"]
    predicted = {Path(r["source"]).name: r["label"] for r in read_csv(out / "predictions.csv")}
    for i in range(3):
        explained = json.loads((out / f"s{i}" / "explained.json").read_text())
        assert set(explained) == {"heterogeneous", predicted[f"s{i}.raw"]}
    bad = CliRunner().invoke(cli, ["run", "--bundle", str(tiny_bundle), str(tmp_path), "--explain-class", "nonsense"])
    assert bad.exit_code == 2 and "unknown labels" in bad.output


def test_no_report_skips_the_segment_stage(tiny_bundle: Path, docs_plugin_dir: Path, tmp_path: Path) -> None:
    """With --no-report nothing reads regions, so no segmenter runs (issue 15: only the stages the outputs need)."""
    plugins = plugins_with_camera(
        tmp_path,
        docs_plugin_dir,
        "loud_segmenter",
        """
        from scintipipe.api import hookimpl

        @hookimpl
        def segment_scan(scan, bundle):
            raise RuntimeError("the segmenter ran")
    """,
    )
    write_raw(tmp_path / "one.raw", blob(4))
    quiet, loud = tmp_path / "quiet", tmp_path / "loud"
    code, output = run_with_plugins(plugins, tiny_bundle, [tmp_path / "one.raw"], quiet, "--no-report", "--no-explain")
    assert code == 0, output
    assert len(read_csv(quiet / "predictions.csv")) == 1
    code, _ = run_with_plugins(plugins, tiny_bundle, [tmp_path / "one.raw"], loud, "--no-explain", "--no-dicom")
    assert code == 1 and "the segmenter ran" in read_csv(loud / "errors.csv")[0]["error"]
