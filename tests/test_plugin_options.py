"""Options owned by plugins (``add_options``), the ``context`` the stage hooks get, named
alternatives (``register_segmenters``, ``register_explainers``) chosen by name, and the
report outputs the runner collects for ``report_run`` (issue 14).

A third-party one-file plugin defined here does what the built-in plugins do: it declares an
option, reads its value from ``context``, and registers a segmenter chosen with
``--segmenter``. The bundle is the shape-only test bundle: only the machinery is checked.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli_helpers import blob, plugins_with_camera, run_with_plugins, write_raw
from scintipipe.cli import cli

THIRD_PARTY = """
    import json
    from scintipipe.api import hookimpl

    def threshold_segment(scan, bundle, context):
        counts = scan["image"][0].numpy()
        mask = counts > context.options["threshold_fraction"] * counts.max()
        return {"rois": {"thyroid": mask}, "quantities": {"thyroid_counts": float(counts[mask].sum())}, "method": "threshold"}

    @hookimpl
    def add_options(register):
        register.option("stamp", default="none", help="Text written to stamp.txt in every case folder.")
        register.option("threshold_fraction", type=float, default=0.3, help="Fraction of the maximum the threshold segmenter keeps.")

    @hookimpl
    def register_segmenters(register):
        register.segmenter("threshold", threshold_segment, "pixels above a fraction of the maximum")

    @hookimpl
    def report_case(case, bundle, out_dir, context):
        path = out_dir / "stamp.txt"
        path.write_text(f"{context.options['stamp']} {context.out_dir.name} {case['segmentation']['segmenter']}")
        return [path]

    @hookimpl
    def report_run(cases, bundle, out_dir, context):
        path = out_dir / "outputs.json"
        path.write_text(json.dumps({c["case_dir"]: c["outputs"] for c in cases}))
        return [path]
"""


@pytest.fixture
def plugins(tmp_path: Path, docs_plugin_dir: Path) -> Path:
    """A plugins folder: the docs' raw-camera loader and the third-party plugin above."""
    return plugins_with_camera(tmp_path, docs_plugin_dir, "third_party", THIRD_PARTY)


def test_plugin_options_and_segmenters_show_in_run_help(plugins: Path) -> None:
    output = CliRunner().invoke(cli, ["--plugins-dir", str(plugins), "run", "--help"], catch_exceptions=False).output
    assert "--stamp TEXT" in output and "Text written to stamp.txt" in output
    assert "--segmenter [classical|learned|threshold]" in output
    assert "threshold (pixels above a fraction of the maximum)" in " ".join(output.split())  # help text is wrapped
    assert "--explain-method [gradcam|gradcampp|occlusion]" in output
    plain = CliRunner().invoke(cli, ["run", "--help"], catch_exceptions=False).output  # the built-ins' own options stay
    for flag in ("--syringe-full", "--syringe-empty", "--dicom / --no-dicom", "--pdf", "--segmenter [classical|learned]"):
        assert flag in plain, flag
    assert "--stamp" not in plain


def test_context_carries_the_option_and_the_chosen_segmenter_runs(plugins: Path, tiny_bundle: Path, tmp_path: Path) -> None:
    write_raw(tmp_path / "one.raw", blob(1))
    out = tmp_path / "results"
    code, output = run_with_plugins(plugins, tiny_bundle, [tmp_path / "one.raw"], out, "--no-explain", "--stamp", "hello", "--segmenter", "threshold")
    assert code == 0, output
    assert (out / "one" / "stamp.txt").read_text() == "hello results threshold"
    report = json.loads((out / "one" / "report.json").read_text())
    assert report["segmenter"] == "threshold" and report["segmentation_method"] == "threshold"
    code, output = run_with_plugins(plugins, tiny_bundle, [tmp_path / "one.raw"], tmp_path / "default", "--no-explain")
    assert code == 0, output
    assert (tmp_path / "default" / "one" / "stamp.txt").read_text() == "none default classical"  # the defaults
    bad = CliRunner().invoke(
        cli, ["--plugins-dir", str(plugins), "run", "--bundle", str(tiny_bundle), str(tmp_path / "one.raw"), "--segmenter", "magic"]
    )
    assert bad.exit_code == 2 and "magic" in bad.output


