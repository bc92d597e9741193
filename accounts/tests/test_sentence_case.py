"""Sentence case in every form: labels, buttons, headings and help texts, on our pages and on
allauth's (whose Title Case English locale/en/LC_MESSAGES/django.po rewrites)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation

pytestmark = pytest.mark.django_db

PO = Path(settings.BASE_DIR) / "locale" / "en" / "LC_MESSAGES" / "django.po"

# Label, button, heading, option, page title and help texts of a page.
_PARTS = [
    r"<label[^>]*>(.*?)</label>",
    r"<button[^>]*>(.*?)</button>",
    r"<h[1-4][^>]*>(.*?)</h[1-4]>",
    r"<option[^>]*>(.*?)</option>",
    r"<title>(.*?)</title>",
    r'<span class="helptext"[^>]*>(.*?)</span>',
    r'<a class="button[^"]*"[^>]*>(.*?)</a>',
    r'placeholder="([^"]*)"',
]
# Two capitalised words in a row ("Sign In", "Remember Me"), except names that are names.
_TITLE_CASE = re.compile(r"\b[A-Z][a-z]+\s+[A-Z][a-z]+")
_NAMES = ("Deepfake Detector",)


def _form_texts(html: str) -> list[str]:
    texts = []
    for pattern in _PARTS:
        for found in re.findall(pattern, html, re.S):
            # Elements apart ("Verified", "Primary" badges are two words, not one title).
            text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " | ", found)).strip(" |")
            for name in _NAMES:
                text = text.replace(name, "")
            if text:
                texts.append(text)
    return texts


def _po_entries() -> list[tuple[str, str]]:
    return re.findall(r'^msgid "(.+)"\nmsgstr "(.+)"$', PO.read_text(), re.M)


def test_the_compiled_catalog_matches_its_source():
    """Each entry of the .po is what Django says (the .mo was compiled from this .po)."""
    entries = _po_entries()
    assert len(entries) > 30
    with translation.override(settings.LANGUAGE_CODE):
        wrong = [(m, s, translation.gettext(m)) for m, s in entries if translation.gettext(m) != s]
    assert wrong == [], "recompile: msgfmt -o locale/en/LC_MESSAGES/django.mo <the .po>"


def test_the_catalog_only_changes_capitals():
    """Sentence case, nothing else: the same words, so no text changes its meaning."""
    for msgid, msgstr in _po_entries():
        assert re.sub(r"[\s-]", "", msgid).lower() == re.sub(r"[\s-]", "", msgstr).lower(), msgid
        assert not _TITLE_CASE.search(msgstr), msgstr


@pytest.mark.parametrize(
    "url_name",
    [
        "account_login",
        "account_signup",
        "account_reset_password",
        "account_reset_password_done",
        "account_email_verification_sent",
    ],
)
def test_signed_out_account_pages_are_in_sentence_case(client, url_name):
    texts = _form_texts(client.get(reverse(url_name)).content.decode())
    assert texts
    assert [t for t in texts if _TITLE_CASE.search(t)] == []


@pytest.mark.parametrize(
    "url_name",
    [
        "account_change_password",
        "account_email",
        "account_logout",
        "account_reauthenticate",
        "accounts:profile",
        "detection:upload",
        "detection:history",
        "detection:api-help",
    ],
)
def test_signed_in_pages_are_in_sentence_case(client, user, url_name):
    client.force_login(user)
    response = client.get(reverse(url_name), follow=True)
    texts = _form_texts(response.content.decode())
    assert texts
    assert [t for t in texts if _TITLE_CASE.search(t)] == []


def test_sign_in_page_reads_as_the_rest_of_the_site(client):
    html = client.get(reverse("account_login")).content.decode()
    assert "Remember me" in html and "Remember Me" not in html
    assert ">Sign in<" in html and "Sign In" not in html
    assert "Username or email" in html
