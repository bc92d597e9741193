"""Parity of the browser model with the server engine, measured in real Chromium.

    python -m ml web-parity [--data ../shared/datasets/faces128] [--per-source 20]
                            [--json out.json] [--write-card]

The same files go to ``Engine.predict`` (this process, TensorFlow) and to the private check's
own JavaScript (``static/js/private-check/``: the exported networks of ``python -m ml
export-web`` on TF.js) in headless Chromium, which decodes them itself. Faces are paired by box
overlap; the figures are the differences in calibrated P(fake) per face, the label agreement,
boxes found by one side only, and the time per image on each side. ``--write-card`` records
them in the model card (``browser_parity``), where the model pages show them.

Besides the data set's test faces (as they are: each fills its frame), a few scenes made here
from them exercise what the test faces do not: resizing (a face upscaled to 700 px), a small
face in a large photo (the crop path) and several faces at once.

No Django: the static folder is served by a throwaway local HTTP server on 127.0.0.1, and the
browser is Debian's Chromium driven by Playwright (a test dependency).
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import http.server
import io
import json
import statistics
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from . import REPO_ROOT, read_card, resolve_model_dir
from .preprocess import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES

STATIC_DIR = REPO_ROOT / "static"
WEB_MODEL_URL = "/static/private-check/model/"
CHROMIUM = "/usr/bin/chromium"
# Two faces are "the same face" on both sides when their boxes overlap at least this much.
PAIR_IOU = 0.5

_HARNESS_HTML = """<!doctype html><meta charset="utf-8"><title>parity</title>
<script src="/static/vendor/tfjs/tf-core.min.js"></script>
<script src="/static/vendor/tfjs/tf-backend-cpu.min.js"></script>
<script src="/static/vendor/tfjs/tf-backend-wasm.min.js"></script>
<script type="module" src="/harness.js"></script>
"""

_HARNESS_JS = """
import { engineLoad } from "/static/js/private-check/engine.js";
import { imageDecode } from "/static/js/private-check/decode.js";
let engine = null;
window.harnessReady = engineLoad({
  baseUrl: "%(model_url)s", onProgress() {},
}).then((e) => { engine = e; return e.backend; });
window.harnessPredict = async (b64) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const t0 = performance.now();
  const image = await imageDecode(new Blob([bytes]), { maxPixels: %(max_pixels)d });
  const result = await engine.predict(image);
  return { ...result, browser_ms: performance.now() - t0 };
};
"""


class _Handler(http.server.SimpleHTTPRequestHandler):
    """/static/... from the repository's static folder; / and /harness.js from memory."""

    pages: dict[str, tuple[str, bytes]] = {}

    def do_GET(self):  # noqa: N802 - the stdlib's name
        path = self.path.split("?", 1)[0]
        if path in self.pages:
            ctype, body = self.pages[path]
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if not path.startswith("/static/"):
            self.send_error(404)
            return
        self.path = path[len("/static"):]
        super().do_GET()

    def log_message(self, *args):  # quiet
        pass


def _serve(max_pixels: int) -> http.server.ThreadingHTTPServer:
    handler = functools.partial(_Handler, directory=str(STATIC_DIR))
    _Handler.pages = {
        "/": ("text/html; charset=utf-8", _HARNESS_HTML.encode()),
        "/harness.js": ("text/javascript; charset=utf-8",
                        (_HARNESS_JS % {"model_url": WEB_MODEL_URL,
                                        "max_pixels": max_pixels}).encode()),
    }
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# ----------------------------------------------------------------------------- the images


