"""Ownership, for every URL that takes an id: owner / other user / anonymous.

The matrix below is checked against the URLconf itself (test_every_id_taking_url_is_in_the_matrix):
a new endpoint with an id in its path fails the suite until it is added here. Another user's id is
always a 404 (never 403, which would confirm that the id exists) and never shows or changes data;
anonymous requests go to sign-in (pages) or get 401/403 (API).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.services import api_token_create
from accounts.tests.factories import ApiTokenFactory
from detection.models import Detection
from detection.tests.factories import DetectionBatchFactory, DetectionFactory
from detection.tests.video_records import video_detection

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Endpoint:
    url_name: str
    method: str
    owner_status: int
    kind: str  # what the id names: "detection", "batch", "token" or "video"
    api: bool = False
    # path arguments after the id: a face's index, or the name of a record whose id it is
    more_args: tuple[int | str, ...] = ()


MATRIX = [
    Endpoint("detection:detail", "get", 200, "detection"),
    Endpoint("detection:status", "get", 200, "detection"),
    Endpoint("detection:image", "get", 200, "detection"),
    Endpoint("detection:delete", "get", 200, "detection"),
    Endpoint("detection:delete", "post", 302, "detection"),
    Endpoint("detection:batch", "get", 200, "batch"),
    Endpoint("detection:batch-status", "get", 200, "batch"),
    Endpoint("detection:batch-export", "get", 200, "batch"),
    Endpoint("accounts:token-revoke", "get", 200, "token"),
    Endpoint("accounts:token-revoke", "post", 302, "token"),
    Endpoint("api:detection-detail", "get", 200, "detection", api=True),
    Endpoint("api:detection-image", "get", 200, "detection", api=True),
    Endpoint("api:detection-detail", "delete", 204, "detection", api=True),
    # (the owner's empty report is refused: 400)
    Endpoint("detection:feedback", "post", 400, "detection"),
    Endpoint("detection:feedback-withdraw", "post", 302, "detection"),
    Endpoint("detection:recheck", "post", 302, "detection"),
    Endpoint("api:detection-feedback", "post", 400, "detection", api=True),
    Endpoint("api:detection-feedback", "delete", 204, "detection", api=True),
    Endpoint("api:detection-recheck", "post", 202, "detection", api=True),
    # the owner's link controls and PDF
    # the thumbnail, and a re-run (refused for a verdict that ran: still owner-only)
    Endpoint("detection:thumbnail", "get", 200, "detection"),
    Endpoint("detection:rerun", "post", 302, "detection"),
    Endpoint("api:detection-thumbnail", "get", 200, "detection", api=True),
    Endpoint("api:detection-rerun", "post", 409, "detection", api=True),
    Endpoint("api:detection-share", "get", 200, "detection", api=True),
    Endpoint("api:detection-share", "post", 201, "detection", api=True),
    Endpoint("api:detection-share", "delete", 200, "detection", api=True),
    Endpoint("detection:share-create", "post", 302, "detection"),
    Endpoint("detection:share-revoke", "post", 302, "detection"),
    Endpoint("detection:report-pdf", "get", 200, "detection"),
    # face 1's heatmap PNG
    Endpoint("detection:face-heatmap", "get", 200, "detection", more_args=(1,)),
    Endpoint("api:detection-face-heatmap", "get", 200, "detection", api=True, more_args=(1,)),
    # a video's file (range requests) and the picture of one of its most suspicious frames
    Endpoint("detection:video", "get", 200, "video"),
    Endpoint("detection:video-frame", "get", 200, "video", more_args=("video_face",)),
    Endpoint("api:detection-video", "get", 200, "video", api=True),
]

# Id-taking URLs deliberately outside the matrix, with the reason.
NOT_OWNED_RECORDS = {
    # allauth: the path carries a secret key from an e-mail, not the id of a record someone owns;
    # a wrong key renders an explanation (accounts/tests/test_auth_flows.py).
    "account_confirm_email",
    "account_reset_password_from_key",
    # public pages of the installed model cards: the path names a model
    # version, not anyone's record (detection/tests/test_model_versions.py).
    "detection:model-card",
    "detection:model-card-json",
    "detection:model-card-plot",
    # a shared report: the path carries the link's secret token, not an id; anyone
    # holding it may read, a revoked or wrong one is a 404 (detection/tests/test_share.py).
    "detection:shared-report",
    "detection:shared-image",
    "detection:shared-heatmap",
    "detection:shared-report-pdf",
}


def _id_taking_urls(resolver=None, namespace: str = ""):
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            if entry.app_name == "admin":
                continue  # staff only: see test_admin_is_closed_to_ordinary_users
            inner = namespace + (f"{entry.namespace}:" if entry.namespace else "")
            yield from _id_taking_urls(entry, inner)
        elif isinstance(entry, URLPattern) and entry.pattern.regex.groupindex:
            yield namespace + (entry.name or repr(entry.pattern))


def test_every_id_taking_url_is_in_the_matrix():
    found = set(_id_taking_urls()) - NOT_OWNED_RECORDS
    covered = {e.url_name for e in MATRIX}
    assert found == covered, (
        f"Not in the ownership matrix: {sorted(found - covered)}; "
        f"in the matrix but gone: {sorted(covered - found)}"
    )


@pytest.fixture
def records(user):
    detection = DetectionFactory(owner=user, done=True, original_name="owners-secret.jpg")
    detection.faces.update(heatmap=b"\x89PNG", heatmap_box=[0, 0, 48, 48])
    batch = DetectionBatchFactory(owner=user)
    DetectionFactory.create_batch(2, owner=user, batch=batch, original_name="owners-secret.jpg")
    token = ApiTokenFactory(owner=user, name="owners-secret-token")
    video = video_detection(owner=user, done=True, original_name="owners-secret.mp4")
    video_face = video.video_faces.filter(snapshot__isnull=False).first()
    return {
        "detection": detection,
        "batch": batch,
        "token": token,
        "video": video,
        "video_face": video_face,
    }


def _unchanged(records) -> bool:
    return (
        Detection.objects.filter(id=records["detection"].id).exists()
        and not ApiToken.objects.get(id=records["token"].id).revoked_at
    )


def _request_as(client, endpoint, url, *, who, user, other_user):
    """The endpoint's request as the owner, another user or nobody (token for the API)."""
    if endpoint.api:
        client = APIClient()
        if who != "anonymous":
            _, key = api_token_create(user=user if who == "owner" else other_user, name="t")
            client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    elif who != "anonymous":
        client.force_login(user if who == "owner" else other_user)
    return getattr(client, endpoint.method)(url)


