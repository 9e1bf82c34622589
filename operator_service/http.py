"""The daemon's HTTP front (aiohttp, loopback by default) and the worker thread.

`POST /receipts` (one receipt or a list), `GET /health`, `GET /metrics` (Prometheus text);
refusals answer the rule's code and HTTP status (operator_service.admission). The worker
calls `Operator.step()` until stopped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from operator_service.admission import HTTP_STATUS
from operator_service.pipeline import Operator

log = logging.getLogger("zkmeter.daemon")


def make_app(operator: Operator, intake: ThreadPoolExecutor) -> Any:
    """The aiohttp application: POST /receipts, GET /health, GET /metrics."""
    from aiohttp import web

    async def post_receipts(request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        try:
            body = json.loads(await request.text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            operator.metrics.inc("zkmeter_receipts_refused_total", reason="malformed_receipt")
            return web.json_response(
                {"error": "malformed_receipt", "message": f"body is not JSON: {error}"}, status=400
            )
        items: Sequence[Any] = body if isinstance(body, list) else [body]
        states: list[str] = []
        for index, item in enumerate(items):
            try:
                states.append(await loop.run_in_executor(intake, operator.admit, item))
            except Exception as error:
                code = getattr(error, "code", None)
                if code is None:
                    log.exception("admission failed")
                    return web.json_response(
                        {"error": "internal", "message": str(error), "admitted": len(states)},
                        status=500,
                    )
                payload: dict[str, Any] = {"error": code, "message": str(error)}
                if isinstance(body, list):
                    payload.update(index=index, admitted=len(states))
                return web.json_response(payload, status=HTTP_STATUS.get(code, 400))
        if isinstance(body, list):
            return web.json_response({"states": states}, status=202)
        return web.json_response({"state": states[0]}, status=202)

    async def health(_: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        return web.json_response(await loop.run_in_executor(intake, operator.health))

    async def metrics(_: web.Request) -> web.Response:
        await asyncio.get_running_loop().run_in_executor(intake, operator.update_gauges)
        return web.Response(
            text=operator.metrics.exposition(), content_type="text/plain", charset="utf-8"
        )

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_post("/receipts", post_receipts)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    return app


@dataclass
class Worker:
    """A thread that calls `operator.step()` every `interval` seconds until stopped."""

    operator: Operator
    interval: float = 0.5
    stop_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="zkmeter-worker", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                changed = self.operator.step()
            except Exception:
                log.exception("worker step failed; retrying")
                changed = False
            if not changed:
                self.stop_event.wait(self.interval)

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join()


def serve(operator: Operator, host: str = "127.0.0.1", port: int = 8787) -> None:
    """Run the HTTP front and the worker until interrupted (SIGINT/SIGTERM)."""
    from aiohttp import web

    intake = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zkmeter-intake")
    worker = Worker(operator)
    worker.start()
    log.info(
        "daemon listening",
        extra={"host": host, "port": port, "operator": operator.account.address},
    )
    try:
        web.run_app(make_app(operator, intake), host=host, port=port, print=None)
    finally:
        worker.stop()
        intake.shutdown()


__all__ = ["Worker", "make_app", "serve"]
