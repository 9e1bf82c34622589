"""The dashboard served in process and fetched synchronously: for tests, benchmarks and
page snapshots without a browser or a port of its own."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from zkmeter.ui.server import Dashboard, make_app


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
        if "Traceback" in text or 'File "' in text:
            raise RuntimeError(f"{path}: the page shows a stack trace")
        return status, text, headers

    def close(self) -> None:
        self._run(self.client.close())
        self.dashboard.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


__all__ = ["Site"]
