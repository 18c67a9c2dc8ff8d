"""A model's task in the dbt group: the model and its tests, as the producer's one ``dbt
build`` left them, and on a retry ``dbt build`` of that model alone. The whole group runs
for real in test_dbt_group_failure.py; here, the cases a real run rarely shows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException
from cosmos.operators.watcher import DbtRunWatcherOperator

from orchestration.tasks.dbt import DbtBuildWatcherSensor

MODEL = "model.shoplogs.fct_orders"
TESTS_KEY = "model__shoplogs__fct_orders_tests_status"


class ProducerOutcomes:
    """The task instance a sensor asks for the producer's XComs."""

    def __init__(self, xcoms: dict[str, Any], try_number: int = 1) -> None:
        self.xcoms = xcoms
        self.try_number = try_number

    def xcom_pull(self, task_ids: Any = None, key: str = "", **_: Any) -> Any:
        return self.xcoms.get(key)


def sensor(tmp_path: Path, has_tests: bool = True) -> DbtBuildWatcherSensor:
    return DbtBuildWatcherSensor(
        task_id="fct_orders",
        project_dir=str(tmp_path),
        has_tests=has_tests,
        extra_context={"dbt_node_config": {"unique_id": MODEL}},
    )


@pytest.fixture
def model_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """dbt built the model itself: what Cosmos's per-model sensor checks first."""
    monkeypatch.setattr(DbtRunWatcherOperator, "poke", lambda self, context: True)


@pytest.mark.usefixtures("model_built")
def test_a_built_model_whose_tests_passed_succeeds(tmp_path: Path) -> None:
    ti = ProducerOutcomes({TESTS_KEY: "pass"})
    assert sensor(tmp_path).poke({"ti": ti}) is True


@pytest.mark.usefixtures("model_built")
def test_a_failed_test_fails_the_models_task_and_says_where_to_look(tmp_path: Path) -> None:
    ti = ProducerOutcomes({TESTS_KEY: "fail"})
    with pytest.raises(AirflowException, match=f"a test of '{MODEL}' failed.*dbt_producer_watcher"):
        sensor(tmp_path).poke({"ti": ti})


def test_after_a_deferral_a_failed_test_still_fails_the_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trigger a deferred task waits on watches the model's own outcome only."""
    monkeypatch.setattr(DbtRunWatcherOperator, "execute_complete", lambda self, c, e: None)
    ti = ProducerOutcomes({TESTS_KEY: "fail"})
    with pytest.raises(AirflowException, match=f"a test of '{MODEL}' failed"):
        sensor(tmp_path).execute_complete({"ti": ti}, {"status": "success"})


def producer_state(monkeypatch: pytest.MonkeyPatch, state: str) -> None:
    """The producer task's state, as the sensor reads it from Airflow."""
    monkeypatch.setattr(DbtBuildWatcherSensor, "_get_producer_task_status", lambda s, c: state)


@pytest.mark.usefixtures("model_built")
def test_tests_without_an_outcome_are_not_shown_green(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    producer_state(monkeypatch, "success")  # the build has ended without reporting them
    with pytest.raises(AirflowException, match="reported no outcome for all of its tests"):
        sensor(tmp_path).poke({"ti": ProducerOutcomes({})})


@pytest.mark.usefixtures("model_built")
def test_a_built_model_waits_for_its_tests_while_the_build_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a scheduler a model's task reports beside the build, which tests each model
    after building it."""
    producer_state(monkeypatch, "running")
    task, xcoms = sensor(tmp_path), dict[str, Any]()
    ti = ProducerOutcomes(xcoms)
    assert task.poke({"ti": ti}) is False
    xcoms[TESTS_KEY] = "fail"
    with pytest.raises(AirflowException, match=f"a test of '{MODEL}' failed"):
        task.poke({"ti": ti})


@pytest.mark.usefixtures("model_built")
def test_a_model_without_tests_needs_no_test_outcome(tmp_path: Path) -> None:
    assert sensor(tmp_path, has_tests=False).poke({"ti": ProducerOutcomes({})}) is True


def test_a_retry_builds_the_model_and_its_tests_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands: list[list[str]] = []

    def run_command(self: Any, cmd: list[str], env: Any, context: Any, **_: Any) -> None:
        commands.append(cmd)

    monkeypatch.setattr(DbtBuildWatcherSensor, "run_command", run_command)
    retry = sensor(tmp_path)
    # The producer's failed test results are stale once the retry has built again.
    ti = ProducerOutcomes({TESTS_KEY: "fail"}, try_number=2)
    assert retry._fallback_to_non_watcher_run(2, {"ti": ti}) is True
    monkeypatch.setattr(DbtRunWatcherOperator, "poke", lambda self, context: True)
    assert retry.poke({"ti": ti}) is True

    [command] = commands
    assert command[1] == "build"
    assert command[command.index("--select") + 1] == "fct_orders"


def test_a_retry_holds_the_warehouse_writer_lock_while_it_builds(tmp_path: Path) -> None:
    """Retries of several models may run at once: DuckDB takes one writer, so each retry's
    build waits for the lock the others hold."""
    import fcntl

    from orchestration.tasks.dbt import holding_lock

    lock = tmp_path / "warehouse" / "shoplogs.duckdb.writer-lock"
    with holding_lock(str(lock)), lock.open("a") as other, pytest.raises(BlockingIOError):
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with lock.open("a") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free once the build is done
