"""The daemon's HTTP front (aiohttp, loopback by default) and the daemon's threads.

`POST /receipts` (one receipt or a list), `GET /health`, `GET /metrics` (Prometheus text);
refusals answer the rule's code and HTTP status (operator_service.admission). A request is
verified (signatures: on the event loop, or in a thread pool for large requests), then
committed with whatever other requests are waiting (operator_service.intake.GroupCommitter),
and answered only after its transaction committed: 202 means durable. If the store cannot be
written (PostgreSQL restarting, SQLite locked for too long) the answer is 503 with
`Retry-After`, and nothing of that request is stored.

`serve` runs the front with the roles this process has: the batcher candidate
(operator_service.leader) and proving workers (operator_service.proving) as threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from channels.receipts import ReceiptError
from operator_service.admission import HTTP_STATUS, ChainReadNeededError
from operator_service.intake import GroupCommitter
from operator_service.pipeline import Operator
from operator_service.store import StoreUnavailableError

log = logging.getLogger("zkmeter.daemon")

#: Seconds a client is asked to wait before retrying after a 503.
RETRY_AFTER = 1
#: Requests of at most this many receipts are verified on the event loop itself (about
#: 0.15 ms a receipt) when that needs nothing from the chain (payers, models and signers
#: cached), the others in the verify threads. Verification is Python holding the GIL except
#: inside libsecp256k1, so threads add no parallelism to it, only two hand-overs of the GIL
#: per request, each of which can wait a switch interval behind another thread. The event
#: loop never waits for the node: a receipt that needs a chain read sends its request to the
#: threads.
INLINE_VERIFY_RECEIPTS = 64
#: The interpreter's GIL switch interval in a daemon process (Python's default: 5 ms). A
#: thread that released the GIL for I/O (a SQLite step or commit, a socket) waits up to one
#: interval to take it back from a thread computing; the commit thread does that once per
#: statement, so the default interval alone can add tens of ms to a group's commit.
GIL_SWITCH_INTERVAL = 0.001
#: The aiohttp application key of the group committer.
COMMITTER = web.AppKey("committer", GroupCommitter)


def make_app(operator: Operator, executor: ThreadPoolExecutor) -> web.Application:
    """The aiohttp application: POST /receipts, GET /health, GET /metrics. Verification runs
    on `executor`; a group committer thread starts and stops with the application."""
    committer = GroupCommitter(operator.intake)
    metrics = operator.metrics

    async def post_receipts(request: web.Request) -> web.Response:
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            body = json.loads(await request.read())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            metrics.inc("zkmeter_receipts_refused_total", reason="malformed_receipt")
            return web.json_response(
                {"error": "malformed_receipt", "message": f"body is not JSON: {error}"}, status=400
            )
        is_list = isinstance(body, list)
        items: Sequence[Any] = body if is_list else [body]
        verified = None
        if len(items) <= INLINE_VERIFY_RECEIPTS:
            with contextlib.suppress(ChainReadNeededError):  # a payer or model not cached yet
                verified = operator.intake.verify(items, cached_only=True)
        if verified is None:
            verified = await loop.run_in_executor(executor, operator.intake.verify, items)
        outcome = await asyncio.wrap_future(committer.submit(verified))
        operator.record(outcome)
        metrics.observe("zkmeter_request_receipts", len(items))
        response = _answer(is_list, outcome.states, outcome.error, outcome.index)
        metrics.observe("zkmeter_admission_seconds", time.perf_counter() - started)
        return response

    async def health(_: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        try:
            return web.json_response(await loop.run_in_executor(executor, operator.health))
        except StoreUnavailableError as error:
            return _unavailable(str(error), 0)

    async def metrics_text(_: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(StoreUnavailableError):  # gauges keep their last values
            await loop.run_in_executor(executor, operator.update_gauges)
        return web.Response(text=metrics.exposition(), content_type="text/plain", charset="utf-8")

    async def start_committer(_: web.Application) -> None:
        committer.start()

    async def stop_committer(_: web.Application) -> None:
        await asyncio.get_running_loop().run_in_executor(None, committer.stop)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[COMMITTER] = committer
    app.on_startup.append(start_committer)
    app.on_cleanup.append(stop_committer)
    app.router.add_post("/receipts", post_receipts)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics_text)
    return app


def _unavailable(message: str, admitted: int) -> web.Response:
    return web.json_response(
        {"error": "unavailable", "message": message, "admitted": admitted},
        status=503,
        headers={"Retry-After": str(RETRY_AFTER)},
    )


def _answer(
    is_list: bool, states: list[str], error: Exception | None, index: int | None
) -> web.Response:
    """The response to a request whose leading `states` are stored and which stopped at
    `error` (None: all stored)."""
    if error is None:
        if is_list:
            return web.json_response({"states": states}, status=202)
        return web.json_response({"state": states[0]}, status=202)
    if isinstance(error, StoreUnavailableError):
        return _unavailable(f"the store cannot be written now, retry: {error}", len(states))
    if not isinstance(error, ReceiptError):
        log.error("admission failed", exc_info=error)
        return web.json_response(
            {"error": "internal", "message": str(error), "admitted": len(states)}, status=500
        )
    payload: dict[str, Any] = {"error": error.code, "message": str(error)}
    if is_list:
        payload.update(index=index, admitted=len(states))
    return web.json_response(payload, status=HTTP_STATUS.get(error.code, 400))


def serve(
    operator: Operator,
    host: str = "127.0.0.1",
    port: int = 8787,
    *,
    reuse_port: bool = False,
    verify_threads: int = 2,
) -> None:
    """Run the HTTP front until interrupted (SIGINT/SIGTERM). With `reuse_port`, several
    processes listen on the same port (SO_REUSEPORT) and the kernel spreads connections."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    executor = ThreadPoolExecutor(max_workers=verify_threads, thread_name_prefix="zkmeter-verify")
    log.info(
        "intake listening",
        extra={"host": host, "port": port, "operator": operator.account.address},
    )
    try:
        web.run_app(
            make_app(operator, executor),
            host=host,
            port=port,
            reuse_port=reuse_port,
            print=None,
            access_log=None,
        )
    finally:
        executor.shutdown()


__all__ = ["GIL_SWITCH_INTERVAL", "INLINE_VERIFY_RECEIPTS", "RETRY_AFTER", "make_app", "serve"]
