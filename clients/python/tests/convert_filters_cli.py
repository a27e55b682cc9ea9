"""Read a JSON list of shotgun_api3 filters on stdin; print, for each, {"ok": the JSON sent to the
service} or {"error": the InvalidArgument message}. test/python-client.test.ts compares this with
src/client.ts's shotgridFilters on the same inputs, so both clients convert alike."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from shotgrid_cache import InvalidArgument, convert_filters  # noqa: E402

out = []
for filters in json.load(sys.stdin):
    try:
        out.append({"ok": convert_filters(filters)})
    except InvalidArgument as err:
        out.append({"error": err.message})
json.dump(out, sys.stdout)
