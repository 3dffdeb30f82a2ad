"""Retries only where safe: a query retried after its answer was lost is answered from its first
release (same receipt, charged once); a change that reached the server is never sent again."""

from __future__ import annotations

import socket

import httpx
import pytest
from veil_client import ConnectionFailed, RateLimited, Unavailable, Veil

from tests.client.onboarding import CLAIMS_BY_PLAN, Developer, onboard
from tests.support import Server


class LosingTransport(httpx.HTTPTransport):
    """Real HTTP, except that the first `lose` answers to requests on `path` are lost on the
    way back, after the server handled them, as when a connection drops."""

    def __init__(self, path: str, lose: int = 1) -> None:
        super().__init__()
        self.path, self.lose = path, lose
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.url.path != self.path:
            return response
        self.sent.append(request)
        if self.lose:
            self.lose -= 1
            response.read()
            response.close()
            raise httpx.ReadError("connection lost", request=request)
        return response


class Counting(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        return super().handle_request(request)


@pytest.fixture(scope="module")
def payer(demo: Server) -> Developer:
    """A developer whose claims queries are paid (the commercial plan)."""
    return onboard(demo, "retry-dev", asset="insurance.claims", purpose="commercial_pricing")


def test_a_query_whose_answer_was_lost_is_charged_once(demo: Server, payer: Developer) -> None:
    lossy = LosingTransport("/v1/queries")
    with Veil(demo.url, payer.key, transport=lossy, backoff=0) as veil:
        result = veil.queries.run(CLAIMS_BY_PLAN, grant_id=payer.grant)
    keys = {request.headers["Idempotency-Key"] for request in lossy.sent}
    assert len(lossy.sent) == 2 and len(keys) == 1  # sent twice, under one key
    assert result.cost.amount_minor > 0
    with Veil(demo.url, payer.key) as veil:
        usage = veil.usage(limit=1000)
        entry = veil.ledger.entries(after=result.receipt.ledger_index - 1, limit=1)[0]
    released = [line for line in usage.items if line.reference == result.query_id]
    assert len(released) == 1 and released[0].ledger_index == result.receipt.ledger_index
    assert sum(line.amount_minor for line in usage.items) == result.cost.amount_minor
    assert entry.leaf_hash == result.receipt.leaf_hash
    assert entry.content()["query_id"] == result.query_id


def test_the_same_key_twice_is_one_receipt_and_one_charge(demo: Server, payer: Developer):
    with Veil(demo.url, payer.key) as veil:
        before = veil.usage(limit=1000)
        first = veil.queries.run(CLAIMS_BY_PLAN, grant_id=payer.grant, idempotency_key="k-1")
        second = veil.queries.run(CLAIMS_BY_PLAN, grant_id=payer.grant, idempotency_key="k-1")
        after = veil.usage(limit=1000)
    assert second.receipt == first.receipt and second.query_id == first.query_id
    assert len(after.items) == len(before.items) + 1
    charged = sum(line.amount_minor for line in after.items)
    assert charged - sum(line.amount_minor for line in before.items) == first.cost.amount_minor


def test_a_change_that_reached_the_server_is_not_sent_again(demo: Server, payer: Developer):
    lossy = LosingTransport("/v1/grants")
    with Veil(demo.url, payer.key, transport=lossy, backoff=0) as veil:
        with pytest.raises(ConnectionFailed) as lost:
            veil.grants.request(
                assets=["insurance.claims"],
                purpose="commercial_pricing",
                scenario="lost answer",
                valid_until="2030-01-01T00:00:00Z",
            )
        assert lost.value.status == 0
        assert len(lossy.sent) == 1
        pending = [g for g in veil.grants.list("pending") if g.scenario == "lost answer"]
    assert len(pending) == 1  # the server made it once; the client did not ask again


def test_requests_that_never_left_are_retried(demo: Server) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"  # bound, never listening
        for change in (False, True):
            counting = Counting()
            veil = Veil(closed, "k", transport=counting, retries=2, backoff=0)
            with veil, pytest.raises(ConnectionFailed):
                if change:
                    veil.grants.approve("g_0000000000000000")
                else:
                    veil.assets.list()
            assert counting.attempts == 3


class Answering(httpx.HTTPTransport):
    """Real HTTP, except that the first request on `path` gets `status` (with `headers`) from
    here instead of the server: answers Veil itself does not give today (429 with Retry-After,
    a proxy's 503)."""

    def __init__(self, path: str, status: int, headers: dict[str, str]) -> None:
        super().__init__()
        self.path, self.status, self.headers = path, status, headers
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != self.path:
            return super().handle_request(request)
        self.sent.append(request)
        if len(self.sent) == 1:
            body = {"error": {"code": "RATE_LIMITED", "message": "slow down", "violations": []}}
            return httpx.Response(self.status, headers=self.headers, json=body)
        return super().handle_request(request)


def test_a_query_waits_out_retry_after_under_the_same_key(demo: Server, payer: Developer):
    told = Answering("/v1/queries", 429, {"Retry-After": "0"})
    with Veil(demo.url, payer.key, transport=told) as veil:
        result = veil.queries.run(CLAIMS_BY_PLAN, grant_id=payer.grant)
    assert len(told.sent) == 2 and result.rows
    assert len({request.headers["Idempotency-Key"] for request in told.sent}) == 1
    untold = Answering("/v1/queries", 429, {})
    with Veil(demo.url, payer.key, transport=untold) as veil, pytest.raises(RateLimited):
        veil.queries.run(CLAIMS_BY_PLAN, grant_id=payer.grant)
    assert len(untold.sent) == 1  # no Retry-After: no retry
    busy = Answering("/v1/assets", 503, {"Retry-After": "0"})
    with Veil(demo.url, payer.key, transport=busy) as veil:
        assert "insurance.claims" in {asset.id for asset in veil.assets.list()}
    assert len(busy.sent) == 2
    refused = Answering(f"/v1/grants/{payer.grant}/approve", 503, {"Retry-After": "0"})
    with Veil(demo.url, payer.key, transport=refused) as veil, pytest.raises(Unavailable):
        veil.grants.approve(payer.grant)
    assert len(refused.sent) == 1  # a change is not sent again once it may have arrived
