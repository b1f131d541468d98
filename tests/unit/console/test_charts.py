from datetime import UTC, datetime, timedelta

from tidings.console.charts import HEIGHT, PAD, WIDTH, line_chart

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def test_points_span_the_box_by_time_and_count() -> None:
    series = [
        {"at": T0, "counts": {"sent": 10}},
        {"at": T0 + timedelta(minutes=2), "counts": {"sent": 5, "opened": 2}},
    ]
    chart = line_chart(series, ["sent", "opened", "clicked"])
    assert [line.kind for line in chart.lines] == ["sent", "opened"]  # clicked never occurs
    sent = chart.lines[0]
    first, last = sent.points.split()
    assert first == f"{PAD:.1f},{PAD:.1f}"  # the peak, at the left
    assert last == f"{WIDTH - PAD:.1f},{PAD + (HEIGHT - 2 * PAD) / 2:.1f}"  # half, at the right
    assert (sent.total, chart.peak) == (15, 10)
    opened_first = chart.lines[1].points.split()[0]
    assert opened_first == f"{PAD:.1f},{HEIGHT - PAD:.1f}"  # no opens then: the bottom


def test_one_bucket_draws_a_visible_stroke_and_none_draws_nothing() -> None:
    chart = line_chart([{"at": T0, "counts": {"sent": 3}}], ["sent"])
    assert len(chart.lines[0].points.split()) == 2
    assert line_chart([], ["sent"]).lines == []
