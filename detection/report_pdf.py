"""The downloadable PDF report of one detection: what the shared report page shows, on A4.

Web side: built with reportlab and Pillow only. The PDF uses the standard PDF fonts (every reader
has them, nothing is embedded), which know Windows-1252 only: text is reduced to that first
(accents dropped where that gives a letter it knows, "?" for the rest), so a file name such as
"ça_😀.jpg" prints as "ça_?.jpg" instead of failing.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from django.utils import timezone
from PIL import Image, ImageOps, UnidentifiedImageError
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from detection.models import Detection, DetectionFace, VideoTrack
from detection.uploads.provenance import ProvenanceSummary

logger = logging.getLogger(__name__)

SITE_NAME = "Deepfake Detector"
DISCLAIMER = "Verdicts are a model's estimate, not proof."
HEATMAP_NOTE = "A heatmap shows where the network looked, not proof."

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 18 * mm
CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN
# The picture takes at most this much of the first page, so the verdict starts beside it.
IMAGE_MAX_HEIGHT = 105 * mm
# Pixels kept of the stored image: sharp at 300 dpi on the width above, and a small file.
IMAGE_MAX_PIXELS = 1800
HEATMAP_TILE = 40 * mm
HEATMAP_TILE_PIXELS = 400

# The page's colours (site.css), for the boxes and the verdict.
DECIDING = colors.HexColor("#f59e0b")
OTHER_FACE = colors.HexColor("#3e4c59")
LABEL_COLOURS = {
    "real": colors.HexColor("#15803d"),
    "fake": colors.HexColor("#b91c1c"),
    "uncertain": colors.HexColor("#92400e"),
}


@dataclass(frozen=True)
class ReportRow:
    """One line of a two-column table of the report: a label and its value."""

    label: str
    value: str
    # An address the value links to (the model card page).
    link: str = ""


def pdf_text(text: object) -> str:
    """`text` in the characters the standard PDF fonts have (Windows-1252): a letter with an
    accent they lack loses the accent, anything else becomes "?". Control characters go."""
    out = []
    for char in str(text):
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co"):
            continue
        if _encodable(char):
            out.append(char)
            continue
        base = "".join(
            c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
        )
        out.append(base if base and _encodable(base) else "?")
    return "".join(out)


def _encodable(text: str) -> bool:
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def _p(text: object) -> str:
    """Plain text as Paragraph markup."""
    return escape(pdf_text(text))


def report_filename(detection: Detection) -> str:
    """The download's file name: the image's name (without its extension) and "report"."""
    stem = (detection.original_name or "").rsplit(".", 1)[0].strip()
    return f"{stem or f'detection-{detection.id}'} - report.pdf"


def local_time(value: dt.datetime | None) -> str:
    """A time in the site's time zone, with the zone's name."""
    if value is None:
        return "–"
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S %Z")


# --- the picture --------------------------------------------------------------------------


def _image_read(detection: Detection) -> Image.Image | None:
    """The stored image, reduced to IMAGE_MAX_PIXELS; None when it cannot be read."""
    try:
        with detection.image.open("rb") as fh:
            image = Image.open(fh)
            # A JPEG is decoded at a reduced scale straight away: a 4000 x 3000 photo need not
            # be decoded whole to print 1800 pixels of it.
            image.draft("RGB", (IMAGE_MAX_PIXELS, IMAGE_MAX_PIXELS))
            image = ImageOps.exif_transpose(image).convert("RGB")
    except (OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError):
        logger.warning("Could not read the image of detection %s for its report", detection.id)
        return None
    image.thumbnail((IMAGE_MAX_PIXELS, IMAGE_MAX_PIXELS))
    return image


def _jpeg(image: Image.Image) -> ImageReader:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=85)
    buffer.seek(0)
    return ImageReader(buffer)


def _box(box: object) -> tuple[float, float, float, float] | None:
    if not isinstance(box, list | tuple) or len(box) != 4:
        return None
    try:
        x, y, w, h = (float(v) for v in box)
    except (TypeError, ValueError):
        return None
    return (x, y, w, h) if w > 0 and h > 0 else None


class ImageWithFaces(Flowable):
    """The picture, scaled to fit, with each face's box and number drawn over it (the face that
    decided in the page's highlight colour)."""

    def __init__(
        self,
        image: Image.Image,
        *,
        source_size: tuple[int, int],
        faces: Sequence[DetectionFace],
        deciding: int | None,
    ) -> None:
        super().__init__()
        self.reader = _jpeg(image)
        self.source_width, self.source_height = source_size
        scale = min(CONTENT_WIDTH / image.width, IMAGE_MAX_HEIGHT / image.height)
        self.width = image.width * scale
        self.height = image.height * scale
        self.faces = [(face.index, _box(face.box)) for face in faces]
        self.deciding = deciding
        self.hAlign = "CENTER"

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        return self.width, self.height

    def draw(self) -> None:
        canvas = self.canv
        canvas.drawImage(self.reader, 0, 0, width=self.width, height=self.height)
        sx = self.width / max(self.source_width, 1)
        sy = self.height / max(self.source_height, 1)
        for index, box in self.faces:
            if box is None:
                continue
            x, y, w, h = box
            colour = DECIDING if index == self.deciding else OTHER_FACE
            # PDF y grows upwards; image y downwards.
            left, top = x * sx, self.height - y * sy
            canvas.setStrokeColor(colour)
            canvas.setLineWidth(2 if index == self.deciding else 1.2)
            if index != self.deciding:
                canvas.setDash(4, 2)
            canvas.rect(left, top - h * sy, w * sx, h * sy, stroke=1, fill=0)
            canvas.setDash()
            canvas.setFillColor(colour)
            canvas.rect(left, top - 11, 11, 11, stroke=0, fill=1)
            canvas.setFillColor(colors.black if index == self.deciding else colors.white)
            canvas.setFont("Helvetica-Bold", 8)
            canvas.drawCentredString(left + 5.5, top - 8.5, str(index))


