"""Values between shotgun_api3's Python shapes and the service's JSON.

Outbound, filters are converted the way the project's Node client converts them (src/client.ts,
`shotgridFilters`): the same shapes accepted, the same JSON produced, the same error places.
Inbound, entities are flattened to shotgun_api3's dicts and its date-time strings become
timezone-aware datetimes, as shotgun_api3 does.
"""
import datetime
import json
import math
import numbers
import re

from .errors import InvalidArgument

_UTC = datetime.timezone.utc
# shotgun_api3 turns exactly this shape into a datetime and leaves everything else alone (dates
# stay "YYYY-MM-DD" strings).
_DATE_TIME = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z$")
# RFC 3339 as google.protobuf.Timestamp's JSON has it (fractions, "Z" or an offset).
_TIMESTAMP = re.compile(r"^(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|z|[+-]\d\d:\d\d)$")


# ---------------------------------------------------------------- date-times


def parse_date_time(text):
    """A ShotGrid date-time string ("2024-01-09T11:18:00Z") as an aware datetime in local time
    (shotgun_api3's default); None when the text is not one."""
    m = _DATE_TIME.match(text)
    if not m:
        return None
    try:
        value = datetime.datetime(*[int(g) for g in m.groups()], tzinfo=_UTC)
    except ValueError:
        return None
    return value.astimezone()


def parse_timestamp(text):
    """A google.protobuf.Timestamp's JSON as an aware datetime in local time; None when absent or malformed."""
    if not isinstance(text, str):
        return None
    m = _TIMESTAMP.match(text)
    if not m:
        return None
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    if zone in ("Z", "z"):
        tz = _UTC
    else:
        sign = 1 if zone[0] == "+" else -1
        tz = datetime.timezone(sign * datetime.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    try:
        value = datetime.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tz)
    except ValueError:
        return None
    return value.astimezone()


def format_date_time(value):
    """A datetime as ShotGrid's UTC form. A naive one is local time, as shotgun_api3 takes it."""
    return value.astimezone(_UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def inbound(value):
    """A JSON value as shotgun_api3 gives it: date-time strings become datetimes, at any depth."""
    if isinstance(value, str):
        if len(value) == 20:
            parsed = parse_date_time(value)
            if parsed is not None:
                return parsed
        return value
    if isinstance(value, list):
        return [inbound(v) for v in value]
    if isinstance(value, dict):
        return dict((k, inbound(v)) for k, v in value.items())
    return value


def flatten_entity(entity):
    """The service's {"type", "id", "fields": {...}} as shotgun_api3's flat dict."""
    out = {"type": entity.get("type"), "id": entity.get("id")}
    for key, value in (entity.get("fields") or {}).items():
        out[key] = inbound(value)
    return out


def to_int(value, default=0):
    """An int64 from proto3 JSON (a string) or a plain number."""
    if value is None or value == "":
        return default
    return int(value)


# ---------------------------------------------------------------- filters


def describe(value):
    """What a value is, for error messages (the Node client's words)."""
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, bool):
        return "boolean %s" % ("true" if value else "false")
    if isinstance(value, (int, float)):
        return "number %s" % json.dumps(value)
    if isinstance(value, str):
        return "string %s" % json.dumps(value)
    return "a %s" % type(value).__name__


def _invalid(where, reason):
    return InvalidArgument("%s: %s" % (where, reason))


_LOGICAL = {"all": "and", "and": "and", "any": "or", "or": "or"}
_GROUP_KEYS = ("filter_operator", "logical_operator", "filters", "conditions")


def convert_filters(filters, where="filters"):
    """shotgun_api3 filters (a list of conditions and groups, or one group) as the JSON the
    Query request carries: a list of conditions, or {"logical_operator", "conditions"} groups."""
    if filters is None:
        return None
    if isinstance(filters, (list, tuple)):
        items = [_convert_item(item, "%s[%d]" % (where, i)) for i, item in enumerate(filters)]
        # The service's list form holds conditions only; a list with groups in it (as
        # shotgun_api3 allows) means "all of these", which is an "and" group.
        if all(isinstance(item, list) for item in items):
            return items
        return {"logical_operator": "and", "conditions": items}
    if isinstance(filters, dict):
        return _convert_group(filters, where)
    raise _invalid(
        where,
        'must be a list of conditions like [["code", "is", "SH010"]] or a group like {"filter_operator": "any", "filters": [...]}, got %s'
        % describe(filters),
    )


