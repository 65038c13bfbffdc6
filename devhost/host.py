"""The local function host: runs ``function_app.py`` on this machine against Azurite.

Azure Functions Core Tools cannot be installed here, so this host does the part of
its job the project needs. It loads the app and inspects each function's trigger:

* HTTP triggers are served on 127.0.0.1 under ``/api/`` with the route templates of
  the app (``{name}`` parameters; several functions may share a route by method);
* timer triggers fire from their NCRONTAB schedule (UTC, six fields) as the clock
  passes them; a timer that raises is logged and fires again at its next occurrence;
* Service Bus queue triggers are fed from the Azurite queue of the same name; a
  message that fails five times goes to ``{queue}-poison``, as a queue trigger would;
* blob triggers poll their Azurite container (in Azure they take Event Grid events,
  the only blob source Flex Consumption supports); a blob is handed over once per
  ETag, remembered by a receipt in ``azure-webjobs-hosts`` as the Functions host
  does, and after five failures its name goes to ``webjobs-blobtrigger-poison``.

The clock is the app's settable clock: ``tick(to)`` moves it a day at a time, running
the day's ``daily`` jobs (the payment providers' simulators process that day's charges
and deliver their webhooks to this host: ``devhost.providers``), firing timers and
draining queues until idle, so months of billing run in seconds. No function
that raises stops the host: it logs, and retries or poisons as the Functions host does. The
development endpoints (``/_dev/...``: the clock, tick, the development JWKS) exist only
here, never in Azure, and only when the host runs on the settable clock: they need no
token, so a host on the system clock (``abonno host --system-clock``) answers 404.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import azure.functions as func
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.functions.blob import InputStream
from azure.functions.servicebus import ServiceBusMessage
from azure.functions.timer import TimerRequest
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient
from croniter import croniter

from shared.adapters.bus import unpack
from shared.clock import Clock, SettableClock

from . import dev_idp, issuer
from .azurite import ROOT

log = logging.getLogger("abonno.host")
MAX_DEQUEUE = 5
VISIBILITY = 60


@dataclass
class HttpFunction:
    name: str
    methods: set[str]
    pattern: re.Pattern[str]
    call: Callable[[func.HttpRequest], func.HttpResponse]


@dataclass
class TimerFunction:
    name: str
    schedule: str
    call: Callable[[func.TimerRequest], None]


@dataclass
class BlobFunction:
    name: str
    container: str
    prefix: str
    call: Callable[[InputStream], None]
    failures: dict[str, int] = field(default_factory=dict)


@dataclass
class QueueFunction:
    name: str
    queue: str
    call: Callable[[Any], None]
    many: bool = False  # cardinality "many": handed a list of messages (an envelope's) at once


_FUNCTIONS: dict[int, list[Any]] = {}


def functions_of(app: func.FunctionApp) -> list[Any]:
    """The app's functions; ``get_functions`` may be called only once per app object."""
    if id(app) not in _FUNCTIONS:
        _FUNCTIONS[id(app)] = app.get_functions()
    return _FUNCTIONS[id(app)]


def route_pattern(route: str) -> re.Pattern[str]:
    def param(match: re.Match[str]) -> str:
        name = match.group(2)
        return f"(?P<{name}>.*)" if match.group(1) else f"(?P<{name}>[^/]+)"

    regex = re.sub(r"{(\*?)(\w+)(?::[^}]*)?\??}", param, route.strip("/"))
    return re.compile(f"^{regex}$")


