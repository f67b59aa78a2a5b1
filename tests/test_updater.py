"""The privileged updater (system/updater.py) against a scratch root, as a normal user: real wheels, real
release venvs, real `current` link switches. The kiosk session's restart is injected: one starts the
new release's own Python, which writes the health mark with the version it imports (what the real
kiosk does once its window is up and it reached the central); one never comes up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk_client.adapters.update_spool import REQUEST, FileUpdates
from kiosk_client.core.updates import InstallRequest
from kiosk_client.system.updater import UpdaterPaths, apply_request

from .wheel_rig import build_wheel, sha256_file

BASE_ENV = Path(sys.prefix)  # the test environment: the installer's .venv, dependencies and all


class RestartedKiosk:
    """Starts `current`'s Python as the session would start the kiosk; `healthy`: it writes the mark."""

    def __init__(self, paths: UpdaterPaths, healthy: bool = True) -> None:
        self.paths, self.healthy, self.restarts = paths, healthy, 0
        self.processes: list[subprocess.Popen[bytes]] = []
        self.ran: list[str] = []

    def restart(self) -> None:
        self.restarts += 1
        self.ran.append(os.readlink(self.paths.current))
        if not self.healthy:
            return
        code = (
            "import pathlib, kiosk_client\n"
            "from kiosk_client.adapters.update_spool import FileUpdates\n"
            f"mark = pathlib.Path({str(self.paths.health_mark)!r})\n"
            "FileUpdates(mark.parent, mark.parent / 'none', mark).mark_healthy(kiosk_client.__version__)\n"
        )
        python = self.paths.current / "bin" / "python"
        # -I and a clean environment: the release's own kiosk_client, not this checkout's.
        self.processes.append(
            subprocess.Popen([str(python), "-I", "-c", code], cwd="/", env={"PATH": "/usr/bin:/bin"})
        )

    def wait(self) -> None:
        for process in self.processes:
            assert process.wait(timeout=30) == 0


@pytest.fixture
def paths(tmp_path: Path) -> UpdaterPaths:
    paths = UpdaterPaths(
        project=tmp_path / "opt" / "kiosk-client",
        spool=tmp_path / "var" / "lib" / "kiosk-client" / "updates",
        state_dir=tmp_path / "var" / "lib" / "kiosk-updater",
        health_mark=tmp_path / "run" / "kiosk-client" / "healthy",
        base_env=BASE_ENV,
    )
    paths.project.mkdir(parents=True)
    paths.spool.mkdir(parents=True)
    paths.current.symlink_to(BASE_ENV)  # as the installer leaves it: the first release is its .venv
    return paths


def request(paths: UpdaterPaths, version: str, **wheel_options: object) -> InstallRequest:
    """What the kiosk does: the wheel in its spool, then its request, written atomically."""
    wheel = build_wheel(paths.spool, version, **wheel_options)  # type: ignore[arg-type]
    asked = InstallRequest(version, sha256_file(wheel), wheel.name)
    FileUpdates(paths.spool, paths.status_file, paths.health_mark).write_request(asked)
    return asked


def status(paths: UpdaterPaths) -> dict[str, object]:
    return dict(json.loads(paths.status_file.read_text()))


def releases(paths: UpdaterPaths) -> list[str]:
    return sorted(p.name for p in paths.releases.iterdir()) if paths.releases.exists() else []


def test_a_release_is_installed_switched_to_kept_once_healthy_and_old_ones_pruned(
    paths: UpdaterPaths,
) -> None:
    kiosk = RestartedKiosk(paths)
    request(paths, "2.0.0")
    assert apply_request(paths, kiosk, health_timeout_s=30) == "installed"
    kiosk.wait()
    assert os.readlink(paths.current) == "releases/2.0.0"
    assert kiosk.ran == ["releases/2.0.0"]
    assert json.loads(paths.health_mark.read_text())["version"] == "2.0.0"  # written by the release itself
    assert (status(paths)["state"], status(paths)["version"], status(paths)["failed"]) == (
        "installed",
        "2.0.0",
        [],
    )
    assert not (paths.spool / REQUEST).exists()  # taken
    # The release's own entry point exists and runs on its own venv.
    script = paths.releases / "2.0.0" / "bin" / "kiosk-client"
    assert script.read_text().startswith(f"#!{paths.releases / '2.0.0' / 'bin' / 'python'}")
    # Its status is what the kiosk reads and reports.
    report = FileUpdates(paths.spool, paths.status_file, paths.health_mark).updater_report()
    assert report is not None and (report.state, report.version) == ("installed", "2.0.0")

    # The same version asked again: nothing happens (no restart, nothing rewritten).
    before = paths.status_file.read_bytes()
    request(paths, "2.0.0")
    assert apply_request(paths, kiosk, health_timeout_s=30) == "already_installed"
    assert kiosk.restarts == 1 and paths.status_file.read_bytes() == before
    assert os.readlink(paths.current) == "releases/2.0.0"

    # Two more: at most two releases stay (the current one and the one before).
    for version in ("2.1.0", "2.2.0"):
        request(paths, version)
        assert apply_request(paths, kiosk, health_timeout_s=30) == "installed"
    kiosk.wait()
    assert os.readlink(paths.current) == "releases/2.2.0"
    assert releases(paths) == ["2.1.0", "2.2.0"]


