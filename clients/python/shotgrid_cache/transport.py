"""Connect over HTTP/1.1 with http.client: unary JSON calls on one kept-alive connection per
thread, and server streams on a connection of their own.

Failures to reach the service (refused, reset, timed out) are CacheErrors with
`unreachable=True`; everything the server answered keeps its own code and message.
"""
import gzip
import http.client
import json
import socket
import ssl
import struct
import threading
import time

from .errors import CacheError, DeadlineExceeded, Internal, Unavailable, code_for_http_status, error_for

SERVICE_PATH = "/shotgrid.cache.v1.CacheService/"
USER_AGENT = "shotgrid-cache-python/0.1"
# The server closes keep-alive connections idle for 65 s; one idle for longer than this is
# replaced before use rather than failing the call on a connection the server just closed.
_IDLE_REUSE_S = 50.0

FLAG_COMPRESSED = 0x01
FLAG_END_STREAM = 0x02


class Endpoint(object):
    """Where the service is: scheme, host, port and an optional path prefix (behind a proxy)."""

    def __init__(self, url):
        from urllib.parse import urlsplit

        if not isinstance(url, str) or url == "":
            raise ValueError("url: must be the service's address, e.g. http://localhost:8080")
        parts = urlsplit(url if "://" in url else "http://" + url)
        if parts.scheme not in ("http", "https"):
            raise ValueError("url: scheme must be http or https, got %r" % parts.scheme)
        if not parts.hostname:
            raise ValueError("url: no host in %r" % url)
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        self.url = "%s://%s%s" % (parts.scheme, parts.netloc, self.prefix)

    def connection(self, timeout):
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=ssl.create_default_context())
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def path(self, method):
        return self.prefix + SERVICE_PATH + method


def _connected(endpoint, timeout):
    """A new connection to `endpoint`, connected; Unavailable (nothing sent) if it cannot be."""
    conn = endpoint.connection(timeout)
    try:
        conn.connect()
    except (OSError, http.client.HTTPException) as err:
        conn.close()
        raise _unreachable(endpoint, err, timeout, sent=False)
    return conn


def _unreachable(endpoint, err, timeout, sent, write=False):
    """The error for a failure to reach the service: a timeout after the request went out is
    deadline_exceeded (the call may have run), anything else unavailable. A write whose answer
    was lost says it may have been made: it is never sent again blindly."""
    maybe = " (the write may have been made: read before trying again)" if write and sent else ""
    if isinstance(err, socket.timeout) and sent:
        return DeadlineExceeded("shotgrid-cache at %s did not answer within %s s%s" % (endpoint.url, timeout, maybe), unreachable=True)
    what = "timed out" if isinstance(err, socket.timeout) else (str(err) or type(err).__name__)
    return Unavailable("cannot reach shotgrid-cache at %s: %s%s" % (endpoint.url, what, maybe), unreachable=True)


def error_from_body(status, content_type, body):
    """The CacheError for a non-200 answer: the Connect error body when there is one, else the
    Connect protocol's mapping of the HTTP status."""
    if content_type.startswith("application/json") and body:
        try:
            parsed = json.loads(body.decode("utf-8"))
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("code"), str):
            return error_for(parsed["code"], str(parsed.get("message", "")))
    text = body[:200].decode("utf-8", "replace").strip()
    return error_for(code_for_http_status(status), "HTTP %d from shotgrid-cache%s" % (status, (": " + text) if text else ""))


class _Held(object):
    """A thread's connection; closed when the thread ends and its thread-local data goes."""

    def __init__(self, conn):
        self.conn = conn
        self.used = time.monotonic()

    def __del__(self):
        self.conn.close()


