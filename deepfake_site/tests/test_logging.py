import json
import logging

import pytest

from deepfake_site.logging import ContextFilter, detection_id_var, request_id_var


def _json_record(record: logging.LogRecord) -> dict:
    from pythonjsonlogger.json import JsonFormatter

    ContextFilter().filter(record)
    formatter = JsonFormatter("%(levelname)s %(name)s %(message)s %(request_id)s %(detection_id)s")
    return json.loads(formatter.format(record))


def test_json_log_line_carries_request_and_detection_ids():
    request_token = request_id_var.set("req-123")
    detection_token = detection_id_var.set("42")
    try:
        record = logging.LogRecord("detection", logging.INFO, __file__, 1, "verdict", None, None)
        line = _json_record(record)
    finally:
        request_id_var.reset(request_token)
        detection_id_var.reset(detection_token)
    assert line["request_id"] == "req-123"
    assert line["detection_id"] == "42"
    assert line["message"] == "verdict"


@pytest.mark.django_db
def test_request_id_is_taken_from_the_proxy_and_echoed(client):
    response = client.get("/privacy/", HTTP_X_REQUEST_ID="abc-DEF_1.2")
    assert response["X-Request-ID"] == "abc-DEF_1.2"


@pytest.mark.django_db
def test_forged_request_id_is_replaced(client):
    response = client.get("/privacy/", HTTP_X_REQUEST_ID="evil\nFAKE LOG LINE")
    assert "\n" not in response["X-Request-ID"]
    assert len(response["X-Request-ID"]) == 32


@pytest.mark.django_db
def test_log_lines_during_a_request_carry_its_id(client):
    seen: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            ContextFilter().filter(record)
            seen.append(record.request_id)

    handler = Capture()
    logging.getLogger("django.request").addHandler(handler)
    try:
        client.get("/no-such-page/", HTTP_X_REQUEST_ID="trace-77")
    finally:
        logging.getLogger("django.request").removeHandler(handler)
    assert "trace-77" in seen
