"""The user model in Django's admin, with Django's own UserAdmin."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.urls import reverse

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "carols-passphrase-77"


def test_users_are_managed_with_djangos_user_admin():
    assert isinstance(admin.site._registry[get_user_model()], UserAdmin)


def test_a_superuser_can_list_add_and_edit_users(client, user):
    staff = get_user_model().objects.create_superuser(
        username="root", email="root@example.com", password="an-admin-passphrase-8"
    )
    client.force_login(staff)

    listing = client.get(reverse("admin:accounts_user_changelist"), {"q": "alice"})
    assert listing.status_code == 200
    assert b"alice@example.com" in listing.content

    response = client.post(
        reverse("admin:accounts_user_add"),
        {"username": "carol", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    carol = get_user_model().objects.get(username="carol")
    assert carol.check_password(NEW_PASSWORD)  # hashed by UserAdmin's form

    assert client.get(reverse("admin:accounts_user_change", args=[user.pk])).status_code == 200
