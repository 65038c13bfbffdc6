"""``abonno``: the local host, its test clock, the end-to-end demo, development tokens.

    abonno demo [--subscribers 1000] [--months 3] [--json]
    abonno host [--port 7071] [--clock 2026-01-01T06:00:00+00:00 | --system-clock] [--data .azurite]
    abonno tick --to 2026-04-01 [--url http://127.0.0.1:7071]
    abonno token --tenant demo --role admin
    abonno token --tenant demo --subscriber reader-1 [--email kari@example.no]
    abonno layout --tenant demo [--status | --move [--bucket-size 64] [--wait S] | --verify] [--storage CONN]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from datetime import datetime
from typing import TYPE_CHECKING

import requests

from . import issuer
from .azurite import Azurite, Ports

if TYPE_CHECKING:
    from shared.adapters.layout_rows import LayoutRows
    from shared.adapters.layouts import Layouts

    from .host import LocalHost
    from .mailbox import Mailbox


def start_host(azurite: Azurite, clock_start: datetime | None, running: bool, port: int,
               settable: bool = True) -> tuple[LocalHost, int]:
    """Wire the app to Azurite and the settable clock (or the system clock, without the
    ``/_dev`` endpoints), then serve it, with the payment providers' simulators on the same
    clock unless the settings name the providers (``ABONNO_VIPPS_URL``, ``ABONNO_SWEDBANKPAY_URL``).
    Returns (host, port)."""
    os.environ["AzureWebJobsStorage"] = azurite.connection_string
    os.environ["ABONNO_CLOCK"] = "settable" if settable else "system"
    issuer.configure_environment()
    mailbox = local_mailbox(azurite)
    from shared import bootstrap
    from shared.clock import SystemClock

    from .host import LocalHost

    if clock_start:
        bootstrap.settable_clock.set(clock_start)
    bootstrap.settable_clock.running = running
    bootstrap.context()  # tables and queues exist before the first request
    clock = bootstrap.settable_clock if settable else SystemClock()
    host = LocalHost(clock, azurite.connection_string)
    host.mailbox = mailbox
    server = host.serve(port)
    if not os.environ.get("ABONNO_VIPPS_URL") and not os.environ.get("ABONNO_SWEDBANKPAY_URL"):
        from .providers import start_simulators  # no provider named in the settings: the simulators

        host.providers = start_simulators(clock, f"http://127.0.0.1:{server.server_address[1]}")
        host.providers.wire(bootstrap.context())
        host.daily.append(host.providers.process)
    return host, server.server_address[1]


def local_mailbox(azurite: Azurite) -> Mailbox | None:
    """The local SMTP server the app mails to, unless the settings name a mail service
    (``ABONNO_SMTP_HOST``, ``ABONNO_ACS_EMAIL_*``): mails are kept as ``.eml`` in
    the Azurite container ``mailbox``."""
    if any(os.environ.get(s) for s in ("ABONNO_SMTP_HOST", "ABONNO_ACS_EMAIL_ENDPOINT", "ABONNO_ACS_EMAIL_CONNECTION")):
        return None
    from azure.storage.blob import BlobServiceClient

    from .mailbox import Mailbox

    box = Mailbox(blobs=BlobServiceClient.from_connection_string(azurite.connection_string)).up()
    os.environ["ABONNO_SMTP_HOST"], os.environ["ABONNO_SMTP_PORT"] = "127.0.0.1", str(box.port)
    return box


def cmd_host(args: argparse.Namespace) -> int:
    if args.storage:
        azurite = Azurite.external(args.storage)
    else:
        azurite = Azurite.running_or_start(Ports(), in_memory=False, location=args.data)
    clock = datetime.fromisoformat(args.clock) if args.clock else None
    host, port = start_host(azurite, clock, running=True, port=args.port, settable=not args.system_clock)
    print(f"abonno host: http://127.0.0.1:{port}/api/openapi.json  (storage: Azurite {azurite.ports})", flush=True)
    try:
        host.run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        azurite.stop()
    return 0


def cmd_tick(args: argparse.Namespace) -> int:
    response = requests.post(f"{args.url}/_dev/tick", json={"to": args.to}, timeout=3600)
    response.raise_for_status()
    print(json.dumps(response.json()))
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    if args.subscriber:  # a subscriber's token of the tenant's (development) identity provider
        print(issuer.subscriber_token(args.tenant, args.subscriber, email=args.email, name=args.name, ttl=args.ttl))
        return 0
    if not args.role:
        raise SystemExit("abonno token: give --role (a merchant token) or --subscriber (a subscriber's)")
    print(issuer.token(args.tenant, args.role, ttl=args.ttl))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    summary = run_demo(args.subscribers, args.months, quiet=args.json, port=args.port)
    print(json.dumps(summary) if args.json else _readable(summary))
    return 0 if summary["consistent"] else 1


def cmd_layout(args: argparse.Namespace) -> int:
    """A tenant's storage layout: show it, move it to buckets online, or verify a move
    (``shared.service.layout_move``). JSON on stdout, progress on stderr; exit 1 when a
    subscriber could not be moved or the verification found a problem (2: refused, nothing done)."""
    from azure.core.exceptions import AzureError

    from shared.adapters.indexes import Tenants
    from shared.adapters.layout_rows import LayoutRows
    from shared.adapters.layouts import Layouts
    from shared.adapters.tables import Storage

    refused = _layout_refused(args)  # before storage is touched: a bad argument changes nothing
    if refused:
        print(f"abonno layout: {refused}", file=sys.stderr)
        return 2
    conn = args.storage or os.environ.get("AzureWebJobsStorage")
    azurite = None if conn else Azurite.running_or_start(Ports(), in_memory=False, location=args.data)
    try:
        try:
            storage = Storage.from_connection_string(conn or azurite.connection_string)  # type: ignore[union-attr]
        except ValueError:  # the SDK's words; the string itself holds the account key: not echoed
            print("abonno layout: --storage is not a storage connection string", file=sys.stderr)
            return 2
        storage.ensure_tables()
        if not Tenants(storage).exists(args.tenant):  # a typo would get a layout row, a lease, a report
            print(f"abonno layout: no tenant {args.tenant}", file=sys.stderr)
            return 2
        return _layout(args, LayoutRows(storage), Layouts(storage))
    except AzureError as exc:  # unreachable, or failed mid-way: a move is resumable, run it again
        print(f"abonno layout: storage failed ({type(exc).__name__}); a move resumes where it stopped: run it again",
              file=sys.stderr)
        return 1
    finally:
        if azurite is not None:
            azurite.stop()  # only if this command started it


def _layout_refused(args: argparse.Namespace) -> str | None:
    """Why the arguments cannot be acted on (None: they can). A tenant id goes into table keys,
    a bucket size into ``Layout`` and a wait into ``sleep`` after the move is announced."""
    from shared.adapters.auth import is_tenant_id
    from shared.domain.placement import MAX_BUCKET_SIZE

    if not is_tenant_id(args.tenant):
        return f"{args.tenant!r} is not a tenant id (1-40 of a-z 0-9 -, not starting with -)"
    if args.bucket_size is not None and not (args.move and 1 <= args.bucket_size <= MAX_BUCKET_SIZE):
        return f"--bucket-size goes with --move and is 1-{MAX_BUCKET_SIZE}, not {args.bucket_size}"
    if args.wait is not None and not (args.move and math.isfinite(args.wait) and args.wait >= 0):
        return f"--wait goes with --move and is a number of seconds, 0 or more, not {args.wait}"
    from shared.adapters.layouts import TTL_S

    if args.wait is not None and args.wait < TTL_S and not args.alone:
        return (f"--wait {args.wait:g} is shorter than the layout cache ({TTL_S:g} s): a running process could "
                "still create a subscriber the old way after the move; say --alone if no other process uses "
                "this storage")
    return None


def _layout(args: argparse.Namespace, rows: LayoutRows, layouts: Layouts) -> int:
    from shared.adapters.layouts import LayoutUnknown

    try:
        return _layout_known(args, rows, layouts)
    except LayoutUnknown as unknown:  # its row lost or garbled: say so; the last move says what it was
        print(f"abonno layout: {unknown}", file=sys.stderr)
        if not (args.move or args.verify):
            reports = rows.reports(args.tenant)
            print(json.dumps({"tenant": args.tenant, "layout": None, "last_run": reports[-1] if reports else None}))
        return 1


def _layout_known(args: argparse.Namespace, rows: LayoutRows, layouts: Layouts) -> int:
    from shared.service import layout_move

    if args.move:
        def progress(line: str) -> None:
            print(line, file=sys.stderr, flush=True)

        try:
            report = layout_move.move(rows, layouts, args.tenant, args.bucket_size, args.wait, progress)
        except layout_move.MoveRefused as refused:
            print(f"abonno layout: {refused}", file=sys.stderr)
            return 2
        print(json.dumps(report.totals()))
        return 0 if report.ok else 1
    if args.verify:
        found = layout_move.verify(rows, layouts, args.tenant)
        for problem in found.problems:
            print(problem, file=sys.stderr)
        print(json.dumps({"tenant": args.tenant, "subscribers": found.subscribers,
                          "history_rows": found.history_rows, "problems": len(found.problems), "ok": found.ok}))
        return 0 if found.ok else 1
    print(json.dumps(layout_move.status(rows, layouts, args.tenant)))
    return 0


def _readable(s: dict[str, object]) -> str:
    """The summary for a person: amounts in kroner, the consistency checks spelled out."""
    currency = str(s.get("currency") or "")
    lines = ["", f"Abonno demo ({s['tenant']}), clock {s['clock_start']} -> {s['clock_end']}", ""]
    for key, value in s.items():
        if key in ("tenant", "clock_start", "clock_end", "currency"):
            continue
        if "_minor" in key and isinstance(value, int):
            value = f"{value / 100:,.2f} {currency}".replace(",", " ")  # display only: money stays integer
        lines.append(f"  {key.replace('_minor', '').replace('_', ' '):30} {value}")
    lines += ["", "  invoice numbers consecutive, invoiced - paid = -ledger, every payment booked or set aside,",
              "  every document delivered once or its failure recorded, every mail and EHF file arrived: "
              + ("yes" if s["consistent"] else "NO")]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=os.environ.get("ABONNO_LOG", "WARNING"), format="%(asctime)s %(name)s %(message)s")
    parser = argparse.ArgumentParser(prog="abonno", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("host", help="serve function_app.py locally against Azurite")
    p.add_argument("--port", type=int, default=7071)
    p.add_argument("--clock", help="start the clock at this ISO time (it then runs on)")
    p.add_argument("--data", default=".azurite", help="Azurite data folder when the host starts Azurite")
    p.add_argument("--storage", help="use this storage connection string instead of a local Azurite")
    p.add_argument("--system-clock", action="store_true",
                   help="run on the system clock: no settable clock, no /_dev endpoints (as in Azure)")
    p.set_defaults(run=cmd_host)
    p = sub.add_parser("tick", help="move a running host's clock to a date, firing timers and draining queues")
    p.add_argument("--to", required=True, help="YYYY-MM-DD")
    p.add_argument("--url", default="http://127.0.0.1:7071")
    p.set_defaults(run=cmd_tick)
    p = sub.add_parser("token", help="print a merchant API token (--role) or a subscriber's token (--subscriber) "
                       "from the development issuer")
    p.add_argument("--tenant", required=True)
    p.add_argument("--role", action="append", choices=["admin", "support", "reader"])
    p.add_argument("--subscriber", metavar="SUBJECT", help="a subscriber's token for this login subject instead")
    p.add_argument("--email", help="the subscriber token's e-mail claim (never enough to link a subscriber)")
    p.add_argument("--name", help="the subscriber token's name claim")
    p.add_argument("--ttl", type=int, default=3600)
    p.set_defaults(run=cmd_token)
    p = sub.add_parser("demo", help="end to end: orders over HTTP, months of renewals, a summary")
    p.add_argument("--subscribers", type=int, default=1000)
    p.add_argument("--months", type=int, default=3)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--port", type=int, default=0, help="HTTP port of the in-process host (0: any free)")
    p.set_defaults(run=cmd_demo)
    p = sub.add_parser("layout", help="a tenant's storage layout: --status, --move to bucket partitions "
                       "(online, resumable), --verify the move")
    p.add_argument("--tenant", required=True)
    what = p.add_mutually_exclusive_group()
    what.add_argument("--status", action="store_true", help="the layout and what is left to move (the default)")
    what.add_argument("--move", action="store_true", help="move every subscriber into its bucket, then verify")
    what.add_argument("--verify", action="store_true", help="check every moved subscriber against its bucket")
    p.add_argument("--bucket-size", type=int, help="subscribers per bucket (1-100; default 64)")
    p.add_argument("--wait", type=float, help="seconds between announcing the move and moving anyone "
                   "(default: the layout cache time + 5)")
    p.add_argument("--alone", action="store_true", help="no other process uses this storage: a --wait shorter "
                   "than the layout cache is safe")
    p.add_argument("--storage", help="storage connection string (default: AzureWebJobsStorage, else the local Azurite)")
    p.add_argument("--data", default=".azurite", help="Azurite data folder when a local Azurite is started")
    p.set_defaults(run=cmd_layout)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
