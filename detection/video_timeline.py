"""The video result page's pictures of a verdict over time: the timeline of each face track's
P(fake) and the strip of the most suspicious frames, as numbers ready for the templates
(templates/detection/_video_timeline.html, _video_result.html), which draw them as SVG.

No inline style is allowed on the pages (Content-Security-Policy), so every position is an SVG
attribute. The plot has a fixed height in pixels and the page's width: points, the band and the
labels are placed in percentages (their size stays in pixels, readable on a phone), the lines in
a stretched 1000 x 1000 box with strokes that do not scale. Numbers are written here as text, so
no template localisation can turn "12.5" into "12,5" inside an attribute.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.urls import reverse

from detection.models import Detection, VideoFace, VideoTrack, box_percent, clock_label

# Distinct line colours (site.css: .track-colour-1 .. -8); a ninth track reuses the first.
TRACK_COLOURS = 8
# Percent of the width kept free at each end, so the first and last points are not cut in half.
X_MARGIN = 2.0
# Time labels under the plot: the smallest of these steps that needs at most MAX_TICKS labels.
TICK_STEPS = (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
MAX_TICKS = 6
# The strip shows at most this many frames, the most suspicious first.
STRIP_MAX_FRAMES = 8


def _num(value: float) -> str:
    """A number for an SVG attribute: at most 3 decimals, no trailing zeros, "." always."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def track_colour(index: int) -> int:
    return (max(index, 1) - 1) % TRACK_COLOURS + 1


@dataclass(frozen=True)
class TimelinePoint:
    time: str  # seconds, for data-time (the video seeks there)
    x: str  # percent of the plot's width
    y: str  # percent of its height, 0 at the top (P(fake) 1)
    percent: float  # P(fake) in percent, for people
    clock: str  # "0:03.5"
    title: str


@dataclass(frozen=True)
class TimelineSeries:
    index: int
    colour: int
    label: str
    deciding: bool
    polyline: str  # "x,y x,y ..." in the 1000 x 1000 box
    points: tuple[TimelinePoint, ...]


@dataclass(frozen=True)
class TimelineTick:
    x: str
    label: str
    anchor: str  # text-anchor: the first label starts, the last ends, at its tick


@dataclass(frozen=True)
class TimelinePlot:
    series: tuple[TimelineSeries, ...]
    ticks: tuple[TimelineTick, ...]
    duration: str  # seconds, for the script's current-time marker
    x_margin: str  # X_MARGIN, for the same
    band_top: str | None  # the uncertain band, percent of the height from the top
    band_height: str | None
    band_text: str
    threshold_y: str | None
    threshold_text: str
    summary: str  # the plot in words, for screen readers
    radius: str  # of a point, in pixels: smaller where a track has many
    radius_deciding: str
    # While the video is analysed: one line, the most suspicious face of each frame judged so
    # far (no tracks, band or threshold yet).
    provisional: bool = False

    @property
    def point_count(self) -> int:
        return sum(len(s.points) for s in self.series)


def x_percent(time_s: float, duration_s: float) -> float:
    if duration_s <= 0:
        return 50.0
    share = min(max(time_s / duration_s, 0.0), 1.0)
    return X_MARGIN + (100 - 2 * X_MARGIN) * share


def y_percent(probability: float) -> float:
    return 100 * (1 - min(max(probability, 0.0), 1.0))


def _ticks(duration_s: float) -> tuple[TimelineTick, ...]:
    if duration_s <= 0:
        return (TimelineTick(x=_num(x_percent(0, 0)), label="0:00", anchor="middle"),)
    step = next((s for s in TICK_STEPS if duration_s / s <= MAX_TICKS - 1), TICK_STEPS[-1])
    times = []
    t = 0.0
    while t <= duration_s + 1e-9:
        times.append(t)
        t += step
    ticks = []
    for time_s in times:
        x = x_percent(time_s, duration_s)
        # Labels at the ends grow inwards, so they are not cut off on a narrow screen.
        anchor = "start" if x < 8 else "end" if x > 92 else "middle"
        ticks.append(
            TimelineTick(
                x=_num(x),
                label=_tick_label(time_s, duration_s),
                anchor=anchor,
            )
        )
    return tuple(ticks)


def _tick_label(time_s: float, duration_s: float) -> str:
    # Short clips in seconds ("1.5 s"): shorter on a phone than "0:01.5"; longer in m:ss.
    return f"{_num(time_s)} s" if duration_s < 60 else clock_label(time_s)


def timeline_plot(*, detection: Detection, tracks: Sequence[VideoTrack]) -> TimelinePlot:
    """The timeline of a done video: one series per track (its faces, prefetched, in time
    order), the uncertain band and the threshold the verdict was made with."""
    faces = {track.index: list(track.faces.all()) for track in tracks}
    latest = max((f.time_s for fs in faces.values() for f in fs), default=0.0)
    latest = max([latest, *(t.end_s for t in tracks)])
    duration = max(float(detection.duration_s or 0.0), latest)
    series = [
        _series(
            index=track.index,
            label=track.get_label_display(),
            deciding=track.index == detection.deciding_track,
            samples=[(face.time_s, face.fake_probability) for face in faces[track.index]],
            duration=duration,
            name=f"Track {track.index}",
        )
        for track in tracks
    ]
    return _plot(detection=detection, series=series, duration=duration)


