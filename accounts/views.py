"""Account page: details, API tokens, account deletion. Sign-in etc. are allauth's views."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.forms import AccountDeleteForm, ApiTokenCreateForm
from accounts.models import ApiToken
from accounts.selectors import api_token_get, api_token_list
from accounts.services import api_token_create, api_token_revoke, user_delete


def _render_profile(
    request: HttpRequest,
    *,
    token_form: ApiTokenCreateForm | None = None,
    delete_form: AccountDeleteForm | None = None,
    new_token: ApiToken | None = None,
    new_key: str | None = None,
) -> HttpResponse:
    context = {
        "tokens": api_token_list(user=request.user),
        "token_form": token_form or ApiTokenCreateForm(),
        "delete_form": delete_form or AccountDeleteForm(user=request.user),
        "new_token": new_token,
        "new_key": new_key,
    }
    return render(request, "accounts/profile.html", context)


@require_GET
@login_required
def profile(request: HttpRequest) -> HttpResponse:
    return _render_profile(request)


# The response carries the only copy of the key: no cache may keep it.
@never_cache
@require_POST
@login_required
def token_create(request: HttpRequest) -> HttpResponse:
    form = ApiTokenCreateForm(request.POST)
    if form.is_valid():
        try:
            token, key = api_token_create(user=request.user, name=form.cleaned_data["name"])
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            # Rendered, not redirected: the key must not pass through the session or a cookie.
            return _render_profile(request, new_token=token, new_key=key)
    return _render_profile(request, token_form=form)


@require_http_methods(["GET", "POST"])
@login_required
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    if request.method == "POST":
        api_token_revoke(user=request.user, token_id=token_id)
        messages.success(request, "The token was revoked. Requests using it are now refused.")
        return redirect("accounts:profile")
    # GET: a confirmation page, so revoking works (and is confirmed) without JavaScript.
    token = api_token_get(user=request.user, token_id=token_id)
    return render(request, "accounts/token_revoke.html", {"token": token})


@require_POST
@login_required
def account_delete(request: HttpRequest) -> HttpResponse:
    form = AccountDeleteForm(request.POST, user=request.user)
    if not form.is_valid():
        return _render_profile(request, delete_form=form)
    user_delete(user=request.user)
    # Signs out and drops the session, which the deleted account can no longer use.
    logout(request)
    messages.success(request, "Your account and everything in it have been deleted.")
    return redirect("home")
