"""Provenance where people and programs see it: the result page's panel and the evidence line
next to the verdict, the API field and its schema, and an upload through the real service."""

from __future__ import annotations

import io
import re

import pytest
from django.urls import reverse
from PIL import Image

from detection import services
from detection.tests.factories import DetectionFactory
from detection.tests.helpers import upload
from detection.tests.provenance_files import (
    c2pa_signed,
    jpeg_with_camera_exif,
    png_webui,
    signing_chain,
)
from detection.uploads.provenance import provenance_read

pytestmark = pytest.mark.django_db

EMPTY_TEXT = (
    "No metadata found. Absence of metadata proves nothing: most apps and sites strip it on upload."
)
CAVEAT = "Metadata can be added, changed or removed by anyone"


def read(data: bytes) -> dict:
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        return provenance_read(data=data, img=img, fmt=img.format)


@pytest.fixture(scope="module")
def c2pa_record():
    return read(c2pa_signed(signing_chain()))


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def page(client, detection) -> str:
    response = client.get(reverse("detection:detail", args=[detection.id]))
    assert response.status_code == 200
    return response.content.decode()


# --- The result page ---------------------------------------------------------------------------


def test_a_done_verdict_shows_c2pa_evidence_next_to_it_and_the_panel(signed_in, user, c2pa_record):
    detection = DetectionFactory(owner=user, done=True, provenance=c2pa_record)
    html = page(signed_in, detection)
    verdict = html.index('id="detection-label"')
    evidence = html.index('id="provenance-evidence"')
    panel = html.index('id="provenance"')
    assert verdict < evidence < panel  # right after the verdict, before the panel
    assert (
        "Separate from the model: the file&#x27;s C2PA Content Credentials declare it was made "
        "with an AI generator (DALL·E); the credentials are intact, but their signer is not on a "
        "trust list this site checks." in html
    )
    assert "What the file says about itself" in html
    assert "Content Credentials (C2PA)" in html
    assert "Example Generator Labs (Example Generator Signing)" in html  # the signer
    assert "intact; signer not on a trust list this site checks" in html
    assert "created (made by a generative AI model) with DALL-E 3" in html
    assert "signingCredential.untrusted" not in html  # the status line says it in words
    assert CAVEAT in html
    assert EMPTY_TEXT not in html


def test_a_pending_detection_already_shows_the_panel(signed_in, user):
    detection = DetectionFactory(owner=user, provenance=read(png_webui()))
    assert detection.status == "pending"
    html = page(signed_in, detection)
    assert "Waiting for a worker" in html
    assert 'id="provenance-evidence"' in html
    assert (
        "the file&#x27;s metadata (PNG text) says it was made with an AI generator "
        "(Stable Diffusion WebUI). Metadata like this can be written by anyone." in html
    )
    assert "Text written into the PNG file" in html
    assert "Steps: 28, Sampler: DPM++ 2M Karras" in html


def test_a_file_without_metadata_says_absence_proves_nothing(signed_in, user):
    detection = DetectionFactory(owner=user, done=True, provenance=read(_plain_png()))
    html = page(signed_in, detection)
    assert EMPTY_TEXT in html
    assert CAVEAT in html
    assert 'id="provenance-evidence"' not in html


def test_an_old_detection_says_nothing_was_recorded(signed_in, user):
    detection = DetectionFactory(owner=user, done=True)  # provenance {}: the model's default
    html = page(signed_in, detection)
    assert "Not recorded: this image was uploaded before the site read metadata." in html
    assert EMPTY_TEXT not in html


def test_editing_software_and_gps_presence_but_never_the_position(signed_in, user):
    detection = DetectionFactory(owner=user, done=True, provenance=read(jpeg_with_camera_exif()))
    html = page(signed_in, detection)
    assert "names editing software (Adobe Photoshop)" in html
    assert "present in the file (the position is not kept)" in html
    assert "Canon EOS R5" in html
    assert "19.07" not in html


def test_metadata_text_is_escaped(signed_in, user):
    provenance = read(_plain_png())
    provenance["png_text"] = {"parameters": '<script>alert("x")</script>'}
    detection = DetectionFactory(owner=user, provenance=provenance)
    html = page(signed_in, detection)
    assert '<script>alert("x")' not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html


def test_the_polled_panel_carries_the_provenance(signed_in, user, c2pa_record):
    detection = DetectionFactory(owner=user, provenance=c2pa_record)
    response = signed_in.get(reverse("detection:status", args=[detection.id]))
    html = response.json()["html"]
    assert "What the file says about itself" in html
    assert 'id="provenance-evidence"' in html


