"""A command in a real pseudo-terminal of a chosen size, read through a VT100 emulator (pyte):
what a person at that terminal would see, frame by frame."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pyte


class Terminal:
    def __init__(
        self,
        args: Sequence[str],
        env: Mapping[str, str],
        *,
        columns: int,
        rows: int = 30,
        cwd: Path | None = None,
    ) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        # The size comes from the terminal, as at a person's: no COLUMNS or LINES to override it.
        clean = {k: v for k, v in env.items() if k not in ("COLUMNS", "LINES")}
        self.process = subprocess.Popen(
            list(args),
            env={**clean, "TERM": "xterm-256color"},
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            start_new_session=True,
        )
        os.close(slave)
        self.master = master
        self.columns = columns
        self.screen = pyte.Screen(columns, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.frames: list[list[str]] = []
        self._lock = threading.Lock()
        # Read all along, as a terminal does: a frame per write, however busy the test is.
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: the command closed the terminal
                return
            if not data:
                return
            with self._lock:
                self.stream.feed(data)
                self.frames.append(self._lines())

    def _lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display]

    def lines(self) -> list[str]:
        with self._lock:
            return self._lines()

    def text(self) -> str:
        return "\n".join(self.lines())

    def wait_for(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.text():
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not on the screen after {timeout}s:\n{self.text()}")
            time.sleep(0.1)
        return self.text()

    def interrupt(self) -> None:
        """Ctrl-C, as the terminal sends it to the command."""
        self.process.send_signal(signal.SIGINT)

    def wait(self, timeout: float) -> int:
        code = self.process.wait(timeout)
        self._reader.join(10)
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._reader.join(10)
        with contextlib.suppress(OSError):
            os.close(self.master)
