"""Decision agreement of a native model and its ONNX export, with the tie-at-threshold rule.

The ONNX graph computes in float32, the native model (mostly) in float64: a score lying on the
decision threshold, or within float32 rounding of it, can land on either side in the export
without any real disagreement (issue 18: 19 test scores exactly on a threshold failed a run).
Such flips count as agreeing and are counted as ties; a flip of a score farther from the
threshold than float32 rounding is a real mismatch.
"""

from __future__ import annotations

import numpy as np

ROUNDING_ULPS = 4  # float32 steps around the threshold that count as "on the threshold"


def threshold_rounding(threshold: float, scores: np.ndarray) -> np.ndarray:
    """Half-width of the band around ``threshold`` within which float32 rounding can flip a
    decision: a few float32 steps at the larger of ``|threshold|`` and ``|score|``."""
    magnitude = np.maximum(abs(float(threshold)), np.abs(np.asarray(scores, dtype=np.float64)))
    return ROUNDING_ULPS * np.spacing(magnitude.astype(np.float32)).astype(np.float64)


def decision_agreement(
    native: np.ndarray, exported: np.ndarray, threshold: float | None
) -> dict[str, object]:
    """Rows whose decisions (``score >= threshold``) differ, ties at the threshold set apart.

    Returns ``mismatched`` (row indices of real flips), ``ties`` (row indices of flips within
    float32 rounding of the threshold: agreeing) and ``compared`` (False without a threshold).
    """
    empty = np.array([], dtype=np.int64)
    if threshold is None:
        return {"compared": False, "mismatched": empty, "ties": empty}
    native = np.asarray(native, dtype=np.float64)
    exported = np.asarray(exported, dtype=np.float64)
    flipped = (native >= threshold) != (exported >= threshold)
    band = threshold_rounding(threshold, native)
    near = (np.abs(native - threshold) <= band) | (np.abs(exported - threshold) <= band)
    return {
        "compared": True,
        "mismatched": np.flatnonzero(flipped & ~near),
        "ties": np.flatnonzero(flipped & near),
    }