def _heatmap_tile(
    image: Image.Image, *, source_size: tuple[int, int], box: object, png: bytes
) -> ImageReader | None:
    """The region of the picture a face's heatmap covers, with the heatmap laid over it."""
    region = _box(box)
    if region is None:
        return None
    scale = image.width / max(source_size[0], 1)
    x, y, w, h = (v * scale for v in region)
    try:
        heat = Image.open(io.BytesIO(png))
        heat.load()
    except (OSError, ValueError, UnidentifiedImageError):
        return None
    # The region may reach past the picture's edge (a square around a face near it): that part
    # stays black, as PIL pads a crop.
    crop = image.crop((round(x), round(y), round(x + w), round(y + h))).convert("RGBA")
    side = HEATMAP_TILE_PIXELS
    crop = crop.resize((side, round(side * crop.height / max(crop.width, 1)) or 1))
    heat = heat.convert("RGBA").resize(crop.size)
    return _jpeg(Image.alpha_composite(crop, heat))


# --- the document -------------------------------------------------------------------------


def _styles() -> dict[str, ParagraphStyle]:
    base = getSampleStyleSheet()
    body = ParagraphStyle(
        "body", parent=base["BodyText"], fontName="Helvetica", fontSize=10, leading=13.5
    )
    return {
        "title": ParagraphStyle(
            "title",
            parent=base["Title"],
            fontName="Helvetica-Bold",
            fontSize=18,
            leading=22,
            alignment=0,
            spaceAfter=2,
        ),
        "subtitle": ParagraphStyle(
            "subtitle", parent=body, fontSize=11, leading=14, textColor=colors.HexColor("#52606d")
        ),
        "h2": ParagraphStyle(
            "h2",
            parent=base["Heading2"],
            fontName="Helvetica-Bold",
            fontSize=13,
            leading=16,
            spaceBefore=10,
            spaceAfter=4,
        ),
        "body": body,
        "small": ParagraphStyle(
            "small", parent=body, fontSize=8.5, leading=11, textColor=colors.HexColor("#52606d")
        ),
        "verdict": ParagraphStyle(
            "verdict", parent=body, fontName="Helvetica-Bold", fontSize=15, leading=19
        ),
        "caption": ParagraphStyle(
            "caption",
            parent=body,
            fontSize=8.5,
            leading=11,
            alignment=TA_CENTER,
            textColor=colors.HexColor("#52606d"),
        ),
        "cell": ParagraphStyle("cell", parent=body, fontSize=9, leading=12),
    }


