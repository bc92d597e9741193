"""REST API: parse input, call one service or selector, serialise. Same contract as the pages."""

from __future__ import annotations

from django.core.exceptions import TooManyFilesSent, ValidationError
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from detection import selectors, services
from detection.api.serializers import (
    DetectionCreatedSerializer,
    DetectionFilterSerializer,
    DetectionSerializer,
    DetectionUploadSerializer,
    UploadErrorSerializer,
)
from detection.api.throttles import ReadRateThrottle, UploadDailyThrottle, UploadRateThrottle
from detection.models import Detection
from detection.views import upload_logged


def _upload_errors(exc: ValidationError) -> tuple[dict, int]:
    items = []
    for error in exc.error_list:
        params = error.params or {}
        items.append(
            {
                "file": str(params.get("file", "")),
                "code": error.code or "invalid",
                "message": str(params.get("reason") or error.message % params),
            }
        )
    detail = "; ".join(
        f"{i['file']}: {i['message']}" if i["file"] else i["message"] for i in items
    )
    too_large = any(i["code"] == "too_large" for i in items)
    body = {"detail": f"Nothing was stored. {detail}", "errors": items}
    return body, status.HTTP_413_REQUEST_ENTITY_TOO_LARGE if too_large else 400


# The URL takes digits only (lookup_value_regex): an integer in the schema, not any string.
_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Detection id.")


@extend_schema(tags=["detections"])
@extend_schema_view(
    list=extend_schema(
        summary="List your detections, newest first",
        parameters=[DetectionFilterSerializer],
    ),
    retrieve=extend_schema(summary="One detection with its verdict", parameters=[_ID]),
    destroy=extend_schema(summary="Delete a detection and its stored image", parameters=[_ID]),
)
class DetectionViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = DetectionSerializer
    parser_classes = [MultiPartParser, FormParser]
    lookup_value_regex = r"\d+"

    def get_throttles(self):
        if self.request.method == "POST":
            return [UploadRateThrottle(), UploadDailyThrottle()]
        return [ReadRateThrottle()]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user
            return Detection.objects.none()
        params = DetectionFilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        return selectors.detection_list(user=self.request.user, filters=params.to_filters())

    def get_object(self) -> Detection:
        return selectors.detection_get(
            user=self.request.user, detection_id=self.kwargs[self.lookup_field]
        )

    def perform_destroy(self, instance: Detection) -> None:
        services.detection_delete(user=self.request.user, detection_id=instance.id)

    @extend_schema(
        summary="Download the stored image",
        parameters=[_ID],
        responses={
            (200, "image/jpeg"): OpenApiTypes.BINARY,
            (200, "image/png"): OpenApiTypes.BINARY,
            (200, "image/webp"): OpenApiTypes.BINARY,
        },
    )
    @action(detail=True, methods=["get"], url_path="image")
    def image(self, request: Request, pk: str) -> FileResponse:
        from detection.views import image_response

        return image_response(self.get_object())

    @extend_schema(
        summary="Upload one or more images for a verdict",
        description=(
            "Multipart form with one or more `image` fields. Every file is checked first; if one "
            "is refused nothing is stored. Each accepted image is queued for the model: poll its "
            "`url` until `status` is `done` or `failed`."
        ),
        request={"multipart/form-data": DetectionUploadSerializer},
        responses={
            202: DetectionCreatedSerializer,
            400: OpenApiResponse(UploadErrorSerializer, description="A file was refused."),
            413: OpenApiResponse(UploadErrorSerializer, description="A file is too large."),
        },
    )
    def create(self, request: Request) -> Response:
        try:
            data = request.data
        except TooManyFilesSent:
            return Response(
                {
                    "detail": "Too many files in one request; nothing was stored.",
                    "errors": [
                        {"file": "", "code": "too_many_files", "message": "Too many files."}
                    ],
                },
                status=400,
            )
        refusal = getattr(request._request, "upload_refusal", None)  # UploadLimitHandler
        if refusal is not None:
            body, code = _upload_errors(refusal)
            return Response(body, status=code)
        upload = DetectionUploadSerializer(data=data)
        if not upload.is_valid():
            return Response(
                {
                    "detail": "Send one or more files in the `image` field.",
                    "errors": [
                        {"file": "", "code": "invalid", "message": str(m)}
                        for messages in upload.errors.values()
                        for m in (messages if isinstance(messages, list) else [messages])
                    ],
                },
                status=400,
            )
        try:
            detections = services.detection_create_many(
                user=request.user, uploads=upload.validated_data["image"]
            )
        except ValidationError as exc:
            body, code = _upload_errors(exc)
            return Response(body, status=code)
        upload_logged(detections)
        out = DetectionCreatedSerializer(
            {"detections": detections}, context=self.get_serializer_context()
        )
        return Response(out.data, status=status.HTTP_202_ACCEPTED)
