"""Provenance: what an upload says about itself (EXIF, PNG text, XMP, C2PA), read from real
files made here, kept without private data, never a reason to refuse an upload."""

from __future__ import annotations

import io
import json
import zlib

import pytest
from PIL import Image

from detection.tests.helpers import image_bytes, upload
from detection.tests.provenance_files import (
    GPS_DIGITS,
    SIGNER_COMMON_NAME,
    SIGNER_ORGANIZATION,
    WEBUI_PARAMETERS,
    c2pa_signed,
    jpeg_app11,
    jpeg_with_camera_exif,
    jpeg_with_xmp,
    png_comfyui,
    png_webui,
    png_with_text,
    png_with_xmp,
    signing_chain,
    webp_with_xmp,
    xmp_packet,
)
from detection.uploads import image_validate
from detection.uploads.generators import editor_name, generator_name
from detection.uploads.metadata_readers import XMP_MAX_BYTES
from detection.uploads.provenance import (
    provenance_normalized,
    provenance_read,
    provenance_summary,
)


def read(data: bytes) -> dict:
    """provenance_read as image_validate calls it: on the original bytes and the loaded image."""
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        fmt = {"MPO": "JPEG"}.get(img.format, img.format)
        return provenance_read(data=data, img=img, fmt=fmt)


@pytest.fixture(scope="module")
def chain():
    return signing_chain()


# --- EXIF ----------------------------------------------------------------------------------------


def test_exif_camera_fields_are_read_and_the_gps_position_is_not_kept():
    provenance = read(jpeg_with_camera_exif(gps=True))
    exif = provenance["exif"]
    assert exif["make"] == "Canon"
    assert exif["model"] == "Canon EOS R5"
    assert exif["software"] == "Adobe Photoshop 25.0"
    assert exif["datetime_original"] == "2024:05:01 18:42:07"
    assert exif["datetime"] == "2024:05:02 09:15:00"
    assert exif["gps_present"] is True
    stored = json.dumps(provenance)
    for digits in GPS_DIGITS:
        assert digits not in stored
    assert "Jane Photographer" not in stored  # EXIF Artist: a person's name
    assert provenance["editing_software"] == [{"source": "EXIF", "name": "Adobe Photoshop"}]
    assert provenance["ai_declarations"] == []
    assert provenance["errors"] == []


def test_exif_without_gps_says_so():
    provenance = read(jpeg_with_camera_exif(gps=False, software="HDR+ 1.0.540104767zd"))
    assert provenance["exif"]["gps_present"] is False
    assert provenance["editing_software"] == []  # a phone's camera pipeline is not an editor


def test_exif_software_naming_a_generator_is_declared():
    provenance = read(jpeg_with_camera_exif(gps=False, software="Midjourney v6"))
    [declaration] = provenance["ai_declarations"]
    assert declaration["source"] == "EXIF"
    assert declaration["generator"] == "Midjourney"


def test_exif_user_comment_with_webui_settings_is_declared():
    exif = Image.Exif()
    comment = b"UNICODE\x00" + WEBUI_PARAMETERS.encode("utf-16-be")
    exif.get_ifd(0x8769)[0x9286] = comment
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buffer, "JPEG", exif=exif)
    provenance = read(buffer.getvalue())
    assert provenance["exif"]["user_comment"].startswith("a photo of a red fox")
    [declaration] = provenance["ai_declarations"]
    assert declaration["generator"] == "Stable Diffusion WebUI"
    assert "sd_xl_base_1.0" in declaration["detail"]


# --- PNG text ------------------------------------------------------------------------------------


def test_png_stable_diffusion_parameters_are_kept_and_declared():
    provenance = read(png_webui())
    assert provenance["png_text"]["parameters"] == WEBUI_PARAMETERS
    assert "Author" not in provenance["png_text"]  # a person's name is not kept
    assert "Jane Doe" not in json.dumps(provenance)
    [declaration] = provenance["ai_declarations"]
    assert declaration == {
        "source": "PNG text",
        "generator": "Stable Diffusion WebUI",
        "detail": declaration["detail"],
    }
    assert "model: sd_xl_base_1.0" in declaration["detail"]


