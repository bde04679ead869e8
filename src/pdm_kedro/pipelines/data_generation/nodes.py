"""Simulate run-to-failure sensor histories for one machine and split them by episode.

The simulator lives in :mod:`pdm_kedro.core.simulator` (the production stream continues it);
this stage's nodes are its history function and the shared episode split.
"""

from pdm_kedro.core.simulator import (  # noqa: F401 (this stage's nodes, helpers for console.errors)
    FAILURE_MODE,
    HIDDEN_COLUMNS,
    HOURS_SINCE_REPAIR,
    LATENT_WEAR,
    _episode_lengths,
    machine_rng,
    simulate_machine_history,
    simulate_machine_history_and_hidden_state,
)
from pdm_kedro.splits import split_by_episode  # noqa: F401 (this stage's split node)
