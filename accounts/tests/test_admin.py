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


ADMIN_LOGIN = "/admin/login/"
ADMIN_PASSWORD = "an-admin-passphrase-8"


@pytest.fixture
def staff(django_user_model):
    from allauth.account.models import EmailAddress

    root = django_user_model.objects.create_superuser(
        username="root", email="root@example.com", password=ADMIN_PASSWORD
    )
    EmailAddress.objects.create(user=root, email=root.email, primary=True, verified=True)
    return root


def test_the_admin_login_is_the_sites_sign_in(client, staff):
    """Issue 10 item 4: /admin/login/ never checks a password itself; it sends people to the
    site's sign-in (allauth, with its lockout), which brings staff back to the admin."""
    response = client.post(
        ADMIN_LOGIN, {"username": "root", "password": ADMIN_PASSWORD, "next": "/admin/"}
    )
    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login") + "?next=")
    assert "_auth_user_id" not in client.session

    response = client.post(
        response.url, {"login": "root", "password": ADMIN_PASSWORD, "next": "/admin/"}
    )
    assert (response.status_code, response.url) == (302, "/admin/")
    assert client.get("/admin/").status_code == 200


def _admin_sign_in(client, login: str, password: str):
    """Sign in at /admin/login/ as a person would: type the credentials into whatever sign-in
    form it leads to (the site's, since issue 10 item 4)."""
    response = client.post(
        ADMIN_LOGIN, {"username": login, "password": password, "next": "/admin/"}
    )
    if response.status_code == 302 and response.url.startswith(reverse("account_login")):
        response = client.post(response.url, {"login": login, "password": password})
    return response


def test_wrong_admin_passwords_lock_the_admin_out_even_with_the_right_one(client, staff, settings):
    settings.ACCOUNT_RATE_LIMITS = {"login_failed": "100/m/ip,5/5m/key"}
    for attempt in range(15):
        _admin_sign_in(client, "root", f"guess-{attempt}")
        assert "_auth_user_id" not in client.session

    for login in ("root", "root@example.com"):  # one counter for the account, site and admin
        response = _admin_sign_in(client, login, ADMIN_PASSWORD)
        assert "_auth_user_id" not in client.session
        assert b"Too many failed login attempts" in response.content
        response = client.post(
            reverse("account_login"), {"login": login, "password": ADMIN_PASSWORD}
        )
        assert b"Too many failed login attempts" in response.content
    assert client.get("/admin/").status_code == 302  # still not in


def test_a_signed_in_non_staff_user_is_refused_at_the_admin_login(client, user):
    client.force_login(user)
    assert client.get(ADMIN_LOGIN).status_code == 403


def test_a_createsuperuser_account_confirms_its_address_at_first_sign_in(client, django_user_model):
    """`createsuperuser` makes no allauth EmailAddress row; the first sign-in mails a
    confirmation link (printed by the console backend) instead of letting the account in."""
    from django.core import mail

    django_user_model.objects.create_superuser(
        username="ops", email="ops@example.com", password=ADMIN_PASSWORD
    )
    response = _admin_sign_in(client, "ops", ADMIN_PASSWORD)
    assert (response.status_code, response.url) == (302, reverse("account_email_verification_sent"))
    assert "_auth_user_id" not in client.session
    assert [m.to for m in mail.outbox] == [["ops@example.com"]]
