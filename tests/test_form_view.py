"""The form view: a fresh profile per session, and every escape refused and shown."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPoint, Qt, QUrl
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from kiosk_client.core.navigation import NavigationPolicy
from kiosk_client.ui.form_view import FormView

from .conftest import Site


def run_js(qtbot: QtBot, view: FormView, script: str) -> Any:
    assert view.page is not None
    result: list[Any] = []
    view.page.runJavaScript(script, 0, result.append)
    qtbot.waitUntil(lambda: bool(result), timeout=5000)
    return result[0]


def load(qtbot: QtBot, view: FormView, url: str, policy: NavigationPolicy) -> None:
    view.start_session(url, policy)
    assert view.page is not None
    with qtbot.waitSignal(view.page.loadFinished, timeout=15_000) as finished:
        pass
    assert finished.args == [True]


def test_the_next_session_sees_nothing_of_the_previous_one(qtbot: QtBot, site: Site) -> None:
    view = FormView()
    qtbot.addWidget(view)
    view.resize(1280, 800)
    view.show()
    policy = NavigationPolicy([site.url])
    load(qtbot, view, f"{site.url}/demo-form/", policy)
    run_js(
        qtbot,
        view,
        "document.getElementById('login-id').value = '1234567'; document.getElementById('login-button').click(); 1",
    )
    assert run_js(qtbot, view, "String(localStorage.getItem('demo-session'))") == "1234567"
    assert "demo_session=1234567" in run_js(qtbot, view, "document.cookie")
    first_profile = view.profile
    view.end_session()
    qtbot.waitUntil(view.sessions_released)

    load(qtbot, view, f"{site.url}/demo-form/", policy)
    assert view.profile is not first_profile and view.profile is not None and view.profile.isOffTheRecord()
    assert run_js(qtbot, view, "String(localStorage.getItem('demo-session'))") == "null"
    assert run_js(qtbot, view, "String(document.cookie)") == ""
    assert run_js(qtbot, view, "document.getElementById('login-status').textContent") == ""
    view.end_session()
    qtbot.waitUntil(view.sessions_released)


def test_escapes_are_refused_and_shown(qtbot: QtBot, site: Site) -> None:
    view = FormView()
    qtbot.addWidget(view)
    view.resize(1280, 800)
    view.show()
    refusals: list[tuple[str, str]] = []
    view.refused.connect(lambda what, detail: refusals.append((what, detail)))
    load(qtbot, view, f"{site.url}/demo-form/", NavigationPolicy([site.url]))
    assert view.page is not None

    def refused(what: str, script: str) -> None:
        refusals.clear()
        run_js(qtbot, view, script + "; 1")
        qtbot.waitUntil(lambda: any(r[0] == what for r in refusals), timeout=5000)

    refused("navigation", "location.href = 'https://evil.example/'")
    assert "https://evil.example is not an allowed site" in refusals[0][1]
    for url in ("file:///etc/passwd", "javascript:alert(1)", "https://evil.example/"):
        refusals.clear()
        assert not view.navigate(url)  # what a clerk's "navigate" does
        qtbot.waitUntil(lambda: any(r[0] == "navigation" for r in refusals), timeout=5000)
    refusals.clear()
    view.page.load(QUrl("https://evil.example/"))  # even a direct load is checked by the page
    qtbot.waitUntil(lambda: any(r[0] == "navigation" for r in refusals), timeout=5000)
    # Scripted pop-ups are blocked outright; a real click on a target=_blank link reaches createWindow.
    assert run_js(qtbot, view, "String(window.open('" + site.url + "/demo-form/'))") == "null"
    run_js(
        qtbot,
        view,
        "const l = document.createElement('a'); l.href = '/demo-form/'; l.target = '_blank'; l.textContent = 'x';"
        "l.style = 'position:fixed;left:0;top:0;width:200px;height:200px;display:block;z-index:9'; document.body.append(l); 1",
    )
    refusals.clear()
    assert view.view is not None
    QTest.mouseClick(
        view.view.focusProxy(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(50, 50)
    )
    qtbot.waitUntil(lambda: any(r[0] == "popup" for r in refusals), timeout=5000)
    refused(
        "download",
        "const a = document.createElement('a'); a.href = URL.createObjectURL(new Blob(['x'])); a.download = 'x.txt'; document.body.append(a); a.click()",
    )
    assert view.notice.isVisible()
    qtbot.wait(300)
    assert view.page.url().toString().startswith(site.url)  # still on the allowed site
    view.end_session()
    qtbot.waitUntil(view.sessions_released)


def test_alerts_do_not_block_the_view(qtbot: QtBot, site: Site) -> None:
    view = FormView()
    qtbot.addWidget(view)
    view.show()
    load(qtbot, view, f"{site.url}/demo-form/", NavigationPolicy([site.url]))
    assert run_js(qtbot, view, "alert('Champ obligatoire'); 'continued'") == "continued"
    assert view.notice.text() == "Champ obligatoire"
    view.end_session()
    qtbot.waitUntil(view.sessions_released)


def test_the_file_chooser_offers_only_this_sessions_documents(
    qtbot: QtBot, site: Site, tmp_path: Any
) -> None:
    from kiosk_client.ui.session_files import SessionFiles

    files = SessionFiles(tmp_path)
    view = FormView(files.paths)
    qtbot.addWidget(view)
    view.resize(1280, 800)
    view.show()
    refusals: list[str] = []
    view.refused.connect(lambda what, detail: refusals.append(what))
    load(qtbot, view, f"{site.url}/demo-form/", NavigationPolicy([site.url]))
    run_js(
        qtbot,
        view,
        "const f = document.createElement('input'); f.type = 'file'; f.id = 'proof';"
        "f.style = 'position:fixed;left:0;top:0;width:300px;height:200px;z-index:9'; document.body.append(f); 1",
    )
    assert view.view is not None

    def click_the_file_field() -> None:
        assert view.view is not None
        QTest.mouseClick(
            view.view.focusProxy(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(50, 50)
        )

    click_the_file_field()  # nothing scanned yet: nothing offered, and the citizen is told
    qtbot.waitUntil(lambda: "file_chooser" in refusals, timeout=5000)
    assert run_js(qtbot, view, "document.getElementById('proof').files.length") == 0

    files.add("Justificatif de domicile.pdf", b"%PDF-1.4 scanned")
    click_the_file_field()
    qtbot.waitUntil(
        lambda: run_js(qtbot, view, "document.getElementById('proof').files.length") == 1, timeout=5000
    )
    assert (
        run_js(qtbot, view, "document.getElementById('proof').files[0].name")
        == "Justificatif de domicile.pdf"
    )
    assert run_js(qtbot, view, "document.getElementById('proof').files[0].size") == 16
    view.end_session()
    qtbot.waitUntil(view.sessions_released)
    files.clear()  # the session ends: the next citizen is offered nothing
    assert files.paths() == [] and not any((tmp_path / "kiosk-client-documents").iterdir())


def test_session_files_live_in_a_private_folder_and_start_clean(tmp_path: Any) -> None:
    from kiosk_client.ui.session_files import SessionFiles

    first = SessionFiles(tmp_path)
    path = first.add("../../etc/passwd", b"x")  # a hostile name cannot leave the folder
    assert path.parent.parent == tmp_path / "kiosk-client-documents" and path.name == "passwd"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700" and oct(path.stat().st_mode & 0o777) == "0o600"
    again = first.add("passwd", b"y")
    assert again.name == "passwd (2)"
    SessionFiles(tmp_path)  # a restart after a crash wipes what was left
    assert not path.exists()