def test_report_run_and_the_html_report_get_what_was_really_written(plugins: Path, tiny_bundle: Path, tmp_path: Path) -> None:
    for i in range(2):
        write_raw(tmp_path / f"s{i}.raw", blob(i))
    out = tmp_path / "results"
    code, output = run_with_plugins(plugins, tiny_bundle, [tmp_path / "s0.raw", tmp_path / "s1.raw"], out, "--no-explain")
    assert code == 0, output
    outputs = json.loads((out / "outputs.json").read_text())
    assert set(outputs) == {"s0", "s1"}
    for case_dir, written in outputs.items():
        # every reporter's files, relative to the results folder: the plugin's, JSON, HTML (with its pictures), the DICOM note
        assert {
            f"{case_dir}/stamp.txt",
            f"{case_dir}/report.json",
            f"{case_dir}/report.html",
            f"{case_dir}/scan.png",
            f"{case_dir}/dicom_skipped.txt",
        } <= set(written)
        assert all((out / path).is_file() for path in written)
        page = (out / case_dir / "report.html").read_text()
        assert 'href="stamp.txt"' in page and 'href="report.json"' in page and 'href="dicom_skipped.txt"' in page
        assert "report_sr.dcm" not in page  # a raw source gets no DICOM SR, and the page does not pretend
    index = (out / "index.html").read_text()
    assert 'href="s0/report.html"' in index and 'href="s1/report.html"' in index
    code, _ = run_with_plugins(plugins, tiny_bundle, [tmp_path / "s0.raw"], tmp_path / "bare", "--no-explain", "--no-report")
    assert code == 0 and json.loads((tmp_path / "bare" / "outputs.json").read_text()) == {"null": []}


def test_a_plugins_check_and_clashing_options_are_refused(plugins: Path, tiny_bundle: Path, tmp_path: Path) -> None:
    write_raw(tmp_path / "one.raw", blob(1))
    result = CliRunner().invoke(cli, ["run", "--bundle", str(tiny_bundle), str(tmp_path / "one.raw"), "--syringe-empty", str(tmp_path / "one.raw")])
    assert result.exit_code == 2 and "--syringe-empty needs --syringe-full" in result.output
    (plugins / "clash.py").write_text("from scintipipe.api import hookimpl\n\n@hookimpl\ndef add_options(register):\n    register.option('stamp')\n")
    result = CliRunner().invoke(cli, ["--plugins-dir", str(plugins), "run", "--help"])
    assert (
        result.exit_code == 1
        and "option 'stamp' is registered by both plugin" in result.output
        and "'third_party'" in result.output
        and "'clash'" in result.output
    )
    (plugins / "clash.py").write_text(
        "from scintipipe.api import hookimpl\n\n@hookimpl\ndef add_options(register):\n    register.option('batch_size')\n"
    )
    result = CliRunner().invoke(cli, ["--plugins-dir", str(plugins), "run", "--help"])
    assert result.exit_code == 1 and "plugin 'clash' declared option 'batch_size', but scintipipe run already has" in result.output


def test_the_server_lists_plugin_options_as_infer_params_and_uses_them(plugins: Path, tiny_bundle: Path, tmp_path: Path) -> None:
    from scintipipe.bundle import Bundle
    from scintipipe.plugins import make_plugin_manager
    from scintipipe.server.errors import BadRequest
    from scintipipe.server.models import ModelService

    service = ModelService(
        make_plugin_manager(plugins_dir=plugins, load_entry_points=False), {"tiny": Bundle(tiny_bundle, name="tiny")}, work_dir=tmp_path / "work"
    )
    info = service.info()
    roi = info["tiny_roi"]
    assert (
        roi["config"]["stamp"] == "none"
        and roi["config"]["segmenter"] == "classical"
        and info["tiny_gradcam"]["config"]["explain_method"] == "gradcam"
    )
    assert roi["options"]["segmenter"]["choices"] == ["classical", "learned", "threshold"] and roi["options"]["stamp"]["plugin"] == "third_party"
    assert not {"syringe_full", "syringe_empty", "pdf", "dicom"} & set(roi["config"])  # not served: paths on the server, report files
    scan = write_raw(tmp_path / "one.raw", blob(1))
    default = service.infer("tiny_roi", scan, {}).params
    assert default["segmenter"] == "classical"
    chosen = service.infer("tiny_roi", scan, {"segmenter": "threshold", "threshold_fraction": "0.5"}).params
    assert chosen["segmenter"] == "threshold" and chosen["method"] == "threshold"
    assert chosen["quantities"]["thyroid_counts"] != default["quantities"]["thyroid_counts"]
    with pytest.raises(BadRequest, match="magic"):
        service.infer("tiny_roi", scan, {"segmenter": "magic"})
    with pytest.raises(BadRequest, match="threshold_fraction"):
        service.infer("tiny_roi", scan, {"threshold_fraction": "lots"})
