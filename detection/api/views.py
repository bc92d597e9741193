"""REST API: parse input, call one service or selector, serialise. Same contract as the pages.

Refusals are raised, never built here: deepfake_site.api_errors renders every one of them in the
API's one error shape.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import TooManyFilesSent, ValidationError
from django.http import FileResponse, HttpResponse
from django.urls import reverse
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
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from deepfake_site.api_errors import ApiError, ErrorSerializer, error_item, error_items
from detection import selectors, services
from detection.api.serializers import (
    DetectionCreatedSerializer,
    DetectionFeedbackInputSerializer,
    DetectionFeedbackSerializer,
    DetectionSerializer,
    DetectionShareSerializer,
    DetectionUploadSerializer,
    DetectionWaitedSerializer,
    DetectionWaitSerializer,
    PrivateCheckInputSerializer,
)
from detection.filters import ORDERINGS, SEARCH_MAX_LENGTH, DetectionFilterSet
from detection.models import Detection
from detection.shared import (
    heatmap_response,
    image_response,
    thumbnail_response,
    upload_budget_charge,
    upload_logged,
    video_response,
)
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


def _share_data(request: Request, share) -> dict[str, object]:
    if share is None:
        return {"active": False, "url": None, "pdf_url": None, "created_at": None}
    page = reverse("detection:shared-report", args=[share.token])
    pdf = reverse("detection:shared-report-pdf", args=[share.token])
    out = DetectionShareSerializer(
        {
            "active": True,
            "url": request.build_absolute_uri(page),
            "pdf_url": request.build_absolute_uri(pdf),
            "created_at": share.created_at,
        }
    )
    return out.data


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
            _choice_or_blank(
                "kind", Detection.Kind.values, "Only images, videos or private checks; blank: all."
            ),
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
        # A report on a verdict runs no model: not counted against the upload budget.
        if self.request.method == "POST" and self.action != "feedback":
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
                {"detections": waited, "duplicates": detections.duplicates},
                context=self.get_serializer_context(),
            )
            return Response(out.data, status=status.HTTP_200_OK)
        out = DetectionCreatedSerializer(
            {"detections": detections, "duplicates": detections.duplicates},
            context=self.get_serializer_context(),
        )
        return Response(out.data, status=status.HTTP_202_ACCEPTED)

    # --- Repeats and thumbnails ---

    @extend_schema(
        summary="Download a small thumbnail of the stored image",
        parameters=[_ID],
        responses={(200, "image/webp"): OpenApiTypes.BINARY},
    )
    @action(detail=True, methods=["get"], url_path="thumbnail", filter_backends=[])
    def thumbnail(self, request: Request, pk: str) -> HttpResponse:
        data = services.detection_thumbnail_get(user=request.user, detection_id=int(pk))
        return thumbnail_response(data)

    @extend_schema(
        summary="Analyse again a reused or failed verdict",
        description=(
            "For a detection whose verdict was reused from an earlier check of the same file "
            "(`reused_from` is set), or that failed: the model runs again. 202 with the "
            "detection, pending; 409 for any other detection."
        ),
        parameters=[_ID],
        request=None,
        responses={
            202: DetectionSerializer,
            409: OpenApiResponse(ErrorSerializer, description="Not reused and not failed."),
        },
    )
    @action(detail=True, methods=["post"], url_path="rerun", filter_backends=[])
    def rerun(self, request: Request, pk: str) -> Response:
        try:
            detection = services.detection_rerun(user=request.user, detection_id=int(pk))
        except ValidationError as exc:
            raise ApiError(
                status_code=409, detail=" ".join(exc.messages), code="not_rerunnable"
            ) from None
        return Response(self.get_serializer(detection).data, status=status.HTTP_202_ACCEPTED)

    # --- Heatmaps ---

    @extend_schema(
        summary="Download one face's heatmap",
        description=(
            "A small RGBA PNG (Grad-CAM) of where the network looked for this face's verdict: "
            "stretch it over the face's `heatmap_box`. A heatmap shows where the network looked, "
            "not proof. 404 when the face has none (see the detection's `heatmap_status`)."
        ),
        parameters=[
            _ID,
            OpenApiParameter(
                "index",
                {"type": "integer", "minimum": 1},
                OpenApiParameter.PATH,
                description="The face's `index` (1 for the largest face).",
            ),
        ],
        responses={(200, "image/png"): OpenApiTypes.BINARY},
    )
    @action(
        detail=True,
        methods=["get"],
        url_path=r"faces/(?P<index>\d+)/heatmap",
        url_name="face-heatmap",
        filter_backends=[],
    )
    def face_heatmap(self, request: Request, pk: str, index: str) -> HttpResponse:
        return heatmap_response(
            selectors.detection_face_heatmap_get(
                user=request.user, detection_id=int(pk), index=int(index)
            )
        )

    # --- Feedback and model versions ---

    @staticmethod
    def _refused(exc: ValidationError, *, status_code: int = 400) -> ApiError:
        """A service's refusal (ValidationError, per field or not) as one API error."""
        items = []
        per_field = exc.error_dict if hasattr(exc, "error_dict") else {"": exc.error_list}
        for field, errors in per_field.items():
            for error in errors:
                items.append(
                    error_item(code=error.code or "invalid", message=next(iter(error)), field=field)
                )
        return ApiError(
            status_code=status_code,
            detail=" ".join(item["message"] for item in items),
            code=items[0]["code"] if items else "invalid",
            errors=items,
        )

    @extend_schema(
        summary="Report the verdict as wrong",
        description=(
            "Say what the image really is (`truth`: `real`, `fake`, or `unknown` when you only "
            "know the verdict is wrong), with an optional `note`. Only a done detection with a "
            "real, fake or uncertain verdict can be reported. A new report replaces your earlier "
            "one: 201 for a first report, 200 when it replaced one. Reports are counted per "
            "model version and help evaluate the models; staff may read the note."
        ),
        parameters=[_ID],
        request={
            "application/json": DetectionFeedbackInputSerializer,
            "application/x-www-form-urlencoded": DetectionFeedbackInputSerializer,
        },
        responses={
            200: DetectionFeedbackSerializer,
            201: DetectionFeedbackSerializer,
            400: OpenApiResponse(ErrorSerializer, description="An invalid `truth` or `note`."),
            # A well-formed report the detection's state refuses is a conflict, not bad input.
            409: OpenApiResponse(
                ErrorSerializer,
                description="No verdict to report, or an answer that does not fit the verdict.",
            ),
        },
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="feedback",
        filter_backends=[],
        parser_classes=[JSONParser, FormParser],
    )
    def feedback(self, request: Request, pk: str) -> Response:
        self.get_object()  # another user's id is a 404 whatever the body says
        body = DetectionFeedbackInputSerializer(data=request.data)
        if not body.is_valid():
            raise _invalid("Send `truth` (real, fake or unknown) and an optional `note`.",
                           body.errors)
        try:
            report, created = services.detection_feedback_submit(
                user=request.user,
                detection_id=int(pk),
                truth=body.validated_data["truth"],
                note=body.validated_data["note"],
            )
        except ValidationError as exc:
            raise self._refused(exc, status_code=status.HTTP_409_CONFLICT) from None
        return Response(
            DetectionFeedbackSerializer(report).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        summary="Withdraw your report on the verdict",
        description="204 whether or not there was a report (withdrawing twice is harmless).",
        parameters=[_ID],
        request=None,
        responses={204: None},
    )
    @feedback.mapping.delete
    def feedback_withdraw(self, request: Request, pk: str) -> Response:
        services.detection_feedback_withdraw(user=request.user, detection_id=int(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Re-check with the current model",
        description=(
            "When a newer model serves verdicts than the one that judged this detection, judge "
            "the same image again with it: 202 with a new detection (its own copy of the image, "
            "`rechecked_from` pointing here), queued like an upload and counted against your "
            "upload budget; wait for it with `?wait=` on its `url`. If a re-check with the "
            "current model already exists or is still running, 200 with that one instead. 409 "
            "when this detection is not done or already comes from the current model; 503 when "
            "the current model's version cannot be read."
        ),
        parameters=[_ID],
        request=None,
        responses={
            200: DetectionSerializer,
            202: DetectionSerializer,
            409: OpenApiResponse(ErrorSerializer, description="Nothing to re-check."),
            503: OpenApiResponse(ErrorSerializer, description="Current model unknown."),
        },
    )
    @action(detail=True, methods=["post"], url_path="recheck", filter_backends=[])
    def recheck(self, request: Request, pk: str) -> Response:
        try:
            detection, created = services.detection_recheck(
                user=request.user, detection_id=int(pk)
            )
        except ValidationError as exc:
            code = exc.error_list[0].code if exc.error_list else ""
            raise self._refused(exc, status_code=503 if code == "model_unknown" else 409) from None
        if created:
            # A model run like an upload's. The throttle refused a spent budget before; this
            # charges it (a double click returned the existing re-check and is not charged).
            upload_budget_charge(request, images=1)
        return Response(
            self.get_serializer(detection).data,
            status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK,
        )

    # --- Shared reports ---

    @extend_schema(
        summary="The detection's shareable report link: read, create or revoke it",
        description=(
            "GET: the live link, if any. POST: create one (or return the live one): a read-only "
            "report page, with a PDF, for anyone who has the address, signed out too. DELETE: "
            "revoke it for good (then the address answers 404; a new link gets a new address)."
        ),
        parameters=[_ID],
        request=None,
        responses={
            200: DetectionShareSerializer,
            201: DetectionShareSerializer,
            409: OpenApiResponse(
                ErrorSerializer,
                description="POST on a private check: it has no image to show, so no link.",
            ),
        },
    )
    @action(detail=True, methods=["get", "post", "delete"], url_path="share", filter_backends=[])
    def share(self, request: Request, pk: str) -> Response:
        detection_id = int(pk)
        if request.method == "POST":
            try:
                share = services.detection_share_create(
                    user=request.user, detection_id=detection_id
                )
            except ValidationError as exc:
                raise self._refused(exc, status_code=status.HTTP_409_CONFLICT) from None
            code = status.HTTP_201_CREATED
        elif request.method == "DELETE":
            services.detection_share_revoke(user=request.user, detection_id=detection_id)
            share, code = None, status.HTTP_200_OK
        else:
            share = selectors.detection_share_find(user=request.user, detection_id=detection_id)
            code = status.HTTP_200_OK
        return Response(_share_data(request, share), status=code)

    # --- Video pages ---

    def paginate_queryset(self, queryset):
        # The videos of a page come with their tracks (the list shows them), in two queries.
        page = super().paginate_queryset(queryset)
        return page if page is None else selectors.detection_tracks_read(detections=list(page))

    @extend_schema(
        summary="Download or stream the stored video",
        description=(
            "The video file of a detection of `kind` `video` (metadata removed), to its owner "
            "only: the whole file (200, `Accept-Ranges: bytes`), or one byte range asked for "
            "with a `Range` header (206 with `Content-Range`; `bytes=a-b`, `bytes=a-` or "
            "`bytes=-n`), as video players ask. A range past the end is 416. 404 for an image."
        ),
        parameters=[
            _ID,
            OpenApiParameter(
                "Range",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=False,
                description="One byte range, `bytes=first-last`; several are answered whole.",
            ),
        ],
        responses={
            (200, "video/mp4"): OpenApiTypes.BINARY,
            (200, "video/webm"): OpenApiTypes.BINARY,
            (200, "video/quicktime"): OpenApiTypes.BINARY,
            (206, "video/mp4"): OpenApiTypes.BINARY,
            (206, "video/webm"): OpenApiTypes.BINARY,
            (206, "video/quicktime"): OpenApiTypes.BINARY,
            416: OpenApiResponse(
                description="The range lies past the end (`Content-Range: bytes */size`)."
            ),
        },
    )
    @action(detail=True, methods=["get"], url_path="video", filter_backends=[])
    def video(self, request: Request, pk: str) -> HttpResponse:
        detection = selectors.detection_video_get(user=request.user, detection_id=int(pk))
        return video_response(
            detection,
            range_header=request.headers.get("Range"),
            if_range=request.headers.get("If-Range"),
        )


# --- Private checks ---


def _private_error_items(detail: object, field: str = "") -> list[dict[str, str]]:
    """Serializer errors as items named by path ("faces[2].box"), so a client can tell which
    face was refused (the API's generic flattening keeps the innermost name only)."""
    if isinstance(detail, dict):
        items = []
        for key, value in detail.items():
            if isinstance(key, int):
                name = f"{field}[{key}]"
            elif key in ("non_field_errors", "__all__"):
                name = field
            else:
                name = f"{field}.{key}" if field else str(key)
            items += _private_error_items(value, name)
        return items
    if isinstance(detail, list | tuple) and any(isinstance(v, dict) for v in detail):
        # One entry per item of a list of objects (faces), empty for the items that passed.
        return [
            item
            for index, value in enumerate(detail)
            for item in _private_error_items(value, f"{field}[{index}]")
        ]
    return error_items(detail, field)


def _private_refused(exc: ValidationError) -> ApiError:
    """The service's refusal as an API error: a browser model other than the page's now is a
    conflict (409), none installed 503, anything else malformed input (400, per field)."""
    per_field = exc.error_dict if hasattr(exc, "error_dict") else {"": exc.error_list}
    items = [
        error_item(code=error.code or "invalid", message=next(iter(error)), field=name)
        for name, errors in per_field.items()
        for error in errors
    ]
    code = items[0]["code"] if items else "invalid"
    status_code = {"stale_model": 409, "model_unavailable": 503}.get(code, 400)
    if status_code != 400:
        return ApiError(status_code=status_code, detail=items[0]["message"], code=code)
    # Malformed input answers like the serializer's refusals: code "invalid", one item a field.
    return ApiError(
        status_code=400,
        detail="; ".join(f"{i['field']}: {i['message']}" for i in items),
        code="invalid",
        errors=items,
    )


@extend_schema(tags=["private checks"])
class PrivateCheckViewSet(viewsets.GenericViewSet):
    """Save a verdict made in the browser (the private check page), never the image."""

    parser_classes = [JSONParser]
    serializer_class = DetectionSerializer

    def get_throttles(self):
        # A saved verdict is a stored detection, like an upload's: refused before the body is
        # read when the upload budget is spent, and charged one image when saved.
        return [UploadBudgetThrottle()]

    def get_queryset(self):
        return Detection.objects.none()  # no reads here: the detections endpoints have them

    @extend_schema(
        summary="Save a private check's verdict to your history (never the image)",
        description=(
            "After a private check (the page where your browser judges an image itself and "
            "nothing is uploaded), save its verdict as a detection of `kind` `private`: the "
            "image's size and each face's box, P(fake) and detector confidence, never the "
            "image. The server does not trust the browser's labels: it judges each face again "
            "from its P(fake) with the browser model's threshold and uncertain band, and the "
            "image from its most suspicious face (`no_face` without faces). Read, list, filter "
            "(`?kind=private`) and delete it with the detections endpoints; it has no image, "
            "thumbnail, heatmaps, share link or PDF. Counted against your upload budget as one "
            "image. 409 when `model_version` is not the browser model the page serves now "
            "(reload the page and check again); 503 when no browser model is installed."
        ),
        request={"application/json": PrivateCheckInputSerializer},
        responses={
            201: DetectionSerializer,
            400: OpenApiResponse(
                ErrorSerializer,
                description="Malformed input: one item in `errors` per problem, with its "
                "`field` (`width`, `faces[0].box`, ...).",
            ),
            409: OpenApiResponse(
                ErrorSerializer, description="Made by another browser model than the page's now."
            ),
            503: OpenApiResponse(ErrorSerializer, description="No browser model is installed."),
        },
    )
    def create(self, request: Request) -> Response:
        body = PrivateCheckInputSerializer(data=request.data)
        if not body.is_valid():
            items = _private_error_items(body.errors)
            raise ApiError(
                status_code=400,
                detail="; ".join(
                    f"{i['field']}: {i['message']}" if i["field"] else i["message"] for i in items
                ),
                code="invalid",
                errors=items,
            )
        retry_after = upload_budget_charge(request, images=1)
        if retry_after is not None:
            raise Throttled(wait=retry_after)
        data = body.validated_data
        try:
            detection = services.detection_private_save(
                owner=request.user,
                model_version=data["model_version"],
                width=data["width"],
                height=data["height"],
                faces=[dict(face) for face in data["faces"]],
                inference_ms=data["inference_ms"],
            )
        except ValidationError as exc:
            raise _private_refused(exc) from None
        out = DetectionSerializer(detection, context=self.get_serializer_context())
        return Response(out.data, status=status.HTTP_201_CREATED)
