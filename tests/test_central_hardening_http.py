"""CORS for a council's own clerk app (allow-listed origins only) and the clerk console's security
headers, as the real central answers them over loopback HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kiosk_client.central.admin import CentralAdmin, Clerk
from kiosk_client.central.guard import CentralOptions
from kiosk_client.central.server import CentralThread
from kiosk_client.cli import parser

CLERK_APP = "https://clerks.example.org"
OTHER_APP = "https://evil.example.net"


@pytest.fixture
def cors_central(tmp_path: Path) -> Iterator[tuple[CentralThread, Clerk]]:
    # Written the way an administrator might (case, trailing slash, default port): normalised.
    options = CentralOptions(clerk_origins=("HTTPS://Clerks.Example.org:443/", "http://localhost:5173"))
    with CentralThread(tmp_path / "c.db", options=options) as central:
        admin = CentralAdmin(central.url, central.admin_token)
        clerk = admin.create_clerk("Mme Martin", "CAF")
        admin.close()
        yield central, clerk


def preflight(client: httpx.Client, path: str, origin: str, method: str = "GET") -> httpx.Response:
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )


def cors_headers(response: httpx.Response) -> set[str]:
    return {name.lower() for name in response.headers if name.lower().startswith("access-control-")}


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/api/v1/clerk/appointments", "GET"),
        ("/api/v1/clerk/config", "GET"),
        ("/api/v1/appointments/appt_x/call", "GET"),
        ("/api/v1/appointments/appt_x/answer", "PUT"),
        ("/api/v1/appointments/appt_x/hangup", "POST"),
        ("/api/v1/schemas/", "GET"),
        ("/api/v1/schemas/control.pointer.json", "GET"),
    ],
)
def test_an_allowed_clerk_origin_gets_a_preflight_answer(
    cors_central: tuple[CentralThread, Clerk], path: str, method: str
) -> None:
    central, _ = cors_central
    with httpx.Client(base_url=central.url) as client:
        for origin in (CLERK_APP, "http://localhost:5173"):
            response = preflight(client, path, origin, method)
            assert response.status_code == 204
            assert response.headers["Access-Control-Allow-Origin"] == origin  # exact, never "*"
            allowed_methods = {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")}
            assert method in allowed_methods and "*" not in allowed_methods
            allowed_headers = {
                h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")
            }
            assert {"authorization", "content-type", "if-none-match"} <= allowed_headers
            assert "origin" in response.headers["Vary"].lower()
            assert 0 < int(response.headers["Access-Control-Max-Age"]) <= 86_400
            # Bearer tokens, not cookies: no credentials mode to allow.
            assert "access-control-allow-credentials" not in cors_headers(response)


def test_an_allowed_clerk_origin_can_read_answers_and_errors(
    cors_central: tuple[CentralThread, Clerk],
) -> None:
    central, clerk = cors_central
    with httpx.Client(base_url=central.url, headers={"Origin": CLERK_APP}) as client:
        ok = client.get("/api/v1/clerk/appointments", headers={"Authorization": f"Bearer {clerk.token}"})
        assert ok.status_code == 200 and ok.headers["Access-Control-Allow-Origin"] == CLERK_APP
        assert "origin" in ok.headers["Vary"].lower()
        exposed = {h.strip().lower() for h in ok.headers["Access-Control-Expose-Headers"].split(",")}
        assert {"retry-after", "etag"} <= exposed
        refused = client.get("/api/v1/clerk/appointments", headers={"Authorization": "Bearer wrong"})
        assert refused.status_code == 401 and refused.headers["Access-Control-Allow-Origin"] == CLERK_APP


def test_origins_not_on_the_list_get_no_cors_headers(cors_central: tuple[CentralThread, Clerk]) -> None:
    central, clerk = cors_central
    with httpx.Client(base_url=central.url) as client:
        for origin in (OTHER_APP, "null", "https://clerks.example.org.evil.net", "http://clerks.example.org"):
            refused = preflight(client, "/api/v1/clerk/appointments", origin)
            assert refused.status_code == 403 and cors_headers(refused) == set()
            assert "origin" in refused.headers["Vary"].lower()
            actual = client.get(
                "/api/v1/clerk/appointments",
                headers={"Origin": origin, "Authorization": f"Bearer {clerk.token}"},
            )
            assert actual.status_code == 200 and cors_headers(actual) == set()


def test_kiosk_and_admin_calls_are_never_open_to_browsers(cors_central: tuple[CentralThread, Clerk]) -> None:
    central, _ = cors_central
    with httpx.Client(base_url=central.url) as client:
        for path in ("/api/v1/admin/kiosks", "/api/v1/enrollment", "/api/v1/kiosk/schedule"):
            response = preflight(client, path, CLERK_APP, "POST")
            assert cors_headers(response) == set(), path
            assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"


def test_without_clerk_origins_there_is_no_cors(central: CentralThread) -> None:
    with httpx.Client(base_url=central.url) as client:
        response = preflight(client, "/api/v1/clerk/appointments", CLERK_APP)
        assert response.status_code == 403 and cors_headers(response) == set()


def test_the_central_command_takes_clerk_origins(capsys: pytest.CaptureFixture[str]) -> None:
    args = parser().parse_args(
        ["central", "--clerk-origin", "https://Clerks.Example.org/", "--clerk-origin", "http://[::1]:8080"]
    )
    assert args.clerk_origin == ["https://clerks.example.org", "http://[::1]:8080"]
    for bad in (
        "*",
        "null",
        "clerks.example.org",
        "https://clerks.example.org/app",
        "ftp://x",
        "https://u@x",
    ):
        with pytest.raises(SystemExit):
            parser().parse_args(["central", "--clerk-origin", bad])
        assert "is not a web origin" in capsys.readouterr().err
    with pytest.raises(ValueError, match="not a web origin"):
        CentralOptions(clerk_origins=("https://x.example.org/path",))


# --------------------------------------------------------------------------- the console's headers

CONSOLE_PATHS = ["/clerk", "/clerk/static/clerk.js", "/clerk/static/clerk.css", "/clerk/static/missing.js"]


def csp(response: httpx.Response) -> dict[str, list[str]]:
    policy = response.headers["Content-Security-Policy"]
    return {d.split()[0]: d.split()[1:] for d in (p.strip() for p in policy.split(";")) if d}


@pytest.mark.parametrize("path", CONSOLE_PATHS)
def test_the_console_and_its_files_carry_security_headers(central: CentralThread, path: str) -> None:
    with httpx.Client(base_url=central.url) as client:
        response = client.get(path)
    assert response.status_code == (404 if "missing" in path else 200)
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    policy = csp(response)
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]  # no inline script, no eval
    assert policy["connect-src"] == ["'self'"]
    assert policy["base-uri"] == ["'none'"] and policy["form-action"] == ["'none'"]
    assert not any("unsafe" in source or source == "*" for sources in policy.values() for source in sources)


def test_the_console_needs_no_inline_code(central: CentralThread) -> None:
    """The policy forbids inline scripts and styles: the console's HTML must have none."""
    with httpx.Client(base_url=central.url) as client:
        html = client.get("/clerk").text
    assert "<script>" not in html and "<style" not in html
    assert not re.search(r"\s(on[a-z]+|style)\s*=", html)  # no onclick=, no style attributes
    assert re.search(r'<script src="/clerk/static/clerk.js">', html)


def test_api_answers_are_not_sniffed(central: CentralThread) -> None:
    with httpx.Client(base_url=central.url) as client:
        for path in ("/api/v1/health", "/api/v1/kiosk/schedule", "/api/v1/openapi.yaml"):
            assert client.get(path).headers["X-Content-Type-Options"] == "nosniff"


def test_an_allowed_clerk_app_can_read_the_protocols_schemas(
    cors_central: tuple[CentralThread, Clerk],
) -> None:
    central, _ = cors_central
    with httpx.Client(base_url=central.url, headers={"Origin": CLERK_APP}) as client:
        listing = client.get("/api/v1/schemas/")
        schema = client.get("/api/v1/schemas/control.pointer.json")
    assert listing.status_code == 200 and listing.headers["Access-Control-Allow-Origin"] == CLERK_APP
    assert schema.status_code == 200 and schema.headers["Access-Control-Allow-Origin"] == CLERK_APP
