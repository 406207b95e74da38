"""Every interface text the pages use exists in Kazakh, Russian, Ukrainian and English (issue 5,
item 4). Read from the files, no browser needed."""

from __future__ import annotations

import re

from engine.resources import web_client_dir

WEB = web_client_dir()
LANGUAGES = ("kk", "ru", "uk", "en")
KEY_LINE = re.compile(r'^\s*"([\w.\-]+)":', re.MULTILINE)
USED_IN_SCRIPTS = re.compile(r'\bt\(\s*"([\w.\-]+)"')
USED_IN_PAGES = re.compile(r'data-i18n(?:-aria-label|-placeholder)?="([\w.\-]+)"')
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def keys_of(language: str) -> dict[str, str]:
    """Each key with its text (the whole entry, plural forms included) in one language file."""
    text = (WEB / "js" / "i18n" / f"{language}.js").read_text(encoding="utf-8")
    matches = list(KEY_LINE.finditer(text))
    return {
        match.group(1): text[match.end() : matches[i + 1].start() if i + 1 < len(matches) else None]
        for i, match in enumerate(matches)
    }


def used_keys() -> set[str]:
    used: set[str] = set()
    for script in (WEB / "js").glob("*.js"):
        used |= set(USED_IN_SCRIPTS.findall(script.read_text(encoding="utf-8")))
    for page in WEB.glob("*.html"):
        used |= set(USED_IN_PAGES.findall(page.read_text(encoding="utf-8")))
    return used


def test_every_language_has_the_same_keys() -> None:
    english = set(keys_of("en"))
    assert len(english) > 200
    for language in LANGUAGES:
        assert set(keys_of(language)) == english, language


def test_every_key_the_pages_use_is_translated() -> None:
    used = used_keys()
    assert "test.questionOf" in used and "proctor.summary" in used
    for language in LANGUAGES:
        missing = used - set(keys_of(language))
        assert not missing, f"{language} lacks {sorted(missing)}"


def test_translations_keep_the_placeholders_of_the_english_text() -> None:
    english = keys_of("en")
    for language in LANGUAGES:
        for key, text in keys_of(language).items():
            assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(english[key])), (
                language,
                key,
            )