def _encode(img: Image.Image, fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    return buf.getvalue()


def parity_images(data: Path, *, per_source: int, split: str = "test") -> list[dict]:
    """``[{"name", "source", "bytes"}]``: ``per_source`` files per source (half real, half
    fake, evenly spread over each sorted folder), then the made scenes."""
    items: list[dict] = []
    faces: list[Path] = []
    for source_dir in sorted(p for p in Path(data).iterdir() if p.is_dir()):
        for cls in ("real", "fake"):
            folder = source_dir / split / cls
            files = sorted(f for f in folder.glob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
            want = per_source // 2 if cls == "real" else per_source - per_source // 2
            if not files or want < 1:
                continue
            step = max(1, len(files) // want)
            for f in files[::step][:want]:
                items.append({"name": f"{source_dir.name}/{cls}/{f.name}",
                              "source": source_dir.name, "bytes": f.read_bytes()})
                faces.append(f)
    items.extend(_scenes(faces))
    return items


def _scenes(faces: list[Path]) -> list[dict]:
    """Scenes that take the resize and crop paths; made the same way on every run."""
    if len(faces) < 3:
        return []
    pick = [Image.open(faces[i * len(faces) // 3]).convert("RGB") for i in range(3)]
    out = []
    big = pick[0].resize((700, 700), Image.Resampling.BICUBIC)
    out.append({"name": "scene/upscaled-700", "source": "scene", "bytes": _encode(big)})
    wide = Image.new("RGB", (1200, 800), (96, 110, 124))
    wide.paste(pick[1].resize((200, 200), Image.Resampling.LANCZOS), (640, 180))
    out.append({"name": "scene/small-face-1200x800", "source": "scene",
                "bytes": _encode(wide)})
    group = Image.new("RGB", (900, 600), (200, 190, 170))
    for i, face in enumerate(pick):
        group.paste(face.resize((220, 220), Image.Resampling.LANCZOS), (40 + i * 290, 160))
    out.append({"name": "scene/three-faces-900x600", "source": "scene",
                "bytes": _encode(group, "PNG")})
    return out


# ----------------------------------------------------------------------------- comparing


def _iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def compare(server: dict, browser: dict) -> dict:
    """One image's comparison: faces paired greedily by box overlap."""
    s_faces, b_faces = server["faces"], browser.get("faces") or []
    pairs, used = [], set()
    for sf in s_faces:
        best, best_j = 0.0, None
        for j, bf in enumerate(b_faces):
            if j in used:
                continue
            v = _iou(sf["box"], bf["box"])
            if v > best:
                best, best_j = v, j
        if best_j is not None and best >= PAIR_IOU:
            used.add(best_j)
            bf = b_faces[best_j]
            pairs.append({
                "p_server": sf["fake_probability"], "p_browser": bf["fake_probability"],
                "diff": abs(sf["fake_probability"] - bf["fake_probability"]),
                "iou": best,
                "box_px": max(abs(a - b) for a, b in zip(sf["box"], bf["box"], strict=True)),
                "same_label": sf["label"] == bf["label"],
            })
    return {
        "label_server": server["label"], "label_browser": browser.get("label"),
        "same_label": server["label"] == browser.get("label"),
        "p_server": server["fake_probability"], "p_browser": browser.get("fake_probability"),
        "pairs": pairs,
        "server_only": len(s_faces) - len(pairs),
        "browser_only": len(b_faces) - len(pairs),
        "browser_ms": browser.get("browser_ms"),
    }


def summarise(rows: list[dict], *, tolerance: float) -> dict:
    diffs = [p["diff"] for r in rows for p in r["pairs"]]
    box_px = [p["box_px"] for r in rows for p in r["pairs"]]
    out = {
        "images": len(rows),
        "faces_paired": len(diffs),
        "faces_server_only": sum(r["server_only"] for r in rows),
        "faces_browser_only": sum(r["browser_only"] for r in rows),
        "label_agreement": (sum(r["same_label"] for r in rows) / len(rows)) if rows else None,
        "max_abs_diff": max(diffs) if diffs else None,
        "mean_abs_diff": float(np.mean(diffs)) if diffs else None,
        "p95_abs_diff": float(np.quantile(diffs, 0.95)) if diffs else None,
        "within_tolerance": (sum(d <= tolerance for d in diffs) / len(diffs)) if diffs else None,
        "max_box_px": max(box_px) if box_px else None,
        "tolerance": tolerance,
    }
    per_source: dict[str, dict] = {}
    for r in rows:
        per_source.setdefault(r["source"], []).append(r)
    out["per_source"] = {
        src: {"images": len(rs),
              "max_abs_diff": max((p["diff"] for r in rs for p in r["pairs"]), default=None),
              "label_agreement": sum(r["same_label"] for r in rs) / len(rs)}
        for src, rs in sorted(per_source.items())
    }
    return out


def run(*, data: Path, per_source: int, model_dir: Path | None = None,
        chromium: str = CHROMIUM, max_pixels: int = DEFAULT_MAX_PIXELS) -> dict:
    from playwright.sync_api import sync_playwright

    from .inference import Engine

    model_dir = resolve_model_dir(model_dir)
    manifest = json.loads((STATIC_DIR / "private-check" / "model" / "manifest.json").read_text())
    card = read_card(model_dir)
    if manifest["model"]["source_weights_sha256"] != card["weights_sha256"]:
        raise SystemExit("The browser model was exported from other weights than "
                         f"{model_dir}: run `python -m ml export-web` first.")
    tolerance = float(manifest["parity_tolerance"])
    images = parity_images(data, per_source=per_source)
    if not images:
        raise SystemExit(f"no images under {data}")
    engine = Engine.load(model_dir, max_pixels=max_pixels)
    server = _serve(max_pixels)
    rows = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
            backend = page.evaluate("window.harnessReady", )
            for i, item in enumerate(images):
                t0 = time.perf_counter()
                pred = engine.predict(item["bytes"]).as_dict()
                server_ms = (time.perf_counter() - t0) * 1000.0
                b64 = base64.b64encode(item["bytes"]).decode()
                got = page.evaluate("(b) => window.harnessPredict(b)", b64)
                row = compare(pred, got)
                row.update(name=item["name"], source=item["source"], server_ms=server_ms)
                rows.append(row)
                worst = max((p["diff"] for p in row["pairs"]), default=0.0)
                print(f"[{i + 1}/{len(images)}] {item['name']}: server {pred['label']} "
                      f"{_p(pred['fake_probability'])}, browser {got.get('label')} "
                      f"{_p(got.get('fake_probability'))}, max diff {worst:.4f}", flush=True)
            version = str(browser.version)
            browser.close()
    finally:
        server.shutdown()
    summary = summarise(rows, tolerance=tolerance)
    summary.update(
        backend=backend, chromium=version, model_version=manifest["model"]["version"],
        measured=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        command=f"python -m ml web-parity --data {data} --per-source {per_source}",
        browser_ms_median=statistics.median(r["browser_ms"] for r in rows),
        server_ms_median=statistics.median(r["server_ms"] for r in rows),
        download_bytes=int(manifest["total_bytes"]),
    )
    return {"summary": summary, "rows": rows}


def _p(v) -> str:
    return "-" if v is None else f"{v:.4f}"


def card_record(model_dir: Path | None, summary: dict) -> None:
    """Write the figures into the model card (``browser_parity``) and re-render card.md."""
    from .card import write_card

    model_dir = resolve_model_dir(model_dir)
    card = read_card(model_dir)
    card["browser_parity"] = {k: v for k, v in summary.items()}
    write_card(model_dir, card)
