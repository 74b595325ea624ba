"""ProxmoxClient against the fake PVE cluster: finding the guest behind an alert, status, tasks, errors, auth."""

from __future__ import annotations

import re
from urllib.parse import unquote

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fakes.proxmox import BASE_URL, FakeProxmox
from tools.errors import (
    SourceAuthError,
    SourceError,
    SourceMalformedResponse,
    SourceNotFound,
    SourceQueryError,
    SourceRequestError,
    SourceServerError,
    SourceTimeout,
)
from tools.proxmox import ProxmoxClient
from tools.proxmox_api import segment
from tools.proxmox_models import host_names, split_instance

T0 = 1_714_557_600
SECRET = "5f1c0b9e-pve-secret"


@pytest.fixture
def pve() -> FakeProxmox:
    fake = FakeProxmox(token_secret=SECRET)
    fake.add_node("pve1")
    fake.add_node("pve2")
    fake.add_node("pve3", online=False)
    fake.add_guest(100, "tmpl-debian", node="pve1", template=True, status="stopped")
    fake.add_guest(101, "jellyfin", node="pve2", kind="lxc", ips=["10.0.0.12"], static_ips=["10.0.0.12"])
    fake.add_guest(102, "Grafana", node="pve1", kind="qemu", ips=["10.0.0.20", "fd00::20"])
    fake.add_guest(103, "nextcloud", node="pve2", kind="qemu", ips=["10.0.0.30"], static_ips=["10.0.0.30"])
    fake.add_guest(104, "pihole", node="pve1", kind="lxc", ips=["10.0.0.53"])
    fake.add_guest(105, "old-vm", node="pve2", kind="qemu", status="stopped", ips=["10.0.0.99"])
    fake.add_guest(106, "legacy", node="pve1", kind="qemu", agent=False, static_ips=["10.0.0.80"])
    return fake


@pytest.mark.parametrize(
    ("query", "vmid", "matched_by"),
    [
        (101, 101, "vmid"),
        ("103", 103, "vmid"),
        ("jellyfin", 101, "name"),
        ("jellyfin:9100", 101, "name"),
        ("JELLYFIN.lan", 101, "name"),
        ("grafana.home.arpa:3000", 102, "name"),
        ("10.0.0.12:9100", 101, "live-ip"),
        ("10.0.0.30", 103, "live-ip"),
        ("10.0.0.80:9100", 106, "config-ip"),
        ("10.0.0.20:9100", 102, "live-ip"),
        ("[fd00::20]:9100", 102, "live-ip"),
        ("10.0.0.53:9617", 104, "live-ip"),
    ],
)
async def test_guest_is_found_by_vmid_name_or_instance_label_on_any_node(
    pve: FakeProxmox, query: str | int, vmid: int, matched_by: str
) -> None:
    async with pve.client() as client:
        match = await client.find_guest(query)
    assert match is not None
    assert (match.guest.vmid, match.matched_by) == (vmid, matched_by)
    assert match.guest.node == pve.guests[vmid]["node"]


async def test_a_running_guest_wins_over_a_stopped_one_of_the_same_name(pve: FakeProxmox) -> None:
    pve.add_guest(99_100, "pihole", node="pve2", kind="lxc", status="stopped")
    pve.guests = dict(sorted(pve.guests.items(), key=lambda kv: -kv[0]))
    async with pve.client() as client:
        match = await client.find_guest("pihole:9617")
    assert match is not None and match.guest.vmid == 104


@pytest.mark.parametrize("query", ["10.0.0.250:9100", "unknown-host:9100", "999", "tmpl-debian", "10.0.0.99"])
async def test_unknown_templates_and_stopped_guests_are_not_matched(pve: FakeProxmox, query: str) -> None:
    async with pve.client() as client:
        assert await client.find_guest(query) is None


@pytest.mark.parametrize("query", ['x"} or vector(1)', "../../nodes", "a b", "", "host\nname"])
async def test_hostile_instance_labels_match_nothing_and_send_no_lookups(pve: FakeProxmox, query: str) -> None:
    async with pve.client() as client:
        assert await client.find_guest(query) is None
    assert pve.paths() == ["/api2/json/cluster/resources"]


