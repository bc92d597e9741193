"""The user model, and personal API tokens (of which only a hash and a prefix are stored)."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone

KEY_PREFIX_LENGTH = 8


def api_key_hash(key: str) -> str:
    """sha256 hex of a raw key: what is stored, and what a presented key is looked up by."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class User(AbstractUser):
    """Exactly Django's user, in our app: a field added later is a plain migration, whereas
    swapping auth.User for a custom model after data exists is a manual, risky rebuild."""


class ApiToken(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    # Shown to the owner so they can tell their tokens apart; too short to be guessed from.
    key_prefix = models.CharField(max_length=KEY_PREFIX_LENGTH)
    # sha256 hex of the full key. A plain hash (no salt, no slow KDF) is enough: the key is 256
    # random bits, not a password, and lookups by hash must be a single indexed query.
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "-created_at"], name="apitoken_owner_created")]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
