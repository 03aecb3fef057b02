"""Service events in EventBridge's envelope: written to the service's `events` stream, and sent to the event
rules whose patterns they match as signed webhook deliveries.

Publishing is synchronous: the event is in the log and its deliveries are in the store when publish returns,
so a restart loses nothing. A worker task sends the pending deliveries (webhooks.py), oldest first per rule.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx

from runyard.clock import Clock
from runyard.control.model.service import Service
from runyard.control.ports import Repository, Store
from runyard.ids import IdSource
from runyard.observe.logs import EVENTS_STREAM, LogStore, service_log_group
from runyard.observe.patterns import Pattern, PatternError, matches, parse_pattern
from runyard.observe.webhooks import Outcome, check_secret, check_url, generate_secret, post
from runyard.secrets import SecretBox, SecretsError

log = logging.getLogger(__name__)

SERVICE_STATUS_CHANGE = "Service Status Change"
OPERATION_STATUS_CHANGE = "Service Operation Status Change"
SOURCE = "aws.apprunner"

PENDING = "PENDING"
DELIVERED = "DELIVERED"
FAILED = "FAILED"

RECORD_REGION = ""  # rules and deliveries belong to an account, not a region (like EventBridge's default bus)
RULE_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
MAX_ATTEMPTS = 8
MAX_BACKOFF = 300.0
KEEP_FINISHED = 100  # finished deliveries kept per rule (the newest): enough history, a bounded scan


def envelope(
    detail_type: str,
    detail: Mapping[str, str],
    *,
    account: str,
    region: str,
    resources: Sequence[str],
    time: float,
    event_id: str,
) -> dict[str, Any]:
    """An event as EventBridge carries it, keys in the spec's order."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": detail_type,
        "source": SOURCE,
        "account": account,
        "time": datetime.fromtimestamp(time, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": list(resources),
        "detail": dict(detail),
    }


def default_backoff(attempts: int) -> float:
    """Seconds before the next try after `attempts` failed ones: 1, 2, 4 ... 300, plus up to 10% jitter (so
    receivers that come back are not hit by every retry at once)."""
    base = min(MAX_BACKOFF, 2.0 ** max(0, attempts - 1))
    return base * (1 + random.random() / 10)


# -- records ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventRule:
    """Where matching events go. The secret signs every delivery; it is shown once, when generated."""

    KIND: ClassVar[str] = "runyard.eventrule"
    account: str
    name: str
    pattern: str  # the JSON text as given (validated when the rule was added)
    url: str
    secret: str  # sealed (SecretBox, bound to the rule's key) when `sealed`; plaintext in rules stored before
    created_at: float
    enabled: bool = True
    sealed: bool = False

    @property
    def key(self) -> str:
        return rule_key(self.account, self.name)

    @property
    def region(self) -> str:
        return RECORD_REGION

    @property
    def status(self) -> str:
        return "ENABLED" if self.enabled else "DISABLED"


