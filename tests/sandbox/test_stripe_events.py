"""The Stripe stand-in's event deliveries and the app stand-in's webhook secret, over real HTTP.

Deliveries are verified with stripe-python's own ``stripe.Webhook.construct_event`` by a receiver of the test's;
the app stand-in is driven only through the sandbox's AWS (a secret written, a forceNewDeployment) as ECS would.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import stripe
from conftest import sandbox_client
from stripe_support import EVENTS, create_endpoint, local_url, read_secret, write_secret


def emit(sandbox: Any, event_type: str = EVENTS[1], **extra: Any) -> dict[str, Any]:
    resp = httpx.post(
        sandbox.endpoints.stripe_api_base + "/_sandbox/events", json={"type": event_type, **extra}, timeout=30
    )
    resp.raise_for_status()
    return resp.json()


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """An HTTP server that records each delivery's body and Stripe-Signature header."""
    got: list[tuple[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            got.append((body, self.headers.get("Stripe-Signature", "")))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", got
    server.shutdown()
    server.server_close()


def test_an_event_goes_to_every_enabled_endpoint_that_wants_it_signed_as_stripe_signs(sandbox, receiver) -> None:
    url, got = receiver
    wanted = create_endpoint(sandbox, url, [EVENTS[1]])
    create_endpoint(sandbox, url, ["invoice.paid"])  # does not want the event
    disabled = create_endpoint(sandbox, url, ["*"])
    httpx.post(
        f"{sandbox.endpoints.stripe_api_base}/v1/webhook_endpoints/{disabled}",
        data={"disabled": "true"},
        headers={"Authorization": f"Bearer {sandbox.stripe_key}"},
    ).raise_for_status()
    result = emit(sandbox, object={"id": "sub_1", "object": "subscription"})
    by_endpoint = {d["endpoint"]: d["status"] for d in result["deliveries"]}
    assert by_endpoint == {sandbox.seeded.webhook_endpoint_id: 200, wanted: 200}
    ((body, header),) = got
    secret = sandbox.stripe.signing_secret(wanted)
    event = stripe.Webhook.construct_event(body, header, secret)  # the library's own check
    assert event.id == result["event"] and event.type == EVENTS[1] and event.data.object.id == "sub_1"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, header, sandbox.seeded.webhook_secret)
    assert "whsec_" not in str(result)  # the control route's answer carries no secret


def test_bad_control_requests_are_400(sandbox) -> None:
    base = sandbox.endpoints.stripe_api_base
    assert httpx.post(base + "/_sandbox/events", content=b"{", timeout=10).status_code == 400
    assert httpx.post(base + "/_sandbox/events", json={"kind": "x"}, timeout=10).status_code == 400


def test_the_app_verifies_with_the_secret_its_running_tasks_started_with(sandbox) -> None:
    """Storing a new STRIPE_WEBHOOK_SECRET changes nothing until the backend's tasks restart (ECS injects secrets
    at task start); after a forceNewDeployment the app accepts only the new value: one secret at a time."""
    seeded = sandbox.seeded.webhook_endpoint_id
    other = create_endpoint(sandbox, local_url(sandbox), EVENTS)
    write_secret(sandbox, read_secret(sandbox) | {"STRIPE_WEBHOOK_SECRET": sandbox.stripe.signing_secret(other)})

    def statuses() -> dict[str, int]:
        return {d["endpoint"]: d["status"] for d in emit(sandbox)["deliveries"]}

    assert statuses() == {seeded: 200, other: 400}  # the running tasks still hold the seeded secret
    ecs = sandbox_client(sandbox, "ecs")
    ecs.update_service(cluster="arbiter-ai", service="backend", forceNewDeployment=True)
    deadline = time.monotonic() + 60
    while True:  # each DescribeServices moves the sandbox's rollout one step
        svc = ecs.describe_services(cluster="arbiter-ai", services=["backend"])["services"][0]
        if [d["rolloutState"] for d in svc["deployments"]] == ["COMPLETED"]:
            break
        assert time.monotonic() < deadline, svc["deployments"]
    assert statuses() == {seeded: 400, other: 200}
