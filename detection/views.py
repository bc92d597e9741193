"""Pages: parse input, call one service or selector, render."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from django.utils.http import content_disposition_header
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django.views.defaults import page_not_found

from deepfake_site.security_headers import PRIVATE_CHECK_POLICY, content_security_policy
from detection import model_cards, report_pdf, selectors, services
from detection.filters import DetectionFilterSet, page_data
from detection.forms import DetectionFeedbackForm, DetectionIdsForm, UploadForm
from detection.models import PRIVATE_NO_IMAGE, Detection, box_percent
from detection.private_check_offline import offline_assets, offline_version
from detection.shared import (
    heatmap_response,
    image_response,
    snapshot_response,
    thumbnail_response,
    upload_budget_charge,
    upload_limits,
    upload_logged,
    upload_throttle_wait,
    video_response,
)
from detection.uploads import upload_refusal_get
from detection.uploads.provenance import provenance_summary
from detection.video_timeline import (
    suspicious_frames,
    timeline_plot,
    timeline_so_far,
    track_rows,
)
from detection.web_model import web_model_get

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
                for duplicate in detections.duplicates:
                    messages.info(
                        request,
                        f"“{duplicate.name}” is the same file as “{duplicate.same_as}”, "
                        "so it was analysed once.",
                    )
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
    context["reused_from"] = detection.reused_from if detection.reused_from_id else None
    context["similar_to"] = detection.similar_to if detection.similar_to_id else None
    context.update(_heatmap_context(detection, faces))
    # A private check's file never reached the server: there is no metadata to speak of.
    context["provenance_summary"] = (
        None if detection.is_private
        else provenance_summary(detection.provenance)
    )
    context.update(_feedback_models_context(detection))
    # The owner's active link, read only when the page shows it (the status poll does not).
    context["share"] = SimpleLazyObject(
        lambda: selectors.detection_share_active(detection=detection)
    )
    context.update(_video_context(detection))
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
            # Not final while the heatmaps are made: the page picks them up.
            "final": detection.is_final and not detection.heatmap_waiting,
            # a video's progress: the page swaps in each new count.
            "kind": detection.kind,
            "frames_done": detection.frames_done if detection.kind == "video" else None,
            "frames_total": detection.frames_total if detection.kind == "video" else None,
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
        "summary": _batch_summary(detections),
    }
    return render(request, "detection/batch.html", context)


@login_required
@require_safe
@never_cache
def batch_status(request: HttpRequest, batch_id: int) -> JsonResponse:
    detections = list(selectors.detection_batch_items(user=request.user, batch_id=batch_id))
    final = all(d.is_final for d in detections)
    # Row by row: the page swaps in each row whose state (its data-state) changed.
    rows = [
        {
            "id": d.id,
            "html": render_to_string("detection/_batch_row.html", {"d": d}, request=request),
        }
        for d in detections
    ]
    return JsonResponse(
        {
            "status": "done" if final else "running",
            "final": final,
            "counts": {s: sum(d.status == s for d in detections) for s in Detection.Status.values},
            "labels": {
                label: sum(d.status == "done" and d.label == label for d in detections)
                for label in Detection.Label.values
            },
            "summary": _batch_summary(detections),
            "rows": rows,
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
            "wait_max": round(settings.API_MAX_WAIT_SECONDS),
            **upload_limits(),
        },
    )


# --- Repeats and thumbnails --------------------------------------------------------------


@login_required
@require_safe
def thumbnail(request: HttpRequest, detection_id: int) -> HttpResponse:
    """A small WebP of the stored image, to its owner only (the lists show these)."""
    data = services.detection_thumbnail_get(user=request.user, detection_id=detection_id)
    return thumbnail_response(data)


@login_required
@require_POST
def rerun(request: HttpRequest, detection_id: int) -> HttpResponse:
    """Run the model again on a reused (or failed) verdict."""
    try:
        services.detection_rerun(user=request.user, detection_id=detection_id)
    except ValidationError as exc:
        messages.warning(request, " ".join(exc.messages))
    else:
        messages.success(request, "The image is queued to be analysed again.")
    return redirect("detection:detail", detection_id=detection_id)

# --- Heatmaps ----------------------------------------------------------------------------


def _heatmap_context(detection: Detection, faces: list) -> dict[str, object]:
    """The result page's heatmaps: where each face's PNG goes over the image (its region as
    percentages of the image), and the state to explain when there are none."""
    state = detection.heatmap_state
    heatmaps = []
    if state == Detection.HeatmapStatus.DONE:
        for face in faces:
            box = box_percent(face.heatmap_box, width=detection.width, height=detection.height)
            if box is not None:
                url = reverse("detection:face-heatmap", args=[detection.id, face.index])
                heatmaps.append({"index": face.index, "box": box, "url": url})
    return {"heatmap_state": state, "heatmaps": heatmaps}


@login_required
@require_safe
def face_heatmap(request: HttpRequest, detection_id: int, index: int) -> HttpResponse:
    """A face's heatmap PNG, to the detection's owner only."""
    return heatmap_response(
        selectors.detection_face_heatmap_get(
            user=request.user, detection_id=detection_id, index=index
        )
    )

# --- Shared reports ----------------------------------------------------------------------


def _shared_link(view):
    """A view of a shared link (/r/<token>/...): every answer, a 404 included, carries headers
    that keep the token secret. No Referer takes it to another site, search engines do not
    index the page, and no cache keeps a copy that would outlive a revoke."""

    @wraps(view)
    def wrapped(request: HttpRequest, token: str, *args, **kwargs) -> HttpResponse:
        try:
            response = view(request, token, *args, **kwargs)
        except Http404 as exc:
            # The site's 404 page, the same for an unknown, revoked or malformed token.
            response = page_not_found(request, exc)
        response["Referrer-Policy"] = "no-referrer"
        response["X-Robots-Tag"] = "noindex, nofollow"
        response["Cache-Control"] = "private, no-store"
        return response

    return wrapped


def _model_card_url(detection: Detection) -> str | None:
    """The page of the model card of the version that gave the verdict, when that version is
    installed and the site has model card pages."""
    if not detection.model_version or model_cards.model_card_get(
        version=detection.model_version
    ) is None:
        return None
    try:
        return reverse("detection:model-card", kwargs={"version": detection.model_version})
    except NoReverseMatch:
        return None


def _report_context(detection: Detection, *, token: str) -> dict[str, object]:
    """What the shared report page shows: the verdict, its faces and their heatmaps, what the
    file says about itself and the model that judged it."""
    faces = list(detection.faces.all())  # prefetched by the selector
    band = detection.uncertain_band
    heatmaps = [
        {"index": face.index, "box": box}
        for face in faces
        if (box := box_percent(face.heatmap_box, width=detection.width, height=detection.height))
    ]
    return {
        "detection": detection,
        "faces": faces,
        "faces_drawn": sum(face.box_percent is not None for face in faces),
        "heatmaps": heatmaps if detection.heatmap_status == Detection.HeatmapStatus.DONE else [],
        "uncertain_low": band.low if band else None,
        "uncertain_high": band.high if band else None,
        "uncertain_width": band.width if band else None,
        "threshold_percent": (
            round(detection.threshold * 100, 1) if detection.threshold is not None else None
        ),
        "provenance_summary": provenance_summary(detection.provenance),
        "model_card_url": _model_card_url(detection),
        "token": token,
    }


def _report_pdf_response(request: HttpRequest, detection: Detection) -> HttpResponse:
    card_url = _model_card_url(detection)
    video = (
        selectors.detection_video_report_parts(detection=detection)
        if detection.kind == Detection.Kind.VIDEO
        else None
    )
    pdf = report_pdf.report_pdf(
        detection=detection,
        faces=list(detection.faces.all()),
        heatmaps=selectors.detection_heatmaps(detection=detection),
        provenance=provenance_summary(detection.provenance),
        model_card_url=request.build_absolute_uri(card_url) if card_url else None,
        video_frame=(video.frame, video.box, video.time_s) if video and video.frame else None,
        tracks=video.tracks if video else (),
    )
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = content_disposition_header(
        True, report_pdf.report_filename(detection)
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_POST
def share_create(request: HttpRequest, detection_id: int) -> HttpResponse:
    """Make (or show again) the detection's read-only link."""
    try:
        services.detection_share_create(user=request.user, detection_id=detection_id)
    except ValidationError as exc:  # a private check: nothing to show without its image
        messages.warning(request, " ".join(exc.messages))
        return redirect("detection:detail", detection_id=detection_id)
    messages.success(
        request,
        "Share link ready. Anyone with it can see this report without signing in, until you "
        "revoke it.",
    )
    return redirect(reverse("detection:detail", args=[detection_id]) + "#share")


