"""CacheClient: shotgrid-cache from Python, in shotgun_api3's shapes."""
import collections
import datetime
import threading

from .errors import CacheError, InvalidArgument
from .snapshot import Fallback, SnapshotDir
from .transport import Transport
from .values import check_fields, check_type_name, check_whole, convert_filters, convert_order, flatten_entity, to_int
from .watch import Watch
from .writes import batch_request, create_request, delete_request, update_request

_Freshness = collections.namedtuple("Freshness", ["source", "age_ms", "as_of_event_id", "stale"])


class Freshness(_Freshness):
    """How fresh an answer is.

    source: "cache", "shotgrid", or "snapshot" (answered from a snapshot file, the service
    being unreachable). age_ms: milliseconds since the data was fetched from ShotGrid (for a
    snapshot: since it was written). as_of_event_id: the newest event applied when it was.
    stale: True when the answer may miss changes (ShotGrid or the service unreachable).
    """

    __slots__ = ()

    @property
    def age(self):
        return datetime.timedelta(milliseconds=self.age_ms)


def _freshness(raw):
    raw = raw or {}
    return Freshness(
        source=raw.get("source", ""),
        age_ms=to_int(raw.get("ageMs")),
        as_of_event_id=to_int(raw.get("asOfEventId")),
        stale=bool(raw.get("stale", False)),
    )


def _names(values, where):
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return [check_type_name(v, "%s[%d]" % (where, i)) for i, v in enumerate(values)]


