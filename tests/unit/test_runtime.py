"""tune_gc: what `serve` and `worker` do to the collector before they serve."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from tidings.runtime import tune_gc


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_the_youngest_threshold_is_raised_and_the_start_up_heap_frozen() -> None:
    _, second, third = gc.get_threshold()
    tune_gc(12_345)
    assert gc.get_threshold() == (12_345, second, third)
    assert gc.get_freeze_count() > 1_000  # this test run's modules, at least


def test_zero_keeps_pythons_threshold() -> None:
    before = gc.get_threshold()
    tune_gc(0)
    assert gc.get_threshold() == before
