"""The local Spark runner's JVM: short jobs skip the optimizing compiler, long ones keep it."""

from __future__ import annotations

from orchestration.runners.spark_local import SHORT_JVM, SHORT_JVM_MAX_INPUT_BYTES, job_env
from orchestration.settings import load_settings

SETTINGS = load_settings("local")


def test_a_small_input_runs_without_the_optimizing_compiler() -> None:
    env = job_env(SETTINGS, 4_300_000, {})  # the demo's raw objects: 4.3 MB
    assert env["SPARK_SUBMIT_OPTS"] == SHORT_JVM


def test_a_large_input_keeps_the_jvm_default() -> None:
    assert "SPARK_SUBMIT_OPTS" not in job_env(SETTINGS, SHORT_JVM_MAX_INPUT_BYTES + 1, {})


def test_the_users_own_jvm_options_win() -> None:
    env = job_env(SETTINGS, 1_000, {"SPARK_SUBMIT_OPTS": "-Xss4m"})
    assert env["SPARK_SUBMIT_OPTS"] == "-Xss4m"
