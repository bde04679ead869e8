"""explain(): one line for a user's mistake, None for a bug; the smallest rows_per_machine works."""

from kedro.io import DatasetError

from pdm_kedro.console.errors import explain, smallest_rows_per_machine
from pdm_kedro.pipelines.data_generation.nodes import simulate_machine_history, split_by_episode
from pdm_kedro.pipelines.data_validation.nodes import DataValidationError


def test_bugs_keep_their_traceback():
    assert explain(KeyError("x")) is None
    assert explain(ValueError("something else")) is None


def test_data_errors_keep_type_and_rows():
    message = explain(DataValidationError("Machine m1, split val: column 'a' missing in rows [3]"))
    assert message == "DataValidationError: Machine m1, split val: column 'a' missing in rows [3]"


def test_missing_file_names_dataset_and_path():
    cause = FileNotFoundError(
        2, "No such file", "/tmp/x/02_intermediate/m1/validated_train.parquet"
    )
    error = DatasetError("m1.validated_train: Failed while loading data from dataset X")
    error.__cause__ = cause
    message = explain(error)
    assert message.startswith("Cannot load m1.validated_train: /tmp/x/02_intermediate/m1/")
    assert "is missing. Run the stage that writes it first" in message


def test_smallest_rows_per_machine_is_exactly_the_first_that_works(machine, tiny_params):
    simulation = tiny_params["simulation"]
    labels = tiny_params["labels"]
    smallest = smallest_rows_per_machine(machine, simulation)
    splits = tiny_params["splits"]
    enough = simulate_machine_history(machine, simulation | {"rows_per_machine": smallest}, labels)
    assert enough["episode_id"].nunique() >= 3
    split_by_episode(enough, splits)
    too_few = simulate_machine_history(
        machine, simulation | {"rows_per_machine": smallest - 1}, labels
    )
    assert too_few["episode_id"].nunique() < 3