async def test_ip_lookup_stops_after_its_request_budget() -> None:
    pve = FakeProxmox()
    for vmid in range(200, 260):
        pve.add_guest(vmid, f"guest{vmid}", node=f"pve{vmid % 3}", ips=[f"10.1.{vmid // 256}.{vmid % 256}"])
    async with pve.client(max_lookups=10) as client:
        assert await client.find_guest("10.9.9.9:9100") is None
        assert client.stats.requests == 1 + 10
    async with pve.client(max_lookups=200) as client:
        match = await client.find_guest("10.1.0.250")
        assert match is not None and match.guest.vmid == 250


async def test_addresses_seen_once_resolve_without_lookups_until_the_cache_expires(pve: FakeProxmox) -> None:
    async with pve.client(resources_ttl_s=0) as client:
        first = await client.find_guest("10.0.0.30:9100")
        before = pve.request_count
        again = await client.find_guest("10.0.0.30:9100")
        neighbour = await client.find_guest("10.0.0.12")
        assert pve.request_count - before == 2, "one cluster/resources request per look-up, no per-guest requests"
        client.ip_cache_ttl_s = 0
        client._ip_cache.clear()
        await client.find_guest("10.0.0.30")
        assert pve.request_count - before > 3
    assert first is not None and again is not None and neighbour is not None
    assert (first.matched_by, again.matched_by, again.guest.vmid) == ("live-ip", "cached-ip", 103)
    assert (neighbour.guest.vmid, neighbour.matched_by) == (101, "cached-ip")


async def test_cached_address_of_a_deleted_guest_is_not_returned_once_the_listing_is_renewed(
    pve: FakeProxmox,
) -> None:
    async with pve.client(resources_ttl_s=0) as client:
        assert await client.find_guest("10.0.0.30") is not None
        del pve.guests[103]
        assert await client.find_guest("10.0.0.30") is None


async def test_a_guest_agent_that_is_not_running_does_not_stop_the_search(pve: FakeProxmox) -> None:
    pve.add_guest(108, "no-agent", node="pve1", ips=["10.0.0.66"], agent=False)
    pve.add_guest(107, "late", node="pve2", ips=["10.0.0.77"])
    async with pve.client() as client:
        match = await client.find_guest("10.0.0.77")
    assert match is not None and match.guest.vmid == 107


async def test_guests_and_nodes_come_from_cluster_resources(pve: FakeProxmox) -> None:
    async with pve.client() as client:
        guests = await client.guests()
        nodes = await client.nodes()
    assert sorted(g.vmid or 0 for g in guests) == [101, 102, 103, 104, 105, 106]
    assert {(n.node, n.status) for n in nodes} == {("pve1", "online"), ("pve2", "online"), ("pve3", "offline")}
    assert pve.paths() == ["/api2/json/cluster/resources"], "one listing serves guests and nodes"
    lxc = next(g for g in guests if g.vmid == 101)
    assert (lxc.kind, lxc.type, lxc.name) == ("lxc", "lxc", "jellyfin")


async def test_guest_status_and_config_are_typed(pve: FakeProxmox) -> None:
    pve.guests[103]["lock"] = "backup"
    async with pve.client() as client:
        status = await client.guest_status("pve2", 103, "qemu")
        config = await client.guest_config("pve2", 103, "qemu")
        ct = await client.guest_config("pve2", 101, "lxc")
    assert (status.status, status.qmpstatus, status.lock, status.maxmem) == ("running", "running", "backup", 4 << 30)
    assert status.memory_ratio == pytest.approx(0.5)
    assert config.ips == ["10.0.0.30"] and config.name == "nextcloud" and config.memory_mb == 4096
    assert ct.ips == ["10.0.0.12"] and ct.name == "jellyfin"


async def test_missing_guest_is_not_found_with_pves_reason(pve: FakeProxmox) -> None:
    async with pve.client() as client:
        with pytest.raises(SourceNotFound) as caught:
            await client.guest_status("pve1", 101, "lxc")
    assert "does not exist" in str(caught.value)
    assert pve.request_count == 1, "a missing guest is not retried"


