"""A certificate for 127.0.0.1, for test servers whose clients speak only https:// (PagerDuty's).

cert, key = loopback_certificate(tmp_path)
server = PagerDutyServer(token="t", tls=(cert, key))
client_context = trusting(cert)   # an SSLContext that trusts that certificate only
"""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path


def loopback_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate (and its key) valid for 127.0.0.1, made with openssl."""
    cert, key = directory / "loopback.crt", directory / "loopback.key"
    if not cert.exists():
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                "-addext", "subjectAltName=IP:127.0.0.1",
                "-keyout", str(key), "-out", str(cert),
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
    return cert, key


def serving(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def trusting(cert: Path) -> ssl.SSLContext:
    """A client context that trusts `cert` and nothing else."""
    return ssl.create_default_context(cafile=str(cert))
