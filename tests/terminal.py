"""`copier copy` in a pseudo-terminal, read through a terminal emulator as a person sees it.

pexpect gives copier a real pty (so it prompts, as for a person) and pyte keeps the screen that
the bytes draw, so tests read what is on it rather than raw escape sequences.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pexpect
import pyte
from wcwidth import wcswidth

from rendering import TEMPLATE_ROOT

ENTER = "\r"
DOWN = "\x1b[B"
BACKSPACE = "\x7f"
CTRL_C = "\x03"


class Terminal:
    """One `copier copy` session on a screen of `rows` x `columns`."""

    def __init__(
        self,
        destination: Path,
        *arguments: str,
        template: Path = TEMPLATE_ROOT,
        rows: int = 40,
        columns: int = 80,
    ) -> None:
        self.screen = pyte.HistoryScreen(columns, rows, history=2000)
        # Every line as it stood when a prompt was answered: choice lists vanish afterwards.
        self.seen: list[str] = []
        self.stream = pyte.ByteStream(self.screen)
        env = {
            **os.environ,
            "TERM": "xterm-256color",
            # pyte does not answer prompt_toolkit's cursor-position request; a terminal does.
            "PROMPT_TOOLKIT_NO_CPR": "1",
            # Uncommitted template changes make copier warn; users render a clean release.
            "PYTHONWARNINGS": "ignore",
        }
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "copier", "copy", "--vcs-ref=HEAD", *arguments, str(template), str(destination)],
            dimensions=(rows, columns),
            env=env,
            timeout=60,
        )

    def _read(self, seconds: float) -> bool:
        """Feed the screen what copier writes for up to `seconds`; False once copier has exited."""
        try:
            data = self.child.read_nonblocking(65536, timeout=seconds)
        except pexpect.TIMEOUT:
            return True
        except pexpect.EOF:
            return False
        self.stream.feed(data)
        return True

    def lines(self) -> list[str]:
        """Every line drawn so far, scrolled-off ones included, without trailing blanks."""
        scrolled = [
            "".join(line[column].data for column in sorted(line))
            for line in self.screen.history.top
        ]
        return [line.rstrip() for line in [*scrolled, *self.screen.display]]

    def text(self) -> str:
        return "\n".join(self.lines())

    def expect(self, text: str, timeout: float = 60) -> None:
        """Wait until `text` is on the screen."""
        deadline = time.monotonic() + timeout
        while text not in self.text():
            if time.monotonic() > deadline or (not self._read(0.2) and text not in self.text()):
                raise AssertionError(f"{text!r} never appeared; the screen:\n{self.text()}")

    def answer(self, question: str, keys: str = "") -> None:
        """At the prompt whose help begins with `question:`, type `keys` and Enter."""
        self.expect(f"{question}: ")
        self.send(keys)
        self.seen.extend(self.lines())
        self.child.send(ENTER)

    def send(self, keys: str) -> None:
        self.child.send(keys)
        self.settle()

    def settle(self, quiet: float = 0.3) -> None:
        """Read until copier has drawn nothing for `quiet` seconds."""
        before = None
        while before != self.text():
            before = self.text()
            if not self._read(quiet):
                return

    def exit_status(self, timeout: float = 120) -> int:
        deadline = time.monotonic() + timeout
        while self._read(0.5):
            if time.monotonic() > deadline:
                raise AssertionError(f"copier did not finish; the screen:\n{self.text()}")
        self.child.close()
        status = self.child.exitstatus
        return status if status is not None else 128 + (self.child.signalstatus or 0)


def columns(line: str) -> int:
    """The width a terminal gives `line` (wide characters such as copier's 🎤 take two)."""
    return max(wcswidth(line), len(line))
