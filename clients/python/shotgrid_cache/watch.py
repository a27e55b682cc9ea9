"""WatchChanges as a Python iterator that outlives dropped connections.

The iterator remembers the position the server told it (the highest change event id seen, a
heartbeat's last event id, a resync's resume id: the project README's "Resuming streams") and, when the connection drops or the server
ends the stream (a restart, a deploy), reconnects with `since_event_id` set to it, so no change
is lost: the server replays what came after, or sends a resync when it cannot.
"""
import collections
import threading
import time

from .errors import CacheError
from .values import parse_timestamp, to_int

Change = collections.namedtuple(
    "Change", ["event_id", "event_type", "kind", "entity_type", "entity_id", "project_id", "attribute_name", "created_at", "user"]
)
Change.__doc__ = """One change applied to the cache.

kind: "new", "change", "retirement" or "revival". project_id: 0 for none. attribute_name: the
changed field for kind "change". created_at: an aware datetime. user: {"type", "id", "name"} or None.
"""
Change.entity = property(lambda self: {"type": self.entity_type, "id": self.entity_id}, doc="The changed entity as a link dict.")

Resync = collections.namedtuple("Resync", ["reason", "resume_event_id"])
Resync.__doc__ = """The server asks the client to drop its local copies (it fell behind, or asked to
resume from further back than the server remembers). Changes after resume_event_id follow."""

Heartbeat = collections.namedtuple("Heartbeat", ["last_event_id", "time"])
Heartbeat.__doc__ = """The stream is alive; last_event_id is the newest event the server applied."""

_KINDS = {
    "CHANGE_KIND_NEW": "new",
    "CHANGE_KIND_CHANGE": "change",
    "CHANGE_KIND_RETIREMENT": "retirement",
    "CHANGE_KIND_REVIVAL": "revival",
    1: "new",
    2: "change",
    3: "retirement",
    4: "revival",
}
# Codes after which reconnecting can help; any other (a bad request, a refused token, a fault in
# the server or in what it sent) ends the iteration with the error.
_RETRYABLE = ("unavailable", "deadline_exceeded", "aborted", "resource_exhausted")


def parse_message(msg):
    """A WatchChangesResponse's JSON as a Change, Heartbeat or Resync (None for a kind this
    client does not know, so a newer server's additions are skipped, not fatal)."""
    if "change" in msg:
        c = msg["change"] or {}
        user = c.get("user")
        return Change(
            event_id=to_int(c.get("eventId")),
            event_type=c.get("eventType", ""),
            kind=_KINDS.get(c.get("kind"), "unspecified"),
            entity_type=c.get("entityType", ""),
            entity_id=int(c.get("entityId", 0)),
            project_id=int(c.get("projectId", 0)),
            attribute_name=c.get("attributeName", ""),
            created_at=parse_timestamp(c.get("createdAt")),
            user=dict(type=user.get("type", ""), id=int(user.get("id", 0)), name=user.get("name", "")) if isinstance(user, dict) else None,
        )
    if "heartbeat" in msg:
        h = msg["heartbeat"] or {}
        return Heartbeat(last_event_id=to_int(h.get("lastEventId")), time=parse_timestamp(h.get("time")))
    if "resync" in msg:
        r = msg["resync"] or {}
        return Resync(reason=r.get("reason", ""), resume_event_id=to_int(r.get("resumeEventId")))
    return None


class Watch(object):
    """An iterator of Change and Resync (and Heartbeat, if asked) that reconnects by itself.

    last_event_id: the position a reconnection resumes from. close(): ends the iteration, from
    any thread. Iterate it from one thread only.
    """

    def __init__(self, transport, request, heartbeats, reconnect_timeout, idle_timeout):
        self._transport = transport
        self._request = request
        self._heartbeats = heartbeats
        self._reconnect_timeout = reconnect_timeout
        self._idle_timeout = idle_timeout
        self.last_event_id = request["sinceEventId"]
        self._stream = None
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._messages = self._run()

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._messages)

    next = __next__

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._closed.set()
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.close()

    def _open(self):
        request = dict(self._request, sinceEventId=str(self.last_event_id))
        stream = self._transport.open_stream("WatchChanges", request, self._idle_timeout)
        with self._lock:
            self._stream = stream
        if self._closed.is_set():
            stream.close()
        return stream

    def _run(self):
        failing_since = None
        delay = 0.1
        while not self._closed.is_set():
            try:
                stream = self._open()
                while True:
                    raw = stream.next_message()
                    if raw is None:
                        break  # ended cleanly (the server stopped): reconnect
                    failing_since = None
                    delay = 0.1
                    msg = parse_message(raw)
                    if isinstance(msg, Change):
                        # The highest id seen (README "Resuming streams"): a late, lower id
                        # arriving after a higher one must not move the resume point back.
                        self.last_event_id = max(self.last_event_id, msg.event_id)
                        yield msg
                    elif isinstance(msg, Resync):
                        self.last_event_id = msg.resume_event_id
                        yield msg
                    elif isinstance(msg, Heartbeat):
                        self.last_event_id = msg.last_event_id
                        if self._heartbeats:
                            yield msg
            except CacheError as err:
                if self._closed.is_set():
                    return
                if err.code not in _RETRYABLE:
                    raise
                now = time.monotonic()
                if failing_since is None:
                    failing_since = now
                elif self._reconnect_timeout is not None and now - failing_since > self._reconnect_timeout:
                    raise
            finally:
                with self._lock:
                    stream, self._stream = self._stream, None
                if stream is not None:
                    stream.close()
            # Back off between attempts (0.1 s doubling to 5 s); close() cuts the wait short.
            self._closed.wait(delay)
            delay = min(delay * 2, 5.0)
