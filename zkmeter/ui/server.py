"""The dashboard's HTTP side: aiohttp routes, one worker thread for every chain access,
error pages instead of stack traces, and `serve` for the command line.

Every page refreshes the index first (one `eth_getBlockByNumber` when nothing new was mined),
then renders a Jinja2 template. The index and the chain client are used from a single worker
thread, so requests never touch them concurrently. The dashboard is read-only: it holds no
key and sends no transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

from aiohttp import ClientError, ClientSession, ClientTimeout, web
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from contracts.client.index import ChainIndex, ChainIndexError, NodeUnavailableError
from zkmeter.ui import format as fmt
from zkmeter.ui.charts import earnings_svg
from zkmeter.ui.views import (
    ChartCache,
    DaemonStatus,
    Page,
    PageError,
    Views,
    account_status,
    event_name,
    record_kind,
)

log = logging.getLogger("zkmeter.ui")

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: The daemon's /health must answer within this many seconds, or the panel says it did not.
DAEMON_TIMEOUT = 3.0
#: Sent with every response: nothing but our own files, no framing, no referrer leaks.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        "form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def make_environment() -> Environment:
    """The Jinja2 environment: autoescaped HTML, strict about undefined names."""
    env = Environment(
        loader=PackageLoader("zkmeter.ui", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        tokens=fmt.token_amount,
        grouped=fmt.grouped,
        utc=fmt.utc,
        utc_iso=fmt.utc_iso,
        short_address=fmt.short_address,
        short_hash=fmt.short_hash,
        duration=fmt.duration,
    )
    env.globals.update(
        event_href=fmt.event_href,
        tx_href=fmt.tx_href,
        relative=fmt.relative,
        is_web_link=fmt.is_web_link,
        account_status=account_status,
        event_name=event_name,
        record_kind=record_kind,
        TOKENS_PER_RATE_UNIT=fmt.TOKENS_PER_RATE_UNIT,
    )
    return env


class Dashboard:
    """The pages of one deployment, rendered on one worker thread."""

    def __init__(self, index: ChainIndex, *, daemon_url: str | None = None) -> None:
        self.index = index
        self.daemon_url = daemon_url.rstrip("/") if daemon_url else None
        self.charts = ChartCache(earnings_svg)
        self.views = Views(index, self.charts)
        self.env = make_environment()
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="zkmeter-ui")

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ rendering

    async def page(self, build: Callable[[], Page]) -> web.Response:
        """Refresh the index and render the page `build` returns, on the worker thread."""
        loop = asyncio.get_running_loop()
        html, status = await loop.run_in_executor(self.pool, self._render, build)
        return web.Response(text=html, status=status, content_type="text/html")

    def _render(self, build: Callable[[], Page]) -> tuple[str, int]:
        try:
            self.index.refresh()
            page = build()
            context = {**self.views.common(), **page.context}
            return self.env.get_template(page.template).render(context), page.status
        except PageError as exc:
            return self.error_html(exc.status, exc.title, exc.message, exc.hint), exc.status
        except NodeUnavailableError as exc:
            hint = "Start the node (or fix --rpc-url); this page works again once it answers."
            return self.error_html(503, "The node is unreachable", str(exc), hint), 503
        except ChainIndexError as exc:
            hint = "Check that --deployment was written for the chain at --rpc-url."
            return self.error_html(
                502, "The node cannot serve this deployment", str(exc), hint
            ), 502

    def error_html(self, status: int, title: str, message: str, hint: str = "") -> str:
        """An error page; it needs nothing from the node, which may be the problem."""
        stats = self.index.stats()
        return self.env.get_template("error.html").render(
            status=status,
            title=title,
            message=message,
            hint=hint,
            deployment=self.index.deployment,
            token=None,
            latest_block=stats.scanned_to,
            now=None,
            stats=stats,
        )

    def warm_up(self) -> str:
        """The first scan, and matplotlib's font set-up, before the first visitor; returns
        what to tell the person who started the dashboard."""
        earnings_svg([(1, 1)], start=0, end=2, decimals=0, symbol="", title="")
        try:
            self.index.refresh()
        except ChainIndexError as exc:
            return f"not indexed yet: {exc} (pages say so until the node answers)"
        stats = self.index.stats()
        seconds = stats.first_scan_seconds or 0.0
        return (
            f"indexed {stats.records:,} events up to block {stats.scanned_to:,} in {seconds:.2f} s"
        )

    # ------------------------------------------------------------------ daemon

    async def daemon_status(self) -> DaemonStatus | None:
        """The daemon's `GET /health`, or why it could not be read (None without --daemon)."""
        if self.daemon_url is None:
            return None
        url = f"{self.daemon_url}/health"
        try:
            async with (
                ClientSession(timeout=ClientTimeout(total=DAEMON_TIMEOUT)) as session,
                session.get(url) as response,
            ):
                body = await response.text()
                if response.status != 200:
                    return DaemonStatus(self.daemon_url, error=f"HTTP {response.status}: {body}")
                health = json.loads(body)
        except (ClientError, TimeoutError, OSError) as exc:
            reason = str(exc) or type(exc).__name__
            return DaemonStatus(self.daemon_url, error=f"cannot reach {url}: {reason}")
        except ValueError as exc:
            return DaemonStatus(self.daemon_url, error=f"{url} did not answer JSON: {exc}")
        if not isinstance(health, dict):
            return DaemonStatus(self.daemon_url, error=f"{url} answered {health!r}")
        return DaemonStatus(self.daemon_url, health=health)


