"""PCA T²+Q: a reconstruction-based detector fitted on healthy rows (scikit-learn estimator).

A PCA of the healthy rows keeps the fewest components that explain ``explained_variance`` of
their variance (the principal subspace). Each row then gets two statistics:

- Hotelling's T², ``sum_j t_j² / lambda_j``: how far the row lies *along* the retained components,
  each in units of its healthy variance ``lambda_j``;
- Q (squared prediction error), ``||x - x_hat||²``: how far the row lies *off* the subspace (the
  part the retained components cannot reconstruct).

Each is divided by its own ``quantile`` on the healthy fitting rows and the two are combined by
``sum`` or ``max`` (``combine``). ``score_samples`` is ``-log(1 + combination)``: the logarithm
is monotone (ranks, thresholds, F1 and false-alarm rates are those of the combination itself)
and keeps a far-off row's score small enough that float32 serving stays within the family's
absolute parity tolerance. ``decision_function`` is ``score_samples - offset_`` (negative for
outliers, as IsolationForest and OneClassSVM), ``offset_`` being the healthy ``(1 - quantile)``
quantile of ``score_samples``. The family's anomaly score is ``-decision_function``, so the
threshold rules treat this detector as the others.

The fitted state is plain arrays (``mean_``, ``components_``, ``explained_variance_``,
``t2_scale_``, ``q_scale_``, ``offset_``): the edge export writes them into a small ONNX graph
(``pdm_onnx_graph`` names the converter the export dispatches on; not ``onnx_converter``, a
name skl2onnx would call).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.decomposition import PCA
from sklearn.utils.validation import check_is_fitted

COMBINE = ("sum", "max")


class PcaT2QDetector(OutlierMixin, BaseEstimator):
    """Hotelling's T² plus Q (squared reconstruction error) of a PCA fitted on healthy rows.

    Args:
        explained_variance: share of the healthy variance the retained components explain
            (0 < v < 1; the fewest components reaching it), or a whole number of components.
        combine: ``sum`` or ``max`` of ``T²/q(T²)`` and ``Q/q(Q)``.
        quantile: healthy fitting-row quantile each statistic (and the combination) is scaled by.
        random_state: seed of the PCA (the full SVD is deterministic; kept for uniformity).
    """

    pdm_onnx_graph = "pdm_kedro_pca_t2q"

    def __init__(
        self,
        explained_variance: float = 0.9,
        combine: str = "sum",
        quantile: float = 0.99,
        random_state: int | None = None,
    ) -> None:
        self.explained_variance = explained_variance
        self.combine = combine
        self.quantile = quantile
        self.random_state = random_state

    def _check_settings(self) -> None:
        if self.combine not in COMBINE:
            raise ValueError(
                f"anomaly.detectors.pca_t2q.combine must be one of {COMBINE}: {self.combine!r}"
            )
        if not 0.0 < float(self.quantile) < 1.0:
            raise ValueError(
                f"anomaly.detectors.pca_t2q.quantile must lie in (0, 1): {self.quantile!r}"
            )
        v = self.explained_variance
        if not (0.0 < float(v) < 1.0 or (float(v) >= 1 and float(v) == int(v))):
            raise ValueError(
                "anomaly.detectors.pca_t2q.explained_variance must be a share in (0, 1) or a "
                f"whole number of components: {v!r}"
            )

    def fit(self, X: Any, y: Any = None) -> PcaT2QDetector:  # noqa: ARG002
        """Fit the PCA on the (healthy) rows ``X`` and the quantile scales of T², Q and both."""
        self._check_settings()
        x = np.asarray(X, dtype=np.float64)
        v = float(self.explained_variance)
        n_components = v if v < 1.0 else min(int(v), x.shape[1])
        pca = PCA(n_components=n_components, svd_solver="full", random_state=self.random_state)
        pca.fit(x)
        self.n_features_in_ = x.shape[1]
        self.mean_ = pca.mean_.astype(np.float64)
        self.components_ = pca.components_.astype(np.float64)
        # a direction without healthy spread: floor its variance (T² stays finite)
        floor = 1e-12 * max(float(np.sum(pca.explained_variance_)), 1.0)
        self.explained_variance_ = np.maximum(pca.explained_variance_.astype(np.float64), floor)
        self.n_components_ = int(self.components_.shape[0])
        self.t2_scale_ = 1.0
        self.q_scale_ = 1.0
        t2, q = self.statistics(x)
        q_floor = 1e-12 * max(float(np.sum(np.var(x, axis=0))), 1.0)
        self.t2_scale_ = max(float(np.quantile(t2, self.quantile)), floor)
        self.q_scale_ = max(float(np.quantile(q, self.quantile)), q_floor)
        self.offset_ = 0.0
        self.offset_ = float(np.quantile(self.score_samples(x), 1.0 - self.quantile))
        return self

    def statistics(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Hotelling's T² and Q of each row of ``X`` (raw, not yet scaled by their quantiles)."""
        check_is_fitted(self, "components_")
        centred = np.asarray(X, dtype=np.float64) - self.mean_
        projected = centred @ self.components_.T
        t2 = np.sum(projected**2 / self.explained_variance_, axis=1)
        residual = centred - projected @ self.components_
        q = np.sum(residual**2, axis=1)
        return t2, q

    def score_samples(self, X: Any) -> np.ndarray:
        """``-log(1 + c)``, ``c`` the combination of ``T²/t2_scale_`` and ``Q/q_scale_``
        (lower = more abnormal)."""
        t2, q = self.statistics(X)
        a, b = t2 / self.t2_scale_, q / self.q_scale_
        combined = a + b if self.combine == "sum" else np.maximum(a, b)
        return -np.log1p(combined)

    def decision_function(self, X: Any) -> np.ndarray:
        """``score_samples - offset_``: negative beyond the healthy ``quantile`` of the combination."""
        return self.score_samples(X) - self.offset_

    def predict(self, X: Any) -> np.ndarray:
        """1 (inlier) where ``decision_function >= 0``, else -1."""
        return np.where(self.decision_function(X) >= 0, 1, -1)
