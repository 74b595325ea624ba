"""Error mapping and retries of the shared HTTP base (tools/http.py): what every data-source client inherits."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterator
from typing import Any

import certifi
import httpx
import pytest
import respx

from tests.support.procs import free_port
from tools import errors
from tools.http import HTTPX_ERRORS, SourceClient, map_transport_error, tls_verify
from tools.prometheus import PrometheusClient

TOKEN = "s3cr3t-token-0123456789"
BASE = "http://source.test"


class Client(SourceClient):
    source = "testsource"


def make_client(transport: httpx.AsyncBaseTransport | None = None, **kwargs: Any) -> Client:
    kwargs.setdefault("headers", {"Authorization": f"Bearer {TOKEN}"})
    kwargs.setdefault("backoff_s", 0.0)
    return Client(kwargs.pop("base_url", BASE), transport=transport, **kwargs)


@pytest.fixture
def delays(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The back-off sleeps the client asks for, recorded instead of slept."""
    recorded: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    return recorded


def all_subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from all_subclasses(sub)


def test_every_httpx_error_class_is_mapped_deliberately() -> None:
    httpx_classes = {c for c in all_subclasses(httpx.HTTPError) if c.__module__.startswith("httpx")}
    unmapped = sorted(c.__name__ for c in httpx_classes if c not in HTTPX_ERRORS)
    assert not unmapped, f"map these httpx errors in tools.http.HTTPX_ERRORS: {unmapped}"


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (httpx.ConnectTimeout("t"), errors.SourceTimeout),
        (httpx.ReadTimeout("t"), errors.SourceTimeout),
        (httpx.PoolTimeout("t"), errors.SourceTimeout),
        (httpx.ConnectError("[Errno 111] Connection refused"), errors.SourceConnectError),
        (httpx.ReadError("reset"), errors.SourceConnectError),
        (httpx.RemoteProtocolError("Server disconnected"), errors.SourceConnectError),
        (httpx.DecodingError("bad gzip"), errors.SourceMalformedResponse),
        (httpx.TooManyRedirects("loop"), errors.SourceRequestError),
        (httpx.UnsupportedProtocol("ftp"), errors.SourceRequestError),
        (httpx.LocalProtocolError("bad header"), errors.SourceRequestError),
    ],
)
def test_httpx_errors_map_to_their_own_class(exc: httpx.HTTPError, expected: type[errors.SourceError]) -> None:
    error = map_transport_error(exc, source="testsource", url=BASE + "/x")
    assert type(error) is expected
    assert str(error).startswith("testsource: ")
    assert str(error).endswith(f"({BASE}/x)")


def test_only_unavailability_is_transient() -> None:
    assert map_transport_error(httpx.ConnectTimeout("t"), source="s", url="u").transient
    assert map_transport_error(httpx.ConnectError("refused"), source="s", url="u").transient
    assert not map_transport_error(httpx.TooManyRedirects("loop"), source="s", url="u").transient
    assert not map_transport_error(httpx.DecodingError("x"), source="s", url="u").transient


async def test_connection_refused_is_a_connect_error_naming_source_and_url() -> None:
    port = free_port()
    async with make_client(base_url=f"http://127.0.0.1:{port}", retries=0) as client:
        with pytest.raises(errors.SourceConnectError) as caught:
            await client.get_json("/api/v1/query")
    assert type(caught.value) is errors.SourceConnectError
    assert f"127.0.0.1:{port}/api/v1/query" in str(caught.value)
    assert TOKEN not in str(caught.value)


async def test_dns_failure_is_its_own_error() -> None:
    async with make_client(base_url="http://no-such-host.invalid", retries=0) as client:
        with pytest.raises(errors.SourceDNSError) as caught:
            await client.get_json("/ready")
    assert "does not resolve" in str(caught.value)
    assert "no-such-host.invalid" in str(caught.value)


async def test_tls_failure_is_not_retried() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        try:
            raise ssl.SSLCertVerificationError("certificate verify failed: self-signed certificate")
        except ssl.SSLError as exc:
            raise httpx.ConnectError("certificate verify failed", request=request) from exc

    async with make_client(httpx.MockTransport(handler), retries=3) as client:
        with pytest.raises(errors.SourceConnectError, match="TLS handshake failed"):
            await client.get_json("/x")
        assert client.stats.retries == 0


