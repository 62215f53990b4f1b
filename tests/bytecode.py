"""Compile the project once per checkout instead of once per process and workflow run.

These machines set PYTHONDONTWRITEBYTECODE, so without this every process the suite starts
(each CLI call, worker and `followthrough up`) compiles the project from source, and so does the
workflow sandbox for every workflow run it imports `workflows/` for. Loaded first (`-p` in
pyproject's addopts), before pytest-xdist starts its processes, which inherit the environment.
The files go to `__pycache__/`, which git ignores.
"""

from __future__ import annotations

import os
import sys

os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False