def test_another_users_detection_shows_nothing(client, other_user, user, c2pa_record):
    detection = DetectionFactory(owner=user, provenance=c2pa_record)
    client.force_login(other_user)
    assert client.get(reverse("detection:detail", args=[detection.id])).status_code == 404


def _plain_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buffer, "PNG")
    return buffer.getvalue()


# --- The API -------------------------------------------------------------------------------------


def test_the_api_gives_the_provenance_in_full(token_client, user, c2pa_record):
    detection = DetectionFactory(owner=user, done=True, provenance=c2pa_record)
    body = token_client.get(f"/api/v1/detections/{detection.id}/").json()
    provenance = body["provenance"]
    assert provenance["recorded"] is True
    assert provenance["version"] == 1
    assert provenance["exif"] is None
    assert provenance["xmp"] is None
    assert provenance["png_text"] == {}
    c2pa = provenance["c2pa"]
    assert c2pa["ai_generated"] is True
    assert c2pa["validation_state"] == "Valid"
    assert (c2pa["valid"], c2pa["trusted"]) == (True, False)
    assert c2pa["signer"] == "Example Generator Labs"
    assert c2pa["actions"][0]["digital_source_type"] == "trainedAlgorithmicMedia"
    assert provenance["ai_declarations"][0]["source"] == "C2PA"
    assert provenance["ai_declarations"][0]["generator"] == "DALL·E"
    assert provenance["editing_software"] == []
    assert provenance["errors"] == []


def test_the_api_says_when_nothing_was_recorded(token_client, user):
    detection = DetectionFactory(owner=user)
    provenance = token_client.get(f"/api/v1/detections/{detection.id}/").json()["provenance"]
    assert provenance == {
        "recorded": False,
        "version": None,
        "exif": None,
        "png_text": {},
        "xmp": None,
        "c2pa": None,
        "ai_declarations": [],
        "editing_software": [],
        "errors": [],
    }


def test_the_api_exif_never_has_a_position(token_client, user):
    detection = DetectionFactory(owner=user, provenance=read(jpeg_with_camera_exif()))
    body = token_client.get(f"/api/v1/detections/{detection.id}/").content.decode()
    assert '"gps_present":true' in body
    assert not re.search(r"19\.07|2\.89|122", body)


def test_the_schema_documents_the_provenance():
    from drf_spectacular.generators import SchemaGenerator

    components = SchemaGenerator().get_schema(public=True)["components"]["schemas"]
    detection = components["Detection"]["properties"]
    assert detection["provenance"]["allOf"] == [{"$ref": "#/components/schemas/Provenance"}]
    assert "metadata can be added or removed by anyone" in detection["provenance"]["description"]
    provenance = components["Provenance"]["properties"]
    assert set(provenance) == {
        "recorded",
        "version",
        "exif",
        "png_text",
        "xmp",
        "c2pa",
        "ai_declarations",
        "editing_software",
        "errors",
    }
    assert provenance["png_text"]["additionalProperties"] == {"type": "string"}
    assert provenance["c2pa"]["nullable"] is True
    c2pa = components["ProvenanceC2pa"]["properties"]
    assert {"signer", "valid", "trusted", "ai_generated", "actions"} <= set(c2pa)
    assert "gps_present" in components["ProvenanceExif"]["properties"]
    source = components["ProvenanceAiDeclaration"]["properties"]["source"]
    assert source["allOf"] == [{"$ref": "#/components/schemas/ProvenanceSourceEnum"}]
    assert components["ProvenanceSourceEnum"]["enum"] == ["C2PA", "XMP", "PNG text", "EXIF"]


# --- Through the real upload service --------------------------------------------------------------


def test_an_upload_stores_its_provenance(user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        [png, signed] = services.detection_create_many(
            user=user,
            uploads=[
                upload("fox.png", png_webui(), "image/png"),
                upload("gen.jpg", c2pa_signed(signing_chain())),
            ],
        )
    png.refresh_from_db()
    signed.refresh_from_db()
    assert png.provenance["ai_declarations"][0]["generator"] == "Stable Diffusion WebUI"
    assert png.provenance["png_text"]["parameters"].startswith("a photo of a red fox")
    assert signed.provenance["c2pa"]["ai_generated"] is True
    assert "C2PA Content Credentials" in signed.removed_metadata


def test_the_privacy_page_says_what_metadata_is_kept(client):
    html = client.get(reverse("privacy")).content.decode()
    assert "What the file says about itself" in html
    assert "A GPS position is never kept, only whether there was one" in html
