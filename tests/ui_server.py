"""Dashboards for tests: `Site` serves one in process (aiohttp test client, fetched
synchronously); `start_zkmeter` runs `zkmeter ui` / `zkmeter demo --ui` as a real process on a
free loopback port (port 0), reads the URL it prints, and stops it with Ctrl-C (SIGINT)."""

from __future__ import annotations

import asyncio
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from zkmeter.ui.server import Dashboard, make_app

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


class Site:
    """A dashboard served in process, fetched synchronously. Its event loop runs on a thread
    of its own, so it works beside Playwright's (which holds the main thread's)."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.client: TestClient[Any, Any] = self._run(self._start())

    async def _start(self) -> TestClient[Any, Any]:
        client: TestClient[Any, Any] = TestClient(TestServer(make_app(self.dashboard)))
        await client.start_server()
        return client

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def get(self, path: str, *, follow: bool = False) -> tuple[int, str, Any]:
        async def fetch() -> tuple[int, str, Any]:
            response = await self.client.get(path, allow_redirects=follow)
            return response.status, await response.text(), response.headers

        status, text, headers = self._run(fetch())
        assert "Traceback" not in text and 'File "' not in text
        return status, text, headers

    def close(self) -> None:
        self._run(self.client.close())
        self.dashboard.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()