def test_png_comfyui_graph_is_summarised_not_stored_as_json():
    provenance = read(png_comfyui())
    texts = provenance["png_text"]
    assert set(texts) == {"prompt", "workflow"}
    assert texts["prompt"].startswith("ComfyUI graph with 3 nodes.")
    assert "Model: flux1-dev.safetensors." in texts["prompt"]
    assert "Prompt: studio portrait of an old sailor" in texts["prompt"]
    assert "class_type" not in json.dumps(provenance)
    [declaration] = provenance["ai_declarations"]
    assert declaration["source"] == "PNG text"
    assert declaration["generator"] == "ComfyUI"
    assert "flux1-dev.safetensors" in declaration["detail"]


def test_png_novelai_software_key_and_plain_text_keys():
    provenance = read(
        png_with_text(
            [
                ("Software", "NovelAI"),
                ("Source", "NovelAI Diffusion V3 4BDE2A90"),
                ("Title", "NovelAI generated image"),
                ("Description", "x" * 5000),
            ],
            compressed=True,
        )
    )
    assert provenance["png_text"]["Title"] == "NovelAI generated image"
    assert len(provenance["png_text"]["Description"]) == 2000  # a long text is cut
    assert provenance["png_text"]["Description"].endswith("…")
    assert [(d["source"], d["generator"]) for d in provenance["ai_declarations"]] == [
        ("PNG text", "NovelAI")
    ]


def test_png_text_naming_a_word_that_contains_a_generator_name_is_not_declared():
    provenance = read(png_with_text([("Software", "InfluxDB chart exporter")]))
    assert provenance["ai_declarations"] == []  # "flux" inside another word is not FLUX


# --- XMP -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [jpeg_with_xmp, png_with_xmp, webp_with_xmp])
def test_xmp_digital_source_type_declares_ai_and_creator_tool_names_the_editor(make):
    provenance = read(make(xmp_packet()))
    xmp = provenance["xmp"]
    assert xmp["digital_source_type"].endswith("/trainedAlgorithmicMedia")
    assert xmp["creator_tool"] == "Adobe Photoshop 25.4 (Macintosh)"
    assert xmp["history_software"] == ["Adobe Photoshop Lightroom Classic 13.2"]
    assert xmp["gps_present"] is False
    [declaration] = provenance["ai_declarations"]
    assert declaration["source"] == "XMP"
    assert "trainedAlgorithmicMedia" in declaration["detail"]
    assert [e["name"] for e in provenance["editing_software"]] == [
        "Adobe Photoshop",
        "Adobe Lightroom",
    ]
    assert "Jane Doe" not in json.dumps(provenance)  # dc:creator is not read


def test_xmp_in_a_compressed_png_itxt_chunk():
    provenance = read(png_with_xmp(xmp_packet(gps=True), compressed=True))
    assert provenance["xmp"]["digital_source_type"].endswith("trainedAlgorithmicMedia")
    assert provenance["xmp"]["gps_present"] is True
    assert "37,25" not in json.dumps(provenance)


def test_xmp_without_ai_declaration_only_names_the_editor():
    provenance = read(jpeg_with_xmp(xmp_packet(digital_source_type=None, history=())))
    assert provenance["ai_declarations"] == []
    assert provenance["editing_software"] == [{"source": "XMP", "name": "Adobe Photoshop"}]


def test_xmp_pointing_to_credentials_online_is_noted_not_fetched():
    packet = xmp_packet(digital_source_type=None).replace(
        b'xmlns:dc="http://purl.org/dc/elements/1.1/"',
        b'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
        b'dcterms:provenance="https://cai-manifests.example/abc.c2pa"',
    )
    provenance = read(jpeg_with_xmp(packet))
    assert provenance["xmp"]["c2pa_manifest_url"] == "https://cai-manifests.example/abc.c2pa"
    assert provenance["c2pa"] is None  # nothing embedded, and nothing fetched
    rows = dict(provenance_summary(provenance).groups[0].rows)
    assert rows["Content Credentials online"] == (
        "https://cai-manifests.example/abc.c2pa (not fetched)"
    )


def test_xmp_creator_tool_naming_a_generator_is_declared():
    provenance = read(
        jpeg_with_xmp(xmp_packet(digital_source_type=None, creator_tool="Adobe Firefly"))
    )
    [declaration] = provenance["ai_declarations"]
    assert (declaration["source"], declaration["generator"]) == ("XMP", "Adobe Firefly")


