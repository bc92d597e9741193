from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from deepfake_site import views
from deepfake_site.security_headers import API_DOCS_POLICY, content_security_policy

# One sign-in for the whole site: /admin/login/ sends people to allauth's page (with ?next=), so
# the admin is behind the same per-IP and per-account lockout; Django's own admin form, with no
# limiter at all, is never served. Signed-in non-staff get 403 there.
admin.site.login = secure_admin_login(admin.site.login)

urlpatterns = [
    path("", views.home, name="home"),
    path("health/", views.health, name="health"),
    path("privacy/", views.privacy, name="privacy"),
    path("accounts/", include("accounts.urls")),
    path("accounts/", include("allauth.urls")),
    path("", include("detection.urls")),
    path("api/v1/", include("accounts.api_urls")),
    path("api/v1/", include("detection.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file: no inline script to allow.
    path(
        "api/docs/",
        content_security_policy(API_DOCS_POLICY)(
            SpectacularSwaggerSplitView.as_view(url_name="api-schema")
        ),
        name="api-docs",
    ),
    path("admin/", admin.site.urls),
]

# API clients get JSON for unknown URLs too (e.g. /api/v1/detections/abc/).
handler404 = "deepfake_site.views.not_found"
# The other error pages in the site's layout too (deepfake_site.errors; 500 with fallbacks).
handler400 = "deepfake_site.errors.bad_request"
handler403 = "deepfake_site.errors.permission_denied"
handler500 = "deepfake_site.errors.server_error"
