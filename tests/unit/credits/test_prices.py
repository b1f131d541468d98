"""Which price applies: the destination's own row, else "*", else free."""

from __future__ import annotations

from tidings.credits.service import price_of


def test_the_country_row_then_any_then_free() -> None:
    table = {"CH": 3, "*": 1}
    assert price_of(table, country="CH") == 3
    assert price_of(table, country="FR") == 1
    assert price_of(table, country=None) == 1
    assert price_of({"CH": 3}, country="FR") == 0
    assert price_of({}, country="CH") == 0