# --- C2PA ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_c2pa_credentials_declaring_ai_are_read_and_reported_untrusted(chain, fmt):
    provenance = read(c2pa_signed(chain, fmt=fmt))
    c2pa = provenance["c2pa"]
    assert c2pa["present"] is True
    assert c2pa["readable"] is True
    assert c2pa["ai_generated"] is True
    assert c2pa["ai_source_type"] == "trainedAlgorithmicMedia"
    assert c2pa["ai_generator"] == "DALL-E 3"
    assert c2pa["signer"] == SIGNER_ORGANIZATION
    assert c2pa["signer_common_name"] == SIGNER_COMMON_NAME
    assert c2pa["claim_generator"] == "Example Generator 2.1"
    assert c2pa["actions"] == [
        {
            "action": "c2pa.created",
            "digital_source_type": "trainedAlgorithmicMedia",
            "software_agent": "DALL-E 3",
        }
    ]
    # Intact, but nothing on this server trusts the test CA: said as it is.
    assert c2pa["validation_state"] == "Valid"
    assert (c2pa["valid"], c2pa["trusted"]) == (True, False)
    assert any(e.startswith("signingCredential.untrusted") for e in c2pa["errors"])
    [declaration] = provenance["ai_declarations"]
    assert (declaration["source"], declaration["generator"]) == ("C2PA", "DALL·E")
    summary = provenance_summary(provenance)
    assert summary.c2pa_state == "valid"
    assert "not on a trust list" in summary.c2pa_status
    assert summary.evidence[0].startswith(
        "Separate from the model: the file's C2PA Content Credentials declare it was made with "
        "an AI generator (DALL·E)"
    )
    assert "not on a trust list" in summary.evidence[0]


def test_c2pa_generative_fill_declares_ai_parts(chain):
    provenance = read(
        c2pa_signed(
            chain,
            digital_source_type=(
                "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
            ),
            agent="Adobe Photoshop 25.4",
        )
    )
    [declaration] = provenance["ai_declarations"]
    assert declaration["generator"] == "Adobe Photoshop 25.4"
    assert "is a composite including parts made by generative AI" in declaration["detail"]
    evidence = provenance_summary(provenance).evidence[0]
    assert "declare parts of it were made with an AI generator (Adobe Photoshop 25.4)" in evidence


def test_c2pa_signer_on_the_configured_trust_list_is_trusted(chain, settings, tmp_path):
    anchors = tmp_path / "anchors.pem"
    anchors.write_text(chain.root_pem)
    settings.DETECTION_C2PA_TRUST_ANCHORS = str(anchors)
    provenance = read(c2pa_signed(chain))
    c2pa = provenance["c2pa"]
    assert c2pa["validation_state"] == "Trusted"
    assert (c2pa["valid"], c2pa["trusted"]) == (True, True)
    assert c2pa["errors"] == []
    assert provenance_summary(provenance).c2pa_state == "trusted"


def test_c2pa_of_an_image_changed_after_signing_is_invalid(chain):
    data = bytearray(c2pa_signed(chain))
    data[-10] ^= 0x01  # a bit of the picture, after the credentials were made
    provenance = read(bytes(data))
    c2pa = provenance["c2pa"]
    assert c2pa["validation_state"] == "Invalid"
    assert c2pa["valid"] is False
    assert any("dataHash.mismatch" in e for e in c2pa["errors"])
    summary = provenance_summary(provenance)
    assert summary.c2pa_state == "invalid"
    assert "dataHash.mismatch" in summary.c2pa_status  # the real problem, not "untrusted"
    assert "do not check out" in summary.evidence[0]


def test_c2pa_edit_without_ai_names_the_editor(chain):
    provenance = read(
        c2pa_signed(
            chain,
            digital_source_type="http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture",
            agent="Example Camera 1.0",
            edited_by="Adobe Photoshop 25.4",
            claim_generator="Adobe Photoshop",
        )
    )
    assert provenance["c2pa"]["ai_generated"] is False
    assert [a["action"] for a in provenance["c2pa"]["actions"]] == ["c2pa.created", "c2pa.edited"]
    rows = dict(provenance_summary(provenance).groups[0].rows)
    assert rows["Actions"] == (
        "created (captured by a camera) with Example Camera 1.0; edited with Adobe Photoshop 25.4"
    )
    assert provenance["ai_declarations"] == []
    assert provenance["editing_software"] == [{"source": "C2PA", "name": "Adobe Photoshop"}]


