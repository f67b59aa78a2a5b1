"""The privileged updater (system/updater.py) against a scratch root: real wheels, real release venvs,
real `current` link switches, and the reference central on loopback, which the updater asks itself
what to install (IT staff upload and designate each release there, as in production). The kiosk
session's restart is injected: one starts the new release's own Python, which writes the health mark
with the version it imports (what the real kiosk does once its window is up and it reached the
central); one never comes up."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk_client.adapters.central_target import CentralSoftwareTarget, check_central_url
from kiosk_client.adapters.update_spool import REQUEST, FileUpdates
from kiosk_client.core.updates import InstallRequest
from kiosk_client.system.updater import UpdaterPaths, apply_request, main

from . import updater_as_root
from .conftest import Site
from .kiosk_rig import enrolled_token
from .wheel_rig import build_wheel, sha256_file

BASE_ENV = Path(sys.prefix)  # the test environment: the installer's .venv, dependencies and all


class RestartedKiosk:
    """Starts `current`'s Python as the session would start the kiosk (as `user`, like the session's
    User=kiosk; None: as this process); `healthy`: it writes the mark."""

    def __init__(self, paths: UpdaterPaths, healthy: bool = True, user: str | None = None) -> None:
        self.paths, self.healthy, self.restarts, self.user = paths, healthy, 0, user
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
        account = pwd.getpwnam(self.user) if self.user else None
        self.processes.append(
            subprocess.Popen(
                [str(python), "-I", "-c", code],
                cwd="/",
                env={"PATH": "/usr/bin:/bin"},
                user=account.pw_uid if account else None,
                group=account.pw_gid if account else None,
                extra_groups=[] if account else None,
            )
        )

    def wait(self) -> None:
        for process in self.processes:
            assert process.wait(timeout=30) == 0


def scratch_root(top: Path) -> UpdaterPaths:
    paths = UpdaterPaths(
        project=top / "opt" / "kiosk-client",
        spool=top / "var" / "lib" / "kiosk-client" / "updates",
        state_dir=top / "var" / "lib" / "kiosk-updater",
        health_mark=top / "run" / "kiosk-client" / "healthy",
        base_env=BASE_ENV,
    )
    paths.project.mkdir(parents=True)
    paths.spool.mkdir(parents=True)
    paths.current.symlink_to(BASE_ENV)  # as the installer leaves it: the first release is its .venv
    return paths


@pytest.fixture
def paths(tmp_path: Path) -> UpdaterPaths:
    return scratch_root(tmp_path)


class Releases:
    """The reference central as IT staff use it (releases uploaded once, then designated as the fleet's
    target), and the updater's own view of it: `source`, with the kiosk's device token."""

    def __init__(self, site: Site, build_dir: Path) -> None:
        self.site, self.build_dir = site, build_dir
        self.token = enrolled_token(site.url, site.enrollment_code)
        self.source = CentralSoftwareTarget(site.url, self.token, timeout_s=10)
        self.wheels: dict[str, Path] = {}

    def upload(self, version: str, **wheel_options: object) -> Path:
        """Once per version, as the same bytes (the central refuses a version twice)."""
        if version not in self.wheels:
            wheel = build_wheel(self.build_dir / version, version, **wheel_options)  # type: ignore[arg-type]
            self.site.admin.upload_release(version, wheel.read_bytes())
            self.wheels[version] = wheel
        return self.wheels[version]

    def designate(self, version: str | None) -> None:
        self.site.admin.set_software_targets(default=version)


@pytest.fixture
def issuer(site: Site, tmp_path: Path) -> Releases:
    return Releases(site, tmp_path / "uploads")


def write_request(paths: UpdaterPaths, wheel: Path, version: str) -> InstallRequest:
    asked = InstallRequest(version, sha256_file(wheel), wheel.name)
    FileUpdates(paths.spool, paths.status_file, paths.health_mark).write_request(asked)
    return asked


def request(paths: UpdaterPaths, issuer: Releases, version: str, **wheel_options: object) -> InstallRequest:
    """IT staff designate `version`; the kiosk does what it does: the central's wheel in its spool (its
    download), then its request, written atomically."""
    uploaded = issuer.upload(version, **wheel_options)
    issuer.designate(version)
    shutil.copyfile(uploaded, paths.spool / uploaded.name)
    return write_request(paths, paths.spool / uploaded.name, version)


def forge(paths: UpdaterPaths, version: str, **wheel_options: object) -> InstallRequest:
    """What a compromised kiosk user can do: a wheel of its own in the spool, and a request whose hash
    is that wheel's (consistent, only not the central's)."""
    wheel = build_wheel(paths.spool, version, **wheel_options)  # type: ignore[arg-type]
    return write_request(paths, wheel, version)


def status(paths: UpdaterPaths) -> dict[str, object]:
    return dict(json.loads(paths.status_file.read_text()))


def releases(paths: UpdaterPaths) -> list[str]:
    return sorted(p.name for p in paths.releases.iterdir()) if paths.releases.exists() else []


def test_a_release_is_installed_switched_to_kept_once_healthy_and_old_ones_pruned(
    paths: UpdaterPaths,
    issuer: Releases,
) -> None:
    kiosk = RestartedKiosk(paths)
    request(paths, issuer, "2.0.0")
    assert apply_request(paths, kiosk, issuer.source, health_timeout_s=30) == "installed"
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
    request(paths, issuer, "2.0.0")
    assert apply_request(paths, kiosk, issuer.source, health_timeout_s=30) == "already_installed"
    assert kiosk.restarts == 1 and paths.status_file.read_bytes() == before
    assert os.readlink(paths.current) == "releases/2.0.0"

    # Two more: at most two releases stay (the current one and the one before).
    for version in ("2.1.0", "2.2.0"):
        request(paths, issuer, version)
        assert apply_request(paths, kiosk, issuer.source, health_timeout_s=30) == "installed"
    kiosk.wait()
    assert os.readlink(paths.current) == "releases/2.2.0"
    assert releases(paths) == ["2.1.0", "2.2.0"]


def test_a_release_that_never_comes_up_is_rolled_back_and_never_tried_again(
    paths: UpdaterPaths, issuer: Releases
) -> None:
    silent = RestartedKiosk(paths, healthy=False)
    request(paths, issuer, "2.0.0")
    assert apply_request(paths, silent, issuer.source, health_timeout_s=1.0) == "rolled_back"
    # Restarted on the new release, then on the previous one, which `current` names again.
    assert silent.ran == ["releases/2.0.0", str(BASE_ENV)]
    assert paths.current.resolve() == BASE_ENV.resolve()
    assert releases(paths) == []
    done = status(paths)
    assert (done["state"], done["version"], done["failed"]) == ("failed", "2.0.0", ["2.0.0"])
    assert "rolled back" in str(done["error"])

    # The kiosk asks again (a kiosk that lost track): not retried, nothing restarted.
    request(paths, issuer, "2.0.0")
    assert apply_request(paths, RestartedKiosk(paths), issuer.source, health_timeout_s=30) == "skipped_failed"
    assert paths.current.resolve() == BASE_ENV.resolve() and releases(paths) == []
    # Another version (IT staff set a new target) is tried.
    healthy = RestartedKiosk(paths)
    request(paths, issuer, "2.0.1")
    assert apply_request(paths, healthy, issuer.source, health_timeout_s=30) == "installed"
    healthy.wait()
    assert status(paths)["failed"] == ["2.0.0"]  # remembered


def test_a_release_whose_package_says_another_version_is_not_switched_to(
    paths: UpdaterPaths, issuer: Releases
) -> None:
    kiosk = RestartedKiosk(paths)
    request(paths, issuer, "2.0.0", package_version="1.9.9")
    assert apply_request(paths, kiosk, issuer.source, health_timeout_s=1.0) == "install_failed"
    request(paths, issuer, "2.0.1", broken_import=True)
    assert apply_request(paths, kiosk, issuer.source, health_timeout_s=1.0) == "install_failed"
    assert kiosk.restarts == 0 and paths.current.resolve() == BASE_ENV.resolve() and releases(paths) == []
    assert status(paths)["failed"] == ["2.0.0", "2.0.1"]


def test_what_the_kiosk_user_could_tamper_with_is_refused_and_changes_nothing(
    paths: UpdaterPaths, issuer: Releases, tmp_path: Path
) -> None:
    kiosk = RestartedKiosk(paths)
    # A wheel changed after the kiosk checked it (its hash no longer the requested one).
    asked = request(paths, issuer, "2.0.0")
    wheel = paths.spool / asked.wheel
    wheel.write_bytes(wheel.read_bytes() + b"tampered")
    assert apply_request(paths, kiosk, issuer.source, health_timeout_s=1.0) == "refused"
    assert "SHA-256" in str(status(paths)["error"])

    # A wheel that is a link to a file root can read (the updater must not follow it).
    secret = tmp_path / "root-only.whl"
    secret.write_bytes(b"secret")
    asked = request(paths, issuer, "2.0.1")
    (paths.spool / asked.wheel).unlink()
    (paths.spool / asked.wheel).symlink_to(secret)
    assert apply_request(paths, kiosk, issuer.source, health_timeout_s=1.0) == "refused"

    # Requests that name a path, or are not JSON, or are a link themselves.
    for body in (
        json.dumps({"version": "2.0.2", "sha256": "0" * 64, "wheel": "../../../etc/shadow"}),
        json.dumps({"version": "2.0.2; rm -rf /", "sha256": "0" * 64, "wheel": "a.whl"}),
        "not json",
    ):
        (paths.spool / REQUEST).write_text(body)
        assert apply_request(paths, kiosk, issuer.source, health_timeout_s=1.0) == "refused"
        assert not (paths.spool / REQUEST).exists()
    (paths.spool / REQUEST).symlink_to(secret)
    assert apply_request(paths, kiosk, issuer.source, health_timeout_s=1.0) == "refused"

    # The spool itself swapped for a link to a folder of root's: nothing there is read or deleted.
    elsewhere = tmp_path / "root-folder"
    elsewhere.mkdir()
    (elsewhere / REQUEST).write_text(json.dumps({"version": "2.0.3", "sha256": "0" * 64, "wheel": "a.whl"}))
    paths.spool.rename(tmp_path / "spool-moved")
    paths.spool.symlink_to(elsewhere)
    assert apply_request(paths, kiosk, issuer.source, health_timeout_s=1.0) == "refused"
    assert (elsewhere / REQUEST).exists()
    paths.spool.unlink()
    (tmp_path / "spool-moved").rename(paths.spool)

    assert kiosk.restarts == 0
    assert paths.current.resolve() == BASE_ENV.resolve() and releases(paths) == []
    assert apply_request(paths, kiosk, issuer.source) == "none"  # no request left


def test_a_kiosk_that_became_busy_meanwhile_is_not_restarted(paths: UpdaterPaths, issuer: Releases) -> None:
    """The request was written while idle; a walk-in began before the updater was ready to switch."""
    kiosk = RestartedKiosk(paths)
    FileUpdates(paths.spool, paths.status_file, paths.health_mark).set_busy("in_session")
    request(paths, issuer, "2.0.0")
    assert apply_request(paths, kiosk, issuer.source, health_timeout_s=30) == "deferred"
    assert kiosk.restarts == 0 and paths.current.resolve() == BASE_ENV.resolve() and releases(paths) == []
    assert (status(paths)["state"], status(paths)["failed"]) == ("waiting_idle", [])  # not a failure
    # Idle again, the kiosk asks again: installed.
    FileUpdates(paths.spool, paths.status_file, paths.health_mark).set_busy(None)
    request(paths, issuer, "2.0.0")
    assert apply_request(paths, kiosk, issuer.source, health_timeout_s=30) == "installed"
    kiosk.wait()
    assert os.readlink(paths.current) == "releases/2.0.0"


def probe_pth(mark: Path) -> bytes:
    """A `.pth` line that appends the uid of every Python that starts with it on its path."""
    return f"import os; open({str(mark)!r}, 'a').write('%d ' % os.getuid())\n".encode()


def test_a_release_the_central_did_not_designate_is_refused_whatever_the_kiosk_user_writes(
    paths: UpdaterPaths, issuer: Releases, tmp_path: Path
) -> None:
    """The kiosk user (compromised: it shows third-party pages) writes a wheel of its own and a request
    whose hash is that wheel's. The updater takes the version and hash from the central: refused,
    nothing installed, none of the wheel's code run."""
    kiosk = RestartedKiosk(paths)
    ran = tmp_path / "forged-code-ran"
    evil = {"zz_forged.pth": probe_pth(ran)}
    issuer.upload("2.0.0")
    issuer.designate("2.0.0")

    # The designated version, other bytes (its own hash in the request): not the central's hash.
    forge(paths, "2.0.0", extra=evil)
    assert apply_request(paths, kiosk, issuer.source, health_timeout_s=1.0) == "refused"
    done = status(paths)
    assert (done["state"], done["version"]) == ("failed", "2.0.0")
    assert "SHA-256 is not the one the central designates" in str(done["error"])

    # A version the central never designated (a forged wheel, consistent with its request).
    forge(paths, "6.6.6", extra=evil)
    assert apply_request(paths, kiosk, issuer.source, health_timeout_s=1.0) == "refused"
    done = status(paths)
    assert (done["state"], done["version"]) == ("refused", "6.6.6")
    assert "the central designates '2.0.0', not '6.6.6'" in str(done["error"])

    # No target at all, or a target whose release was never uploaded (no hash to check against).
    issuer.designate(None)
    forge(paths, "2.0.1", extra=evil)
    assert apply_request(paths, kiosk, issuer.source, health_timeout_s=1.0) == "refused"
    assert "designates no release" in str(status(paths)["error"])
    issuer.designate("3.0.0")
    forge(paths, "3.0.0", extra=evil)
    assert apply_request(paths, kiosk, issuer.source, health_timeout_s=1.0) == "refused"
    assert "designates no release" in str(status(paths)["error"])

    assert not ran.exists()  # not one line of the forged wheels ran, as root or otherwise
    assert kiosk.restarts == 0 and paths.current.resolve() == BASE_ENV.resolve() and releases(paths) == []
    # Refusing another version marks nothing failed: a version is failed only for its own bytes.
    assert status(paths)["failed"] == ["2.0.0"]
    assert not (paths.spool / REQUEST).exists()