def timeline_so_far(*, detection: Detection) -> TimelinePlot | None:
    """While a video is analysed: the P(fake) of the most suspicious face in each frame judged so
    far (Detection.progress_points), one line that fills in; None before the first face."""
    samples = [
        (float(t), float(p))
        for t, p in (detection.progress_points or [])
        if t is not None and p is not None
    ]
    if not samples:
        return None
    duration = max(float(detection.duration_s or 0.0), max(t for t, _ in samples))
    series = _series(
        index=0,
        label="The most suspicious face of each frame so far",
        deciding=False,
        samples=samples,
        duration=duration,
        name="So far",
    )
    return _plot(detection=detection, series=[series], duration=duration, provisional=True)


def _series(
    *,
    index: int,
    label: str,
    deciding: bool,
    samples: list[tuple[float, float]],
    duration: float,
    name: str,
) -> TimelineSeries:
    """One line of the plot: (time, P(fake)) samples, in time order."""
    points = []
    line = []
    for time_s, probability in sorted(samples):
        x, y = x_percent(time_s, duration), y_percent(probability)
        percent = round(probability * 100, 1)
        clock = clock_label(time_s, tenths=True)
        points.append(
            TimelinePoint(
                time=_num(time_s),
                x=_num(x),
                y=_num(y),
                percent=percent,
                clock=clock,
                title=f"{name} at {clock}: {percent}% likely fake",
            )
        )
        line.append(f"{_num(x * 10)},{_num(y * 10)}")
    return TimelineSeries(
        index=index,
        colour=track_colour(index),
        label=label,
        deciding=deciding,
        polyline=" ".join(line),
        points=tuple(points),
    )


def _plot(
    *,
    detection: Detection,
    series: list[TimelineSeries],
    duration: float,
    provisional: bool = False,
) -> TimelinePlot:
    """The plot around its lines: ticks, and the band and threshold the verdict was made with
    (none while it runs)."""
    # Points far apart stay large enough to hit with a finger; dense ones must not hide the line.
    most = max((len(s.points) for s in series), default=0)
    radius = 4.5 if most <= 30 else 3.5 if most <= 70 else 2.5
    low, high, threshold = detection.uncertain_low, detection.uncertain_high, detection.threshold
    band = low is not None and high is not None and high > low
    return TimelinePlot(
        series=tuple(series),
        ticks=_ticks(duration),
        duration=_num(duration),
        x_margin=_num(X_MARGIN),
        band_top=_num(y_percent(high)) if band else None,
        band_height=_num(100 * (high - low)) if band else None,
        band_text=(
            f"Uncertain band: between {round(low * 100, 1)}% and {round(high * 100, 1)}% the "
            "model is not confident either way."
            if band
            else ""
        ),
        threshold_y=_num(y_percent(threshold)) if threshold is not None else None,
        threshold_text=(f"Threshold {round(threshold * 100, 1)}%" if threshold is not None else ""),
        summary=_summary(series, duration),
        radius=_num(radius),
        radius_deciding=_num(radius + 0.5),
        provisional=provisional,
    )


def _summary(series: Iterable[TimelineSeries], duration: float) -> str:
    parts = []
    for s in series:
        if not s.points:
            continue
        top = max(s.points, key=lambda p: p.percent)
        name = f"track {s.index}" if s.index else "so far"
        parts.append(
            f"{name}: {len(s.points)} frame{'s' if len(s.points) != 1 else ''}, "
            f"highest {top.percent}% at {top.clock}"
        )
    head = f"P(fake) of each face track over the {clock_label(duration)} of the video"
    return head + (": " + "; ".join(parts) + "." if parts else ".")


@dataclass(frozen=True)
class StripFrame:
    face_id: int
    url: str
    time: str
    clock: str
    percent: float
    track: int
    colour: int
    box: dict[str, str] | None  # the face's box, percentages of the frame


def suspicious_frames(
    *, detection: Detection, tracks: Sequence[VideoTrack], limit: int = STRIP_MAX_FRAMES
) -> list[StripFrame]:
    """The frames the worker kept a picture of (the most suspicious faces), most likely fake
    first; their faces come prefetched with `has_snapshot` (the pictures' bytes stay behind)."""
    kept: list[VideoFace] = [
        face
        for track in tracks
        for face in track.faces.all()
        if getattr(face, "has_snapshot", False)
    ]
    kept.sort(key=lambda f: (-f.fake_probability, f.time_s))
    frames = []
    for face in kept[:limit]:
        box = box_percent(face.box, width=detection.width, height=detection.height)
        frames.append(
            StripFrame(
                face_id=face.id,
                url=reverse("detection:video-frame", args=[detection.id, face.id]),
                time=_num(face.time_s),
                clock=clock_label(face.time_s, tenths=True),
                percent=round(face.fake_probability * 100, 1),
                track=face.track.index,
                colour=track_colour(face.track.index),
                box={k: _num(v) for k, v in box.items()} if box else None,
            )
        )
    return frames


@dataclass(frozen=True)
class TrackRow:
    track: VideoTrack
    colour: int
    deciding: bool
    max_percent: float
    start: str  # seconds, for data-time
    start_clock: str
    end_clock: str


def track_rows(*, detection: Detection, tracks: Sequence[VideoTrack]) -> list[TrackRow]:
    """The tracks table: each track with its colour on the timeline and when it was seen."""
    return [
        TrackRow(
            track=track,
            colour=track_colour(track.index),
            deciding=track.index == detection.deciding_track,
            max_percent=round(track.max_probability * 100, 1),
            start=_num(track.start_s),
            start_clock=clock_label(track.start_s, tenths=True),
            end_clock=clock_label(track.end_s, tenths=True),
        )
        for track in tracks
    ]
