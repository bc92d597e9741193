"""REST API: parse input, call one service or selector, serialise. Same contract as the pages.

Refusals are raised, never built here: deepfake_site.api_errors renders every one of them in the
API's one error shape.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import TooManyFilesSent, ValidationError
from django.http import FileResponse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import Throttled
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from deepfake_site.api_errors import ApiError, ErrorSerializer, error_item, error_items
from detection import selectors, services
from detection.api.serializers import (
    DetectionCreatedSerializer,
    DetectionSerializer,
    DetectionUploadSerializer,
    DetectionWaitedSerializer,
    DetectionWaitSerializer,
)
from detection.filters import ORDERINGS, SEARCH_MAX_LENGTH, DetectionFilterSet
from detection.models import Detection
from detection.shared import image_response, upload_budget_charge, upload_logged
from detection.throttles import ReadRateThrottle, UploadBudgetThrottle
from detection.uploads import upload_refusal_get


def _upload_refused(exc: ValidationError) -> ApiError:
    """The upload's refusals (one per file and reason) as one API error; nothing was stored."""
    items = []
    for error in exc.error_list:
        params = error.params or {}
        items.append(
            error_item(
                code=error.code or "invalid",
                message=str(params.get("reason") or error.message % params),
                field="image",
                file=str(params.get("file", "")),
            )
        )
    detail = "; ".join(f"{i['file']}: {i['message']}" if i["file"] else i["message"] for i in items)
    too_large = any(i["code"] == "too_large" for i in items)
    return ApiError(
        status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE if too_large else 400,
        detail=f"Nothing was stored. {detail}",
        code="too_large" if too_large else "upload_refused",
        errors=items,
    )


def _invalid(detail: str, errors: object) -> ApiError:
    """A 400 for input a serializer refused, naming each field."""
    return ApiError(status_code=400, detail=detail, code="invalid", errors=error_items(errors))


def _wait_seconds(request: Request) -> float:
    """The request's `?wait=`, at most API_MAX_WAIT_SECONDS; a 400 when it is not a number in
    range."""
    query = DetectionWaitSerializer(data=request.query_params)
    if not query.is_valid():
        raise _invalid("Invalid query parameters.", query.errors)
    return min(query.validated_data["wait"], settings.API_MAX_WAIT_SECONDS)


# The URL takes digits only (lookup_value_regex): an integer in the schema, not any string.
_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Detection id.")


def _choice_or_blank(name: str, choices: list[str], description: str) -> OpenApiParameter:
    # As the history form sends it, a blank value means "any": documented, so it is allowed.
    return OpenApiParameter(
        name, OpenApiTypes.STR, OpenApiParameter.QUERY, enum=[*choices, ""], description=description
    )


@extend_schema(tags=["detections"])
@extend_schema_view(
    list=extend_schema(
        summary="List your detections, newest first",
        parameters=[
            _choice_or_blank("label", Detection.Label.values, "Only this verdict; blank: any."),
            _choice_or_blank("status", Detection.Status.values, "Only this status; blank: any."),
            _choice_or_blank("ordering", list(ORDERINGS), "The order; blank: newest first."),
            OpenApiParameter(
                "search",
                {"type": "string", "maxLength": SEARCH_MAX_LENGTH},
                OpenApiParameter.QUERY,
                description="Part of the original file name.",
            ),
        ],
    ),
    retrieve=extend_schema(
        summary="One detection with its verdict (optionally waiting for it)",
        parameters=[_ID, DetectionWaitSerializer],
        responses={
            200: DetectionSerializer,
            400: OpenApiResponse(ErrorSerializer, description="An invalid `wait`."),
        },
    ),
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
    # The filters of the history page and the CSV export (detection.filters); invalid values are
    # a 400 in the API's error shape.
    filter_backends = [DjangoFilterBackend]
    filterset_class = DetectionFilterSet

    def get_throttles(self):
        if self.request.method == "POST":
            # Refuses a spent budget before the body is read; create() charges the images.
            return [UploadBudgetThrottle()]
        return [ReadRateThrottle()]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user
            return Detection.objects.none()
        return selectors.detection_list(user=self.request.user)

    def get_object(self) -> Detection:
        return selectors.detection_get(
            user=self.request.user, detection_id=self.kwargs[self.lookup_field]
        )

    def retrieve(self, request: Request, pk: str) -> Response:
        detection = selectors.detection_get_finished(
            user=request.user, detection_id=int(pk), wait=_wait_seconds(request)
        )
        return Response(self.get_serializer(detection).data)

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
    @action(detail=True, methods=["get"], url_path="image", filter_backends=[])
    def image(self, request: Request, pk: str) -> FileResponse:
        return image_response(self.get_object())

    @extend_schema(
        summary="Upload one or more images for a verdict",
        description=(
            "Multipart form with one or more `image` fields. Every file is checked first; if one "
            "is refused nothing is stored. Each accepted image is queued for the model: get its "
            "`url` with `?wait=` until `status` is `done` or `failed`. With `?wait=<seconds>` "
            "here, the answer waits for the verdicts instead (200, every detection in full; any "
            "still unfinished when the time is up says so in its `status`)."
        ),
        parameters=[DetectionWaitSerializer],
        request={"multipart/form-data": DetectionUploadSerializer},
        responses={
            200: DetectionWaitedSerializer,
            202: DetectionCreatedSerializer,
            400: OpenApiResponse(ErrorSerializer, description="A file was refused."),
            413: OpenApiResponse(ErrorSerializer, description="A file is too large."),
        },
    )
    def create(self, request: Request) -> Response:
        wait = _wait_seconds(request)  # before the body is read: a bad one stores nothing
        try:
            data = request.data
        except TooManyFilesSent:
            raise ApiError(
                status_code=400,
                detail="Too many files in one request; nothing was stored.",
                code="too_many_files",
                errors=[
                    error_item(code="too_many_files", message="Too many files.", field="image")
                ],
            ) from None
        refusal = upload_refusal_get(request=request)
        if refusal is not None:
            raise _upload_refused(refusal)
        upload = DetectionUploadSerializer(data=data)
        if not upload.is_valid():
            raise _invalid("Send one or more files in the `image` field.", upload.errors)
        images = upload.validated_data["image"]
        retry_after = upload_budget_charge(request, images=len(images))
        if retry_after is not None:
            raise Throttled(
                wait=retry_after,
                detail=f"{len(images)} image(s) would exceed your upload budget; nothing stored.",
            )
        try:
            detections = services.detection_create_many(user=request.user, uploads=images)
        except ValidationError as exc:
            raise _upload_refused(exc) from None
        upload_logged(detections)
        if wait > 0:
            # Stored and queued (published on commit): now wait for the verdicts.
            waited = selectors.detection_list_finished(
                user=request.user, detection_ids=[d.id for d in detections], wait=wait
            )
            out = DetectionWaitedSerializer(
                {"detections": waited}, context=self.get_serializer_context()
            )
            return Response(out.data, status=status.HTTP_200_OK)
        out = DetectionCreatedSerializer(
            {"detections": detections}, context=self.get_serializer_context()
        )
        return Response(out.data, status=status.HTTP_202_ACCEPTED)

    # --- [repeats] actions ---

    # --- [heatmap] actions ---

    # --- [feedback+models] actions ---

    # --- [share] actions ---
