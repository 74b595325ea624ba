"""Values that enter a URL path (UIDs, node and datastore names) can never walk the API: one helper, property-tested,
and Grafana UIDs checked against Grafana's own alphabet before any request."""

from __future__ import annotations

from posixpath import normpath
from urllib.parse import unquote

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fakes import raw_path
from tests.fakes.grafana import FakeGrafana
from tools.errors import SourceRequestError
from tools.grafana import PROVISIONING_RULES, is_grafana_uid
from tools.proxmox_api import segment

BASE = "/api/v1/provisioning/alert-rules"
# text biased towards what walks a path: dots, slashes, percent signs, query and fragment characters
path_text = st.text(alphabet="./\\%?#&=:@ab2E5Cf", max_size=12) | st.text(max_size=20)


@given(value=path_text)
def test_a_segment_stays_one_segment_under_the_base_path(value: str) -> None:
    try:
        encoded = segment(value)
    except SourceRequestError:
        # refused: an empty or dot-segment part once a server decodes %2F
        assert any(p in ("", ".", "..") for p in value.replace("\\", "/").split("/"))
        return
    assert "/" not in encoded and "?" not in encoded and "#" not in encoded
    assert unquote(encoded) == value  # nothing lost: the server sees the value
    url = httpx.URL(f"http://grafana.lan{BASE}/{encoded}")
    # neither the client nor a server that decodes before cleaning the path leaves the base path
    assert url.path.startswith(BASE + "/")
    assert normpath(unquote(url.raw_path.decode())).startswith(BASE + "/")


@pytest.mark.parametrize("value", ["..", ".", "", "a/..", "../x", "..\\x", "x/./y", "/", "a//b", "a/"])
def test_dot_segments_and_empty_values_are_refused(value: str) -> None:
    with pytest.raises(SourceRequestError):
        segment(value)


@given(uid=st.text(max_size=45))
def test_a_grafana_uid_has_grafana_s_alphabet(uid: str) -> None:
    expected = 0 < len(uid) <= 40 and all(c.isascii() and (c.isalnum() or c in "-_") for c in uid)
    assert is_grafana_uid(uid) is expected


@pytest.mark.parametrize("uid", ["..", ".", "../..", "a/../b", "x?y", "%2e%2e", "á", "a" * 41])
async def test_a_rule_uid_that_is_no_uid_sends_no_request(uid: str) -> None:
    grafana = FakeGrafana()
    grafana.add_rule("disk-full", "DiskAlmostFull", expr="up == 0")
    async with grafana.client() as client:
        assert await client.alert_rule(uid) is None
        assert await client.dashboard(uid) is None
        assert await client.alert_rule("disk-full") is not None
    assert [raw_path(r) for r in grafana.requests] == [f"{PROVISIONING_RULES}/disk-full"]
