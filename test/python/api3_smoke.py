#!/usr/bin/env python3
"""Speak ShotGrid's api3 wire protocol to a site with nothing but the standard library.

Usage: api3_smoke.py BASE_URL SCRIPT_NAME SCRIPT_KEY

It does what shotgun_api3 does on the wire (info, a paged read, create, summarize with grouping,
a wrong key), checks the answers' shapes, and prints one JSON object of what it saw for the
calling test to compare with the site. Any mismatch exits non-zero with the reason on stderr.
"""
import json
import re
import sys
import urllib.request

DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def post(base, method, params):
    body = json.dumps({"method_name": method, "params": params}, ensure_ascii=False).encode("utf-8")
    req = urllib.request.Request(
        base.rstrip("/") + "/api3/json",
        data=body,
        method="POST",
        headers={"content-type": "application/json; charset=utf-8", "user-agent": "shotgun-json (smoke); Python"},
    )
    with urllib.request.urlopen(req, timeout=10) as res:
        if res.status != 200:
            raise SystemExit("%s: HTTP %d" % (method, res.status))
        return json.loads(res.read().decode("utf-8"))


def call(base, auth, method, args=None):
    answer = post(base, method, [auth] if args is None else [auth, args])
    if isinstance(answer, dict) and answer.get("exception"):
        raise SystemExit("%s raised %s: %s" % (method, answer.get("error_code"), answer.get("message")))
    # The client unwraps "results" when present and takes anything else as it is.
    return answer["results"] if isinstance(answer, dict) and "results" in answer else answer


def check(cond, why):
    if not cond:
        raise SystemExit("check failed: " + why)


def main():
    base, name, key = sys.argv[1:4]
    auth = {"script_name": name, "script_key": key}

    info = post(base, "info", [])
    version = tuple(info["version"][:3])
    check(version >= (7, 4, 0), "info version %r selects has_next_page paging" % (version,))
    per_page = info.get("api_max_entities_per_page") or 500

    project = {"type": "Project", "id": 1}
    filters = {"logical_operator": "and", "conditions": [{"path": "project", "relation": "is", "values": [project]}]}
    params = {
        "type": "Shot",
        "return_fields": ["code", "sg_status_list", "sg_sequence", "created_at"],
        "filters": filters,
        "return_only": "active",
        "paging": {"entities_per_page": min(per_page, 7), "current_page": 1},
        "sorts": [{"field_name": "code", "direction": "asc"}],
        "api_return_image_urls": True,
        "return_paging_info_without_counts": True,
    }
    shots = []
    while True:
        page = call(base, auth, "read", params)
        shots.extend(page["entities"])
        if not page["paging_info"]["has_next_page"]:
            break
        params["paging"]["current_page"] += 1
    for s in shots:
        check(s["type"] == "Shot" and isinstance(s["id"], int), "every entity has type and id")
        check(DATE_TIME.match(s["created_at"]) is not None, "created_at %r is YYYY-MM-DDTHH:MM:SSZ" % s["created_at"])
        seq = s["sg_sequence"]
        check(seq is None or set(seq) == {"type", "id", "name"}, "links are {type, id, name}")
    codes = [s["code"] for s in shots]
    check(codes == sorted(codes, key=str.lower), "sorted by code")

    created = call(base, auth, "create", {
        "type": "Shot",
        "fields": [{"field_name": "code", "value": "py-smoke-\u00e9t\u00e9"}, {"field_name": "project", "value": project}],
        "return_fields": ["sg_status_list", "created_at"],
    })
    check(created["code"] == "py-smoke-\u00e9t\u00e9", "create answers the code written (non-ASCII kept)")
    again = call(base, auth, "read", {"type": "Shot", "filters": {"logical_operator": "and", "conditions": [{"path": "id", "relation": "is", "values": [created["id"]]}]}, "return_fields": ["code"], "paging": {"entities_per_page": 1, "current_page": 1}})
    check(again["entities"] == [{"type": "Shot", "id": created["id"], "code": created["code"]}], "the created shot reads back")

    summary = call(base, auth, "summarize", {
        "type": "Shot",
        "summaries": [{"field": "id", "type": "count"}],
        "filters": filters,
        "grouping": [{"field": "sg_status_list", "type": "exact", "direction": "asc"}],
    })
    check(summary["summaries"]["id"] == len(shots) + 1, "the total counts the read shots and the new one")
    check(sum(g["summaries"]["id"] for g in summary["groups"]) == summary["summaries"]["id"], "the groups add up to the total")

    wrong = post(base, "read", [{"script_name": name, "script_key": key + "-wrong"}, {"type": "Shot"}])
    check(wrong.get("exception") is True and wrong.get("error_code") == 102, "a wrong key is AuthenticationFault (102)")

    print(json.dumps({
        "version": list(version),
        "read_count": len(shots),
        "created_id": created["id"],
        "created_code": created["code"],
        "summary_total": summary["summaries"]["id"],
        "groups": {g["group_value"]: g["summaries"]["id"] for g in summary["groups"]},
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
