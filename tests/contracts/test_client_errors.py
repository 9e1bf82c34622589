"""contracts.client.errors: node replies and web3's exceptions become the named `ChainError`s,
each one sentence; anything else is left alone (it is a bug and keeps its traceback)."""

from __future__ import annotations

import http.server
import threading

import pytest
import requests
from eth_abi.abi import encode
from eth_utils.abi import function_signature_to_4byte_selector
from web3.exceptions import BadFunctionCallOutput, Web3RPCError

from contracts.client import (
    ChainClient,
    ContractRevertError,
    InsufficientFundsError,
    NodeRequestError,
    NodeUnreachableError,
    chain_error_of,
    decode_revert,
)
from contracts.client.errors import ether, rpc_message

PAYER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
OPERATOR = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"


def _revert_data(signature: str, types: list[str], values: list[object]) -> bytes:
    return function_signature_to_4byte_selector(signature) + encode(types, values)


def test_a_revert_names_its_error_its_arguments_and_what_to_do() -> None:
    data = _revert_data(
        "NoWithdrawalRequested(address,address)", ["address"] * 2, [PAYER, OPERATOR]
    )
    error = decode_revert(data)
    assert (error.error, error.args_) == ("NoWithdrawalRequested", (PAYER, OPERATOR))
    assert str(error) == (
        f"reverted with NoWithdrawalRequested(payer={PAYER}, operator={OPERATOR}): "
        "request a withdrawal first (zkmeter escrow request-withdrawal)"
    )
    assert "\n" not in str(error)


def test_an_unknown_revert_keeps_its_data() -> None:
    """Twin: a selector no artefact declares is shown as raw data, not guessed at."""
    error = decode_revert("0xdeadbeef" + "00" * 32)
    assert error.error == ""
    assert str(error) == f"reverted without a known error (0xdeadbeef{'00' * 32})"
    assert str(decode_revert(None)) == "reverted without a known error (0x)"


def test_node_replies_are_classified() -> None:
    anvil = Web3RPCError(
        "{'code': -32003, 'message': 'Insufficient funds for gas * price + value'}",
        rpc_response={
            "jsonrpc": "2.0",
            "id": 1,
            "error": {"code": -32003, "message": "Insufficient funds for gas * price + value"},
        },
    )
    assert rpc_message(anvil) == "Insufficient funds for gas * price + value"
    assert isinstance(chain_error_of(anvil), InsufficientFundsError)
    geth = Web3RPCError("insufficient funds for gas * price + value: address 0x01 have 0 want 7")
    assert str(chain_error_of(geth)) == (
        "the sending account cannot pay for gas; send it some ETH first"
    )
    other = Web3RPCError("nonce too low")
    error = chain_error_of(other)
    assert isinstance(error, NodeRequestError) and "nonce too low" in str(error)


def test_transport_failures_are_an_unreachable_node() -> None:
    refused = requests.exceptions.ConnectionError("[Errno 111] Connection refused")
    error = chain_error_of(refused, "http://127.0.0.1:9")
    assert isinstance(error, NodeUnreachableError)
    assert str(error) == (
        "cannot reach the node at http://127.0.0.1:9 (connection refused): is it running? "
        "Check --rpc-url or ZKMETER_RPC_URL"
    )
    timeout = chain_error_of(requests.exceptions.ReadTimeout("read timed out"), "http://n")
    assert isinstance(timeout, NodeUnreachableError) and "timed out" in str(timeout)
    empty = chain_error_of(BadFunctionCallOutput("could not decode"))
    assert empty is not None and "no contract at that address" in str(empty)


def test_other_exceptions_are_not_chain_errors() -> None:
    """Twin: a bug (ValueError, KeyError, a file error) is not turned into a chain sentence."""
    for exc in (ValueError("bug"), KeyError("x"), FileNotFoundError("f"), ZeroDivisionError()):
        assert chain_error_of(exc) is None
    revert = ContractRevertError("StillThawing", (5,), "", ("readyAt",))
    assert chain_error_of(revert) is revert


def test_insufficient_funds_sentence() -> None:
    error = InsufficientFundsError(PAYER, 0, 363_532_701_600_000)
    assert str(error) == (
        f"account {PAYER} cannot pay for gas: it holds 0 ETH and this transaction may cost up "
        "to 0.0003635327016 ETH; send it some ETH first"
    )
    assert ether(10**18) == "1" and ether(1) == "0.000000000000000001" and ether(0) == "0"


def test_connect_to_nothing_is_one_sentence() -> None:
    with pytest.raises(NodeUnreachableError, match=r"^cannot reach the node at http://127\.0\.0"):
        ChainClient.connect("http://127.0.0.1:9")
    with pytest.raises(NodeUnreachableError, match="not a valid http"):
        ChainClient.connect("127.0.0.1:8545")


def test_a_web_server_that_is_not_a_node_is_one_sentence() -> None:
    """An --rpc-url pointing at some other HTTP server (the daemon, a web page)."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<html>not a node</html>")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        with pytest.raises(NodeUnreachableError) as caught:
            ChainClient.connect(url)
        assert str(caught.value).startswith(
            f"cannot reach the node at {url} (the reply is not JSON-RPC): is it running?"
        )
    finally:
        server.shutdown()
