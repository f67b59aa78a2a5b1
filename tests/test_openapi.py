"""The OpenAPI document is valid and matches what the reference central serves, route for route."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from openapi_spec_validator import validate

from kiosk_client.central.app import create_app
from kiosk_client.central.guard import is_clerk_api
from kiosk_client.central.store import Store

SPEC = Path(__file__).resolve().parent.parent / "kiosk_client" / "central" / "openapi.yaml"


def spec() -> dict[str, Any]:
    return dict(yaml.safe_load(SPEC.read_text()))


def test_the_document_is_valid_openapi() -> None:
    validate(spec())


def test_every_api_route_is_documented_and_every_documented_route_exists(tmp_path: Path) -> None:
    app = create_app(Store(tmp_path / "c.db"), "t")
    served = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if path.startswith("/api/") and route.method != "HEAD":
            served.add((route.method.lower(), path))
    documented = {
        (method, path)
        for path, item in spec()["paths"].items()
        for method in item
        if method in ("get", "put", "post", "delete")
    }
    assert served == documented


def test_kiosk_paths_are_versioned() -> None:
    assert all(re.match(r"^/api/v1/", path) for path in spec()["paths"])


def operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    document = spec()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in ("get", "put", "post", "delete"):
                yield path, method, {"security": document["security"], **operation}


def test_every_endpoint_that_reads_json_documents_its_body_and_its_refusals(tmp_path: Path) -> None:
    app = create_app(Store(tmp_path / "c.db"), "t")
    reads_json = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith("/api/")
        and "read_json_object(" in inspect.getsource(route.handler)
    }
    documented = {
        (method, path)
        for path, method, op in operations()
        if "application/json" in op.get("requestBody", {}).get("content", {})
    }
    assert reads_json == documented
    for path, method, op in operations():
        if (method, path) in documented:
            assert {"400", "413"} <= set(op["responses"]), (method, path)


def test_rate_limited_operations_document_429_with_retry_after() -> None:
    for path, method, op in operations():
        schemes = {name for requirement in op["security"] for name in requirement}
        # Walk-in codes are guessed with a device token: limited per kiosk (429 too_many_attempts).
        guessed = path in ("/api/v1/enrollment", "/api/v1/kiosk/walk-ins")
        limited = guessed or bool(schemes & {"clerkToken", "adminToken"})
        assert ("429" in op["responses"]) == limited, (method, path)
    rate_limited = spec()["components"]["responses"]["RateLimited"]
    assert rate_limited["headers"]["Retry-After"]["required"] is True


def test_cors_preflights_are_documented_exactly_where_the_central_answers_them() -> None:
    for path, item in spec()["paths"].items():
        assert ("options" in item) == is_clerk_api(
            path.replace("{appointment_id}", "appt_1").replace("{name}", "control.pointer")
        ), path
    assert "--clerk-origin" in spec()["info"]["description"]
