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


# --- One line per request -------------------------------------------------------------------
# A record is a written line when a handler the settings (or Django's defaults) installed emits
# it, whichever logger it came through. pytest's own capture handlers are subclasses of
# StreamHandler, hence the exact type check.


def _configured_handlers() -> list[logging.Handler]:
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    return [h for lg in loggers for h in lg.handlers if type(h) is logging.StreamHandler]


@pytest.fixture
def written(monkeypatch) -> list[logging.LogRecord]:
    """Every record a configured handler writes (nothing reaches the terminal)."""
    records: list[logging.LogRecord] = []
    for handler in _configured_handlers():
        # Handler.handle still applies the handler's filters, then calls this.
        monkeypatch.setattr(handler, "emit", records.append)
    return records


def _beat(*, version: str) -> None:
    from detection.tests.factories import WorkerHeartbeatFactory

    WorkerHeartbeatFactory(model_version=version)


def _boom():
    raise RuntimeError("health check crashed")


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [True, False], ids=["debug", "production"])
@pytest.mark.parametrize(
    ("method", "path", "status", "level"),
    [
        ("get", "/no-such-page/", 404, logging.WARNING),
        ("get", "/api/v1/no-such-endpoint/", 404, logging.WARNING),
        ("post", "/privacy/", 405, logging.WARNING),
        ("get", "/api/v1/me/", 401, logging.WARNING),  # DRF, no credentials
        ("get", "/health/", 500, logging.ERROR),  # health_report raises: an unhandled error
    ],
)
def test_each_4xx_and_5xx_response_is_written_once(
    client, settings, monkeypatch, written, debug, method, path, status, level
):
    # DEBUG is how `make run` runs; Django's default handler on "django" only writes then.
    settings.DEBUG = debug
    monkeypatch.setattr("deepfake_site.views.health_report", _boom)
    client.raise_request_exception = False

    response = getattr(client, method)(path, HTTP_X_REQUEST_ID="once-1")

    assert response.status_code == status
    assert len(written) == 1, [(r.name, r.getMessage()) for r in written]
    assert written[0].name == "django.request"
    assert written[0].levelno == level
    assert written[0].request_id == "once-1"


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [True, False], ids=["debug", "production"])
@pytest.mark.parametrize("worker", ["loading the model", "not beaten yet"])
def test_health_503_while_workers_warm_up_is_one_info_line(
    client, settings, written, debug, worker
):
    settings.DEBUG = debug
    if worker == "loading the model":
        _beat(version="")  # a live worker whose model is not loaded yet

    response = client.get("/health/")

    assert response.status_code == 503
    assert len(written) == 1, [(r.name, r.getMessage()) for r in written]
    assert written[0].name == "django.request"
    assert written[0].levelno == logging.INFO
    assert written[0].getMessage() == "Service warming up: /health/"
    assert written[0].status_code == 503


@pytest.mark.django_db
def test_health_503_with_the_broker_down_stays_an_error(client, settings, monkeypatch, written):
    from deepfake_site.celery import app

    _beat(version="1.0")
    settings.REDIS_SOCKET_TIMEOUT = 0.5
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    monkeypatch.setitem(app.conf, "broker_url", "redis://127.0.0.1:1/0")

    response = client.get("/health/")

    assert response.status_code == 503
    assert [(r.name, r.levelno) for r in written] == [("django.request", logging.ERROR)]
    assert written[0].getMessage() == "Service Unavailable: /health/"


# --- The web servers' access lines ------------------------------------------------------------


def _runserver_access_line(status: int) -> None:
    """Logs exactly as runserver does for one request (Django's WSGIRequestHandler)."""
    from types import SimpleNamespace

    from django.core.servers.basehttp import WSGIRequestHandler

    handler = SimpleNamespace(request=None, log_date_time_string=lambda: "01/Jan/2026 00:00:00")
    WSGIRequestHandler.log_message(handler, '"%s" %s %s', "GET /x/ HTTP/1.1", str(status), "10")


def _gunicorn_access_line(status: int, *, request_id: str = "gun-1") -> None:
    """Logs exactly as gunicorn does for one request (its Logger.access, its default format).

    The Logger is built without its __init__, which would install gunicorn's own handlers on
    gunicorn.access for the rest of the test run; in a real gunicorn worker Django's LOGGING
    replaces those when the app loads.
    """
    import datetime as dt
    from types import SimpleNamespace

    from gunicorn import glogging
    from gunicorn.config import Config

    cfg = Config()
    cfg.set("accesslog", "-")
    log = object.__new__(glogging.Logger)
    log.cfg = cfg
    log.access_log = logging.getLogger("gunicorn.access")
    log._access_log_enabled = True
    response = SimpleNamespace(
        status=f"{status} Whatever", sent=10, headers=[("X-Request-ID", request_id)]
    )
    request = SimpleNamespace(headers=[("User-Agent", "curl")])
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/x/",
        "PATH_INFO": "/x/",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
    }
    log.access(response, request, environ, dt.timedelta(milliseconds=5))


@pytest.mark.parametrize("server", [_runserver_access_line, _gunicorn_access_line])
def test_server_access_line_is_written_once_below_400_and_not_at_all_above(written, server):
    # django.request writes the 4xx/5xx lines (tests above); the server's would be a second.
    server(200)
    server(302)
    server(404)
    server(503)

    lines = [r.getMessage() for r in written]
    assert len(lines) == 2, lines
    assert " 200 " in lines[0] and " 302 " in lines[1]


def test_gunicorn_access_line_carries_the_request_id_of_the_response(written):
    _gunicorn_access_line(200, request_id="from-response-9")

    assert [r.request_id for r in written] == ["from-response-9"]


def test_runserver_https_hint_is_kept(written):
    # runserver's "you are speaking TLS to a plain HTTP server" error has a 500 status but no
    # django.request line: it must not be mistaken for a request line and dropped.
    from types import SimpleNamespace

    from django.core.servers.basehttp import WSGIRequestHandler

    handler = SimpleNamespace(request=None, log_date_time_string=lambda: "01/Jan/2026 00:00:00")
    WSGIRequestHandler.log_message(handler, "%s %s %s", "\x16\x03\x01", "400", "-")

    assert [r.levelno for r in written] == [logging.ERROR]
    assert "HTTPS" in written[0].getMessage()
