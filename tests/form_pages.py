"""Pages for the form view's tests, served on two loopback origins (the second one is cross-origin):
secret fields painted magenta in the light DOM, shadow roots, nested roots and iframes."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
import urllib.parse
from collections.abc import Iterator
from typing import Any

SECRET = "background:#ff00ff;color:#ff00ff;caret-color:#ff00ff;border:0;outline:0;width:220px;height:28px;"
CONTAINERS = (
    "plain",
    "open_shadow",
    "closed_shadow",
    "nested_shadow",
    "same_frame",
    "cross_frame",
    "frame_shadow",
    "declarative_closed",
)


def field_html(kind: str, index: int, value: str) -> str:
    if kind == "selector":  # a text field only the citizen may fill, by configuration
        return f'<input type="text" class="numero-fiscal" id="f{index}" value="{value}" style="{SECRET}">'
    return f'<input type="password" id="f{index}" value="{value}" style="{SECRET}">'


def page(spec: dict[str, Any], other_origin: str) -> str:
    parts = ['<div id="green" style="width:300px;height:120px;background:#00ff00"></div>']
    scripts = []
    for i, field in enumerate(spec["fields"]):
        html = field_html(field["kind"], i, "MOTDEPASSE" + str(i))
        top = field["top"]
        box = f'<div id="box{i}" style="margin-top:{top}px;position:relative">'
        container = field["container"]
        if container == "plain":
            parts.append(f"{box}{html}</div>")
        elif container == "declarative_closed":  # no script of the kiosk's can see inside
            parts.append(
                f'{box}<field-host><template shadowrootmode="closed">{html}</template></field-host></div>'
            )
        elif container in ("open_shadow", "closed_shadow", "nested_shadow"):
            mode = "open" if container == "open_shadow" else "closed"
            parts.append(f'{box}<div id="host{i}"></div></div>')
            inner = json.dumps(html)
            if container == "nested_shadow":
                scripts.append(
                    f"(() => {{ const r = document.getElementById('host{i}').attachShadow({{mode:'closed'}});"
                    f" const h = document.createElement('span'); r.appendChild(h);"
                    f" h.attachShadow({{mode:'open'}}).innerHTML = {inner}; }})();"
                )
            else:
                scripts.append(
                    f"document.getElementById('host{i}').attachShadow({{mode:'{mode}'}}).innerHTML = {inner};"
                )
        else:
            origin = other_origin if container == "cross_frame" else ""
            shadow = "1" if container == "frame_shadow" else "0"
            query = urllib.parse.urlencode({"kind": field["kind"], "i": i, "shadow": shadow})
            parts.append(
                f'{box}<iframe id="frame{i}" src="{origin}/frame?{query}" '
                'style="width:320px;height:90px;border:0"></iframe></div>'
            )
    parts.append('<div style="height:1600px"></div>')
    return (
        "<!doctype html><html><body style='margin:8px'>"
        + "".join(parts)
        + "<script>"
        + "".join(scripts)
        + "</script></body></html>"
    )


def frame(kind: str, index: int, shadow: bool) -> str:
    html = field_html(kind, index, "CADRE" + str(index))
    if shadow:
        return (
            "<!doctype html><body style='margin:0'><div id='h'></div><script>"
            f"document.getElementById('h').attachShadow({{mode:'closed'}}).innerHTML = {json.dumps(html)};"
            "</script></body>"
        )
    return f"<!doctype html><body style='margin:0'>{html}</body>"


class Pages(http.server.BaseHTTPRequestHandler):
    other_origin = ""

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path == "/page":
            body = page(json.loads(query["spec"][0]), self.other_origin)
        elif url.path == "/raw":  # a page written by the test itself
            body = query["html"][0]
        elif url.path == "/frame":
            body = frame(query["kind"][0], int(query["i"][0]), query["shadow"][0] == "1")
        else:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextlib.contextmanager
def two_origins() -> Iterator[tuple[str, str]]:
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), Pages) for _ in range(2)]
    urls = [f"http://127.0.0.1:{s.server_port}" for s in servers]
    Pages.other_origin = urls[1]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield urls[0], urls[1]
    finally:
        for server in servers:
            server.shutdown()


def raw_page(origin: str, html: str) -> str:
    return f"{origin}/raw?" + urllib.parse.urlencode({"html": html})
