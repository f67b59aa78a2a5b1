"""The privileged updater: installs the central's release for this kiosk, keeps it only if it comes up.

Run as root by kiosk-updater.service when kiosk-updater.path sees the kiosk's install request
(`python -m kiosk_client.system.updater`). It runs from the installer's environment
(/opt/kiosk-client/.venv), never from a downloaded release: a broken release cannot break the tool
that rolls it back.

Trust. The kiosk user wrote the request and the wheel, and that user runs a web view showing
third-party pages: it may be compromised, so nothing of theirs decides what is installed. The updater
asks the central itself (GET /api/v1/kiosk/config with the device token, which kiosk-updater.service
gets from the service manager as the session does; the URL from /etc/kiosk-client/kiosk.toml, root's)
and installs only the release it designates: the request's version must be the config's
`software_target`, and the wheel — copied (never followed through a link) into root's state folder —
must hash to its `software_target_sha256`; only that copy is installed. The kiosk's download is kept
(root need not download while the kiosk is busy with citizens), its hash in the request is a hint.
No code of a release ever runs as root: pip installs the wheel (it runs none of its code), the import
check runs as the kiosk user, and this process runs from the installer's environment with -I (no
release's `.pth` on its path).

Layout under /opt/kiosk-client:
  .venv/               the installer's environment: the dependencies, and the first release
  releases/<version>/  a release: a venv of its own holding only the kiosk-client wheel
  current -> ...       what kiosk-session.service runs (`.venv` or `releases/<version>`), switched
                       atomically (a link made beside it, renamed over it)
Dependencies: a release venv gets a `.pth` line naming `.venv`'s site-packages, and pip installs the
wheel with --no-deps --no-index. The terminal downloads nothing but the wheel (no package index is
reachable from a visitor centre, and nothing unchecked is installed), it takes seconds and a few
megabytes, and the dependencies stay the ones the installer set up and tested. A release that needs
other dependencies fails its import check or never comes up healthy, and is rolled back: those
releases go through the installer. A path line, not `site.addsitedir`: `.venv`'s own `.pth` files
(its kiosk-client, were it installed in development mode) must not shadow the release's.

Health: after the switch the kiosk session is restarted; the new kiosk writes the health mark
(/run/kiosk-client/healthy, its version) once its window is up and it reached the central. No mark of
the new version in time: the link goes back, the session restarts on the previous release, and the
version is recorded as failed (never tried again automatically; another target is needed). Two
releases at most stay on disk besides `.venv`: the current one and the one before.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import logging
import os
import pwd
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from ..adapters.atomic_file import write_atomically
from ..adapters.update_spool import BUSY, REQUEST, read_report
from ..core.errors import CentralError, ConfigError, SecretStoreError
from ..core.releases import MAX_WHEEL_BYTES, SHA256, VERSION, BadWheel, check_wheel
from ..core.updates import (
    FAILED,
    INSTALLED,
    INSTALLING,
    REFUSED,
    UNCONFIRMED,
    WAITING_IDLE,
    InstallRequest,
    SoftwareTarget,
    target_refusal,
)

log = logging.getLogger(__name__)

HEALTH_TIMEOUT_S = 180.0
MAX_REQUEST_BYTES = 4096
STEP_TIMEOUT_S = 300.0  # one venv, one pip install, one import check
KIOSK_USER = "kiosk"  # install-kiosk.sh's user: the release's import check runs as it
CONFIG_FILE = Path("/etc/kiosk-client/kiosk.toml")
# The tools it runs get a plain environment: nothing inherited (PYTHONPATH, PIP_*…) may change what is
# installed or which code the import check imports.
CLEAN_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


class SessionControl(Protocol):
    """Restarts the kiosk session (systemd in production: system/systemd_session.py)."""

    def restart(self) -> None: ...


class TargetSource(Protocol):
    """What the central designates for this kiosk, asked by the updater itself (in production
    adapters/central_target.py); raises core.errors.CentralError when it cannot tell."""

    def fetch(self) -> SoftwareTarget: ...


@dataclass(frozen=True, slots=True)
class UpdaterPaths:
    project: Path = Path("/opt/kiosk-client")
    spool: Path = Path("/var/lib/kiosk-client/updates")
    state_dir: Path = Path("/var/lib/kiosk-updater")
    health_mark: Path = Path("/run/kiosk-client/healthy")
    base_env: Path | None = None  # None: <project>/.venv

    @property
    def base(self) -> Path:
        return self.base_env or self.project / ".venv"

    @property
    def current(self) -> Path:
        return self.project / "current"

    @property
    def releases(self) -> Path:
        return self.project / "releases"

    @property
    def status_file(self) -> Path:
        return self.state_dir / "status.json"

    @property
    def busy_mark(self) -> Path:
        return self.health_mark.parent / BUSY


class Refused(Exception):
    """The request or its wheel is not acceptable: nothing was changed."""


class Unconfigured:
    """A TargetSource that cannot ask: the config or the device token is missing or unusable."""

    def __init__(self, why: str) -> None:
        self.why = why

    def fetch(self) -> SoftwareTarget:
        raise CentralError(self.why)


# --------------------------------------------------------------------------- the request and the wheel


def _open_no_follow(path: Path) -> int:
    """A regular file, never through a symbolic link (the spool is the kiosk user's)."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise Refused(f"{path.name} is not a regular file")
    return descriptor


def take_request(paths: UpdaterPaths) -> InstallRequest | None:
    """The kiosk's request, removed from the spool whatever it holds (a bad one is not read twice)."""
    # The spool's parent is the kiosk user's too: the spool itself swapped for a link would make root
    # read (and delete) files elsewhere. Only the final names are opened without following links.
    if os.path.realpath(paths.spool) != os.path.abspath(paths.spool):
        raise Refused(f"{paths.spool} is or goes through a symbolic link")
    path = paths.spool / REQUEST
    try:
        descriptor = _open_no_follow(path)
    except FileNotFoundError:
        return None
    except OSError as exc:  # ELOOP: a link
        path.unlink(missing_ok=True)
        raise Refused(f"the request is not a regular file ({exc})") from None
    try:
        with os.fdopen(descriptor, "rb") as file:
            raw = file.read(MAX_REQUEST_BYTES + 1)
    finally:
        path.unlink(missing_ok=True)
    try:
        data = json.loads(raw) if len(raw) <= MAX_REQUEST_BYTES else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise Refused("the request is not a JSON object of at most 4 KB")
    version, sha256, wheel = data.get("version"), data.get("sha256"), data.get("wheel")
    if not isinstance(version, str) or not VERSION.match(version):
        raise Refused("the request's version is malformed")
    if not isinstance(sha256, str) or not SHA256.match(sha256):
        raise Refused("the request's sha256 is malformed")
    if (
        not isinstance(wheel, str)
        or "/" in wheel
        or wheel.startswith(".")
        or not wheel.endswith(".whl")
        or len(wheel) > 200
    ):
        raise Refused("the request's wheel must be a .whl file name in the spool")
    return InstallRequest(version, sha256, wheel)


def copy_checked_wheel(paths: UpdaterPaths, request: InstallRequest, sha256: str) -> Path:
    """The wheel, copied into root's state folder, its hash (`sha256`: the central's, never the
    request's) and metadata checked on the copy (what is checked is what is installed: the kiosk user
    cannot swap the file in between)."""
    incoming = paths.state_dir / "incoming"
    shutil.rmtree(incoming, ignore_errors=True)
    incoming.mkdir(mode=0o700, parents=True)
    copy = incoming / request.wheel
    digest = hashlib.sha256()
    try:
        descriptor = _open_no_follow(paths.spool / request.wheel)
    except OSError as exc:
        raise Refused(f"the wheel cannot be read ({exc.strerror or exc})") from None
    with os.fdopen(descriptor, "rb") as source, copy.open("wb") as target:
        copied = 0
        while chunk := source.read(1024 * 1024):
            copied += len(chunk)
            if copied > MAX_WHEEL_BYTES:
                raise Refused(f"the wheel is larger than {MAX_WHEEL_BYTES} bytes")
            digest.update(chunk)
            target.write(chunk)
    if digest.hexdigest() != sha256:
        raise Refused("the wheel's SHA-256 is not the one the central designates")
    try:
        with copy.open("rb") as file:
            check_wheel(file, request.version)
    except BadWheel as exc:
        raise Refused(str(exc)) from None
    return copy


# --------------------------------------------------------------------------- releases on disk


def site_packages(env: Path) -> Path:
    found = sorted(env.glob("lib/python3*/site-packages"))
    if len(found) != 1:
        raise RuntimeError(f"{env}: expected one lib/python3.*/site-packages, found {len(found)}")
    return found[0]


def env_version(env: Path) -> str | None:
    """The kiosk-client version installed in this environment (its own site-packages only)."""
    try:
        for dist in importlib.metadata.distributions(path=[str(site_packages(env))]):
            if (dist.metadata["Name"] or "").lower().replace("_", "-") == "kiosk-client":
                return dist.version
    except (RuntimeError, OSError):
        return None
    return None


def current_target(paths: UpdaterPaths) -> Path:
    link = paths.current
    if not link.is_symlink():
        raise RuntimeError(f"{link} is not a symbolic link: the installer makes it")
    target = Path(os.readlink(link))
    return target if target.is_absolute() else paths.project / target


def switch_current(paths: UpdaterPaths, target: Path) -> None:
    """A new link beside `current`, renamed over it: the session sees the old one or the new one."""
    relative = os.path.relpath(target, paths.project) if target.is_relative_to(paths.project) else str(target)
    temporary = paths.project / ".current.new"
    temporary.unlink(missing_ok=True)
    os.symlink(relative, temporary)
    os.replace(temporary, paths.current)


def _run(command: list[str], what: str, user: str | None = None) -> str:
    """`user`: run as that user, its own group only (no supplementary group of root's)."""
    uid: int | None = None
    gid: int | None = None
    groups: list[int] | None = None
    if user is not None:
        try:
            account = pwd.getpwnam(user)
        except KeyError:
            raise RuntimeError(f"{what}: no user {user!r} on this system") from None
        uid, gid, groups = account.pw_uid, account.pw_gid, []
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT_S,
            check=False,
            env=CLEAN_ENV,
            cwd="/",
            user=uid,
            group=gid,
            extra_groups=groups,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"{what}: {exc}") from None
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed: {(done.stderr or done.stdout).strip()[-300:]}")
    return done.stdout