_TABLE_STYLE = TableStyle(
    [
        ("FONT", (0, 0), (-1, -1), "Helvetica", 9),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 0), (-1, -1), 0.4, colors.HexColor("#d9e2ec")),
        ("TOPPADDING", (0, 0), (-1, -1), 3),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
    ]
)


def _rows_table(rows: Sequence[ReportRow], styles: dict[str, ParagraphStyle]) -> Table:
    data = [
        [
            Paragraph(f"<b>{_p(row.label)}</b>", styles["cell"]),
            Paragraph(_cell(row), styles["cell"]),
        ]
        for row in rows
    ]
    table = Table(data, colWidths=[48 * mm, CONTENT_WIDTH - 48 * mm], hAlign="LEFT")
    table.setStyle(_TABLE_STYLE)
    return table


def _cell(row: ReportRow) -> str:
    if row.link.startswith(("https://", "http://")):
        return (
            f'<a href="{escape(row.link, {chr(34): "&quot;"})}" color="#1d4ed8">{_p(row.value)}</a>'
        )
    return _p(row.value)


def _verdict_part(detection: Detection, faces: Sequence[DetectionFace], styles) -> list[Flowable]:
    story: list[Flowable] = [Spacer(1, 4 * mm)]
    noun = "video" if detection.kind == Detection.Kind.VIDEO else "image"
    if detection.status == Detection.Status.DONE and detection.label == Detection.Label.NO_FACE:
        story += [
            Paragraph("Verdict: No face", styles["verdict"]),
            Paragraph(
                f"The face detector found no face in this {noun}. The model judges faces only, "
                f"so there is no real or fake verdict for this {noun}.",
                styles["body"],
            ),
        ]
    elif detection.status == Detection.Status.DONE:
        colour = LABEL_COLOURS.get(detection.label, colors.black).hexval()[2:]
        story.append(
            Paragraph(
                f'Verdict: <font color="#{colour}">{_p(detection.get_label_display())}</font>',
                styles["verdict"],
            )
        )
        deciding = (
            f" (face {detection.deciding_face}, the most likely fake)" if len(faces) > 1 else ""
        )
        story.append(
            Paragraph(
                f"Probability that the image is fake: <b>{detection.fake_percent}%</b>{deciding}",
                styles["body"],
            )
        )
        band = detection.uncertain_band
        if band is not None:
            story.append(
                Paragraph(
                    f"Between {band.low}% and {band.high}% the model is not confident either way, "
                    "so it answers “uncertain”. Below that it says real, above it fake.",
                    styles["body"],
                )
            )
    elif detection.status == Detection.Status.FAILED:
        story.append(
            Paragraph(
                f"No verdict: {_p(detection.error or 'the analysis failed.')}", styles["body"]
            )
        )
    else:
        story.append(
            Paragraph(
                "The analysis has not finished yet: there is no verdict in this report. "
                "Download it again once the verdict is there.",
                styles["body"],
            )
        )
    return story


def _faces_part(detection: Detection, faces: Sequence[DetectionFace], styles) -> list[Flowable]:
    if not faces:
        return []
    header = ["Face", "Verdict", "P(fake)", "Decided"]
    data = [header] + [
        [
            str(face.index),
            pdf_text(face.get_label_display()),
            f"{face.fake_percent}%",
            "Yes, this face decided" if face.index == detection.deciding_face else "–",
        ]
        for face in faces
    ]
    table = Table(data, colWidths=[18 * mm, 35 * mm, 25 * mm, 60 * mm], hAlign="LEFT")
    style = TableStyle(
        [
            ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 9),
            ("FONT", (0, 1), (-1, -1), "Helvetica", 9.5),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f0f4f8")),
            ("LINEBELOW", (0, 0), (-1, -1), 0.4, colors.HexColor("#d9e2ec")),
            ("ALIGN", (2, 0), (2, -1), "RIGHT"),
        ]
    )
    for row, face in enumerate(faces, start=1):
        if face.index == detection.deciding_face:
            style.add("FONT", (0, row), (-1, row), "Helvetica-Bold", 9.5)
            style.add("BACKGROUND", (0, row), (-1, row), colors.HexColor("#fffbeb"))
    table.setStyle(style)
    caption = f"{len(faces)} face{'s' if len(faces) != 1 else ''} examined" + (
        "; the most likely fake one decides the image's verdict" if len(faces) > 1 else ""
    )
    return [Spacer(1, 4), Paragraph(caption, styles["small"]), Spacer(1, 2), table]