class LocalHost:
    def __init__(self, clock: Clock, storage_connection: str, app_module: str = "function_app",
                 workers: int = 4) -> None:
        self.clock = clock
        self.queues = QueueServiceClient.from_connection_string(storage_connection)
        self.blobs = BlobServiceClient.from_connection_string(storage_connection)
        self.workers = workers
        self.http: list[HttpFunction] = []
        self.timers: list[TimerFunction] = []
        self.consumers: list[QueueFunction] = []
        self.blob_functions: list[BlobFunction] = []
        self.processed = 0
        self.failed = 0
        self.mailbox: Any = None  # the local SMTP server the app mails to (devhost.mailbox), if this process runs it
        self.providers: Any = None  # the payment providers' simulators (devhost.providers), if this process runs them
        self.daily: list[Callable[[date], Any]] = []  # what else runs each day the clock passes (the simulators' batch)
        self._tick_lock = threading.Lock()  # a tick and a live round never drain or fire at once
        self._fired_until: datetime | None = None  # timers a tick has fired up to
        self._server: ThreadingHTTPServer | None = None
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))  # function_app.py sits at the project root, as in Azure
        self._load(importlib.import_module(app_module).app)
        self._ensure_container("azure-webjobs-hosts")
        for name in [c.queue for c in self.consumers] + ["webjobs-blobtrigger-poison"]:
            for queue in (name, name + "-poison"):
                try:
                    self.queues.create_queue(queue)
                except ResourceExistsError:
                    pass

    def _load(self, app: func.FunctionApp) -> None:
        for fn in functions_of(app):
            trigger = fn.get_trigger()
            name = fn.get_function_name()
            user = fn.get_user_function()
            kind = trigger.get_binding_name()
            if kind == "httpTrigger":
                methods = {str(getattr(m, "value", m)).upper() for m in (trigger.methods or ["GET", "POST"])}
                self.http.append(HttpFunction(name, methods, route_pattern(trigger.route or name), user))
            elif kind == "timerTrigger":
                self.timers.append(TimerFunction(name, trigger.schedule, user))
            elif kind == "serviceBusTrigger":
                many = str(getattr(trigger.cardinality, "value", trigger.cardinality) or "").lower() == "many"
                self.consumers.append(QueueFunction(name, trigger.queue_name, user, many))
            elif kind == "blobTrigger":
                container, _, pattern = trigger.path.partition("/")
                self.blob_functions.append(BlobFunction(name, container, pattern.split("{", 1)[0], user))
                self._ensure_container(container)
            else:
                log.warning("function %s: trigger %s is not run by the local host", name, kind)

    # ---- HTTP -------------------------------------------------------------------------------
    def handle_http(self, method: str, target: str, headers: dict[str, str],
                    body: bytes) -> tuple[int, dict[str, str], bytes]:
        url = urllib.parse.urlsplit(target)
        if url.path.startswith(dev_idp.PREFIX) and isinstance(self.clock, SettableClock):  # My page's sign-in
            return dev_idp.handle(method, url.path, {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()},
                                  body)
        if url.path.startswith("/_dev/"):
            return self._dev(method, url.path, body)
        if not url.path.startswith("/api/"):
            return _json(404, {"title": "Not found", "status": 404})
        path = url.path[len("/api/"):].strip("/")
        matches = [(f, m) for f in self.http if (m := f.pattern.match(path))]
        chosen = next(((f, m) for f, m in matches if method in f.methods), None)
        if chosen is None:
            if not matches:
                return _json(404, {"title": "Not found", "status": 404})
            status, headers, payload = _json(405, {"title": "Method not allowed", "status": 405})
            return status, headers | {"Allow": ", ".join(sorted({m for f, _ in matches for m in f.methods}))}, payload
        fn, match = chosen
        params = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        request = func.HttpRequest(method, f"http://localhost{target}", headers=headers, params=params,
                                   route_params={k: urllib.parse.unquote(v) for k, v in match.groupdict().items()},
                                   body=body)
        response = fn.call(request)
        out = dict(response.headers)
        out.setdefault("Content-Type", response.mimetype or "application/json")
        return response.status_code, out, response.get_body()

    def _dev(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if not isinstance(self.clock, SettableClock):
            return _json(404, {"title": "Not found", "status": 404})
        if path == "/_dev/jwks.json":
            return _json(200, issuer.jwks())
        if path == "/_dev/clock" and method == "GET":
            return _json(200, {"now": self.clock.now().isoformat()})
        if method != "POST" or path not in ("/_dev/clock", "/_dev/tick"):
            return _json(404, {"title": "Not found", "status": 404})
        try:
            sent = json.loads(body or b"{}")
            moment = datetime.fromisoformat(sent["now"]) if path == "/_dev/clock" else None
            target = date.fromisoformat(sent["to"]) if path == "/_dev/tick" else None
            if moment is not None and moment.tzinfo is None:
                raise ValueError("naive")
        except (ValueError, KeyError, TypeError):
            return _json(400, {"title": "Bad request", "status": 400,
                               "detail": 'send {"now": "<ISO time with offset>"} or {"to": "YYYY-MM-DD"}'})
        if moment is not None:
            self.clock.set(moment)
            return _json(200, {"now": self.clock.now().isoformat()})
        assert target is not None
        return _json(200, self.tick(target))

    def serve(self, port: int = 7071, host: str = "127.0.0.1") -> ThreadingHTTPServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 1 << 16  # headers and body leave in one write, flushed per request (no Nagle stall)

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() != "x-forwarded-for"}
                    hops = [*(self.headers.get_all("X-Forwarded-For") or []), self.client_address[0]]
                    headers["X-Forwarded-For"] = ", ".join(hops)  # as Azure's front end: the peer appended
                    status, headers, payload = owner.handle_http(self.command, self.path, headers, body)
                except Exception:
                    log.exception("%s %s failed", self.command, self.path)
                    status, headers, payload = _json(500, {"title": "Internal error", "status": 500})
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() not in ("content-length", "connection"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            def __getattr__(self, name: str) -> Any:  # every method, known or not, is routed (405 if not served)
                if name.startswith("do_"):
                    return self._any
                raise AttributeError(name)

            def log_message(self, fmt: str, *args: Any) -> None:
                log.debug("http: " + fmt, *args)

        server = ThreadingHTTPServer((host, port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name="abonno-http", daemon=True).start()
        self._server = server
        return server

    def shutdown(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    # ---- timers -----------------------------------------------------------------------------
    def fire_timers(self, after: datetime, until: datetime) -> int:
        """Run every timer whose schedule falls in (after, until]; each at most once per call."""
        fired = 0
        for timer in self.timers:
            schedule = croniter(timer.schedule, after.astimezone(UTC), second_at_beginning=True)
            if schedule.get_next(datetime) <= until:
                log.info("timer %s at %s", timer.name, until.isoformat())
                fired += 1
                try:
                    timer.call(TimerRequest(past_due=False))
                except Exception:  # as the Functions host: logged, and the next occurrence fires as usual
                    self.failed += 1
                    log.exception("timer %s failed at %s", timer.name, until.isoformat())
        return fired

    # ---- blobs ------------------------------------------------------------------------------
    def _ensure_container(self, name: str) -> None:
        try:
            self.blobs.create_container(name)
        except ResourceExistsError:
            pass

    def poll_blobs(self) -> int:
        """Hand every new or changed blob to its function once; returns how many were handled."""
        handled = 0
        receipts = self.blobs.get_container_client("azure-webjobs-hosts")
        for fn in self.blob_functions:
            container = self.blobs.get_container_client(fn.container)
            for props in container.list_blobs(name_starts_with=fn.prefix or None):
                receipt = receipts.get_blob_client(
                    f"blobreceipts/{fn.name}/{fn.container}/{props.name}/{props.etag.strip(chr(34))}")
                if receipt.exists() or fn.failures.get(props.name, 0) >= MAX_DEQUEUE:
                    continue
                handled += self._deliver_blob(fn, container, props, receipt)
        return handled

    def _deliver_blob(self, fn: BlobFunction, container: Any, props: Any, receipt: Any) -> int:
        blob = container.get_blob_client(props.name)
        try:
            data = blob.download_blob().readall()
        except ResourceNotFoundError:
            return 0
        try:
            fn.call(InputStream(data=data, name=f"{fn.container}/{props.name}", uri=blob.url, length=len(data)))
        except Exception:
            fn.failures[props.name] = fn.failures.get(props.name, 0) + 1
            log.exception("function %s failed on blob %s (attempt %d)", fn.name, props.name, fn.failures[props.name])
            if fn.failures[props.name] >= MAX_DEQUEUE:
                self.queues.get_queue_client("webjobs-blobtrigger-poison").send_message(
                    json.dumps({"FunctionId": fn.name, "ContainerName": fn.container, "BlobName": props.name}))
            return 1
        receipt.upload_blob(b"", overwrite=True)
        return 1

    # ---- queues -----------------------------------------------------------------------------
    def drain(self) -> int:
        """Feed blobs and queued messages to their functions until nothing is left."""
        handled = 0
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            while True:
                handled += self.poll_blobs()
                batch = []
                for consumer in self.consumers:
                    client = self.queues.get_queue_client(consumer.queue)
                    batch += [(consumer, client, m) for m in
                              client.receive_messages(messages_per_page=32, visibility_timeout=VISIBILITY,
                                                      max_messages=32)]
                if not batch:
                    return handled
                list(pool.map(lambda item: self._deliver(*item), batch))
                handled += len(batch)

    def _deliver(self, consumer: QueueFunction, client: Any, message: Any) -> None:
        """Hand each message of an envelope to the function (all at once to a function of
        cardinality "many", as Service Bus hands a batch); delete the envelope when all succeeded."""
        try:
            items = [ServiceBusMessage(body=item.encode().encode(), message_id=item.id,
                                       delivery_count=message.dequeue_count, enqueued_time_utc=message.inserted_on,
                                       application_properties={}, user_properties={}, content_type="application/json")
                     for item in unpack(message.content)]
            if consumer.many:
                consumer.call(items)
            else:
                for item in items:
                    consumer.call(item)
            self.processed += 1
            client.delete_message(message)
        except Exception:
            self.failed += 1
            log.exception("function %s failed on message %s (attempt %s)", consumer.name, message.id,
                          message.dequeue_count)
            if (message.dequeue_count or 0) >= MAX_DEQUEUE:
                self.queues.get_queue_client(consumer.queue + "-poison").send_message(message.content)
                client.delete_message(message)
            else:
                client.update_message(message, visibility_timeout=0)

    # ---- the test clock ---------------------------------------------------------------------
    def run_daily(self, day: date) -> None:
        """What runs beside the app once a day (the providers' batch, by the same clock); a
        failure is logged, and the day goes on."""
        for job in self.daily:
            try:
                job(day)
            except Exception:
                self.failed += 1
                log.exception("daily job %s failed on %s", getattr(job, "__qualname__", job), day)

    def tick(self, to: date) -> dict[str, Any]:
        """Move the clock a day at a time up to ``to``, firing timers and draining queues."""
        started = time.monotonic()
        days = timers = messages = 0
        if not isinstance(self.clock, SettableClock):
            raise TypeError("only a host on the settable clock can be ticked")
        with self._tick_lock:
            messages += self.drain()
            while self.clock.now().date() < to:
                before = self.clock.now()
                self.clock.set(before + timedelta(days=1))
                self.run_daily(self.clock.now().date())
                timers += self.fire_timers(before, self.clock.now())
                self._fired_until = self.clock.now()
                messages += self.drain()
                days += 1
        return {"now": self.clock.now().isoformat(), "days": days, "timers_fired": timers,
                "messages": messages, "elapsed_s": round(time.monotonic() - started, 3)}

    def run_forever(self, poll: float = 1.0) -> None:
        """Live mode: timers on the clock's schedule, queues polled; nothing a function or
        the storage emulator raises stops the loop."""
        last = self.clock.now()
        while True:
            last = self.beat(last)
            time.sleep(poll)

    def beat(self, last: datetime) -> datetime:
        """One round of live mode: the timers due since ``last``, then the queues; returns
        the time it ran up to. A failure is logged and the next round runs as usual.

        It takes the tick's lock: a round draining beside a tick would hold messages out of
        the tick's sight, so the tick could answer before their work is done (and what a
        caller reads next would be half-written); the timers a tick fired are not fired again."""
        with self._tick_lock:
            now = self.clock.now()
            since = max(last, self._fired_until or last)
            try:
                if now.date() > last.date():
                    self.run_daily(now.date())
                if now > since:
                    self.fire_timers(since, now)
                self.drain()
            except Exception:
                log.exception("host round at %s failed; continuing", now.isoformat())
            return max(now, last)


def _json(status: int, payload: Any) -> tuple[int, dict[str, str], bytes]:
    kind = "application/problem+json" if status >= 400 else "application/json"
    return status, {"Content-Type": kind}, json.dumps(payload).encode()
