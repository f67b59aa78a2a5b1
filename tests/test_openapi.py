"""The OpenAPI document is valid and matches what the reference central serves, route for route."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from openapi_spec_validator import validate

from kiosk_client.central.app import create_app
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
