#!/usr/bin/env python3
"""Drive a service's /api3/json the way shotgun_api3 (v3.10) does, with the standard library only.

Usage: api3_client_flows.py BASE_URL SCRIPT_NAME SCRIPT_KEY

Each call is built as the official client builds it: the payload {"method_name", "params":
[auth, args]} (args left out when empty), the paging loop of find() for a site >= 7.4
(return_paging_info_without_counts, has_next_page), find_one() as a limit-1 read, update() with
per-field multi_entity_update_mode, batch() with its request shapes, delete()/revive() booleans,
summarize() with grouping, schema_field_read(), a method only the site serves, and the answers'
handling (a dict holding "results" is unwrapped; {"exception": true} raises by error_code).
Prints one JSON object of what it saw; any mismatch exits non-zero with the reason on stderr.
"""
import datetime
import json
import re
import sys
import urllib.request

DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


class Fault(Exception):
    def __init__(self, code, message):
        Exception.__init__(self, "%s: %s" % (code, message))
        self.code = code


class Client(object):
    """The parts of shotgun_api3.Shotgun this test needs, speaking the same wire format."""

    def __init__(self, base, auth):
        self.url = base.rstrip("/") + "/api3/json"
        self.auth = auth
        self.info = self.rpc("info", None, with_auth=False)
        self.version = tuple(self.info["version"][:3])
        self.per_page = self.info.get("api_max_entities_per_page") or 500

    def rpc(self, method, params, with_auth=True, first=False):
        call_params = []
        if with_auth:
            call_params.append(self.auth)
        if params:
            call_params.append(params)
        body = json.dumps({"method_name": method, "params": call_params}, ensure_ascii=False).encode("utf-8")
        req = urllib.request.Request(self.url, data=body, method="POST", headers={
            "content-type": "application/json; charset=utf-8",
            "connection": "keep-alive",
            "user-agent": "shotgun-json (3.10.2); Python 3 (stdlib flows)",
        })
        with urllib.request.urlopen(req, timeout=15) as res:
            if res.status >= 300:
                raise SystemExit("%s: HTTP %d" % (method, res.status))
            ctype = (res.headers.get("content-type") or "application/json").lower()
            text = res.read().decode("utf-8")
        answer = json.loads(text) if text and ctype.startswith("application/json") else text
        if isinstance(answer, dict) and answer.get("exception"):
            raise Fault(answer.get("error_code"), answer.get("message", "Unknown Error"))
        if not isinstance(answer, dict) or "results" not in answer:
            return answer
        results = answer["results"]
        if first and isinstance(results, list):
            return results[0]
        return results

    @staticmethod
    def filters(filters, operator="all"):
        def simple(f):
            values = list(f[2:])
            if len(values) == 1 and isinstance(values[0], (list, tuple)):
                values = list(values[0])
            return {"path": f[0], "relation": f[1], "values": values}

        def group(items, op):
            conditions = []
            for f in items:
                if isinstance(f, dict):
                    conditions.append(group(f["filters"], f["filter_operator"]))
                else:
                    conditions.append(simple(f))
            return {"logical_operator": "and" if op in ("all", "and") else "or", "conditions": conditions}

        return group(filters, operator)

    def find(self, entity_type, filters, fields=None, order=None, limit=0, page=0, retired_only=False):
        params = {
            "type": entity_type,
            "return_fields": fields or ["id"],
            "filters": self.filters(filters),
            "return_only": "retired" if retired_only else "active",
            "paging": {"entities_per_page": self.per_page, "current_page": 1},
        }
        if order:
            params["sorts"] = [{"field_name": o["field_name"], "direction": o.get("direction", "asc")} for o in order]
        params["api_return_image_urls"] = True
        key = "return_paging_info_without_counts" if self.version >= (7, 4, 0) else "return_paging_info"
        params[key] = False
        if limit and limit <= self.per_page:
            params["paging"]["entities_per_page"] = limit
            if page == 0:
                page = 1
        if page != 0:
            params["paging"]["current_page"] = page
            return self.rpc("read", params).get("entities", [])
        params[key] = True
        records = []
        has_next_page = True
        while has_next_page:
            result = self.rpc("read", params)
            records.extend(result.get("entities"))
            if limit and len(records) >= limit:
                return records[:limit]
            has_next_page = result["paging_info"]["has_next_page"]
            params["paging"]["current_page"] += 1
        return records

    def find_one(self, entity_type, filters, fields=None):
        found = self.find(entity_type, filters, fields, limit=1)
        return found[0] if found else None

    @staticmethod
    def field_list(data, extra=None):
        out = []
        for k, v in data.items():
            item = {"field_name": k, "value": v}
            if extra and k in extra:
                item.update(extra[k])
            out.append(item)
        return out

    def create(self, entity_type, data, return_fields=None):
        params = {"type": entity_type, "fields": self.field_list(data), "return_fields": return_fields or ["id"]}
        return self.rpc("create", params, first=True)

    def update(self, entity_type, entity_id, data, multi_entity_update_modes=None):
        extra = dict((k, {"multi_entity_update_mode": v}) for k, v in (multi_entity_update_modes or {}).items())
        return self.rpc("update", {"type": entity_type, "id": entity_id, "fields": self.field_list(data, extra)})


def check(cond, why):
    if not cond:
        raise SystemExit("check failed: " + why)


