from __future__ import annotations

import httpx

from tests.support import RunyardProcess


def test_health_and_a_signed_call(server: RunyardProcess, region: str) -> None:
    assert httpx.get(f"{server.endpoint}/health").json()["status"] == "ok"
    client = server.client("apprunner", region)
    assert client.list_services()["ServiceSummaryList"] == []
