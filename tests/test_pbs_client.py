"""PbsClient against the fake Proxmox Backup Server: datastores, groups, snapshots, tasks, errors, auth."""

from __future__ import annotations

import httpx
import pytest

from tests.fakes.pbs import BASE_URL, FakePbs
from tools.errors import (
    SourceAuthError,
    SourceError,
    SourceNotFound,
    SourceQueryError,
    SourceRequestError,
    SourceServerError,
)
from tools.pbs import PbsClient

T0 = 1_714_557_600
SECRET = "7d2e4f10-pbs-secret"


@pytest.fixture
def pbs() -> FakePbs:
    fake = FakePbs(token_secret=SECRET)
    fake.add_datastore("backup", total=4 << 40, used=3 << 40)
    fake.add_datastore("offsite", error="unable to open chunk store - No such file or directory")
    fake.add_snapshot("backup", "vm", "103", backup_time=T0 - 86_400, size=20 << 30)
    fake.add_snapshot("backup", "vm", "103", backup_time=T0 - 600, size=21 << 30, verify_state="failed")
    fake.add_snapshot("backup", "ct", "101", backup_time=T0 - 3_600, size=2 << 30, verify_state=None, protected=True)
    fake.add_task("backup", "backup:vm/103", starttime=T0 - 600, endtime=T0 - 300, status="OK")
    fake.add_task(
        "backup", "backup:ct/101", starttime=T0 - 3_600, endtime=T0 - 3_500, status="backup failed: connection reset"
    )
    fake.add_task("garbage_collection", "backup", starttime=T0 - 120)
    fake.add_task("verificationjob", "backup:v-1234", starttime=T0 - 200_000, endtime=T0 - 199_000, status="OK")
    fake.add_task("syncjob", "offsite:s-1", starttime=T0 - 1_000, endtime=T0 - 900, status="WARNINGS: 2")
    return fake


async def test_datastore_usage_lists_every_store_and_its_fill_level(pbs: FakePbs) -> None:
    async with pbs.client() as client:
        stores = await client.datastores()
        one = await client.datastore_status("backup")
    by_name = {s.store: s for s in stores}
    assert by_name["backup"].used_ratio == pytest.approx(0.75)
    assert by_name["backup"].estimated_full_date == 1_720_000_000
    assert by_name["offsite"].error is not None and by_name["offsite"].used_ratio is None
    assert (one.store, one.avail) == ("backup", 1 << 40)


async def test_groups_and_snapshots_are_typed_newest_first(pbs: FakePbs) -> None:
    async with pbs.client() as client:
        groups = await client.groups("backup")
        snaps = await client.snapshots("backup", backup_type="vm", backup_id="103")
        everything = await client.snapshots("backup", limit=2)
    vm = next(g for g in groups if g.backup_id == "103")
    assert (vm.backup_type, vm.backup_count, vm.last_backup) == ("vm", 2, T0 - 600)
    assert [(s.backup_time, s.verify_state) for s in snaps] == [(T0 - 600, "failed"), (T0 - 86_400, "ok")]
    assert [s.backup_id for s in everything] == ["103", "101"]
    assert everything[1].protected and everything[1].verify_state is None
    params = pbs.requests[1].url.params
    assert (params["backup-type"], params["backup-id"]) == ("vm", "103")


async def test_tasks_in_a_window_include_running_ones_newest_first(pbs: FakePbs) -> None:
    async with pbs.client() as client:
        tasks = await client.tasks(since_s=T0 - 7_200, until_s=T0)
    assert [t.worker_type for t in tasks] == ["garbage_collection", "backup", "syncjob", "backup"]
    gc, ok, sync, failed = tasks
    assert gc.running and gc.status is None
    assert not ok.failed and not sync.failed and failed.failed
    assert ok.worker_id == "backup:vm/103" and ok.upid.startswith("UPID:pbs:")


async def test_task_filters_are_sent_as_pbs_parameters(pbs: FakePbs) -> None:
    async with pbs.client() as client:
        failed = await client.tasks(since_s=T0 - 7_200, type_filter="backup", store="backup", errors_only=True, limit=5)
    assert [t.worker_id for t in failed] == ["backup:ct/101"]
    params = pbs.requests[0].url.params
    assert (params["typefilter"], params["store"], params["errors"], params["limit"]) == ("backup", "backup", "1", "5")
    assert "running" not in params, "running=1 would hide every finished task"


async def test_unknown_datastore_is_a_query_error_with_pbs_reason(pbs: FakePbs) -> None:
    async with pbs.client() as client:
        with pytest.raises(SourceQueryError, match="no such datastore 'nope'"):
            await client.groups("nope")
    assert pbs.request_count == 1


async def test_datastore_name_cannot_escape_its_path_segment(pbs: FakePbs) -> None:
    async with pbs.client() as client:
        with pytest.raises(SourceRequestError):
            await client.groups("../../nodes/localhost/tasks?x=")
        with pytest.raises(SourceQueryError):
            await client.groups("x/y?z=")
    # the dot-segments never left the process; a slash inside a name stays encoded in its segment
    assert [r.url.raw_path.decode() for r in pbs.requests] == ["/api2/json/admin/datastore/x%2Fy%3Fz%3D/groups"]


async def test_unknown_path_is_a_404(pbs: FakePbs) -> None:
    async with pbs.client() as client:
        with pytest.raises(SourceNotFound):
            await client.data("/no/such/path")


@pytest.mark.parametrize(
    "header",
    [
        f"PBSAPIToken=triage@pbs!ro={SECRET}",  # PVE style separator
        f"PVEAPIToken=triage@pbs!ro:{SECRET}",
        f"PBSAPIToken=triage@pbs!ro:{SECRET}0",
        f"PBSAPIToken=triage@pbs!other:{SECRET}",
        "",
    ],
)
async def test_fake_rejects_every_malformed_or_wrong_token_with_401(pbs: FakePbs, header: str) -> None:
    async with httpx.AsyncClient(transport=pbs.transport()) as raw:
        response = await raw.get(f"{BASE_URL}/api2/json/version", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.text.startswith("authentication failed")


async def test_wrong_secret_is_an_auth_error_that_never_shows_the_secret(pbs: FakePbs) -> None:
    async with pbs.client(token_secret="cafebabe-wrong-secret") as client:
        with pytest.raises(SourceAuthError) as caught:
            await client.datastores()
    error = caught.value
    assert error.source == "pbs"
    for text in (str(error), repr(error), error.body_excerpt, error.url):
        assert "cafebabe-wrong-secret" not in text


async def test_gateway_errors_are_retried_a_bounded_number_of_times(pbs: FakePbs) -> None:
    pbs.fail_next(2, status=502)
    async with pbs.client(retries=2) as client:
        assert len(await client.datastores()) == 2
        assert client.stats.retries == 2
    pbs.fail_next(5, status=504)
    async with pbs.client(retries=2) as client:
        with pytest.raises(SourceServerError):
            await client.datastores()
    assert pbs.request_count == 3 + 3


async def test_secret_echoed_in_a_plain_text_error_is_redacted() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, text=f"parameter verification failed - token {SECRET} is weird")

    async with PbsClient(
        BASE_URL, token_id="a@pbs!b", token_secret=SECRET, transport=httpx.MockTransport(handler)
    ) as client:
        with pytest.raises(SourceError) as caught:
            await client.datastores()
    assert SECRET not in str(caught.value)


async def test_sends_the_pbs_token_header(pbs: FakePbs) -> None:
    async with pbs.client() as client:
        await client.version()
    assert pbs.requests[0].headers["authorization"] == f"PBSAPIToken=triage@pbs!ro:{SECRET}"
