from django.urls import path

from accounts.api import MeView

# Not "api": detection.api.urls owns that namespace under the same prefix.
app_name = "accounts_api"

urlpatterns = [
    path("me/", MeView.as_view(), name="me"),
]
