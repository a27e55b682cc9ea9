"""Answers from snapshot files when the service cannot be reached.

The files are the ones `serve --snapshot-dir` writes (docs/snapshots.md): DIR/<EntityType>.json,
format "shotgrid-cache-snapshot/1". get_entity and find are answered for the common operators
(is, is_not, in, not_in, contains, not_contains, starts_with, ends_with, greater_than, less_than,
between, not_between, and/or groups, links by id), with the semantics of the simulated site
(src/simulator/query.ts): text matching ignores case, `is` does not; multi-entity fields match
when any of their links does; nulls never compare; sorts put nulls last ascending, ties by id.
Anything else raises Unavailable naming what could not be answered: a wrong answer from a
fallback is worse than none.
"""
import datetime
import json
import os
import threading

from .errors import NotFound, Unavailable
from .values import inbound, parse_date_time

FORMAT = "shotgrid-cache-snapshot/1"
# The service's default fields (README "Default fields"), of which a snapshot carries some.
DEFAULT_FIELDS = ("code", "name", "content", "subject", "title", "description", "project", "sg_status_list", "created_at", "updated_at")
_TEXT_OPS = ("contains", "not_contains", "starts_with", "ends_with")
_ORDER_OPS = ("greater_than", "less_than", "between", "not_between")
_EQUALITY_OPS = ("is", "is_not", "in", "not_in")


class Snapshot(object):
    def __init__(self, entity_type, event_id, written_at, fields, entities):
        self.entity_type = entity_type
        self.event_id = event_id
        self.written_at = written_at
        self.fields = fields
        self.entities = entities
        self.by_id = dict((e["id"], e) for e in entities)

    def age_ms(self):
        now = datetime.datetime.now(datetime.timezone.utc)
        return max(0, int((now - self.written_at).total_seconds() * 1000))


class SnapshotDir(object):
    """The snapshot folder; files are parsed once per change (size and mtime), thread-safe."""

    def __init__(self, path):
        self.path = path
        self._lock = threading.Lock()
        self._loaded = {}

    def load(self, entity_type, why):
        """The snapshot of a type; Unavailable (saying `why` the service was not asked) when there is none."""
        if not isinstance(entity_type, str) or not entity_type or "/" in entity_type or "\\" in entity_type or entity_type.startswith("."):
            raise Unavailable("%s; no snapshot can hold entity type %r" % (why, entity_type))
        file = os.path.join(self.path, entity_type + ".json")
        try:
            st = os.stat(file)
        except OSError:
            raise Unavailable("%s; and there is no snapshot of %s (%s)" % (why, entity_type, file))
        key = (st.st_size, st.st_mtime_ns)
        with self._lock:
            hit = self._loaded.get(entity_type)
            if hit is not None and hit[0] == key:
                return hit[1]
        try:
            with open(file, "rb") as f:
                raw = json.loads(f.read().decode("utf-8"))
        except (OSError, ValueError) as err:
            raise Unavailable("%s; and the snapshot %s cannot be read: %s" % (why, file, err))
        snap = _parse(raw, entity_type, file, why)
        with self._lock:
            self._loaded[entity_type] = (key, snap)
        return snap


def _parse(raw, entity_type, file, why):
    def bad(reason):
        return Unavailable("%s; and the snapshot %s is not usable: %s" % (why, file, reason))

    if not isinstance(raw, dict):
        raise bad("not a JSON object")
    if raw.get("format") != FORMAT:
        raise bad("format is %r, this client reads %r" % (raw.get("format"), FORMAT))
    if raw.get("entityType") != entity_type:
        raise bad("it holds entityType %r" % (raw.get("entityType"),))
    event_id = raw.get("eventId")
    if not isinstance(event_id, int) or isinstance(event_id, bool):
        raise bad("eventId must be a whole number")
    written = raw.get("writtenAt")
    written_at = parse_date_time(written) if isinstance(written, str) else None
    if written_at is None:
        raise bad("writtenAt must be YYYY-MM-DDTHH:MM:SSZ, got %r" % (written,))
    fields = raw.get("fields")
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise bad("fields must be a list of field names")
    entities = raw.get("entities")
    if not isinstance(entities, list):
        raise bad("entities must be a list")
    for i, e in enumerate(entities):
        if not isinstance(e, dict) or not isinstance(e.get("id"), int) or e.get("type") != entity_type:
            raise bad("entities[%d] is not a %s record with an id" % (i, entity_type))
    return Snapshot(entity_type, event_id, written_at, list(fields), entities)