class Transport(object):
    """One kept-alive connection per thread for unary calls; thread-safe."""

    def __init__(self, url, token, timeout):
        self.endpoint = Endpoint(url)
        self.timeout = float(timeout)
        if self.timeout <= 0:
            raise ValueError("timeout: must be more than 0 seconds, got %r" % timeout)
        self._token = token
        self._local = threading.local()

    def headers(self, content_type):
        h = {"content-type": content_type, "connect-protocol-version": "1", "user-agent": USER_AGENT}
        if self._token:
            h["authorization"] = "Bearer " + self._token
        return h

    def _drop(self):
        held = getattr(self._local, "held", None)
        self._local.held = None
        if held is not None:
            held.conn.close()

    def close(self):
        """Close this thread's connection (each thread's own closes when the thread ends)."""
        self._drop()

    def unary(self, method, message, retry_stale=True):
        """POST one Connect JSON call; the decoded answer, or a CacheError.

        retry_stale: a read may be sent again when a kept-alive connection turns out closed
        before any answer came (the server never saw it, or it has no effect). Writes pass False.
        """
        body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        headers = self.headers("application/json")
        headers["accept-encoding"] = "gzip"
        headers["connect-timeout-ms"] = str(int(self.timeout * 1000))
        for attempt in (0, 1):
            held = getattr(self._local, "held", None)
            reused = held is not None and time.monotonic() - held.used < _IDLE_REUSE_S
            if reused:
                conn = held.conn
            else:
                self._drop()
                conn = _connected(self.endpoint, self.timeout)
                held = self._local.held = _Held(conn)
            sent = False
            try:
                conn.request("POST", self.endpoint.path(method), body, headers)
                sent = True
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException) as err:
                self._drop()
                # A kept-alive connection the server closed meanwhile: nothing was answered.
                stale = isinstance(err, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError))
                if reused and attempt == 0 and stale and (retry_stale or not sent):
                    continue
                raise _unreachable(self.endpoint, err, self.timeout, sent, write=not retry_stale)
            held.used = time.monotonic()
            if resp.getheader("connection", "").lower() == "close":
                self._drop()
            if (resp.getheader("content-encoding") or "").lower() == "gzip":
                try:
                    data = gzip.decompress(data)
                except (OSError, EOFError) as err:
                    raise Internal("shotgrid-cache sent a broken gzip body: %s" % err)
            content_type = (resp.getheader("content-type") or "").lower()
            if resp.status != 200:
                raise error_from_body(resp.status, content_type, data)
            try:
                return json.loads(data.decode("utf-8"))
            except ValueError as err:
                raise Internal("shotgrid-cache sent an answer that is not JSON: %s" % err)
        raise AssertionError("unreachable")

    def open_stream(self, method, message, idle_timeout):
        """Start a server stream; a Stream to read messages from, or a CacheError."""
        payload = json.dumps(message, separators=(",", ":")).encode("utf-8")
        body = struct.pack(">BI", 0, len(payload)) + payload
        conn = _connected(self.endpoint, self.timeout)
        try:
            conn.request("POST", self.endpoint.path(method), body, self.headers("application/connect+json"))
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as err:
            conn.close()
            raise _unreachable(self.endpoint, err, self.timeout, sent=True)
        content_type = (resp.getheader("content-type") or "").lower()
        if resp.status != 200 or not content_type.startswith("application/connect+json"):
            try:
                data = resp.read()
            except (OSError, http.client.HTTPException):
                data = b""
            conn.close()
            raise error_from_body(resp.status, content_type, data)
        # Between messages the server sends heartbeats; silence longer than this is a dead link.
        if conn.sock is not None:
            conn.sock.settimeout(idle_timeout)
        return Stream(self.endpoint, conn, resp, idle_timeout)


class Stream(object):
    """The messages of one Connect server stream."""

    def __init__(self, endpoint, conn, resp, idle_timeout):
        self._endpoint = endpoint
        self._conn = conn
        self._resp = resp
        self._idle_timeout = idle_timeout
        self._closed = False

    def _read_exact(self, n):
        chunks = []
        left = n
        while left > 0:
            chunk = self._resp.read(left)
            if not chunk:
                return None if left == n else b"".join(chunks)
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def next_message(self):
        """The next message as decoded JSON; None when the stream ended cleanly. Raises the
        stream's error (a CacheError), or an unreachable one when the link broke."""
        try:
            head = self._read_exact(5)
            if head is None and self._closed:
                return None
            if head is None:
                raise Unavailable("shotgrid-cache at %s closed the stream without ending it" % self._endpoint.url, unreachable=True)
            if len(head) < 5:
                raise Unavailable("shotgrid-cache at %s broke off a message" % self._endpoint.url, unreachable=True)
            flags, length = struct.unpack(">BI", head)
            data = self._read_exact(length) if length else b""
            if data is None or len(data) < length:
                raise Unavailable("shotgrid-cache at %s broke off a message" % self._endpoint.url, unreachable=True)
        except CacheError:
            raise
        except socket.timeout:
            raise Unavailable("no message from shotgrid-cache at %s for %s s" % (self._endpoint.url, self._idle_timeout), unreachable=True)
        except (OSError, http.client.HTTPException, ValueError, AttributeError) as err:
            # close() from another thread: http.client may fail in odd ways mid-read.
            if self._closed:
                return None
            raise Unavailable("the stream from shotgrid-cache at %s broke: %s" % (self._endpoint.url, err), unreachable=True)
        if flags & FLAG_COMPRESSED:
            raise Internal("shotgrid-cache sent a compressed stream message though none was asked for")
        try:
            decoded = json.loads(data.decode("utf-8")) if data else {}
        except ValueError as err:
            raise Internal("shotgrid-cache sent a stream message that is not JSON: %s" % err)
        if flags & FLAG_END_STREAM:
            error = decoded.get("error") if isinstance(decoded, dict) else None
            if isinstance(error, dict):
                raise error_for(str(error.get("code", "unknown")), str(error.get("message", "")))
            return None
        return decoded

    def close(self):
        """End the stream; safe from another thread (a blocked read returns)."""
        self._closed = True
        sock = self._conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._conn.close()