@login_required
@require_POST
def share_revoke(request: HttpRequest, detection_id: int) -> HttpResponse:
    if services.detection_share_revoke(user=request.user, detection_id=detection_id):
        messages.success(request, "Share link revoked: it no longer opens the report, for anyone.")
    else:
        messages.info(request, "This detection had no share link to revoke.")
    return redirect(reverse("detection:detail", args=[detection_id]) + "#share")


@login_required
@require_safe
def report_pdf_download(request: HttpRequest, detection_id: int) -> HttpResponse:
    """The owner's PDF report of a detection."""
    detection = selectors.detection_get(user=request.user, detection_id=detection_id)
    if detection.is_private:  # the report is built around the image
        raise Http404(PRIVATE_NO_IMAGE)
    return _report_pdf_response(request, detection)


@_shared_link
@require_safe
def shared_report(request: HttpRequest, token: str) -> HttpResponse:
    """The read-only report behind a share link: anyone with the link, signed in or not."""
    share = selectors.detection_share_get(token=token)
    context = _report_context(share.detection, token=token)
    context.update(_shared_video_context(share.detection))
    return render(request, "detection/report.html", context)


@_shared_link
@require_safe
def shared_image(request: HttpRequest, token: str) -> HttpResponse:
    detection = selectors.detection_share_get(token=token).detection
    if detection.kind == Detection.Kind.VIDEO:  # played in ranges, as the owner's
        return video_response(
            detection,
            range_header=request.headers.get("Range"),
            if_range=request.headers.get("If-Range"),
        )
    return image_response(detection)


