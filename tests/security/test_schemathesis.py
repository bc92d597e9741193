"""Property-based run of the whole REST API against its own OpenAPI schema (schemathesis).

Every operation of /api/schema/ gets generated requests, authenticated with a real API token and
sent to the WSGI application in-process: no 5xx, and every response (status code, content type,
headers, body) must match the schema. The only exclusion is one check on the upload, explained
where it is made.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from accounts.services import api_token_create
from deepfake_site.wsgi import application
from detection.tests.factories import DetectionFactory
from detection.tests.private_checks import private_detection, web_manifest_write
from detection.tests.video_records import video_detection


def _schema() -> schemathesis.BaseSchema:
    # The document /api/schema/ serves, generated in-process (no request needed to load it).
    document = json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(public=True)))
    schema = schemathesis.openapi.from_dict(document)
    schema.app = application  # calls go through the WSGI app, middleware included
    return schema


schema = _schema()


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    # As django.test.Client does: a request_started/finished handler would close the database
    # connection that holds this test's transaction (PostgreSQL), ending the test's data with it.
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def token(django_user_model, settings, tmp_path) -> str:
    # A generated ?wait= on the pending row below waits this long at most, not 30 s.
    settings.API_MAX_WAIT_SECONDS = 0.05
    user = django_user_model.objects.create_user(username="fuzz", password="unused-pass-42")
    # A few real rows, so ids 1.. sometimes exist and owner paths (200, image bytes) are reached.
    DetectionFactory.create_batch(2, owner=user, done=True)
    DetectionFactory(owner=user)
    # The other shapes of a verdict: no face (null probability), and several faces.
    DetectionFactory(owner=user, no_face=True)
    DetectionFactory(
        owner=user,
        done=True,
        deciding_face=2,
        faces=[{"fake_probability": 0.1, "label": "real", "box": None}, {}],
    )
    # A done video, so the video action's whole-file and range answers are reached too.
    video_detection(owner=user, done=True)
    # A saved private check (no image): its detail, and the refusals of what needs the image.
    web_manifest_write(tmp_path / "web-model")
    settings.DETECTION_WEB_MODEL_DIR = str(tmp_path / "web-model")
    private_detection(owner=user)
    _, key = api_token_create(user=user, name="schemathesis")
    return key


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    # The token fixture is set up once per operation, not per example: that is intended.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_matches_its_schema(case, token):
    excluded = []
    if case.method == "POST" and case.path == "/api/v1/detections/":
        # "Schema-valid request rejected" cannot hold for the upload: the schema can say "binary",
        # not "a decodable JPEG/PNG/WebP", so random bytes are rightly refused with the documented
        # 400. Every other check (no 5xx, documented codes, response shapes) still runs on it.
        excluded.append(positive_data_acceptance)
    if case.method == "POST" and case.path == "/api/v1/private-checks/":
        # Likewise: a schema-valid save names a browser model that is not the one served (409),
        # or boxes outside the image or more pixels than allowed in all (400), rules a schema
        # cannot state. The documented codes and shapes are still checked.
        excluded.append(positive_data_acceptance)
    case.call_and_validate(headers={"Authorization": f"Token {token}"}, excluded_checks=excluded)
