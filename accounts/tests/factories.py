"""Factories for accounts models. `ApiTokenFactory(key=...)` fixes the raw key a test will send."""

from __future__ import annotations

import secrets

import factory
from django.contrib.auth import get_user_model

from accounts.models import KEY_PREFIX_LENGTH, ApiToken, api_key_hash

PASSWORD = "correct-horse-battery-staple-42"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.django.Password(PASSWORD)


class ApiTokenFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ApiToken

    class Params:
        key = factory.LazyFunction(lambda: secrets.token_urlsafe(32))

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"token {n}")
    key_prefix = factory.LazyAttribute(lambda o: o.key[:KEY_PREFIX_LENGTH])
    key_hash = factory.LazyAttribute(lambda o: api_key_hash(o.key))
