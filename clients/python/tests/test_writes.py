"""Writes and tokens against the wrapper's service with an auth file: create, update, delete,
revive and batch in shotgun_api3's shapes, each visible to the next read; tokens refused or
short of a scope raise Unauthenticated / PermissionDenied with the server's message."""
import datetime
import time
import unittest

from support import AUTH_URL, LIMITED_TOKEN, READER_TOKEN, WRITER_LOGIN, WRITER_TOKEN, needs_auth_service, site_request

from shotgrid_cache import CacheClient, InvalidArgument, NotFound, PermissionDenied, Unauthenticated

UTC = datetime.timezone.utc


@needs_auth_service
class WritesTest(unittest.TestCase):
    def setUp(self):
        self.sg = CacheClient(AUTH_URL, token=WRITER_TOKEN)
        self.addCleanup(self.sg.close)
        self.code = "PY_%d" % int(time.time() * 1000000)

    def test_create_update_delete_revive(self):
        due = datetime.date(2027, 3, 4)
        created = self.sg.create(
            "Shot",
            {"code": self.code, "project": {"type": "Project", "id": 1}, "sg_cut_in": 1001, "description": "made from Python"},
            return_fields=["code", "project", "sg_cut_in", "created_at"],
        )
        self.assertEqual(created["type"], "Shot")
        self.assertEqual(created["code"], self.code)
        self.assertEqual(created["project"]["id"], 1)
        self.assertIsInstance(created["created_at"], datetime.datetime)
        shot_id = created["id"]
        # Visible to the next read, and made as the token's sudo_as_login on the site.
        self.assertEqual(self.sg.find_one("Shot", [["code", "is", self.code]], ["sg_cut_in"]), {"type": "Shot", "id": shot_id, "sg_cut_in": 1001})
        who = site_request("GET", "/entity/shots/%d?fields=created_by" % shot_id)["data"]["relationships"]["created_by"]["data"]
        login = self.sg.find_one("HumanUser", [["login", "is", WRITER_LOGIN]])
        self.assertEqual((who["type"], who["id"]), ("HumanUser", login["id"]))

        updated = self.sg.update("Shot", shot_id, {"sg_cut_in": 1010, "description": "changed"}, return_fields=["sg_cut_in", "description"])
        self.assertEqual((updated["id"], updated["sg_cut_in"], updated["description"]), (shot_id, 1010, "changed"))
        self.assertEqual(self.sg.get_entity("Shot", shot_id, ["sg_cut_in"])["sg_cut_in"], 1010)

        asset = {"type": "Asset", "id": 9}
        self.sg.update("Shot", shot_id, {"assets": [asset]})
        self.sg.update("Shot", shot_id, {"assets": [{"type": "Asset", "id": 10}]}, multi_entity_update_modes={"assets": "add"})
        ids = sorted(a["id"] for a in self.sg.get_entity("Shot", shot_id, ["assets"])["assets"])
        self.assertEqual(ids, [9, 10])
        self.sg.update("Shot", shot_id, {"assets": [asset]}, multi_entity_update_modes={"assets": "remove"})
        self.assertEqual([a["id"] for a in self.sg.get_entity("Shot", shot_id, ["assets"])["assets"]], [10])

        task = self.sg.create("Task", {"content": "py due", "project": {"type": "Project", "id": 1}, "due_date": due}, ["due_date"])
        self.assertEqual(task["due_date"], "2027-03-04")

        self.assertIs(self.sg.delete("Shot", shot_id), True)
        with self.assertRaises(NotFound):
            self.sg.get_entity("Shot", shot_id)
        self.assertEqual([s["id"] for s in self.sg.find("Shot", [["code", "is", self.code]], retired=True)], [shot_id])
        self.assertIs(self.sg.revive("Shot", shot_id), True)
        self.assertEqual(self.sg.get_entity("Shot", shot_id, ["code"])["code"], self.code)
        self.assertIs(self.sg.revive("Shot", shot_id), False)

    def test_batch_is_all_or_nothing(self):
        base = self.sg.create("Shot", {"code": self.code + "_B", "project": {"type": "Project", "id": 1}})
        with self.assertRaises(InvalidArgument):
            self.sg.batch(
                [
                    {"request_type": "create", "entity_type": "Shot", "data": {"code": self.code + "_NO", "project": {"type": "Project", "id": 1}}},
                    {"request_type": "update", "entity_type": "Shot", "entity_id": base["id"], "data": {"sg_cut_in": "not a number"}},
                ]
            )
        self.assertIsNone(self.sg.find_one("Shot", [["code", "is", self.code + "_NO"]]))
        results = self.sg.batch(
            [
                {"request_type": "create", "entity_type": "Shot", "data": {"code": self.code + "_C", "project": {"type": "Project", "id": 1}}, "return_fields": ["code"]},
                {"request_type": "update", "entity_type": "Shot", "entity_id": base["id"], "data": {"description": "batched"}},
                {"request_type": "delete", "entity_type": "Shot", "entity_id": base["id"]},
            ]
        )
        self.assertEqual(len(results), 3)
        self.assertEqual(results[0]["code"], self.code + "_C")
        self.assertEqual(results[1]["id"], base["id"])
        self.assertIs(results[2], True)
        self.assertEqual(self.sg.find_one("Shot", [["code", "is", self.code + "_C"]], ["code"])["id"], results[0]["id"])
        with self.assertRaises(NotFound):
            self.sg.get_entity("Shot", base["id"])

    def test_bad_writes_are_refused_before_sending(self):
        cases = [
            (lambda: self.sg.create("Shot", "code=x"), "data: must be a dict"),
            (lambda: self.sg.create("Shot", {"code": object()}), "data.code: must be JSON"),
            (lambda: self.sg.update("Shot", 0, {}), "entity_id: must be a whole number from 1"),
            (lambda: self.sg.update("Shot", 1, {}, multi_entity_update_modes={"assets": "append"}), 'multi_entity_update_modes.assets: must be "set", "add" or "remove"'),
            (lambda: self.sg.batch([{"request_type": "upsert"}]), "requests[0].request_type"),
            (lambda: self.sg.batch([{"request_type": "delete", "entity_type": "Shot", "entity_id": 1, "data": {}}]), "requests[0].data: not part of a delete request"),
        ]
        for call, words in cases:
            with self.assertRaises(InvalidArgument) as caught:
                call()
            self.assertIn(words, caught.exception.message)


