"""The account page: token create / list / revoke and account deletion, through the client."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import ApiToken
from accounts.tests.factories import ApiTokenFactory

pytestmark = pytest.mark.django_db

PROFILE = reverse("accounts:profile")
CREATE = reverse("accounts:token-create")
DELETE = reverse("accounts:delete")
ME = reverse("accounts_api:me")


def _revoke_url(token: ApiToken) -> str:
    return reverse("accounts:token-revoke", args=[token.id])


def test_profile_shows_details_and_only_the_users_tokens(client, user, other_user):
    ApiTokenFactory(owner=user, name="my laptop", key="abcdefgh-rest-of-key")
    ApiTokenFactory(owner=other_user, name="mallory's script")
    client.force_login(user)

    response = client.get(PROFILE)

    html = response.content.decode()
    assert response.status_code == 200
    assert "alice@example.com" in html
    assert reverse("account_change_password") in html and reverse("account_email") in html
    assert "my laptop" in html and "abcdefgh…" in html
    assert "mallory" not in html
    assert "rest-of-key" not in html


def test_create_token_shows_the_key_once_and_it_works(client, api_client, user):
    client.force_login(user)

    response = client.post(CREATE, {"name": "nightly job"})

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    key = re.search(r'id="new-token-key" value="([^"]+)"', html).group(1)
    assert "will <strong>not be shown again</strong>" in html
    assert 'data-copy-target="new-token-key"' in html
    token = ApiToken.objects.get(owner=user)
    assert token.name == "nightly job" and token.key_prefix == key[:8]

    assert key not in client.get(PROFILE).content.decode()
    assert api_client.get(ME, HTTP_AUTHORIZATION=f"Token {key}").status_code == 200


def test_create_token_needs_a_name(client, user):
    client.force_login(user)
    response = client.post(CREATE, {"name": "  "})
    assert response.status_code == 200
    assert b'aria-invalid="true"' in response.content
    assert not ApiToken.objects.exists()


def test_revoke_asks_for_confirmation_then_revokes(client, api_client, user):
    token = ApiTokenFactory(owner=user, name="old script", key="old-key")
    client.force_login(user)

    confirm = client.get(_revoke_url(token))
    assert confirm.status_code == 200 and b"old script" in confirm.content
    token.refresh_from_db()
    assert token.revoked_at is None  # a GET changes nothing

    response = client.post(_revoke_url(token), follow=True)
    assert response.redirect_chain[-1][0] == PROFILE
    assert b"Revoked" in response.content and b"was revoked" in response.content
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert api_client.get(ME, HTTP_AUTHORIZATION="Token old-key").status_code == 401


def test_revoke_needs_the_csrf_token(user):
    token = ApiTokenFactory(owner=user)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(_revoke_url(token)).status_code == 403
    token.refresh_from_db()
    assert token.revoked_at is None


@pytest.mark.parametrize("method", ["get", "post"])
def test_another_users_token_is_a_404(client, user, other_user, method):
    theirs = ApiTokenFactory(owner=other_user)
    client.force_login(user)
    assert getattr(client, method)(_revoke_url(theirs)).status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


@pytest.mark.parametrize(
    ("method", "url"),
    [("get", PROFILE), ("post", CREATE), ("get", "revoke"), ("post", "revoke"), ("post", DELETE)],
)
def test_anonymous_is_sent_to_sign_in(client, user, method, url):
    token = ApiTokenFactory(owner=user)
    url = _revoke_url(token) if url == "revoke" else url
    response = getattr(client, method)(url)
    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))
    token.refresh_from_db()
    assert token.revoked_at is None
    assert ApiToken.objects.count() == 1


def test_delete_account_needs_the_password(client, user):
    client.force_login(user)
    response = client.post(DELETE, {"password": "not-it"})
    assert response.status_code == 200
    assert b"That is not your password." in response.content
    user.refresh_from_db()
    assert client.session["_auth_user_id"] == str(user.pk)


def test_delete_account_removes_user_and_tokens_and_signs_out(
    client, user, other_user, password, django_user_model
):
    ApiTokenFactory.create_batch(2, owner=user)
    theirs = ApiTokenFactory(owner=other_user)
    client.force_login(user)

    response = client.post(DELETE, {"password": password}, follow=True)

    assert response.redirect_chain[-1][0] == reverse("home")
    assert b"have been deleted" in response.content
    assert "_auth_user_id" not in client.session
    assert not django_user_model.objects.filter(pk=user.pk).exists()
    assert list(ApiToken.objects.all()) == [theirs]
    # The deleted account can no longer sign in.
    client.post(reverse("account_login"), {"login": "alice", "password": password})
    assert "_auth_user_id" not in client.session
