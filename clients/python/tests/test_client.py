"""CacheClient against the real service and simulated site (started by test/python-client.test.ts)."""
import datetime
import threading
import time
import unittest

from support import SERVICE_URL, Collector, CuttableProxy, free_port, needs_service, site_update, wait_until

import shotgrid_cache
from shotgrid_cache import CacheClient, Change, InvalidArgument, NotFound, Unavailable


@needs_service
class ReadTest(unittest.TestCase):
    def setUp(self):
        self.sg = CacheClient(SERVICE_URL, timeout=10)

    def tearDown(self):
        self.sg.close()

    def test_get_entity_is_a_flat_shotgun_api3_dict_with_aware_datetimes(self):
        shot = self.sg.get_entity("Shot", 1)
        self.assertEqual(shot["type"], "Shot")
        self.assertEqual(shot["id"], 1)
        self.assertEqual(shot["code"], "NLT_010_0010")
        self.assertEqual(shot["project"], {"type": "Project", "id": 1, "name": "Northern Lights"})
        self.assertIsInstance(shot["created_at"], datetime.datetime)
        self.assertIsNotNone(shot["created_at"].tzinfo)
        self.assertEqual(shot["created_at"], datetime.datetime(2024, 1, 9, 11, 18, tzinfo=datetime.timezone.utc))
        fresh = self.sg.last_freshness
        self.assertEqual(fresh.source, "cache")
        self.assertFalse(fresh.stale)
        self.assertGreater(fresh.as_of_event_id, 0)
        self.assertGreaterEqual(fresh.age_ms, 0)
        self.assertEqual(fresh.age, datetime.timedelta(milliseconds=fresh.age_ms))

    def test_get_entity_with_fields(self):
        shot = self.sg.get_entity("Shot", 2, ["code", "sg_sequence.Sequence.code", "sg_cut_in"])
        self.assertEqual(shot, {"type": "Shot", "id": 2, "code": "NLT_010_0020", "sg_sequence.Sequence.code": "NLT_010", "sg_cut_in": 1001})

    def test_find_in_shotgun_api3_shapes(self):
        shots = self.sg.find(
            "Shot",
            [
                ["project", "is", {"type": "Project", "id": 1}],
                {"filter_operator": "any", "filters": [["code", "starts_with", "NLT_010"], ["code", "starts_with", "NLT_020"]]},
            ],
            ["code", "sg_sequence"],
            order=[{"field_name": "code", "direction": "desc"}],
            limit=3,
        )
        codes = [s["code"] for s in shots]
        self.assertEqual(len(codes), 3)
        self.assertEqual(codes, sorted(codes, reverse=True))
        self.assertTrue(all(c.startswith("NLT_020") for c in codes), codes)
        self.assertEqual(set(shots[0]), {"type", "id", "code", "sg_sequence"})
        self.assertIn(self.sg.last_freshness.source, ("cache", "shotgrid"))

    def test_find_pages_and_filter_operator_keyword(self):
        everything = self.sg.find("Shot", [["sg_status_list", "in", ["ip", "rdy"]]], ["code"], order=[{"field_name": "id"}])
        pages = self.sg.find("Shot", [["sg_status_list", "in", ["ip", "rdy"]]], ["code"], order=[{"field_name": "id"}], limit=4, page=2)
        self.assertEqual(pages, everything[4:8])
        anyof = self.sg.find("Shot", [["id", "is", 1], ["id", "is", 2]], ["code"], filter_operator="any", order=[{"column": "id"}])
        self.assertEqual([s["id"] for s in anyof], [1, 2])
        self.assertEqual(self.sg.find("Shot", [["id", "is", 1], ["id", "is", 2]]), [])

    def test_find_dates_as_filter_values(self):
        since = datetime.datetime(2024, 1, 9, 11, 20, tzinfo=datetime.timezone.utc)
        later = self.sg.find("Shot", [["created_at", "greater_than", since], ["id", "less_than", 3]], ["created_at"])
        self.assertEqual([s["id"] for s in later], [2])
        self.assertGreater(later[0]["created_at"], since)

    def test_find_one(self):
        self.assertEqual(self.sg.find_one("Shot", [["code", "is", "NLT_010_0020"]], ["code"]), {"type": "Shot", "id": 2, "code": "NLT_010_0020"})
        self.assertIsNone(self.sg.find_one("Shot", [["code", "is", "no such shot"]]))

    def test_retired_and_archived_flags_reach_the_service(self):
        self.assertEqual(self.sg.find("Shot", [], ["code"], retired=True), [])
        with_archived = self.sg.find("Project", [], ["name"])
        without = self.sg.find("Project", [], ["name"], include_archived_projects=False)
        self.assertLessEqual(len(without), len(with_archived))

    def test_errors_carry_the_connect_code_and_the_servers_message(self):
        with self.assertRaises(NotFound) as caught:
            self.sg.get_entity("Shot", 999999)
        self.assertEqual(caught.exception.code, "not_found")
        self.assertIn("999999", caught.exception.message)
        self.assertFalse(caught.exception.unreachable)
        with self.assertRaises(InvalidArgument) as caught:
            self.sg.find("Shot", [["no_such_field", "is", 1]])
        self.assertIn('no field "no_such_field"', caught.exception.message)
        with self.assertRaises(InvalidArgument) as caught:
            self.sg.find("Shot", [["sg_status_list", "greater_than", "ip"]])
        self.assertIn("greater_than", caught.exception.message)
        self.assertIsInstance(caught.exception, shotgrid_cache.CacheError)

    def test_bad_shapes_are_refused_before_sending(self):
        with self.assertRaises(InvalidArgument) as caught:
            self.sg.find("Shot", [{"filter_operator": "some", "filters": []}])
        self.assertEqual(caught.exception.message, 'filters[0].filter_operator: must be "all" or "any" (or "and" / "or"), got string "some"')
        with self.assertRaises(InvalidArgument) as caught:
            self.sg.find("Shot", [["code", "is", object()]])
        self.assertIn("filters[0][2]", caught.exception.message)
        with self.assertRaises(InvalidArgument):
            self.sg.find("Shot", [], order=[{"field_name": "code", "direction": "up"}])
        with self.assertRaises(InvalidArgument):
            self.sg.get_entity("Shot", "1")
        with self.assertRaises(InvalidArgument):
            self.sg.find("Shot", [], fields="code")

    def test_unreachable_service_is_unavailable_without_a_fallback(self):
        down = CacheClient("http://127.0.0.1:%d" % free_port(), timeout=2)
        self.addCleanup(down.close)
        with self.assertRaises(Unavailable) as caught:
            down.get_entity("Shot", 1)
        self.assertTrue(caught.exception.unreachable)
        self.assertIn("cannot reach shotgrid-cache", caught.exception.message)

    def test_threads_each_use_their_own_connection(self):
        errors = []
        results = {}
        connections = {}

        def work(n):
            try:
                for i in range(1, 11):
                    shot = self.sg.get_entity("Shot", i, ["code"])
                    if shot["id"] != i:
                        errors.append("thread %d asked %d got %r" % (n, i, shot))
                    found = self.sg.find_one("Shot", [["id", "is", i]], ["code"])
                    if found != shot:
                        errors.append("thread %d find_one(%d) = %r" % (n, i, found))
                results[n] = self.sg.last_freshness
                connections[n] = id(self.sg._transport._local.held.conn)
            except Exception as err:  # noqa: BLE001 - reported below
                errors.append("thread %d: %r" % (n, err))

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        self.assertEqual(len(results), 8)
        self.assertEqual(len(set(connections.values())), 8, "one connection per thread")
        self.assertIsNone(self.sg.last_freshness, "freshness is per thread; this one asked nothing")