@needs_auth_service
class TokensTest(unittest.TestCase):
    def test_no_token_or_an_unknown_one_is_unauthenticated(self):
        for token in (None, "sgc_not_a_known_token_000000000000000000000000"):
            with CacheClient(AUTH_URL, token=token) as sg:
                with self.assertRaises(Unauthenticated) as caught:
                    sg.get_entity("Shot", 1)
                self.assertTrue(caught.exception.message)
                self.assertNotIn("sgc_not_a_known", caught.exception.message)
                with self.assertRaises(Unauthenticated):
                    next(iter(sg.watch(reconnect_timeout=5)))

    def test_a_token_without_the_scope_or_the_project_is_permission_denied(self):
        with CacheClient(AUTH_URL, token=READER_TOKEN) as reader:
            self.assertEqual(reader.get_entity("Shot", 1, ["code"])["code"], "NLT_010_0010")
            with self.assertRaises(PermissionDenied) as caught:
                reader.create("Shot", {"code": "PY_DENIED", "project": {"type": "Project", "id": 1}})
            self.assertIn("write", caught.exception.message)
        with CacheClient(AUTH_URL, token=LIMITED_TOKEN) as limited:
            self.assertEqual(limited.get_entity("Shot", 1, ["project"])["project"]["id"], 1)
            other = limited.find("Shot", [["project", "is", {"type": "Project", "id": 2}]], ["code"])
            self.assertEqual(other, [])


if __name__ == "__main__":
    unittest.main()
