"""Markdown and CSV tables of classification reports (the layout of Table 2 of the uptake4 study, Zhao et al. 2021)."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

from scintipipe.evaluation.classification import CLASS_METRICS, METRIC_NAMES

_DASH = "–"


def format_value(entry: Mapping | None, percent: bool = True, digits: int = 2) -> str:
    """``"value (lower–upper)"`` of a metric entry; percent scaling leaves AUC in [0, 1].

    An undefined value gives ``"–"``; a value without interval gives the value alone.
    """
    if not entry or entry.get("value") is None:
        return _DASH
    scale, places = (100.0, digits) if percent else (1.0, digits + 2)
    text = f"{entry['value'] * scale:.{places}f}"
    if entry.get("lower") is not None and entry.get("upper") is not None:
        text += f" ({entry['lower'] * scale:.{places}f}{_DASH}{entry['upper'] * scale:.{places}f})"
    return text


def _entry(report: dict, column: str, metric: str) -> Mapping | None:
    if column == "Macro average":
        return report["macro"][metric]
    if column == "Overall":
        return report["overall"].get(metric)
    return report["per_class"][column][metric]


def _pretty(label: str) -> str:
    return label.replace("_", " ").capitalize()


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def format_table(
    reports: dict | Mapping[str, dict],
    classes_as_rows: bool = False,
    percent: bool = True,
    digits: int = 2,
) -> str:
    """A Markdown table of one or several classification reports.

    The default layout is Table 2 of the uptake4 study: one row per metric (and per data set when
    several reports are given, e.g. ``{"Internal": ..., "External": ...}``), one column
    per class, then ``Macro average`` and ``Overall`` (overall accuracy) columns. Cells
    read ``value (lower–upper)``; proportions in percent, ROC AUC on [0, 1].

    Args:
        reports: a report of :func:`classification_report`, or ``{data set name: report}``.
        classes_as_rows: transpose: one row per class (then macro and overall rows), one
            column per metric; several reports add a ``Dataset`` column.
        percent: show proportions and F1 in percent.
        digits: decimals of percentages (AUC and fractions get two more).
    """
    named: dict[str, dict] = {"": dict(reports)} if "per_class" in reports else dict(reports)
    labels = next(iter(named.values()))["labels"]
    show_dataset = len(named) > 1 or "" not in named
    columns = list(labels) + ["Macro average", "Overall"]
    unit = " (%)" if percent else ""
    lines = []

    def cell(report: dict, column: str, metric: str) -> str:
        return format_value(_entry(report, column, metric), percent=percent and metric != "auc", digits=digits)

    if classes_as_rows:
        header = (["Dataset"] if show_dataset else []) + ["Class", "n"] + [METRIC_NAMES[m] + (unit if m != "auc" else "") for m in CLASS_METRICS]
        lines += [_row(header), _row(["---"] * len(header))]
        for dataset, report in named.items():
            for column in columns:
                support = str(report["per_class"][column]["support"]) if column in labels else str(report["n"])
                name = _pretty(column) if column in labels else column
                cells = [cell(report, column, metric) for metric in CLASS_METRICS]
                lines.append(_row(([dataset] if show_dataset else []) + [name, support] + cells))
        return "\n".join(lines) + "\n" + format_warnings(named)

    header = ["Metrics"] + (["Dataset"] if show_dataset else []) + [_pretty(c) + unit if c in labels else c + unit for c in columns]
    lines += [_row(header), _row(["---"] * len(header))]
    for dataset, report in named.items():
        counts = [str(report["per_class"][c]["support"]) for c in labels] + [_DASH, str(report["n"])]
        lines.append(_row(["n"] + ([dataset] if show_dataset else []) + counts))
    for metric in CLASS_METRICS:
        for position, (dataset, report) in enumerate(named.items()):
            name = METRIC_NAMES[metric] if position == 0 else ""
            cells = [cell(report, column, metric) for column in columns]
            lines.append(_row([name] + ([dataset] if show_dataset else []) + cells))
    return "\n".join(lines) + "\n" + format_warnings(named)


def format_warnings(named: Mapping[str, dict]) -> str:
    """Markdown lines after a table for every small-class warning of the reports (empty when none)."""
    lines = []
    for dataset, report in named.items():
        for warning in report.get("warnings", []):
            lines.append(f"> **Warning**{f' ({dataset})' if dataset else ''}: {warning}.")
    return "\n" + "\n".join(lines) + "\n" if lines else ""


def write_metrics_csv(reports: dict | Mapping[str, dict], path: str | Path) -> Path:
    """Write one or several reports as a long CSV: ``dataset,class,metric,value,lower,upper``.

    ``class`` is a label, ``macro`` or ``overall``; ``support`` rows give the class size in
    ``value``. Undefined values are empty cells.

    Returns:
        The path written.
    """
    named: dict[str, dict] = {"": dict(reports)} if "per_class" in reports else dict(reports)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["dataset", "class", "metric", "value", "lower", "upper"])
        for dataset, report in named.items():
            for label, entry in report["per_class"].items():
                writer.writerow([dataset, label, "support", entry["support"], "", ""])
                for metric in CLASS_METRICS:
                    writer.writerow([dataset, label, metric, *_csv_cells(entry[metric])])
            for metric in CLASS_METRICS:
                writer.writerow([dataset, "macro", metric, *_csv_cells(report["macro"][metric])])
            writer.writerow([dataset, "overall", "accuracy", *_csv_cells(report["overall"]["accuracy"])])
    return path


def _csv_cells(entry: Mapping) -> list:
    return ["" if entry.get(key) is None else entry[key] for key in ("value", "lower", "upper")]


def format_split_summary(summaries: Mapping[str, Mapping[str, Mapping]], percent: bool = True, digits: int = 2) -> str:
    """Markdown table of mean ± SD per metric and model (Table 4 of the remnant study, ResNet-18 on 131I neck scans).

    Args:
        summaries: ``{model: summarize_splits(...) result}``.
        percent: show metrics other than AUC in percent.
        digits: decimals.
    """
    models = list(summaries)
    metrics: list[str] = []
    for summary in summaries.values():
        metrics.extend(m for m in summary if m not in metrics)
    lines = [_row(["Metric"] + models), _row(["---"] * (len(models) + 1))]
    for metric in metrics:
        scale = 100.0 if percent and metric != "auc" else 1.0
        places = digits if scale == 100.0 else digits + 2
        cells = []
        for model in models:
            entry = summaries[model].get(metric)
            if not entry or entry["mean"] is None:
                cells.append(_DASH)
                continue
            sd = f" ± {entry['sd'] * scale:.{places}f}" if entry["sd"] is not None else ""
            cells.append(f"{entry['mean'] * scale:.{places}f}{sd}")
        name = METRIC_NAMES.get(metric, metric.replace("_", " ").capitalize())
        lines.append(_row([name + (" (%)" if scale == 100.0 else "")] + cells))
    return "\n".join(lines) + "\n"
