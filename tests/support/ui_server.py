"""Dashboards for tests: `Site` (zkmeter.ui.inprocess) serves one in process; `start_zkmeter`
runs `zkmeter ui` / `zkmeter demo --ui` as a real process on a free loopback port (port 0),
reads the URL it prints, and stops it with Ctrl-C (SIGINT)."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field

from zkmeter.ui.inprocess import Site

__all__ = ["ServerProcess", "Site", "start_zkmeter"]

#: Only a guard against a hung start, never a performance check (a loaded 2-core machine).
START_GUARD_SECONDS = 300
URL_LINE = re.compile(r"zkmeter dashboard \(read-only\): (http://\S+)")


@dataclass
class ServerProcess:
    process: subprocess.Popen[str]
    url: str
    lines: list[str] = field(default_factory=list)

    def stop(self) -> tuple[int, str]:
        """Ctrl-C, then wait; returns the exit code and everything it printed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            out, _ = self.process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate()
        return self.process.returncode, "".join(self.lines) + (out or "")


def start_zkmeter(*args: str) -> ServerProcess:
    """Run `python -m zkmeter.cli ARGS` and wait for the dashboard's URL line."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "zkmeter.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    seen: queue.Queue[str | None] = queue.Queue()
    lines: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in iter(process.stdout.readline, ""):
            seen.put(line)
            if URL_LINE.search(line):
                break
        else:
            seen.put(None)

    threading.Thread(target=pump, daemon=True).start()
    while True:
        try:
            line = seen.get(timeout=START_GUARD_SECONDS)
        except queue.Empty:
            process.kill()
            raise RuntimeError(f"no dashboard URL after {START_GUARD_SECONDS} s: {lines}") from None
        if line is None:
            process.wait()
            raise RuntimeError(f"zkmeter exited ({process.returncode}): {''.join(lines)}")
        lines.append(line)
        match = URL_LINE.search(line)
        if match:
            return ServerProcess(process, match.group(1), lines)