class Fallback(object):
    """get_entity and find answered from a SnapshotDir; `why` says why the service was not used."""

    def __init__(self, snapshots, why):
        self.snapshots = snapshots
        self.why = why
        # Every snapshot an answer read from: the freshness is that of the oldest.
        self.used = []

    def _load(self, entity_type):
        snap = self.snapshots.load(entity_type, self.why)
        if snap not in self.used:
            self.used.append(snap)
        return snap

    def cannot(self, what):
        return Unavailable("%s; and the snapshot cannot answer this: %s" % (self.why, what))

    # ------------------------------------------------------------ reading fields

    def _check_field(self, snap, name):
        if name not in ("id", "type") and name not in snap.fields:
            raise self.cannot("the snapshot of %s does not carry field %r" % (snap.entity_type, name))

    def resolve(self, snap, path):
        """The steps of a (possibly dotted) field path, checked against the snapshots it reads:
        [(snapshot, field), ...] where every field but the last is a link to the next snapshot."""
        parts = path.split(".")
        if len(parts) % 2 == 0:
            raise self.cannot("%r is not a field path (field, or link.Type.field)" % path)
        steps = []
        for i in range(0, len(parts) - 1, 2):
            self._check_field(snap, parts[i])
            steps.append((snap, parts[i]))
            snap = self._load(parts[i + 1])
        self._check_field(snap, parts[-1])
        steps.append((snap, parts[-1]))
        return steps

    @staticmethod
    def read(steps, record):
        """The value a resolved path reads on a record, as the site reads it (null when a link
        on the way is empty or points elsewhere)."""
        for (snap, field), (target, _) in zip(steps, steps[1:]):
            link = record.get(field)
            if not isinstance(link, dict) or link.get("type") != target.entity_type:
                return None
            record = target.by_id.get(link.get("id"))
            if record is None:
                return None
        field = steps[-1][1]
        return record["id"] if field == "id" else record.get(field)

    # ------------------------------------------------------------ the two calls

    def get_entity(self, entity_type, entity_id, fields):
        snap = self._load(entity_type)
        record = snap.by_id.get(entity_id)
        if record is None:
            raise NotFound("%s %s is not in the snapshot (%s, current to event %d)" % (entity_type, entity_id, self.why, snap.event_id))
        return self._project(snap, record, fields)

    def find(self, entity_type, filters, fields, order, limit, page, retired, include_archived_projects):
        snap = self._load(entity_type)
        if retired:
            raise self.cannot("retired records (snapshots hold active records only)")
        predicate = self._compile(snap, filters, "filters")
        records = [r for r in snap.entities if predicate(r)]
        if not include_archived_projects:
            records = self._without_archived(snap, records)
        self._sort(snap, records, order)
        if limit and limit > 0:
            start = (max(page, 1) - 1) * limit
            records = records[start : start + limit]
        return [self._project(snap, r, fields) for r in records]

    def _project(self, snap, record, fields):
        names = fields if fields else [f for f in DEFAULT_FIELDS if f in snap.fields]
        out = {"type": record["type"], "id": record["id"]}
        for name in names:
            if name not in ("type", "id"):
                out[name] = inbound(self.read(self.resolve(snap, name), record))
        return out

    def _without_archived(self, snap, records):
        projects = self._load("Project")
        if "archived" not in projects.fields:
            raise self.cannot("include_archived_projects=False (the Project snapshot does not carry 'archived')")
        archived = set(p["id"] for p in projects.entities if p.get("archived") is True)
        if snap.entity_type == "Project":
            return [r for r in records if r["id"] not in archived]
        self._check_field(snap, "project")
        return [r for r in records if not (isinstance(r.get("project"), dict) and r["project"].get("id") in archived)]

    def _sort(self, snap, records, order):
        records.sort(key=lambda r: r["id"])
        # Stable sorts applied from the last key to the first give the multi-key order; nulls
        # last ascending and first descending, ties by id, as the site sorts.
        for item in reversed(order or []):
            desc = item.get("direction") == "desc"
            path = item["field"]
            steps = self.resolve(snap, path)
            keyed = [(self._sort_value(self.read(steps, r)), r) for r in records]
            present = [k for k in keyed if k[0] is not None]
            missing = [k[1] for k in keyed if k[0] is None]
            try:
                present.sort(key=lambda k: k[0], reverse=desc)
            except TypeError:
                raise self.cannot("sorting %r: its values are of mixed kinds" % path)
            ordered = [k[1] for k in present]
            records[:] = (missing + ordered) if desc else (ordered + missing)

    @staticmethod
    def _sort_value(v):
        if v is None:
            return None
        if isinstance(v, bool):
            return (0, int(v))
        if isinstance(v, (int, float)):
            return (0, v)
        if isinstance(v, str):
            return (1, v.lower())
        if isinstance(v, dict):
            return (1, str(v.get("name") or "").lower())
        if isinstance(v, list):
            if not v:
                return None
            return (1, ",".join(str(x.get("name") or "") if isinstance(x, dict) else str(x) for x in v).lower())
        return (2, json.dumps(v, sort_keys=True))

    # ------------------------------------------------------------ filters

    def _compile(self, snap, node, where):
        if node is None:
            return lambda r: True
        if isinstance(node, list):
            preds = [self._compile_node(snap, c, "%s[%d]" % (where, i)) for i, c in enumerate(node)]
            return lambda r: all(p(r) for p in preds)
        return self._compile_node(snap, node, where)

    def _compile_node(self, snap, node, where):
        if isinstance(node, dict):
            op = node.get("logical_operator")
            preds = [self._compile_node(snap, c, "%s.conditions[%d]" % (where, i)) for i, c in enumerate(node.get("conditions") or [])]
            if op == "or":
                return lambda r: any(p(r) for p in preds)
            return lambda r: all(p(r) for p in preds)
        if not isinstance(node, list) or len(node) < 2 or not isinstance(node[0], str) or not isinstance(node[1], str):
            raise self.cannot("%s is not a condition [field, operator, value]" % where)
        path, op, values = node[0], node[1], node[2:]
        if op not in _EQUALITY_OPS + _TEXT_OPS + _ORDER_OPS:
            raise self.cannot("operator %r (at %s)" % (op, where))
        # Operators that take a list accept it flattened or as one list.
        if len(values) == 1 and isinstance(values[0], list) and op not in ("is", "is_not"):
            values = values[0]
        steps = self.resolve(snap, path)

        def read(r):
            return self.read(steps, r)

        def one():
            if len(values) != 1:
                raise self.cannot("%s: operator %r takes one value, got %d" % (where, op, len(values)))
            return values[0]

        if op in ("is", "is_not", "in", "not_in"):
            wanted = [one()] if op in ("is", "is_not") else list(values)
            positive = lambda r: any(_matches(read(r), w) for w in wanted)  # noqa: E731
        elif op in _TEXT_OPS:
            needle = one()
            if not isinstance(needle, str):
                raise self.cannot("%s: %r takes text, got %r" % (where, op, needle))
            needle = needle.lower()
            test = {
                "contains": lambda s: needle in s,
                "not_contains": lambda s: needle in s,
                "starts_with": lambda s: s.startswith(needle),
                "ends_with": lambda s: s.endswith(needle),
            }[op]
            positive = lambda r: isinstance(read(r), str) and test(read(r).lower())  # noqa: E731
        elif op in ("greater_than", "less_than"):
            bound = one()
            sign = 1 if op == "greater_than" else -1
            positive = lambda r: _compare(read(r), bound) == sign  # noqa: E731
        else:
            if len(values) != 2:
                raise self.cannot("%s: %r takes two values (low, high), got %d" % (where, op, len(values)))
            lo, hi = values

            def positive(r):
                v = read(r)
                return _compare(v, lo) in (0, 1) and _compare(v, hi) in (0, -1)

        if op in ("is_not", "not_in", "not_contains", "not_between"):
            return lambda r: not positive(r)
        return positive