def install_release(paths: UpdaterPaths, version: str, wheel: Path, run_as: str | None = None) -> Path:
    """releases/<version>: a venv on the installer's Python, the wheel alone in it, the installer's
    dependencies through a .pth line; its kiosk_client imported once as a smoke test, as `run_as`
    (the kiosk user in production; None: as this process, for tests run as a normal user)."""
    release = paths.releases / version
    shutil.rmtree(release, ignore_errors=True)  # a run cut short
    paths.releases.mkdir(mode=0o755, parents=True, exist_ok=True)
    python = str(paths.base / "bin" / "python")
    try:
        _run([python, "-m", "venv", "--without-pip", str(release)], "creating the release's venv")
        # pip from the installer's environment installs into the release's (--python): no pip copy
        # per release. Before the .pth line, so pip sees no other kiosk-client to uninstall. As root,
        # yet no code of the wheel runs: --python runs pip on the release's interpreter while its
        # site-packages is still empty (made just above, root's), a wheel is only unpacked (no setup
        # script, --no-deps --no-index), and pip byte-compiles its .py files, which parses them
        # without executing them (the .pyc it writes spare the kiosk recompiling at each start).
        _run(
            [
                python, "-m", "pip", "--python", str(release / "bin" / "python"), "install",
                "--no-index", "--no-deps", "--no-cache-dir", "--disable-pip-version-check", "-q", str(wheel),
            ],
            "installing the wheel",
        )  # fmt: skip
        (site_packages(release) / "kiosk-client-dependencies.pth").write_text(
            f"{site_packages(paths.base)}\n", encoding="utf-8"
        )
        # The first code of the release to run (its .pth files, its package): as the kiosk user, the
        # user it will run as in the session anyway, never as root.
        imported = _run(
            [str(release / "bin" / "python"), "-I", "-c", "import kiosk_client.cli, kiosk_client; print(kiosk_client.__version__)"],
            "importing the release",
            run_as,
        ).strip()  # fmt: skip
        if imported != version:
            raise RuntimeError(f"the release says it is {imported[:40]!r}, not {version!r}")
    except BaseException:
        shutil.rmtree(release, ignore_errors=True)
        raise
    return release