def test_broken_manifest_bytes_are_recorded_and_the_upload_accepted(chain):
    data = bytearray(c2pa_signed(chain))
    start = data.find(b"\xff\xeb")
    for offset in range(start + 40, start + 400, 7):
        data[offset] ^= 0x5A
    clean = image_validate(upload=upload("broken.jpg", bytes(data)))
    c2pa = clean.provenance["c2pa"]
    assert (c2pa["present"], c2pa["readable"], c2pa["valid"]) == (True, False, False)
    assert c2pa["ai_generated"] is False
    assert any("Content Credentials" in e for e in clean.provenance["errors"])
    assert provenance_summary(clean.provenance).c2pa_state == "unreadable"


def test_garbage_in_an_app11_segment_marked_c2pa_is_unreadable_not_fatal():
    clean = image_validate(upload=upload("odd.jpg", jpeg_app11(b"JP\x00\x01c2pa" + b"\xff" * 300)))
    assert clean.provenance["c2pa"]["readable"] is False
    assert clean.width == 64


# --- Hostile and damaged metadata: recorded, never a refusal -------------------------------------


def test_xmp_that_is_not_xml_is_an_error_not_a_refusal():
    clean = image_validate(upload=upload("x.jpg", jpeg_with_xmp(b"<x:xmpmeta <<< not xml")))
    assert clean.provenance["xmp"] == {}
    assert any(
        e.startswith("The XMP metadata could not be read") for e in clean.provenance["errors"]
    )


def test_xmp_with_entity_expansion_is_refused_unread():
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/">&lol2;</x:xmpmeta>'
    )
    clean = image_validate(upload=upload("bomb.png", png_with_xmp(bomb), "image/png"))
    assert clean.provenance["xmp"] == {}
    assert any("document type declaration" in e for e in clean.provenance["errors"])


def test_oversized_xmp_is_not_parsed():
    packet = xmp_packet().replace(b"</x:xmpmeta>", b" " * XMP_MAX_BYTES + b"</x:xmpmeta>")
    clean = image_validate(upload=upload("big.png", png_with_xmp(packet, compressed=True)))
    assert clean.provenance["xmp"] == {}
    assert any("more than is read" in e for e in clean.provenance["errors"])


def test_many_png_text_chunks_are_bounded():
    items = [(f"key{n}", f"value {n}") for n in range(100)]
    provenance = read(png_with_text(items))
    assert len(provenance["png_text"]) == 24
    assert any("first 64 PNG text chunks" in e for e in provenance["errors"])


def test_a_damaged_compressed_text_chunk_is_skipped():
    data = png_with_text([("Comment", "hello")], compressed=True)
    start = data.find(b"zTXt") + 4 + len(b"Comment\x00\x00")
    damaged = data[:start] + b"\x00" * 4 + data[start + 4 :]
    # Pillow would refuse the broken chunk when it reads it; our own walk only notes it.
    provenance_png_text = read_png_text(damaged)
    assert provenance_png_text["png_text"] == {}
    assert any("PNG text chunk could not be read" in e for e in provenance_png_text["errors"])


def read_png_text(data: bytes) -> dict:
    """provenance_read with a stand-in image: the chunk walk needs only the bytes."""
    with Image.open(io.BytesIO(png_with_text([]))) as img:
        img.load()
        return provenance_read(data=data, img=img, fmt="PNG")


def test_a_bug_in_a_reader_never_costs_the_upload(monkeypatch):
    def broken(_img):
        raise RuntimeError("boom")

    monkeypatch.setattr("detection.uploads.provenance.exif_read", broken)
    clean = image_validate(upload=upload("x.jpg", jpeg_with_camera_exif()))
    assert clean.provenance["exif"] == {}
    assert clean.provenance["errors"] == ["The EXIF metadata could not be read (boom)."]


def test_provenance_read_never_raises(monkeypatch):
    def broken(_result):
        raise RuntimeError("boom")

    monkeypatch.setattr("detection.uploads.provenance._declarations_into", broken)
    provenance = read(png_webui())
    assert provenance["version"] == 1
    assert provenance["errors"] == ["The metadata could not be read."]


