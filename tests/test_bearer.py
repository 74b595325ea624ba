"""One bearer check and one challenge: the webhook, the API and the report pages answer a missing or wrong token
with the same WWW-Authenticate header, each with its own status, message and browser behaviour."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.datastructures import Headers

from webhook.app import create_app
from webhook.bearer import BEARER_CHALLENGE, authorization_credentials, bearer_token, secret_equal

CHALLENGE = 'Bearer realm="sre-triage"'


def test_the_challenge() -> None:
    assert BEARER_CHALLENGE == {"WWW-Authenticate": CHALLENGE}


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer   abc  ", "abc"),
        ("Bearer ", None),
        ("Basic abc", None),
        ("", None),
    ],
)
def test_bearer_token(header: str, token: str | None) -> None:
    assert bearer_token({"authorization": header}) == token


def test_every_authorization_header_of_a_scheme_counts() -> None:
    values = (b"Basic dTpw", b"Bearer t1", b"x")
    headers = Headers(raw=[(b"authorization", value) for value in values])
    assert authorization_credentials(headers, "bearer") == ["t1"]
    assert authorization_credentials(headers, "basic") == ["dTpw"]


def test_secret_equal() -> None:
    assert secret_equal("s3cret", "s3cret")
    assert not secret_equal("s3cret", "s3cre")
    assert not secret_equal("", "s3cret")


@pytest.fixture
async def client(make_settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings())
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


@pytest.mark.parametrize(
    ("method", "path", "missing", "wrong"),
    [
        ("POST", "/webhook/grafana", "missing bearer token (Authorization: Bearer …)", "invalid bearer token"),
        ("GET", "/digest.json", "missing bearer token (Authorization: Bearer $API_TOKEN)", "invalid bearer token"),
        ("GET", "/ask/reports", "log in at /login or send a bearer token", "invalid bearer token"),
    ],
)
async def test_a_missing_or_wrong_token_is_a_401_with_the_one_challenge(
    client: httpx.AsyncClient, method: str, path: str, missing: str, wrong: str
) -> None:
    for headers, message in (({}, missing), ({"Authorization": "Bearer not-the-token"}, wrong)):
        response = await client.request(method, path, headers={"Content-Type": "application/json", **headers})
        assert response.status_code == 401, (path, response.text)
        assert response.headers["www-authenticate"] == CHALLENGE
        assert response.json()["error"]["message"] == message
