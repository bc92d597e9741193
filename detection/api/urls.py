from rest_framework.routers import SimpleRouter

from detection.api.views import DetectionViewSet, PrivateCheckViewSet

app_name = "api"

router = SimpleRouter()
router.register("detections", DetectionViewSet, basename="detection")
router.register("private-checks", PrivateCheckViewSet, basename="private-check")

urlpatterns = router.urls
