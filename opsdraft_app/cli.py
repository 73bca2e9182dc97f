"""The `opsdraft` command line."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from datetime import timedelta
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from opsdraft.settings import ROLE_NAMES, Settings, SettingsError, load_settings
from redaction.controls import strip_controls

app = typer.Typer(help="opsdraft: incident and support drafts from Kafka events, approved in Slack.",
                  no_args_is_help=True, add_completion=False)
drafts_app = typer.Typer(help="Inspect drafts.", no_args_is_help=True)
app.add_typer(drafts_app, name="drafts")
dlq_app = typer.Typer(help="Inspect and replay dead letters.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
console = Console()


def settings_or_exit(**overrides) -> Settings:
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def setup_logging(settings: Settings) -> None:
    from opsdraft.privacy import install_log_redaction

    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)  # per-call notes about unmapped NER labels
    for noisy in ("aiokafka", "httpx", "sentence_transformers", "transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    install_log_redaction(settings)


def run_until_signal(main) -> None:
    """Run `main(stop)`; SIGINT/SIGTERM set `stop` so every role finishes its current message and exits."""

    async def runner():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(runner())


@app.command()
def run(
    roles: str = typer.Option(",".join(ROLE_NAMES), help=f"Comma-separated roles to run: {', '.join(ROLE_NAMES)}."),
) -> None:
    """Run opsdraft: every role in one process, or only the roles given."""
    settings = settings_or_exit()
    chosen = {r.strip() for r in roles.split(",") if r.strip()}
    unknown = chosen - set(ROLE_NAMES)
    if unknown:
        console.print(f"[red]unknown roles: {', '.join(sorted(unknown))} (choose from {', '.join(ROLE_NAMES)})")
        raise typer.Exit(2)
    from opsdraft.security import insecure_settings, refusal

    if why := refusal(settings, chosen):
        print(why, file=sys.stderr)  # one plain line: rich would wrap it
        raise typer.Exit(1)
    from opsdraft_app.startup import port_problem

    if "http" in chosen and (why := port_problem(settings.http_host, settings.http_port)):
        print(why, file=sys.stderr)  # before the broker and roles start: nothing half-started to clean up
        raise typer.Exit(1)
    setup_logging(settings)
    for line in insecure_settings(settings, chosen):  # only reached with OPSDRAFT_INSECURE_DEV=true
        logging.getLogger("opsdraft").warning("INSECURE DEVELOPMENT RUN: %s", line)
    from opsdraft_app.runner import kafka, run_roles, runtime

    async def main(stop):
        async with kafka(settings) as bootstrap, runtime(settings, bootstrap) as rt:
            console.print(f"opsdraft running roles [bold]{', '.join(sorted(chosen))}[/bold]; Kafka at {bootstrap}; "
                          f"HTTP on http://{settings.http_host}:{settings.http_port}")
            await run_roles(rt, chosen, stop)

    run_until_signal(main)


@app.command()
def check() -> None:
    """List every insecure setting, each with its fix; exit 1 if there is any (what `opsdraft run` refuses)."""
    settings = settings_or_exit()
    from opsdraft.security import insecure_settings

    found = insecure_settings(settings)
    for line in found:
        print(f"insecure: {line}")
    print(f"{len(found)} insecure settings" if found else "no insecure settings")
    raise typer.Exit(1 if found else 0)


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema to the latest version."""
    from opsdraft.db import migrate as do_migrate

    settings = settings_or_exit()
    do_migrate(settings.db_url)
    console.print(f"database at {settings.db_url.split('@')[-1]} is up to date")


