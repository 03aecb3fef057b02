"""`runyard events`: event rules that send service events to webhooks, and their deliveries.

Rules live in Runyard's database, so a running server uses a rule from its next event on, and sends what it
could not deliver before a restart once it is back. `runyard events test` needs no database at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from runyard.cli.common import settings_from
from runyard.clock import SystemClock
from runyard.config import Settings
from runyard.control.ports import Store
from runyard.observe.events import (
    OPERATION_STATUS_CHANGE,
    Delivery,
    RuleError,
    add_rule,
    list_rules,
    new_rule,
    recent_deliveries,
    remove_rule,
    set_enabled,
)
from runyard.observe.patterns import PatternError, matches, parse_pattern
from runyard.observe.webhooks import SIGNATURE_HEADER
from runyard.secrets import SecretBox

F = TypeVar("F", bound=Callable[..., Any])


def _common(command: F) -> F:
    # The same options as `runyard logs`, to find the same data directory and database.
    command = click.option(
        "--config",
        "config_file",
        type=click.Path(path_type=Path, dir_okay=False, exists=True),
        help="A TOML settings file (below environment variables and flags).",
    )(command)
    return click.option(
        "--data-dir",
        type=click.Path(path_type=Path, file_okay=False),
        help="Where Runyard keeps everything [~/.runyard].",
    )(command)


@contextmanager
def _store(settings: Settings, *, create: bool) -> Iterator[Store | None]:
    """Runyard's database, migrated; None when there is none yet and the command only reads."""
    if not create and not settings.database_url and not settings.sqlite_path.exists():
        yield None
        return
    if create:
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)  # it will hold the signing secrets

    from runyard.app import build  # the composition root: only these commands need it, only now

    runyard = build(settings)
    try:
        runyard.database.migrate()  # idempotent; a first command may come before the first `runyard serve`
        yield runyard.database
    finally:
        runyard.stop()


def _json_text(value: str, option: str) -> str:
    """An option's JSON: given inline, or `@FILE` to read it from a file."""
    if not value.startswith("@"):
        return value
    try:
        return Path(value[1:]).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"cannot read {value[1:]}: {exc}", param_hint=option) from None


@click.group()
def events() -> None:
    """Event rules: send service events (EventBridge's envelope) to HTTP(S) webhooks, signed with HMAC-SHA256."""


@events.command()
@click.argument("name")
@click.option("--pattern", required=True, metavar="JSON|@FILE", help="An EventBridge event pattern.")
@click.option("--url", required=True, help="Where matching events are POSTed (http or https).")
@click.option(
    "--secret-file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Sign with the secret in this file [a new random secret, printed once].",
)
@click.option("--disabled", is_flag=True, help="Store the rule without sending anything yet.")
@_common
def add(
    name: str,
    pattern: str,
    url: str,
    secret_file: Path | None,
    disabled: bool,
    config_file: Path | None,
    **flags: Any,
) -> None:
    """Add a rule NAME: events matching --pattern are POSTed to --url."""
    settings = settings_from(flags, config_file)
    secret = None
    if secret_file is not None:
        try:
            secret = secret_file.read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise click.BadParameter(f"cannot read {secret_file}: {exc}", param_hint="--secret-file") from None
    try:
        rule = new_rule(
            account=settings.account_id,
            name=name,
            pattern=_json_text(pattern, "--pattern"),
            url=url,
            secret=secret,
            created_at=SystemClock().now(),
            enabled=not disabled,
        )
    except PatternError as exc:
        raise click.BadParameter(str(exc), param_hint="--pattern") from None
    except RuleError as exc:
        raise click.UsageError(str(exc)) from None
    with _store(settings, create=True) as store:
        assert store is not None
        try:
            add_rule(store, rule, secrets=SecretBox.load_or_create(settings.data_dir, settings.secrets_key))
        except RuleError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"Added event rule {rule.name}")
    click.echo(f"  URL:     {rule.url}")
    click.echo(f"  Pattern: {rule.pattern}")
    click.echo(f"  Enabled: {_yes(rule.enabled)}")
    if secret is None:
        click.echo(
            f"Signing secret (shown only now: keep it to verify {SIGNATURE_HEADER}, the HMAC-SHA256 of the body):"
        )
        click.echo(f"  {rule.secret}")


