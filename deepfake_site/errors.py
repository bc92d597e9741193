"""Error pages in the site's layout (production mode; with DJANGO_DEBUG on, Django shows its debug
pages for 404 and 500 instead). Under /api/ the answers are JSON, in the API's error shape.

Django renders 500.html without the request by default, so that a broken context processor or a
database that is down cannot break the error page itself. Ours tries the full layout first and
falls back, step by step, to the same template without the request, then to fixed HTML.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.views.decorators.csrf import requires_csrf_token

from deepfake_site.api_errors import error_body
from deepfake_site.context_processors import SITE_NAME

logger = logging.getLogger(__name__)

# The last resort: no template engine, no static files, nothing that can fail.
PLAIN_500 = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Server error · {SITE_NAME}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main><h1>Something went wrong on our side</h1>
<p>The error was logged. Please try again in a minute; if it keeps happening, tell us what
you were doing.</p>
<p><a href="/">Back to the start page</a></p></main></body></html>
"""


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


@requires_csrf_token
def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(error_body(detail="Bad request.", code="bad_request"), status=400)
    # Nothing from the exception is shown: it may say why a request looked suspicious.
    return render(request, "400.html", status=400)


@requires_csrf_token
def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(
            error_body(detail="You do not have permission to do this.", code="permission_denied"),
            status=403,
        )
    return render(request, "403.html", status=403)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form sent without (or with a stale) CSRF token: the page says what to do about it.
    The technical reason only in development mode, as Django's own page does."""
    return render(
        request, "403_csrf.html", {"reason": reason if settings.DEBUG else ""}, status=403
    )


@requires_csrf_token
def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(
            error_body(detail="Server error: it was logged. Try again later.", code="server_error"),
            status=500,
        )
    try:
        return render(request, "500.html", status=500)
    except Exception:  # noqa: BLE001 - whatever broke the page may break the layout too
        logger.exception("The 500 page could not be rendered with the request; plain layout")
    try:
        body = loader.render_to_string("500.html", {"SITE_NAME": SITE_NAME, "plain": True})
        return HttpResponse(body, status=500)
    except Exception:  # noqa: BLE001
        logger.exception("The 500 page could not be rendered at all; fixed HTML")
    return HttpResponse(PLAIN_500, status=500)
