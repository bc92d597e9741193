from django.urls import path

from detection import views

app_name = "detection"

urlpatterns = [
    path("upload/", views.upload, name="upload"),
    path("history/", views.history, name="history"),
    path("history/export.csv", views.export, name="export"),
    path("history/delete/", views.delete_many, name="delete-many"),
    path("detections/<int:detection_id>/", views.detail, name="detail"),
    path("detections/<int:detection_id>/status/", views.status, name="status"),
    path("detections/<int:detection_id>/image/", views.image, name="image"),
    path("detections/<int:detection_id>/delete/", views.delete, name="delete"),
    path("batches/<int:batch_id>/", views.batch, name="batch"),
    path("batches/<int:batch_id>/status/", views.batch_status, name="batch-status"),
    path("api-help/", views.api_help, name="api-help"),
    # [repeats]
    # [heatmap]
    # [share]
    # [pages]
    # [feedback+models]
]
