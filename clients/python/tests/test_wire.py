"""Wire cases the real service cannot be made to send on demand (a late event id, an error
ending a stream, a proxy's HTML page, a compressed frame): a scripted HTTP/1.1 peer speaks the
Connect framing byte by byte. Everything else is tested against the real service."""
import http.server
import json
import numbers
import struct
import threading
import unittest

import support  # noqa: F401 - puts the package on sys.path

from shotgrid_cache import CacheClient, Change, Internal, PermissionDenied, Unauthenticated, Unavailable


def frame(flags, obj):
    data = json.dumps(obj).encode()
    return struct.pack(">BI", flags, len(data)) + data


def change(event_id, entity_id):
    return {"change": {"eventId": str(event_id), "eventType": "Shotgun_Shot_Change", "kind": "CHANGE_KIND_CHANGE", "entityType": "Shot", "entityId": entity_id}}


class Peer(object):
    """Answers each request with the next scripted (status, content type, body) and records the requests."""

    def __init__(self, script):
        self.script = list(script)
        self.requests = []
        peer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                peer.requests.append((self.path, dict((k.lower(), v) for k, v in self.headers.items()), body))
                status, content_type, payload = peer.script.pop(0) if peer.script else (503, "text/plain", b"script ended")
                if status is None:
                    # The answer is lost: the connection closes with the request read.
                    self.close_connection = True
                    return
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(payload)))
                self.send_header("connection", "close")
                self.end_headers()
                self.wfile.write(payload)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def stream_request(self, i):
        body = self.requests[i][2]
        return json.loads(body[5:].decode())


STREAM = "application/connect+json"


class WireTest(unittest.TestCase):
    def peer(self, script):
        p = Peer(script)
        self.addCleanup(p.close)
        return p

    def test_a_late_lower_id_does_not_move_the_resume_point_back(self):
        peer = self.peer(
            [
                (200, STREAM, frame(0, change(10, 1)) + frame(0, change(8, 2)) + frame(2, {})),
                (200, STREAM, frame(0, change(11, 3)) + frame(2, {"error": {"code": "permission_denied", "message": "no"}})),
            ]
        )
        stream = CacheClient(peer.url).watch(["Shot"], since_event_id=5)
        got = []
        with self.assertRaises(PermissionDenied):
            for m in stream:
                got.append(m)
        self.assertEqual([(m.event_id, m.entity_id) for m in got], [(10, 1), (8, 2), (11, 3)])
        self.assertIsInstance(got[0], Change)
        self.assertEqual(peer.stream_request(0), {"entityTypes": ["Shot"], "projectIds": [], "sinceEventId": "5"})
        self.assertEqual(peer.stream_request(1)["sinceEventId"], "10")

    def test_an_error_ending_the_stream_raises_with_the_servers_words(self):
        peer = self.peer([(200, STREAM, frame(2, {"error": {"code": "unauthenticated", "message": "a bearer token is required"}}))])
        with self.assertRaises(Unauthenticated) as caught:
            next(iter(CacheClient(peer.url).watch()))
        self.assertEqual(caught.exception.message, "a bearer token is required")

    def test_a_retryable_stream_error_reconnects(self):
        peer = self.peer(
            [
                (200, STREAM, frame(2, {"error": {"code": "unavailable", "message": "shutting down"}})),
                (200, STREAM, frame(0, {"resync": {"reason": "too slow", "resumeEventId": "42"}}) + frame(2, {"error": {"code": "invalid_argument", "message": "x"}})),
            ]
        )
        stream = CacheClient(peer.url).watch(reconnect_timeout=5)
        resync = next(stream)
        self.assertEqual((resync.reason, resync.resume_event_id), ("too slow", 42))
        self.assertEqual(stream.last_event_id, 42)
        stream.close()

    def test_a_compressed_frame_is_refused(self):
        peer = self.peer([(200, STREAM, struct.pack(">BI", 1, 3) + b"abc")])
        with self.assertRaises(Internal):
            next(iter(CacheClient(peer.url).watch()))

    def test_unary_errors_and_the_token(self):
        peer = self.peer(
            [
                (401, "application/json", json.dumps({"code": "unauthenticated", "message": "unknown token"}).encode()),
                (503, "text/html", b"<html>proxy says no</html>"),
                (200, "application/json", b"not json"),
            ]
        )
        sg = CacheClient(peer.url, token="sgc_secret-token")
        self.addCleanup(sg.close)
        self.assertNotIn("secret", repr(sg))
        with self.assertRaises(Unauthenticated) as caught:
            sg.get_entity("Shot", 1)
        self.assertEqual(caught.exception.message, "unknown token")
        path, headers, body = peer.requests[0]
        self.assertEqual(path, "/shotgrid.cache.v1.CacheService/GetEntity")
        self.assertEqual(headers["authorization"], "Bearer sgc_secret-token")
        self.assertEqual(headers["content-type"], "application/json")
        self.assertEqual(headers["connect-protocol-version"], "1")
        self.assertEqual(headers["connect-timeout-ms"], "10000")
        self.assertEqual(json.loads(body.decode()), {"entityType": "Shot", "id": 1, "fields": []})
        # A proxy's page: the Connect mapping of its status, and not "unreachable" (no fallback).
        with self.assertRaises(Unavailable) as caught:
            sg.find("Shot", [])
        self.assertFalse(caught.exception.unreachable)
        self.assertIn("HTTP 503", caught.exception.message)
        with self.assertRaises(Internal):
            sg.find("Shot", [])

    def test_a_write_whose_answer_is_lost_is_not_sent_again(self):
        peer = self.peer([(None, "", b""), (200, "application/json", b"{}")])
        with CacheClient(peer.url, token="sgc_x") as sg:
            with self.assertRaises(Unavailable) as caught:
                sg.delete("Shot", 5)
            self.assertIn("the write may have been made", caught.exception.message)
            self.assertEqual(len(peer.requests), 1)
            # A read is a fresh call on a fresh connection, and is answered.
            self.assertIs(sg.revive("Shot", 5), False)
        self.assertEqual(json.loads(peer.requests[0][2].decode()), {"entityType": "Shot", "id": 5})

    def test_any_integral_id_is_an_id(self):
        class NumpyLikeInt(object):
            """Not an int subclass, as numpy's integers are not."""

            def __init__(self, v):
                self.v = v

            def __int__(self):
                return self.v

            def __lt__(self, other):
                return self.v < other

        numbers.Integral.register(NumpyLikeInt)
        peer = self.peer([(200, "application/json", json.dumps({"entity": {"type": "Shot", "id": 7, "fields": {}}}).encode())])
        with CacheClient(peer.url) as sg:
            self.assertEqual(sg.get_entity("Shot", NumpyLikeInt(7)), {"type": "Shot", "id": 7})
        self.assertEqual(json.loads(peer.requests[0][2].decode())["id"], 7)


if __name__ == "__main__":
    unittest.main()
