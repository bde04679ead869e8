"""Splitting a machine's history by whole episodes: shared by every data source stage
(``data_generation``, ``data_ingestion``), so no source stage imports another."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pdm_kedro import contract as c


def split_by_episode(
    history: pd.DataFrame, splits: dict[str, float]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split whole episodes in time order: the first ones train, then val, the last ones test.

    No episode is shared between splits, so no window feature or label leaks across them.
    """
    first_seen = history.groupby(c.EPISODE, sort=False)[c.TIMESTAMP].min().sort_values()
    episodes = first_seen.index.to_numpy()
    n = len(episodes)
    if n < 3:
        raise ValueError(
            f"split_by_episode needs at least 3 episodes to make train/val/test, got {n}"
        )
    total = splits["train"] + splits["val"] + splits["test"]
    n_val = max(1, round(n * splits["val"] / total))
    n_test = max(1, round(n * splits["test"] / total))
    n_train = n - n_val - n_test
    if n_train < 1:
        raise ValueError(f"split fractions {splits} leave no training episode out of {n}")
    parts = np.split(episodes, [n_train, n_train + n_val])
    return tuple(history[history[c.EPISODE].isin(part)].reset_index(drop=True) for part in parts)  # type: ignore[return-value]
