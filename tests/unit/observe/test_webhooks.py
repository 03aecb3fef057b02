"""One signed POST against a real HTTP receiver on loopback; URL and secret checks."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field

import httpx
import pytest

from runyard.observe.webhooks import check_secret, check_url, generate_secret, post, sign, verify

_REASONS = {200: "OK", 204: "No Content", 302: "Found", 404: "Not Found", 500: "Internal Server Error"}


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes


@dataclass
class Receiver:
    """A minimal HTTP/1.1 server on 127.0.0.1: answers each request with the next of `statuses` (then 200),
    after `delay` seconds, and keeps what it received."""

    statuses: list[int] = field(default_factory=list)
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _arrived: asyncio.Condition | None = None
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)
    url: str = ""

    @classmethod
    def answering(cls, statuses: Iterable[int] = (), delay: float = 0.0) -> Receiver:
        return cls(statuses=list(statuses), delay=delay)

    async def __aenter__(self) -> Receiver:
        self._arrived = asyncio.Condition()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/hook"
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._handlers:  # requests still being answered (a slow receiver)
            task.cancel()
        await asyncio.gather(*self._handlers)
        await self._server.wait_closed()

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        assert self._arrived is not None
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: len(self.received) >= count), timeout)
        return self.received

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._arrived is not None
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *lines = head.decode("latin-1").split("\r\n")
            headers = {}
            for line in lines:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            status = self.statuses.pop(0) if self.statuses else 200
            if self.delay:
                await asyncio.sleep(self.delay)
            async with self._arrived:
                self.received.append(Received(request_line.split(" ")[1], headers, body))
                self._arrived.notify_all()
            reason = _REASONS.get(status, "Status")
            writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the client went away, or the receiver is closing
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


SECRET = "s3cr3t-for-tests"
BODY = '{"version": "0", "id": "e1", "detail": {"Message": "caf\\u00e9"}}'


def test_a_delivery_is_signed_over_the_exact_body() -> None:
    async def main() -> None:
        async with Receiver.answering([204]) as receiver, httpx.AsyncClient(timeout=5) as client:
            outcome = await post(client, receiver.url, BODY, secret=SECRET, rule="deploys", event_id="e1")
            (got,) = await receiver.wait_for(1)
        assert outcome.ok and outcome.status == 204 and outcome.error is None
        assert got.path == "/hook" and got.body == BODY.encode()
        assert got.headers["content-type"] == "application/json"
        assert got.headers["user-agent"] == "Runyard-Events"
        assert got.headers["x-runyard-event-id"] == "e1"
        assert got.headers["x-runyard-rule"] == "deploys"
        # What a receiver does: the HMAC of the bytes it read, compared in constant time.
        expected = "sha256=" + hmac.new(SECRET.encode(), got.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(got.headers["x-runyard-signature"], expected)
        assert verify(SECRET, got.body, got.headers["x-runyard-signature"])
        assert not verify("another", got.body, got.headers["x-runyard-signature"])

    asyncio.run(main())


def test_a_status_other_than_2xx_no_answer_or_no_receiver_is_an_error() -> None:
    async def main() -> None:
        async with Receiver.answering([500, 302]) as receiver, httpx.AsyncClient(timeout=5) as client:
            failed = await post(client, receiver.url, BODY, secret=SECRET, rule="r", event_id="e1")
            redirected = await post(client, receiver.url, BODY, secret=SECRET, rule="r", event_id="e1")
        assert (failed.ok, failed.status, failed.error) == (False, 500, "HTTP 500 Internal Server Error")
        assert (redirected.ok, redirected.status, redirected.error) == (False, 302, "HTTP 302 Found")
        async with Receiver.answering(delay=1.0) as slow, httpx.AsyncClient(timeout=0.1) as client:
            late = await post(client, slow.url, BODY, secret=SECRET, rule="r", event_id="e1")
        assert not late.ok and late.status is None and late.error and late.error.startswith("no answer in time")
        async with httpx.AsyncClient(timeout=1) as client:
            gone = await post(client, slow.url, BODY, secret=SECRET, rule="r", event_id="e1")
        assert not gone.ok and gone.status is None and gone.error and gone.error.startswith("ConnectError")
        assert all(SECRET not in (o.error or "") for o in (failed, late, gone))

    asyncio.run(main())


def test_signing_helpers() -> None:
    assert sign("k", b"x") == "sha256=" + hmac.new(b"k", b"x", hashlib.sha256).hexdigest()
    secret = generate_secret()
    assert len(secret) == 64 and int(secret, 16) >= 0 and secret != generate_secret()


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/hook", "https://hooks.example.com/x?y=1"])
def test_http_and_https_urls_are_accepted(url: str) -> None:
    assert check_url(url) == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x", "http:// or https://"),
        ("example.com/x", "http:// or https://"),
        ("http:///x", "no host"),
        ("https://user:pw@example.com/x", "must not hold credentials"),
        ("https://example.com/x#frag", "fragment"),
    ],
)
def test_unusable_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_url(url)


@pytest.mark.parametrize(("secret", "message"), [("", "empty"), ("a b", "spaces"), ("x" * 600, "longer")])
def test_unusable_secrets_are_refused(secret: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_secret(secret)
