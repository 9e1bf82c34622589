"""A load generator for an operator's intake (`zkmeter bench load`).

Receipts are signed before the clock starts (the generator must not be what limits the
rate), one channel per (payer, model), each channel's receipts in nonce order. Lanes (one
connection each) own disjoint sets of channels, so a channel never has two requests in
flight; each request carries up to `batch` receipts. With `rate` the lanes pace themselves
to that many receipts per second in all (open loop); without it they send as fast as the
daemon answers. Each receipt's latency is its request's, from sending to the answer (202
means its transaction committed). With `warmup`, the latencies of requests sent in the first
`warmup` seconds (the daemon's caches filling: payers read from the store, escrows from the
chain) are kept apart from the steady state's and reported on their own. A refused receipt
stops its channel (its later receipts would only be refused as gaps); a 503 is retried after
its Retry-After.

Settlement is followed through `GET /health` (receipts per state): receipts settled per
second, from the start until every admitted receipt is settled or `settle_wait` passes.

Targets must be loopback addresses unless `allow_remote` is given: a load test sends only to
this machine by default.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import math
import os
import socket
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from channels.payer import PayerChannel


class LoadError(RuntimeError):
    """The load test cannot run as asked (a non-loopback target, no receipts)."""


def check_loopback(urls: Sequence[str]) -> None:
    """Raise LoadError unless every URL's host resolves only to loopback addresses."""
    for url in urls:
        host = urlsplit(url).hostname
        if host is None:
            raise LoadError(f"{url}: no host")
        try:
            infos = socket.getaddrinfo(host, None)
        except socket.gaierror as error:
            raise LoadError(f"{url}: cannot resolve {host}: {error}") from None
        addresses = {str(info[4][0]) for info in infos}
        remote = [a for a in addresses if not ipaddress.ip_address(a.split("%")[0]).is_loopback]
        if remote:
            raise LoadError(
                f"{url} resolves to {', '.join(sorted(remote))}, not a loopback address: a load "
                "test sends only to this machine unless told otherwise (--allow-remote)"
            )


def presign(channels: Sequence[PayerChannel], count: int, tokens: int = 1) -> list[list[str]]:
    """`count` receipts per channel, signed now, as JSON texts in nonce order (the channels
    advance)."""
    out = []
    for channel in channels:
        texts = []
        for _ in range(count):
            receipt = channel.sign(tokens, os.urandom(32))
            texts.append(json.dumps(receipt.to_json()))
        out.append(texts)
    return out


@dataclass
class LoadResult:
    admitted: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    unavailable: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, one per admitted receipt
    #: Seconds at the start whose latencies are kept apart, in `warmup_latencies`.
    warmup: float = 0.0
    warmup_latencies: list[float] = field(default_factory=list)
    settled: int = 0
    settle_seconds: float = 0.0
    #: The most receipts admitted and not yet settled at any second of the load (sampled once
    #: a second, when settlement is followed): bounded for a pipeline that keeps pace.
    backlog_max: int = 0
    requests: int = 0
    #: CPU seconds the daemon used meanwhile, if the caller measured them (benches).
    daemon_cpu_seconds: float | None = None

    @property
    def admitted_per_second(self) -> float:
        return self.admitted / self.seconds if self.seconds > 0 else 0.0

    @property
    def settled_per_second(self) -> float:
        return self.settled / self.settle_seconds if self.settle_seconds > 0 else 0.0

    @property
    def settle_lag(self) -> float:
        """Seconds from the end of the load to the last admitted receipt's settlement: what a
        pipeline that keeps up holds back (one batch: its age limit, proof and confirmation)."""
        return max(0.0, self.settle_seconds - self.seconds) if self.settle_seconds else 0.0

    def percentile(self, q: float, *, warmup: bool = False) -> float:
        """The q-th percentile (0..100) of admission latency, in seconds (nearest rank), after
        the warm-up (or, with `warmup`, during it)."""
        latencies = self.warmup_latencies if warmup else self.latencies
        if not latencies:
            return float("nan")
        ordered = sorted(latencies)
        rank = math.ceil(q / 100 * len(ordered))  # the smallest value with q% at or below it
        return ordered[min(len(ordered), max(1, rank)) - 1]

    def to_json(self) -> dict[str, Any]:
        return {
            "admitted": self.admitted,
            "refused": dict(self.refused),
            "unavailable_answers": self.unavailable,
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "admitted_per_second": round(self.admitted_per_second, 1),
            "latency_p50_ms": round(self.percentile(50) * 1000, 2),
            "latency_p99_ms": round(self.percentile(99) * 1000, 2),
            "latency_max_ms": round(max(self.latencies, default=float("nan")) * 1000, 2),
            **(
                {
                    "warmup_seconds": self.warmup,
                    "warmup_latency_p99_ms": round(self.percentile(99, warmup=True) * 1000, 2),
                    "warmup_latency_max_ms": round(
                        max(self.warmup_latencies, default=float("nan")) * 1000, 2
                    ),
                }
                if self.warmup
                else {}
            ),
            "settled": self.settled,
            "settle_seconds": round(self.settle_seconds, 3),
            "settled_per_second": round(self.settled_per_second, 1),
            "settle_lag_seconds": round(self.settle_lag, 3),
            "backlog_max": self.backlog_max,
            **(
                {
                    "daemon_cpu_seconds": round(self.daemon_cpu_seconds, 2),
                    "admitted_per_daemon_cpu_second": round(
                        self.admitted / self.daemon_cpu_seconds, 1
                    ),
                }
                if self.daemon_cpu_seconds
                else {}
            ),
        }

    def summary(self) -> str:
        data = self.to_json()
        lines = [
            f"admitted  {data['admitted']} receipts in {data['seconds']} s: "
            f"{data['admitted_per_second']} receipts/s ({data['requests']} requests)",
            f"latency   p50 {data['latency_p50_ms']} ms, p99 {data['latency_p99_ms']} ms, "
            f"max {data['latency_max_ms']} ms",
            f"refused   {data['refused'] or 'none'}; 503 answers: {data['unavailable_answers']}",
        ]
        if self.warmup:
            lines.insert(
                2,
                f"warm-up   the first {self.warmup:g} s (not in the line above): p99 "
                f"{data['warmup_latency_p99_ms']} ms, max {data['warmup_latency_max_ms']} ms",
            )
        if self.daemon_cpu_seconds:
            lines.append(
                f"daemon    {data['daemon_cpu_seconds']} CPU s: "
                f"{data['admitted_per_daemon_cpu_second']} receipts per CPU second"
            )
        if self.settle_seconds:
            lines.append(
                f"settled   {data['settled']} receipts in {data['settle_seconds']} s: "
                f"{data['settled_per_second']} receipts/s, the last "
                f"{data['settle_lag_seconds']} s after the load stopped; at most "
                f"{data['backlog_max']} admitted and not yet settled during the load"
            )
        return "\n".join(lines)