def _convert_item(raw, where):
    if isinstance(raw, (list, tuple)):
        return [json_value(v, "%s[%d]" % (where, i)) for i, v in enumerate(raw)]
    if isinstance(raw, dict):
        return _convert_group(raw, where)
    raise _invalid(
        where, 'must be a condition like ["code", "is", "SH010"] or a group like {"filter_operator": "any", "filters": [...]}, got %s' % describe(raw)
    )


def _convert_group(raw, where):
    api3 = "filters" in raw
    rest = "conditions" in raw
    if api3 and rest:
        raise _invalid(where, 'a group has "filters" (shotgun_api3) or "conditions" (REST API), not both')
    if not api3 and not rest:
        raise _invalid(where, 'a group needs "filters" (with "filter_operator") or "conditions" (with "logical_operator")')
    for key in raw:
        if key not in _GROUP_KEYS:
            raise _invalid(
                "%s.%s" % (where, key), 'unknown key; a group has "filter_operator" and "filters" (or "logical_operator" and "conditions")'
            )
    if "filter_operator" in raw and "logical_operator" in raw:
        raise _invalid(where, 'give "filter_operator" or "logical_operator", not both')
    op_key = "filter_operator" if "filter_operator" in raw else "logical_operator"
    op = raw.get(op_key)
    if op is None:
        op = "and"
    logical = _LOGICAL.get(op) if isinstance(op, str) else None
    if logical is None:
        raise _invalid("%s.%s" % (where, op_key), 'must be "all" or "any" (or "and" / "or"), got %s' % describe(op))
    list_key = "filters" if api3 else "conditions"
    items = raw[list_key]
    if not isinstance(items, (list, tuple)):
        raise _invalid("%s.%s" % (where, list_key), "must be a list of conditions and groups, got %s" % describe(items))
    return {
        "logical_operator": logical,
        "conditions": [_convert_item(item, "%s.%s[%d]" % (where, list_key, i)) for i, item in enumerate(items)],
    }


def json_value(value, where):
    """A Python value as JSON: datetimes and dates become ShotGrid's forms; anything else that is
    not JSON is an InvalidArgument naming its place."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise _invalid(where, "must be a finite number, got %r" % value)
        return value
    if isinstance(value, datetime.datetime):
        return format_date_time(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [json_value(v, "%s[%d]" % (where, i)) for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise _invalid(where, "object keys must be strings, got %s" % describe(k))
            out[k] = json_value(v, "%s.%s" % (where, k))
        return out
    raise _invalid(where, "must be JSON (string, number, boolean, null, list or object), got %s" % describe(value))


def convert_order(order, where="order"):
    """shotgun_api3's [{"field_name": "code", "direction": "asc"}] as the request's [{"field", "direction"}]."""
    if order is None:
        return []
    if not isinstance(order, (list, tuple)):
        raise _invalid(where, 'must be a list like [{"field_name": "code", "direction": "asc"}], got %s' % describe(order))
    out = []
    for i, item in enumerate(order):
        at = "%s[%d]" % (where, i)
        if not isinstance(item, dict):
            raise _invalid(at, 'must be {"field_name": ..., "direction": "asc" or "desc"}, got %s' % describe(item))
        # shotgun_api3 still takes the old "column" for "field_name".
        field = item.get("field_name", item.get("column", item.get("field")))
        if not isinstance(field, str) or field == "":
            raise _invalid(at + ".field_name", "must be a field name, got %s" % describe(field))
        direction = item.get("direction", "asc")
        if direction not in ("asc", "desc"):
            raise _invalid(at + ".direction", 'must be "asc" or "desc", got %s' % describe(direction))
        out.append({"field": field, "direction": direction})
    return out


def check_whole(value, where, minimum=0):
    """A whole number from `minimum`; numbers.Integral, so numpy's integers are ids too (bool is not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise _invalid(where, "must be a whole number from %d, got %s" % (minimum, describe(value)))
    return int(value)


def check_type_name(value, where):
    if not isinstance(value, str) or value == "":
        raise _invalid(where, 'must be an entity type name like "Shot", got %s' % describe(value))
    return value


def check_fields(fields, where="fields"):
    """A field list as the request's; None means the type's default fields."""
    if fields is None:
        return []
    if isinstance(fields, str) or not isinstance(fields, (list, tuple)):
        raise _invalid(where, 'must be a list of field names like ["code"], got %s' % describe(fields))
    for i, f in enumerate(fields):
        if not isinstance(f, str):
            raise _invalid("%s[%d]" % (where, i), "must be a field name, got %s" % describe(f))
    return list(fields)
