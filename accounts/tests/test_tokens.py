"""API tokens: services, selectors and the DRF authentication class, through /api/v1/me/."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiToken, api_key_hash
from accounts.selectors import api_token_authenticate, api_token_list
from accounts.services import api_token_create, api_token_revoke, api_token_touch, user_delete
from accounts.tests.factories import ApiTokenFactory

pytestmark = pytest.mark.django_db

ME = reverse("accounts_api:me")


def test_create_returns_the_key_once_and_stores_only_its_hash(user):
    token, key = api_token_create(user=user, name="  laptop  ")

    assert token.name == "laptop"
    assert token.owner == user
    assert len(key) >= 40
    assert token.key_prefix == key[:8]
    assert token.key_hash == api_key_hash(key) != key
    row = ApiToken.objects.filter(pk=token.pk).values().get()
    assert all(key not in str(value) for value in row.values())
    assert api_token_authenticate(key=key) == token


def test_create_refuses_a_blank_name(user):
    with pytest.raises(ValidationError):
        api_token_create(user=user, name="   ")


def test_list_shows_only_the_users_tokens(user, other_user):
    mine = ApiTokenFactory(owner=user)
    ApiTokenFactory(owner=other_user)
    assert list(api_token_list(user=user)) == [mine]


def test_revoke(user):
    token, key = api_token_create(user=user, name="ci")
    api_token_revoke(user=user, token_id=token.id)
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert api_token_authenticate(key=key) is None

    first = token.revoked_at
    api_token_revoke(user=user, token_id=token.id)  # twice is harmless and keeps the first time
    token.refresh_from_db()
    assert token.revoked_at == first


def test_another_users_token_cannot_be_revoked(user, other_user):
    token = ApiTokenFactory(owner=other_user)
    with pytest.raises(Http404):
        api_token_revoke(user=user, token_id=token.id)
    token.refresh_from_db()
    assert token.revoked_at is None


@pytest.mark.parametrize("key", ["", "unknown-key", "x" * 10_000])
def test_unknown_keys_do_not_authenticate(key):
    ApiTokenFactory(key="a-known-key")
    assert api_token_authenticate(key=key) is None


def test_inactive_owner_does_not_authenticate(user):
    ApiTokenFactory(owner=user, key="k1")
    user.is_active = False
    user.save()
    assert api_token_authenticate(key="k1") is None


def test_last_used_is_written_at_most_once_a_minute(user):
    token = ApiTokenFactory(owner=user)
    t0 = timezone.now()
    api_token_touch(token=token, now=t0)
    api_token_touch(token=ApiToken.objects.get(pk=token.pk), now=t0 + timedelta(seconds=30))
    assert ApiToken.objects.get(pk=token.pk).last_used_at == t0
    api_token_touch(token=ApiToken.objects.get(pk=token.pk), now=t0 + timedelta(seconds=61))
    assert ApiToken.objects.get(pk=token.pk).last_used_at == t0 + timedelta(seconds=61)


def test_user_delete_removes_the_user_and_their_tokens(user, other_user, django_user_model):
    ApiTokenFactory.create_batch(2, owner=user)
    theirs = ApiTokenFactory(owner=other_user)
    user_delete(user=user)
    assert not django_user_model.objects.filter(username="alice").exists()
    assert list(ApiToken.objects.all()) == [theirs]


# --- Through the API ------------------------------------------------------------------------


def test_valid_token_authenticates(api_client, user):
    token = ApiTokenFactory(owner=user, key="good-key")
    response = api_client.get(ME, HTTP_AUTHORIZATION="Token good-key")
    assert response.status_code == 200
    assert response.json() == {"username": "alice", "email": "alice@example.com"}
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_revoked_token_is_refused(api_client, user):
    token = ApiTokenFactory(owner=user, key="old-key")
    api_token_revoke(user=user, token_id=token.id)
    response = api_client.get(ME, HTTP_AUTHORIZATION="Token old-key")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize(
    "header",
    ["Token", "Token unknown-key", "Token two parts", "token", "Token ké".encode("latin-1")],
)
def test_bad_token_headers_are_refused(api_client, user, header):
    ApiTokenFactory(owner=user, key="good-key")
    response = api_client.get(ME, HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize("header", [None, "Bearer good-key", "Basic YWxpY2U6eA=="])
def test_requests_without_a_token_are_unauthenticated(api_client, user, header):
    ApiTokenFactory(owner=user, key="good-key")
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = api_client.get(ME, **extra)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_session_still_authenticates_the_api(client, user):
    client.force_login(user)
    assert client.get(ME).json()["username"] == "alice"


def test_openapi_schema_documents_the_token_scheme(api_client, user):
    ApiTokenFactory(owner=user, key="good-key")
    response = api_client.get(
        reverse("api-schema"), {"format": "json"}, HTTP_AUTHORIZATION="Token good-key"
    )
    assert response.status_code == 200
    schema = response.json()
    assert schema["components"]["securitySchemes"]["tokenAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": (
            'Personal API token from your account page, sent as "Authorization: Token <key>".'
        ),
    }
    assert {"tokenAuth": []} in schema["paths"]["/api/v1/me/"]["get"]["security"]