@_shared_link
@require_safe
def shared_heatmap(request: HttpRequest, token: str, index: int) -> HttpResponse:
    detection = selectors.detection_share_get(token=token).detection
    return heatmap_response(selectors.detection_heatmap(detection=detection, index=index))


@_shared_link
@require_safe
def shared_report_pdf(request: HttpRequest, token: str) -> HttpResponse:
    return _report_pdf_response(request, selectors.detection_share_get(token=token).detection)


# --- Batch pages -------------------------------------------------------------------------


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one)}"


def _batch_summary(detections: list[Detection]) -> str:
    """One line for people: "7 fake, 2 uncertain, 1 real; 2 still running"."""
    if not detections:
        return "No images left in this batch."
    done = [d for d in detections if d.status == Detection.Status.DONE]
    by_label = {label: sum(d.label == label for d in done) for label in Detection.Label.values}
    status = {s: sum(d.status == s for d in detections) for s in Detection.Status.values}
    finished = [
        _count(by_label[label], word)
        for label, word in (
            (Detection.Label.FAKE, "fake"),
            (Detection.Label.UNCERTAIN, "uncertain"),
            (Detection.Label.REAL, "real"),
            (Detection.Label.NO_FACE, "with no face found"),
        )
        if by_label[label]
    ]
    if status[Detection.Status.FAILED]:
        finished.append(_count(status[Detection.Status.FAILED], "failed"))
    waiting = [
        _count(n, words)
        for n, words in (
            (status[Detection.Status.RUNNING], "still running"),
            (status[Detection.Status.PENDING], "waiting for a worker"),
        )
        if n
    ]
    if not waiting:
        total = len(detections)
        return f"{', '.join(finished)}; {'it is' if total == 1 else f'all {total}'} finished."
    return f"{', '.join(finished) or 'Nothing finished yet'}; {', '.join(waiting)}."


