"""The open pixel's place in HTML."""

from __future__ import annotations

from tidings.content.tracking import add_open_pixel


def test_open_pixel_goes_before_the_last_body_end_or_at_the_end() -> None:
    url = "https://t.example/o/abc?x=1&y=2"
    placed = add_open_pixel("<html><BODY><p>Hi</p></Body ></html>", url)
    assert placed.index('src="https://t.example/o/abc?x=1&amp;y=2"') < placed.index("</Body >")
    assert add_open_pixel("<p>Hi</p>", url).startswith("<p>Hi</p><img ")
