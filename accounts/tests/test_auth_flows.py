"""Sign up, sign in/out, password change and reset, the login rate limit, and page rendering:
allauth's views, our settings and templates."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import MD5PasswordHasher
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.models import User

pytestmark = pytest.mark.django_db

LOGIN = reverse("account_login")
NEW_PASSWORD = "another-long-passphrase-77"


def _login(client, login: str, password: str):
    return client.post(LOGIN, {"login": login, "password": password})


def test_the_user_model_is_our_own():
    assert get_user_model() is User
    assert get_user_model()._meta.db_table == "accounts_user"


def _sign_up(client, *, email: str, username: str):
    password = "a-fresh-passphrase-31"
    return client.post(
        reverse("account_signup"),
        {"email": email, "username": username, "password1": password, "password2": password},
    )


def _confirmation_link(message) -> str:
    link = re.search(r"http://testserver(/accounts/confirm-email/\S+/)", message.body)
    assert link, message.body
    return link.group(1)


def test_sign_up_confirm_the_address_then_sign_in_by_username_and_by_email(client):
    response = _sign_up(client, email="bob@example.com", username="bob")
    assert response.status_code == 302
    assert response.url == reverse("account_email_verification_sent")
    bob = get_user_model().objects.get(username="bob")
    assert bob.email == "bob@example.com"
    assert isinstance(bob, User)
    assert "_auth_user_id" not in client.session  # not before the address is confirmed
    assert _login(client, "bob", "a-fresh-passphrase-31").status_code == 302
    assert "_auth_user_id" not in client.session  # sign-in waits for the confirmation too

    # The link in the mail confirms the address and, in the browser that signed up, signs in.
    message = [m for m in mail.outbox if m.to == ["bob@example.com"]][-1]
    response = client.post(_confirmation_link(message))
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(bob.pk)

    for login in ("bob", "bob@example.com"):
        client.post(reverse("account_logout"))
        assert "_auth_user_id" not in client.session
        response = _login(client, login, "a-fresh-passphrase-31")
        assert response.status_code == 302, login
        assert client.session["_auth_user_id"] == str(bob.pk), login


def test_sign_up_with_a_taken_address_answers_like_a_fresh_one_and_mails_the_owner(
    client, user, password
):
    """Issue 10 item 11: the answer to sign-up never says whether an address has an account.
    The owner of a taken address gets a mail saying so; no second account is created."""
    fresh = Client().post(
        reverse("account_signup"),
        {"email": "newcomer@example.com", "username": "newcomer",
         "password1": "a-fresh-passphrase-31", "password2": "a-fresh-passphrase-31"},
        follow=True,
    )
    mail.outbox.clear()
    users_before = get_user_model().objects.count()

    taken = client.post(
        reverse("account_signup"),
        {"email": "ALICE@example.com", "username": "someone-new",
         "password1": "a-fresh-passphrase-31", "password2": "a-fresh-passphrase-31"},
        follow=True,
    )

    assert taken.redirect_chain == fresh.redirect_chain
    assert taken.content == fresh.content.replace(b"newcomer@example.com", b"alice@example.com")
    assert "_auth_user_id" not in client.session
    assert get_user_model().objects.count() == users_before
    assert not get_user_model().objects.filter(username="someone-new").exists()
    (message,) = mail.outbox
    assert message.to == ["alice@example.com"]
    assert "already" in message.subject.lower()
    assert "someone-new" not in message.body
    # Alice's account is untouched.
    assert _login(client, "alice", password).status_code == 302


class CountingHasher(MD5PasswordHasher):
    calls = 0

    def encode(self, password, salt):
        type(self).calls += 1
        return super().encode(password, salt)


def test_sign_up_with_a_taken_address_costs_the_same_password_hash(client, settings, user):
    """The slow step of a fresh sign-up (hashing the password) happens for a taken address too,
    so the time to answer does not tell them apart either (counted, never timed)."""
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    hashes = {}
    for email, username in (("fresh@example.com", "fresh"), ("alice@example.com", "other")):
        CountingHasher.calls = 0
        Client().post(
            reverse("account_signup"),
            {"email": email, "username": username,
             "password1": "a-fresh-passphrase-31", "password2": "a-fresh-passphrase-31"},
        )
        hashes[email] = CountingHasher.calls
    assert hashes["fresh@example.com"] >= 1
    assert hashes["alice@example.com"] == hashes["fresh@example.com"]


def test_sign_up_errors_are_shown_next_to_fields(client, user):
    response = client.post(
        reverse("account_signup"),
        {"email": "x@example.com", "username": user.username, "password1": "a", "password2": "b"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'class="errorlist' in html and 'aria-invalid="true"' in html
    assert not get_user_model().objects.filter(email="x@example.com").exists()


def test_sign_in_and_sign_out(client, user, password):
    response = _login(client, "alice", password)
    assert response.status_code == 302
    assert response.url == reverse("detection:upload")
    assert client.session["_auth_user_id"] == str(user.pk)

    response = client.post(reverse("account_logout"))
    assert response.status_code == 302
    assert response.url == LOGIN
    assert "_auth_user_id" not in client.session


def test_wrong_password_is_refused_with_a_message(client, user):
    response = _login(client, "alice", "not-the-password")
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert b"The username and/or password you specified are not correct." in response.content
    assert b'role="alert"' in response.content


def test_repeated_failures_lock_the_account_out_even_with_the_right_password(
    client, settings, user, password
):
    settings.ACCOUNT_RATE_LIMITS = {"login_failed": "100/m/ip,3/5m/key"}
    for _ in range(3):
        response = _login(client, "alice", "wrong-guess")
        assert b"not correct" in response.content

    response = _login(client, "alice", password)

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert b"Too many failed login attempts. Try again later." in response.content


def test_per_ip_limit_covers_guesses_spread_over_accounts(client, settings, user, password):
    settings.ACCOUNT_RATE_LIMITS = {"login_failed": "2/m/ip,100/5m/key"}
    _login(client, "someone", "x")
    _login(client, "someone-else", "x")

    response = _login(client, "alice", password)

    assert "_auth_user_id" not in client.session
    assert b"Too many failed login attempts" in response.content


@pytest.mark.parametrize(
    ("failed_as", "then_as"),
    [
        ("alice", "alice@example.com"),
        ("alice@example.com", "alice"),
        ("ALICE", "Alice@Example.com"),
    ],
)
def test_the_lockout_counts_per_account_whichever_login_is_typed(
    client, settings, user, password, failed_as, then_as
):
    """Issue 10 item 6: failures typed as the username lock the e-mail address of the same
    account too (and the other way round): the counter is keyed on the account."""
    settings.ACCOUNT_RATE_LIMITS = {"login_failed": "100/m/ip,3/5m/key"}
    for _ in range(3):
        assert b"not correct" in _login(client, failed_as, "wrong-guess").content

    response = _login(client, then_as, password)

    assert "_auth_user_id" not in client.session
    assert b"Too many failed login attempts" in response.content


def test_unknown_logins_are_locked_out_like_real_ones(client, settings, user, password):
    """An unknown login is limited per typed value exactly like an account, so the lockout
    never tells which logins exist; other accounts are not affected."""
    settings.ACCOUNT_RATE_LIMITS = {"login_failed": "100/m/ip,3/5m/key"}
    answers = {}
    for login in ("alice", "nobody"):
        for _ in range(3):
            _login(client, login, "wrong-guess")
        page = _login(client, login, "wrong-guess").content.decode()
        answers[login] = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", page)
    assert "Too many failed login attempts" in answers["nobody"]
    assert answers["nobody"].replace("nobody", "alice") == answers["alice"]
    assert b"not correct" in _login(client, "nobody@example.com", "wrong-guess").content
    assert b"not correct" in _login(client, "mallory", "wrong-guess").content


def test_password_change(client, user, password):
    client.force_login(user)
    response = client.post(
        reverse("account_change_password"),
        {"oldpassword": password, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302

    client.logout()
    _login(client, "alice", password)
    assert "_auth_user_id" not in client.session
    _login(client, "alice", NEW_PASSWORD)
    assert client.session["_auth_user_id"] == str(user.pk)


def test_password_reset_mails_a_link_that_sets_a_new_password(client, user, password):
    response = client.post(reverse("account_reset_password"), {"email": "alice@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["alice@example.com"]
    link = re.search(r"http://testserver(/accounts/password/reset/key/\S+/)", mail.outbox[0].body)
    assert link

    # allauth moves the key from the URL into the session, then shows the form.
    response = client.get(link.group(1), follow=True)
    assert response.status_code == 200
    assert b"Bad token" not in response.content
    form_url = response.redirect_chain[-1][0]
    response = client.post(form_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302

    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert not user.check_password(password)
    # The link is single-use.
    response = client.get(link.group(1), follow=True)
    assert b"Bad token" in response.content


ANONYMOUS_PAGES = [
    "account_login",
    "account_signup",
    "account_reset_password",
    "account_reset_password_done",
    "account_reset_password_from_key_done",
    "account_inactive",
    "account_email_verification_sent",
]
SIGNED_IN_PAGES = [
    "account_logout",
    "account_change_password",
    "account_email",
    "account_reauthenticate",
    "accounts:profile",
]


@pytest.mark.parametrize("name", ANONYMOUS_PAGES + SIGNED_IN_PAGES)
def test_every_account_page_renders_in_the_site_layout(client, user, name):
    if name in SIGNED_IN_PAGES:
        client.force_login(user)
    response = client.get(reverse(name), follow=True)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'class="site-header"' in html  # our base.html, not allauth's bare layout
    assert "Menu:" not in html
    for input_id in re.findall(r'<input[^>]*type="(?:text|email|password)"[^>]*id="([^"]+)"', html):
        assert f'for="{input_id}"' in html, f"input #{input_id} has no label"


def test_bad_reset_and_confirmation_keys_render_an_explanation(client):
    response = client.get(
        reverse("account_reset_password_from_key", kwargs={"uidb36": "zz", "key": "bad-key"}),
        follow=True,
    )
    assert b"Bad token" in response.content and b'class="site-header"' in response.content
    response = client.get(reverse("account_confirm_email", kwargs={"key": "bad-key"}))
    assert response.status_code == 200 and b'class="site-header"' in response.content
