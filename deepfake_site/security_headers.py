"""Content-Security-Policy and Permissions-Policy on every response that sets none itself.

Our own middleware rather than django-csp: the policy is one fixed string (no inline script or
style anywhere, so no nonces or hashes), django-csp does not send Permissions-Policy, and a few
lines are easier to keep than one more dependency until Django 6.0's built-in CSP replaces them.
A response that already has a policy keeps it: the stored-image responses (detection.shared
image_response) sandbox themselves, and the API docs relax theirs (content_security_policy).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse

CSP_HEADER = "Content-Security-Policy"

# Pages load scripts, styles, images and fetches from this site only; no inline script or style
# attribute runs, no plugin, no <base> or form target elsewhere, and no site may frame them.
PAGE_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        # blob: the upload page previews the chosen files (URL.createObjectURL) before sending.
        "img-src 'self' blob:",
        # The same for a chosen video's first frame; the stored clips play from this site.
        "media-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

# Swagger UI (drf-spectacular-sidecar, served from this site): its page has an inline <style>
# block and its stylesheet draws icons from data: URIs. Its start-up script is a separate file
# (SpectacularSwaggerSplitView), so scripts stay 'self' only; only styles and images are relaxed,
# and only on that page.
API_DOCS_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

# The Private check page (detection.views.private_check) runs the model in the browser on
# TensorFlow.js's WebAssembly backend: compiling WebAssembly needs 'wasm-unsafe-eval' (it allows no
# JavaScript eval). All else is the page policy, connect-src included ('self', by default-src).
PRIVATE_CHECK_POLICY = PAGE_POLICY.replace(
    "script-src 'self'", "script-src 'self' 'wasm-unsafe-eval'", 1
)

# Nothing on the site uses these browser features: no page (or script injected into one) may.
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "payment",
        "usb",
    )
)

# Django's debug pages (DEBUG only) are built with inline script and style.
_DEBUG_PAGE_STATUSES = (404, 500)


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        if settings.DEBUG and response.status_code in _DEBUG_PAGE_STATUSES:
            return response
        response.headers.setdefault(CSP_HEADER, PAGE_POLICY)
        return response


def content_security_policy(policy: str):
    """A view decorator: this view's responses carry `policy` instead of the page policy."""

    def decorator(view):
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            response = view(request, *args, **kwargs)
            response.headers[CSP_HEADER] = policy
            return response

        return wrapped

    return decorator