async def test_node_status_flattens_memory_and_parses_load(pve: FakeProxmox) -> None:
    async with pve.client() as client:
        status = await client.node_status("pve1")
    assert status.loadavg == [0.42, 0.38, 0.35]
    assert (status.memory_total, status.memory_used, status.cpus) == (64 << 30, 8 << 30, 16)


async def test_tasks_in_a_window_cover_every_node_including_running_ones(pve: FakeProxmox) -> None:
    pve.add_task("pve1", "vzdump", vmid=102, starttime=T0 - 600, endtime=T0 - 60, status="OK")
    pve.add_task("pve2", "qmreboot", vmid=103, starttime=T0 - 30, endtime=T0 - 20, status="OK")
    pve.add_task("pve2", "vzmigrate", vmid=101, starttime=T0 - 10)
    pve.add_task("pve1", "aptupdate", starttime=T0 - 90_000, endtime=T0 - 89_000, status="OK")
    pve.add_task(
        "pve2", "qmshutdown", vmid=103, starttime=T0 - 300, endtime=T0 - 290, status="VM quit/powerdown failed"
    )
    async with pve.client() as client:
        tasks = await client.tasks(since_s=T0 - 3600, until_s=T0)
        for_guest = await client.tasks(since_s=T0 - 3600, until_s=T0, vmid=103)
    assert [t.type for t in tasks] == ["vzmigrate", "qmreboot", "qmshutdown", "vzdump"]
    assert tasks[0].running and tasks[0].status is None
    assert tasks[2].failed and not tasks[1].failed
    assert [t.type for t in for_guest] == ["qmreboot", "qmshutdown"]
    # every node has fewer tasks than PVE shares per node, so the cluster-wide list holds them all
    assert [p for p in pve.paths() if p.endswith("/tasks")] == ["/api2/json/cluster/tasks"]


async def test_node_task_filters_are_sent_as_pve_parameters(pve: FakeProxmox) -> None:
    pve.add_task("pve1", "vzdump", vmid=102, starttime=T0 - 100, endtime=T0 - 50, status="job errors")
    pve.add_task("pve1", "vzdump", vmid=102, starttime=T0 - 200, endtime=T0 - 150, status="OK")
    async with pve.client() as client:
        failed = await client.node_tasks("pve1", since_s=T0 - 3600, vmid=102, type_filter="vzdump", errors_only=True)
    assert [t.status for t in failed] == ["job errors"]
    params = pve.requests[0].url.params
    assert (params["errors"], params["typefilter"], params["vmid"], params["since"]) == (
        "1",
        "vzdump",
        "102",
        str(T0 - 3600),
    )


async def test_cluster_tasks_are_filtered_to_the_window(pve: FakeProxmox) -> None:
    pve.add_task("pve1", "vzdump", vmid=102, starttime=T0 - 100, endtime=T0 - 50)
    pve.add_task("pve1", "vzdump", vmid=102, starttime=T0 - 9000, endtime=T0 - 8000)
    async with pve.client() as client:
        tasks = await client.cluster_tasks(since_s=T0 - 3600, until_s=T0)
    assert [t.starttime for t in tasks] == [T0 - 100]
    assert tasks[0].vmid == 102 and tasks[0].upid.startswith("UPID:pve1:")


async def test_rejected_parameter_is_a_query_error_with_pves_reason(pve: FakeProxmox) -> None:
    async with pve.client() as client:
        with pytest.raises(SourceQueryError, match="vmid"):
            await client.guest_status("pve1", 12, "qemu")


async def test_data_null_with_errors_on_http_200_is_a_query_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": None, "errors": {"type": "unknown resource type"}})

    async with ProxmoxClient(
        BASE_URL, token_id="a@pve!b", token_secret=SECRET, transport=httpx.MockTransport(handler)
    ) as client:
        with pytest.raises(SourceQueryError, match="unknown resource type"):
            await client.resources()


async def test_answer_without_envelope_is_malformed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[{"vmid": 100}])

    async with ProxmoxClient(
        BASE_URL, token_id="a@pve!b", token_secret=SECRET, transport=httpx.MockTransport(handler)
    ) as client:
        with pytest.raises(SourceMalformedResponse, match="envelope"):
            await client.resources()


