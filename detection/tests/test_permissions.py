"""Every endpoint that takes an id × {owner, other user, anonymous}; lists are always scoped."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.services import api_token_create
from detection.models import Detection
from detection.tests.factories import DetectionBatchFactory, DetectionFactory

pytestmark = pytest.mark.django_db

# (name, method, url name, status for the owner)
PAGES = [
    ("result page", "get", "detection:detail", 200),
    ("status", "get", "detection:status", 200),
    ("image", "get", "detection:image", 200),
    ("delete confirm", "get", "detection:delete", 200),
    ("delete", "post", "detection:delete", 302),
]
API = [
    ("api detail", "get", "api:detection-detail", 200),
    ("api image", "get", "api:detection-image", 200),
    ("api delete", "delete", "api:detection-detail", 204),
]
WHO = ["owner", "other", "anonymous"]


@pytest.fixture
def detection(user):
    return DetectionFactory(owner=user, done=True)


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize(("endpoint", "method", "url_name", "owner_status"), PAGES)
def test_pages(client, user, other_user, detection, who, endpoint, method, url_name, owner_status):
    if who == "owner":
        client.force_login(user)
    elif who == "other":
        client.force_login(other_user)
    url = reverse(url_name, args=[detection.id])
    response = getattr(client, method)(url)
    if who == "owner":
        assert response.status_code == owner_status
    elif who == "other":
        assert response.status_code == 404
        assert Detection.objects.filter(id=detection.id).exists()
    else:
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login"))
        assert Detection.objects.filter(id=detection.id).exists()


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("url_name", ["detection:batch", "detection:batch-status"])
def test_batch_pages(client, user, other_user, who, url_name):
    batch = DetectionBatchFactory(owner=user)
    DetectionFactory.create_batch(2, owner=user, batch=batch)
    if who != "anonymous":
        client.force_login(user if who == "owner" else other_user)
    response = client.get(reverse(url_name, args=[batch.id]))
    expected = {"owner": 200, "other": 404, "anonymous": 302}[who]
    assert response.status_code == expected


@pytest.mark.parametrize("auth", ["token", "session"])
@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize(("endpoint", "method", "url_name", "owner_status"), API)
def test_api(user, other_user, detection, auth, who, endpoint, method, url_name, owner_status):
    client = APIClient()
    if who != "anonymous":
        account = user if who == "owner" else other_user
        if auth == "token":
            _, key = api_token_create(user=account, name="test")
            client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        else:
            client.force_login(account)
    response = getattr(client, method)(reverse(url_name, args=[detection.id]))
    if who == "owner":
        assert response.status_code == owner_status
    elif who == "other":
        assert response.status_code == 404
    else:
        assert response.status_code in (401, 403)
    assert Detection.objects.filter(id=detection.id).exists() == (
        not (who == "owner" and method == "delete")
    )


def test_lists_never_show_other_users_rows(client, user, other_user):
    mine = DetectionFactory(owner=user, done=True, original_name="mine.jpg")
    theirs = DetectionFactory(owner=other_user, done=True, original_name="theirs.jpg")
    client.force_login(user)

    history = client.get(reverse("detection:history"))
    assert [d.id for d in history.context["page"].object_list] == [mine.id]
    assert "theirs.jpg" not in history.content.decode()

    csv_body = b"".join(client.get(reverse("detection:export")).streaming_content).decode()
    assert "mine.jpg" in csv_body and "theirs.jpg" not in csv_body

    api = APIClient()
    api.force_login(user)
    data = api.get(reverse("api:detection-list")).json()
    assert [r["id"] for r in data["results"]] == [mine.id]
    assert theirs.id not in [r["id"] for r in data["results"]]


@pytest.mark.parametrize("url_name", ["detection:upload", "detection:history", "detection:export",
                                      "detection:api-help"])
def test_anonymous_pages_redirect_to_sign_in(client, url_name):
    response = client.get(reverse(url_name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_api_list_and_upload_refused(method):
    response = getattr(APIClient(), method)(reverse("api:detection-list"))
    assert response.status_code in (401, 403)
