"""Every read about accounts and API tokens, always scoped to the requesting user."""

from __future__ import annotations

import hmac

# allauth's own collation-aware lookups, so the lockout names the account its backend signs in.
from allauth.account.internal.userkit import filter_users_by_email, filter_users_by_username
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from accounts.models import ApiToken, api_key_hash

# token_urlsafe(32) gives 43 characters; anything far longer is not one of ours, and hashing
# megabytes from a hostile header is wasted work.
MAX_KEY_LENGTH = 128


def api_token_list(*, user: AbstractBaseUser) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(owner=user).order_by("-created_at", "-id")


def api_token_get(*, user: AbstractBaseUser, token_id: int) -> ApiToken:
    """The user's token; another user's token is a 404, exactly like a missing one."""
    return get_object_or_404(api_token_list(user=user), pk=token_id)


def api_token_authenticate(*, key: str) -> ApiToken | None:
    """The active token with this key, or None (unknown, revoked, or its owner inactive).

    The key is looked up by its hash, never compared as plain text, so query timing says nothing
    about stored keys.
    """
    if not key or len(key) > MAX_KEY_LENGTH:
        return None
    key_hash = api_key_hash(key)
    token = (
        ApiToken.objects.select_related("owner")
        .filter(key_hash=key_hash, revoked_at__isnull=True, owner__is_active=True)
        .first()
    )
    if token is None or not hmac.compare_digest(token.key_hash, key_hash):
        return None
    return token


def user_for_login(*, login: str) -> AbstractBaseUser | None:
    """The one account a sign-in login (username or e-mail address, any case) names, or None.

    Matches the way allauth's backend authenticates: an e-mail address first (also one of the
    account's EmailAddress rows), then a username. Ambiguous or unknown logins give None.
    """
    if not login:
        return None
    if "@" in login:
        by_email = filter_users_by_email(login, for_login=True)
        if len(by_email) == 1:
            return by_email[0]
    by_username = list(filter_users_by_username(login)[:2])
    return by_username[0] if len(by_username) == 1 else None
