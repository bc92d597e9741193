from rest_framework.routers import SimpleRouter

from detection.api.views import DetectionViewSet

app_name = "api"

router = SimpleRouter()
router.register("detections", DetectionViewSet, basename="detection")

urlpatterns = router.urls
