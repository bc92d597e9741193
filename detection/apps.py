from django.apps import AppConfig


class DetectionConfig(AppConfig):
    name = "detection"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from detection import signals  # noqa: F401 - connects the file clean-up