def test_a_central_that_cannot_be_asked_installs_nothing_and_the_kiosk_asks_again(
    paths: UpdaterPaths, issuer: Releases
) -> None:
    kiosk = RestartedKiosk(paths)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    unreachable = CentralSoftwareTarget(f"http://127.0.0.1:{port}", issuer.token, timeout_s=5)
    request(paths, issuer, "2.0.0")
    assert apply_request(paths, kiosk, unreachable, health_timeout_s=30) == "unconfirmed"
    assert "cannot reach the central" in str(status(paths)["error"])
    # A token the central refuses (the kiosk enrolled again, this one revoked): the same.
    request(paths, issuer, "2.0.0")
    refused = CentralSoftwareTarget(issuer.site.url, "not-a-device-token", timeout_s=5)
    assert apply_request(paths, kiosk, refused, health_timeout_s=30) == "unconfirmed"
    done = status(paths)
    assert (done["state"], done["version"], done["failed"]) == ("unconfirmed", "2.0.0", [])
    # Nothing installed, and the request not kept (the path unit would start the updater in a loop):
    # the kiosk asks again after its next good poll of the central.
    assert kiosk.restarts == 0 and paths.current.resolve() == BASE_ENV.resolve() and releases(paths) == []
    assert not (paths.spool / REQUEST).exists()
    request(paths, issuer, "2.0.0")
    assert apply_request(paths, kiosk, issuer.source, health_timeout_s=30) == "installed"
    kiosk.wait()
    assert os.readlink(paths.current) == "releases/2.0.0"


