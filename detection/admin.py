from django.contrib import admin

from detection.models import Detection, DetectionBatch, DetectionFace, WorkerHeartbeat


class DetectionFaceInline(admin.TabularInline):
    model = DetectionFace
    fields = ["index", "label", "fake_probability", "box", "detector_confidence"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    # Faces come with the worker's verdict, like the rest of it.
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
    inlines = [DetectionFaceInline]
    # Verdicts come from the worker; the admin is for looking, not for making them up.
    readonly_fields = [f.name for f in Detection._meta.fields if f.name not in ("owner", "batch")]


@admin.register(DetectionBatch)
class DetectionBatchAdmin(admin.ModelAdmin):
    list_display = ["id", "owner", "created_at"]
    raw_id_fields = ["owner"]


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["hostname", "pid", "model_name", "model_version", "started_at", "last_seen"]
