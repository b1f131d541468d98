"""Charts drawn on the server as SVG: no JavaScript library, nothing the console's
Content-Security-Policy would refuse (every length is an SVG attribute, no `style`).

`line_chart` turns a series of counts per time bucket (`events.stats` series: one point
per bucket that had any event) into polylines, one per kind, in a fixed view box the
template scales to its width.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

WIDTH = 600
HEIGHT = 160
PAD = 24


@dataclass(frozen=True, slots=True)
class Line:
    kind: str
    points: str  # "x,y x,y …" for <polyline points>
    total: int


@dataclass(frozen=True, slots=True)
class Chart:
    lines: list[Line]
    peak: int  # the y axis' top
    start: datetime | None
    end: datetime | None
    width: int = WIDTH
    height: int = HEIGHT
    pad: int = PAD


def line_chart(series: Sequence[dict[str, Any]], kinds: Sequence[str]) -> Chart:
    """One line per kind in `kinds` that occurs in `series` (`{"at", "counts"}` points,
    in time order); x by time, y by count, 0 at the bottom."""
    if not series:
        return Chart([], 0, None, None)
    start, end = series[0]["at"], series[-1]["at"]
    span = max((end - start).total_seconds(), 1.0)
    peak = max((p["counts"].get(k, 0) for p in series for k in kinds), default=0) or 1
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    lines = []
    for kind in kinds:
        if not any(kind in p["counts"] for p in series):
            continue
        coords = []
        for point in series:
            x = PAD + inner_w * ((point["at"] - start).total_seconds() / span)
            y = PAD + inner_h * (1 - point["counts"].get(kind, 0) / peak)
            coords.append(f"{x:.1f},{y:.1f}")
        if len(coords) == 1:  # one bucket: a flat stroke across, visible
            y = coords[0].split(",")[1]
            coords = [f"{PAD},{y}", f"{WIDTH - PAD},{y}"]
        total = sum(p["counts"].get(kind, 0) for p in series)
        lines.append(Line(kind, " ".join(coords), total))
    return Chart(lines, peak, start, end)