def test_a_release_that_never_comes_up_is_rolled_back_and_never_tried_again(paths: UpdaterPaths) -> None:
    silent = RestartedKiosk(paths, healthy=False)
    request(paths, "2.0.0")
    assert apply_request(paths, silent, health_timeout_s=1.0) == "rolled_back"
    # Restarted on the new release, then on the previous one, which `current` names again.
    assert silent.ran == ["releases/2.0.0", str(BASE_ENV)]
    assert paths.current.resolve() == BASE_ENV.resolve()
    assert releases(paths) == []
    done = status(paths)
    assert (done["state"], done["version"], done["failed"]) == ("failed", "2.0.0", ["2.0.0"])
    assert "rolled back" in str(done["error"])

    # The kiosk asks again (a kiosk that lost track): not retried, nothing restarted.
    request(paths, "2.0.0")
    assert apply_request(paths, RestartedKiosk(paths), health_timeout_s=30) == "skipped_failed"
    assert paths.current.resolve() == BASE_ENV.resolve() and releases(paths) == []
    # Another version (IT staff set a new target) is tried.
    healthy = RestartedKiosk(paths)
    request(paths, "2.0.1")
    assert apply_request(paths, healthy, health_timeout_s=30) == "installed"
    healthy.wait()
    assert status(paths)["failed"] == ["2.0.0"]  # remembered


def test_a_release_whose_package_says_another_version_is_not_switched_to(paths: UpdaterPaths) -> None:
    kiosk = RestartedKiosk(paths)
    request(paths, "2.0.0", package_version="1.9.9")
    assert apply_request(paths, kiosk, health_timeout_s=1.0) == "install_failed"
    request(paths, "2.0.1", broken_import=True)
    assert apply_request(paths, kiosk, health_timeout_s=1.0) == "install_failed"
    assert kiosk.restarts == 0 and paths.current.resolve() == BASE_ENV.resolve() and releases(paths) == []
    assert status(paths)["failed"] == ["2.0.0", "2.0.1"]


def test_what_the_kiosk_user_could_tamper_with_is_refused_and_changes_nothing(
    paths: UpdaterPaths, tmp_path: Path
) -> None:
    kiosk = RestartedKiosk(paths)
    # A wheel changed after the kiosk checked it (its hash no longer the requested one).
    asked = request(paths, "2.0.0")
    wheel = paths.spool / asked.wheel
    wheel.write_bytes(wheel.read_bytes() + b"tampered")
    assert apply_request(paths, kiosk, health_timeout_s=1.0) == "refused"
    assert "SHA-256" in str(status(paths)["error"])

    # A wheel that is a link to a file root can read (the updater must not follow it).
    secret = tmp_path / "root-only.whl"
    secret.write_bytes(b"secret")
    asked = request(paths, "2.0.1")
    (paths.spool / asked.wheel).unlink()
    (paths.spool / asked.wheel).symlink_to(secret)
    assert apply_request(paths, kiosk, health_timeout_s=1.0) == "refused"

    # Requests that name a path, or are not JSON, or are a link themselves.
    for body in (
        json.dumps({"version": "2.0.2", "sha256": "0" * 64, "wheel": "../../../etc/shadow"}),
        json.dumps({"version": "2.0.2; rm -rf /", "sha256": "0" * 64, "wheel": "a.whl"}),
        "not json",
    ):
        (paths.spool / REQUEST).write_text(body)
        assert apply_request(paths, kiosk, health_timeout_s=1.0) == "refused"
        assert not (paths.spool / REQUEST).exists()
    (paths.spool / REQUEST).symlink_to(secret)
    assert apply_request(paths, kiosk, health_timeout_s=1.0) == "refused"

    # The spool itself swapped for a link to a folder of root's: nothing there is read or deleted.
    elsewhere = tmp_path / "root-folder"
    elsewhere.mkdir()
    (elsewhere / REQUEST).write_text(json.dumps({"version": "2.0.3", "sha256": "0" * 64, "wheel": "a.whl"}))
    paths.spool.rename(tmp_path / "spool-moved")
    paths.spool.symlink_to(elsewhere)
    assert apply_request(paths, kiosk, health_timeout_s=1.0) == "refused"
    assert (elsewhere / REQUEST).exists()
    paths.spool.unlink()
    (tmp_path / "spool-moved").rename(paths.spool)

    assert kiosk.restarts == 0
    assert paths.current.resolve() == BASE_ENV.resolve() and releases(paths) == []
    assert apply_request(paths, kiosk) == "none"  # no request left


def test_a_kiosk_that_became_busy_meanwhile_is_not_restarted(paths: UpdaterPaths) -> None:
    """The request was written while idle; a walk-in began before the updater was ready to switch."""
    kiosk = RestartedKiosk(paths)
    FileUpdates(paths.spool, paths.status_file, paths.health_mark).set_busy("in_session")
    request(paths, "2.0.0")
    assert apply_request(paths, kiosk, health_timeout_s=30) == "deferred"
    assert kiosk.restarts == 0 and paths.current.resolve() == BASE_ENV.resolve() and releases(paths) == []
    assert (status(paths)["state"], status(paths)["failed"]) == ("waiting_idle", [])  # not a failure
    # Idle again, the kiosk asks again: installed.
    FileUpdates(paths.spool, paths.status_file, paths.health_mark).set_busy(None)
    request(paths, "2.0.0")
    assert apply_request(paths, kiosk, health_timeout_s=30) == "installed"
    kiosk.wait()
    assert os.readlink(paths.current) == "releases/2.0.0"