@events.command(name="list")
@_common
def list_(config_file: Path | None, **flags: Any) -> None:
    """List the rules with their deliveries so far."""
    settings = settings_from(flags, config_file)
    with _store(settings, create=False) as store:
        listed = [] if store is None else list_rules(store, settings.account_id)
    if not listed:
        click.echo("No event rules.")
        return
    rows = [["NAME", "ENABLED", "DELIVERED", "PENDING", "FAILED", "URL", "PATTERN"]]
    for rule, counts in listed:
        rows.append(
            [
                rule.name,
                _yes(rule.enabled),
                str(counts["DELIVERED"]),
                str(counts["PENDING"]),
                str(counts["FAILED"]),
                rule.url,
                rule.pattern,
            ]
        )
    _table(rows)


@events.command()
@click.argument("name")
@_common
def remove(name: str, config_file: Path | None, **flags: Any) -> None:
    """Remove the rule NAME and its deliveries (pending ones are not sent)."""
    settings = settings_from(flags, config_file)
    with _store(settings, create=False) as store:
        if store is None:
            raise click.ClickException(f"No event rule named {name}")
        try:
            dropped = remove_rule(store, settings.account_id, name)
        except RuleError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"Removed event rule {name}" + (f" ({dropped} pending deliveries dropped)" if dropped else ""))


def _switch(enabled: bool) -> Callable[..., None]:
    def command(name: str, config_file: Path | None, **flags: Any) -> None:
        settings = settings_from(flags, config_file)
        with _store(settings, create=False) as store:
            if store is None:
                raise click.ClickException(f"No event rule named {name}")
            try:
                set_enabled(store, settings.account_id, name, enabled)
            except RuleError as exc:
                raise click.ClickException(str(exc)) from None
        click.echo(f"Event rule {name} is {'enabled' if enabled else 'disabled'}")

    return command


events.command(name="enable", help="Send events to the rule NAME again (its pending deliveries go first).")(
    click.argument("name")(_common(_switch(True)))
)
events.command(name="disable", help="Stop sending to the rule NAME; events it matches meanwhile are not kept.")(
    click.argument("name")(_common(_switch(False)))
)


@events.command()
@click.option("--pattern", required=True, metavar="JSON|@FILE", help="An EventBridge event pattern.")
@click.option("--event", "event_text", required=True, metavar="JSON|@FILE", help="An event (a JSON object).")
def test(pattern: str, event_text: str) -> None:
    """Print `match` (exit 0) or `no match` (exit 1): whether the event matches the pattern."""
    try:
        parsed = parse_pattern(_json_text(pattern, "--pattern"))
    except PatternError as exc:
        raise click.BadParameter(str(exc), param_hint="--pattern") from None
    try:
        event = json.loads(_json_text(event_text, "--event"))
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--event") from None
    if not isinstance(event, dict):
        raise click.BadParameter("an event is a JSON object", param_hint="--event")
    found = matches(parsed, event)
    click.echo("match" if found else "no match")
    if not found:
        raise SystemExit(1)


@events.command()
@click.argument("name", required=False)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="How many, newest first.")
@_common
def deliveries(name: str | None, limit: int, config_file: Path | None, **flags: Any) -> None:
    """The newest deliveries (of the rule NAME, or of every rule): status, tries and last error."""
    settings = settings_from(flags, config_file)
    with _store(settings, create=False) as store:
        try:
            found = [] if store is None else recent_deliveries(store, settings.account_id, name, limit=limit)
        except RuleError as exc:
            raise click.ClickException(str(exc)) from None
    if not found:
        click.echo("No deliveries yet.")
        return
    rows = [["CREATED", "RULE", "STATUS", "TRIES", "HTTP", "EVENT", "LAST ERROR"]]
    for delivery in found:
        rows.append(
            [
                _time(delivery.created_at),
                delivery.rule,
                delivery.status,
                str(delivery.attempts),
                "-" if delivery.response_status is None else str(delivery.response_status),
                _summary(delivery),
                delivery.last_error or "-",
            ]
        )
    _table(rows)


def _summary(delivery: Delivery) -> str:
    """What the event was, in a few words: `<service>: <status>`."""
    try:
        event = json.loads(delivery.event)
        detail = event["detail"]
        status = detail["Status"] if event["detail-type"] == OPERATION_STATUS_CHANGE else detail["CurrentStatus"]
        return f"{detail['ServiceName']}: {status}"
    except (ValueError, KeyError, TypeError):
        return delivery.event_id


def _time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        # The last column (a pattern, an error) is printed whole, however long.
        click.echo("  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]]))