def rule_key(account: str, name: str) -> str:
    return f"{account}/{name}"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event for one rule: sent until the receiver answers 2xx, or given up after MAX_ATTEMPTS."""

    KIND: ClassVar[str] = "runyard.eventdelivery"
    id: str
    account: str
    rule: str
    event_id: str
    event: str  # the exact JSON body that is sent and signed
    status: str
    created_at: float
    next_attempt_at: float
    attempts: int = 0
    last_error: str | None = None
    response_status: int | None = None
    updated_at: float | None = None

    @property
    def key(self) -> str:
        return self.id

    @property
    def name(self) -> str:
        # The store's name column: finds one rule's deliveries, in order, without a scan.
        return self.rule

    @property
    def region(self) -> str:
        return RECORD_REGION


@functools.lru_cache(maxsize=256)
def _parsed(text: str) -> Pattern:
    return parse_pattern(text)


def rule_matches(rule: EventRule, event: Mapping[str, Any]) -> bool:
    return matches(_parsed(rule.pattern), event)


# -- the bus ---------------------------------------------------------------------------------------------


class EventBus:
    def __init__(
        self,
        *,
        store: Store,
        logs: LogStore,
        clock: Clock,
        ids: IdSource,
        account: str,
        backoff: Callable[[int], float] = default_backoff,
        max_attempts: int = MAX_ATTEMPTS,
        timeout: float = 10.0,
        poll: float = 5.0,
        keep_finished: int = KEEP_FINISHED,
        secrets: SecretBox | None = None,
    ) -> None:
        self._store = store
        self._secrets = secrets  # opens the rules' sealed signing secrets
        self._logs = logs
        self._clock = clock
        self._ids = ids
        self._account = account
        self._backoff = backoff
        self._max_attempts = max_attempts
        self._timeout = timeout
        self._poll = poll  # the longest the worker sleeps (it also sees what another process stored)
        self._keep_finished = keep_finished
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._sending: dict[str, asyncio.Task[None]] = {}  # rule name -> its delivery in flight
        self._finished: dict[str, int] = {}  # rule name -> sends ended so far

    # -- publishing --------------------------------------------------------------------------------------

    def publish(self, service: Service, detail_type: str, detail: Mapping[str, str]) -> None:
        """Log the event and store a delivery for every enabled rule it matches. Never raises: an event
        that cannot be logged or delivered must not fail the operation it reports. Must not be called
        inside an open write transaction of the same store (SQLite would wait on itself)."""
        event = envelope(
            detail_type,
            detail,
            account=service.account,
            region=service.region,
            resources=[service.arn],
            time=self._clock.now(),
            event_id=self._ids.uuid(),
        )
        body = json.dumps(event)
        try:
            self._logs.append(service_log_group(service.name, service.service_id), EVENTS_STREAM, body)
        except Exception:
            log.exception("could not log the %s event of service %s", detail_type, service.name)
        try:
            if self._record_deliveries(service.account, event, body):
                self.wake()
        except Exception:
            log.exception("could not store the deliveries of the %s event of service %s", detail_type, service.name)

    def _record_deliveries(self, account: str, event: Mapping[str, Any], body: str) -> bool:
        # A read first: most events match no rule, and then no write lock is taken at all.
        with self._store.read() as uow:
            rules = [r for r in uow.repo(EventRule).find(account=account, region=RECORD_REGION) if r.enabled]
        chosen = [rule for rule in rules if self._matches(rule, event)]
        if not chosen:
            return False
        now = self._clock.now()
        with self._store.write() as uow:
            stored = uow.repo(EventRule)
            deliveries = uow.repo(Delivery)
            for rule in chosen:
                if stored.get(rule.key) is None:  # removed since the read
                    continue
                deliveries.add(
                    Delivery(
                        id=self._ids.uuid(),
                        account=account,
                        rule=rule.name,
                        event_id=str(event["id"]),
                        event=body,
                        status=PENDING,
                        created_at=now,
                        next_attempt_at=now,
                    )
                )
        return True

    @staticmethod
    def _matches(rule: EventRule, event: Mapping[str, Any]) -> bool:
        try:
            return rule_matches(rule, event)
        except PatternError as exc:  # stored before a stricter Runyard: the rule is skipped, not the event
            log.warning("event rule %s has a pattern that cannot be used: %s", rule.name, exc)
            return False

    # -- the delivery worker -----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self._client = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)
        self._task = asyncio.create_task(self._run(), name="runyard-event-deliveries")

    async def stop(self) -> None:
        """Stop sending. A delivery cut off mid-request was not recorded: it is sent again after a restart
        (receivers tell repeats apart by X-Runyard-Event-Id)."""
        tasks = [t for t in (self._task, *self._sending.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None
        self._sending.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        self._loop = None
        self._wakeup = None

    def wake(self) -> None:
        """Have the worker look for due deliveries now; safe from any thread."""
        loop, wakeup = self._loop, self._wakeup
        if loop is None or wakeup is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(wakeup.set)

    async def _run(self) -> None:
        assert self._wakeup is not None
        while True:
            self._wakeup.clear()  # before looking: a wake while we look is not lost
            try:
                delay = await self._dispatch()
            except Exception:
                log.exception("could not look for event deliveries; trying again")
                delay = self._poll
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), delay)

    async def _dispatch(self) -> float:
        """Start sending each rule's oldest pending delivery if it is due; return how long to sleep."""
        finished_before = dict(self._finished)
        heads = await asyncio.to_thread(self._heads)
        now = self._clock.now()
        delay = self._poll
        for rule, delivery in heads:
            if rule.name in self._sending:
                continue  # one at a time per rule, so a rule's receiver sees its events in order
            if self._finished.get(rule.name) != finished_before.get(rule.name):
                continue  # a send ended while we read: what we read may be stale (its wake-up reads again)
            if delivery.next_attempt_at > now:
                delay = min(delay, delivery.next_attempt_at - now)
                continue
            task = asyncio.create_task(self._send(rule, delivery))
            self._sending[rule.name] = task
            task.add_done_callback(functools.partial(self._sent, rule.name))
        return max(0.0, delay)

    def _sent(self, rule_name: str, _task: asyncio.Task[None]) -> None:
        self._sending.pop(rule_name, None)
        self._finished[rule_name] = self._finished.get(rule_name, 0) + 1
        if self._wakeup is not None:
            self._wakeup.set()

    def _heads(self) -> list[tuple[EventRule, Delivery]]:
        heads: list[tuple[EventRule, Delivery]] = []
        with self._store.read() as uow:
            for rule in uow.repo(EventRule).find(account=self._account, region=RECORD_REGION):
                if not rule.enabled:
                    continue  # its deliveries wait until it is enabled again
                found = uow.repo(Delivery).find(account=self._account, region=RECORD_REGION, name=rule.name)
                pending = next((d for d in found if d.status == PENDING), None)
                if pending is not None:
                    heads.append((rule, pending))
        return heads

    async def _send(self, rule: EventRule, delivery: Delivery) -> None:
        assert self._client is not None
        try:
            secret = rule_secret(rule, self._secrets)
            outcome = await post(
                self._client, rule.url, delivery.event, secret=secret, rule=rule.name, event_id=delivery.event_id
            )
        except Exception as exc:  # a bug, not the receiver: recorded like a failure so the worker goes on
            log.exception("could not send delivery %s of rule %s", delivery.id, rule.name)
            outcome = Outcome(ok=False, status=None, error=f"internal error: {type(exc).__name__}")
        await asyncio.to_thread(self._record, delivery.id, outcome)

    def _record(self, delivery_id: str, outcome: Outcome) -> None:
        now = self._clock.now()
        with self._store.write() as uow:
            repo = uow.repo(Delivery)
            current = repo.get(delivery_id)
            if current is None or current.status != PENDING:
                return  # its rule was removed meanwhile
            attempts = current.attempts + 1
            if outcome.ok:
                status, next_at = DELIVERED, current.next_attempt_at
            elif attempts >= self._max_attempts:
                status, next_at = FAILED, current.next_attempt_at
            else:
                status, next_at = PENDING, now + self._backoff(attempts)
            repo.save(
                replace(
                    current,
                    status=status,
                    attempts=attempts,
                    next_attempt_at=next_at,
                    last_error=None if outcome.ok else outcome.error,
                    response_status=outcome.status,
                    updated_at=now,
                )
            )
            if status != PENDING:
                self._prune(repo, current.account, current.rule)
        if status == FAILED:
            log.warning("gave up delivering event %s to rule %s: %s", current.event_id, current.rule, outcome.error)

    def _prune(self, repo: Repository[Delivery], account: str, rule_name: str) -> None:
        found = repo.find(account=account, region=RECORD_REGION, name=rule_name)
        finished = [d for d in found if d.status != PENDING]
        for old in finished[: max(0, len(finished) - self._keep_finished)]:
            repo.remove(old.key)


