from django.urls import path

from detection import views

app_name = "detection"

urlpatterns = [
    path("upload/", views.upload, name="upload"),
    path("history/", views.history, name="history"),
    path("api-help/", views.api_help, name="api-help"),
]
