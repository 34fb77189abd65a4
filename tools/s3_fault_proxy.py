"""A fault-injecting HTTP proxy in front of a local S3 (moto): S3's failures, on a schedule.

Under load S3 answers ``500 InternalError`` and ``503 SlowDown``, and connections drop in the
middle of a response. The tests and ``tools/fault_table.py`` put this proxy between every S3
client (boto3, the ``aws`` CLI, GDAL's ``/vsis3/``) and moto, so those failures happen where
and as often as a test says, and the clients' retries can be counted instead of hoped for.

Every request is forwarded to the target unless a :class:`FaultRule` picks it. The kinds:

- ``internal_error``: ``500 InternalError`` with S3's XML error body (not forwarded);
- ``slow_down``: ``503 SlowDown``, S3's throttling answer (not forwarded);
- ``throttle``: ``429 Throttling``, the throttling answer of other AWS front ends (not forwarded);
- ``reset``: forwarded, then the status line, headers and half the body are sent and the socket
  is reset (RST): the server did the work, the client never heard;
- ``truncate``: forwarded, then the full ``Content-Length`` is announced, half the body sent and
  the connection closed cleanly (FIN): a short read that looks like a complete one to a careless
  reader.

A body-less answer (HEAD, an empty PUT reply) cut either way loses half its status line.

Schedules are counters, not chance: a rule counts the requests it matches (method, path and
User-Agent regular expressions: ``GDAL/``, ``aws-cli/``, ``Boto3/``) and fails every Nth, or
exactly the listed ones, up to a limit; ``every=1`` without a limit is the persistent fault
that outlasts any number of retries. With concurrent clients which request is the Nth varies
from run to run; how many are failed does not.

The proxy runs in a process of its own and :class:`S3FaultProxy` drives it over HTTP (rules,
counts, the requests seen, under ``/__fault_proxy__/``, a path no bucket can have). In the
caller's process it would deadlock: rasterio keeps the GIL through some GDAL calls that reach
S3 (reading georeferencing probes sidecar files), and a Python proxy in that process could not
answer them. ``python -m tools.s3_fault_proxy --target http://127.0.0.1:5000 --fault
slow_down:every=3`` runs one by hand (Ctrl-C prints the counts).
"""

import argparse
import http.client
import json
import re
import socket
import struct
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

INTERNAL_ERROR = "internal_error"
SLOW_DOWN = "slow_down"
THROTTLE = "throttle"
RESET = "reset"
TRUNCATE = "truncate"
# (status, reason, S3 error code, message) of the faults answered by the proxy itself.
ERROR_ANSWERS = {
    INTERNAL_ERROR: (500, "Internal Server Error", "InternalError", "We encountered an internal "
                     "error. Please try again."),
    SLOW_DOWN: (503, "Slow Down", "SlowDown", "Please reduce your request rate."),
    THROTTLE: (429, "Too Many Requests", "Throttling", "Rate exceeded"),
}  # fmt: skip
CUT_FAULTS = (RESET, TRUNCATE)
FAULT_KINDS = (*ERROR_ANSWERS, *CUT_FAULTS)
CONTROL = "/__fault_proxy__/"  # the control API's paths (bucket names cannot hold "_")
# Headers that describe one hop, not the message: never passed on.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "expect",
}


