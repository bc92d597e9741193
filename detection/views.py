"""Pages: parse input, call one service or selector, render."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from detection import selectors, services
from detection.filters import DetectionFilterSet, page_data
from detection.forms import DetectionIdsForm, UploadForm
from detection.models import Detection
from detection.shared import (
    image_response,
    upload_budget_charge,
    upload_limits,
    upload_logged,
    upload_throttle_wait,
)
from detection.uploads import upload_refusal_get

HISTORY_PAGE_SIZE = 25


def _too_many(request: HttpRequest, *, wait: int) -> HttpResponse:
    response = render(request, "429.html", status=429)
    response["Retry-After"] = str(wait)
    return response


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def upload(request: HttpRequest) -> HttpResponse:
    limits = upload_limits()
    if request.method == "POST":
        # A spent budget is refused before the body is read; the images are charged once parsed.
        wait = upload_throttle_wait(request)
        if wait is not None:
            return _too_many(request, wait=wait)
        form = UploadForm(request.POST, request.FILES, accept=limits["accept"])
        refusal = upload_refusal_get(request=request)
        if refusal is not None:
            form.refuse(refusal)
        elif form.is_valid():
            wait = upload_budget_charge(request, images=len(form.cleaned_data["images"]))
            if wait is not None:
                return _too_many(request, wait=wait)
            try:
                detections = services.detection_create_many(
                    user=request.user, uploads=form.cleaned_data["images"]
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                upload_logged(detections)
                if len(detections) == 1:
                    return redirect("detection:detail", detection_id=detections[0].id)
                messages.success(request, f"{len(detections)} images uploaded.")
                return redirect("detection:batch", batch_id=detections[0].batch_id)
        status = 400
    else:
        form = UploadForm(accept=limits["accept"])
        status = 200
    return render(request, "detection/upload.html", {"form": form, **limits}, status=status)


def _detail_context(detection: Detection) -> dict[str, object]:
    # The band the verdict was made with, stored with it; not today's model card.
    band = detection.uncertain_band
    faces = list(detection.faces.all())  # prefetched by the selector
    context: dict[str, object] = {
        "detection": detection,
        "faces": faces,
        # How many boxes the image shows: migrated verdicts of the old model have no box.
        "faces_drawn": sum(face.box_percent is not None for face in faces),
        "uncertain_low": band.low if band else None,
        "uncertain_high": band.high if band else None,
        "uncertain_width": band.width if band else None,
    }
    # [repeats] context
    # [heatmap] context
    # [provenance] context
    # [feedback+models] context
    # [share] context
    return context


@login_required
@require_safe
def detail(request: HttpRequest, detection_id: int) -> HttpResponse:
    detection = selectors.detection_get(user=request.user, detection_id=detection_id)
    return render(request, "detection/detail.html", _detail_context(detection))


@login_required
@require_safe
@never_cache
def status(request: HttpRequest, detection_id: int) -> JsonResponse:
    """The result panel, rendered, for the page's polling script."""
    detection = selectors.detection_get(user=request.user, detection_id=detection_id)
    html = render_to_string(
        "detection/_result.html", _detail_context(detection), request=request
    )
    return JsonResponse(
        {
            "id": detection.id,
            "status": detection.status,
            "label": detection.label,
            "fake_probability": detection.fake_probability,
            "final": detection.is_final,
            "html": html,
        }
    )


@login_required
@require_safe
def image(request: HttpRequest, detection_id: int) -> FileResponse:
    """The stored image, to its owner only."""
    return image_response(selectors.detection_get(user=request.user, detection_id=detection_id))


@login_required
@require_safe
def batch(request: HttpRequest, batch_id: int) -> HttpResponse:
    detections = list(selectors.detection_batch_items(user=request.user, batch_id=batch_id))
    context = {
        "batch_id": batch_id,
        "detections": detections,
        "final": all(d.is_final for d in detections),
    }
    return render(request, "detection/batch.html", context)


@login_required
@require_safe
@never_cache
def batch_status(request: HttpRequest, batch_id: int) -> JsonResponse:
    detections = list(selectors.detection_batch_items(user=request.user, batch_id=batch_id))
    final = all(d.is_final for d in detections)
    html = render_to_string(
        "detection/_batch_table.html", {"detections": detections}, request=request
    )
    return JsonResponse(
        {
            "status": "done" if final else "running",
            "final": final,
            "counts": {s: sum(d.status == s for d in detections) for s in Detection.Status.values},
            "html": html,
        }
    )


@login_required
@require_safe
def history(request: HttpRequest) -> HttpResponse:
    filters = DetectionFilterSet(data=page_data(request.GET))
    page = Paginator(
        selectors.detection_list(user=request.user, filters=filters), HISTORY_PAGE_SIZE
    ).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "detection/history.html",
        {
            "form": filters.form,
            "page": page,
            "query": query.urlencode(),
            "filtered": filters.is_filtered,
        },
    )


# Rows per chunk of the streamed export (about 100 kB): the server writes each chunk to the
# socket on its own, and one write per row made a 100k-row export 100k writes.
CSV_ROWS_PER_CHUNK = 500


def _csv_chunks(rows: Iterator[list[str]]) -> Iterator[str]:
    """CSV text, a chunk per CSV_ROWS_PER_CHUNK rows; the header alone first, before the query
    runs, so the download starts at once."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for number, row in enumerate(rows):
        writer.writerow(row)
        if number % CSV_ROWS_PER_CHUNK == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()


@login_required
@require_safe
def export(request: HttpRequest) -> StreamingHttpResponse:
    filters = DetectionFilterSet(data=page_data(request.GET))
    rows = selectors.detection_csv_rows(user=request.user, filters=filters)
    response = StreamingHttpResponse(_csv_chunks(rows), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="detections-{stamp}.csv"'
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def delete(request: HttpRequest, detection_id: int) -> HttpResponse:
    """GET asks for confirmation; POST deletes."""
    if request.method == "POST":
        services.detection_delete(user=request.user, detection_id=detection_id)
        messages.success(request, "The detection and its image were deleted.")
        return redirect("detection:history")
    detection = selectors.detection_get(user=request.user, detection_id=detection_id)
    return render(request, "detection/delete_confirm.html", {"detections": [detection]})


@login_required
@require_POST
def delete_many(request: HttpRequest) -> HttpResponse:
    """Ticked rows from the history page: first a confirmation page, then the delete."""
    form = DetectionIdsForm(request.POST)
    if not form.is_valid():
        messages.warning(request, "Tick the detections to delete first.")
        return redirect("detection:history")
    ids = form.cleaned_data["ids"]
    if request.POST.get("confirm") != "yes":
        detections = selectors.detection_list_by_ids(user=request.user, ids=ids)
        return render(
            request, "detection/delete_confirm.html", {"detections": detections, "many": True}
        )
    count = services.detection_delete_many(user=request.user, ids=ids)
    messages.success(request, f"Deleted {count} detection{'s' if count != 1 else ''}.")
    return redirect("detection:history")


@login_required
@require_safe
def api_help(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "detection/api_help.html",
        {
            "api_base": request.build_absolute_uri(reverse("api:detection-list")),
            "docs_url": request.build_absolute_uri(reverse("api-docs")),
            "profile_url": reverse("accounts:profile"),
            **upload_limits(),
        },
    )


# --- [repeats] ---------------------------------------------------------------------------

# --- [heatmap] ---------------------------------------------------------------------------

# --- [share] -----------------------------------------------------------------------------

# --- [pages] -----------------------------------------------------------------------------

# --- [feedback+models] -------------------------------------------------------------------