def _heatmaps_part(
    image: Image.Image | None,
    *,
    detection: Detection,
    faces: Sequence[DetectionFace],
    heatmaps: dict[int, bytes],
    styles,
) -> list[Flowable]:
    if image is None:
        return []
    tiles = []
    for face in faces:
        png = heatmaps.get(face.index)
        if not png:
            continue
        reader = _heatmap_tile(
            image, source_size=(detection.width, detection.height), box=face.heatmap_box, png=png
        )
        if reader is None:
            continue
        width, height = reader.getSize()
        tile_height = HEATMAP_TILE * height / max(width, 1)
        tiles.append(
            [
                _Picture(reader, HEATMAP_TILE, tile_height),
                Paragraph(f"Face {face.index}", styles["caption"]),
            ]
        )
    if not tiles:
        return []
    per_row = int(CONTENT_WIDTH // (HEATMAP_TILE + 4 * mm))
    rows = [tiles[i : i + per_row] for i in range(0, len(tiles), per_row)]
    cells = [[Table([[t[0]], [t[1]]]) for t in row] for row in rows]
    for row in cells:
        row.extend([""] * (per_row - len(row)))
    grid = Table(cells, colWidths=[HEATMAP_TILE + 4 * mm] * per_row, hAlign="LEFT")
    return [
        KeepTogether(
            [
                Paragraph("Heatmaps", styles["h2"]),
                Paragraph(
                    f"Where the network looked on each face it examined, laid over the region it "
                    f"saw (the brighter, the more attention). {HEATMAP_NOTE}",
                    styles["body"],
                ),
                Spacer(1, 4),
                grid,
            ]
        )
    ]


class _Picture(Flowable):
    def __init__(self, reader: ImageReader, width: float, height: float) -> None:
        super().__init__()
        self.reader, self.width, self.height = reader, width, height

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        return self.width, self.height

    def draw(self) -> None:
        self.canv.drawImage(self.reader, 0, 0, width=self.width, height=self.height)


def _provenance_part(summary: ProvenanceSummary | None, styles) -> list[Flowable]:
    """What the file says about itself: the evidence next to the verdict, the credentials'
    status, then each source's rows (detection.uploads.provenance says what they mean)."""
    head: list[Flowable] = [Paragraph("What the file says about itself", styles["h2"])]
    if summary is None or not summary.recorded:
        return head + [
            Paragraph(
                "Not recorded: this image was uploaded before the site read the metadata of "
                "uploads.",
                styles["body"],
            )
        ]
    story: list[Flowable] = []
    for line in summary.evidence:
        story += [Paragraph(f"<b>{_p(line)}</b>", styles["body"]), Spacer(1, 2)]
    if summary.c2pa_status:
        story += [Paragraph(_p(summary.c2pa_status), styles["body"]), Spacer(1, 2)]
    if summary.is_empty:
        story.append(
            Paragraph(
                "The file carried no camera data, no software names and no Content Credentials.",
                styles["body"],
            )
        )
    groups = []
    for group in summary.groups:
        groups.append(
            KeepTogether(
                [
                    Paragraph(f"<b>{_p(group.title)}</b>", styles["body"]),
                    Spacer(1, 1),
                    _rows_table([ReportRow(label, value) for label, value in group.rows], styles),
                    Spacer(1, 4),
                ]
            )
        )
    notes = [
        "Metadata is evidence separate from the model's verdict. Anyone can write or remove it, "
        "and most sites and apps strip it, so its absence proves nothing."
    ]
    notes += list(summary.errors)
    tail = [Paragraph(_p(note), styles["small"]) for note in notes]
    # The heading stays with the first thing under it.
    first = groups[:1] or tail[:1]
    return [KeepTogether(head + story + first), *groups[1:], *(tail if groups else tail[1:])]


def _model_rows(detection: Detection, model_card_url: str | None) -> list[ReportRow]:
    if not detection.model_version:
        return [ReportRow("Model", "No model has judged this image yet.")]
    rows = [
        ReportRow("Model", detection.model_name or "–"),
        ReportRow("Version", detection.model_version),
    ]
    if detection.threshold is not None:
        rows.append(ReportRow("Decision threshold", f"{round(detection.threshold * 100, 1)}%"))
    band = detection.uncertain_band
    if band is not None:
        rows.append(ReportRow("Uncertain band", f"{band.low}% – {band.high}%"))
    if model_card_url:
        rows.append(ReportRow("Model card", model_card_url, link=model_card_url))
    return rows


def _details_rows(detection: Detection) -> list[ReportRow]:
    rows = [
        ReportRow("File", detection.original_name or "–"),
        ReportRow(
            "Image",
            f"{detection.width} × {detection.height} px, {detection.format}, "
            f"{_size(detection.byte_size)}",
        ),
        ReportRow("Uploaded", local_time(detection.created_at)),
    ]
    if detection.finished_at:
        rows.append(ReportRow("Finished", local_time(detection.finished_at)))
    rows.append(ReportRow("SHA-256", detection.sha256))
    return rows


def _size(count: int) -> str:
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):.1f} MB"
    if count >= 1024:
        return f"{count / 1024:.1f} KB"
    return f"{count} bytes"


