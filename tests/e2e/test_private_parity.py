"""Parity of the private check with the server (issue 14): the same files go to the server's
engine (ml.inference.Engine, this process) and through the Private check page in real Chromium
(the browser decodes, finds faces and runs the exported networks itself). Per face, P(fake) must
agree within the tolerance the model card states (the manifest's `parity_tolerance`), and the
faces, their order and the labels must be the same.

The images: two test faces per source of the shared data (one real, one fake), and the made
scenes of `ml.web_parity` that take the paths the test faces do not: an upscaled face (resizing),
a small face in a large photo (the crop) and three faces in one picture. The full measurement
over more images is `python -m ml web-parity` (its figures are in the model card).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml.web_parity import parity_images
from tests.e2e.conftest import csp_watched_page
from tests.face_images import FACES128

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = json.loads((ROOT / "static" / "private-check" / "model" / "manifest.json").read_text())
TOLERANCE = float(MANIFEST["parity_tolerance"])
MODEL_READY_MS = 180_000
CHECK_MS = 120_000


@pytest.fixture(scope="module")
def server_engine():
    from django.conf import settings

    from ml.inference import Engine

    return Engine.load(intra_threads=1, inter_threads=1, max_pixels=settings.DETECTION_MAX_PIXELS)


def _near_an_edge(p: float | None) -> bool:
    """A P(fake) so close to the threshold or a band edge that an allowed difference could move
    it across (then only the probabilities are compared, not the labels)."""
    m = MANIFEST["model"]
    return p is not None and any(
        abs(p - edge) <= TOLERANCE for edge in (m["uncertain_low"], m["threshold"],
                                                m["uncertain_high"]))


def test_the_page_gives_the_servers_probabilities(
    browser, live_server, transactional_db, server_engine, tmp_path
):
    images = parity_images(FACES128, per_source=2)
    assert len([i for i in images if i["source"] == "scene"]) == 3
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    try:
        page = csp_watched_page(context)
        page.goto(f"{live_server.url}/private-check/")
        page.wait_for_selector("#pc-progress-text[data-state='ready']", timeout=MODEL_READY_MS)
        checked = 0
        for n, item in enumerate(images):
            path = tmp_path / f"{n:03d}-{item['name'].replace('/', '_')}"
            path.write_bytes(item["bytes"])
            server = server_engine.predict(item["bytes"])
            if n:
                page.click("#pc-again")
            page.set_input_files("#pc-file", str(path))
            verdict = page.wait_for_selector("#pc-verdict[data-label]", timeout=CHECK_MS)
            rows = page.query_selector_all("#pc-result tr[data-fake-probability]")
            got = [(r.get_attribute("data-label"), float(r.get_attribute("data-fake-probability")))
                   for r in rows]
            where = f"{item['name']}: server {server.as_dict()['faces']}, browser {got}"
            assert len(got) == len(server.faces), where
            for (label, p), face in zip(got, server.faces, strict=True):
                assert abs(p - face.fake_probability) <= TOLERANCE, where
                if not _near_an_edge(face.fake_probability):
                    assert label == face.label, where
            if server.faces:
                assert abs(float(verdict.get_attribute("data-fake-probability"))
                           - server.fake_probability) <= TOLERANCE, where
            if not _near_an_edge(server.fake_probability):
                assert verdict.get_attribute("data-label") == server.label, where
            checked += 1
        assert checked == len(images)
        assert page.blocked == []
    finally:
        context.close()
