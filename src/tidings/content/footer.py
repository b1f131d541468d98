"""The visible unsubscribe line every marketing email carries (besides the headers), in
the campaign's language: English, French, German, Spanish, Italian, Dutch or Portuguese.
Any other language, or none, gets English."""

from __future__ import annotations

from html import escape
from typing import Final

DEFAULT_LANGUAGE: Final = "en"

# language → (text line with {url}, link words, rest of the HTML sentence)
_WORDING: Final[dict[str, tuple[str, str, str]]] = {
    "en": ("To stop receiving these emails: {url}", "Unsubscribe", " from these emails."),
    "fr": ("Pour ne plus recevoir ces emails : {url}", "Se désinscrire", " de ces emails."),
    "de": (
        "Um diese E-Mails nicht mehr zu erhalten: {url}",
        "Abmelden",
        " von diesen E-Mails.",
    ),
    "es": ("Para dejar de recibir estos correos: {url}", "Darse de baja", " de estos correos."),
    "it": ("Per non ricevere più queste email: {url}", "Annulla l'iscrizione", " a queste email."),
    "nl": ("Om deze e-mails niet meer te ontvangen: {url}", "Afmelden", " voor deze e-mails."),
    "pt": ("Para deixar de receber estes emails: {url}", "Cancelar a inscrição", " destes emails."),
}
LANGUAGES: Final = frozenset(_WORDING)


def language_of(value: str | None) -> str:
    """A supported language from a code such as "fr", "FR" or "fr-CA"; English otherwise."""
    code = (value or "").strip().lower().replace("_", "-").split("-", 1)[0]
    return code if code in _WORDING else DEFAULT_LANGUAGE


def with_unsubscribe_line(
    parts: dict[str, str], url: str, language: str | None = None
) -> dict[str, str]:
    """`parts` with the line added to the text and HTML bodies (inside </body> if any)."""
    text_line, link_words, rest = _WORDING[language_of(language)]
    out = dict(parts)
    if "text" in out:
        out["text"] = out["text"].rstrip("\n") + "\n\n--\n" + text_line.format(url=url) + "\n"
    if "html" in out:
        line = (
            f'<p style="font-size:12px;color:#666"><a href="{escape(url, quote=True)}">'
            f"{escape(link_words)}</a>{escape(rest)}</p>"
        )
        html = out["html"]
        at = html.lower().rfind("</body>")
        out["html"] = html[:at] + line + html[at:] if at >= 0 else html + line
    return out