def _assert_refused(response, endpoint, *, who):
    """Another user's id is a 404; nobody is asked to sign in (pages) or refused (API)."""
    if who == "other":
        assert response.status_code == 404
    elif endpoint.api:
        assert response.status_code in (401, 403)
    else:
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login"))


@pytest.mark.parametrize("who", ["owner", "other", "anonymous"])
@pytest.mark.parametrize("endpoint", MATRIX, ids=[f"{e.method} {e.url_name}" for e in MATRIX])
def test_ownership_matrix(client, user, other_user, records, who, endpoint):
    more = [records[a].id if isinstance(a, str) else a for a in endpoint.more_args]
    url = reverse(endpoint.url_name, args=[records[endpoint.kind].id, *more])
    response = _request_as(client, endpoint, url, who=who, user=user, other_user=other_user)

    if who == "owner":
        assert response.status_code == endpoint.owner_status
        return
    _assert_refused(response, endpoint, who=who)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert b"owners-secret" not in body
    assert _unchanged(records)


@pytest.mark.parametrize("auth", ["session", "token"])
def test_api_ids_of_others_are_404_with_session_auth_too(user, other_user, records, auth):
    client = APIClient()
    if auth == "session":
        client.force_login(other_user)
    else:
        client.credentials(
            HTTP_AUTHORIZATION=f"Token {api_token_create(user=other_user, name='t')[1]}"
        )
    detection_id = records["detection"].id
    assert client.get(reverse("api:detection-detail", args=[detection_id])).status_code == 404
    assert client.get(reverse("api:detection-image", args=[detection_id])).status_code == 404
    # A missing id answers exactly like another user's: no way to probe which ids exist.
    missing = client.get(reverse("api:detection-detail", args=[detection_id + 1000]))
    theirs = client.get(reverse("api:detection-detail", args=[detection_id]))
    assert missing.status_code == theirs.status_code == 404
    assert missing.json() == theirs.json()


