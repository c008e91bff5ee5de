"""Turn match scores into probabilities an analyst can read as "how likely is this runbook right".

A cosine similarity of 0.62 means nothing to a person, and its meaning shifts with the model and the
catalogue. A calibrator is fitted on past decisions (accepted = 1, rejected = 0) and maps a score, or a small
feature vector such as (dense cosine, share of the ticket's words in the runbook, vote of similar past
tickets), to a probability.
The application ships a default calibration as JSON (``to_dict``) and refits it from the analysts' own
decisions later (``fit``), then checks the result with ``expected_calibration_error``.

Two methods:

* ``IsotonicCalibrator``: a non-decreasing step-linear map of one score. Flexible, needs a few hundred
  decisions to be smooth.
* ``PlattCalibrator``: a logistic curve over one or more features, fitted with Platt's smoothed targets so
  a small or perfectly separable sample does not produce 0 %/100 % certainties.

Both are monotone (a higher score never lowers the probability), clipped to [0, 1] and deterministic, and
``predict`` needs only numpy: scikit-learn (slow to import) is loaded by ``fit`` alone.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np

__all__ = [
    "BM25_NORMALISED",
    "DENSE_COSINE",
    "FUSED_SCORE",
    "LEXICAL_COVERAGE",
    "RANK_GAP",
    "TITLE_COVERAGE",
    "VOTE_SCORE",
    "Calibrator",
    "IsotonicCalibrator",
    "PlattCalibrator",
    "calibrator_from_dict",
    "expected_calibration_error",
]

# Feature names the matcher uses; stored in the JSON so a calibration is never applied to other features.
# The first four are properties of the (ticket, runbook) pair alone; the last three depend on the other
# runbooks a query found (relative to its best hit, or ranks), which made the same text score differently
# in another catalogue, so the shipped calibration no longer uses them (issue 12, item 3).
DENSE_COSINE = "dense_cosine"
LEXICAL_COVERAGE = "lexical_coverage"
TITLE_COVERAGE = "title_coverage"
VOTE_SCORE = "vote_score"
BM25_NORMALISED = "bm25_normalised"
FUSED_SCORE = "fused_score"
RANK_GAP = "rank_gap"

FORMAT_VERSION = 1


def _as_labels(labels: Sequence[int] | Sequence[bool] | np.ndarray, rows: int) -> np.ndarray:
    array = np.asarray(labels)
    if array.ndim != 1 or len(array) != rows:
        raise ValueError(f"expected {rows} labels in a 1-d sequence, got shape {array.shape}")
    if not np.isin(array, (0, 1)).all():
        raise ValueError("labels must be 0/1 (or False/True)")
    return array.astype(np.float64)


class Calibrator(ABC):
    """Maps scores to probabilities; fitted on labelled decisions, saved and restored as plain JSON."""

    kind: ClassVar[str]

    def __init__(self, feature_names: Sequence[str]) -> None:
        if not feature_names or len(set(feature_names)) != len(feature_names):
            raise ValueError("feature_names must be non-empty and unique")
        self._feature_names = tuple(feature_names)
        self._n_samples = 0

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self._feature_names

    @property
    def n_samples(self) -> int:
        """How many decisions the calibration was fitted on (0: not fitted)."""
        return self._n_samples

    @property
    def is_fitted(self) -> bool:
        return self._n_samples > 0

    @abstractmethod
    def fit(self, scores: np.ndarray | Sequence[float], labels: Sequence[int] | np.ndarray) -> Self:
        """Fit on ``scores`` (shape ``(n,)`` or ``(n, len(feature_names))``) and 0/1 ``labels``."""

    @abstractmethod
    def predict(self, scores: np.ndarray | Sequence[float]) -> np.ndarray:
        """Probabilities in [0, 1], one per row of ``scores``."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state; ``calibrator_from_dict`` restores it."""

    @classmethod
    @abstractmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Restore a calibrator saved with ``to_dict``; ``ValueError`` when the data is not valid."""

    def _features(self, scores: np.ndarray | Sequence[float]) -> np.ndarray:
        """Scores as an ``(n, features)`` float64 matrix, refusing NaN and a wrong feature count."""
        matrix = np.asarray(scores, dtype=np.float64)
        if matrix.ndim == 1 and len(self._feature_names) == 1:
            matrix = matrix.reshape(-1, 1)
        if matrix.ndim != 2 or matrix.shape[1] != len(self._feature_names):
            raise ValueError(
                f"expected scores with {len(self._feature_names)} feature(s) {self._feature_names}, "
                f"got shape {matrix.shape}"
            )
        if not np.isfinite(matrix).all():
            raise ValueError("scores contain NaN or infinity")
        return matrix

    def _require_fitted(self) -> None:
        if not self.is_fitted:
            raise RuntimeError(f"{type(self).__name__} is not fitted")

    def _base_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "format_version": FORMAT_VERSION,
            "feature_names": list(self._feature_names),
            "n_samples": self._n_samples,
        }

    @staticmethod
    def _check_header(data: Mapping[str, Any], kind: str) -> tuple[list[str], int]:
        if data.get("kind") != kind:
            raise ValueError(f"calibration kind is {data.get('kind')!r}, expected {kind!r}")
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"calibration format {data.get('format_version')!r} is not {FORMAT_VERSION}")
        names = data.get("feature_names")
        n_samples = data.get("n_samples")
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise ValueError("calibration feature_names must be a list of strings")
        if not isinstance(n_samples, int) or n_samples < 1:
            raise ValueError("calibration n_samples must be a positive integer")
        return names, n_samples


def _float_list(data: Mapping[str, Any], key: str) -> list[float]:
    values = data.get(key)
    if not isinstance(values, list) or not values:
        raise ValueError(f"calibration {key!r} must be a non-empty list of numbers")
    floats: list[float] = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"calibration {key!r} holds a non-number {value!r}")
        floats.append(float(value))
    return floats


class IsotonicCalibrator(Calibrator):
    """Non-decreasing piecewise-linear map of a single score, clipped outside the fitted range.

    Stored as the breakpoints scikit-learn's ``IsotonicRegression`` finds; applying it is ``np.interp``
    over them, the same interpolation scikit-learn uses with ``out_of_bounds="clip"``.
    """

    kind: ClassVar[str] = "isotonic"

    def __init__(self, feature_name: str = DENSE_COSINE) -> None:
        super().__init__((feature_name,))
        self._x = np.zeros(0)
        self._y = np.zeros(0)

    def fit(self, scores: np.ndarray | Sequence[float], labels: Sequence[int] | np.ndarray) -> Self:
        from sklearn.isotonic import IsotonicRegression

        features = self._features(scores)
        targets = _as_labels(labels, len(features))
        if len(features) < 2:
            raise ValueError("isotonic calibration needs at least 2 labelled scores")
        model = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
        model.fit(features[:, 0], targets)
        self._x = np.asarray(model.X_thresholds_, dtype=np.float64)
        self._y = np.clip(np.asarray(model.y_thresholds_, dtype=np.float64), 0.0, 1.0)
        self._n_samples = len(features)
        return self

    def predict(self, scores: np.ndarray | Sequence[float]) -> np.ndarray:
        self._require_fitted()
        features = self._features(scores)
        calibrated: np.ndarray = np.clip(np.interp(features[:, 0], self._x, self._y), 0.0, 1.0)
        return calibrated

    def to_dict(self) -> dict[str, Any]:
        self._require_fitted()
        return self._base_dict() | {"x_thresholds": self._x.tolist(), "y_thresholds": self._y.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        names, n_samples = cls._check_header(data, cls.kind)
        if len(names) != 1:
            raise ValueError("isotonic calibration has exactly one feature")
        x = np.asarray(_float_list(data, "x_thresholds"))
        y = np.asarray(_float_list(data, "y_thresholds"))
        if len(x) != len(y):
            raise ValueError("isotonic calibration x_thresholds and y_thresholds differ in length")
        if (np.diff(x) < 0).any() or (np.diff(y) < 0).any() or y.min() < 0.0 or y.max() > 1.0:
            raise ValueError(
                "isotonic calibration thresholds must be non-decreasing, with probabilities in [0, 1]"
            )
        calibrator = cls(names[0])
        calibrator._x, calibrator._y, calibrator._n_samples = x, y, n_samples
        return calibrator


class PlattCalibrator(Calibrator):
    """Logistic curve ``1 / (1 + exp(-(w·x + b)))`` over one or more features.

    Fitted as Platt (1999) describes: targets are smoothed to ``(N+ + 1) / (N+ + 2)`` and ``1 / (N- + 2)``
    instead of 1 and 0, which keeps the curve finite on separable data. scikit-learn's
    ``LogisticRegression`` takes no soft targets, so each decision enters twice, as a positive weighted by
    its target and as a negative weighted by one minus it: the same cross-entropy. Regularisation is
    negligible (``C=1e6``); the smoothing does its job.

    Monotonicity: every weight must be >= 0 (more similarity never means less likely). A feature that fits
    a negative weight on the given decisions is dropped (weight fixed to 0) and the rest refitted.
    """

    kind: ClassVar[str] = "platt"
    _C = 1e6

    def __init__(self, feature_names: Sequence[str] = (DENSE_COSINE,)) -> None:
        super().__init__(feature_names)
        self._weights = np.zeros(len(self._feature_names))
        self._intercept = 0.0

    @property
    def weights(self) -> tuple[float, ...]:
        return tuple(float(weight) for weight in self._weights)

    @property
    def intercept(self) -> float:
        return self._intercept

    def fit(self, scores: np.ndarray | Sequence[float], labels: Sequence[int] | np.ndarray) -> Self:
        from sklearn.linear_model import LogisticRegression

        features = self._features(scores)
        targets = _as_labels(labels, len(features))
        positives = float(targets.sum())
        negatives = float(len(targets) - positives)
        if positives == 0 or negatives == 0:
            raise ValueError("Platt calibration needs both accepted (1) and rejected (0) decisions")
        soft = np.where(targets == 1, (positives + 1) / (positives + 2), 1 / (negatives + 2))
        doubled_labels = np.concatenate([np.ones(len(features)), np.zeros(len(features))])
        sample_weight = np.concatenate([soft, 1 - soft])

        active = list(range(features.shape[1]))
        weights = np.zeros(features.shape[1])
        intercept = 0.0
        while active:
            doubled = np.vstack([features[:, active], features[:, active]])
            model = LogisticRegression(C=self._C, solver="lbfgs", max_iter=1000)
            model.fit(doubled, doubled_labels, sample_weight=sample_weight)
            fitted = model.coef_[0]
            if (fitted >= 0).all():
                weights = np.zeros(features.shape[1])
                weights[active] = fitted
                intercept = float(model.intercept_[0])
                break
            active = [column for column, weight in zip(active, fitted, strict=True) if weight >= 0]
        else:
            # No feature rises with acceptance: the best monotone answer is the smoothed base rate.
            base_rate = (positives + 1) / (len(targets) + 2)
            intercept = math.log(base_rate / (1 - base_rate))
        self._weights, self._intercept, self._n_samples = weights, intercept, len(features)
        return self

    def predict(self, scores: np.ndarray | Sequence[float]) -> np.ndarray:
        self._require_fitted()
        logits = self._features(scores) @ self._weights + self._intercept
        # Written with exp of a non-positive number on both branches so it never overflows.
        exp_neg = np.exp(-np.abs(logits))
        probs = np.where(logits >= 0, 1 / (1 + exp_neg), exp_neg / (1 + exp_neg))
        return np.clip(probs, 0.0, 1.0)

    def to_dict(self) -> dict[str, Any]:
        self._require_fitted()
        return self._base_dict() | {"weights": self._weights.tolist(), "intercept": self._intercept}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        names, n_samples = cls._check_header(data, cls.kind)
        weights = _float_list(data, "weights")
        intercept = _float_list({"intercept": [data.get("intercept")]}, "intercept")[0]
        if len(weights) != len(names):
            raise ValueError("Platt calibration needs one weight per feature")
        if min(weights) < 0:
            raise ValueError("Platt calibration weights must be >= 0 (monotone)")
        calibrator = cls(names)
        calibrator._weights, calibrator._intercept = np.asarray(weights), intercept
        calibrator._n_samples = n_samples
        return calibrator


_CALIBRATORS: dict[str, type[Calibrator]] = {
    IsotonicCalibrator.kind: IsotonicCalibrator,
    PlattCalibrator.kind: PlattCalibrator,
}


def calibrator_from_dict(data: Mapping[str, Any]) -> Calibrator:
    """Restore whichever calibrator ``data`` describes (its ``kind``); ``ValueError`` if unknown/invalid."""
    kind = data.get("kind")
    calibrator_type = _CALIBRATORS.get(kind) if isinstance(kind, str) else None
    if calibrator_type is None:
        raise ValueError(f"unknown calibration kind {kind!r}; known: {sorted(_CALIBRATORS)}")
    return calibrator_type.from_dict(data)


def expected_calibration_error(
    probs: np.ndarray | Sequence[float], labels: np.ndarray | Sequence[int], n_bins: int = 10
) -> float:
    """Average gap between predicted probability and observed acceptance rate, over equal-width bins.

    Each bin's gap is weighted by its share of the predictions; 0 is perfect. Probability 1.0 falls in the
    last bin.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be positive, got {n_bins}")
    predicted = np.asarray(probs, dtype=np.float64)
    if predicted.ndim != 1:
        raise ValueError(f"probs must be 1-d, got shape {predicted.shape}")
    observed = _as_labels(labels, len(predicted))
    if not len(predicted):
        raise ValueError("expected_calibration_error needs at least one prediction")
    if not np.isfinite(predicted).all() or predicted.min() < 0 or predicted.max() > 1:
        raise ValueError("probs must lie in [0, 1]")
    bins = np.minimum((predicted * n_bins).astype(np.int64), n_bins - 1)
    error = 0.0
    for bin_index in range(n_bins):
        in_bin = bins == bin_index
        count = int(in_bin.sum())
        if count:
            error += count / len(predicted) * abs(predicted[in_bin].mean() - observed[in_bin].mean())
    return float(error)
