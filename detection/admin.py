from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from detection import selectors
from detection.models import (
    Detection,
    DetectionBatch,
    DetectionFace,
    DetectionFeedback,
    WorkerHeartbeat,
)


class DetectionFaceInline(admin.TabularInline):
    model = DetectionFace
    fields = ["index", "label", "fake_probability", "box", "detector_confidence"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    # Faces come with the worker's verdict, like the rest of it.
    def has_add_permission(self, request, obj=None) -> bool:
        return False


class DetectionFeedbackInline(admin.StackedInline):
    model = DetectionFeedback
    fields = ["truth", "note", "label", "fake_probability", "model_version", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    # A report is the owner's word; staff read it, they do not write one for them.
    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Detection)
class DetectionAdmin(admin.ModelAdmin):
    list_display = ["id", "owner", "original_name", "status", "label", "fake_probability",
                    "model_version", "attempts", "created_at"]
    list_filter = ["status", "label", "model_version"]
    search_fields = ["original_name", "sha256", "owner__username"]
    raw_id_fields = ["owner", "batch"]
    date_hierarchy = "created_at"
    inlines = [DetectionFaceInline, DetectionFeedbackInline]
    # The stored image has no URL (uploads are private: MEDIA_URL is None), so the admin's own
    # file widget cannot show it: its storage name is shown instead.
    exclude = ["image"]
    # Verdicts come from the worker; the admin is for looking, not for making them up.
    readonly_fields = [
        "stored_image",
        *(
            f.name
            for f in Detection._meta.fields
            # The thumbnail's bytes are no reading matter.
            if f.name not in ("owner", "batch", "image", "thumbnail")
        ),
    ]

    @admin.display(description="Stored image")
    def stored_image(self, obj: Detection) -> str:
        return obj.image.name


@admin.register(DetectionBatch)
class DetectionBatchAdmin(admin.ModelAdmin):
    list_display = ["id", "owner", "created_at"]
    raw_id_fields = ["owner"]


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["hostname", "pid", "model_name", "model_version", "started_at", "last_seen"]


@admin.register(DetectionFeedback)
class DetectionFeedbackAdmin(admin.ModelAdmin):
    """Owners' reports of wrong verdicts; the counts page sums them up per model version."""

    list_display = ["detection_link", "owner", "truth", "label", "fake_probability",
                    "model_version", "short_note", "created_at"]
    list_filter = ["truth", "label", "model_version", "created_at"]
    search_fields = ["note", "detection__original_name", "detection__owner__username",
                     "model_version"]
    list_select_related = ["detection__owner"]
    date_hierarchy = "created_at"
    raw_id_fields = ["detection"]
    # The owner's words and the verdict they were about, as reported: for reading, not editing.
    readonly_fields = ["detection", "truth", "note", "label", "fake_probability", "model_name",
                       "model_version", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="Detection", ordering="detection_id")
    def detection_link(self, obj: DetectionFeedback) -> str:
        url = reverse("admin:detection_detection_change", args=[obj.detection_id])
        return format_html('<a href="{}">{}</a>', url, obj.detection_id)

    @admin.display(description="Owner", ordering="detection__owner__username")
    def owner(self, obj: DetectionFeedback) -> str:
        return obj.detection.owner.get_username()

    @admin.display(description="Note")
    def short_note(self, obj: DetectionFeedback) -> str:
        return obj.note if len(obj.note) <= 80 else obj.note[:79] + "…"

    def get_urls(self):
        counts = path(
            "counts/",
            self.admin_site.admin_view(self.counts_view),
            name="detection_detectionfeedback_counts",
        )
        return [counts, *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        extra_context = {
            **(extra_context or {}),
            "counts_url": reverse("admin:detection_detectionfeedback_counts"),
        }
        return super().changelist_view(request, extra_context=extra_context)

    def counts_view(self, request: HttpRequest) -> TemplateResponse:
        """Reports per model version of the verdict reported, by the verdict's label and by
        what the reporters said the images are, with each version's report rate."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        rows = selectors.detection_feedback_counts()
        columns = ["reports", "verdicts"] + [
            f"label_{label}" for label in selectors.FEEDBACK_COUNTED_LABELS
        ] + [f"truth_{truth}" for truth in DetectionFeedback.Truth.values]
        totals = {key: sum(row[key] for row in rows) for key in columns}
        totals["rate"] = (
            round(100 * totals["reports"] / totals["verdicts"], 2) if totals["verdicts"] else None
        )
        changelist = reverse("admin:detection_detectionfeedback_changelist")
        for row in rows:
            query = urlencode({"model_version__exact": row["model_version"]})
            row["changelist_url"] = f"{changelist}?{query}"
        context = {
            **self.admin_site.each_context(request),
            "title": "Wrong-verdict reports per model version",
            "opts": self.model._meta,
            "rows": rows,
            "totals": totals,
            "labels": selectors.FEEDBACK_COUNTED_LABELS,
            "truths": DetectionFeedback.Truth.choices,
            "changelist_url": changelist,
        }
        return TemplateResponse(request, "admin/detection/detectionfeedback/counts.html", context)
