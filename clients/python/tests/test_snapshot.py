"""The snapshot fallback: answers from snapshot files (docs/snapshots.md) when the service
cannot be reached, the same answers the service gives for the operators it covers, and a clear
Unavailable for what it cannot answer."""
import datetime
import json
import os
import shutil
import tempfile
import time
import unittest
import urllib.request

from support import SERVICE_URL, free_port, needs_service

from shotgrid_cache import CacheClient, InvalidArgument, NotFound, Unavailable

UTC = datetime.timezone.utc
FIELDS = {
    "Project": ["name", "archived"],
    "Sequence": ["code", "project", "description"],
    "Shot": ["code", "description", "project", "sg_sequence", "sg_status_list", "sg_cut_in", "assets", "created_at", "updated_at"],
}


def common_cases():
    """Questions with every operator the fallback answers, for comparing it with the service."""
    t0 = datetime.datetime(2024, 1, 9, 11, 21, tzinfo=UTC)
    return [
        [["code", "is", "NLT_010_0010"]],
        [["code", "is", "nlt_010_0010"]],
        [["code", "is_not", "NLT_010_0010"]],
        [["sg_status_list", "in", ["ip", "rdy"]]],
        [["sg_status_list", "in", "ip", "rdy"]],
        [["sg_status_list", "not_in", ["ip"]]],
        [["code", "contains", "_02"]],
        [["description", "contains", "SHOT 1"]],
        [["code", "starts_with", "nlt_010"]],
        [["sg_cut_in", "greater_than", 1000]],
        [["sg_cut_in", "less_than", 1002]],
        [["id", "greater_than", 50]],
        [["id", "between", [5, 9]]],
        [["id", "between", 5, 9]],
        [["created_at", "greater_than", t0]],
        [["created_at", "less_than", t0]],
        [["created_at", "is", t0]],
        [["created_at", "between", [t0, t0 + datetime.timedelta(hours=2)]]],
        [["description", "is", None]],
        [["description", "is_not", None]],
        [["project", "is", {"type": "Project", "id": 2}]],
        [["sg_sequence", "is", {"type": "Sequence", "id": 2, "name": "ignored"}]],
        [["sg_sequence", "in", [{"type": "Sequence", "id": 2}, {"type": "Sequence", "id": 3}]]],
        [["sg_sequence", "is", None]],
        [["assets", "is", {"type": "Asset", "id": 9}]],
        [["assets", "is", None]],
        [["sg_sequence.Sequence.code", "is", "NLT_020"]],
        [["id", "in", [1, 3, 99999]]],
        [["id", "in", []]],
        [["id", "not_in", []]],
        [["sg_status_list", "is", "IP"]],
        {"filter_operator": "any", "filters": [["code", "is", "NLT_010_0010"], ["code", "ends_with", "0030"]]},
        [["project", "is", {"type": "Project", "id": 1}], {"filter_operator": "any", "filters": [["sg_status_list", "is", "ip"], ["id", "less_than", 3]]}],
        {"logical_operator": "or", "conditions": [["id", "is", 7], {"logical_operator": "and", "conditions": [["id", "greater_than", 55], ["code", "contains", "0"]]}]},
        [],
    ]


def raw_query(entity_type, fields):
    """Every record of a type as the service's JSON (strings for date-times, as the files hold them)."""
    body = json.dumps({"entityType": entity_type, "fields": fields, "includeArchivedProjects": True}).encode()
    req = urllib.request.Request(SERVICE_URL + "/shotgrid.cache.v1.CacheService/Query", data=body, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as res:
        return json.loads(res.read().decode())


def write_snapshot(folder, entity_type, fields, entities, event_id, written_at, fmt="shotgrid-cache-snapshot/1"):
    doc = {
        "format": fmt,
        "entityType": entity_type,
        "eventId": event_id,
        "writtenAt": written_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "site": "http://127.0.0.1:0",
        "fields": fields,
        "entities": entities,
    }
    # As the writer does: a temporary name, then a rename, so a reader never sees half a file.
    tmp = os.path.join(folder, ".%s.json.tmp-test" % entity_type)
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, os.path.join(folder, entity_type + ".json"))


