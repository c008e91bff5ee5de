"""Calibration: monotone, bounded, deterministic, JSON round trip, and it actually calibrates."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.matching.calibration import (
    BM25_NORMALISED,
    DENSE_COSINE,
    RANK_GAP,
    Calibrator,
    IsotonicCalibrator,
    PlattCalibrator,
    calibrator_from_dict,
    expected_calibration_error,
)


def miscalibrated_sample(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Cosine-like scores in [0.2, 0.9] whose true acceptance rate is a steep curve, not the score itself.

    Read as probabilities, the raw scores are over-confident in the middle and under-confident at the top,
    which is how raw cosine similarities behave.
    """
    rng = np.random.default_rng(seed)
    scores = rng.uniform(0.2, 0.9, count)
    true_probability = 1 / (1 + np.exp(-(scores - 0.6) * 18))
    labels = (rng.uniform(size=count) < true_probability).astype(int)
    return scores, labels


@pytest.fixture(scope="module")
def train() -> tuple[np.ndarray, np.ndarray]:
    return miscalibrated_sample(3000, seed=1)


@pytest.fixture(scope="module")
def test_set() -> tuple[np.ndarray, np.ndarray]:
    return miscalibrated_sample(3000, seed=2)


CALIBRATOR_TYPES = [IsotonicCalibrator, PlattCalibrator]


@pytest.mark.parametrize("calibrator_type", CALIBRATOR_TYPES)
def test_fitting_lowers_ece_on_held_out_data(
    calibrator_type: type[Calibrator],
    train: tuple[np.ndarray, np.ndarray],
    test_set: tuple[np.ndarray, np.ndarray],
) -> None:
    scores, labels = test_set
    raw_ece = expected_calibration_error(scores, labels)
    calibrator = calibrator_type().fit(*train)
    fitted_ece = expected_calibration_error(calibrator.predict(scores), labels)
    assert raw_ece > 0.1
    assert fitted_ece < 0.04
    assert fitted_ece < raw_ece / 3


@pytest.mark.parametrize("calibrator_type", CALIBRATOR_TYPES)
def test_monotone_bounded_deterministic(
    calibrator_type: type[Calibrator], train: tuple[np.ndarray, np.ndarray]
) -> None:
    grid = np.linspace(-2.0, 3.0, 2001)  # far outside the fitted range on both sides
    first = calibrator_type().fit(*train).predict(grid)
    second = calibrator_type().fit(*train).predict(grid)
    assert np.array_equal(first, second)
    assert (np.diff(first) >= 0).all()
    assert first.min() >= 0.0
    assert first.max() <= 1.0
    assert first[0] < 0.05
    assert first[-1] > 0.95


@pytest.mark.parametrize("calibrator_type", CALIBRATOR_TYPES)
def test_json_roundtrip_predicts_identically(
    calibrator_type: type[Calibrator], train: tuple[np.ndarray, np.ndarray]
) -> None:
    calibrator = calibrator_type().fit(*train)
    shipped = json.loads(json.dumps(calibrator.to_dict()))
    restored = calibrator_from_dict(shipped)
    assert type(restored) is calibrator_type
    assert restored.feature_names == calibrator.feature_names
    assert restored.n_samples == 3000
    grid = np.linspace(0, 1, 101)
    assert np.array_equal(restored.predict(grid), calibrator.predict(grid))


def test_isotonic_matches_sklearn_clip(train: tuple[np.ndarray, np.ndarray]) -> None:
    from sklearn.isotonic import IsotonicRegression

    grid = np.linspace(-1, 2, 301)
    reference = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(*train).predict(grid)
    np.testing.assert_allclose(IsotonicCalibrator().fit(*train).predict(grid), reference, atol=1e-12)


def test_platt_on_a_feature_vector() -> None:
    rng = np.random.default_rng(3)
    count = 2000
    dense = rng.uniform(0.2, 0.9, count)
    bm25 = rng.uniform(0, 1, count)
    gap = rng.uniform(0, 0.3, count)
    logit = (dense - 0.55) * 12 + (bm25 - 0.5) * 3 + gap * 4
    labels = (rng.uniform(size=count) < 1 / (1 + np.exp(-logit))).astype(int)
    features = np.column_stack([dense, bm25, gap])

    calibrator = PlattCalibrator((DENSE_COSINE, BM25_NORMALISED, RANK_GAP)).fit(features, labels)
    assert all(weight > 0 for weight in calibrator.weights)
    probs = calibrator.predict(features)
    assert expected_calibration_error(probs, labels) < 0.05
    raised = features.copy()
    raised[:, 1] += 0.2
    assert (calibrator.predict(raised) >= probs).all()
    with pytest.raises(ValueError, match="3 feature"):
        calibrator.predict(dense)