def test_the_compressed_text_is_inflated_only_so_far():
    # 1 MiB of text in a chunk after the image data: inflated to the limit, then cut.
    text = zlib.compress(b"parameters text " * 200_000)
    data = png_with_text([])
    chunk_body = b"Comment\x00\x00" + text
    chunk = (
        len(chunk_body).to_bytes(4, "big")
        + b"zTXt"
        + chunk_body
        + zlib.crc32(b"zTXt" + chunk_body).to_bytes(4, "big")
    )
    iend = data.rfind(b"IEND") - 4
    provenance = read_png_text(data[:iend] + chunk + data[iend:])
    assert len(provenance["png_text"]["Comment"]) == 2000
    assert any("too long and was cut" in e for e in provenance["errors"])


# --- No metadata ---------------------------------------------------------------------------------


def test_a_file_without_metadata_gives_an_empty_summary():
    provenance = read(image_bytes("PNG"))
    assert provenance == {
        "version": 1,
        "exif": {},
        "png_text": {},
        "xmp": {},
        "c2pa": None,
        "ai_declarations": [],
        "editing_software": [],
        "errors": [],
    }
    summary = provenance_summary(provenance)
    assert summary.recorded is True
    assert summary.is_empty is True
    assert summary.evidence == ()


def test_an_old_detection_without_a_record_is_not_called_empty():
    summary = provenance_summary({})
    assert summary.recorded is False
    assert summary.is_empty is False
    assert provenance_normalized({})["recorded"] is False


# --- image_validate ------------------------------------------------------------------------------


def test_image_validate_returns_the_provenance_and_stores_no_metadata(chain):
    clean = image_validate(upload=upload("gen.jpg", c2pa_signed(chain)))
    assert clean.provenance["c2pa"]["ai_generated"] is True
    assert "C2PA Content Credentials" in clean.removed_metadata
    assert b"c2pa" not in clean.content  # the stored copy has no credentials left


def test_image_validate_of_a_plain_file_has_an_empty_record():
    clean = image_validate(upload=upload("plain.jpg", image_bytes()))
    assert clean.provenance["version"] == 1
    assert clean.provenance["ai_declarations"] == []
    assert "C2PA Content Credentials" not in clean.removed_metadata


# --- Summary -------------------------------------------------------------------------------------


def test_summary_groups_rows_by_source_strongest_first(chain):
    provenance = read(png_webui())
    provenance["exif"] = {"make": "Canon", "datetime_original": "2024:05:01 18:42:07"}
    summary = provenance_summary(provenance)
    assert [g.source for g in summary.groups] == ["PNG text", "EXIF"]
    exif_rows = dict(summary.groups[1].rows)
    assert exif_rows["Taken"] == "2024-05-01 18:42:07"
    assert exif_rows["GPS position"] == "none"
    assert summary.evidence == (
        "Separate from the model: the file's metadata (PNG text) says it was made with an AI "
        "generator (Stable Diffusion WebUI). Metadata like this can be written by anyone.",
    )


def test_summary_of_editing_software_only():
    summary = provenance_summary(read(jpeg_with_camera_exif()))
    assert summary.ai_declarations == ()
    assert summary.evidence == (
        "Separate from the model: the file's metadata names editing software (Adobe Photoshop). "
        "Editing alone does not make an image fake, but the picture may have been changed.",
    )


# --- Names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Midjourney", "Midjourney"),
        ("DALL·E 3", "DALL·E"),
        ("Adobe Firefly Image 3", "Adobe Firefly"),
        ("Made with Google AI", "Google AI"),
        ("FLUX.1 [dev]", "FLUX"),
        ("ComfyUI", "ComfyUI"),
        ("Adobe Photoshop 25.0", None),
        ("Imagenet viewer", None),
        ("Influx", None),
        (None, None),
    ],
)
def test_generator_names(text, name):
    assert generator_name(text) == name


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Adobe Photoshop Lightroom Classic 13.2 (Windows)", "Adobe Lightroom"),
        ("Adobe Photoshop 25.0 (Windows)", "Adobe Photoshop"),
        ("GIMP 2.10.36", "GIMP"),
        ("Snapseed 2.0", "Snapseed"),
        ("Facetune2", "Facetune"),
        ("Android RP1A.200720.012", None),
        ("Canva", "Canva"),
        ("Canvas", None),
    ],
)
def test_editor_names(text, name):
    assert editor_name(text) == name
