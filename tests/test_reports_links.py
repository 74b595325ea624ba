"""Signed report links: valid until exp, bound to one report id and one key."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from reports.links import KEY_DERIVATION_CONTEXT, LinkSigner, derive_key, signature
from triage.settings import ApiSettings

NOW = 1_780_000_000.0


@dataclass
class _Settings:
    api: ApiSettings


def _signer(**api: object) -> LinkSigner:
    base: dict[str, object] = {"api_token": "tok", "public_url": "https://triage.lan/", "link_ttl_s": 3600}
    return LinkSigner.from_settings(_Settings(ApiSettings(**{**base, **api})))


def _parts(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    return parts.path, query["exp"][0], query["sig"][0]


def test_link_is_public_url_report_path_exp_and_hmac_signature() -> None:
    signer = _signer()
    path, exp, sig = _parts(signer.report_url("abc123", now=NOW))
    assert signer.report_url("abc123", now=NOW).startswith("https://triage.lan/reports/abc123?")
    assert path == "/reports/abc123"
    assert int(exp) == int(NOW) + 3600
    key = hmac.new(b"tok", KEY_DERIVATION_CONTEXT, hashlib.sha256).digest()
    assert sig == hmac.new(key, f"abc123:{exp}".encode(), hashlib.sha256).hexdigest()


def test_valid_link_verifies_until_it_expires() -> None:
    signer = _signer()
    _, exp, sig = _parts(signer.report_url("abc123", now=NOW))
    assert signer.verify("abc123", exp, sig, now=NOW + 3599)
    assert signer.verify("abc123", exp, sig.upper(), now=NOW)
    assert not signer.verify("abc123", exp, sig, now=NOW + 3601)


def test_tampered_links_do_not_verify() -> None:
    signer = _signer()
    _, exp, sig = _parts(signer.report_url("abc123", now=NOW))
    assert not signer.verify("abc124", exp, sig, now=NOW)
    assert not signer.verify("abc123", str(int(exp) + 1), sig, now=NOW)
    assert not signer.verify("abc123", exp, sig[:-2], now=NOW)
    assert not signer.verify("abc123", exp, "", now=NOW)
    assert not signer.verify("abc123", "-1", sig, now=NOW)
    assert not signer.verify("abc123", exp, sig + "00", now=NOW)


def test_rotating_the_token_revokes_links_and_an_explicit_key_takes_precedence() -> None:
    _, exp, sig = _parts(_signer().report_url("r1", now=NOW))
    assert not _signer(api_token="rotated").verify("r1", exp, sig, now=NOW)

    keyed = _signer(link_signing_key="k" * 32)
    _, kexp, ksig = _parts(keyed.report_url("r1", now=NOW))
    assert ksig == signature(b"k" * 32, "r1", int(kexp))
    assert _signer(api_token="rotated", link_signing_key="k" * 32).verify("r1", kexp, ksig, now=NOW)


def test_without_token_or_key_no_link_is_signed_or_accepted() -> None:
    signer = _signer(api_token=None)
    assert derive_key(_Settings(ApiSettings(api_token=None)).api) is None
    assert signer.report_url("r1", now=NOW) == "https://triage.lan/reports/r1"
    assert not signer.verify("r1", str(int(NOW) + 10), "00" * 32, now=NOW)


def test_link_never_contains_the_api_token() -> None:
    assert "tok" not in _signer(api_token="tok").report_url("r1", now=NOW).replace("https://triage.lan", "")