def test_the_updater_believes_a_central_over_tls_or_on_loopback_only() -> None:
    assert check_central_url("https://central.example.org/") == "https://central.example.org"
    assert check_central_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
    assert check_central_url("http://[::1]:8080") == "http://[::1]:8080"
    for url in ("http://central.example.org", "http://10.0.0.1", "ftp://central.example.org", "https://"):
        with pytest.raises(ValueError, match="https only"):
            check_central_url(url)


def test_the_service_entry_point_asks_the_central_of_its_config_with_its_credential(
    paths: UpdaterPaths,
    issuer: Releases,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`python -m kiosk_client.system.updater` as kiosk-updater.service runs it: the central's URL from
    the kiosk's config file, the device token from $CREDENTIALS_DIRECTORY (LoadCredentialEncrypted=)."""
    config = tmp_path / "kiosk.toml"
    config.write_text(f'[central]\nurl = "{issuer.site.url}"\n')
    args = [
        *("--project", str(paths.project), "--spool", str(paths.spool)),
        *("--state-dir", str(paths.state_dir), "--health-mark", str(paths.health_mark)),
        *("--config", str(config), "--health-timeout", "1"),
    ]
    issuer.upload("2.0.0")
    issuer.designate("2.0.0")
    # No credential (the service started without it): nothing can be confirmed, nothing installed.
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    forge(paths, "6.6.6")
    assert main(args) == 1 and capsys.readouterr().out.strip() == "unconfirmed"
    assert "CREDENTIALS_DIRECTORY" in str(status(paths)["error"])
    assert not (paths.spool / REQUEST).exists()
    # With it, the central of the config answers: it designates 2.0.0, not the forged 6.6.6.
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "kiosk-device-token").write_text(issuer.token)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    forge(paths, "6.6.6")
    assert main(args) == 1 and capsys.readouterr().out.strip() == "refused"
    assert "the central designates '2.0.0'" in str(status(paths)["error"])
    assert not paths.releases.exists()