# -- managing rules (the `runyard events` commands; later the console) -----------------------------------


class RuleError(ValueError):
    """A rule that cannot be added or found; the message is for the user."""


def new_rule(
    *, account: str, name: str, pattern: str, url: str, secret: str | None, created_at: float, enabled: bool = True
) -> EventRule:
    """A rule checked for use: its name, pattern (kept as compact one-line JSON), URL and secret."""
    if not RULE_NAME.fullmatch(name):
        raise RuleError(f"An event rule name is 1 to 64 of A-Z a-z 0-9 . _ -, not {name!r}")
    parse_pattern(pattern)  # PatternError (a ValueError) says where it is wrong
    parsed_text = json.dumps(json.loads(pattern), separators=(",", ":"), ensure_ascii=False)
    try:
        check_url(url)
        secret = generate_secret() if secret is None else check_secret(secret)
    except ValueError as exc:
        raise RuleError(str(exc)) from None
    return EventRule(
        account=account, name=name, pattern=parsed_text, url=url, secret=secret, created_at=created_at, enabled=enabled
    )


def rule_secret(rule: EventRule, secrets: SecretBox | None) -> str:
    """The signing secret of a rule (opened when it is stored sealed)."""
    if not rule.sealed:
        return rule.secret
    if secrets is None:
        raise SecretsError("the rule's signing secret is sealed and no secrets key was given")
    return secrets.open(rule.secret, context=rule.key)