async def test_unknown_path_is_pves_501(pve: FakeProxmox) -> None:
    async with pve.client() as client:
        with pytest.raises(SourceServerError) as caught:
            await client.data("/nodes/pve1/no-such-thing")
    assert caught.value.status_code == 501
    assert pve.request_count == 1


async def test_offline_node_answers_595_and_is_not_retried(pve: FakeProxmox) -> None:
    async with pve.client() as client:
        with pytest.raises(SourceServerError) as caught:
            await client.node_status("pve3")
    assert caught.value.status_code == 595
    assert pve.request_count == 1


@pytest.mark.parametrize(
    "header",
    [
        f"PVEAPIToken=triage@pve!ro:{SECRET}",  # PBS style separator
        f"PBSAPIToken=triage@pve!ro={SECRET}",
        f"PVEAPIToken=triage@pve!ro={SECRET}x",
        f"PVEAPIToken=other@pve!ro={SECRET}",
        f"Bearer {SECRET}",
    ],
)
async def test_fake_rejects_every_malformed_or_wrong_token_with_401(pve: FakeProxmox, header: str) -> None:
    async with httpx.AsyncClient(transport=pve.transport()) as raw:
        response = await raw.get(f"{BASE_URL}/api2/json/version", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json() == {"data": None}


async def test_wrong_secret_is_an_auth_error_that_never_shows_the_secret(pve: FakeProxmox) -> None:
    async with pve.client(token_secret="deadbeef-wrong-secret") as client:
        with pytest.raises(SourceAuthError) as caught:
            await client.version()
    error = caught.value
    for text in (str(error), repr(error), error.body_excerpt, error.url):
        assert "deadbeef-wrong-secret" not in text


async def test_secret_echoed_by_the_upstream_is_redacted() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"data": None, "errors": {"token": f"bad token {SECRET}"}})

    async with ProxmoxClient(
        BASE_URL, token_id="a@pve!b", token_secret=SECRET, transport=httpx.MockTransport(handler)
    ) as client:
        with pytest.raises(SourceError) as caught:
            await client.version()
    assert SECRET not in str(caught.value)
    assert "bad token ***" in str(caught.value)


async def test_base_url_gains_the_api_path_once(pve: FakeProxmox) -> None:
    for base in (BASE_URL, BASE_URL + "/", BASE_URL + "/api2/json"):
        client = ProxmoxClient(base, token_id=pve.token_id, token_secret=SECRET, transport=pve.transport())
        async with client:
            assert (await client.version())["release"] == "8.2"
    assert set(pve.paths()) == {"/api2/json/version"}


async def test_read_timeouts_are_retried_then_reported_as_timeouts(pve: FakeProxmox) -> None:
    pve.fail_next(3, exception=httpx.ReadTimeout("timed out"))
    async with pve.client(retries=2) as client:
        with pytest.raises(SourceTimeout):
            await client.nodes()
        assert client.stats.retries == 2
    assert pve.request_count == 3


async def test_resources_of_the_wrong_shape_are_malformed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": {"qemu/100": {"vmid": 100}}})

    transport = httpx.MockTransport(handler)
    async with ProxmoxClient(BASE_URL, token_id="a@pve!b", token_secret=SECRET, transport=transport) as client:
        with pytest.raises(SourceMalformedResponse, match="expected a list"):
            await client.guests()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_instance_label_yields_only_plain_host_names(text: str) -> None:
    host, is_address = split_instance(text)
    for name in host_names(host):
        assert re.fullmatch(r"[a-z0-9._-]+", name), name
    if is_address:
        assert host_names(host) <= {host.lower(), host.lower().split(".", 1)[0]}


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_path_value_stays_one_url_segment(value: str) -> None:
    try:
        quoted = segment(value)
    except SourceRequestError:
        # refused before any request: an empty or dot-segment part between slashes
        assert any(part in ("", ".", "..") for part in re.split(r"[/\\]", value))
        return
    assert "/" not in quoted and "?" not in quoted and "#" not in quoted
    assert unquote(quoted) == value


async def test_cluster_proxy_error_596_is_retried(pve: FakeProxmox) -> None:
    pve.fail_next(1, status=596, body='{"data":null,"message":"Connection timed out\\n"}')
    async with pve.client(retries=1) as client:
        assert (await client.node_status("pve2")).cpus == 16
    assert pve.request_count == 2