def main():
    base, name, key = sys.argv[1:4]
    sg = Client(base, {"script_name": name, "script_key": key})
    check(sg.version >= (7, 4, 0), "info's version %r selects has_next_page paging" % (sg.version,))
    # Small pages, so find() really loops on has_next_page.
    sg.per_page = 3

    project = {"type": "Project", "id": 1}
    shots = sg.find("Shot", [["project", "is", project], {"filter_operator": "any", "filters": [
        ["sg_status_list", "is_not", "omt"], ["code", "starts_with", "zz"]]}],
        ["code", "sg_status_list", "sg_sequence", "sg_sequence.Sequence.code", "created_at"],
        order=[{"field_name": "code", "direction": "asc"}])
    check(len(shots) > sg.per_page, "find() paged past its first page (%d shots)" % len(shots))
    ids = [s["id"] for s in shots]
    check(len(ids) == len(set(ids)), "no shot twice across pages")
    for s in shots:
        check(DATE_TIME.match(s["created_at"]) is not None, "created_at %r is YYYY-MM-DDTHH:MM:SSZ" % s["created_at"])
        seq = s["sg_sequence"]
        check(seq is None or set(seq) == {"type", "id", "name"}, "links are {type, id, name}")
        check(seq is None or s["sg_sequence.Sequence.code"] == seq["name"], "the deep field is the sequence's code")

    one = sg.find_one("Shot", [["id", "is", ids[0]]], ["code"])
    check(one == {"type": "Shot", "id": ids[0], "code": shots[0]["code"]}, "find_one answers the one record")

    created = sg.create("Shot", {"code": "flows-\u00e9", "project": project,
                                 "sg_cut_in": 1001, "sg_target_date": datetime.date(2031, 2, 3).strftime("%Y-%m-%d")},
                        ["sg_status_list", "created_at"])
    check(created["code"] == "flows-\u00e9" and created["type"] == "Shot", "create answers what was written")
    check(DATE_TIME.match(created["created_at"]) is not None, "create answers return_fields")
    read_back = sg.find_one("Shot", [["id", "is", created["id"]]], ["code", "sg_target_date"])
    check(read_back["sg_target_date"] == "2031-02-03", "a date reads back as YYYY-MM-DD")

    asset = sg.find_one("Asset", [["project", "is", project]], ["shots"])
    added = sg.update("Asset", asset["id"], {"shots": [{"type": "Shot", "id": created["id"]}]}, {"shots": "add"})
    check(created["id"] in [s["id"] for s in added["shots"]], "update with mode add answers the whole new list")
    now = sg.find_one("Asset", [["id", "is", asset["id"]]], ["shots"])
    check(created["id"] in [s["id"] for s in now["shots"]], "the next read shows the added link at once")
    sg.update("Asset", asset["id"], {"shots": [{"type": "Shot", "id": created["id"]}]}, {"shots": "remove"})
    now = sg.find_one("Asset", [["id", "is", asset["id"]]], ["shots"])
    check(created["id"] not in [s["id"] for s in now["shots"]], "mode remove takes the link out")

    check(sg.rpc("delete", {"type": "Shot", "id": created["id"]}) is True, "delete answers true")
    check(sg.find_one("Shot", [["id", "is", created["id"]]]) is None, "a deleted shot is gone from the next read")
    check(sg.rpc("delete", {"type": "Shot", "id": created["id"]}) is False, "deleting it again answers false")
    check(sg.rpc("revive", {"type": "Shot", "id": created["id"]}) is True, "revive answers true")
    check(sg.rpc("revive", {"type": "Shot", "id": created["id"]}) is False, "reviving a live record answers false")

    batch = sg.rpc("batch", [
        {"request_type": "create", "type": "Shot", "fields": sg.field_list({"code": "flows-batch", "project": project}), "return_fields": ["id"]},
        {"request_type": "update", "type": "Shot", "id": created["id"], "fields": sg.field_list({"code": "flows-renamed"})},
        {"request_type": "delete", "type": "Shot", "id": created["id"]},
    ])
    check(len(batch) == 3 and batch[2] is True and batch[1]["code"] == "flows-renamed", "batch answers a list")
    try:
        sg.rpc("batch", [
            {"request_type": "create", "type": "Shot", "fields": sg.field_list({"code": "flows-never", "project": project}), "return_fields": ["id"]},
            {"request_type": "update", "type": "Shot", "id": 987654, "fields": sg.field_list({"code": "x"})},
        ])
        raise SystemExit("check failed: a batch with a bad request raises")
    except Fault:
        pass
    check(sg.find_one("Shot", [["code", "is", "flows-never"]]) is None, "a failed batch wrote nothing")

    summary = sg.rpc("summarize", {"type": "Shot", "summaries": [{"field": "id", "type": "count"}],
                                   "filters": sg.filters([["project", "is", project]]),
                                   "grouping": [{"field": "sg_status_list", "type": "exact", "direction": "asc"}]})
    check(sum(g["summaries"]["id"] for g in summary["groups"]) == summary["summaries"]["id"], "the groups add up")

    field = sg.rpc("schema_field_read", {"type": "Shot", "field_name": "code"})
    check(field["code"]["data_type"]["value"] == "text", "schema_field_read answers the field's schema")
    check(sg.rpc("preferences_read", {"prefs": ["hours_per_day"]}) == {"hours_per_day": 8}, "a relayed method answers as the site")

    try:
        Client(base, {"script_name": name, "script_key": key + "-wrong"}).rpc("read", {"type": "Shot"})
        raise SystemExit("check failed: a wrong key raises")
    except Fault as f:
        check(f.code == 102, "a wrong key is AuthenticationFault (102), got %r" % f.code)

    print(json.dumps({
        "version": list(sg.version),
        "shots": len(shots),
        "created_id": created["id"],
        "batch_created_id": batch[0]["id"],
        "summary_total": summary["summaries"]["id"],
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
