"""The web server `make run` starts (Procfile.dev's web line, a real process) refuses an
oversized upload without reading it: Django's runserver answered 413 early and then read the
whole rest of the body into memory (an 800 MB body took it from 110 to 910 MB)."""

from __future__ import annotations

import contextlib
import os
import re
import select
import socket
from pathlib import Path

import pytest

from tests.processes import BASE_DIR, database_url, http_get, web_server_running

pytestmark = [pytest.mark.slow, pytest.mark.services]

MIB = 1024 * 1024
REQUEST_LIMIT = 20 * MIB  # DETECTION_MAX_REQUEST_BYTES for the server under test
BODY_BYTES = 150 * MIB


def _procfile_web_command() -> str:
    [command] = re.findall(r"^web:\s*(.+)$", (BASE_DIR / "Procfile.dev").read_text(), re.M)
    return command


def _peak_rss_kib(pid: int) -> int:
    """VmHWM: the highest resident set size the process ever had (a body read into memory and
    freed again still shows)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.M).group(1))


def _send_oversized_upload(*, port: int, token: str) -> tuple[bytes, int]:
    """POST a BODY_BYTES multipart upload in 1 MiB chunks, as a client that keeps sending until
    the server closes; returns (what the server answered, body bytes sent)."""
    boundary = "oversized-upload-boundary"
    part_head = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"images\"; filename=\"big.jpg\""
        "\r\nContent-Type: image/jpeg\r\n\r\n"
    ).encode()
    part_tail = f"\r\n--{boundary}--\r\n".encode()
    head = (
        f"POST /api/v1/detections/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Token {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {BODY_BYTES}\r\nConnection: close\r\n\r\n"
    ).encode()
    filler = BODY_BYTES - len(part_head) - len(part_tail)
    chunk = b"\xff" * MIB
    answer = b""
    sent = 0
    # Bounded: a server that stops reading without closing fails the test here.
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(head + part_head)
        try:
            while sent < filler:
                # Keep what the server answered early: a reset after it may drop unread data.
                if select.select([sock], [], [], 0)[0]:
                    data = sock.recv(65536)
                    if not data:
                        break
                    answer += data
                size = min(MIB, filler - sent)
                sock.sendall(chunk[:size])
                sent += size
            else:
                sock.sendall(part_tail)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed by the server: what a client sees when the rest is refused unread
        with contextlib.suppress(ConnectionResetError):
            while data := sock.recv(65536):
                answer += data
    return answer, sent


def test_make_run_web_server_refuses_an_oversized_upload_without_reading_it(
    transactional_db, token_key, tmp_path
):
    from django.db import connection

    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_", "REDIS_", "CELERY_", "DETECTION_"))
    }
    env |= {
        # make run's defaults, on this test's database.
        "DJANGO_DEBUG": "true",
        "DATABASE_URL": database_url(connection.settings_dict),
        "DATABASE_CONN_MAX_AGE": "0",
        "DJANGO_VAR_DIR": str(tmp_path / "var"),
        "DETECTION_MAX_REQUEST_BYTES": str(REQUEST_LIMIT),
        "LOG_JSON": "false",
    }
    with web_server_running(
        command=_procfile_web_command(), env=env, log_path=tmp_path / "web.log"
    ) as server:
        # Pages render with their CSS in this mode (whitenoise, debug on).
        status, _, body = http_get(f"{server.url}/")
        assert status == 200, server.log_tail()
        [stylesheet] = re.findall(r'href="(/static/css/site[^"]*\.css)"', body.decode())
        status, headers, _ = http_get(f"{server.url}{stylesheet}")
        assert status == 200 and headers["Content-Type"].startswith("text/css")

        # Load the API code in the request handlers first: that memory is not the body's.
        for _ in range(4):
            status, _, _ = http_get(
                f"{server.url}/api/v1/detections/",
                headers={"Authorization": f"Token {token_key}"},
            )
            assert status == 200, server.log_tail()
        pids = server.handler_pids()
        before = {pid: _peak_rss_kib(pid) for pid in pids}

        answer, sent = _send_oversized_upload(port=server.port, token=token_key)

        status_line = answer.split(b"\r\n", 1)[0]
        assert b" 413 " in status_line or sent < BODY_BYTES - 2 * MIB, (answer[:500], sent)
        assert b" 413 " in status_line or not answer, answer[:500]
        growth_mib = max(_peak_rss_kib(pid) - before[pid] for pid in pids) / 1024
        # Reading the body would add about BODY_BYTES (150 MiB) to one handler's peak.
        assert growth_mib < BODY_BYTES / MIB / 3, (growth_mib, server.log_tail())
        assert server.process.poll() is None
