"""README's quick start and walkthrough, pasted into bash against a fresh server.

README marks the parts it promises work when pasted with ``<!-- readme-test: NAME -->``
... ``<!-- /readme-test -->``. In each, a ```` ```sh ```` block holds commands and the
```` ```text ```` block after it the output a reader should see, where ``...`` stands for
any text (a line that is only ``...`` for any number of lines).

- ``serve``: ``make run``. The test does not run make (it would install); it runs the
  command of the Makefile's ``run`` recipe in an empty directory, as a fresh copy would,
  on a free port instead of 8000, and checks the log lines README shows.
- ``walkthrough``: every ``sh`` block, in order, in one ``bash`` with
  ``set -euo pipefail``, from that same directory, with ``127.0.0.1:8000`` replaced by
  the test server's address and ``.venv/bin/`` by this interpreter's bin directory
  (which is taken off ``PATH``, so a command that needs an activated venv fails). What
  each block prints (stdout and stderr, as a terminal shows them) must match its text
  block line by line.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.processes import ServerProcess, free_port, server_env

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
README_HOST = "127.0.0.1:8000"
README_BIN = ".venv/bin/"
BLOCK_END = "@@readme-test: end of block@@"
SECTION = re.compile(r"<!-- readme-test: ([\w-]+) -->\n(.*?)<!-- /readme-test -->", re.S)
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)

Spawn = Callable[..., ServerProcess]


@dataclass
class Block:
    commands: str
    expected: list[str] = field(default_factory=list)


def readme_sections() -> dict[str, list[Block]]:
    """Each marked section of README as its command blocks with their expected output."""
    sections: dict[str, list[Block]] = {}
    for name, body in SECTION.findall(README.read_text(encoding="utf-8")):
        blocks: list[Block] = []
        expecting = False
        for language, content in FENCE.findall(body):
            if language == "sh":
                blocks.append(Block(content))
                expecting = True
            elif language == "text":
                assert expecting, f"README section {name}: an output block without commands"
                blocks[-1].expected = content.splitlines()
                expecting = False
        assert blocks, f"README section {name} has no sh block"
        sections[name] = blocks
    return sections


def _line_pattern(line: str) -> re.Pattern[str]:
    return re.compile(".*?".join(re.escape(part) for part in line.split("...")))


def matches(expected: list[str], actual: list[str], *, more_after: bool = False) -> bool:
    """Whether ``actual`` lines fit ``expected`` (``...`` wildcards; see the docstring)."""
    patterns = [None if e.strip() == "..." else _line_pattern(e.rstrip()) for e in expected]
    actual = [a.rstrip() for a in actual]

    @functools.cache
    def fit(i: int, j: int) -> bool:
        if i == len(patterns):
            return more_after or j == len(actual)
        pattern = patterns[i]
        if pattern is None:
            return any(fit(i + 1, k) for k in range(j, len(actual) + 1))
        return j < len(actual) and pattern.fullmatch(actual[j]) is not None and fit(i + 1, j + 1)

    return fit(0, 0)


def make_run_argv() -> list[str]:
    """The command of the Makefile's ``run`` recipe, with $(PY) as this interpreter."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    found = re.search(r"^run:.*\n\t(.+)$", makefile, re.M)
    assert found, "Makefile has no run recipe"
    recipe = found.group(1)
    assert recipe.startswith("$(PY) "), f"the run recipe changed: {recipe!r}"
    return [sys.executable, *shlex.split(recipe.removeprefix("$(PY) "))]


def test_readme_marks_its_sections() -> None:
    sections = readme_sections()
    assert set(sections) == {"serve", "walkthrough"}
    [serve] = sections["serve"]
    assert serve.commands.split("#")[0].strip() == "make run"
    assert any(
        "user create" in b.commands and "--admin" in b.commands for b in sections["walkthrough"]
    )
    assert all(b.expected for b in sections["walkthrough"]), "show each step's output"


def test_wildcards() -> None:
    assert matches(["a ... c"], ["a b c"])
    assert not matches(["a ... c"], ["a b d"])
    assert matches(["...", "x"], ["1", "2", "x"])
    assert matches(["x", "..."], ["x"])
    assert not matches(["x"], ["x", "y"])
    assert matches(["x"], ["x", "y"], more_after=True)


def test_readme_walkthrough_works_when_pasted(spawn: Spawn, tmp_path: Path) -> None:
    for tool in ("bash", "curl", "python3"):
        if shutil.which(tool) is None:
            pytest.skip(f"README's walkthrough needs {tool}")
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "authly").exists(), f"no authly script next to {sys.executable}"
    assert " " not in str(bin_dir)
    sections = readme_sections()
    port = free_port()
    address = f"127.0.0.1:{port}"

    def localize(text: str) -> str:
        return text.replace(README_HOST, address).replace(README_BIN, f"{bin_dir}/")

    # A reader's shell: no AUTHLY_* settings, no activated venv, their own config dir.
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != bin_dir]
    env = {k: v for k, v in server_env().items() if k not in ("VIRTUAL_ENV", "XDG_CONFIG_HOME")}
    env.update(PATH=os.pathsep.join(path), HOME=str(tmp_path / "home"))

    # `make run`, on a free port, in an empty directory (the data directory is created).
    server = spawn(
        env={**env, "AUTHLY_PORT": str(port), "PYTHONUNBUFFERED": "1"},
        argv=make_run_argv(),
        port=port,
    )
    server.wait_healthy()
    [serve] = sections["serve"]
    expected_log = [localize(line) for line in serve.expected]
    deadline = time.monotonic() + 5
    while not matches(expected_log, server.stderr().splitlines(), more_after=True):
        assert time.monotonic() < deadline, (
            f"the server's log does not show README's lines:\n{serve.expected}\n{server.output()}"
        )
        time.sleep(0.1)
    assert (tmp_path / "data" / "authly.db").is_file()

    # The second terminal: every command block of the walkthrough, in order, in one shell.
    # The admin CLI's default server is 127.0.0.1:8000, the address README's server has;
    # AUTHLY_URL points it at this test's server instead.
    blocks = sections["walkthrough"]
    script = "set -euo pipefail\n" + "".join(
        f"{localize(b.commands)}\nprintf '%s\\n' '{BLOCK_END}'\n" for b in blocks
    )
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env={**env, "AUTHLY_URL": f"http://{address}"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
        check=False,
    )
    outputs = result.stdout.split(f"{BLOCK_END}\n")
    done = len(outputs) - 1
    assert result.returncode == 0, (
        f"README's walkthrough failed in block {done + 1}:\n"
        f"{blocks[min(done, len(blocks) - 1)].commands}\n--- output ---\n{outputs[-1]}\n"
        f"{server.output()}"
    )
    assert done == len(blocks)
    assert outputs[-1] == ""
    for block, output in zip(blocks, outputs, strict=False):
        expected = [localize(line) for line in block.expected]
        actual = output.splitlines()
        assert matches(expected, actual), (
            f"README's block\n{block.commands}\nshows\n" + "\n".join(expected) + "\n"
            "but printed\n" + "\n".join(actual)
        )