@pytest.fixture
def world_readable_root() -> Iterator[Path]:
    """A scratch root another user can read (pytest's own tmp_path is root's alone)."""
    top = Path(tempfile.mkdtemp(prefix="kiosk-updater-test-"))
    top.chmod(0o755)
    yield top
    shutil.rmtree(top, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="running as another user needs root, as the updater has")
def test_no_code_of_a_release_ever_runs_as_root(issuer: Releases, world_readable_root: Path) -> None:
    """The updater as root, as in production, its kiosk user "nobody": every Python that starts with
    the release on its path (pip's, the import check, the restarted kiosk) leaves its uid through a
    `.pth` of the wheel; none is root's."""
    kiosk_user = pwd.getpwnam("nobody")
    paths = scratch_root(world_readable_root)
    paths.health_mark.parent.mkdir(parents=True)
    os.chown(paths.health_mark.parent, kiosk_user.pw_uid, kiosk_user.pw_gid)  # /run/kiosk-client
    mark = world_readable_root / "uids"
    mark.touch()
    mark.chmod(0o666)
    request(paths, issuer, "2.0.0", extra={"zz_probe.pth": probe_pth(mark)})
    args = {
        "project": str(paths.project),
        "spool": str(paths.spool),
        "state_dir": str(paths.state_dir),
        "health_mark": str(paths.health_mark),
        "base_env": str(paths.base),
        "central_url": issuer.site.url,
        "token": issuer.token,
        "user": "nobody",
    }
    done = subprocess.run(
        updater_as_root.command(args, world_readable_root),
        cwd=Path(__file__).parent.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (done.returncode, done.stdout.strip()) == (0, "installed"), done.stderr[-2000:]
    uids = mark.read_text().split()
    # At least the import check and the restarted kiosk; root never.
    assert len(uids) >= 2 and set(uids) == {str(kiosk_user.pw_uid)}
    assert os.readlink(paths.current) == "releases/2.0.0"
    assert status(paths)["state"] == "installed"