async def _settled_count(session: Any, url: str) -> int:
    async with session.get(url.rstrip("/") + "/health") as reply:
        data = await reply.json()
    return int(data["receipts"]["settled"])


async def run_load_async(
    urls: Sequence[str],
    signed: Sequence[Sequence[str]],
    *,
    lanes: int = 8,
    batch: int = 32,
    rate: float | None = None,
    duration: float = 10.0,
    settle_wait: float = 0.0,
    timeout: float = 60.0,
    warmup: float = 0.0,
) -> LoadResult:
    """Send the pre-signed receipts (`signed[i]`: channel i's, in order) to `urls`, lane j
    to urls[j % len(urls)]; see the module's docstring."""
    import aiohttp

    result = LoadResult(warmup=warmup)
    channels = [list(texts) for texts in signed if texts]
    if not channels:
        raise LoadError("no receipts to send")
    lanes = max(1, min(lanes, len(channels)))
    owned = [channels[i::lanes] for i in range(lanes)]
    connector = aiohttp.TCPConnector(limit=0)
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:
        settled_before = await _settled_count(session, urls[0]) if settle_wait else 0
        started = time.perf_counter()
        deadline = started + duration
        steady = started + warmup
        sent = [0]

        async def lane(index: int) -> None:
            url = urls[index % len(urls)].rstrip("/") + "/receipts"
            mine = [list(c) for c in owned[index]]
            cursor = [0] * len(mine)
            dead: set[int] = set()
            turn = 0
            while time.perf_counter() < deadline:
                live = [i for i in range(len(mine)) if cursor[i] < len(mine[i]) and i not in dead]
                if not live:
                    return
                parts: list[tuple[int, str]] = []
                while len(parts) < batch and live:
                    i = live[turn % len(live)]
                    turn += 1
                    parts.append((i, mine[i][cursor[i]]))
                    cursor[i] += 1
                    if cursor[i] >= len(mine[i]):
                        live.remove(i)
                if rate:
                    due = started + sent[0] / rate
                    sent[0] += len(parts)
                    delay = due - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                body = "[" + ",".join(text for _, text in parts) + "]"
                while True:
                    t0 = time.perf_counter()
                    async with session.post(
                        url, data=body, headers={"Content-Type": "application/json"}
                    ) as reply:
                        payload = await reply.json()
                        status = reply.status
                        retry_after = float(reply.headers.get("Retry-After", "1"))
                    latency = time.perf_counter() - t0
                    kept = result.warmup_latencies if t0 < steady else result.latencies
                    result.requests += 1
                    if status != 503:
                        break
                    result.unavailable += 1
                    await asyncio.sleep(retry_after)
                if status == 202:
                    result.admitted += len(parts)
                    kept.extend([latency] * len(parts))
                    continue
                done = int(payload.get("admitted", 0))
                result.admitted += done
                kept.extend([latency] * done)
                result.refused[str(payload.get("error"))] += 1
                stuck_index = int(payload.get("index", 0) or 0)
                if stuck_index < len(parts):
                    dead.add(parts[stuck_index][0])  # its later receipts would be gaps
                # the request's receipts after the refused one were not processed: resend them
                for i, _ in parts[stuck_index + 1 :]:
                    if i not in dead:
                        cursor[i] -= 1

        async def backlog() -> None:
            while True:
                await asyncio.sleep(1.0)
                settled = await _settled_count(session, urls[0]) - settled_before
                result.backlog_max = max(result.backlog_max, result.admitted - settled)

        sampler = asyncio.create_task(backlog()) if settle_wait else None
        await asyncio.gather(*(lane(i) for i in range(lanes)))
        result.seconds = time.perf_counter() - started
        if sampler is not None:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        if settle_wait:
            target = settled_before + result.admitted
            end = time.perf_counter() + settle_wait
            settled = settled_before
            while True:
                settled = await _settled_count(session, urls[0])
                if settled >= target or time.perf_counter() > end:
                    break
                await asyncio.sleep(0.5)
            result.settled = settled - settled_before
            result.settle_seconds = time.perf_counter() - started
    return result


def run_load(urls: Sequence[str], signed: Sequence[Sequence[str]], **options: Any) -> LoadResult:
    """`run_load_async` in a fresh event loop."""
    return asyncio.run(run_load_async(urls, signed, **options))


__all__ = ["LoadError", "LoadResult", "check_loopback", "presign", "run_load", "run_load_async"]