def test_platt_drops_a_feature_that_would_break_monotonicity() -> None:
    rng = np.random.default_rng(4)
    dense = rng.uniform(0.2, 0.9, 1000)
    misleading = rng.uniform(0, 1, 1000)
    logit = (dense - 0.55) * 12 - misleading * 3  # a higher "misleading" score lowers acceptance
    labels = (rng.uniform(size=1000) < 1 / (1 + np.exp(-logit))).astype(int)
    calibrator = PlattCalibrator((DENSE_COSINE, "misleading")).fit(
        np.column_stack([dense, misleading]), labels
    )
    assert calibrator.weights[0] > 0
    assert calibrator.weights[1] == 0


def test_platt_separable_data_stays_finite() -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    calibrator = PlattCalibrator().fit(scores, [0, 0, 0, 1, 1, 1])
    probs = calibrator.predict(np.array([0.0, 0.5, 1.0]))
    assert 0 < probs[0] < 0.5 < probs[2] < 1
    assert np.isfinite(calibrator.weights).all()


def test_platt_with_no_rising_feature_predicts_the_base_rate() -> None:
    calibrator = PlattCalibrator().fit([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1])
    assert calibrator.weights == (0.0,)
    np.testing.assert_allclose(calibrator.predict([0.0, 1.0]), 0.5)


@pytest.mark.parametrize(
    ("calibrator", "scores", "labels", "message"),
    [
        (PlattCalibrator(), [0.1, 0.9], [1, 1], "both"),
        (IsotonicCalibrator(), [0.1, 0.9], [0, 2], "0/1"),
        (IsotonicCalibrator(), [0.1, np.nan], [0, 1], "NaN"),
        (IsotonicCalibrator(), [[0.1, 0.2]], [1], "feature"),
        (IsotonicCalibrator(), [0.1, 0.2], [1], "labels"),
    ],
)
def test_fit_refuses_bad_input(calibrator: Calibrator, scores: object, labels: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        calibrator.fit(scores, labels)  # type: ignore[arg-type]


def test_unfitted_calibrator_refuses_to_predict() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        IsotonicCalibrator().predict([0.5])
    with pytest.raises(RuntimeError, match="not fitted"):
        PlattCalibrator().to_dict()


@pytest.mark.parametrize(
    "data",
    [
        {"kind": "magic"},
        {"kind": "isotonic", "format_version": 99},
        {
            "kind": "isotonic",
            "format_version": 1,
            "feature_names": ["s"],
            "n_samples": 3,
            "x_thresholds": [0.1, 0.5],
            "y_thresholds": [0.9, 0.2],
        },
        {
            "kind": "platt",
            "format_version": 1,
            "feature_names": ["s"],
            "n_samples": 3,
            "weights": [-1.0],
            "intercept": 0.0,
        },
        {
            "kind": "platt",
            "format_version": 1,
            "feature_names": ["s"],
            "n_samples": 3,
            "weights": [1.0],
            "intercept": "x",
        },
    ],
)
def test_from_dict_refuses_invalid_data(data: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"calibration|kind"):
        calibrator_from_dict(data)


def test_expected_calibration_error_values() -> None:
    assert expected_calibration_error([1.0, 1.0, 0.0, 0.0], [1, 1, 0, 0]) == 0.0
    assert expected_calibration_error([0.9, 0.9], [0, 0]) == pytest.approx(0.9)
    # Two bins: 0.25 vs 0.5 observed (gap 0.25) and 0.75 vs 0.5 observed (gap 0.25), equally weighted.
    assert expected_calibration_error([0.25, 0.25, 0.75, 0.75], [0, 1, 1, 0], n_bins=2) == pytest.approx(0.25)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        expected_calibration_error([1.5], [1])
    with pytest.raises(ValueError, match="n_bins"):
        expected_calibration_error([0.5], [1], n_bins=0)


def test_the_shipped_calibration_reads_pair_scores_only() -> None:
    """Issue 12, item 3: the default confidence must not depend on the other runbooks a query found."""
    from core.matching.engine import FEATURES, load_default_calibrator
    from core.resources import default_calibration_path

    shipped = load_default_calibrator(default_calibration_path())
    assert isinstance(shipped, PlattCalibrator)
    assert shipped.feature_names == FEATURES
    assert BM25_NORMALISED not in shipped.feature_names and "fused_score" not in shipped.feature_names
    assert all(weight > 0 for weight in shipped.weights)  # each signal raises the confidence