def prune_releases(paths: UpdaterPaths, keep: set[Path]) -> None:
    for release in paths.releases.iterdir() if paths.releases.is_dir() else ():
        if release.resolve() not in {k.resolve() for k in keep}:
            shutil.rmtree(release, ignore_errors=True)
            log.info("old release %s removed", release.name)


# --------------------------------------------------------------------------- health


def busy_reason(mark: Path) -> str | None:
    """Why the kiosk says it must not be restarted now, or None (no mark: idle, or no kiosk running)."""
    try:
        descriptor = _open_no_follow(mark)
        with os.fdopen(descriptor, "rb") as file:
            return file.read(100).decode("utf-8", "replace") or "busy"
    except FileNotFoundError:
        return None
    except (OSError, Refused):
        return "busy"  # unreadable: assume someone is there


def healthy_version(mark: Path, since: float) -> str | None:
    """The version in the health mark if it was written after `since`, else None."""
    try:
        descriptor = _open_no_follow(mark)
        with os.fdopen(descriptor, "rb") as file:
            if os.fstat(file.fileno()).st_mtime < since:
                return None
            data = json.loads(file.read(4096))
        version = data.get("version") if isinstance(data, dict) else None
        return version if isinstance(version, str) else None
    except (OSError, ValueError, Refused):
        return None