class CacheClient(object):
    """A client of one shotgrid-cache service. Safe to share between threads: each thread
    uses a kept-alive connection of its own, and `last_freshness` is per thread.

    url: the service, e.g. "http://localhost:8080". token: a bearer token (`auth new-token`),
    or None. timeout: seconds to wait for a connection and for each answer (also sent to the
    server as the call's deadline). fallback_snapshot_dir: a folder of snapshot files (see the
    service's `serve --snapshot-dir`): when the service cannot be reached, get_entity and find
    are answered from it, marked stale. Every call tries the service first, so its return is
    noticed on the next call.
    """

    def __init__(self, url, token=None, timeout=10.0, fallback_snapshot_dir=None):
        if token is not None and (not isinstance(token, str) or token.strip() == "" or any(c in token for c in "\r\n")):
            raise ValueError("token: must be the token text (one line), or None")
        self._transport = Transport(url, token, timeout)
        self.url = self._transport.endpoint.url
        self._snapshots = SnapshotDir(fallback_snapshot_dir) if fallback_snapshot_dir else None
        self._local = threading.local()
        # What is known of the service's largest page: (n, exact). Not exact: it is at least n.
        self._page_bound = (1, False)
        self._page_lock = threading.Lock()

    def __repr__(self):
        # Never the token.
        return "CacheClient(%r)" % self.url

    @property
    def last_freshness(self):
        """The Freshness of this thread's last answer (None before any)."""
        return getattr(self._local, "freshness", None)

    def close(self):
        """Close this thread's connection; the client stays usable (it reconnects)."""
        self._transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------ reads

    def get_entity(self, entity_type, id, fields=None):  # noqa: A002 - the issue's name
        """One entity as shotgun_api3 returns it ({"type", "id", fields...}); NotFound when it
        does not exist or is retired. fields None: the type's default fields."""
        request = {"entityType": check_type_name(entity_type, "entity_type"), "id": check_whole(id, "id", 1), "fields": check_fields(fields)}
        try:
            answer = self._transport.unary("GetEntity", request)
        except CacheError as err:
            return self._fallback(err, lambda fb: fb.get_entity(request["entityType"], request["id"], request["fields"]))
        self._local.freshness = _freshness(answer.get("freshness"))
        return flatten_entity(answer.get("entity") or {})

    def find(
        self,
        entity_type,
        filters,
        fields=None,
        order=None,
        limit=0,
        page=0,
        retired=False,
        include_archived_projects=True,
        filter_operator=None,
        retired_only=None,
    ):
        """Entities matching shotgun_api3 filters, as shotgun_api3's find returns them.

        filters: [["code", "is", "SH010"]], groups {"filter_operator": "any", "filters": [...]}
        (also inside a list), or the REST API's {"logical_operator", "conditions"}. order:
        [{"field_name": "code", "direction": "asc"}]. limit 0 and page 0: every match, read a
        page at a time as shotgun_api3 does; otherwise `limit` entities (0: the service's largest
        page) of the 1-based `page`. filter_operator and retired_only are shotgun_api3's names, taken as keywords
        so its calls move over unchanged.
        """
        if filter_operator is not None:
            if not isinstance(filters, (list, tuple)):
                raise InvalidArgument("filter_operator: only applies when filters is a list")
            filters = {"filter_operator": filter_operator, "filters": list(filters)}
        if retired_only is not None:
            retired = retired_only
        request = {
            "entityType": check_type_name(entity_type, "entity_type"),
            "fields": check_fields(fields),
            "order": convert_order(order),
            "limit": check_whole(limit, "limit"),
            "page": check_whole(page, "page"),
            "retired": bool(retired),
            "includeArchivedProjects": bool(include_archived_projects),
        }
        converted = convert_filters(filters)
        if converted is not None:
            request["filters"] = converted
        try:
            entities, freshness = self._query(request)
        except CacheError as err:
            return self._fallback(
                err,
                lambda fb: fb.find(
                    request["entityType"],
                    converted,
                    request["fields"],
                    request["order"],
                    request["limit"],
                    request["page"],
                    request["retired"],
                    request["includeArchivedProjects"],
                ),
            )
        self._local.freshness = freshness
        return [flatten_entity(e) for e in entities]

    def _query(self, request):
        """Query, reading every page when limit and page are 0, as shotgun_api3's find does:
        the service answers at most its largest page (--max-page-size) and a script moved over
        must not silently get the first 5000 shots only.

        The service does not say its page size, so the client learns a bound: an answer shorter
        than an earlier complete one is complete; otherwise the next page is asked for with the
        first answer's length as the limit, and a non-empty one tells the page size exactly."""
        answer = self._transport.unary("Query", request)
        entities = list(answer.get("entities") or [])
        freshness = [_freshness(answer.get("freshness"))]
        first = len(entities)
        if request["limit"] != 0 or request["page"] != 0 or first == 0:
            return entities, freshness[0]
        with self._page_lock:
            bound, exact = self._page_bound
        if first < bound or (exact and first != bound):
            return entities, freshness[0]
        page = 2
        while True:
            more = self._transport.unary("Query", dict(request, limit=first, page=page))
            got = list(more.get("entities") or [])
            freshness.append(_freshness(more.get("freshness")))
            entities.extend(got)
            if page == 2:
                with self._page_lock:
                    if got:
                        self._page_bound = (first, True)
                    elif not self._page_bound[1]:
                        self._page_bound = (max(self._page_bound[0], first), False)
            if len(got) < first:
                break
            page += 1
        # The answer is as fresh as its oldest page.
        oldest = max(freshness, key=lambda f: f.age_ms)
        return entities, oldest._replace(stale=any(f.stale for f in freshness), as_of_event_id=min(f.as_of_event_id for f in freshness))

    def find_one(self, entity_type, filters, fields=None, order=None, retired=False, include_archived_projects=True, filter_operator=None, retired_only=None):
        """The first entity find would return, or None."""
        found = self.find(
            entity_type,
            filters,
            fields=fields,
            order=order,
            limit=1,
            retired=retired,
            include_archived_projects=include_archived_projects,
            filter_operator=filter_operator,
            retired_only=retired_only,
        )
        return found[0] if found else None

    def _fallback(self, err, answer):
        if self._snapshots is None or not err.unreachable:
            raise err
        fb = Fallback(self._snapshots, "the service is unreachable (%s)" % err.message)
        result = answer(fb)
        oldest = min(fb.used, key=lambda s: s.written_at)
        self._local.freshness = Freshness(source="snapshot", age_ms=oldest.age_ms(), as_of_event_id=oldest.event_id, stale=True)
        return result

    # ------------------------------------------------------------ writes

    def _write(self, method, request):
        # Never sent twice: a lost answer is an error saying the write may have been made.
        return self._transport.unary(method, request, retry_stale=False)

    def create(self, entity_type, data, return_fields=None):
        """Create one entity, made as the token's sudo_as_login; the new entity as shotgun_api3
        returns it (with `return_fields`, or ShotGrid's choice)."""
        answer = self._write("Create", create_request(entity_type, data, return_fields))
        return flatten_entity(answer.get("entity") or {})

    def update(self, entity_type, entity_id, data, multi_entity_update_modes=None, return_fields=None):
        """Change fields of one entity; the entity as shotgun_api3 returns it.
        multi_entity_update_modes: {"assets": "add" | "remove" | "set"} per multi-entity field."""
        answer = self._write("Update", update_request(entity_type, entity_id, data, multi_entity_update_modes, return_fields))
        return flatten_entity(answer.get("entity") or {})

    def delete(self, entity_type, entity_id):
        """Retire one entity (ShotGrid's delete); True, as shotgun_api3 returns."""
        self._write("Delete", delete_request(entity_type, entity_id))
        return True

    def revive(self, entity_type, entity_id):
        """Bring a retired entity back; False when it was not retired."""
        return bool(self._write("Revive", delete_request(entity_type, entity_id)).get("revived", False))

    def batch(self, requests):
        """Several creates, updates and deletes in one transaction, all or none, in shotgun_api3's
        shape ([{"request_type": "create", "entity_type": "Shot", "data": {...}}, ...]); one
        result per request: the entity for a create or update, True for a delete."""
        answer = self._write("Batch", batch_request(requests))
        results = []
        for r in answer.get("results") or []:
            results.append(flatten_entity(r["entity"]) if "entity" in r else bool(r.get("deleted", False)))
        return results

    # ------------------------------------------------------------ changes

    def watch(self, entity_types=None, project_ids=None, since_event_id=0, heartbeats=False, reconnect_timeout=None, idle_timeout=60.0):
        """An iterator of Change (and Resync) objects as changes are applied to the cache.

        since_event_id: replay changes after this event id first; 0: live only. When the
        connection drops or the server restarts, it reconnects and resumes after the last event
        id it saw; a Resync says the server could not replay and local copies must be dropped.
        heartbeats: also yield Heartbeat objects (the stream's idle ticks). reconnect_timeout:
        seconds to keep trying to reconnect before raising (None: forever). idle_timeout:
        seconds of silence (the server sends heartbeats) after which the link is taken as dead.
        Errors that reconnecting cannot mend (invalid_argument, unauthenticated, ...) raise.
        """
        request = {
            "entityTypes": _names(entity_types, "entity_types"),
            "projectIds": [check_whole(p, "project_ids[%d]" % i, 1) for i, p in enumerate(project_ids or [])],
            "sinceEventId": check_whole(since_event_id, "since_event_id"),
        }
        return Watch(self._transport, request, heartbeats, reconnect_timeout, idle_timeout)
