"""The benchmark scripts import (they run outside CI: a moved module must not break them
silently)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "bench"
PEER = "peer_post_office"  # runs in bench/.peer-venv, beside django, not in Tidings' venv


@pytest.mark.parametrize("name", sorted(p.stem for p in BENCH.glob("*.py") if p.stem != PEER))
def test_each_bench_script_imports(name: str) -> None:
    importlib.import_module(f"bench.{name}")