@app.command()
def index() -> None:
    """Build or update the retrieval index: runbooks, help centre, closed incidents, approved replies."""
    settings = settings_or_exit()
    from sqlalchemy import select

    from opsdraft.db import Database
    from opsdraft.db import migrate as do_migrate
    from opsdraft.models import Incident, Ticket
    from summarizer.embeddings import get_embedder
    from summarizer.helpcentre import help_docs
    from summarizer.index import VectorIndex, runbook_docs
    from summarizer.worker import exemplar_of, incident_doc

    do_migrate(settings.db_url)
    db = Database(settings.db_url)
    with progress() as bar:
        task = bar.add_task("loading the embedding model", total=None)
        idx = VectorIndex(settings.index_dir, get_embedder())
        docs = runbook_docs(settings.runbooks_dir) + help_docs(settings.help_centre_dir)
        with db.session() as s:
            docs += [incident_doc(s, i) for i in s.scalars(select(Incident.id).where(Incident.status == "closed"))]
            # approved replies as exemplars, the customer's specifics removed (never the ticket's text)
            docs += [d for i in s.scalars(select(Ticket.id).where(Ticket.status.in_(("answered", "closed"))))
                     if (d := exemplar_of(s, i, settings.reply_signoff)) is not None]
        bar.update(task, description="embedding documents", total=len(docs), completed=0)
        for start in range(0, len(docs), 16):
            idx.upsert(docs[start:start + 16])
            bar.update(task, completed=min(start + 16, len(docs)))
        idx.save()
    counts: dict[str, int] = {}
    for d in docs:
        counts[d.kind] = counts.get(d.kind, 0) + 1
    where = {"runbook": settings.runbooks_dir, "help": settings.help_centre_dir}
    for kind in ("help", "exemplar", "runbook", "incident"):
        origin = f" from {where[kind]}" if kind in where else ""
        console.print(f"  {kind:<9} {counts.get(kind, 0):>5} sections{origin}")
    console.print(f"index at {settings.index_dir} holds {len(idx)} chunks")


