"""Tracking: the open pixel's place in HTML, and which links are rewritten."""

from __future__ import annotations

from tidings.content.tracking import add_open_pixel, rewrite_links


def test_open_pixel_goes_before_the_last_body_end_or_at_the_end() -> None:
    url = "https://t.example/o/abc?x=1&y=2"
    placed = add_open_pixel("<html><BODY><p>Hi</p></Body ></html>", url)
    assert placed.index('src="https://t.example/o/abc?x=1&amp;y=2"') < placed.index("</Body >")
    assert add_open_pixel("<p>Hi</p>", url).startswith("<p>Hi</p><img ")


def test_links_already_ours_are_not_wrapped_again() -> None:
    own = "http://tidings.test/"
    parts = {
        "html": '<a href="http://tidings.test/l/INVITE">Join</a> <a href="https://acme.example/">Home</a>',
        "text": "Join http://tidings.test/l/INVITE or see https://acme.example/ today",
    }
    out, originals = rewrite_links(parts, lambda p: f"http://tidings.test/l/T{p}", own=own)
    assert originals == ["https://acme.example/"]
    assert out["html"] == (
        '<a href="http://tidings.test/l/INVITE">Join</a> <a href="http://tidings.test/l/T0">Home</a>'
    )
    assert out["text"] == "Join http://tidings.test/l/INVITE or see http://tidings.test/l/T0 today"
