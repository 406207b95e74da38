"""Results through the running server: documents on close, the retake wait, signatures."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from engine.client import ClientError, sign_in
from tests.e2e.conftest import Running
from tests.e2e.harness import EXAM_TEMPLATE, read_staff


def results_verify(paths: list[Path], data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "results",
            "verify",
            *map(str, paths),
            "--data",
            str(data_dir),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


async def test_a_closed_kz_sitting_gets_a_signed_certificate(running: Running) -> None:
    client, _ = await running.candidate()
    await client.start("ru")
    closed = await client.submit()
    assert closed.result is not None and closed.result["outcome"] == "fail"
    assert "valid_through" in closed.result or "retake_from" in closed.result
    folder = running.config.data_dir / "documents" / "t-exam"
    issued = sorted(path for path in folder.rglob("*") if path.is_file())
    assert issued, "the scheme's certificate was written when the sitting closed"
    checked = [path for path in issued if path.suffix in (".html", ".csv")]
    result = await asyncio.to_thread(results_verify, checked, running.config.data_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    checked[0].write_text(checked[0].read_text(encoding="utf-8") + " ", encoding="utf-8")
    tampered = await asyncio.to_thread(results_verify, checked[:1], running.config.data_dir)
    assert tampered.returncode == 1


async def test_a_failed_candidate_is_refused_a_new_sitting_for_a_month(
    start_server: Callable[..., Awaitable[Running]], catalog: tuple[Path, Path]
) -> None:
    first = await start_server()
    client, _ = await first.candidate()
    candidate_id = client.view.welcome.sitting.split("/")[1]  # type: ignore[union-attr]
    failed = first.hall.exams["t-exam"].candidates[candidate_id]
    await client.start("kk")
    assert (await client.submit()).result["outcome"] == "fail"  # type: ignore[index]
    await first.server.close()

    _, exams = catalog
    (exams / "again.csv").write_text(
        "id,full_name,site,office,document\n"
        f"again-1,{failed.full_name},site-a,,{failed.document}\n",
        encoding="utf-8",
    )
    (exams / "t-again.toml").write_text(
        EXAM_TEMPLATE.format(exam_id="t-again", time="minutes = 90", candidates=1).replace(
            "generate = 1", 'file = "again.csv"'
        ),
        encoding="utf-8",
    )
    second = await start_server()
    ((_, code),) = second.codes("t-again").rows
    with pytest.raises(ClientError) as refused:
        await sign_in(second.url, code)
    assert refused.value.code == "not_admitted"
    assert "retake" in refused.value.message or "month" in refused.value.message
    with pytest.raises(ClientError) as again:
        await sign_in(second.url, code)
    assert again.value.code == "not_admitted", "a refusal leaves the access code unused"
    assert await second.hall.store.unused_codes("t-again") == {"again-1"}


async def test_the_candidate_acknowledges_and_a_proctor_countersigns(running: Running) -> None:
    client, _ = await running.candidate()
    await client.start("kk")
    await client.submit()
    async with aiohttp.ClientSession() as session:
        ack_url = f"{running.url}/api/v1/results/main/acknowledge"
        headers = {"Authorization": f"Bearer {client.token}"}
        async with session.post(ack_url, json={"seen_at": 1.0}, headers=headers) as reply:
            assert reply.status == 200, await reply.text()
            acknowledged = await reply.json()
        assert acknowledged["role"] == "candidate" and acknowledged["signature"]
        async with session.post(ack_url, json={}, headers={"Authorization": "Bearer nope"}) as bad:
            assert bad.status == 401
        sitting = client.view.welcome.sitting  # type: ignore[union-attr]
        assert sitting.startswith("t-exam/")
        passwords = read_staff(running.config.data_dir, "t-proctored")
        async with session.post(
            f"{running.url}/api/v1/staff/signin",
            json={"login": "admin", "password": passwords["admin"]},
        ) as reply:
            staff_token = (await reply.json())["token"]
        async with session.post(
            f"{running.url}/api/v1/results/countersign",
            json={"sitting": sitting},
            headers={"Authorization": f"Bearer {staff_token}"},
        ) as reply:
            assert reply.status == 403, "an admin of another exam cannot sign this one"


async def test_a_kz_result_needs_no_member_countersignature(running: Running) -> None:
    """UA-9 countersignatures are a UA rule; the KZ scheme refuses one with its reason."""
    from engine.client import ProctorClient, staff_sign_in_sync
    from tests.e2e.test_proctoring import admitted, candidate_at

    passwords = read_staff(running.config.data_dir, "t-proctored")
    signed = await asyncio.to_thread(
        staff_sign_in_sync, running.url, "proctor-a", passwords["proctor-a"]
    )
    desk = ProctorClient(running.url, signed["token"])
    await desk.connect()
    client, details = await candidate_at(running, "site-a")
    await admitted(desk, client, details["document"])
    await client.submit()
    sitting = client.view.welcome.sitting  # type: ignore[union-attr]
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{running.url}/api/v1/results/main/acknowledge",
            json={},
            headers={"Authorization": f"Bearer {client.token}"},
        ) as reply:
            assert reply.status == 200
        async with session.post(
            f"{running.url}/api/v1/results/countersign",
            json={"sitting": sitting},
            headers={"Authorization": f"Bearer {signed['token']}"},
        ) as reply:
            assert reply.status == 400
            body = await reply.json()
    await desk.close()
    assert body["error"] == "not_signed_by_members"
