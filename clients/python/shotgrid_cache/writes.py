"""Write requests in shotgun_api3's shapes, as the service's Create/Update/Delete/Revive/Batch
messages (proto/shotgrid/cache/v1/cache.proto)."""
from .errors import InvalidArgument
from .values import check_fields, check_type_name, check_whole, describe, json_value

_MODES = ("set", "add", "remove")


def _data(data, where):
    if not isinstance(data, dict):
        raise InvalidArgument('%s: must be a dict of field values like {"code": "SH010"}, got %s' % (where, describe(data)))
    # datetimes and dates become ShotGrid's forms, as shotgun_api3 sends them.
    return json_value(data, where)


def create_request(entity_type, data, return_fields, where=""):
    req = {"entityType": check_type_name(entity_type, where + "entity_type"), "data": _data(data, where + "data")}
    req["returnFields"] = check_fields(return_fields, where + "return_fields")
    return req


def update_request(entity_type, entity_id, data, multi_entity_update_modes, return_fields, where=""):
    req = {
        "entityType": check_type_name(entity_type, where + "entity_type"),
        "id": check_whole(entity_id, where + "entity_id", 1),
        "data": _data(data, where + "data"),
        "returnFields": check_fields(return_fields, where + "return_fields"),
    }
    if multi_entity_update_modes:
        at = where + "multi_entity_update_modes"
        if not isinstance(multi_entity_update_modes, dict):
            raise InvalidArgument('%s: must be a dict like {"assets": "add"}, got %s' % (at, describe(multi_entity_update_modes)))
        for field, mode in multi_entity_update_modes.items():
            if mode not in _MODES:
                raise InvalidArgument('%s.%s: must be "set", "add" or "remove", got %s' % (at, field, describe(mode)))
        req["multiEntityUpdateModes"] = dict(multi_entity_update_modes)
    return req


def delete_request(entity_type, entity_id, where=""):
    return {"entityType": check_type_name(entity_type, where + "entity_type"), "id": check_whole(entity_id, where + "entity_id", 1)}


def batch_request(requests):
    """shotgun_api3's batch list ({"request_type": "create" | "update" | "delete", ...}) as BatchRequest."""
    if not isinstance(requests, (list, tuple)):
        raise InvalidArgument("requests: must be a list of {\"request_type\": ...} dicts, got %s" % describe(requests))
    operations = []
    for i, r in enumerate(requests):
        at = "requests[%d]." % i
        if not isinstance(r, dict):
            raise InvalidArgument("requests[%d]: must be a dict, got %s" % (i, describe(r)))
        kind = r.get("request_type")
        allowed = {
            "create": ("request_type", "entity_type", "data", "return_fields"),
            "update": ("request_type", "entity_type", "entity_id", "data", "multi_entity_update_modes", "return_fields"),
            "delete": ("request_type", "entity_type", "entity_id"),
        }.get(kind)
        if allowed is None:
            raise InvalidArgument('%srequest_type: must be "create", "update" or "delete", got %s' % (at, describe(kind)))
        for key in r:
            if key not in allowed:
                raise InvalidArgument("%s%s: not part of a %s request (it takes %s)" % (at, key, kind, ", ".join(allowed[1:])))
        if kind == "create":
            operations.append({"create": create_request(r.get("entity_type"), r.get("data"), r.get("return_fields"), at)})
        elif kind == "update":
            op = update_request(r.get("entity_type"), r.get("entity_id"), r.get("data"), r.get("multi_entity_update_modes"), r.get("return_fields"), at)
            operations.append({"update": op})
        else:
            operations.append({"delete": delete_request(r.get("entity_type"), r.get("entity_id"), at)})
    return {"operations": operations}
