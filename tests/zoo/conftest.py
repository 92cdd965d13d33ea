"""A real HTTP server on 127.0.0.1 whose answers the tests script, and a zoo sandbox.

Each served path has a plan: a list of actions used by successive requests (then ``default``):

- ``('ok',)``: the file, honouring ``Range: bytes=N-`` with 206 / Content-Range.
- ``('no_range',)``: the whole file with 200, whatever the Range header says.
- ``('drop', n)``: headers for the whole answer, then ``n`` bytes, then the connection closes.
- ``('status', code)``: an error status (404, 503, ...).
- ``('sleep', s)``: nothing for ``s`` seconds (the client times out first), then the file.
- ``('wrong',)``: bytes of the right length but the wrong content.
- ``('slow', chunk, pause)``: the file in ``chunk``-byte pieces, ``pause`` seconds apart.
"""
import hashlib
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml


class ZooServer:
    def __init__(self):
        self.files, self.plans, self.defaults = {}, {}, {}
        self.requests = []  # (path, Range header or None), in arrival order
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.zoo = self
        self.httpd.handle_error = lambda request, address: None  # clients that hung up
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def add(self, path, data, plan=(), default=('ok',)):
        """Serve ``data`` at ``path``; returns its URL."""
        self.files[path] = data
        self.plans[path] = deque(plan)
        self.defaults[path] = default
        return self.url(path)

    def url(self, path):
        return f'http://127.0.0.1:{self.httpd.server_address[1]}{path}'

    def requests_for(self, path):
        return [rng for p, rng in self.requests if p == path]

    def next_action(self, path):
        with self.lock:
            plan = self.plans.get(path)
            return plan.popleft() if plan else self.defaults.get(path, ('status', 404))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def do_GET(self):
        zoo = self.server.zoo
        zoo.requests.append((self.path, self.headers.get('Range')))
        self.close_connection = True
        if self.path not in zoo.files:
            return self._status(404)
        action = zoo.next_action(self.path)
        data = zoo.files[self.path]
        if action[0] == 'status':
            return self._status(action[1])
        if action[0] == 'sleep':
            if zoo.stopping.wait(action[1]):
                return
        if action[0] == 'wrong':
            data = bytes(b ^ 0xFF for b in data)
        start = 0
        if self.headers.get('Range', '').startswith('bytes=') and action[0] != 'no_range':
            start = int(self.headers['Range'][len('bytes='):].split('-')[0])
            if start >= len(data):
                return self._status(416)
        body = data[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header('Content-Range', f'bytes {start}-{len(data) - 1}/{len(data)}')
        self.send_header('Content-Length', str(len(body)))
        self.send_header('Accept-Ranges', 'bytes')
        self.end_headers()
        if action[0] == 'drop':
            self.wfile.write(body[:action[1]])
        elif action[0] == 'slow':
            chunk, pause = action[1], action[2]
            for offset in range(0, len(body), chunk):
                self.wfile.write(body[offset:offset + chunk])
                if zoo.stopping.wait(pause):
                    return
        else:
            self.wfile.write(body)

    def _status(self, code):
        self.send_response(code)
        self.send_header('Content-Length', '0')
        self.end_headers()


@pytest.fixture
def server():
    zoo_server = ZooServer()
    zoo_server.thread.start()
    yield zoo_server
    zoo_server.stopping.set()
    zoo_server.httpd.shutdown()
    zoo_server.httpd.server_close()


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """An empty ``$VLKD_HOME``, no offline mode, no proxy for 127.0.0.1, and
    ``sandbox.manifest(*entries)`` that writes a family file and points
    ``$VLKD_ZOO_MANIFEST`` at it (``sandbox.entry`` makes an entry)."""
    monkeypatch.setenv('VLKD_HOME', str(tmp_path / 'home'))
    monkeypatch.delenv('VLKD_OFFLINE', raising=False)
    monkeypatch.setenv('no_proxy', '127.0.0.1,localhost')
    monkeypatch.setenv('NO_PROXY', '127.0.0.1,localhost')

    class Sandbox:
        home = tmp_path / 'home'
        manifest_dir = tmp_path / 'manifest'

        @staticmethod
        def entry(name, urls, data, **overrides):
            """A manifest entry for ``data`` served at ``urls``."""
            return dict(dict(name=name, task='test file', urls=list(urls),
                             sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                             license='MIT', training_data='random bytes'), **overrides)

        def manifest(self, *entries):
            self.manifest_dir.mkdir(exist_ok=True)
            path = self.manifest_dir / 'test.yaml'
            path.write_text(yaml.safe_dump({'family': 'test', 'models': list(entries)}))
            monkeypatch.setenv('VLKD_ZOO_MANIFEST', str(self.manifest_dir))
            return path

    return Sandbox()
