"""Video: frames per second through the worker's video path, on a generated 720p clip.

    python -m bench.video --json OUT [--quick]

The worker's path for a clip (ml.video.analyze_video, as detection.worker.services runs it):
decode the stream once, take the frame nearest each sample time, find the faces (MTCNN) and
judge each with the model (a few frames per model call), track them, aggregate. Measured on a
generated clip: 1280 x 720, 30 frames/s, H.264 (libx264, CRF 24), 10 s (--quick: 4 s), a real
face (a test face of the shared data) sliding across a textured, slowly panning background with
noise in every frame, so that the stream is not trivially compressible (its bitrate is in the
table). At 2 sampled frames per second (the worker's default, DETECTION_VIDEO_SAMPLE_FPS) and
at 5; the engine with the worker's thread settings (one intra-op and one inter-op thread). The
decoding alone (decode + sampling, no faces, no model) is timed apart, to show its share.

The figures: sampled frames judged per second (the worker's throughput), video frames decoded
per second, and how many seconds of video one second of worker time covers (x real time).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from bench import section_args, section_result, section_write
from bench.images import bench_image_paths

SIZE = (1280, 720)
FPS = 30
SAMPLE_RATES = (2.0, 5.0)
MAX_SAMPLES = 120  # the worker's default cap (DETECTION_VIDEO_MAX_SAMPLES)
SOFT_TIME_LIMIT_S = 60  # CELERY_TASK_SOFT_TIME_LIMIT's default, for the estimate in the notes


def make_clip(path: Path, *, seconds: int, size=SIZE, fps: int = FPS) -> dict:
    """Write the benchmark clip; returns what it is (frames, bytes, bitrate)."""
    import av
    from PIL import Image

    w, h = size
    rng = np.random.default_rng(11)
    # A smooth random background twice the frame's width, panned slowly.
    base = rng.integers(40, 215, (9, 16, 3), dtype=np.uint8)
    background = np.asarray(Image.fromarray(base).resize((2 * w, h), Image.Resampling.BICUBIC))
    side = h * 2 // 5
    [face_path] = bench_image_paths(1)
    face = np.asarray(Image.open(face_path).convert("RGB").resize(
        (side, side), Image.Resampling.LANCZOS))
    n = seconds * fps
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "24"}
        for i in range(n):
            t = i / max(1, n - 1)
            offset = int(t * (w - 1))
            frame = background[:, offset:offset + w].copy()
            x = int((w - side) * (0.1 + 0.6 * t))
            y = (h - side) // 2 + int(20 * np.sin(6 * t))
            frame[y:y + side, x:x + side] = face
            noise = rng.integers(-14, 15, frame.shape, dtype=np.int16)
            frame = np.clip(frame.astype(np.int16) + noise, 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    size_bytes = path.stat().st_size
    return {"seconds": seconds, "frames": n, "width": w, "height": h, "fps": fps,
            "bytes": size_bytes, "mbit_per_s": round(size_bytes * 8 / seconds / 1e6, 2)}


def _decode_only(path: Path, sample_fps: float) -> tuple[float, int]:
    """Seconds to open the clip and take its sampled frames (no faces, no model)."""
    from ml.video import VideoReader, plan_samples

    t0 = time.perf_counter()
    with VideoReader(str(path)) as reader:
        times = plan_samples(reader.info.duration_s, sample_fps, MAX_SAMPLES,
                             reader.info.frame_count)
        taken = sum(1 for _ in reader.samples(times))
    return time.perf_counter() - t0, taken


def run(*, seconds: int, repeats: int) -> dict:
    from ml.inference import Engine
    from ml.preprocess import DEFAULT_MAX_PIXELS
    from ml.video import analyze_video

    engine = Engine.load(None, intra_threads=1, inter_threads=1, max_pixels=DEFAULT_MAX_PIXELS)
    with tempfile.TemporaryDirectory(prefix="bench-video-") as tmp:
        path = Path(tmp) / "clip.mp4"
        clip = make_clip(path, seconds=seconds)
        # Warm-up: the face detector's graphs for this frame size, the model's batch shapes.
        analyze_video(engine, str(path), sample_fps=2.0, max_samples=4)
        runs = []
        for sample_fps in SAMPLE_RATES:
            walls, decodes, results = [], [], []
            for _ in range(repeats):
                t0 = time.perf_counter()
                result = analyze_video(engine, str(path), sample_fps=sample_fps,
                                       max_samples=MAX_SAMPLES, snapshots=5)
                walls.append(time.perf_counter() - t0)
                results.append(result)
                decodes.append(_decode_only(path, sample_fps)[0])
            result = results[-1]
            wall = statistics.median(walls)
            decode = statistics.median(decodes)
            samples = result.frames_total
            # Decoding stops at the last sample: about the whole stream but its last part.
            last = result.sample_times[-1] if result.sample_times else 0.0
            decoded = min(clip["frames"], int(round(last * clip["fps"])) + 1)
            runs.append({
                "sample_fps": sample_fps,
                "samples": samples,
                "tracks": len(result.tracks),
                "faces": sum(t.frames for t in result.tracks),
                "label": result.label,
                "seconds": round(wall, 3),
                "seconds_all": [round(x, 3) for x in walls],
                "decode_only_seconds": round(decode, 3),
                "sampled_frames_per_s": round(samples / wall, 2),
                "video_frames_decoded": decoded,
                "video_frames_decoded_per_s": round(decoded / wall, 1),
                "x_real_time": round(clip["seconds"] / wall, 2),
                "ms_per_sample_faces_and_model": round((wall - decode) / samples * 1000, 1),
                "ms_per_frame_decode": round(decode / decoded * 1000, 2),
            })
    return {"clip": clip, "runs": runs, "repeats": repeats,
            "model": f"{engine.name} {engine.version}"}


def main() -> None:
    args = section_args(__doc__.splitlines()[0]).parse_args()
    res = run(seconds=4 if args.quick else 10, repeats=1 if args.quick else 3)
    clip = res["clip"]
    name = (f"{clip['seconds']} s {clip['width']}x{clip['height']} {clip['fps']} fps H.264 "
            f"({clip['mbit_per_s']} Mbit/s)")
    rows = [[f"{r['sample_fps']:g}", name, r["samples"], r["seconds"],
             r["sampled_frames_per_s"], r["video_frames_decoded_per_s"], r["x_real_time"],
             r["decode_only_seconds"], r["ms_per_sample_faces_and_model"]]
            for r in res["runs"]]
    # What the defaults cost for the longest clip the upload gate takes at this size: every
    # frame of 120 s decoded, 120 samples judged (2 a second, capped at 120).
    base = res["runs"][0]
    estimate = (120 * FPS * base["ms_per_frame_decode"]
                + MAX_SAMPLES * base["ms_per_sample_faces_and_model"]) / 1000
    section_write(args.json, section_result(
        section="video",
        title="Video: frames per second through the worker's video path",
        columns=["sampled / s", "clip", "sampled frames", "seconds (median)",
                 "sampled frames judged / s", "video frames decoded / s", "x real time",
                 "decode + sampling only (s)", "faces + model per sample (ms)"],
        rows=rows,
        data=res,
        notes=[
            f"Model {res['model']}, one intra-op and one inter-op thread (the worker's "
            "default); FFmpeg decodes with its own threads. The path: ml.video.analyze_video "
            "(decode, sample, MTCNN face step, model, tracking), as the worker runs it; the "
            f"median of {res['repeats']} run(s) after a warm-up. The clip is generated (one "
            "real face moving over a textured, panning background), not a real recording.",
            f"Estimate from these figures: a 120 s 720p clip at 30 fps (the upload limit's "
            f"length) at the default 2 sampled frames a second (capped at {MAX_SAMPLES}) takes "
            f"about {estimate:.0f} s in the worker (every frame decoded at "
            f"{base['ms_per_frame_decode']} ms, {MAX_SAMPLES} samples at "
            f"{base['ms_per_sample_faces_and_model']} ms); the task's soft time limit is "
            f"{SOFT_TIME_LIMIT_S} s by default (CELERY_TASK_SOFT_TIME_LIMIT).",
        ],
    ))


if __name__ == "__main__":
    main()
