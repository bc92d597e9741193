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
    path("detections/<int:detection_id>/thumbnail/", views.thumbnail, name="thumbnail"),
    path("detections/<int:detection_id>/rerun/", views.rerun, name="rerun"),
    path(
        "detections/<int:detection_id>/faces/<int:index>/heatmap.png",
        views.face_heatmap,
        name="face-heatmap",
    ),
    path("detections/<int:detection_id>/share/", views.share_create, name="share-create"),
    path(
        "detections/<int:detection_id>/share/revoke/", views.share_revoke, name="share-revoke"
    ),
    path(
        "detections/<int:detection_id>/report.pdf", views.report_pdf_download, name="report-pdf"
    ),
    path("r/<str:token>/", views.shared_report, name="shared-report"),
    path("r/<str:token>/image/", views.shared_image, name="shared-image"),
    path(
        "r/<str:token>/faces/<int:index>/heatmap.png",
        views.shared_heatmap,
        name="shared-heatmap",
    ),
    path("r/<str:token>/report.pdf", views.shared_report_pdf, name="shared-report-pdf"),
    path("batches/<int:batch_id>/export.csv", views.batch_export, name="batch-export"),
    path("detections/<int:detection_id>/feedback/", views.feedback, name="feedback"),
    path(
        "detections/<int:detection_id>/feedback/withdraw/",
        views.feedback_withdraw,
        name="feedback-withdraw",
    ),
    path("detections/<int:detection_id>/recheck/", views.recheck, name="recheck"),
    path("private-check/", views.private_check, name="private-check"),
    path("private-check/offline/", views.private_check_offline, name="private-check-offline"),
    path("private-check/sw.js", views.private_check_sw, name="private-check-sw"),
    path("models/", views.model_list, name="model-list"),
    path("models/<str:version>/", views.model_card, name="model-card"),
    path("models/<str:version>/card.json", views.model_card_json, name="model-card-json"),
    path("models/<str:version>/plots/<str:name>", views.model_card_plot, name="model-card-plot"),
    path("detections/<int:detection_id>/video/", views.video, name="video"),
    path(
        "detections/<int:detection_id>/frames/<int:face_id>.jpg",
        views.video_frame,
        name="video-frame",
    ),
]