async def test_read_timeout_against_a_silent_server_is_a_timeout() -> None:
    # a socket that accepts connections (kernel backlog) but never answers
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        async with make_client(base_url=f"http://127.0.0.1:{port}", retries=1, timeout_s=0.2) as client:
            with pytest.raises(errors.SourceTimeout, match="timed out"):
                await client.get_json("/slow")
            assert client.stats.retries == 1


@respx.mock(base_url=BASE)
async def test_http_status_carries_a_bounded_body_excerpt(respx_mock: respx.MockRouter) -> None:
    respx_mock.get("/big").respond(400, text="x" * 50_000)
    async with make_client(retries=3) as client:
        with pytest.raises(errors.SourceHTTPError) as caught:
            await client.get_json("/big")
    assert caught.value.status_code == 400
    assert len(caught.value.body_excerpt) <= 300
    assert len(str(caught.value)) < 500
    assert respx_mock.calls.call_count == 1


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, errors.SourceAuthError),
        (403, errors.SourceAuthError),
        (404, errors.SourceNotFound),
        (429, errors.SourceRateLimited),
        (500, errors.SourceServerError),
        (503, errors.SourceServerError),
        (418, errors.SourceHTTPError),
    ],
)
@respx.mock(base_url=BASE)
async def test_each_status_maps_to_its_error(
    status: int, expected: type[errors.SourceError], respx_mock: respx.MockRouter
) -> None:
    respx_mock.get("/s").respond(status, text="nope")
    async with make_client(retries=0) as client:
        with pytest.raises(expected) as caught:
            await client.get_json("/s")
    assert type(caught.value) is expected


@respx.mock(base_url=BASE)
async def test_the_token_never_appears_in_errors_even_when_the_body_echoes_it(respx_mock: respx.MockRouter) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, text=f"bad request, you sent {request.headers['authorization']}")

    respx_mock.get("/echo").mock(side_effect=echo)
    async with make_client(retries=0) as client:
        with pytest.raises(errors.SourceHTTPError) as caught:
            await client.get_json("/echo")
    assert TOKEN not in str(caught.value)
    assert TOKEN not in caught.value.body_excerpt
    assert "***" in caught.value.body_excerpt


@respx.mock(base_url="http://source.test")
async def test_basic_auth_in_the_url_is_never_shown(respx_mock: respx.MockRouter) -> None:
    respx_mock.get("/x").respond(500, text="boom")
    async with make_client(base_url="http://admin:hunter2-pass@source.test", headers={}, retries=0) as client:
        with pytest.raises(errors.SourceServerError) as caught:
            await client.get_json("/x")
    assert "hunter2-pass" not in str(caught.value)
    assert "admin:" not in caught.value.url
    assert caught.value.url == "http://source.test/x"


@respx.mock(base_url=BASE)
async def test_malformed_json_is_its_own_error(respx_mock: respx.MockRouter) -> None:
    respx_mock.get("/j").respond(200, text="<html>proxy login</html>")
    async with make_client() as client:
        with pytest.raises(errors.SourceMalformedResponse) as caught:
            await client.get_json("/j")
    assert f"{BASE}/j" in str(caught.value)
    assert client.stats.retries == 0


@respx.mock(base_url=BASE)
async def test_upstream_status_error_is_a_query_error_not_an_http_error(respx_mock: respx.MockRouter) -> None:
    body = {"status": "error", "errorType": "bad_data", "error": 'invalid parameter "query": parse error'}
    respx_mock.post("/api/v1/query").respond(400, json=body)
    async with PrometheusClient(BASE, token=TOKEN, backoff_s=0) as client:
        with pytest.raises(errors.SourceQueryError, match="bad_data: invalid parameter") as caught:
            await client.query("up{")
    assert not isinstance(caught.value, errors.SourceHTTPError)
    assert client.stats.retries == 0