@dataclass
class FaultRule:
    """Which requests fail, and how.

    Attributes:
        kind: one of :data:`FAULT_KINDS`.
        method: regular expression the HTTP method must match in full (``GET|HEAD``).
        path: regular expression searched in the path and query (``/bucket/out/train/``).
        agent: regular expression searched in the User-Agent (``^GDAL/``: GDAL's requests).
        every: fail every Nth matching request (1: each one).
        at: instead of ``every``, fail exactly these matching requests (1 = the first).
        limit: at most this many faults (``None``: no limit).
    """

    kind: str
    method: str = ".*"
    path: str = ".*"
    agent: str = ".*"
    every: int = 1
    at: tuple[int, ...] = ()
    limit: int | None = None
    matched: int = field(default=0, init=False)
    injected: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}: one of {', '.join(FAULT_KINDS)}")
        if self.every < 1:
            raise ValueError(f"every must be at least 1, not {self.every}")
        self._method = re.compile(self.method, re.IGNORECASE)
        self._path = re.compile(self.path)
        self._agent = re.compile(self.agent)

    @classmethod
    def persistent(
        cls, kind: str, method: str = ".*", path: str = ".*", agent: str = ".*"
    ) -> "FaultRule":
        """Every matching request fails: what no number of retries gets past."""
        return cls(kind, method=method, path=path, agent=agent)

    @classmethod
    def parse(cls, text: str) -> "FaultRule":
        """``KIND[:key=value...]``, e.g. ``slow_down:method=GET:every=3:limit=10``."""
        kind, *pairs = text.split(":")
        options: dict[str, Any] = {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep or key not in ("method", "path", "agent", "every", "at", "limit"):
                raise ValueError(f"{text}: expected key=value with key method, path, agent, "
                                 "every, at or limit")  # fmt: skip
            if key in ("every", "limit"):
                options[key] = int(value)
            elif key == "at":
                options[key] = tuple(int(n) for n in value.split(","))
            else:
                options[key] = value
        return cls(kind, **options)

    def to_json(self) -> dict[str, Any]:
        """The rule's settings (not its counters), as :meth:`from_json` reads them."""
        return {k: v for k, v in asdict(self).items() if k not in ("matched", "injected")}

    @classmethod
    def from_json(cls, settings: dict[str, Any]) -> "FaultRule":
        """A rule from :meth:`to_json`'s settings."""
        return cls(**{**settings, "at": tuple(settings.get("at", ()))})

    def pick(self, method: str, path: str, agent: str = "") -> bool:
        """Whether this request fails (call under the proxy's lock: it counts)."""
        if not (
            self._method.fullmatch(method) and self._path.search(path) and self._agent.search(agent)
        ):
            return False
        if self.limit is not None and self.injected >= self.limit:
            return False
        self.matched += 1
        chosen = self.matched in self.at if self.at else self.matched % self.every == 0
        if chosen:
            self.injected += 1
        return chosen


@dataclass(frozen=True)
class Seen:
    """One request the proxy received: what was asked and what it did (``None``: forwarded)."""

    method: str
    path: str
    agent: str
    fault: str | None


def s3_error_body(code: str, message: str) -> bytes:
    """The XML body S3 sends with an error, as botocore and GDAL parse it."""
    request_id = uuid.uuid4().hex[:16].upper()
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{request_id}</RequestId><HostId>fault-proxy</HostId></Error>"
    ).encode()


