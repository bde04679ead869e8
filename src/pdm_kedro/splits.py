"""Splitting a machine's history by whole episodes: shared by every data source stage
(``data_generation``, ``data_ingestion``), so no source stage imports another."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from pdm_kedro import contract as c

logger = logging.getLogger(__name__)


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


# ---------------------------------------------------------------------------------------------
# Retraining on the training data plus the matured production data (docs/continuous_training.md)


def _load_partitions(partitions: dict[str, Any] | None) -> pd.DataFrame:
    frames = [part() if callable(part) else part for _, part in sorted((partitions or {}).items())]
    frames = [f for f in frames if f is not None and len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def collect_matured_production(
    prediction_log: dict[str, Any] | None,
    production_labels: dict[str, Any] | None,
    machine: dict[str, Any],
    retraining_data: dict[str, Any],
) -> pd.DataFrame:
    """The production rows whose labels have matured: the scored readings of the prediction log
    (the rows the scoring gate admitted) joined with the labels that arrived in ``labels/``, on
    (episode, timestamp). An empty frame when ``retraining_data.use_production`` is false or
    nothing has matured yet.

    Labels without a scored reading (its row was rejected or quarantined at scoring) are left
    out, and counted in the log. Raises ValueError (naming the machine, the key columns and rows)
    when two labels share a key.
    """
    machine_id = machine.get("machine_id", "?")
    if not retraining_data.get("use_production", False):
        return pd.DataFrame()
    labels = _load_partitions(production_labels)
    log = _load_partitions(prediction_log)
    if labels.empty or log.empty:
        return pd.DataFrame()
    keys = [c.TIMESTAMP, c.EPISODE]
    duplicated = labels.duplicated(keys)
    if duplicated.any():
        raise ValueError(
            f"{machine_id}: labels/ holds {int(duplicated.sum())} rows twice for the same "
            f"({', '.join(keys)}), e.g. rows {list(labels.index[duplicated][:5])}"
        )
    log = log.drop(columns=[col for col in c.LABEL_COLUMNS if col in log])
    log = log.drop_duplicates(keys, keep="last")
    joined = labels[[*keys, *c.LABEL_COLUMNS]].merge(log, on=keys, how="inner")
    unscored = len(labels) - len(joined)
    if unscored:
        logger.info(
            "%s: %d matured label rows have no scored reading (rejected or quarantined at "
            "scoring): left out of retraining",
            machine_id,
            unscored,
        )
    return joined.sort_values([c.TIMESTAMP, c.EPISODE], kind="stable").reset_index(drop=True)


PRODUCTION_SPLITS = ("train", "time_order")  # where retraining puts the earlier production episodes


def _holdout_episodes(production: pd.DataFrame, holdout_days: float) -> np.ndarray:
    """The newest whole matured episodes that start within ``holdout_days`` of the newest
    labelled reading (at least the newest episode)."""
    first = production.groupby(c.EPISODE)[c.TIMESTAMP].min().sort_values()
    newest = pd.Timestamp(production[c.TIMESTAMP].max())
    cutoff = newest - pd.Timedelta(days=float(holdout_days))
    chosen = first[first >= cutoff].index.to_numpy()
    return chosen if len(chosen) else first.index.to_numpy()[-1:]


def _oldest_episodes(
    frame: pd.DataFrame, fraction: float, max_episodes: int | None = None
) -> tuple[pd.DataFrame, int]:
    """The oldest ``fraction`` of the whole episodes of ``frame``, at most ``max_episodes``
    (at least one)."""
    order = frame.groupby(c.EPISODE, sort=False)[c.TIMESTAMP].min().sort_values().index
    keep = max(1, round(len(order) * fraction))
    if max_episodes is not None:
        keep = max(1, min(keep, int(max_episodes)))
    if keep >= len(order):
        return frame, len(order)
    return frame[frame[c.EPISODE].isin(order[:keep])].reset_index(drop=True), keep


def _weight_episodes(
    train: pd.DataFrame, episode_ids: np.ndarray, weight: int, *others: pd.DataFrame
) -> pd.DataFrame:
    """``train`` with its rows of ``episode_ids`` present ``weight`` times: each extra copy a
    whole episode under a new id (after every id of ``train`` and ``others``), so window
    features stay per episode. For the row-wise learners, a row present k times weighs k times
    in the loss: the recent episodes count beside many older ones."""
    chosen = train[train[c.EPISODE].isin(episode_ids)]
    if weight <= 1 or chosen.empty:
        return train
    top = max(int(f[c.EPISODE].max()) for f in (train, *others) if len(f)) + 1
    copies = [chosen.assign(**{c.EPISODE: chosen[c.EPISODE] + top * k}) for k in range(1, weight)]
    return (
        pd.concat([train, *copies], ignore_index=True)
        .sort_values([c.TIMESTAMP, c.EPISODE], kind="stable")
        .reset_index(drop=True)
    )


def _span(frame: pd.DataFrame) -> dict[str, Any]:
    stamps = pd.to_datetime(frame[c.TIMESTAMP]) if len(frame) else None
    return {
        "rows": len(frame),
        "episodes": int(frame[c.EPISODE].nunique()) if len(frame) else 0,
        "from": stamps.min().isoformat() if stamps is not None else None,
        "to": stamps.max().isoformat() if stamps is not None else None,
    }


def extend_splits_with_production(  # noqa: PLR0913 (three splits, the production rows, config)
    split_train: pd.DataFrame,
    split_val: pd.DataFrame,
    split_test: pd.DataFrame,
    production: pd.DataFrame,
    splits: dict[str, float],
    retraining_data: dict[str, Any],
    machine: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The raw splits a training run uses, and a report of where their rows came from.

    Without matured production rows (or ``use_production`` false) the source's own splits pass
    through. With them, the newest matured production episodes (those starting within
    ``holdout_days`` of the newest labelled reading) become the test split: the window promotion
    re-scores champion and challenger on, which neither was trained on. The earlier matured
    production episodes are trained on (``production_split`` "train", the default), and the
    source's episodes (train, val and test splits) are re-split by whole episodes in time order
    into train and val with the ``splits`` train:val ratio (of all episodes), val the newest
    source episodes. With ``production_split`` "time_order" every older labelled episode,
    production ones too, is re-split in time order, val the newest: at full size the few
    matured production episodes all land in val and the challenger trains on none of them.
    ``production_weight`` k > 1 repeats the trained production episodes k times (new ids).
    ``train_fraction`` < 1 keeps only the oldest share of the train episodes, and
    ``train_episodes`` (when set) at most that many of them (a deliberately weaker challenger:
    too little data, and none of the recent).
    """
    machine_id = machine.get("machine_id", "?")
    use = bool(retraining_data.get("use_production", False))
    fraction = float(retraining_data.get("train_fraction", 1.0))
    if not 0.0 < fraction <= 1.0:
        raise ValueError(
            f"{machine_id}: retraining_data.train_fraction must be in (0, 1], got {fraction}"
        )
    max_episodes = retraining_data.get("train_episodes")
    if max_episodes is not None and int(max_episodes) < 1:
        raise ValueError(
            f"{machine_id}: retraining_data.train_episodes must be null or >= 1, got {max_episodes}"
        )
    report: dict[str, Any] = {
        "machine_id": machine_id,
        "use_production": use,
        "holdout_days": retraining_data.get("holdout_days"),
        "train_fraction": fraction,
        "train_episodes": max_episodes,
    }
    if not use or production.empty:
        train, kept = _oldest_episodes(split_train, fraction, max_episodes)
        report |= {
            "source": "the source's own splits"
            + ("" if not use else " (no matured labelled production rows yet)"),
            "production_rows": 0,
            "train_episodes_kept": kept,
        }
        parts = {"train": train, "val": split_val, "test": split_test}
        return (
            parts["train"],
            parts["val"],
            parts["test"],
            report | {name: _span(part) for name, part in parts.items()},
        )
    columns = list(split_train.columns)
    missing = [col for col in columns if col not in production]
    if missing:
        raise ValueError(
            f"{machine_id}: the matured production rows (prediction log joined with labels/) "
            f"lack the raw columns {missing}"
        )
    production = production[columns]
    known = set(pd.concat([split_train, split_val, split_test])[c.EPISODE].unique())
    clash = sorted(int(e) for e in set(production[c.EPISODE].unique()) & known)
    if clash:
        raise ValueError(
            f"{machine_id}: production episodes {clash[:5]} reuse episode ids of the training "
            "splits; production episodes must be numbered after the source's"
        )
    holdout_ids = _holdout_episodes(production, float(retraining_data.get("holdout_days", 7)))
    holdout = production[production[c.EPISODE].isin(holdout_ids)].reset_index(drop=True)
    earlier = production[~production[c.EPISODE].isin(holdout_ids)]
    placement = str(retraining_data.get("production_split", "train"))
    if placement not in PRODUCTION_SPLITS:
        raise ValueError(
            f"{machine_id}: retraining_data.production_split must be one of "
            f"{list(PRODUCTION_SPLITS)}, got {placement!r}"
        )
    source = pd.concat([split_train, split_val, split_test], ignore_index=True)
    # "train": the earlier matured production episodes are trained on and val is the newest
    # source episodes; "time_order": every labelled episode in time order, val the newest (at
    # full size the few production episodes all land in val and none is trained on)
    history = pd.concat([source, earlier], ignore_index=True)
    pool = source if placement == "train" else history
    order = pool.groupby(c.EPISODE, sort=False)[c.TIMESTAMP].min().sort_values().index
    n = len(order) + (earlier[c.EPISODE].nunique() if placement == "train" else 0)
    ratio = float(splits["val"]) / (float(splits["train"]) + float(splits["val"]))
    n_val = max(1, round(n * ratio))
    if len(order) - n_val < 1 and not (placement == "train" and len(earlier)):
        raise ValueError(f"{machine_id}: {n} labelled episodes leave none to train on")
    val_ids = order[max(len(order) - n_val, 0) :]
    val = pool[pool[c.EPISODE].isin(val_ids)].reset_index(drop=True)
    train = history[~history[c.EPISODE].isin(val_ids)].reset_index(drop=True)
    train, kept = _oldest_episodes(train, fraction, max_episodes)
    trained_production = int(train[c.EPISODE].isin(earlier[c.EPISODE].unique()).sum())
    weight = int(retraining_data.get("production_weight", 1))
    if weight < 1:
        raise ValueError(
            f"{machine_id}: retraining_data.production_weight must be an integer >= 1, got {weight}"
        )
    train = _weight_episodes(train, earlier[c.EPISODE].unique(), weight, holdout)
    report |= {
        "source": "the source's splits plus the matured production rows; the newest matured "
        "production episodes held out as the test split",
        "production_rows": len(production),
        "production_split": placement,
        "production_weight": weight,
        "production_rows_trained": trained_production,
        "production_rows_val": int(val[c.EPISODE].isin(earlier[c.EPISODE].unique()).sum()),
        "train_episodes_kept": kept,
        "holdout_episodes": [int(e) for e in holdout_ids],
    }
    parts = {"train": train, "val": val, "test": holdout}
    logger.info(
        "%s: retraining on %d rows (%d matured production rows), val %d, holdout %d rows from %s",
        machine_id,
        len(train),
        trained_production,
        len(val),
        len(holdout),
        _span(holdout)["from"],
    )
    return train, val, holdout, report | {name: _span(part) for name, part in parts.items()}


def align_hidden_state(
    raw_train: pd.DataFrame,
    raw_val: pd.DataFrame,
    raw_test: pd.DataFrame,
    hidden_train: pd.DataFrame,
    hidden_val: pd.DataFrame,
    hidden_test: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The simulator's hidden state of each raw split's rows, row for row. Production rows have
    none (a plant does not see its latent wear): when any row lacks it, every split gets an empty
    frame (the measured ceiling is then unavailable, never computed on part of the rows)."""
    hidden = pd.concat([hidden_train, hidden_val, hidden_test], ignore_index=True)
    keys = [c.TIMESTAMP, c.EPISODE]
    empty = hidden.iloc[0:0].reset_index(drop=True)
    out = []
    for raw in (raw_train, raw_val, raw_test):
        rows = raw[keys].merge(hidden, on=keys, how="left", validate="one_to_one")
        value_columns = [col for col in hidden.columns if col not in keys]
        if hidden.empty or rows[value_columns].isna().all(axis=1).any():
            return empty, empty.copy(), empty.copy()
        out.append(rows[hidden.columns])
    return out[0], out[1], out[2]
