"""Every write about accounts and API tokens."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import KEY_PREFIX_LENGTH, ApiToken, api_key_hash
from accounts.selectors import api_token_get

# last_used_at is a hint for the owner, not an audit log: one write a minute per token at most,
# so a busy script does not turn every API read into a database write.
TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)


def api_token_create(*, user: AbstractBaseUser, name: str) -> tuple[ApiToken, str]:
    """Create a token; the raw key is returned here once and never stored."""
    name = name.strip()
    max_length = ApiToken._meta.get_field("name").max_length
    if not name or len(name) > max_length:
        raise ValidationError(
            {"name": f"Give the token a name of 1 to {max_length} characters."}, code="invalid"
        )
    key = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        owner=user,
        name=name,
        key_prefix=key[:KEY_PREFIX_LENGTH],
        key_hash=api_key_hash(key),
    )
    return token, key


def api_token_revoke(*, user: AbstractBaseUser, token_id: int) -> None:
    """Revoke one of the user's tokens; another user's (or no) token raises Http404.

    Revoking twice is harmless: the first revocation time is kept.
    """
    token = api_token_get(user=user, token_id=token_id)
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


def api_token_touch(*, token: ApiToken, now: datetime | None = None) -> None:
    """Record that the token was just used, at most once per TOKEN_TOUCH_INTERVAL."""
    now = now or timezone.now()
    if token.last_used_at is not None and now - token.last_used_at < TOKEN_TOUCH_INTERVAL:
        return
    # Conditional update: concurrent requests with the same token write once, not once each.
    ApiToken.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - TOKEN_TOUCH_INTERVAL),
        pk=token.pk,
    ).update(last_used_at=now)
    token.last_used_at = now


@transaction.atomic
def user_delete(*, user: AbstractBaseUser) -> None:
    """Delete the account and, by cascade, everything it owns (tokens, ...)."""
    user.delete()
