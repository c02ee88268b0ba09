"""A real HTTP file server on 127.0.0.1 for download tests (never the internet): serves byte strings
by name, honours ``Range: bytes=N-`` with 206, and can misbehave on purpose (cut a transfer off
after some bytes while announcing the full length, ignore Range)."""

from __future__ import annotations

import http.server
import threading
from dataclasses import dataclass, field


@dataclass
class Behaviour:
    files: dict[str, bytes] = field(default_factory=dict)
    cut_after: int | None = None  # close the connection after this many body bytes of one response
    ignore_range: bool = False
    hold_after: int | None = None  # send this many body bytes, then wait for `release` before the rest
    release: threading.Event = field(default_factory=threading.Event)
    requests: list[str | None] = field(default_factory=list)  # the Range header of each GET


class FileServer:
    """`start()` in a thread; `url` is its base; `stop()` makes it gone (connections refused)."""

    def __init__(self) -> None:
        self.behaviour = Behaviour()
        behaviour = self.behaviour

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                data = behaviour.files.get(self.path.lstrip("/"))
                rng = self.headers.get("Range")
                behaviour.requests.append(rng)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                if rng and not behaviour.ignore_range and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0])
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if behaviour.cut_after is not None:
                    self.wfile.write(body[: behaviour.cut_after])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if behaviour.hold_after is not None:
                    self.wfile.write(body[: behaviour.hold_after])
                    self.wfile.flush()
                    behaviour.release.wait(30)
                    body = body[behaviour.hold_after :]
                self.wfile.write(body)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> FileServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
