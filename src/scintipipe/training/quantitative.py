"""A quantitative baseline: a small scikit-learn classifier on the segmenter's quantities.

The networks see pixels; a reader sees ratios, sizes and asymmetries. This module fits a
classifier on the scale-free features of :mod:`scintipipe.segment.features` (thyroid to
salivary and background ratios, gland size relative to the image and body, lobe balance,
hot and cold nodule candidates, heterogeneity inside the gland) so the networks can be
compared with, or fused with, a model whose inputs a reader can check.

Two candidates are fitted and the better one by stratified cross-validation **on the
training data only** is kept:

* ``logistic``: median imputation (with missing-value indicators), ``StandardScaler``,
  multinomial ``LogisticRegression`` with balanced class weights;
* ``hist_gradient_boosting``: ``HistGradientBoostingClassifier`` (missing values handled
  natively), balanced class weights, early stopping off, shallow trees.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> feats = [{"log_thyroid_to_salivary": float(v), "thyroid_cv": 0.3} for v in rng.normal(0, 1, 40)]
    >>> labels = ["hot" if f["log_thyroid_to_salivary"] > 0 else "cold" for f in feats]
    >>> model = fit_baseline(feats, labels, cv=3)
    >>> model.predict([{"log_thyroid_to_salivary": 2.0, "thyroid_cv": 0.3}])
    ['hot']
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scintipipe.segment.features import FEATURE_NAMES, region_features, scan_features

#: the candidate models, in the order they are tried
CANDIDATES = ("logistic", "hist_gradient_boosting")


def scan_array(scan: Any) -> tuple[np.ndarray, tuple[float, float] | None]:
    """The 2-D image and pixel spacing of a scan.

    Args:
        scan: a loader's scan dict (``{"image": MetaTensor(1, H, W), ...}``), a
            ``(image, spacing)`` pair, or a 2-D array (spacing unknown).
    """
    if isinstance(scan, Mapping):
        image = scan["image"]
        meta = dict(getattr(image, "meta", {}) or {})
        array = np.asarray(image[0] if getattr(image, "ndim", 2) == 3 else image, dtype=np.float32)
        spacing = meta.get("spacing")
        return array, ((float(spacing[0]), float(spacing[1])) if spacing is not None else None)
    if isinstance(scan, tuple) and len(scan) == 2:
        return np.asarray(scan[0], dtype=np.float32), scan[1]
    return np.asarray(scan, dtype=np.float32), None


def extract_features(scan: Any) -> dict[str, float]:
    """Scale-free features of one scan from the classical segmenter's regions.

    When the scan has been through the pipeline's segment stage
    (``scan["segmentation"]["rois"]``), those regions are used; otherwise the classical
    segmenter runs. The features never use the pixel spacing, so DICOM counts and
    display exports without spacing give comparable values.

    Args:
        scan: see :func:`scan_array`.

    Returns:
        ``{feature name: float}`` (names of :data:`scintipipe.segment.features.FEATURE_NAMES`
        that are defined for this scan).
    """
    image, spacing = scan_array(scan)
    rois = None
    if isinstance(scan, Mapping):
        rois = (scan.get("segmentation") or {}).get("rois")
    if rois is not None:
        return region_features(image, rois)
    return scan_features(image, spacing)


def feature_matrix(features: Sequence[Mapping[str, float]], names: Sequence[str] = FEATURE_NAMES) -> np.ndarray:
    """Stack feature dicts into an ``(n, len(names))`` float array, ``nan`` where missing."""
    return np.array([[float(f.get(name, math.nan)) for name in names] for f in features], dtype=np.float64).reshape(len(features), len(names))


def candidate_models(seed: int = 0) -> dict[str, Any]:
    """The unfitted candidate pipelines, by name (see the module docstring)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return {
        "logistic": Pipeline(
            [
                ("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)),
                ("scale", StandardScaler()),
                ("classify", LogisticRegression(C=1.0, max_iter=5000, class_weight="balanced")),
            ]
        ),
        "hist_gradient_boosting": Pipeline(
            [
                (
                    "classify",
                    HistGradientBoostingClassifier(
                        max_depth=3,
                        learning_rate=0.08,
                        max_iter=200,
                        l2_regularization=1.0,
                        class_weight="balanced",
                        early_stopping=False,
                        random_state=seed,
                    ),
                )
            ]
        ),
    }


@dataclass
class QuantitativeBaseline:
    """A fitted baseline: the chosen pipeline, its labels and its features.

    Attributes:
        model: the fitted scikit-learn pipeline.
        labels: class labels in the order of :meth:`predict_proba`'s columns.
        feature_names: the features the model reads, in order (those of
            :data:`~scintipipe.segment.features.FEATURE_NAMES` that vary on the training data).
        chosen: name of the chosen candidate.
        cv_scores: mean cross-validated score per candidate (training data only).
        scoring: the cross-validation metric.
        n_train: training cases per label.
    """

    model: Any
    labels: list[str]
    feature_names: list[str]
    chosen: str
    cv_scores: dict[str, float] = field(default_factory=dict)
    scoring: str = "balanced_accuracy"
    n_train: dict[str, int] = field(default_factory=dict)

    def predict_proba(self, features: Sequence[Mapping[str, float]]) -> np.ndarray:
        """Probabilities ``(n, len(labels))`` in :attr:`labels` order (0 for a label the
        training data lacked)."""
        raw = self.model.predict_proba(feature_matrix(features, self.feature_names))
        out = np.zeros((raw.shape[0], len(self.labels)))
        for j, label in enumerate(self.model.classes_):
            out[:, self.labels.index(label)] = raw[:, j]
        return out

    def predict(self, features: Sequence[Mapping[str, float]]) -> list[str]:
        """The most probable label per case."""
        return [self.labels[i] for i in self.predict_proba(features).argmax(axis=1)]

    def summary(self) -> dict[str, Any]:
        """JSON-ready description (no weights)."""
        return {
            "chosen": self.chosen,
            "cv_scores": self.cv_scores,
            "scoring": self.scoring,
            "labels": self.labels,
            "feature_names": self.feature_names,
            "n_train": self.n_train,
        }


def fit_baseline(
    features: Sequence[Mapping[str, float]],
    labels: Sequence[str],
    label_order: Sequence[str] | None = None,
    cv: int = 5,
    seed: int = 0,
    scoring: str = "balanced_accuracy",
    candidates: Sequence[str] = CANDIDATES,
) -> QuantitativeBaseline:
    """Fit the candidates, pick one by cross-validation on these data, refit it on all.

    Args:
        features: one feature dict per training case (:func:`extract_features`).
        labels: the label of each case.
        label_order: output order of the probabilities (default: sorted labels seen).
        cv: stratified folds (reduced to the smallest class size when that is smaller;
            with fewer than 2 per class the first candidate is taken without CV).
        seed: random seed of the folds and of the boosting.
        scoring: scikit-learn scorer name for the choice.
        candidates: names from :func:`candidate_models` to try.

    Returns:
        The fitted :class:`QuantitativeBaseline`.

    Raises:
        ValueError: fewer than two labels, or features and labels of different lengths.
    """
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    if len(features) != len(labels):
        raise ValueError(f"{len(features)} feature rows but {len(labels)} labels")
    labels = [str(label) for label in labels]
    seen = sorted(set(labels))
    if len(seen) < 2:
        raise ValueError(f"need at least two labels to fit a classifier, got {seen}")
    order = list(label_order) if label_order is not None else seen
    unknown = set(seen) - set(order)
    if unknown:
        raise ValueError(f"labels {sorted(unknown)} are not in label_order {order}")
    x_all = feature_matrix(features)
    # features never defined or constant on the training data carry nothing (and trip the
    # boosting's binning): the model reads the others
    keep = [j for j in range(x_all.shape[1]) if np.isfinite(x_all[:, j]).any() and np.nanmax(x_all[:, j]) > np.nanmin(x_all[:, j])]
    if not keep:
        raise ValueError("every feature is missing or constant on the training data")
    names = [FEATURE_NAMES[j] for j in keep]
    x = x_all[:, keep]
    y = np.asarray(labels)
    models = candidate_models(seed)
    smallest = min(int((y == label).sum()) for label in seen)
    folds = min(cv, smallest)
    scores: dict[str, float] = {}
    if folds >= 2:
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        for name in candidates:
            scores[name] = float(np.mean(cross_val_score(clone(models[name]), x, y, cv=splitter, scoring=scoring)))
        chosen = max(candidates, key=lambda name: (scores[name], -list(candidates).index(name)))
    else:
        chosen = candidates[0]
    model = clone(models[chosen]).fit(x, y)
    return QuantitativeBaseline(model, order, names, chosen, scores, scoring, {label: int((y == label).sum()) for label in seen})


def save_baseline(baseline: QuantitativeBaseline, path: str | Path) -> Path:
    """Save with joblib (``path``) and a readable summary beside it (``path`` + ``.json``)."""
    import joblib

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(baseline, path)
    path.with_suffix(path.suffix + ".json").write_text(json.dumps(baseline.summary(), indent=1) + "\n")
    return path


def load_baseline(path: str | Path) -> QuantitativeBaseline:
    """Load a baseline written by :func:`save_baseline` (a joblib pickle: trusted files only)."""
    import joblib

    baseline = joblib.load(Path(path))
    if not isinstance(baseline, QuantitativeBaseline):
        raise TypeError(f"{path} does not hold a QuantitativeBaseline")
    return baseline


def late_fusion(*probabilities: np.ndarray, weights: Sequence[float] | None = None) -> np.ndarray:
    """Weighted average of probability arrays of the same shape and label order."""
    if not probabilities:
        raise ValueError("nothing to fuse")
    weights = list(weights) if weights is not None else [1.0] * len(probabilities)
    total = sum(weights)
    weighted = [w * np.asarray(p, dtype=np.float64) for w, p in zip(weights, probabilities, strict=True)]
    return np.sum(weighted, axis=0) / total
