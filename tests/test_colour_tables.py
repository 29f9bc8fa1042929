"""benchmarks/colour_tables.py at a tiny scale: simulated colour exports are read on a table and pass, photographs do not."""

from __future__ import annotations

import json
from pathlib import Path

from benchmark_helpers import load_benchmark


def test_colour_tables_reads_exports_renders_and_photographs(tmp_path: Path) -> None:
    bench = load_benchmark("colour_tables")
    assert (
        bench.main(["--seeds", "2104", "--n", "24", "--unknown-map-cases", "1", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out")])
        == 0
    )
    results = json.loads((tmp_path / "out/colour_tables.json").read_text())
    exports = results["exports"]
    cases = [json.loads(line) for line in (tmp_path / "data/fresh-2104/cases.jsonl").read_text().splitlines()]
    coloured = [c for c in cases if (c.get("display_export") or {}).get("options", {}).get("colormap") not in (None, "gray", "grey")]
    assert coloured and len(exports) == len(coloured)
    assert all(row["table"] is not None and row["refused"] is None for row in exports), exports
    renders = results["unknown_maps"]
    assert len(renders) == len({row["map"] for row in renders}) and all(row["map"] in bench.UNKNOWN_MAPS for row in renders)
    assert all(photo["refused"] for photo in results["photographs"])
    text = (tmp_path / "out/colour_tables.md").read_text()
    assert f"{len(exports)}. A known table recognised for {len(exports)}" in text