def test_delete_many_with_others_ids_deletes_and_shows_nothing(client, other_user, records):
    client.force_login(other_user)
    ids = [records["detection"].id]
    confirm = client.post(reverse("detection:delete-many"), {"ids": ids})
    assert b"owners-secret" not in confirm.content
    done = client.post(reverse("detection:delete-many"), {"ids": ids, "confirm": "yes"})
    assert done.status_code == 302
    assert _unchanged(records)


def test_delete_many_anonymous_goes_to_sign_in(client, records):
    response = client.post(
        reverse("detection:delete-many"), {"ids": [records["detection"].id], "confirm": "yes"}
    )
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    assert _unchanged(records)


def test_csv_export_and_lists_hold_only_the_users_rows(client, other_user, records):
    client.force_login(other_user)
    csv_body = b"".join(client.get(reverse("detection:export")).streaming_content)
    assert b"owners-secret" not in csv_body
    assert b"owners-secret" not in client.get(reverse("detection:history")).content
    assert b"owners-secret" not in client.get(reverse("accounts:profile")).content
    api = APIClient()
    api.force_login(other_user)
    assert api.get(reverse("api:detection-list")).json()["count"] == 0


def test_admin_is_closed_to_ordinary_users(client, user, records):
    client.force_login(user)  # not staff
    url = reverse("admin:detection_detection_change", args=[records["detection"].id])
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


# --- Private checks: the same endpoints with a verdict saved without its image ---------------

# What the owner gets for a private row, where it differs from an upload's: what needs the image
# is a 404 (a file, a picture) or a 409 (an action the row's state refuses); pages that refuse an
# action redirect back with a message.
PRIVATE_OWNER_STATUS = {
    ("detection:image", "get"): 404,
    ("detection:thumbnail", "get"): 404,
    ("detection:report-pdf", "get"): 404,
    ("detection:face-heatmap", "get"): 404,
    ("api:detection-image", "get"): 404,
    ("api:detection-thumbnail", "get"): 404,
    ("api:detection-face-heatmap", "get"): 404,
    ("api:detection-rerun", "post"): 409,
    ("api:detection-recheck", "post"): 409,
    ("api:detection-share", "post"): 409,
}
PRIVATE_MATRIX = [e for e in MATRIX if e.kind == "detection"]


@pytest.fixture
def private_record(user, settings, tmp_path):
    from detection.tests.private_checks import private_detection, web_manifest_write

    web_manifest_write(tmp_path / "web-model")
    settings.DETECTION_WEB_MODEL_DIR = str(tmp_path / "web-model")
    return private_detection(owner=user)


@pytest.mark.parametrize("who", ["owner", "other", "anonymous"])
@pytest.mark.parametrize(
    "endpoint", PRIVATE_MATRIX, ids=[f"{e.method} {e.url_name}" for e in PRIVATE_MATRIX]
)
def test_ownership_matrix_of_a_private_check(client, user, other_user, private_record, who,
                                             endpoint):
    url = reverse(endpoint.url_name, args=[private_record.id, *endpoint.more_args])
    response = _request_as(client, endpoint, url, who=who, user=user, other_user=other_user)

    if who == "owner":
        expected = PRIVATE_OWNER_STATUS.get(
            (endpoint.url_name, endpoint.method), endpoint.owner_status
        )
        assert response.status_code == expected
        return
    _assert_refused(response, endpoint, who=who)
    assert Detection.objects.filter(id=private_record.id, status="done").exists()
