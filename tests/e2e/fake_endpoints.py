"""Local HTTP servers standing in for the Hugging Face Hub, Telegram's Bot API and a webhook,
on loopback. They speak the parts of each protocol the real clients use (huggingface_hub's
create_repo / list_repo_files / create_commit; Telegram's sendMessage; a JSON POST) and keep
what arrived, so a test can check the right files and messages came."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse


class Received:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.files: dict[str, dict[str, bytes]] = {}  # repo -> path -> content
        self.commits: list[tuple[str, str, list[str]]] = []  # (repo, summary, paths)
        self.created: list[dict] = []
        self.telegram: list[tuple[str, dict]] = []  # (token, body)
        self.webhook: list[dict] = []


def _handler(got: Received):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def _reply(self, status: int, body) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_GET(self) -> None:
            parts = urlparse(self.path).path.strip("/").split("/")
            # /api/models/<ns>/<name>/tree/<revision>[/<path>]
            if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "tree":
                repo = "/".join(parts[2:4])
                with got.lock:
                    files = got.files.get(repo, {})
                    listing = [{"type": "file", "path": p, "oid": hashlib.sha1(c).hexdigest(), "size": len(c)} for p, c in sorted(files.items())]
                self._reply(200, listing)
            else:
                self._reply(404, {"error": f"no route {self.path}"})

        def do_POST(self) -> None:
            path = urlparse(self.path).path
            parts = path.strip("/").split("/")
            body = self._body()
            if path == "/api/repos/create":
                request = json.loads(body)
                with got.lock:
                    got.created.append(request)
                self._reply(200, {"url": f"http://{self.headers['Host']}/{request.get('organization')}/{request['name']}"})
            elif parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "preupload":
                files = json.loads(body)["files"]
                self._reply(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]})
            elif parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "commit":
                repo = "/".join(parts[2:4])
                lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
                summary = next(item["value"]["summary"] for item in lines if item["key"] == "header")
                added = {item["value"]["path"]: base64.b64decode(item["value"]["content"]) for item in lines if item["key"] == "file"}
                with got.lock:
                    got.files.setdefault(repo, {}).update(added)
                    got.commits.append((repo, summary, sorted(added)))
                self._reply(200, {"commitUrl": f"http://{self.headers['Host']}/{repo}/commit/c{len(got.commits)}", "commitOid": f"{len(got.commits):040x}"})
            elif len(parts) == 2 and parts[0].startswith("bot") and parts[1] == "sendMessage":
                with got.lock:
                    got.telegram.append((parts[0].removeprefix("bot"), json.loads(body)))
                self._reply(200, {"ok": True, "result": {"message_id": len(got.telegram)}})
            elif path == "/hook":
                with got.lock:
                    got.webhook.append(json.loads(body))
                self._reply(200, {"ok": True})
            else:
                self._reply(404, {"error": f"no route {path}"})

    return Handler


@contextmanager
def endpoints():
    """A server on 127.0.0.1 answering as the Hub, Telegram and a webhook; yields (base URL, Received)."""
    got = Received()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(got))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", got
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> str:
    """A loopback URL nothing listens on (the endpoint is down)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
