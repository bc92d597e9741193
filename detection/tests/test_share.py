"""Share links: the owner makes and revokes a read-only link; anyone with it sees the report (page,
image, heatmaps, PDF) signed out; a revoked, wrong or malformed token is the site's 404."""

from __future__ import annotations

import io
import re

import pytest
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from PIL import Image

from detection import services
from detection.models import Detection, DetectionShare
from detection.tests.factories import DetectionFactory, detection_with_three_faces

pytestmark = pytest.mark.django_db

TOKEN_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "Cache-Control": "private, no-store",
}


def heatmap_png(size: tuple[int, int] = (16, 16)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", size, (255, 0, 0, 128)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def detection(user):
    """A done detection of `user` with three faces; face 2 decided and has a heatmap."""
    detection = detection_with_three_faces(
        owner=user, original_name="portrait.jpg", heatmap_status=Detection.HeatmapStatus.DONE
    )
    detection.faces.filter(index=2).update(heatmap=heatmap_png(), heatmap_box=[28, 20, 24, 20])
    return detection


@pytest.fixture
def share(user, detection) -> DetectionShare:
    return services.detection_share_create(user=user, detection_id=detection.id)


def urls(token: str) -> dict[str, str]:
    return {
        "report": reverse("detection:shared-report", args=[token]),
        "image": reverse("detection:shared-image", args=[token]),
        "heatmap": reverse("detection:shared-heatmap", args=[token, 2]),
        "pdf": reverse("detection:shared-report-pdf", args=[token]),
    }


def pdf_pages(content: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![a-z])", content))


def assert_real_pdf(content: bytes) -> None:
    assert content.startswith(b"%PDF-")
    assert content.rstrip().endswith(b"%%EOF")
    assert pdf_pages(content) >= 1


# --- services ---------------------------------------------------------------------------------


def test_create_makes_one_active_link_with_a_256_bit_token(user, detection):
    first = services.detection_share_create(user=user, detection_id=detection.id)
    again = services.detection_share_create(user=user, detection_id=detection.id)
    assert first.is_active and again.id == first.id
    # token_urlsafe(32): 32 random bytes, 43 URL-safe characters.
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", first.token)
    assert DetectionShare.objects.filter(detection=detection).count() == 1


def test_revoke_then_create_gives_a_new_token(user, detection, share):
    assert services.detection_share_revoke(user=user, detection_id=detection.id) == 1
    share.refresh_from_db()
    assert not share.is_active
    fresh = services.detection_share_create(user=user, detection_id=detection.id)
    assert fresh.token != share.token and fresh.is_active
    # Revoking again revokes the new one; the old one stays revoked.
    assert services.detection_share_revoke(user=user, detection_id=detection.id) == 1
    assert services.detection_share_revoke(user=user, detection_id=detection.id) == 0


def test_other_users_detection_cannot_be_shared_or_revoked(other_user, detection, share):
    with pytest.raises(Http404):
        services.detection_share_create(user=other_user, detection_id=detection.id)
    with pytest.raises(Http404):
        services.detection_share_revoke(user=other_user, detection_id=detection.id)
    share.refresh_from_db()
    assert share.is_active


def test_tokens_differ_between_detections(user):
    a, b = DetectionFactory(owner=user, done=True), DetectionFactory(owner=user, done=True)
    share_a = services.detection_share_create(user=user, detection_id=a.id)
    share_b = services.detection_share_create(user=user, detection_id=b.id)
    assert share_a.token != share_b.token


# --- the owner's controls ---------------------------------------------------------------------


def test_detail_page_offers_to_create_a_link(signed_in, detection):
    html = signed_in.get(reverse("detection:detail", args=[detection.id])).content.decode()
    assert reverse("detection:share-create", args=[detection.id]) in html
    assert 'id="share-create"' in html
    assert reverse("detection:report-pdf", args=[detection.id]) in html
    assert "share-revoke" not in html


def test_create_and_revoke_through_the_page(signed_in, detection):
    detail = reverse("detection:detail", args=[detection.id])
    response = signed_in.post(reverse("detection:share-create", args=[detection.id]))
    assert response.status_code == 302 and response["Location"] == detail + "#share"
    share = DetectionShare.objects.get(detection=detection)

    html = signed_in.get(detail).content.decode()
    link = f"http://testserver{reverse('detection:shared-report', args=[share.token])}"
    assert f'value="{link}"' in html
    assert 'data-copy-target="share-link"' in html and "js/copy.js" in html
    assert 'id="share-revoke"' in html and 'id="share-create"' not in html
    assert "Share link ready" in html

    response = signed_in.post(reverse("detection:share-revoke", args=[detection.id]))
    assert response.status_code == 302
    share.refresh_from_db()
    assert share.revoked_at is not None
    html = signed_in.get(detail).content.decode()
    assert "Share link revoked" in html and share.token not in html
    assert 'id="share-create"' in html


def test_share_controls_need_the_owner_and_a_post(client, signed_in, other_user, detection):
    create = reverse("detection:share-create", args=[detection.id])
    assert signed_in.get(create).status_code == 405
    client.logout()
    response = client.post(create)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    client.force_login(other_user)
    assert client.post(create).status_code == 404
    assert client.post(reverse("detection:share-revoke", args=[detection.id])).status_code == 404
    assert not DetectionShare.objects.exists()


def test_detail_status_poll_does_not_read_the_share(signed_in, user):
    pending = DetectionFactory(owner=user)
    with CaptureQueriesContext(connection) as queries:
        signed_in.get(reverse("detection:status", args=[pending.id]))
    assert not any("detection_detectionshare" in q["sql"] for q in queries.captured_queries)


# --- the shared report, signed out ------------------------------------------------------------


def test_report_opens_signed_out_and_shows_the_evidence(client, detection, share):
    response = client.get(urls(share.token)["report"])
    assert response.status_code == 200
    html = response.content.decode()
    assert "A read-only report, shared by the person who uploaded the image" in html
    assert "portrait.jpg" in html
    assert 'id="detection-label">Fake<' in html
    assert "83.0%" in html  # the deciding face's probability
    assert "Between 40.0% and 60.0%" in html
    assert html.count('<tr id="face-') == 3
    assert urls(share.token)["image"] in html
    # Face 2's heatmap is laid over the picture at its region (percentages of 64 x 48).
    assert urls(share.token)["heatmap"] in html
    assert 'x="43.75%" y="41.667%" width="37.5%" height="41.667%"' in html
    assert "A heatmap shows where the network looked, not proof." in html
    assert "fake-model-20260101-abcdef123456" in html
    assert "Decision threshold</dt><dd>50.0%" in html
    assert "Verdicts are a model's estimate, not proof." in html
    # Times with their zone.
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", html)
    assert urls(share.token)["pdf"] in html
    assert 'media="print"' in html and "css/print.css" in html


def test_report_has_no_owner_controls(client, detection, share):
    html = client.get(urls(share.token)["report"]).content.decode()
    for owner_only in (
        reverse("detection:delete", args=[detection.id]),
        reverse("detection:share-revoke", args=[detection.id]),
        reverse("detection:share-create", args=[detection.id]),
        reverse("detection:detail", args=[detection.id]),
        reverse("detection:image", args=[detection.id]),
        'method="post"',
    ):
        assert owner_only not in html
    # Signed out: the navigation offers signing in, not the owner's pages.
    assert reverse("detection:history") not in html


def test_report_of_an_unfinished_detection_says_so(client, user):
    pending = DetectionFactory(owner=user)
    share = services.detection_share_create(user=user, detection_id=pending.id)
    html = client.get(urls(share.token)["report"]).content.decode()
    assert "has not finished yet" in html
    assert 'id="detection-label"' not in html


def test_report_costs_the_same_queries_for_more_faces(client, user):
    one = DetectionFactory(owner=user, done=True)
    three = detection_with_three_faces(owner=user)
    counts = []
    for detection in (one, three):
        share = services.detection_share_create(user=user, detection_id=detection.id)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(urls(share.token)["report"]).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_image_and_heatmap_are_served_through_the_link(client, detection, share):
    image = client.get(urls(share.token)["image"])
    assert image.status_code == 200
    assert image["Content-Type"] == "image/jpeg"
    with detection.image.open("rb") as fh:
        assert b"".join(image.streaming_content) == fh.read()
    assert image["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert image["X-Content-Type-Options"] == "nosniff"

    heatmap = client.get(urls(share.token)["heatmap"])
    assert heatmap.status_code == 200
    assert heatmap["Content-Type"] == "image/png"
    assert heatmap.content == heatmap_png()
    assert heatmap["Content-Security-Policy"] == "default-src 'none'; sandbox"
    # Face 1 has no heatmap; there is no face 9, nor one numbered past any database's integers.
    for index in (1, 9, 0, 2**70):
        url = reverse("detection:shared-heatmap", args=[share.token, index])
        assert client.get(url).status_code == 404


def test_every_token_url_sends_the_privacy_headers(client, share):
    for name, url in urls(share.token).items():
        response = client.get(url)
        assert response.status_code == 200, name
        for header, value in TOKEN_HEADERS.items():
            assert response[header] == value, (name, header)


def test_revoked_link_is_404_everywhere(client, user, detection, share):
    services.detection_share_revoke(user=user, detection_id=detection.id)
    for name, url in urls(share.token).items():
        response = client.get(url)
        assert response.status_code == 404, name
        for header, value in TOKEN_HEADERS.items():
            assert response[header] == value, (name, header)
    # A new link does not bring the old one back.
    fresh = services.detection_share_create(user=user, detection_id=detection.id)
    assert client.get(urls(fresh.token)["report"]).status_code == 200
    assert client.get(urls(share.token)["report"]).status_code == 404


@pytest.mark.parametrize(
    "token",
    [
        "A" * 43,  # well formed, unknown
        "short",
        "x" * 65,
        "not a token at all with spaces",
        "%00" + "a" * 40,
        "a.b" * 15,
    ],
)
def test_wrong_or_malformed_token_is_404(client, share, token):
    response = client.get(f"/r/{token}/")
    assert response.status_code == 404
    assert share.token not in response.content.decode()


def test_wrong_token_is_the_sites_404_page(client, share):
    response = client.get("/r/" + "B" * 43 + "/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert response["Referrer-Policy"] == "no-referrer"


def test_deleting_the_detection_ends_the_link(client, user, detection, share):
    services.detection_delete(user=user, detection_id=detection.id)
    assert client.get(urls(share.token)["report"]).status_code == 404


def test_report_is_read_only(client, share):
    for url in urls(share.token).values():
        response = client.post(url)
        assert response.status_code == 405
        assert response["Referrer-Policy"] == "no-referrer"


# --- PDF ----------------------------------------------------------------------------------------


def test_shared_pdf_is_a_real_pdf(client, share):
    response = client.get(urls(share.token)["pdf"])
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="portrait - report.pdf"'
    assert_real_pdf(response.content)


def test_owner_pdf_needs_the_owner(client, signed_in, other_user, detection):
    url = reverse("detection:report-pdf", args=[detection.id])
    response = signed_in.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response["Cache-Control"] == "private, no-store"
    assert_real_pdf(response.content)
    client.logout()
    assert client.get(url).status_code == 302
    client.force_login(other_user)
    assert client.get(url).status_code == 404


def test_pdf_file_name_keeps_non_ascii(signed_in, user):
    detection = DetectionFactory(owner=user, done=True, original_name="ça_😀.jpg")
    response = signed_in.get(reverse("detection:report-pdf", args=[detection.id]))
    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        "attachment; filename*=utf-8''%C3%A7a_%F0%9F%98%80%20-%20report.pdf"
    )
    assert_real_pdf(response.content)


def test_report_shows_what_the_file_says_about_itself(client, user):
    detection = DetectionFactory(
        owner=user,
        done=True,
        provenance={
            "version": 1,
            "exif": {"make": "TestCam", "model": "Model X", "gps_present": False},
            "ai_declarations": [
                {"source": "XMP", "generator": "Midjourney", "detail": "The XMP names Midjourney."}
            ],
        },
    )
    share = services.detection_share_create(user=user, detection_id=detection.id)
    html = client.get(urls(share.token)["report"]).content.decode()
    assert 'id="provenance"' in html and "TestCam" in html
    # The file's own declaration is shown by the verdict, as evidence apart from the model.
    assert 'id="provenance-evidence"' in html and "Midjourney" in html


def test_report_links_the_installed_model_card(client, user, monkeypatch):
    detection = DetectionFactory(owner=user, done=True)
    share = services.detection_share_create(user=user, detection_id=detection.id)
    card_url = reverse("detection:model-card", kwargs={"version": detection.model_version})
    # Not installed here: no link to a page that would be a 404.
    assert card_url not in client.get(urls(share.token)["report"]).content.decode()
    monkeypatch.setattr(
        "detection.model_cards.model_card_get",
        lambda *, version: object() if version == detection.model_version else None,
    )
    html = client.get(urls(share.token)["report"]).content.decode()
    assert f'href="{card_url}"' in html


def test_print_stylesheet_hides_the_controls(client, share):
    from django.contrib.staticfiles import finders

    html = client.get(urls(share.token)["report"]).content.decode()
    assert re.search(r'<link rel="stylesheet" href="[^"]*css/print\.css" media="print">', html)
    with open(finders.find("css/print.css"), encoding="utf-8") as fh:
        css = re.sub(r"/\*.*?\*/", "", fh.read(), flags=re.DOTALL)
    # The selectors of the rule that hides things on paper.
    hidden_rule = re.search(r"([^{}]*)\{\s*display: none !important;\s*\}", css)
    hidden = {selector.strip() for selector in hidden_rule.group(1).split(",")}
    for selector in (
        ".site-header nav",
        ".skip-link",
        "form",
        "button",
        ".share-panel",
        ".actions",
    ):
        assert selector in hidden, selector
    assert "break-inside: avoid" in css and "@page { size: A4" in css


# --- the API ----------------------------------------------------------------------------------


def test_api_creates_reads_and_revokes_the_link(token_client, user, client):
    detection = DetectionFactory(owner=user, done=True)
    url = reverse("api:detection-share", args=[detection.id])
    assert token_client.get(url).json() == {
        "active": False,
        "url": None,
        "pdf_url": None,
        "created_at": None,
    }
    created = token_client.post(url)
    assert created.status_code == 201
    body = created.json()
    assert body["active"] is True and body["url"].startswith("http://testserver/r/")
    assert token_client.post(url).json()["url"] == body["url"]  # the live one, not another
    assert token_client.get(url).json()["url"] == body["url"]
    page = client.get(body["url"])  # signed out
    assert page.status_code == 200
    assert client.get(body["pdf_url"]).status_code == 200
    assert token_client.delete(url).json()["active"] is False
    assert client.get(body["url"]).status_code == 404
