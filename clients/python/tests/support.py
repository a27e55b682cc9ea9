"""What the tests share: the service and simulated site the npm test wrapper started
(test/python-client.test.ts passes them in the environment), the site's REST API for making
changes, a service process of our own to stop and restart, and free ports."""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

SERVICE_URL = os.environ.get("SGC_TEST_URL")
SITE_URL = os.environ.get("SGC_TEST_SITE_URL")
SCRIPT_NAME = os.environ.get("SGC_TEST_SCRIPT_NAME", "shotgrid-cache-demo")
SCRIPT_KEY = os.environ.get("SGC_TEST_SCRIPT_KEY", "demo-key")
NODE = os.environ.get("SGC_TEST_NODE", "node")
BIN = os.environ.get("SGC_TEST_BIN", os.path.join(HERE, "..", "..", "..", "bin", "shotgrid-cache.mjs"))

needs_service = unittest.skipUnless(SERVICE_URL and SITE_URL, "run through npm test (test/python-client.test.ts), which starts the service")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


_site_token = [None]


def site_request(method, path, body=None):
    """One call to the simulated site's REST API (as a user's tool would make a change)."""
    if _site_token[0] is None:
        form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": SCRIPT_NAME, "client_secret": SCRIPT_KEY}).encode()
        with urllib.request.urlopen(urllib.request.Request(SITE_URL + "/api/v1.1/auth/access_token", data=form), timeout=10) as res:
            _site_token[0] = json.loads(res.read().decode())["access_token"]
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(SITE_URL + "/api/v1.1" + path, data=data, method=method)
    req.add_header("authorization", "Bearer " + _site_token[0])
    req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as res:
        return json.loads(res.read().decode() or "null")


def site_update(plural, entity_id, attributes):
    return site_request("PUT", "/entity/%s/%d" % (plural, entity_id), attributes)


def wait_until(probe, timeout=10.0, every=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


class ServiceProcess(object):
    """`shotgrid-cache serve` following the test site, on a fixed port, to stop and restart."""

    def __init__(self, port, extra_args=()):
        self.port = port
        self.url = "http://127.0.0.1:%d" % port
        self.extra_args = list(extra_args)
        self.proc = None

    def start(self):
        args = [NODE, BIN, "serve", "--port", str(self.port), "--host", "127.0.0.1", "--site", SITE_URL, "--script-name", SCRIPT_NAME]
        args += ["--poll-interval-ms", "100", "--heartbeat-s", "1", "--state-dir", "", "--log-level", "warn", "--preload", "Project,Sequence,Shot"]
        args += self.extra_args
        env = dict(os.environ, SHOTGRID_SCRIPT_KEY=SCRIPT_KEY)
        self.proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("service exited %s: %s" % (self.proc.returncode, self.proc.stderr.read().decode(errors="replace")))
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2) as res:
                    return res.status == 200
            except OSError:
                return False

        if not wait_until(ready, timeout=60, every=0.1):
            self.stop()
            raise AssertionError("service on port %d not ready within 60 s" % self.port)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        self.proc = None


class CuttableProxy(object):
    """A TCP proxy to the service whose connections can be cut and refused for a while: a
    dropped network link, without restarting the service (so it can still replay)."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.open = True
        self._pairs = []
        self._lock = threading.Lock()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        """Drop every connection and refuse new ones until restore()."""
        self.open = False
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for s in pair:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def restore(self):
        self.open = True

    def close(self):
        self.cut()
        self._listener.close()


class Collector(object):
    """Iterates a watch stream on a thread of its own, so a test waits for messages with a time
    bound instead of blocking in next() for ever."""

    def __init__(self, stream):
        self.stream = stream
        self.messages = []
        self.errors = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for m in self.stream:
                self.messages.append(m)
        except Exception as err:  # noqa: BLE001 - the test reads it
            self.errors.append(err)

    def wait_for(self, match, timeout=15.0, start=0):
        """The first message from index `start` that `match`es, or None after `timeout` (or an error)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.messages[start:] if match(m)]
            if found:
                return found[0]
            if self.errors or time.monotonic() > deadline:
                return None
            time.sleep(0.02)

    def close(self):
        self.stream.close()
        self.thread.join(10)
        return not self.thread.is_alive()

# A second service of the wrapper's, with an auth file: a token per role (see test/python-client.test.ts).
AUTH_URL = os.environ.get("SGC_TEST_AUTH_URL")
WRITER_TOKEN = os.environ.get("SGC_TEST_WRITER_TOKEN")
WRITER_LOGIN = os.environ.get("SGC_TEST_WRITER_LOGIN", "ava.moreau")
READER_TOKEN = os.environ.get("SGC_TEST_READER_TOKEN")
LIMITED_TOKEN = os.environ.get("SGC_TEST_LIMITED_TOKEN")
needs_auth_service = unittest.skipUnless(AUTH_URL and WRITER_TOKEN and SITE_URL, "run through npm test (test/python-client.test.ts), which starts the service")
