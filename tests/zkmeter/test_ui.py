"""The dashboard in process (embedded chain, aiohttp test client): what each page shows,
that every number links to the event or transaction it came from, and a clear page (never a
stack trace) for bad input, an unknown address or model, a node that is down, a daemon that
does not answer, and a failure inside the dashboard itself."""

from __future__ import annotations

import ast
import re
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from contracts.client import ChainClient
from contracts.client.index import ChainIndex
from tests.support.chain import ONE_OPEN, World, build_world, settle
from tests.support.http import serving
from tests.support.ui_server import Site
from zkmeter.ui import views as views_module
from zkmeter.ui.format import duration, relative, token_amount
from zkmeter.ui.server import Dashboard
from zkmeter.ui.views import PageError, Pager, make_pager

UI_DIR = Path(__file__).resolve().parent.parent / "zkmeter" / "ui"
DAY = 24 * 3600


@dataclass
class Scene:
    world: World
    site: Site


@pytest.fixture(scope="module")
def scene() -> Iterator[Scene]:
    w = build_world()
    c = w.client
    settle(w, [w.aggregate()])
    c.advance_time(3600)
    both = sorted([w.aggregate(), w.aggregate(payer=w.payer2)], key=lambda a: a.key)
    settle(w, both)
    c.propose_rate(w.model_id, 3 * 10**15, sender=w.owner)
    c.request_withdrawal(w.operator.address, ONE_OPEN // 10, sender=w.payer)
    c.authorize_signer(w.signer.address, sender=w.payer)
    site = Site(Dashboard(ChainIndex.for_client(c)))
    yield Scene(w, site)
    site.close()


def text_of(html: str) -> str:
    """The page's visible text, whitespace collapsed."""
    html = re.sub(r"<(script|style|svg)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&amp;", "&").strip()


class Numbers(HTMLParser):
    """Every element of class `num` (numbers and amounts): its tag, href and title."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if "num" in (a.get("class") or "").split():
            self.found.append({"tag": tag, "href": a.get("href"), "title": a.get("title")})


def numbers(html: str) -> list[dict[str, str | None]]:
    parser = Numbers()
    parser.feed(html)
    return parser.found


# ------------------------------------------------------------------------------ pages


def test_model_page_shows_rate_pending_change_earnings_chart(scene: Scene) -> None:
    status, html, headers = scene.site.get("/models/1")
    assert status == 200
    text = text_of(html)
    assert "Rate now 0.002 OPEN per 1,000 tokens" in text
    assert "Announced change 0.003 OPEN per 1,000 tokens from" in text and "(in 6 d 23 h)" in text
    assert "Earned 0.0576 OPEN for 28,800 tokens, from 3 settled channel states" in text
    assert "ipfs://model-1" in text
    assert '<svg role="img" aria-label="Cumulative earnings of model 1 (OPEN)"' in html
    assert 'title="19,200,000,000,000,000 base units">0.0192 OPEN</a>' in html
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    # The payers and operator are checksummed, with copy buttons holding the full address.
    assert f'data-copy="{scene.world.payer.address}"' in html
    assert f'data-copy="{scene.world.operator.address}"' in html


def test_every_number_links_to_its_event_or_transaction(scene: Scene) -> None:
    """Each number on the model, payer, operator and batch pages is a link; each event link
    names a log that the transaction page shows under that anchor."""
    w = scene.world
    pages = [
        "/",
        "/models",
        "/models/1",
        f"/payers/{w.payer.address}",
        "/payers",
        "/operators",
        f"/operators/{w.operator.address}",
        f"/operators/{w.operator.address}/batches/1",
    ]
    anchors: set[str] = set()
    for path in pages:
        status, html, _ = scene.site.get(path)
        assert status == 200, path
        found = numbers(html)
        assert found, path
        for n in found:
            assert n["tag"] == "a" and n["href"], (path, n)
            if "/tx/" in (n["href"] or ""):
                anchors.add(n["href"] or "")
    assert any("#log-" in a for a in anchors)
    for href in sorted(anchors):
        tx, _, log = href.partition("#")
        status, html, _ = scene.site.get(tx)
        assert status == 200, href
        if log:
            assert f'id="{log}"' in html, href


def test_models_list_and_search(scene: Scene) -> None:
    status, html, _ = scene.site.get("/models")
    text = text_of(html)
    assert status == 200 and "0.002 OPEN per 1,000 tokens" in text and "0.003 OPEN" in text
    assert "ipfs://model-1" in text and "ipfs://model-2" in text
    _, html, _ = scene.site.get("/models?q=model-2")
    assert "ipfs://model-2" in html and "ipfs://model-1" not in html
    _, html, _ = scene.site.get(f"/models?q={scene.world.owner.address.lower()}")
    assert "ipfs://model-2" in html and "ipfs://model-1" in html
    _, html, _ = scene.site.get("/models?q=no-such-model")
    assert "No model matches “no-such-model”" in text_of(html)


def test_payer_page_escrow_withdrawal_channels_caps_signers(scene: Scene) -> None:
    w = scene.world
    status, html, _ = scene.site.get(f"/payers/{w.payer.address.lower()}")
    assert status == 200
    text = text_of(html)
    # 1 OPEN deposited, two settlements of 0.0192: 0.9616 left, 0.1 of it thawing.
    assert "0.9616 OPEN" in text and "0.8616 OPEN" in text and "0.1 OPEN" in text
    assert "(in 2 d 23 h)" in text
    assert "Signed rate cap in force" in text
    cap_cell = re.search(r'<td class="cap">(.*?)</td>', html, re.S)
    assert cap_cell and "0.002 OPEN</a> per 1,000 tokens" in cap_cell.group(1)
    assert w.signer.address in html and "authorized" in text
    assert "withdrawal requested" in text and "deposit" in text
    assert text.count("settled 9,600 tokens of model 1") == 2


def test_operator_and_batch_pages(scene: Scene) -> None:
    w = scene.world
    status, html, _ = scene.site.get(f"/operators/{w.operator.address}")
    assert status == 200
    rows = re.findall(r'<tr data-batch="(\d+)">', html)
    assert rows == ["1", "0"]  # newest first
    text = text_of(html)
    assert "2 batches, 36 calls, 28,800 tokens, 0.0576 OPEN paid to creators" in text
    status, html, _ = scene.site.get(f"/operators/{w.operator.address}/batches/1")
    text = text_of(html)
    assert status == 200 and "24 receipts in a domain of 2 10 rows" in text
    assert text.count("model 1") >= 2 and "Witness commitments" in text


def test_transaction_page_decodes_the_call_and_events(scene: Scene) -> None:
    w = scene.world
    index = scene.site.dashboard.index
    batch = index.operators[w.operator.address].batches[0]
    status, html, _ = scene.site.get(f"/tx/{batch.ref.tx_hash}")
    text = text_of(html)
    assert status == 200 and "UsageSettlement" in text and "settle" in text
    assert "log 0: ChannelSettled" in text and "log 1: BatchSettled" in text
    assert "19,200,000,000,000,000 base units" in text


def test_search_box_goes_where_it_should(scene: Scene) -> None:
    w = scene.world
    tx = scene.site.dashboard.index.operators[w.operator.address].batches[0].ref.tx_hash
    cases = {
        "1": "/models/1",
        w.payer.address.lower(): f"/address/{w.payer.address}",
        tx.upper().replace("0X", "0x"): f"/tx/{tx}",
        "model-2": "/models?q=model-2",
        "": "/models",
    }
    for q, where in cases.items():
        status, _, headers = scene.site.get(f"/search?q={q}")
        assert status == 302 and headers["Location"] == where, q
    status, _, headers = scene.site.get(f"/payers?address={w.payer.address}")
    assert status == 302 and headers["Location"] == f"/payers/{w.payer.address}"
    _, html, _ = scene.site.get(f"/address/{w.owner.address}")
    assert "Models it owns" in html and "0.0576 OPEN" in text_of(html)


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/models/99", 404, "Model 99 does not exist: the registry has 2 models (ids 1 to 2)."),
        ("/models/0", 404, "Model 0 does not exist"),
        ("/models/abc", 400, "'abc' is not a model id"),
        (
            "/payers/0x000000000000000000000000000000000000dEaD",
            404,
            "0x000000000000000000000000000000000000dEaD has no escrow account",
        ),
        ("/payers/0x1234", 400, "'0x1234' is not an address"),
        (
            "/payers/0x6813eB9362372EEF6200f3b1dbC3f819671cBA69",
            400,
            "has a wrong EIP-55 checksum",
        ),
        (
            "/operators/0x000000000000000000000000000000000000dEaD",
            404,
            "has settled no batch and holds no escrow",
        ),
        ("/address/0x000000000000000000000000000000000000dEaD", 404, "has no model, escrow"),
        ("/tx/0x" + "00" * 32, 404, "The node does not know transaction"),
        ("/tx/0x12", 400, "'0x12' is not 0x and 64 hex digits"),
        ("/models/1?page=x", 400, "'x' is not a page number"),
        ("/no/such/page", 404, "There is no page at /no/such/page."),
        ("/search?q=0x6813eB9362372EEF6200f3b1dbC3f819671cBA69", 400, "checksum"),
    ],
)
def test_bad_input_gives_a_clear_page(scene: Scene, path: str, status: int, says: str) -> None:
    got, html, _ = scene.site.get(path)
    assert got == status
    assert says in text_of(html).replace("&#39;", "'")
    assert "<h1>" in html and "Overview" in html  # a page with a way back, not a bare error


def test_unknown_batch_of_a_known_operator(scene: Scene) -> None:
    operator = scene.world.operator.address
    status, html, _ = scene.site.get(f"/operators/{operator}/batches/7")
    assert status == 404
    assert f"Operator {operator} has no settled batch 7 on this deployment (2 settled)" in (
        text_of(html)
    )


def test_a_failure_inside_the_dashboard_is_a_page_not_a_trace(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_self: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(views_module.Views, "overview", broken)
    status, html, _ = scene.site.get("/")
    assert status == 500 and "Internal error" in html and "secret internals" not in html


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_node_that_is_down_gives_a_clear_page(scene: Scene) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    site = Site(Dashboard(ChainIndex.for_node(url, scene.world.deployment)))
    try:
        for path in ("/", "/models/1", f"/payers/{scene.world.payer.address}"):
            status, html, _ = site.get(path)
            text = text_of(html)
            assert status == 503, path
            assert "The node is unreachable" in text and f"cannot reach the node at {url}" in text
            assert "this page works again once it answers" in text
    finally:
        site.close()


def test_a_node_without_the_deployment_gives_a_clear_page() -> None:
    """A deployment file for contracts the chain does not hold (another chain with the same
    id, or a dev chain that was restarted)."""
    elsewhere = build_world().deployment
    empty = ChainClient.embedded()  # same chain id, no contracts

    def connect() -> ChainClient:
        empty.use(elsewhere)
        return empty

    site = Site(Dashboard(ChainIndex(connect, elsewhere)))
    try:
        status, html, _ = site.get("/")
        assert status == 502
        assert f"no UsageSettlement at {elsewhere.settlement}" in text_of(html)
        assert "wrong deployment file, or the chain was reset" in text_of(html)
    finally:
        site.close()


# ------------------------------------------------------------------------------ daemon panel


def test_daemon_health_and_queue_depths(scene: Scene) -> None:
    """A daemon's /health (the real daemon HTTP app), and one that does not answer."""
    from operator_service.config import DaemonConfig
    from operator_service.http import make_app as daemon_app
    from operator_service.pipeline import Operator
    from operator_service.store import ReceiptStore
    from zkmeter.devworld import DEV_LOG_SIZE, deploy_dev_world, development_proving_key

    client = ChainClient.embedded()
    owner, operator, payer = client.accounts[1:4]
    world = deploy_dev_world(client, [payer], owner, operator, mock_verifier=True)
    store = ReceiptStore("sqlite:///:memory:")
    op = Operator(client, operator, store, development_proving_key(), DaemonConfig(DEV_LOG_SIZE))
    channel = world.payer_channel(payer, world.models[0])
    for i in range(3):
        op.admit(channel.sign(100, bytes([i]) * 32).to_json())

    with ThreadPoolExecutor(1) as intake, serving(daemon_app(op, intake)) as daemon_url:
        site = Site(Dashboard(ChainIndex.for_client(client), daemon_url=daemon_url))
        silent = Site(
            Dashboard(
                ChainIndex.for_client(client), daemon_url=f"http://127.0.0.1:{_closed_port()}"
            )
        )
        try:
            status, html, _ = site.get(f"/operators/{operator.address}")
            assert status == 200
            assert '<td class="r" data-state="admitted">3</td>' in html
            text = text_of(html)
            assert "Operator daemon" in text and "Status ok" in text
            assert "admitted, waiting for a batch (the queue) 3" in text
            assert "not the dashboard's" not in text
            status, html, _ = site.get("/operators")
            assert status == 200 and 'data-state="admitted">3<' in html
            status, html, _ = silent.get("/operators")
            assert status == 200 and "did not answer" in html and "cannot reach" in html
        finally:
            site.close()
            silent.close()


# ------------------------------------------------------------------------------ caching


def test_pages_reuse_the_scan_and_the_chart(scene: Scene, monkeypatch: pytest.MonkeyPatch) -> None:
    """After the first scan a page costs no log request; the chart is rendered once per
    state of the model and again after a new settlement."""
    w, site = scene.world, scene.site
    site.get("/models/1")
    renders: list[int] = []
    cache = site.dashboard.charts
    real = cache.render
    monkeypatch.setattr(cache, "render", lambda **kw: renders.append(1) or real(**kw))
    logs: list[Any] = []
    real_logs = w.client.w3.eth.get_logs
    monkeypatch.setattr(w.client.w3.eth, "get_logs", lambda p: logs.append(p) or real_logs(p))
    for _ in range(3):
        assert "0.0576 OPEN" in text_of(site.get("/models/1")[1])
    assert renders == [] and logs == []

    snap = w.client.snapshot()
    try:
        settle(w, [w.aggregate(payer=w.payer2)])
        assert "0.0768 OPEN" in text_of(site.get("/models/1")[1])
        assert renders == [1] and len(logs) == 1
    finally:
        w.client.revert(snap)
    assert "0.0576 OPEN" in text_of(site.get("/models/1")[1])  # the reverted chain, rescanned


# ------------------------------------------------------------------------------ units


def test_pager_newest_first() -> None:
    items = list(range(120))
    assert make_pager(120, None).newest_first(items) == list(range(119, 69, -1))
    assert make_pager(120, "3").newest_first(items) == list(range(19, -1, -1))
    assert make_pager(120, "9") == Pager(3, 50, 120)  # past the end: the last page
    assert make_pager(0, None).newest_first([]) == [] and make_pager(0, None).pages == 1
    with pytest.raises(PageError, match="not a page number"):
        make_pager(10, "two")


def test_formats() -> None:
    assert token_amount(19_200_000_000_000_000, 18) == "0.0192"
    assert token_amount(1234 * 10**18 + 5, 18) == "1,234.000000000000000005"
    assert token_amount(-5, 2) == "-0.05" and token_amount(7, 0) == "7"
    assert duration(3 * DAY + 2 * 3600 + 5) == "3 d 2 h" and duration(59) == "59 s"
    assert relative(100, 100) == "now" and relative(160, 100) == "in 1 min"
    assert relative(100, 100 + DAY) == "1 d ago"


def test_no_web3_under_zkmeter_ui() -> None:
    """Chain access goes through contracts.client.index and the one client, never web3 directly."""
    for path in sorted(UI_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                assert name.split(".")[0] != "web3", f"{path} imports {name}"
