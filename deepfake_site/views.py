from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.log import log_response
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import requires_csrf_token
from django.views.decorators.http import require_safe
from rest_framework.exceptions import AuthenticationFailed

from accounts.authentication import ApiTokenAuthentication
from deepfake_site.api_errors import error_body
from detection.health import health_report

# What the web process itself needs; while these are up, a 503 only means the workers are not
# ready (none has beaten yet, or none has loaded the model): warming up.
_WEB_CHECKS = ("database", "broker")


@require_safe
@never_cache
def health(request: HttpRequest) -> JsonResponse:
    """Up or down (200 / 503, and each check's ok flag) for anyone, as load balancers and probes
    need; the details only for a staff user, signed in or with an API token of theirs."""
    report = health_report()
    response = JsonResponse(
        report.as_dict(details=_is_operator(request)), status=200 if report.ok else 503
    )
    if not report.ok and all(report.checks[name]["ok"] for name in _WEB_CHECKS):
        # Warming up is an expected state that probes see every few seconds after each start,
        # not an error: INFO instead of the ERROR Django gives every 5xx. log_response marks
        # the response as logged, so Django's handler does not log it a second time. A 503
        # with the database or broker down stays an ERROR.
        log_response(
            "Service warming up: %s",
            request.path,
            response=response,
            request=request,
            level="info",
        )
    return response


def _is_operator(request: HttpRequest) -> bool:
    """A staff user's session, or a token of a staff user (a monitoring account). Any user's
    token would not do: anyone can sign up and make one, which would make the details public."""
    user = request.user
    if not user.is_authenticated:
        try:
            authenticated = ApiTokenAuthentication().authenticate(request)
        except AuthenticationFailed:
            authenticated = None  # a bad token gets the public answer, as no token does
        if authenticated is None:
            return False
        user = authenticated[0]
    return bool(user.is_active and user.is_staff)


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("detection:upload")
    return render(request, "home.html")


@require_safe
def privacy(request: HttpRequest) -> HttpResponse:
    return render(request, "privacy.html")


@requires_csrf_token  # the layout's sign-out form needs a token, also for an unknown URL
def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404 for an unknown URL: JSON under /api/, as every other API answer; the page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body(detail="Not found.", code="not_found"), status=404)
    # The page in the site's layout (templates/404.html), with the view's own message for people
    # ("No such detection."); an unknown URL's (Resolver404) is for developers.
    args = getattr(exception, "args", ())
    message = args[0] if type(exception) is Http404 and args and isinstance(args[0], str) else ""
    return render(request, "404.html", {"message": message}, status=404)