def add_rule(store: Store, rule: EventRule, *, secrets: SecretBox | None = None) -> None:
    """Store the rule; with `secrets`, its signing secret is sealed at rest (AES-GCM, bound to the rule)."""
    if secrets is not None and not rule.sealed:
        rule = replace(rule, secret=secrets.seal(rule.secret, context=rule.key), sealed=True)
    with store.write() as uow:
        repo = uow.repo(EventRule)
        if repo.get(rule.key) is not None:
            raise RuleError(f"An event rule named {rule.name} already exists")
        repo.add(rule)


def remove_rule(store: Store, account: str, name: str) -> int:
    """Remove the rule and its deliveries (history included: a new rule of the same name starts afresh);
    return how many were still pending."""
    with store.write() as uow:
        rules = uow.repo(EventRule)
        if rules.get(rule_key(account, name)) is None:
            raise RuleError(f"No event rule named {name}")
        rules.remove(rule_key(account, name))
        deliveries = uow.repo(Delivery)
        found = deliveries.find(account=account, region=RECORD_REGION, name=name)
        for delivery in found:
            deliveries.remove(delivery.key)
    return sum(1 for d in found if d.status == PENDING)


def set_enabled(store: Store, account: str, name: str, enabled: bool) -> EventRule:
    with store.write() as uow:
        repo = uow.repo(EventRule)
        rule = repo.get(rule_key(account, name))
        if rule is None:
            raise RuleError(f"No event rule named {name}")
        rule = replace(rule, enabled=enabled)
        repo.save(rule)
    return rule


def list_rules(store: Store, account: str) -> list[tuple[EventRule, dict[str, int]]]:
    """Every rule, oldest first, with how many of its deliveries are in each status."""
    listed: list[tuple[EventRule, dict[str, int]]] = []
    with store.read() as uow:
        for rule in uow.repo(EventRule).find(account=account, region=RECORD_REGION):
            counts = dict.fromkeys((DELIVERED, PENDING, FAILED), 0)
            for delivery in uow.repo(Delivery).find(account=account, region=RECORD_REGION, name=rule.name):
                counts[delivery.status] = counts.get(delivery.status, 0) + 1
            listed.append((rule, counts))
    return listed


def recent_deliveries(store: Store, account: str, rule: str | None = None, *, limit: int = 20) -> list[Delivery]:
    """The newest deliveries first (of one rule, or of all)."""
    with store.read() as uow:
        repo = uow.repo(Delivery)
        found = repo.find(account=account, region=RECORD_REGION, name=rule)
        if rule is not None and not found and uow.repo(EventRule).get(rule_key(account, rule)) is None:
            raise RuleError(f"No event rule named {rule}")
    return list(reversed(found))[:limit]
