"""The sign-in lockout is keyed on the account, not on what was typed."""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.http import HttpRequest

from accounts.selectors import user_for_login


class AccountAdapter(DefaultAccountAdapter):
    def _get_login_attempts_cache_key(self, request: HttpRequest, **credentials: Any) -> str:
        # allauth keys the per-account "login_failed" limit on the typed login, so the username
        # and the e-mail address of one account each got their own 5 guesses. An existing account
        # is keyed on its pk (also when allauth clears the counter after a password reset); an
        # unknown login keeps allauth's per-typed-value key, so it is limited (and the per-IP
        # limit applies) exactly like a real one, and the answer says nothing about existence.
        login = credentials.get("email") or credentials.get("username") or ""
        user = user_for_login(login=login)
        if user is not None:
            return f"user:{user.pk}"
        return super()._get_login_attempts_cache_key(request, **credentials)
