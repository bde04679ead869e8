"""The RUL answer is at most the cap while the failure alarm is on, the model's value otherwise."""

import numpy as np
import pytest

from pdm_kedro.core.rul_answer import rul_at_alarm


def test_alarmed_rows_are_capped_and_the_others_untouched():
    rul = np.array([300.0, 120.0, 30.0, 48.0, 500.0])
    alarm = np.array([True, True, True, True, False])
    answer, capped = rul_at_alarm(rul, alarm, 48.0)
    np.testing.assert_array_equal(answer, [48.0, 48.0, 30.0, 48.0, 500.0])
    # only where the value changed: an alarm with an RUL already inside the horizon is not capped
    np.testing.assert_array_equal(capped, [True, True, False, False, False])


def test_no_rule_gives_the_model_value():
    rul = np.array([300.0, 10.0])
    answer, capped = rul_at_alarm(rul, np.array([True, False]), None)
    np.testing.assert_array_equal(answer, rul)
    assert not capped.any()


def test_one_row_and_bad_inputs():
    answer, capped = rul_at_alarm(np.float64(90.0), np.bool_(True), 48)
    assert float(answer) == 48.0 and bool(capped)
    with pytest.raises(ValueError, match="2 RUL values but 3 alarm decisions"):
        rul_at_alarm(np.zeros(2), np.zeros(3, dtype=bool), 48.0)
    with pytest.raises(ValueError, match="cap_at_alarm_hours must be"):
        rul_at_alarm(np.zeros(2), np.zeros(2, dtype=bool), -1.0)