@login_required
@require_safe
def batch_export(request: HttpRequest, batch_id: int) -> StreamingHttpResponse:
    """One batch as CSV, with the history export's columns."""
    rows = selectors.detection_batch_csv_rows(user=request.user, batch_id=batch_id)
    response = StreamingHttpResponse(_csv_chunks(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="batch-{batch_id}.csv"'
    response["Cache-Control"] = "private, no-store"
    return response


# --- Feedback and model versions ---------------------------------------------------------


def _iou(a: object, b: object) -> float:
    """Overlap of two [x, y, w, h] boxes (intersection over union); 0 without both."""
    if not (isinstance(a, list | tuple) and isinstance(b, list | tuple)):
        return 0.0
    if len(a) != 4 or len(b) != 4:
        return 0.0
    ax, ay, aw, ah = (float(v) for v in a)
    bx, by, bw, bh = (float(v) for v in b)
    w = min(ax + aw, bx + bw) - max(ax, bx)
    h = min(ay + ah, by + bh) - max(ay, by)
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / (aw * ah + bw * bh - inter)


# Two face boxes at least this much overlapping are the same face judged twice.
SAME_FACE_IOU = 0.5


def _face_pairs(earlier: Detection, later: Detection) -> list[tuple[object, object]]:
    """The faces of two verdicts on the same image, paired by where they are (each model's face
    step may find them in another order, or find another set); a face found by one only is
    paired with None. Empty unless both found faces."""
    old = list(earlier.faces.all())
    new = list(later.faces.all())
    if not old or not new:
        return []
    if len(old) == len(new) == 1 and (old[0].box is None or new[0].box is None):
        # One face each, one of them from the old whole-image model (no box): the same face.
        return [(old[0], new[0])]
    pairs: list[tuple[object, object]] = []
    unmatched = list(old)
    for face in new:
        best = max(unmatched, key=lambda o: _iou(o.box, face.box), default=None)
        if best is not None and _iou(best.box, face.box) >= SAME_FACE_IOU:
            unmatched.remove(best)
            pairs.append((best, face))
        else:
            pairs.append((None, face))
    pairs.extend((face, None) for face in unmatched)
    return pairs


def _feedback_models_context(
    detection: Detection, *, feedback_form: DetectionFeedbackForm | None = None
) -> dict[str, object]:
    """The owner's tools around a verdict: the report form or the report made, the earlier
    verdict of a re-check side by side, the re-checks made of it, and whether a newer model can
    re-check it. Only the owner's pages set `owner_tools`."""
    done = detection.status == Detection.Status.DONE
    feedback = selectors.detection_feedback_of(detection)
    # A private check has no image: no report on it (export_feedback tests reports against
    # their images) and no re-check.
    private = detection.is_private
    if (
        feedback_form is None
        and done
        and not private
        and detection.label in services.FEEDBACK_LABELS
    ):
        initial = {"truth": feedback.truth, "note": feedback.note} if feedback else None
        feedback_form = DetectionFeedbackForm(label=detection.label, initial=initial)
    earlier = selectors.detection_rechecked_from(detection=detection)
    rechecks = selectors.detection_rechecks(detection=detection) if done else []
    context: dict[str, object] = {
        "owner_tools": True,
        "feedback": feedback,
        "feedback_form": feedback_form,
        "rechecked_from": earlier,
        "recheck_face_pairs": _face_pairs(earlier, detection) if earlier else [],
        "rechecks": rechecks,
        "verdict_card_url": _card_url(detection.model_version),
        "recheck_offer": None,
        "recheck_existing": None,
    }
    if earlier is not None:
        context["earlier_card_url"] = _card_url(earlier.model_version)
    if done and not private:
        current = model_cards.model_version_current()
        if current and detection.model_version != current:
            context["recheck_offer"] = current
            context["recheck_existing"] = next(
                (r for r in rechecks if not r.is_final or r.model_version == current), None
            )
    return context


def _card_url(version: str) -> str | None:
    if not version or model_cards.model_card_get(version=version) is None:
        return None
    return reverse("detection:model-card", kwargs={"version": version})


@login_required
@require_POST
def feedback(request: HttpRequest, detection_id: int) -> HttpResponse:
    """"Is this verdict wrong?": make or replace the owner's report."""
    detection = selectors.detection_get(user=request.user, detection_id=detection_id)
    form = DetectionFeedbackForm(request.POST, label=detection.label)
    if form.is_valid():
        try:
            _report, created = services.detection_feedback_submit(
                user=request.user,
                detection_id=detection_id,
                truth=form.cleaned_data["truth"],
                note=form.cleaned_data["note"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(
                request,
                "Thank you: your report was saved. Reports are counted per model version and "
                "used to test the models."
                if created
                else "Your report was updated.",
            )
            return redirect(reverse("detection:detail", args=[detection_id]) + "#feedback")
    context = _detail_context(detection)
    context.update(_feedback_models_context(detection, feedback_form=form))
    return render(request, "detection/detail.html", context, status=400)


@login_required
@require_POST
def feedback_withdraw(request: HttpRequest, detection_id: int) -> HttpResponse:
    if services.detection_feedback_withdraw(user=request.user, detection_id=detection_id):
        messages.success(request, "Your report was withdrawn.")
    else:
        messages.info(request, "There was no report on this verdict to withdraw.")
    return redirect(reverse("detection:detail", args=[detection_id]) + "#feedback")


@login_required
@require_POST
def recheck(request: HttpRequest, detection_id: int) -> HttpResponse:
    """Judge the image again with the current model, as a new detection shown side by side."""
    # A model run like an upload's: refused when the budget is spent, charged when queued.
    wait = upload_throttle_wait(request)
    if wait is not None:
        return _too_many(request, wait=wait)
    try:
        new, created = services.detection_recheck(user=request.user, detection_id=detection_id)
    except ValidationError as exc:
        messages.warning(request, " ".join(exc.messages))
        return redirect("detection:detail", detection_id=detection_id)
    if created:
        upload_budget_charge(request, images=1)
        messages.success(
            request,
            "Queued for the current model. This page shows both verdicts side by side.",
        )
    else:
        messages.info(request, "This image was already re-checked with the current model.")
    return redirect("detection:detail", detection_id=new.id)


@require_safe
def model_list(request: HttpRequest) -> HttpResponse:
    """Every installed model version and which one gives new verdicts (public)."""
    cards = model_cards.model_cards_list()
    current = model_cards.model_version_current()
    return render(
        request,
        "detection/model_list.html",
        {
            "cards": cards,
            "current_version": current,
            "current_installed": any(card.version == current for card in cards),
        },
    )


@require_safe
def model_card(request: HttpRequest, version: str) -> HttpResponse:
    """A model version's card (card.md) as a page (public: shared reports link here)."""
    card = model_cards.model_card_get(version=version)
    if card is None:
        raise Http404("No model card is installed for this version.")
    current = model_cards.model_version_current()
    return render(
        request,
        "detection/model_card.html",
        {
            "card": card,
            "card_html": model_cards.model_card_html(card),
            "current_version": current,
            "current_card_url": _card_url(current or ""),
        },
    )


def _model_file_response(path, content_type: str) -> FileResponse:
    response = FileResponse(open(path, "rb"), content_type=content_type)
    response["X-Content-Type-Options"] = "nosniff"
    # Public and the same for everyone; a new card comes with a new version, so a new URL.
    response["Cache-Control"] = "public, max-age=86400"
    return response


@require_safe
def model_card_plot(request: HttpRequest, version: str, name: str) -> FileResponse:
    """One of a card's plots: only a .png inside that model folder's plots/."""
    path = model_cards.model_card_plot_path(version=version, name=name)
    if path is None:
        raise Http404("No such plot.")
    return _model_file_response(path, "image/png")


@require_safe
def model_card_json(request: HttpRequest, version: str) -> FileResponse:
    """The card's card.json, for tools."""
    card = model_cards.model_card_get(version=version)
    if card is None:
        raise Http404("No model card is installed for this version.")
    return _model_file_response(card.folder / "card.json", "application/json")


# --- Video pages ---


def _video_context(detection: Detection) -> dict[str, object]:
    """A video's result panel (templates/detection/_video_result.html): its progress while it
    runs; once done, its tracks, the timeline of each track's P(fake) and the strip of the most
    suspicious frames. While it runs, the worker writes how many frames it has judged and the
    most suspicious face of each (progress_points): the page shows that line filling in; the
    tracks, the band and the strip come with the verdict."""
    if detection.kind != Detection.Kind.VIDEO:
        return {"is_video": False}
    tracks = list(detection.tracks.all())  # prefetched by the selector, with their faces
    done = detection.status == Detection.Status.DONE
    total, judged = detection.frames_total, detection.frames_done
    return {
        "is_video": True,
        "video_tracks": tracks,
        "deciding": next((t for t in tracks if t.index == detection.deciding_track), None),
        "timeline": (
            timeline_plot(detection=detection, tracks=tracks)
            if done and tracks
            else timeline_so_far(detection=detection)
            if not detection.is_final
            else None
        ),
        "strip_frames": suspicious_frames(detection=detection, tracks=tracks) if done else [],
        "frames_judged": min(judged, total) if total else judged,
        "progress_percent": round(100 * min(judged, total) / total) if total else None,
        "track_rows": track_rows(detection=detection, tracks=tracks) if done else [],
    }


def _shared_video_context(detection: Detection) -> dict[str, object]:
    """A shared report's video: its timeline and tracks; not the strip of frames, whose
    pictures are served to the owner only."""
    if detection.kind != Detection.Kind.VIDEO:
        return {"is_video": False}
    selectors.detection_tracks_read(detections=[detection])
    return {**_video_context(detection), "strip_frames": []}


@login_required
@require_safe
def video(request: HttpRequest, detection_id: int) -> HttpResponse:
    """The stored clip, to its owner only, in byte ranges as players ask (Range requests)."""
    detection = selectors.detection_video_get(user=request.user, detection_id=detection_id)
    return video_response(
        detection,
        range_header=request.headers.get("Range"),
        if_range=request.headers.get("If-Range"),
    )


@login_required
@require_safe
def video_frame(request: HttpRequest, detection_id: int, face_id: int) -> HttpResponse:
    """One of the most suspicious frames of the owner's video, as the worker kept it (JPEG)."""
    return snapshot_response(
        selectors.detection_video_frame_get(
            user=request.user, detection_id=detection_id, face_id=face_id
        )
    )


def _private_check_context() -> dict[str, object]:
    web_model = web_model_get()
    server_version = model_cards.model_version_current()
    return {
        "max_pixels": settings.DETECTION_MAX_PIXELS,
        "max_megapixels": round(settings.DETECTION_MAX_PIXELS / 1_000_000, 1),
        # The page says "the same model the server uses" only when it is.
        "server_model_version": server_version or "",
        "same_model_as_server": bool(web_model and web_model.version == server_version),
    }


@require_safe
@content_security_policy(PRIVATE_CHECK_POLICY)
def private_check(request: HttpRequest) -> HttpResponse:
    """The Private check page, signed out too: the model runs in the visitor's browser
    (static/js/private-check/), so the image never reaches this server; this only serves the
    page, under a policy that lets it compile WebAssembly."""
    return render(request, "detection/private_check.html", _private_check_context())


def _private_check_offline_html() -> str:
    """The page as a signed-out visitor gets it, marked as the offline copy. Rendered for a new,
    empty request rather than the caller's, so that nothing of whoever asks (user, session,
    CSRF token, pending messages) can reach the copy a browser keeps."""
    blank = HttpRequest()
    blank.method = "GET"
    # Its links (the nav's current page, sign-in's return) are those of the page itself.
    blank.path = blank.path_info = reverse("detection:private-check")
    return render_to_string(
        "detection/private_check.html", {**_private_check_context(), "offline": True}, blank
    )


@require_safe
@content_security_policy(PRIVATE_CHECK_POLICY)
def private_check_offline(request: HttpRequest) -> HttpResponse:
    """The copy of the Private check page that its service worker keeps and shows when the
    network is off; the same for everyone (see _private_check_offline_html)."""
    response = HttpResponse(_private_check_offline_html())
    response["Cache-Control"] = "no-cache"
    return response


@require_safe
def private_check_sw(request: HttpRequest) -> HttpResponse:
    """The Private check page's service worker (templates/detection/private_check_sw.js). Served
    from /private-check/ so that its scope is that page and nothing else of the site; its version
    (the name of its cache) follows the files it keeps, so a release that changes one installs it
    again. no-cache: the browser asks again at each visit whether the worker changed."""
    assets = offline_assets()
    version = offline_version(
        assets=assets, offline_page=_private_check_offline_html().encode()
    )
    response = render(
        request,
        "detection/private_check_sw.js",
        {
            "version": json.dumps(version),
            "page_url": json.dumps(reverse("detection:private-check")),
            "offline_url": json.dumps(reverse("detection:private-check-offline")),
            "assets": json.dumps([url for _, url in assets], indent=2),
        },
        content_type="text/javascript; charset=utf-8",
    )
    response["Cache-Control"] = "no-cache"
    return response