def wait_healthy(
    mark: Path,
    version: str,
    since: float,
    timeout_s: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    deadline = clock() + timeout_s
    while True:
        if healthy_version(mark, since) == version:
            return True
        if clock() >= deadline:
            return False
        sleep(0.2)


# --------------------------------------------------------------------------- status


def load_status(paths: UpdaterPaths) -> dict[str, Any]:
    report = read_report(paths.status_file)
    if report is None:
        return {"failed": []}
    return {
        "state": report.state,
        "version": report.version,
        "error": report.error,
        "failed": sorted(report.failed),
    }


def save_status(paths: UpdaterPaths, status: dict[str, Any], **changes: Any) -> dict[str, Any]:
    status = {**status, **changes, "at": datetime.now(UTC).isoformat()}
    paths.state_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    write_atomically(paths.status_file, json.dumps(status, indent=1).encode(), mode=0o644)
    return status


@contextlib.contextmanager
def exclusive(paths: UpdaterPaths) -> Iterator[None]:
    """One updater at a time (the path unit may start it again while it waits for health)."""
    paths.state_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    with (paths.state_dir / "lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


# --------------------------------------------------------------------------- the run


def apply_request(
    paths: UpdaterPaths,
    session: SessionControl,
    central: TargetSource,
    health_timeout_s: float = HEALTH_TIMEOUT_S,
    run_as: str | None = None,
) -> str:
    """Acts on the pending request, if any. Returns what happened: "none", "refused", "skipped_failed",
    "already_installed", "unconfirmed" (the central could not say what it designates), "install_failed",
    "deferred" (the kiosk became busy), "installed" or "rolled_back". `run_as`: the user the release's
    import check runs as (the kiosk user when this runs as root)."""
    with exclusive(paths):
        status = load_status(paths)
        failed = set(status.get("failed", []))
        try:
            request = take_request(paths)
        except Refused as exc:
            log.error("install request refused: %s", exc)
            return "refused"
        if request is None:
            return "none"
        version = request.version
        if version in failed:
            log.warning(
                "software %s failed here before: not tried again until IT staff change the target", version
            )
            return "skipped_failed"
        previous = current_target(paths)
        running = previous.name if previous.parent == paths.releases else env_version(previous)
        if running == version:
            log.info("software %s is already the current release", version)
            return "already_installed"

        def give_up(error: str) -> None:
            failed.add(version)
            save_status(
                paths, status, state=FAILED, version=version, error=error[:300], failed=sorted(failed)
            )

        # What to install is the central's word, not the kiosk user's. Unreachable: nothing installed
        # and the request is not kept (kiosk-updater.path would start this again at once, in a loop
        # while the network is down); the kiosk asks again after its next good poll of the central.
        try:
            target = central.fetch()
        except CentralError as exc:
            log.error("software %s not installed: the central could not confirm it (%s)", version, exc)
            save_status(paths, status, state=UNCONFIRMED, version=version, error=f"central: {exc}"[:300])
            return "unconfirmed"
        refusal = target_refusal(request, target)
        if refusal is not None or target.sha256 is None:
            # Not marked failed: the target may have changed since the kiosk's last poll (it then asks
            # for the new one), and a version the central designates later must stay installable.
            log.error("software %s refused: %s", version, refusal)
            save_status(paths, status, state=REFUSED, version=version, error=f"refused: {refusal}"[:300])
            return "refused"
        try:
            wheel = copy_checked_wheel(paths, request, target.sha256)
        except Refused as exc:
            log.error("software %s refused: %s", version, exc)
            give_up(f"refused: {exc}")
            return "refused"
        status = save_status(paths, status, state=INSTALLING, version=version, error=None)
        try:
            release = install_release(paths, version, wheel, run_as)
        except (RuntimeError, OSError) as exc:
            log.error("software %s could not be installed: %s", version, exc)
            give_up(f"install: {exc}")
            return "install_failed"
        finally:
            shutil.rmtree(wheel.parent, ignore_errors=True)

        # The request was written while the kiosk was idle, maybe minutes ago: a walk-in or the staff
        # panel may have begun since. Then nothing is switched; the kiosk asks again once idle.
        busy = busy_reason(paths.busy_mark)
        if busy is not None:
            log.warning("software %s installed, but the kiosk is busy (%s): not switching now", version, busy)
            shutil.rmtree(release, ignore_errors=True)
            save_status(paths, status, state=WAITING_IDLE, version=version, error=None)
            return "deferred"
        log.warning("software %s installed in %s: switching and restarting the kiosk", version, release)
        switch_current(paths, release)
        restarted_at = time.time()
        paths.health_mark.unlink(missing_ok=True)
        session.restart()
        if wait_healthy(paths.health_mark, version, restarted_at - 1.0, health_timeout_s):
            prune_releases(paths, {release, previous})
            save_status(paths, status, state=INSTALLED, version=version, error=None, previous=str(previous))
            log.warning("software %s is up and healthy", version)
            return "installed"
        log.error(
            "software %s did not come up within %.0f s: rolling back to %s",
            version,
            health_timeout_s,
            previous,
        )
        switch_current(paths, previous)
        session.restart()
        shutil.rmtree(release, ignore_errors=True)
        give_up(f"no health mark within {health_timeout_s:.0f} s: rolled back")
        return "rolled_back"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kiosk_client.system.updater", description=__doc__.splitlines()[0]
    )
    defaults = UpdaterPaths()
    parser.add_argument("--project", type=Path, default=defaults.project)
    parser.add_argument("--spool", type=Path, default=defaults.spool)
    parser.add_argument("--state-dir", type=Path, default=defaults.state_dir)
    parser.add_argument("--health-mark", type=Path, default=defaults.health_mark)
    parser.add_argument("--health-timeout", type=float, default=HEALTH_TIMEOUT_S, help="seconds")
    parser.add_argument(
        "--config", type=Path, default=CONFIG_FILE, help="the kiosk's configuration (the central's URL)"
    )
    parser.add_argument(
        "--kiosk-user", default=KIOSK_USER, help="the user the release's import check runs as (when root)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from ..adapters.central_target import CentralSoftwareTarget
    from ..adapters.secrets_credentials import CredentialSecrets, credentials_directory
    from ..core.settings import load_settings
    from .systemd_session import SystemdSession

    central: TargetSource
    try:
        central_url = load_settings(args.config).central_url
        # The kiosk's device token, as kiosk-updater.service's LoadCredentialEncrypted= hands it over.
        token = CredentialSecrets(credentials_directory(os.environ)).device_token()
        if token is None:
            raise SecretStoreError("the device token credential is missing: enrol this kiosk first")
        central = CentralSoftwareTarget(central_url, token)
    except (ConfigError, SecretStoreError, ValueError) as exc:
        # Still through apply_request: the request is taken (left there, the path unit would start
        # this again at once, forever), nothing is installed, and the status says why.
        central = Unconfigured(str(exc))
    paths = UpdaterPaths(args.project, args.spool, args.state_dir, args.health_mark)
    # Root drops to the kiosk user for the release's first run; a normal user (tests) stays itself.
    run_as = args.kiosk_user if os.geteuid() == 0 else None
    outcome = apply_request(paths, SystemdSession(), central, args.health_timeout, run_as)
    print(outcome)
    return 0 if outcome in ("none", "installed", "already_installed", "skipped_failed", "deferred") else 1


if __name__ == "__main__":
    sys.exit(main())
