"""The README runs verbatim: every `$ ` command from "The life of a postmortem" on, in order,
against a `followthrough up` of its own, as a new user types them from the repository's root.

A command whose README output starts with `error:` must be refused with that first line; any
other must succeed, and its first line of output must read as the README shows it, dates, times
and token ids aside (the examples use times relative to now, so they never go stale). A README
line with `...` stands for whatever follows.

Speed: a CLI process takes seconds to import on a busy CI machine, so plain `followthrough ...`
and `python starter.py ...` commands run the same command-line app in this process (their
arguments split as the shell splits them); commands that need a shell (pipes, `$(...)`) run in
bash with `followthrough` and `python` on its PATH.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from followthrough.cli import app
from tests.processes import ROOT, Followthrough, free_port
from tests.test_embedded import Up

README = ROOT / "README.md"
FROM = "## The life of a postmortem"
SHELL = re.compile(r"[|$;&<>`]")
MASKS = (
    (re.compile(r"\d{4}-\d{2}-\d{2}"), "DATE"),
    (re.compile(r"\d{2}:\d{2}(:\d{2})?"), "TIME"),
    (re.compile(r"\b[0-9a-f]{8}\b"), "ID"),
)


@dataclass(frozen=True)
class Step:
    line: int  # in README.md, for the failure message
    command: str
    expected: list[str]


def readme_steps(text: str) -> list[Step]:
    """Each `$ ` line (continued by a trailing backslash) in a code block after FROM, with the
    lines the README shows it printing."""
    lines = text.splitlines()
    steps: list[Step] = []
    in_block = False
    i = lines.index(FROM)
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            in_block = not in_block
        elif in_block and line.startswith("$ "):
            at, command = i + 1, line[2:]
            while command.endswith("\\"):
                i += 1
                command = command[:-1].rstrip() + " " + lines[i].strip()
            expected = []
            while i + 1 < len(lines) and not lines[i + 1].startswith(("$ ", "```")):
                i += 1
                expected.append(lines[i])
            steps.append(Step(at, command, expected))
        i += 1
    return steps


def masked(line: str) -> str:
    for pattern, mask in MASKS:
        line = pattern.sub(mask, line)
    return " ".join(line.split())


def reads_as(actual: str, expected: str) -> bool:
    want, got = masked(expected), masked(actual)
    if "..." in want:
        return got.startswith(want.split("...")[0].rstrip())
    return got == want


def test_the_readme_steps_are_found() -> None:
    steps = readme_steps(README.read_text(encoding="utf-8"))
    commands = [s.command for s in steps]
    assert commands[0] == "python starter.py examples/incident.json"
    assert any(c.startswith("followthrough action extend") for c in commands)
    assert any(s.expected and s.expected[0].startswith("error:") for s in steps)
    sample = "```\n$ a \\\n    b\nout\n$ c\n```\n"
    assert readme_steps(f"{FROM}\n{sample}") == [Step(3, "a b", ["out"]), Step(6, "c", [])]


@pytest.fixture
def user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Followthrough]:
    """A fresh install's environment and `followthrough up` running in the first terminal."""
    port, ui_port = free_port(), free_port()
    ft = Followthrough.create(
        tmp_path,
        temporal_address=f"127.0.0.1:{port}",
        database_url=None,
        task_queue="followthrough",
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    shim = bin_dir / "followthrough"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m followthrough.cli "$@"\n')
    shim.chmod(0o755)
    ft.env["PATH"] = f"{bin_dir}{os.pathsep}{ft.env.get('PATH', '')}"
    ft.env["PYTHONPATH"] = str(ROOT)
    monkeypatch.chdir(ROOT)
    for name in [k for k in os.environ if k.startswith(("FOLLOWTHROUGH_", "TEMPORAL_"))]:
        monkeypatch.delenv(name)
    up = Up(ft, port, ui_port)
    try:
        yield ft
    finally:
        up.ctrl_c()


def run(step: Step, ft: Followthrough) -> tuple[int, str, str]:
    argv = shlex.split(step.command)
    if not SHELL.search(step.command) and argv[:1] == ["followthrough"]:
        args = argv[1:]
    elif not SHELL.search(step.command) and argv[:2] == ["python", "starter.py"]:
        args = ["incident", "resolved", *argv[2:]]  # what starter.py runs
    else:
        done = subprocess.run(
            ["bash", "-c", step.command],
            env=ft.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return done.returncode, done.stdout, done.stderr
    result = CliRunner().invoke(app, args, env=ft.env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


NOT_YET = ("does not exist or has already closed", "no action item", "no message")


def settled(step: Step, ft: Followthrough) -> tuple[int, str, str]:
    """Run it, asked again for a few seconds while what it names is not there yet.

    A person types slower than this test: the workflows record what follows an action (an
    approved draft's items, a postmortem closing after its last verification, an email) a
    moment after the action's answer. A read (`list`, `show`) that does not yet read as the
    README shows, or an action refused because its item is not recorded yet (which changed
    nothing), is asked again.
    """
    first = step.expected[0] if step.expected else None
    reads = {"list", "show"} & set(step.command.split()[:3])
    for _ in range(20):
        code, out, err = run(step, ft)
        missing = code != 0 and any(words in err for words in NOT_YET)
        stale = bool(reads and first and code == 0) and not reads_as(
            out.splitlines()[0] if out else "", first or ""
        )
        if not (missing or stale):
            break
        time.sleep(0.5)
    return code, out, err


def test_every_readme_command_works_as_written(user: Followthrough) -> None:
    failures = []
    for step in readme_steps(README.read_text(encoding="utf-8")):
        code, out, err = settled(step, user)
        first = step.expected[0] if step.expected else None
        said = f"README.md:{step.line}: $ {step.command}\n  exit {code}\n  stdout: {out}\n  {err}"
        if first is not None and first.startswith("error:"):
            if code == 0 or not reads_as(err.splitlines()[0] if err else "", first):
                failures.append(f"{said}\n  expected the refusal: {first}")
        elif code != 0:
            failures.append(f"{said}\n  expected it to succeed")
        elif first is not None and not reads_as(out.splitlines()[0] if out else "", first):
            failures.append(f"{said}\n  expected: {first}")
    assert not failures, "\n\n".join(failures)