@needs_service
class WatchTest(unittest.TestCase):
    def test_a_change_on_the_site_arrives_as_a_change(self):
        sg = CacheClient(SERVICE_URL)
        self.addCleanup(sg.close)
        got = Collector(sg.watch(["Shot"], heartbeats=True, reconnect_timeout=5))
        self.addCleanup(got.close)
        first = got.wait_for(lambda m: True)
        self.assertIsInstance(first, shotgrid_cache.Heartbeat, got.errors)
        site_update("shots", 3, {"description": "watched %f" % time.time()})
        change = got.wait_for(lambda m: isinstance(m, Change))
        self.assertIsNotNone(change, (got.messages, got.errors))
        self.assertEqual((change.entity_type, change.entity_id, change.kind), ("Shot", 3, "change"))
        self.assertEqual(change.attribute_name, "description")
        self.assertGreater(change.event_id, first.last_event_id)
        self.assertEqual(change.entity, {"type": "Shot", "id": 3})
        self.assertIsNotNone(change.created_at.tzinfo)
        self.assertGreaterEqual(got.stream.last_event_id, change.event_id)
        # The cache already holds what the change says.
        self.assertTrue(sg.get_entity("Shot", 3, ["description"])["description"].startswith("watched"))
        self.assertTrue(got.close(), "close() ends the iteration")

    def test_replay_from_an_event_id(self):
        sg = CacheClient(SERVICE_URL)
        self.addCleanup(sg.close)
        live = Collector(sg.watch(["Shot"], heartbeats=True, reconnect_timeout=5))
        beat = live.wait_for(lambda m: True)
        live.close()
        self.assertIsNotNone(beat, live.errors)
        site_update("shots", 4, {"description": "replayed %f" % time.time()})
        self.assertTrue(wait_until(lambda: sg.get_entity("Shot", 4, ["description"])["description"].startswith("replayed"), 5))
        replay = Collector(sg.watch(["Shot"], since_event_id=beat.last_event_id, reconnect_timeout=5))
        self.addCleanup(replay.close)
        change = replay.wait_for(lambda m: True)
        self.assertIsInstance(change, Change, replay.errors)
        self.assertEqual((change.entity_id, change.attribute_name), (4, "description"))

    def test_a_dropped_connection_resumes_after_the_last_seen_event(self):
        proxy = CuttableProxy(int(SERVICE_URL.rsplit(":", 1)[1]))
        self.addCleanup(proxy.close)
        sg = CacheClient(SERVICE_URL)
        self.addCleanup(sg.close)
        got = Collector(CacheClient(proxy.url).watch(["Shot"], reconnect_timeout=20))
        self.addCleanup(got.close)
        site_update("shots", 6, {"description": "first %f" % time.time()})
        self.assertIsNotNone(got.wait_for(lambda m: m.entity_id == 6), (got.messages, got.errors))
        proxy.cut()
        # Made while the link is down, and applied by the service: only a resume replays it.
        site_update("shots", 8, {"description": "while cut %f" % time.time()})
        self.assertTrue(wait_until(lambda: sg.get_entity("Shot", 8, ["description"])["description"].startswith("while cut"), 5))
        proxy.restore()
        self.assertIsNotNone(got.wait_for(lambda m: getattr(m, "entity_id", None) == 8), (got.messages, got.errors))
        self.assertEqual([m.entity_id for m in got.messages if isinstance(m, Change)], [6, 8], got.messages)

    def test_filters_by_type_and_project(self):
        sg = CacheClient(SERVICE_URL)
        self.addCleanup(sg.close)
        with sg.watch(["Asset"], project_ids=[1], reconnect_timeout=5) as stream:
            watcher = []
            t = threading.Thread(target=lambda: watcher.append(next(stream, "ended")))
            t.start()
            time.sleep(0.3)
            site_update("shots", 5, {"description": "not an asset %f" % time.time()})
            t.join(1.5)
            self.assertEqual(watcher, [], "a Shot change reached an Asset stream")
            stream.close()
            t.join(5)
            self.assertFalse(t.is_alive(), "close() ends a blocked iteration")
            self.assertEqual(watcher, ["ended"])

    def test_a_bad_request_raises_instead_of_retrying(self):
        sg = CacheClient(SERVICE_URL)
        self.addCleanup(sg.close)
        with self.assertRaises(InvalidArgument):
            next(iter(sg.watch(["NoSuchType"], reconnect_timeout=5)))
        with self.assertRaises(InvalidArgument):
            sg.watch(project_ids=[0])


if __name__ == "__main__":
    unittest.main()
