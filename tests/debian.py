"""Real programs for the tests from Debian's packages (prometheus-alertmanager, prometheus, ...).

`ensure_debian_package(package, binary)` returns the absolute path of `binary`, installing
`package` with apt-get when the binary is not there yet. What it takes care of:

- Two test processes (pytest-xdist, two engineers' runs) never run apt at once: a file lock
  (fcntl) around the check-and-install; apt-get itself also waits up to 5 minutes for dpkg's
  own lock instead of failing at once.
- A package's post-install script does not start its own daemon (Alertmanager on 9093,
  Prometheus on 9090, ...): during the install /usr/sbin/policy-rc.d answers 101 ("action
  forbidden"), which invoke-rc.d and deb-systemd-invoke both obey. Whatever was there before is
  put back afterwards. The tests' own instances always use free ports on 127.0.0.1 anyway.
- The package lists may be missing or stale (a fresh image): when the install fails, run
  `apt-get update` once and try again.
- Where it cannot be installed (not root, no apt-get, no network, no such package): with
  CI=true that fails the test, since CI must run everything; elsewhere the test is skipped.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
LOCK_PATH = Path(tempfile.gettempdir()) / "followthrough-tests-apt.lock"
LOCK_TIMEOUT = 900.0
APT_TIMEOUT = 900.0
_POLICY = b"""#!/bin/sh
# Written by Followthrough's tests/debian.py for the duration of one apt-get install:
# packages must not start their daemons (they would take the default ports).
exit 101
"""

_found: dict[tuple[str, str], str] = {}


class PackageUnavailable(Exception):
    """The package could not be installed here; the message says why."""


def find_installed(binary: str) -> str | None:
    """The absolute path of `binary` on PATH or in /usr/bin, /usr/sbin, /bin, /sbin."""
    found = shutil.which(binary)
    if found is not None:
        return os.path.abspath(found)
    for directory in ("/usr/bin", "/usr/sbin", "/bin", "/sbin"):
        candidate = Path(directory) / binary
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def ensure_debian_package(package: str, binary: str) -> str:
    """The absolute path of `binary`, from Debian's `package`, installing it if need be.

    Skips the calling test when it cannot be had, or fails it when CI=true.
    """
    key = (package, binary)
    if key in _found:
        return _found[key]
    try:
        path = _ensure(package, binary)
    except PackageUnavailable as err:
        reason = f"Debian package {package!r} (for {binary!r}) is not available: {err}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    _found[key] = path
    return path


def _ensure(package: str, binary: str) -> str:
    found = find_installed(binary)
    if found is not None:
        return found
    if shutil.which("apt-get") is None:
        raise PackageUnavailable("apt-get is not on this machine")
    if os.geteuid() != 0:
        raise PackageUnavailable(
            f"installing needs root; run `apt-get install --no-install-recommends {package}`"
        )
    with _file_lock(LOCK_PATH, timeout=LOCK_TIMEOUT):
        # Another process may have installed it while this one waited for the lock.
        found = find_installed(binary)
        if found is not None:
            return found
        with _no_daemon_starts():
            first = _apt_get("install", "-y", "--no-install-recommends", package)
            if first.returncode != 0:
                # Most often the package lists are missing or stale: refresh them, then retry.
                update = _apt_get("update")
                if update.returncode != 0:
                    raise PackageUnavailable(
                        f"apt-get install failed:\n{_tail(first.stdout)}\n"
                        f"and apt-get update failed:\n{_tail(update.stdout)}"
                    )
                second = _apt_get("install", "-y", "--no-install-recommends", package)
                if second.returncode != 0:
                    raise PackageUnavailable(f"apt-get install failed:\n{_tail(second.stdout)}")
    found = find_installed(binary)
    if found is None:
        raise PackageUnavailable(f"installed, but it provides no executable named {binary!r}")
    return found


def _apt_get(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "-o", "DPkg::Lock::Timeout=300", *args]
    try:
        return subprocess.run(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=APT_TIMEOUT,
        )
    except subprocess.TimeoutExpired as err:
        output = err.output.decode(errors="replace") if isinstance(err.output, bytes) else ""
        raise PackageUnavailable(
            f"`{' '.join(command)}` did not finish in {APT_TIMEOUT:.0f}s:\n{_tail(output)}"
        ) from err


def _tail(output: str | None, lines: int = 20) -> str:
    return "\n".join((output or "").strip().splitlines()[-lines:])


@contextmanager
def _file_lock(path: Path, *, timeout: float) -> Iterator[None]:
    deadline = time.monotonic() + timeout
    with path.open("a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise PackageUnavailable(
                        f"another process held {path} for more than {timeout:.0f}s"
                    ) from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _no_daemon_starts() -> Iterator[None]:
    """/usr/sbin/policy-rc.d forbids starting services; what was there is restored after."""
    link: str | None = None
    content: bytes | None = None
    mode = 0o755
    if POLICY_RC_D.is_symlink():
        link = os.readlink(POLICY_RC_D)
    elif POLICY_RC_D.exists():
        content = POLICY_RC_D.read_bytes()
        mode = POLICY_RC_D.stat().st_mode & 0o7777
    try:
        if link is not None:
            POLICY_RC_D.unlink()
        POLICY_RC_D.write_bytes(_POLICY)
        POLICY_RC_D.chmod(0o755)
    except OSError as err:
        raise PackageUnavailable(f"cannot write {POLICY_RC_D}: {err}") from err
    try:
        yield
    finally:
        POLICY_RC_D.unlink(missing_ok=True)
        if link is not None:
            POLICY_RC_D.symlink_to(link)
        elif content is not None:
            POLICY_RC_D.write_bytes(content)
            POLICY_RC_D.chmod(mode)
