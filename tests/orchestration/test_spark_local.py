"""The local Spark runner's JVM: short jobs skip the optimizing compiler, long ones keep it."""

from __future__ import annotations

from orchestration.runners.spark_local import SHORT_JVM, SHORT_JVM_MAX_INPUT_BYTES, jvm_options


def test_a_small_input_runs_without_the_optimizing_compiler() -> None:
    assert jvm_options(4_300_000) == SHORT_JVM  # the demo's raw objects: 4.3 MB


def test_a_large_input_keeps_the_jvm_default() -> None:
    assert jvm_options(SHORT_JVM_MAX_INPUT_BYTES + 1) is None
