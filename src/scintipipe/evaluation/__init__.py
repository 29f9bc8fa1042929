"""Evaluation statistics: metrics with confidence intervals, tables, figures, paired tests.

The library behind ``scintipipe evaluate``; it reads no files but reader tables and
writes only the tables and figures it is asked for.
"""

from scintipipe.evaluation.classification import CLASS_METRICS, METRIC_NAMES, class_summary, classification_report
from scintipipe.evaluation.delong import delong_auc_ci, delong_covariance, delong_test
from scintipipe.evaluation.intervals import wilson_interval
from scintipipe.evaluation.paired import cohen_kappa, mann_whitney, mcnemar_from_predictions, mcnemar_test
from scintipipe.evaluation.plots import plot_confusion_matrix, plot_roc_comparison, plot_roc_curves
from scintipipe.evaluation.readers import compare_readers, diagnostic_summary, read_reader_table
from scintipipe.evaluation.resampling import (
    compare_split_metrics,
    repeated_stratified_splits,
    stratified_kfold_splits,
    summarize_splits,
)
from scintipipe.evaluation.tables import format_split_summary, format_table, write_metrics_csv

__all__ = [
    "CLASS_METRICS",
    "METRIC_NAMES",
    "class_summary",
    "classification_report",
    "cohen_kappa",
    "compare_readers",
    "compare_split_metrics",
    "delong_auc_ci",
    "delong_covariance",
    "delong_test",
    "diagnostic_summary",
    "format_split_summary",
    "format_table",
    "mann_whitney",
    "mcnemar_from_predictions",
    "mcnemar_test",
    "plot_confusion_matrix",
    "plot_roc_comparison",
    "plot_roc_curves",
    "read_reader_table",
    "repeated_stratified_splits",
    "stratified_kfold_splits",
    "summarize_splits",
    "wilson_interval",
    "write_metrics_csv",
]
