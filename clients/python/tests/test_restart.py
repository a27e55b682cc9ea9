"""A service of our own, stopped and started again: a watch stream survives the restart without
losing a change, and a client with a snapshot fallback notices the service is back on its next call."""
import datetime
import os
import shutil
import tempfile
import time
import unittest

from support import Collector, ServiceProcess, free_port, needs_service, site_update, wait_until
from test_snapshot import FIELDS, common_cases, write_snapshot

from shotgrid_cache import CacheClient, Change, Resync


@needs_service
class RestartTest(unittest.TestCase):
    def setUp(self):
        self.service = ServiceProcess(free_port())
        self.addCleanup(self.service.stop)
        self.service.start()

    def test_watch_survives_a_restart_and_fallback_notices_the_return(self):
        sg = CacheClient(self.service.url, timeout=3)
        self.addCleanup(sg.close)
        got = Collector(sg.watch(["Shot"], heartbeats=True, reconnect_timeout=60))
        self.addCleanup(got.close)
        self.assertIsNotNone(got.wait_for(lambda m: True), got.errors)

        stamp = "%f" % time.time()
        site_update("shots", 11, {"description": "before " + stamp})
        before = got.wait_for(lambda m: isinstance(m, Change) and m.entity_id == 11)
        self.assertIsNotNone(before, "first change; errors %r, got %r" % (got.errors, got.messages))

        self.service.stop()
        # While the service is down: the stream keeps trying, the fallback answers from a snapshot.
        folder = tempfile.mkdtemp(prefix="sgc-restart-")
        self.addCleanup(shutil.rmtree, folder, True)
        write_snapshot(
            folder,
            "Shot",
            FIELDS["Shot"],
            [{"type": "Shot", "id": 11, "code": "FROM_SNAPSHOT", "sg_status_list": "ip"}],
            before.event_id,
            datetime.datetime.now(datetime.timezone.utc),
        )
        with_fallback = CacheClient(self.service.url, timeout=3, fallback_snapshot_dir=folder)
        self.addCleanup(with_fallback.close)
        self.assertEqual(with_fallback.get_entity("Shot", 11, ["code"])["code"], "FROM_SNAPSHOT")
        self.assertEqual(with_fallback.last_freshness.source, "snapshot")
        self.assertTrue(with_fallback.last_freshness.stale)
        site_update("shots", 12, {"description": "while down " + stamp})
        time.sleep(1.5)

        self.service.start()
        # The stream is back (it backs off up to 5 s between attempts) when a message comes again.
        back = got.wait_for(lambda m: True, start=len(got.messages))
        self.assertIsNotNone(back, "no message after the restart; errors %r" % got.errors)
        # The next call reaches the service again.
        self.assertEqual(with_fallback.get_entity("Shot", 11, ["code"])["code"], "NLT_020_0010")
        self.assertEqual(with_fallback.last_freshness.source, "cache")
        self.assertFalse(with_fallback.last_freshness.stale)

        site_update("shots", 13, {"description": "after " + stamp})
        after = got.wait_for(lambda m: isinstance(m, Change) and m.entity_id == 13, start=got.messages.index(before) + 1)
        self.assertIsNotNone(after, "a change after the restart; errors %r, got %r" % (got.errors, got.messages))
        # The change made while the service was down is not silently lost: it was replayed, or
        # the stream said to resync (the new process cannot replay what it never saw).
        later = got.messages[got.messages.index(before) + 1 :]
        down_change = [m for m in later if isinstance(m, Change) and m.entity_id == 12]
        resyncs = [m for m in later if isinstance(m, Resync)]
        self.assertTrue(down_change or resyncs, "neither the change nor a resync: %r" % later)
        self.assertEqual(got.errors, [])
        self.assertTrue(got.close())


@needs_service
class PagingTest(unittest.TestCase):
    """find with limit 0 reads every match, as shotgun_api3 does, past the service's largest page."""

    def test_every_match_across_pages(self):
        service = ServiceProcess(free_port(), ["--max-page-size", "7"])
        self.addCleanup(service.stop)
        service.start()
        with CacheClient(service.url) as sg:
            every = sg.find("Shot", [], ["code"])
            self.assertEqual([s["id"] for s in every], list(range(1, 61)))
            self.assertEqual(sg._page_bound, (7, True))
            ip = sg.find("Shot", [["sg_status_list", "is", "ip"]], ["code"], order=[{"field_name": "code", "direction": "desc"}])
            codes = [s["code"] for s in ip]
            self.assertEqual(codes, sorted(codes, reverse=True))
            self.assertGreater(len(codes), 7)
            self.assertEqual(len(set(codes)), len(codes))
            # An explicit limit or page is one page, as asked.
            self.assertEqual(len(sg.find("Shot", [], ["code"], limit=5, page=2)), 5)
            self.assertEqual([s["id"] for s in sg.find("Shot", [], ["code"], page=2)], list(range(8, 15)))
            self.assertEqual(len(sg.find("Shot", [["id", "less_than", 4]], ["code"])), 3)


@needs_service
class ServerSnapshotsTest(unittest.TestCase):
    """The files `serve --snapshot-dir` writes (the other side of docs/snapshots.md) answer as
    the service answered before it stopped."""

    def test_the_services_own_snapshots_answer_as_it_did(self):
        folder = tempfile.mkdtemp(prefix="sgc-served-snapshots-")
        self.addCleanup(shutil.rmtree, folder, True)
        service = ServiceProcess(free_port(), ["--snapshot-dir", folder, "--snapshot-types", "Project,Sequence,Shot"])
        self.addCleanup(service.stop)
        service.start()
        files = [os.path.join(folder, t + ".json") for t in ("Project", "Sequence", "Shot")]
        self.assertTrue(wait_until(lambda: all(os.path.exists(f) for f in files), 30), os.listdir(folder))
        questions = [(filters, ["code", "sg_status_list", "sg_sequence.Sequence.code"]) for filters in common_cases()]
        questions.append(([], ["code", "assets", "sg_cut_in", "created_at", "project"]))
        with CacheClient(service.url) as live:
            answers = [live.find("Shot", filters, fields) for filters, fields in questions]
            one = live.get_entity("Shot", 5)
        service.stop()
        with CacheClient(service.url, timeout=3, fallback_snapshot_dir=folder) as down:
            for (filters, fields), answer in zip(questions, answers):
                self.assertEqual(down.find("Shot", filters, fields), answer, filters)
                self.assertEqual(down.last_freshness.source, "snapshot")
            self.assertEqual(down.get_entity("Shot", 5), one)
        self.assertGreater(sum(1 for a in answers if a), len(answers) // 2)


if __name__ == "__main__":
    unittest.main()
