"""The health gate's script against a local HTTP server, and the known-bad guard (pyinfra-testing cases
in test_health_cases/)."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pyinfra_testing.operations import make_operation_tests

from operations import release_commands as rc
from operations.commands import Compose

TestNotKnownBad = make_operation_tests(
    "operations", "health.not_known_bad", Path(__file__).parent / "test_health_cases" / "health.not_known_bad"
)

COMPOSE = Compose(project="hwunit", files=["/nonexistent/docker-compose.yml"], env_file="/nonexistent/env")
CONTAINER = "hopwhistle-unit-test-no-such-container"


class App:
    """Answers each path with a configured (status, body, content type)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, str]] = {}
        self.headers_seen: list[dict] = []
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                app.headers_seen.append(dict(self.headers))
                status, body = app.routes.get(self.path, (404, "{}"))
                data = body.encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def app():
    served = App()
    yield served
    served.server.shutdown()


def gate(app: App, state_dir: Path, checks: list[rc.HttpCheck], timeout: float = 2, rollback: bool = True) -> tuple[int, str]:
    script = rc.gate_script(
        service="api", container=CONTAINER, image="hwunit-api", port=app.port, health_path="/health",
        smoke_checks=checks, timeout_seconds=timeout, compose=COMPOSE, state_dir=str(state_dir),
        project_path=str(state_dir / "no-checkout"), tree="a" * 40, token="t1", rollback_to=None, rollback=rollback,
    )  # fmt: skip
    result = subprocess.run(script, shell=True, capture_output=True, text=True, timeout=60)
    return result.returncode, result.stdout + result.stderr


BUYERS = rc.HttpCheck(path="/api/v1/buyers", headers=(("x-demo-tenant-id", "0000"),), expect_status=200, expect_json=True)


def test_healthy_service_passing_its_smoke_checks_passes(app, tmp_path):
    app.routes = {"/health": (200, '{"status":"ok"}'), "/api/v1/buyers": (200, '{"buyers":[]}')}
    code, out = gate(app, tmp_path, [BUYERS])
    assert code == 0, out
    assert "ok: smoke check GET /api/v1/buyers" in out
    assert any(h.get("x-demo-tenant-id") == "0000" for h in app.headers_seen)


@pytest.mark.skipif(shutil.which("docker") is None, reason="the failure path asks Docker for logs")
def test_smoke_check_failure_reports_the_check_and_logs_and_records_the_release(app, tmp_path):
    app.routes = {"/health": (200, "{}"), "/api/v1/buyers": (500, '{"error":"column does not exist"}')}
    code, out = gate(app, tmp_path, [BUYERS])
    assert code == 1
    assert "FAILED api: smoke check GET /api/v1/buyers (x-demo-tenant-id: 0000) -> 200 with JSON failed: got 500" in out
    assert "column does not exist" in out
    assert f"last 50 lines of docker logs {CONTAINER}" in out
    assert "NOT ROLLED BACK: there is no earlier image of api" in out
    records = rc.parse_failed_releases((tmp_path / "failed-releases").read_text().splitlines())
    assert [(r["service"], r["tree"], r["result"], r["token"]) for r in records] == [("api", "a" * 40, "not-rolled-back", "t1")]


@pytest.mark.skipif(shutil.which("docker") is None, reason="the gate asks Docker for the container's state")
def test_health_that_never_answers_fails_at_once_when_the_container_is_missing(app, tmp_path):
    app.routes = {"/health": (503, '{"status":"error"}')}
    code, out = gate(app, tmp_path, [], timeout=30)
    assert code == 1
    assert f"container {CONTAINER} is missing" in out and "answered 503" in out


def test_body_that_is_not_json_fails_a_json_check(app, tmp_path):
    app.routes = {"/health": (200, "{}"), "/api/v1/buyers": (200, "<html>")}
    code, out = gate(app, tmp_path, [BUYERS], rollback=False)
    assert code == 1 and "NOT ROLLED BACK: rollback is off" in out


def test_success_forgets_an_earlier_failure_of_the_same_tree(app, tmp_path):
    (tmp_path / "failed-releases").write_text(
        f"api\t{'a' * 40}\tc\tt\trolled-back\tt0\nweb\t{'a' * 40}\tc\tt\trolled-back\tt0\napi\t{'b' * 40}\tc\tt\trolled-back\tt0\n"
    )
    app.routes = {"/health": (200, "{}")}
    assert gate(app, tmp_path, [])[0] == 0
    left = rc.parse_failed_releases((tmp_path / "failed-releases").read_text().splitlines())
    assert [(r["service"], r["tree"][0]) for r in left] == [("web", "a"), ("api", "b")]


def test_without_curl_the_gate_speaks_http_over_dev_tcp(app, tmp_path):
    app.routes = {"/health": (200, "{}"), "/api/v1/buyers": (200, json.dumps({"buyers": [1]}))}
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "date", "head", "cut", "sed", "tr", "timeout", "mktemp", "rm", "cat", "sleep", "grep", "mv"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    script = rc.gate_script(
        service="api", container=CONTAINER, image="hwunit-api", port=app.port, health_path="/health",
        smoke_checks=[BUYERS], timeout_seconds=2, compose=COMPOSE, state_dir=str(tmp_path),
        project_path=str(tmp_path), tree="a" * 40, token="t1", rollback_to=None,
    )  # fmt: skip
    result = subprocess.run(script, shell=True, capture_output=True, text=True, env={"PATH": str(bin_dir)}, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: smoke check" in result.stdout


def test_check_description():
    assert BUYERS.describe() == "GET /api/v1/buyers (x-demo-tenant-id: 0000) -> 200 with JSON"
    assert rc.HttpCheck(path="/").describe() == "GET / -> 200"


def test_failed_releases_parser_skips_the_header_and_bad_lines():
    lines = ["# failed releases", "api\tt\tc\ttime\trolled-back\ttok", "garbage"]
    assert rc.parse_failed_releases(lines) == [
        {"service": "api", "tree": "t", "commit": "c", "time": "time", "result": "rolled-back", "token": "tok"}
    ]


def test_success_records_the_verified_image_of_this_service_only(app, tmp_path):
    (tmp_path / "verified-releases").write_text("api\tsha256:old\nweb\tsha256:web\n")
    app.routes = {"/health": (200, "{}")}
    assert gate(app, tmp_path, [])[0] == 0
    verified = rc.parse_verified_releases((tmp_path / "verified-releases").read_text().splitlines())
    # The unit test's container does not exist: the image it ran is recorded as unknown ("").
    assert verified == {"web": "sha256:web", "api": ""}
    assert (tmp_path / "verified-releases").stat().st_mode & 0o777 == 0o600