@app.command()
def replay(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSON lines, one message per line."),
    topic: str = typer.Option(..., "--topic", "-t", help="Topic to produce to, e.g. alerts, logs, tickets."),
) -> None:
    """Produce each line of FILE as one message to TOPIC (lines are sent as they are; bad ones dead-letter)."""
    settings = settings_or_exit()
    lines = [ln for ln in file.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    from opsdraft.broker import ensure_topics
    from opsdraft.bus import Bus

    bootstrap = settings.kafka_bootstrap_servers or running_broker(settings)

    async def main():
        await ensure_topics(bootstrap, [topic])
        bus = await Bus(bootstrap).start()
        try:
            with progress() as bar:
                task = bar.add_task(f"producing to {topic}", total=len(lines))
                for line in lines:
                    await bus.send(topic, line.encode())
                    bar.advance(task)
        finally:
            await bus.stop()

    asyncio.run(main())
    console.print(f"produced {len(lines)} messages to {topic} at {bootstrap}")


def running_broker(settings: Settings) -> str:
    """The embedded broker of an `opsdraft run` on this machine, found through its address file."""
    from opsdraft.broker import EmbeddedBroker

    address = EmbeddedBroker.running_address(settings.data_dir)
    if not address:
        console.print("[red]OPSDRAFT_KAFKA_BOOTSTRAP_SERVERS is not set and no `opsdraft run` with an embedded "
                      "broker is running here; start one or set the variable.[/red]")
        raise typer.Exit(2)
    return address


@app.command()
def redact(
    source: str = typer.Option(None, "--source", help="logs, alerts or tickets: that source's rules "
                               "(OPSDRAFT_REDACTION_ENTITIES; logs skip the slow name model)."),
) -> None:
    """Read text on stdin, one record per line, and print each line redacted, in order."""
    if source not in (None, "logs", "alerts", "tickets"):
        console.print("[red]--source must be logs, alerts or tickets[/red]")
        raise typer.Exit(2)
    settings = settings_or_exit()
    from opsdraft.privacy import get_redactor

    redactor = get_redactor(settings)
    # Batches let NER run over many lines at once; a terminal gets each line back as soon as it is typed.
    size = 1 if sys.stdin.isatty() else 256
    batch: list[str] = []
    for line in sys.stdin:
        batch.append(line.rstrip("\n"))
        if len(batch) >= size:
            sys.stdout.write("".join(t + "\n" for t in redactor.redact_many(batch, source=source)))
            sys.stdout.flush()
            batch = []
    if batch:
        sys.stdout.write("".join(t + "\n" for t in redactor.redact_many(batch, source=source)))


def _dead_letters(settings: Settings, timeout: float) -> list[dict]:
    from opsdraft.bus import Bus, read_topic

    bootstrap = settings.kafka_bootstrap_servers or running_broker(settings)

    async def main():
        bus = await Bus(bootstrap).start()
        try:
            # Reads until the topic goes quiet: Tansu's end offsets cannot be trusted to say "the end".
            return await read_topic(bus, settings.topics.dead_letters, at_least=10**9, timeout=timeout)
        finally:
            await bus.stop()

    return asyncio.run(main())


@dlq_app.command("list")
def dlq_list(wait: float = typer.Option(5.0, help="Seconds to read the topic for.")) -> None:
    """Show every dead letter: when, from where, and why (with the redacted message)."""
    settings = settings_or_exit()
    rows = _dead_letters(settings, wait)
    table = Table("at", "source", "reason", "message (redacted)")
    for d in rows:
        src = d.get("source", {})
        table.add_row(str(d.get("at", ""))[:19], f"{src.get('topic')}[{src.get('partition')}]@{src.get('offset')}",
                      Text(strip_controls(str(d.get("reason", "")))),
                      Text(strip_controls(str(d.get("value_redacted", "")))[:80]))
    console.print(table)
    console.print(f"{len(rows)} dead letters")


@dlq_app.command("replay")
def dlq_replay(
    source_topic: str = typer.Option(None, "--topic", help="Only dead letters that came from this topic."),
    wait: float = typer.Option(5.0, help="Seconds to read the dead-letter topic for."),
) -> None:
    """Re-feed dead letters to the topics they came from, e.g. after a fix. Still-bad ones dead-letter again."""
    from cryptography.fernet import InvalidToken

    from opsdraft.bus import Bus
    from opsdraft.privacy import unseal

    settings = settings_or_exit()
    rows = [d for d in _dead_letters(settings, wait)
            if d.get("value_sealed") and (source_topic is None or d["source"]["topic"] == source_topic)]
    originals, unreadable = [], 0
    for d in rows:
        try:
            originals.append((d["source"]["topic"], d["source"].get("key"), unseal(settings, d["value_sealed"])))
        except InvalidToken:
            unreadable += 1

    async def main():
        bus = await Bus(settings.kafka_bootstrap_servers or running_broker(settings)).start()
        try:
            for topic, key, value in originals:
                await bus.send(topic, value, key=key)
        finally:
            await bus.stop()

    asyncio.run(main())
    console.print(f"replayed {len(originals)} dead letters"
                  + (f"; {unreadable} sealed with another key were skipped" if unreadable else ""))


@drafts_app.command("list")
def drafts_list(limit: int = typer.Option(20, min=1, max=1000)) -> None:
    """List the latest drafts."""
    from bot.service import latest_drafts
    from opsdraft.db import Database

    settings = settings_or_exit()
    with Database(settings.db_url).session() as s:
        rows = latest_drafts(s, limit)
        table = Table("id", "kind", "for", "v", "status", "model", "title")
        for d in rows:
            table.add_row(str(d.id), d.kind, f"{d.subject_type} {d.subject_id}", str(d.version), d.status,
                          d.model, Text(strip_controls(d.title)))  # Text: a title's "[red]" is no markup
    console.print(table)


@drafts_app.command("show")
def drafts_show(draft_id: int, as_json: bool = typer.Option(False, "--json"),
                events: bool = typer.Option(
                    False, "--events", help="The incident's full event list instead (Markdown): every alert, "
                    "timeline entry, change and log line it holds.")) -> None:
    """Show one draft in full (Markdown), with its sources and notes."""
    from opsdraft.db import Database
    from opsdraft.models import Draft

    settings = settings_or_exit()
    with Database(settings.db_url).session() as s:
        d = s.get(Draft, draft_id)
        if d is None:
            console.print(f"[red]draft {draft_id} does not exist[/red]")
            raise typer.Exit(1)
        if events:
            if d.subject_type != "incident":
                console.print(f"[red]draft {draft_id} is not about an incident[/red]")
                raise typer.Exit(1)
            for line in _event_list(s, d.subject_id):
                print(strip_controls(line))
            return
        data = {k: getattr(d, k) for k in ("id", "kind", "subject_type", "subject_id", "version", "status",
                                           "title", "model", "sources", "notes", "body", "analysis")}
    if as_json:
        print(json.dumps(data, default=str, indent=2))
        return
    # Stored text came from inputs: an ANSI sequence in it would drive the reader's terminal.
    print(strip_controls(f"# {data['title']}\n\n_{data['kind']} v{data['version']} · {data['status']} · "
                         f"{data['model']}_\n"))
    for note in data["notes"]:
        print(strip_controls(f"> {note}"))
    print(strip_controls(data["body"]))


def _event_list(s, incident_id: int):
    """Every recorded event of an incident, in time order: what a key-event timeline leaves out."""
    from sqlalchemy import select

    from opsdraft.models import Alert, Change, Incident, LogEvent, TimelineEntry

    inc = s.get(Incident, incident_id)
    rows = [(e.at, f"[{e.source_ref}] {e.kind}: {e.text}") for e in s.scalars(
        select(TimelineEntry).where(TimelineEntry.incident_id == incident_id))]
    for a in s.scalars(select(Alert).where(Alert.incident_id == incident_id)):
        rows.append((a.starts_at, f"[alert:{a.id}] {a.name} on {a.service} started ({a.status}): {a.text}"))
        if a.ends_at:
            rows.append((a.ends_at, f"[alert:{a.id}] {a.name} on {a.service} ended"))
    services = inc.services or [inc.service]
    start, end = inc.opened_at, inc.closed_at or inc.opened_at
    for c in s.scalars(select(Change).where(Change.service.in_(services), Change.at >= start - timedelta(hours=1),
                                            Change.at <= end)):
        rows.append((c.at, f"[change:{c.id}] {c.action} of {c.service} {c.version} by {c.actor}: {c.description}"))
    for g in s.scalars(select(LogEvent).where(LogEvent.incident_id == incident_id).order_by(LogEvent.at)):
        rows.append((g.at, f"[log:{g.id}] {g.level} {g.service}: {g.message}"))
    yield f"# Incident #{inc.id}: {inc.title} — all {len(rows)} recorded events"
    for at, text in sorted(rows, key=lambda r: r[0]):
        yield f"- {at.isoformat()} {' '.join(text.split())}"


@app.command()
def demo(
    model: str = typer.Option(None, help="Model to draft with (default: OPSDRAFT_MODEL, else the bundled one)."),
    keep: bool = typer.Option(False, help="Keep the demo's data directory from the previous run."),
) -> None:
    """Run the whole pipeline offline on embedded defaults, with a local fake Slack, and approve the drafts."""
    from opsdraft_app.demo import run_demo

    # Recorded, so the demo can check its own output for the sample's personal data too.
    ok = run_demo(Console(record=True), model=model, keep=keep)
    raise typer.Exit(0 if ok else 1)


@app.command("redaction-eval")
def redaction_eval(
    show: int = typer.Option(0, help="Also print the first N misses, false positives and damaged tokens."),
    presidio_set: bool = typer.Option(True, help="Also score presidio-evaluator's generated set (if installed)."),
    seeds: list[int] = typer.Option([], "--seed", help="Also a fresh generated set of this seed (repeatable)."),
) -> None:
    """Recall, precision, F2 per entity, damaged technical tokens and records/s: opsdraft vs stock Presidio."""
    settings = settings_or_exit()
    from opsdraft.privacy import get_redactor
    from redaction.evaluate import run as run_eval

    if settings.redaction_mode == "patterns":
        console.print("[yellow]OPSDRAFT_REDACTION_MODE=patterns: scoring without NER[/yellow]")
    run_eval(out=print, redactor=get_redactor(settings), with_presidio_set=presidio_set, show=show, seeds=tuple(seeds))


def progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(), console=console, transient=False)


if __name__ == "__main__":
    app()