@needs_service
class FallbackMatchesServiceTest(unittest.TestCase):
    """Snapshots taken from the live service; the same questions asked of both must agree."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="sgc-snapshots-")
        cls.written_at = datetime.datetime.now(UTC).replace(microsecond=0) - datetime.timedelta(seconds=90)
        cls.event_ids = {}
        for entity_type, fields in FIELDS.items():
            answer = raw_query(entity_type, fields)
            entities = []
            for e in answer["entities"]:
                record = {"type": e["type"], "id": e["id"]}
                record.update(dict((f, e["fields"].get(f)) for f in fields))
                entities.append(record)
            event_id = int(answer["freshness"]["asOfEventId"])
            cls.event_ids[entity_type] = event_id
            write_snapshot(cls.dir, entity_type, fields, entities, event_id, cls.written_at)
        cls.live = CacheClient(SERVICE_URL)
        cls.down = CacheClient("http://127.0.0.1:%d" % free_port(), timeout=2, fallback_snapshot_dir=cls.dir)

    @classmethod
    def tearDownClass(cls):
        cls.live.close()
        cls.down.close()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def same(self, filters, fields=("code",), **kw):
        want = self.live.find("Shot", filters, list(fields), **kw)
        got = self.down.find("Shot", filters, list(fields), **kw)
        self.assertEqual(got, want, "filters %r" % (filters,))
        self.assertTrue(self.down.last_freshness.stale)
        return got

    def test_every_common_operator_answers_as_the_service_does(self):
        cases = common_cases()
        nonempty = 0
        for filters in cases:
            nonempty += bool(self.same(filters, fields=("code", "sg_status_list")))
        self.assertGreater(nonempty, len(cases) // 2, "most cases should match something, or the comparison proves little")

    def test_order_limit_page_fields_and_find_one(self):
        self.same([], fields=("code", "sg_sequence"), order=[{"field_name": "code", "direction": "desc"}])
        self.same([], fields=("code", "sg_sequence"), order=[{"field_name": "sg_sequence"}, {"field_name": "code", "direction": "desc"}])
        self.same([], fields=("code", "sg_status_list"), order=[{"field_name": "sg_status_list", "direction": "desc"}, {"field_name": "id"}])
        self.same([], fields=("description",), order=[{"field_name": "description"}], limit=5, page=3)
        self.same([["sg_status_list", "is", "ip"]], fields=("code", "sg_sequence.Sequence.code", "created_at"), limit=4, page=2)
        self.same([["id", "less_than", 4]], fields=())
        self.assertEqual(self.down.find_one("Shot", [["code", "is", "NLT_010_0020"]]), self.live.find_one("Shot", [["code", "is", "NLT_010_0020"]]))
        self.assertIsNone(self.down.find_one("Shot", [["code", "is", "nothing"]]))

    def test_get_entity_and_its_freshness(self):
        for fields in (None, ["code", "sg_sequence", "assets", "updated_at"], ["sg_sequence.Sequence.code"]):
            self.assertEqual(self.down.get_entity("Shot", 7, fields), self.live.get_entity("Shot", 7, fields))
        fresh = self.down.last_freshness
        self.assertEqual((fresh.source, fresh.stale, fresh.as_of_event_id), ("snapshot", True, self.event_ids["Shot"]))
        self.assertGreaterEqual(fresh.age_ms, 90000)
        self.assertLess(fresh.age_ms, 90000 + 60000)
        self.assertIsInstance(self.down.get_entity("Shot", 7)["created_at"], datetime.datetime)
        with self.assertRaises(NotFound) as caught:
            self.down.get_entity("Shot", 99999)
        self.assertIn("not in the snapshot", caught.exception.message)

    def test_what_it_cannot_answer_is_unavailable_naming_it(self):
        def refused(*args, **kw):
            with self.assertRaises(Unavailable) as caught:
                self.down.find(*args, **kw)
            self.assertIn("cannot reach shotgrid-cache", caught.exception.message)
            return caught.exception.message

        self.assertIn("'in_last'", refused("Shot", [["created_at", "in_last", 1, "DAY"]]))
        self.assertIn("'name_contains'", refused("Shot", [{"filter_operator": "any", "filters": [["sg_sequence", "name_contains", "x"]]}]))
        self.assertIn("'sg_cut_out'", refused("Shot", [["sg_cut_out", "is", 1]]))
        self.assertIn("'sg_cut_out'", refused("Shot", [], ["sg_cut_out"]))
        self.assertIn("'sg_cut_out'", refused("Shot", [], ["code"], order=[{"field_name": "sg_cut_out"}]))
        self.assertIn("retired", refused("Shot", [], retired=True))
        self.assertIn("no snapshot of Asset", refused("Asset", []))
        self.assertIn("no snapshot of Asset", refused("Shot", [["assets.Asset.code", "is", "Cat"]]))
        # Bad shapes are still the caller's error, service or not.
        with self.assertRaises(InvalidArgument):
            self.down.find("Shot", [{"filter_operator": "some", "filters": []}])

    def test_archived_projects_are_left_out_when_asked(self):
        folder = tempfile.mkdtemp(prefix="sgc-archived-")
        self.addCleanup(shutil.rmtree, folder, True)
        for name in ("Shot.json", "Sequence.json"):
            shutil.copy(os.path.join(self.dir, name), folder)
        with open(os.path.join(self.dir, "Project.json")) as f:
            projects = json.load(f)
        projects["entities"][1]["archived"] = True
        write_snapshot(folder, "Project", projects["fields"], projects["entities"], projects["eventId"], self.written_at)
        with CacheClient("http://127.0.0.1:%d" % free_port(), timeout=2, fallback_snapshot_dir=folder) as down:
            every = down.find("Shot", [], ["project"])
            kept = down.find("Shot", [], ["project"], include_archived_projects=False)
            self.assertEqual([s for s in every if s["project"]["id"] != 2], kept)
            self.assertLess(len(kept), len(every))
            self.assertEqual([p["id"] for p in down.find("Project", [], ["name"], include_archived_projects=False)], [1, 3])

    def test_an_answer_from_the_service_is_never_replaced_by_the_snapshot(self):
        with CacheClient(SERVICE_URL, fallback_snapshot_dir=self.dir) as up:
            with self.assertRaises(NotFound) as caught:
                up.get_entity("Shot", 99999)
            self.assertNotIn("snapshot", caught.exception.message)
            with self.assertRaises(InvalidArgument):
                up.find("Shot", [["sg_status_list", "greater_than", "ip"]])
            self.assertEqual(up.get_entity("Shot", 1, ["code"])["code"], "NLT_010_0010")
            self.assertFalse(up.last_freshness.stale)
            self.assertNotEqual(up.last_freshness.source, "snapshot")


class SnapshotFileTest(unittest.TestCase):
    """Files that are missing, of another format or changed on disk (no service needed)."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sgc-snapfiles-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.sg = CacheClient("http://127.0.0.1:%d" % free_port(), timeout=2, fallback_snapshot_dir=self.dir)
        self.addCleanup(self.sg.close)
        self.now = datetime.datetime.now(UTC).replace(microsecond=0)

    def shots(self, codes):
        return [{"type": "Shot", "id": i + 1, "code": c, "sg_status_list": "ip"} for i, c in enumerate(codes)]

    def test_another_format_is_refused_with_the_reason(self):
        write_snapshot(self.dir, "Shot", ["code"], self.shots(["A"]), 5, self.now, fmt="shotgrid-cache-snapshot/2")
        with self.assertRaises(Unavailable) as caught:
            self.sg.get_entity("Shot", 1)
        self.assertIn("shotgrid-cache-snapshot/2", caught.exception.message)

    def test_a_file_that_is_not_json_is_refused(self):
        with open(os.path.join(self.dir, "Shot.json"), "w") as f:
            f.write('{"format": "shotgrid-cache-snapshot/1", "entit')
        with self.assertRaises(Unavailable) as caught:
            self.sg.find("Shot", [])
        self.assertIn("cannot be read", caught.exception.message)

    def test_a_rewritten_file_is_read_again(self):
        write_snapshot(self.dir, "Shot", ["code", "sg_status_list"], self.shots(["A", "B"]), 5, self.now)
        self.assertEqual([s["code"] for s in self.sg.find("Shot", [])], ["A", "B"])
        self.assertEqual(self.sg.last_freshness.as_of_event_id, 5)
        time.sleep(0.01)
        write_snapshot(self.dir, "Shot", ["code", "sg_status_list"], self.shots(["A", "B", "C"]), 9, self.now)
        self.assertEqual([s["code"] for s in self.sg.find("Shot", [["sg_status_list", "is", "ip"]])], ["A", "B", "C"])
        self.assertEqual(self.sg.last_freshness.as_of_event_id, 9)

    def test_an_entity_type_cannot_leave_the_folder(self):
        with self.assertRaises(Unavailable):
            self.sg.find("../Shot", [])

    def test_without_a_fallback_folder_nothing_is_read(self):
        write_snapshot(self.dir, "Shot", ["code"], self.shots(["A"]), 5, self.now)
        with CacheClient(self.sg.url, timeout=2) as plain:
            with self.assertRaises(Unavailable) as caught:
                plain.get_entity("Shot", 1)
            self.assertNotIn("snapshot", caught.exception.message)


if __name__ == "__main__":
    unittest.main()