def _head_bytes(status: int, reason: str, headers: Iterable[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}\r\n"]
    lines += [f"{name}: {value}\r\n" for name, value in headers]
    return ("".join(lines) + "\r\n").encode("latin-1")


class _Handler(BaseHTTPRequestHandler):
    """One client connection: reads each request, forwards it or fails it."""

    protocol_version = "HTTP/1.1"  # keep-alive, as S3 clients expect
    timeout = 60  # an idle client connection is closed after this many seconds
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the counts say what happened."""

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if body or self.command in ("PUT", "POST"):
            headers["Content-Length"] = str(len(body))
        for attempt in (1, 2):  # a kept-alive connection to the target may have timed out
            connection = self.server.target_connection()
            try:
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                break
            except (ConnectionError, http.client.HTTPException):
                self.server.drop_target_connection()
                if attempt == 2:
                    raise
        kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
        if self.command != "HEAD":  # a HEAD answer keeps the object's Content-Length
            kept = [(k, v) for k, v in kept if k.lower() != "content-length"]
            kept.append(("Content-Length", str(len(payload))))
        return response.status, response.reason, kept, payload

    def _answer_error(self, kind: str) -> None:
        status, reason, code, message = ERROR_ANSWERS[kind]
        body = s3_error_body(code, message)
        headers = [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]
        self.wfile.write(_head_bytes(status, reason, headers))
        if self.command != "HEAD":
            self.wfile.write(body)

    def _answer_cut(self, kind: str, head: bytes, payload: bytes) -> None:
        # Without a body, the status line is cut: a header block cut at a line's end and closed
        # would pass for a whole answer (http.client takes the end of the stream as its end).
        sent = head + payload[: len(payload) // 2] if payload else head[: head.index(b" ") + 3]
        self.wfile.write(sent)
        self.close_connection = True
        if kind == RESET:
            # Linger 0: close() sends RST instead of FIN and drops what is unsent.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        else:
            self.connection.shutdown(socket.SHUT_WR)

    def _answer_control(self, body: bytes) -> None:
        state = self.server.state
        action = self.path.removeprefix(CONTROL)
        if action == "rules" and self.command == "PUT":
            state.set_rules([FaultRule.from_json(rule) for rule in json.loads(body)])
        elif action == "reset" and self.command == "POST":
            state.reset()
        answer = {"counts": state.counts(), "seen": state.seen()}.get(action, {})
        payload = json.dumps(answer).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
        self.wfile.write(_head_bytes(200, "OK", headers) + payload)

    def _handle(self) -> None:
        body = self._read_body()
        if self.path.startswith(CONTROL):
            self._answer_control(body)
            return
        agent = self.headers.get("User-Agent", "")
        fault = self.server.state.decide(self.command, self.path, agent)
        if fault in ERROR_ANSWERS:
            self._answer_error(fault)
            return
        self.server.state.count("forwarded")
        status, reason, headers, payload = self._forward(body)
        head = _head_bytes(status, reason, headers)
        if fault in CUT_FAULTS:
            self._answer_cut(fault, head, payload if self.command != "HEAD" else b"")
            return
        self.wfile.write(head)
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


class _Server(ThreadingHTTPServer):
    """Threaded server that keeps the state, the client sockets and the target connections."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: "_ProxyState") -> None:
        super().__init__(address, _Handler)
        self.state = state
        self._local = threading.local()
        self._clients: set[socket.socket] = set()
        self._clients_lock = threading.Lock()

    def target_connection(self) -> http.client.HTTPConnection:
        """The kept-alive connection of this thread to the target."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(
                self.state.target_host, self.state.target_port, timeout=120
            )
            self._local.connection = connection
        return connection

    def drop_target_connection(self) -> None:
        """Forget this thread's connection to the target (it broke)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """Serve one client connection, then close this thread's connection to the target."""
        with self._clients_lock:
            self._clients.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._clients_lock:
                self._clients.discard(request)
            self.drop_target_connection()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Say nothing when a client hangs up (they do, after a fault); print anything else."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def close_clients(self) -> None:
        """Cut every client connection still open (kept-alive ones wait for more requests)."""
        with self._clients_lock:
            clients = list(self._clients)
        for client in clients:
            try:
                client.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _ProxyState:
    """What the proxy process knows: where to forward, the rules, the counts, the requests."""

    def __init__(self, target: str, rules: Iterable[FaultRule] = ()) -> None:
        parsed = urlparse(target)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ValueError(f"{target}: the target must be an http:// URL")
        self.target_host = parsed.hostname
        self.target_port = parsed.port or 80
        self._lock = threading.Lock()
        self._rules = list(rules)
        self._counts: dict[str, int] = {}
        self._seen: list[Seen] = []

    def set_rules(self, rules: Iterable[FaultRule]) -> None:
        """Replace the schedule (``[]``: forward everything)."""
        with self._lock:
            self._rules = list(rules)

    def reset(self) -> None:
        """Forget the counts and the requests seen (the rules keep their own counters)."""
        with self._lock:
            self._counts.clear()
            self._seen.clear()

    def decide(self, method: str, path: str, agent: str = "") -> str | None:
        """The fault for this request, if any; counts it either way."""
        with self._lock:
            picked = (rule.kind for rule in self._rules if rule.pick(method, path, agent))
            fault = next(picked, None)
            self._counts["requests"] = self._counts.get("requests", 0) + 1
            if fault is not None:
                self._counts[fault] = self._counts.get(fault, 0) + 1
            self._seen.append(Seen(method, path, agent, fault))
        return fault

    def count(self, name: str) -> None:
        """Add one to a counter (``forwarded``)."""
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + 1

    def counts(self) -> dict[str, int]:
        """``requests`` received, ``forwarded`` to the target, ``faults`` and each kind's."""
        with self._lock:
            counts = {"requests": 0, "forwarded": 0, **dict.fromkeys(FAULT_KINDS, 0)}
            counts.update(self._counts)
        counts["faults"] = sum(counts[kind] for kind in FAULT_KINDS)
        return counts

    def seen(self) -> list[list[str | None]]:
        """Every request received so far, oldest first, as JSON lists."""
        with self._lock:
            return [[s.method, s.path, s.agent, s.fault] for s in self._seen]


class S3FaultProxy:
    """A proxy process: ``start()`` it, point clients at :attr:`url`, read :meth:`counts`.

    Args:
        target: the URL of the S3 endpoint to forward to (moto: ``http://127.0.0.1:PORT``).
        rules: the faults, checked in order; the first rule that picks a request decides.
        host: where to listen (127.0.0.1: tests never open a port to the network).
        port: 0 picks a free one.
    """

    def __init__(
        self, target: str, rules: Iterable[FaultRule] = (), host: str = "127.0.0.1", port: int = 0
    ) -> None:
        _ProxyState(target)  # check the target now, in the caller's process
        self.target = target
        self.host = host
        self.port = port
        self._rules = list(rules)
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The endpoint URL to give S3 clients."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> "S3FaultProxy":
        """Start the proxy process; return once it listens."""
        command = [sys.executable, __file__, "--target", self.target]  # stdlib only: any cwd
        command += ["--host", self.host, "--port", str(self.port)]
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        first_line = self._process.stdout.readline()  # "forwarding http://HOST:PORT -> ..."
        if not first_line.startswith("forwarding http://"):
            self.stop()
            raise RuntimeError(f"the fault proxy did not start: {first_line!r}")
        self.port = int(first_line.split()[1].rsplit(":", 1)[1])
        self.set_rules(self._rules)
        return self

    def stop(self) -> None:
        """Stop the proxy process."""
        if self._process is not None:
            self._process.terminate()
            self._process.communicate(timeout=10)
            self._process = None

    def __enter__(self) -> "S3FaultProxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _control(self, method: str, action: str, payload: Any = None) -> Any:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            body = None if payload is None else json.dumps(payload)
            connection.request(method, CONTROL + action, body=body)
            return json.loads(connection.getresponse().read())
        finally:
            connection.close()

    def set_rules(self, rules: Iterable[FaultRule]) -> None:
        """Replace the schedule (``[]``: forward everything); counting starts anew."""
        self._control("PUT", "rules", [rule.to_json() for rule in rules])

    def reset(self) -> None:
        """Forget the counts and the requests seen (the rules keep their own counters)."""
        self._control("POST", "reset")

    def counts(self) -> dict[str, int]:
        """``requests`` received, ``forwarded`` to the target, ``faults`` and each kind's."""
        return self._control("GET", "counts")

    def seen(self) -> list[Seen]:
        """Every request received so far, oldest first."""
        return [Seen(*fields) for fields in self._control("GET", "seen")]


def client_environment(url: str) -> dict[str, str]:
    """The variables that send boto3, the aws CLI and GDAL's ``/vsis3/`` to ``url`` (http)."""
    return {
        "AWS_ENDPOINT_URL": url,  # boto3, botocore and the aws CLI
        "AWS_S3_ENDPOINT": urlparse(url).netloc,  # GDAL
        "AWS_HTTPS": "NO",
        "AWS_VIRTUAL_HOSTING": "FALSE",
    }


def fake_aws_environment(url: str, scratch: Path) -> dict[str, str]:
    """Fake credentials, no user config, every client sent to ``url``, real AWS unreachable.

    Real AWS endpoints are HTTPS: HTTPS goes to a closed port, and ``url`` (plain HTTP on
    127.0.0.1) stays direct, so nothing can reach an account. ``scratch`` holds the (absent)
    config files, in place of the user's ``~/.aws``.
    """
    closed = "http://127.0.0.1:9"
    local = "127.0.0.1,localhost"
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(scratch / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(scratch / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "HTTPS_PROXY": closed,
        "https_proxy": closed,
        "NO_PROXY": local,
        "no_proxy": local,
        **client_environment(url),
    }


def main(argv: list[str] | None = None) -> int:
    """Run a proxy until stopped (Ctrl-C prints its counts)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", required=True, help="S3 endpoint URL (http://host:port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free)")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        type=FaultRule.parse,
        help="KIND[:method=RE][:path=RE][:agent=RE][:every=N][:at=N,M][:limit=N]; kinds: "
        + ", ".join(FAULT_KINDS),
    )
    args = parser.parse_args(argv)
    state = _ProxyState(args.target, args.fault)
    with _Server((args.host, args.port), state) as server:
        host, port = server.server_address[:2]
        print(f"forwarding http://{host}:{port} -> {args.target}", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print(state.counts())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