def _video_frame_part(
    detection: Detection,
    video_frame: tuple[bytes, list[int] | None, float | None] | None,
    styles: dict[str, ParagraphStyle],
) -> list[Flowable]:
    """A video's most suspicious frame with that face outlined (or its poster frame)."""
    seconds = f"{detection.duration_s:.1f} s " if detection.duration_s else ""
    about = f"A {seconds}video clip, {detection.width} × {detection.height} px"
    if not video_frame:
        return [Paragraph(f"{_p(about)}. No frame of it could be shown here.", styles["body"])]
    data, box, time_s = video_frame
    try:
        frame = Image.open(io.BytesIO(data))
        frame.load()
        frame = frame.convert("RGB")
    except (OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError):
        return [Paragraph(f"{_p(about)}. No frame of it could be shown here.", styles["body"])]
    if box is not None and time_s is not None:
        outlined = [DetectionFace(index=1, box=box, fake_probability=0, label="fake")]
        caption = (
            f"{about} · the frame at {time_s:.1f} s with the most suspicious face outlined"
        )
    else:
        outlined, caption = [], f"{about} · its first frame"
    picture = ImageWithFaces(
        frame, source_size=(detection.width, detection.height), faces=outlined, deciding=1
    )
    return [picture, Spacer(1, 1.5 * mm), Paragraph(_p(caption), styles["caption"])]


def _tracks_part(
    detection: Detection, tracks: list[VideoTrack], styles: dict[str, ParagraphStyle]
) -> list[Flowable]:
    if not tracks:
        return []
    header = ["Track", "Verdict", "P(fake)", "Highest", "Seen", "Frames"]
    data = [header] + [
        [
            str(track.index),
            pdf_text(track.get_label_display()),
            f"{track.fake_percent}%",
            f"{round(track.max_probability * 100, 1)}%",
            f"{track.start_s:.1f}–{track.end_s:.1f} s",
            str(track.frames),
        ]
        for track in tracks
    ]
    widths = [16 * mm, 28 * mm, 22 * mm, 22 * mm, 34 * mm, 18 * mm]
    table = Table(data, colWidths=widths, hAlign="LEFT")
    style = TableStyle(
        [
            ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 9),
            ("FONT", (0, 1), (-1, -1), "Helvetica", 9.5),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f0f4f8")),
            ("LINEBELOW", (0, 0), (-1, -1), 0.4, colors.HexColor("#d9e2ec")),
            ("ALIGN", (2, 0), (3, -1), "RIGHT"),
        ]
    )
    for row, track in enumerate(tracks, start=1):
        if track.index == detection.deciding_track:
            style.add("FONT", (0, row), (-1, row), "Helvetica-Bold", 9.5)
            style.add("BACKGROUND", (0, row), (-1, row), colors.HexColor("#fffbeb"))
    table.setStyle(style)
    caption = (
        f"{len(tracks)} face track{'s' if len(tracks) != 1 else ''}: a face followed from frame "
        "to frame; the most suspicious track decides the video's verdict. "
        + (detection.aggregate_method or "")
    )
    return [Spacer(1, 4), Paragraph(_p(caption), styles["small"]), Spacer(1, 2), table]


