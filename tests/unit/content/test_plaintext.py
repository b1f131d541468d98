from __future__ import annotations

from tidings.content.plaintext import html_to_text


def test_links_keep_their_target_readable_after_their_text() -> None:
    text = html_to_text(
        '<p>Read <a href="https://example.com/news?a=1&amp;b=2">our news</a> today.</p>'
    )
    assert text == "Read our news (https://example.com/news?a=1&b=2) today.\n"


def test_a_link_whose_text_is_its_target_is_written_once() -> None:
    assert html_to_text('<a href="https://example.com/">https://example.com/</a>') == (
        "https://example.com/\n"
    )


def test_anchors_and_mailto_show_their_text_only() -> None:
    text = html_to_text('<a href="#top">Top</a> <a href="mailto:a@example.com">Write</a>')
    assert text == "Top Write\n"


def test_a_template_placeholder_target_is_kept_for_rendering() -> None:
    assert html_to_text('<a href="{{ url }}">Go</a>') == "Go ({{ url }})\n"


def test_layout_paragraphs_lists_and_no_styles_scripts_or_images() -> None:
    html = (
        "<html><head><title>T</title><style>p{color:red}</style></head><body>"
        "<h1>Hello {{ first_name }}</h1><p>One &amp; two</p><script>x()</script>"
        '<ul><li>a</li><li>b</li></ul><img src="https://t.example/o/x" width="1" '
        'height="1" alt=""></body></html>'
    )
    assert html_to_text(html) == "Hello {{ first_name }}\n\nOne & two\n\n  * a\n  * b\n"


def test_nothing_to_read_is_empty() -> None:
    assert html_to_text("") == ""
    assert html_to_text("<!-- only a comment -->") == ""
    assert html_to_text("<p> </p>") == ""