def _is_link(v):
    return isinstance(v, dict) and isinstance(v.get("type"), str) and "id" in v


def _link_id(v):
    i = v.get("id")
    if isinstance(i, str) and i.isdigit():
        return int(i)
    return i


def _matches(value, wanted):
    """`is` for one wanted value: links by type and id, lists (multi-entity, tags) when any item
    matches, an empty list or null matching null; date-times to the second; numbers and text
    as the site coerces them."""
    if isinstance(value, list):
        if wanted is None:
            return len(value) == 0
        return any(_matches(v, wanted) for v in value)
    if value is None or wanted is None:
        return value is None and wanted is None
    if _is_link(value) or _is_link(wanted):
        return _is_link(value) and _is_link(wanted) and value["type"] == wanted["type"] and _link_id(value) == _link_id(wanted)
    return _compare(value, wanted) == 0 if not isinstance(value, str) or not isinstance(wanted, str) else _same_text(value, wanted)


def _same_text(a, b):
    da, db = parse_date_time(a), parse_date_time(b)
    if da is not None and db is not None:
        return da == db
    return a == b


def _compare(value, bound):
    """-1, 0 or 1, or None when the two do not compare (null, or different kinds)."""
    if value is None or bound is None:
        return None
    if isinstance(value, bool) or isinstance(bound, bool):
        if isinstance(value, bool) and isinstance(bound, bool):
            return (value > bound) - (value < bound)
        return None
    if isinstance(value, (int, float)):
        if isinstance(bound, str):
            try:
                bound = float(bound)
            except ValueError:
                return None
        if not isinstance(bound, (int, float)):
            return None
        return (value > bound) - (value < bound)
    if isinstance(value, str):
        if isinstance(bound, (int, float)):
            bound = str(bound)
        if not isinstance(bound, str):
            return None
        da, db = parse_date_time(value), parse_date_time(bound)
        if da is not None and db is not None:
            return (da > db) - (da < db)
        a, b = value.lower(), bound.lower()
        return (a > b) - (a < b)
    return None