def report_pdf(
    *,
    detection: Detection,
    faces: Sequence[DetectionFace],
    heatmaps: dict[int, bytes],
    provenance: ProvenanceSummary | None,
    model_card_url: str | None = None,
    generated_at: dt.datetime | None = None,
    compress: bool = True,
    video_frame: tuple[bytes, list[int] | None, float | None] | None = None,
    tracks: Sequence[VideoTrack] = (),
) -> bytes:
    """The report of `detection` as PDF bytes (A4, one page or more).

    `faces` are the detection's faces in order; `heatmaps` their heatmap PNGs by face index;
    `provenance` what the file says about itself (None: not known); `model_card_url` the
    model card page, if the site has one. `compress=False` leaves the page content readable
    (for tests). A video shows `video_frame` (its most suspicious frame as JPEG bytes, with that
    face's box and time, or its poster) instead of the picture, and its `tracks`."""
    generated_at = generated_at or timezone.now()
    styles = _styles()
    is_video = detection.kind == Detection.Kind.VIDEO
    name = detection.original_name or ("Uploaded video" if is_video else "Uploaded image")
    faces = list(faces)
    image = None if is_video else _image_read(detection)

    story: list[Flowable] = [
        Paragraph("Detection report", styles["title"]),
        Paragraph(_p(name), styles["subtitle"]),
        Spacer(1, 3 * mm),
    ]
    if is_video:
        story += _video_frame_part(detection, video_frame, styles)
    elif image is not None:
        picture = ImageWithFaces(
            image,
            source_size=(detection.width, detection.height),
            faces=faces,
            deciding=detection.deciding_face,
        )
        drawn = sum(_box(face.box) is not None for face in faces)
        caption = f"{detection.width} × {detection.height} px"
        if drawn == 1:
            caption += " · the outlined face is what the model examined"
        elif drawn > 1:
            caption += " · each outlined face was examined; the highlighted one decided"
        story += [picture, Spacer(1, 1.5 * mm), Paragraph(caption, styles["caption"])]
    else:
        story.append(Paragraph("The image could not be read for this report.", styles["body"]))

    story += _verdict_part(detection, faces, styles)
    if is_video:
        story += _tracks_part(detection, list(tracks), styles)
    else:
        story += _faces_part(detection, faces, styles)
        story += _heatmaps_part(
            image, detection=detection, faces=faces, heatmaps=heatmaps, styles=styles
        )
    story += _provenance_part(provenance, styles)
    story.append(
        KeepTogether(
            [
                Paragraph("Model", styles["h2"]),
                _rows_table(_model_rows(detection, model_card_url), styles),
            ]
        )
    )
    story.append(
        KeepTogether(
            [Paragraph("Details", styles["h2"]), _rows_table(_details_rows(detection), styles)]
        )
    )
    story += [
        Spacer(1, 5 * mm),
        Paragraph(f"<b>{_p(DISCLAIMER)}</b>", styles["body"]),
        Paragraph(f"Generated {_p(local_time(generated_at))} by {SITE_NAME}.", styles["small"]),
    ]

    buffer = io.BytesIO()
    footer = pdf_text(f"{SITE_NAME} · detection report · {name}")[:110]

    def _page(canvas: Canvas, doc: SimpleDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7.5)
        canvas.setFillColor(colors.HexColor("#52606d"))
        canvas.drawString(MARGIN, 10 * mm, footer)
        canvas.drawRightString(PAGE_WIDTH - MARGIN, 10 * mm, f"Page {doc.page}")
        canvas.restoreState()

    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=pdf_text(f"Detection report: {name}"),
        author=SITE_NAME,
        subject=pdf_text(_subject(detection)),
        creator=SITE_NAME,
        pageCompression=1 if compress else 0,
    )
    doc.build(story, onFirstPage=_page, onLaterPages=_page)
    return buffer.getvalue()


def _subject(detection: Detection) -> str:
    if detection.status != Detection.Status.DONE:
        return "No verdict yet" if not detection.is_final else "No verdict"
    if detection.fake_percent is None:
        return f"Verdict: {detection.get_label_display()}"
    return f"Verdict: {detection.get_label_display()}, {detection.fake_percent}% likely fake"
