"""The tie-at-threshold rule of the ONNX parity check (issue 18)."""

import numpy as np

from pdm_kedro.evaluation.parity import decision_agreement, threshold_rounding


def test_scores_exactly_on_the_threshold_do_not_fail_parity():
    threshold = 0.37
    native = np.array([0.1, threshold, threshold, 0.9])
    # float32 rounding puts the exported copies of the two threshold scores just below it
    exported = native.copy()
    exported[1:3] = np.nextafter(np.float32(threshold), np.float32(0)).astype(np.float64)
    got = decision_agreement(native, exported, threshold)
    assert got["compared"] and got["mismatched"].size == 0
    assert got["ties"].tolist() == [1, 2]


def test_a_real_flip_far_from_the_threshold_still_fails():
    threshold = 0.37
    native = np.array([0.1, 0.5, 0.9])
    exported = np.array([0.1, 0.2, 0.9])  # row 1 flips and is far from the threshold
    got = decision_agreement(native, exported, threshold)
    assert got["mismatched"].tolist() == [1] and got["ties"].size == 0
    # just outside the float32 band is already a real flip
    band = threshold_rounding(threshold, np.array([threshold]))[0]
    got = decision_agreement(
        np.array([threshold + 3 * band]), np.array([threshold - 3 * band]), threshold
    )
    assert got["mismatched"].tolist() == [0]


def test_no_threshold_compares_no_decisions():
    got = decision_agreement(np.array([1.0]), np.array([5.0]), None)
    assert not got["compared"] and got["mismatched"].size == 0 and got["ties"].size == 0