DASHBOARD = web.AppKey("dashboard", Dashboard)


def make_app(dashboard: Dashboard) -> web.Application:
    """The aiohttp application: the pages, static files, error pages."""
    views = dashboard.views

    def query(request: web.Request, name: str) -> str | None:
        return request.query.get(name)

    async def overview(_: web.Request) -> web.Response:
        return await dashboard.page(views.overview)

    async def models(request: web.Request) -> web.Response:
        q = query(request, "q") or ""
        return await dashboard.page(lambda: views.models(q, query(request, "page")))

    async def model(request: web.Request) -> web.Response:
        model_id = request.match_info["model_id"]
        return await dashboard.page(lambda: views.model(model_id, query(request, "page")))

    async def payers(request: web.Request) -> web.Response:
        address = (query(request, "address") or "").strip()
        if address:
            raise web.HTTPFound(f"/payers/{quote(address, safe='')}")
        return await dashboard.page(lambda: views.payers(query(request, "page")))

    async def payer(request: web.Request) -> web.Response:
        address = request.match_info["address"]
        return await dashboard.page(lambda: views.payer(address, query(request, "page")))

    async def operators(_: web.Request) -> web.Response:
        daemon = await dashboard.daemon_status()
        return await dashboard.page(lambda: views.operators(daemon))

    async def operator(request: web.Request) -> web.Response:
        address = request.match_info["address"]
        daemon = await dashboard.daemon_status()
        return await dashboard.page(lambda: views.operator(address, query(request, "page"), daemon))

    async def batch(request: web.Request) -> web.Response:
        address, seq = request.match_info["address"], request.match_info["seq"]
        return await dashboard.page(lambda: views.batch(address, seq))

    async def transaction(request: web.Request) -> web.Response:
        tx_hash = request.match_info["tx_hash"]
        return await dashboard.page(lambda: views.transaction(tx_hash))

    async def address(request: web.Request) -> web.Response:
        text = request.match_info["address"]
        return await dashboard.page(lambda: views.address(text))

    async def search(request: web.Request) -> web.Response:
        q = query(request, "q") or ""
        if not q.strip():
            raise web.HTTPFound("/models")
        try:
            location = views.search(q)
        except PageError as exc:
            html = dashboard.error_html(exc.status, exc.title, exc.message, exc.hint)
            return web.Response(text=html, status=exc.status, content_type="text/html")
        raise web.HTTPFound(location)

    app = web.Application(middlewares=[error_pages])
    app[DASHBOARD] = dashboard
    app.router.add_get("/", overview)
    app.router.add_get("/models", models)
    app.router.add_get("/models/{model_id}", model)
    app.router.add_get("/payers", payers)
    app.router.add_get("/payers/{address}", payer)
    app.router.add_get("/operators", operators)
    app.router.add_get("/operators/{address}", operator)
    app.router.add_get("/operators/{address}/batches/{seq}", batch)
    app.router.add_get("/tx/{tx_hash}", transaction)
    app.router.add_get("/address/{address}", address)
    app.router.add_get("/search", search)
    app.router.add_static("/static/", STATIC_DIR)
    app.on_response_prepare.append(_security_headers)
    return app


@web.middleware
async def error_pages(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Our own page for a route that does not exist and for anything unexpected: never a
    stack trace (it goes to the log)."""
    dashboard = request.app[DASHBOARD]
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status == 404:
            title, message = "Page not found", f"There is no page at {request.path}."
        else:
            title, message = exc.reason, exc.text or exc.reason
        html = dashboard.error_html(exc.status, title, message, "Start again from the overview.")
        return web.Response(text=html, status=exc.status, content_type="text/html")
    except Exception:
        log.exception("dashboard page %s failed", request.path)
        html = dashboard.error_html(
            500,
            "Internal error",
            "The dashboard failed to build this page. The details are in the dashboard's log.",
        )
        return web.Response(text=html, status=500, content_type="text/html")


async def _security_headers(_: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)


async def serve(
    dashboard: Dashboard,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    announce: Callable[[str], None] = print,
    started: Callable[[str], None] | None = None,
) -> None:
    """Scan, then serve the dashboard until cancelled (Ctrl-C). `announce` gets the lines
    for a person; `started` gets the base URL once the port is open (port 0: a free port)."""
    loop = asyncio.get_running_loop()
    announce(await loop.run_in_executor(dashboard.pool, dashboard.warm_up))
    runner = web.AppRunner(make_app(dashboard), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in str(bound_host) else str(bound_host)
        url = f"http://{shown}:{bound_port}/"
        announce(f"zkmeter dashboard (read-only): {url}  (Ctrl-C to stop)")
        if started is not None:
            started(url)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        dashboard.close()


def run(
    dashboard: Dashboard, host: str, port: int, announce: Callable[[str], None] = print
) -> None:
    """`serve` until Ctrl-C; returns normally on the interrupt."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(dashboard, host, port, announce=announce))
    announce("dashboard stopped")


def is_loopback(host: str) -> bool:
    """True for hosts only this machine can reach."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


__all__ = ["Dashboard", "is_loopback", "make_app", "run", "serve"]
