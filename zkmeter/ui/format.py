"""Text for the dashboard's numbers, times and addresses (pure functions, Jinja filters).

Amounts are exact: base units are turned into whole tokens with integer arithmetic, never
floats, so 19200000000000000 base units of an 18-decimal token read "0.0192".
"""

from __future__ import annotations

from datetime import UTC, datetime

from contracts.client.index import EventRef

#: Rates are in base units per this many tokens of usage (UsageSettlement.TOKENS_PER_RATE_UNIT).
TOKENS_PER_RATE_UNIT = 1000


def token_amount(units: int, decimals: int) -> str:
    """Base units as whole tokens, exact, no trailing zeros, thousands grouped:
    19200000000000000 (18 decimals) -> "0.0192"; 1234 * 10**18 -> "1,234"."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10**decimals)
    frac_text = str(frac).rjust(decimals, "0").rstrip("0") if decimals else ""
    return f"{sign}{whole:,}" + (f".{frac_text}" if frac_text else "")


def grouped(n: int) -> str:
    """An integer with thousands separators: 9600 -> "9,600"."""
    return f"{n:,}"


def utc(timestamp: int) -> str:
    """A block timestamp as "2026-12-02 14:03:11 UTC"."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def utc_iso(timestamp: int) -> str:
    """A block timestamp in ISO 8601, for `<time datetime=...>`."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def duration(seconds: int) -> str:
    """A positive duration, two largest units: 266400 -> "3 d 2 h"; 59 -> "59 s"."""
    seconds = abs(seconds)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size} {unit}")
            seconds %= size
        if len(parts) == 2:
            break
    return " ".join(parts)


def relative(timestamp: int, now: int) -> str:
    """`timestamp` seen from chain time `now`: "in 3 d 2 h", "5 min ago", "now"."""
    if timestamp == now:
        return "now"
    if timestamp > now:
        return f"in {duration(timestamp - now)}"
    return f"{duration(now - timestamp)} ago"


def short_address(address: str) -> str:
    """0x1234567890abcdef... -> "0x1234…cdef" (the full address stays in a title)."""
    return f"{address[:6]}…{address[-4:]}" if len(address) > 12 else address


def short_hash(value: str) -> str:
    """A 32-byte hex value shortened to "0x1234ab…89cdef"."""
    return f"{value[:8]}…{value[-6:]}" if len(value) > 16 else value


def event_href(ref: EventRef) -> str:
    """The page of the event `ref` (its transaction's page, scrolled to the log)."""
    return f"/tx/{ref.tx_hash}#log-{ref.log_index}"


def tx_href(ref: EventRef) -> str:
    return f"/tx/{ref.tx_hash}"


def is_web_link(uri: str) -> bool:
    """Only http(s) metadata links are made clickable (never javascript: or data:)."""
    return uri.lower().startswith(("https://", "http://"))