@pytest.mark.parametrize("status", [502, 503, 504, 429])
@respx.mock(base_url=BASE)
async def test_transient_statuses_are_retried_then_succeed(status: int, respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get("/flaky")
    route.side_effect = [httpx.Response(status), httpx.Response(status), httpx.Response(200, json={"ok": True})]
    async with make_client(retries=2) as client:
        assert await client.get_json("/flaky") == {"ok": True}
        assert client.stats.retries == 2
    assert route.call_count == 3


@pytest.mark.parametrize("status", [400, 401, 404, 500, 501])
@respx.mock(base_url=BASE)
async def test_permanent_statuses_are_not_retried(status: int, respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get("/broken").respond(status)
    async with make_client(retries=5) as client:
        with pytest.raises(errors.SourceHTTPError):
            await client.get_json("/broken")
        assert client.stats.retries == 0
    assert route.call_count == 1


@respx.mock(base_url=BASE)
async def test_retries_are_bounded(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get("/down").mock(side_effect=httpx.ConnectError("refused"))
    async with make_client(retries=3) as client:
        with pytest.raises(errors.SourceConnectError):
            await client.get_json("/down")
        assert client.stats.retries == 3
    assert route.call_count == 4


@respx.mock(base_url=BASE)
async def test_backoff_grows_exponentially_with_jitter(respx_mock: respx.MockRouter, delays: list[float]) -> None:
    respx_mock.get("/down").respond(503)
    async with make_client(retries=4, backoff_s=1.0) as client:
        with pytest.raises(errors.SourceServerError):
            await client.get_json("/down")
    assert len(delays) == 4
    for attempt, delay in enumerate(delays):
        base = 2**attempt
        assert 0.5 * base <= delay <= 1.5 * base


@respx.mock(base_url=BASE)
async def test_retry_after_is_honoured_but_capped(respx_mock: respx.MockRouter, delays: list[float]) -> None:
    respx_mock.get("/busy").side_effect = [
        httpx.Response(429, headers={"Retry-After": "2"}),
        httpx.Response(429, headers={"Retry-After": "3600"}),
        httpx.Response(200, json=[]),
    ]
    async with make_client(retries=2, backoff_s=0.0) as client:
        assert await client.get_json("/busy") == []
    assert delays == [2.0, 5.0]


@respx.mock(base_url=BASE)
async def test_stats_count_requests_and_bytes(respx_mock: respx.MockRouter) -> None:
    body = '"' + "x" * 998 + '"'  # 1000 bytes of JSON
    respx_mock.get("/a").respond(200, text=body)
    async with make_client() as client:
        await client.get_json("/a")
        await client.get_json("/a")
        assert client.stats.requests == 2
        assert client.stats.by_path == {"/a": 2}
        assert client.stats.bytes_received == 2000
        assert client.stats.bytes_sent > 0


def test_tls_verification_is_on_by_default_and_takes_a_ca_file() -> None:
    assert tls_verify(True, None) is True
    context = tls_verify(True, certifi.where())
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert tls_verify(False, None) is False


@pytest.mark.parametrize("failure", [httpx.ReadTimeout("slow"), httpx.Response(502), httpx.Response(504)])
@respx.mock(base_url=BASE)
async def test_a_post_that_may_have_been_acted_on_is_not_sent_twice(
    failure: httpx.Response | Exception, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post("/api/annotations").mock(side_effect=[failure, httpx.Response(200, json={"id": 1})])
    async with make_client(retries=3) as client:
        with pytest.raises(errors.SourceUnavailable if isinstance(failure, Exception) else errors.SourceServerError):
            await client.request_json("POST", "/api/annotations", json_body={"text": "report"})
        assert client.stats.retries == 0
    assert route.call_count == 1


@pytest.mark.parametrize("failure", [httpx.ConnectError("refused"), httpx.Response(503), httpx.Response(429)])
@respx.mock(base_url=BASE)
async def test_a_post_the_source_never_acted_on_is_retried(
    failure: httpx.Response | Exception, respx_mock: respx.MockRouter
) -> None:
    route = respx_mock.post("/api/annotations").mock(side_effect=[failure, httpx.Response(200, json={"id": 1})])
    async with make_client(retries=3) as client:
        assert await client.request_json("POST", "/api/annotations", json_body={"text": "report"}) == {"id": 1}
        assert client.stats.retries == 1
    assert route.call_count == 2


@respx.mock(base_url=BASE)
async def test_a_read_only_post_may_be_declared_idempotent(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.post("/api/v1/query").mock(side_effect=[httpx.ReadTimeout("slow"), httpx.Response(200, json=[])])
    async with make_client(retries=3) as client:
        assert await client.request_json("POST", "/api/v1/query", data={"query": "up"}, idempotent=True) == []
    assert route.call_count == 2
