"""download_file against a misbehaving HTTP server on 127.0.0.1: resume, retries, mirrors, checksums."""

from __future__ import annotations

import hashlib
import io
import random
import socket
import struct
import threading
import time
from collections.abc import Iterator
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from latentctl import __version__
from latentctl.data import download
from latentctl.data.download import download_file, md5_file
from latentctl.errors import LatentctlError

PAYLOAD = random.Random(0).randbytes(200_000)
PAYLOAD_MD5 = hashlib.md5(PAYLOAD).hexdigest()
HALF = len(PAYLOAD) // 2
QUOTA_PAGE = b"<!DOCTYPE html><html><body>Google Drive - Quota exceeded</body></html>"
STALL_SECONDS = 2.0  # how long a "stall" answer hangs mid-body; tests use a much shorter client timeout


class FileServer(ThreadingHTTPServer):
    """A loopback server of byte payloads; the n-th request to a path gets that path's n-th behaviour.

    Behaviours (the last one repeats): ``ok`` (honours Range, 416 past the end), ``ignore_range``,
    ``garbage`` (wrong bytes), ``html``, ``html_as_binary``, ``truncate`` / ``drop`` / ``stall`` (half
    the requested bytes, then a clean close / a reset / a hang), or an HTTP status such as ``"404"``.
    """

    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, tuple[bytes, list[str]]] = {}
        self.requests: list[tuple[str, Message]] = []
        self.body_bytes_sent = 0
        self.lock = threading.Lock()

    def serve(self, path: str, payload: bytes, *behaviours: str) -> str:
        """Serve ``payload`` at ``path`` and return its URL."""
        self.routes[path] = (payload, list(behaviours) or ["ok"])
        return f"http://127.0.0.1:{self.server_port}{path}"

    def requests_to(self, path: str) -> list[Message]:
        """Return the headers of every request made to ``path``, in order."""
        return [headers for requested, headers in self.requests if requested == path]


class _Handler(BaseHTTPRequestHandler):
    server: FileServer

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        payload, behaviours = self.server.routes.get(self.path, (b"", ["404"]))
        with self.server.lock:
            self.server.requests.append((self.path, self.headers))
            behaviour = behaviours.pop(0) if len(behaviours) > 1 else behaviours[0]
        if behaviour.isdigit():
            self.send_error(int(behaviour))
        else:
            getattr(self, behaviour)(payload)

    def ok(self, payload: bytes) -> None:
        self._reply(*self._ranged(payload))

    def ignore_range(self, payload: bytes) -> None:
        self._reply(200, payload)

    def garbage(self, payload: bytes) -> None:
        self._reply(200, payload[::-1])

    def html(self, payload: bytes) -> None:
        self._reply(200, QUOTA_PAGE, content_type="text/html; charset=utf-8")

    def html_as_binary(self, payload: bytes) -> None:
        self._reply(200, QUOTA_PAGE)

    def truncate(self, payload: bytes) -> None:
        status, body, headers = self._ranged(payload)
        self._reply(status, body, headers, send=len(body) // 2)

    def drop(self, payload: bytes) -> None:
        self.truncate(payload)
        # SO_LINGER 0 turns close() into a TCP reset; the files hold the socket open until closed too.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.wfile.close()
        self.rfile.close()
        self.connection.close()
        self.wfile = io.BytesIO()  # the base class flushes wfile after this method returns

    def stall(self, payload: bytes) -> None:
        self.truncate(payload)
        time.sleep(STALL_SECONDS)

    def _ranged(self, payload: bytes) -> tuple[int, bytes, dict[str, str]]:
        """Answer like a real file server: 200, 206 for a Range, 416 for a Range past the end."""
        requested = self.headers.get("Range", "")
        if not requested.startswith("bytes="):
            return 200, payload, {}
        start = int(requested.removeprefix("bytes=").split("-")[0])
        if start >= len(payload):
            return 416, b"", {"Content-Range": f"bytes */{len(payload)}"}
        return 206, payload[start:], {"Content-Range": f"bytes {start}-{len(payload) - 1}/{len(payload)}"}

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None, *,
               content_type: str = "application/octet-stream", send: int | None = None) -> None:
        """Send ``body`` with its full Content-Length, but only its first ``send`` bytes when given."""
        sent = body if send is None else body[:send]
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        with self.server.lock:  # counted before sending, so the client never finishes before the count
            self.server.body_bytes_sent += len(sent)
        self.wfile.write(sent)


@pytest.fixture
def server() -> Iterator[FileServer]:
    file_server = FileServer()
    thread = threading.Thread(target=file_server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield file_server
    file_server.shutdown()
    file_server.server_close()
    thread.join(timeout=5)


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep urllib from sending loopback requests to a proxy configured in the environment."""
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")


@pytest.fixture
def closed_port_url() -> str:
    """Return a loopback URL on a port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/file.bin"


def fetch(urls: list[str], dest: Path, **options: object) -> Path:
    """download_file with the defaults tests want: verified, fast retries, short timeouts."""
    options = {"md5": PAYLOAD_MD5, "backoff": 0, "timeout": 2.0, **options}
    return download_file(urls, dest, **options)  # type: ignore[arg-type]


def part_of(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def test_downloads_a_file_verifies_its_md5_and_leaves_no_part(server: FileServer, tmp_path: Path) -> None:
    dest = tmp_path / "new" / "folder" / "file.bin"
    assert fetch([server.serve("/file.bin", PAYLOAD)], dest) == dest
    assert dest.read_bytes() == PAYLOAD
    assert md5_file(dest) == PAYLOAD_MD5
    assert not part_of(dest).exists()


def test_identifies_itself_with_a_latentctl_user_agent(server: FileServer, tmp_path: Path) -> None:
    fetch([server.serve("/file.bin", PAYLOAD)], tmp_path / "file.bin")
    assert server.requests_to("/file.bin")[0]["User-Agent"] == f"latentctl/{__version__}"


def test_reports_progress_rising_to_the_full_size(server: FileServer, tmp_path: Path) -> None:
    calls: list[tuple[int, int | None]] = []
    url = server.serve("/file.bin", PAYLOAD)
    fetch([url], tmp_path / "file.bin", on_progress=lambda *call: calls.append(call))
    done = [so_far for so_far, _ in calls]
    assert done == sorted(done) and len(calls) > 1
    assert calls[-1] == (len(PAYLOAD), len(PAYLOAD))


def test_falls_back_to_the_next_mirror_when_the_checksum_does_not_match(
    server: FileServer, tmp_path: Path
) -> None:
    urls = [server.serve("/a", PAYLOAD, "garbage"), server.serve("/b", PAYLOAD)]
    assert fetch(urls, tmp_path / "file.bin").read_bytes() == PAYLOAD


def test_fails_naming_the_checksum_when_the_only_mirror_serves_wrong_bytes(
    server: FileServer, tmp_path: Path
) -> None:
    dest = tmp_path / "file.bin"
    with pytest.raises(LatentctlError) as caught:
        fetch([server.serve("/a", PAYLOAD, "garbage")], dest)
    message = caught.value.message
    assert message.startswith("could not download file.bin: 127.0.0.1:")
    assert f"checksum mismatch (expected {PAYLOAD_MD5}, got " in message
    assert len(server.requests_to("/a")) == 1  # the mirror's copy is wrong: asking again cannot help
    assert not dest.exists() and not part_of(dest).exists()


def test_resumes_after_the_connection_drops_mid_body(server: FileServer, tmp_path: Path) -> None:
    dest = fetch([server.serve("/file.bin", PAYLOAD, "drop", "ok")], tmp_path / "file.bin")
    assert dest.read_bytes() == PAYLOAD
    first, second = server.requests_to("/file.bin")
    assert first["Range"] is None and second["Range"].startswith("bytes=")
    assert server.body_bytes_sent < 2 * len(PAYLOAD)


def test_resumes_after_a_body_shorter_than_its_content_length(server: FileServer, tmp_path: Path) -> None:
    dest = fetch([server.serve("/file.bin", PAYLOAD, "truncate", "ok")], tmp_path / "file.bin")
    assert dest.read_bytes() == PAYLOAD
    assert server.requests_to("/file.bin")[1]["Range"] == f"bytes={HALF}-"
    assert server.body_bytes_sent == len(PAYLOAD)


def test_resumes_after_the_server_stalls_past_the_timeout(server: FileServer, tmp_path: Path) -> None:
    dest = fetch([server.serve("/file.bin", PAYLOAD, "stall", "ok")], tmp_path / "file.bin", timeout=0.3)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests_to("/file.bin")[1]["Range"] == f"bytes={HALF}-"


def test_gives_up_clearly_and_keeps_the_part_when_every_attempt_is_cut_short(
    server: FileServer, tmp_path: Path
) -> None:
    dest = tmp_path / "file.bin"
    with pytest.raises(LatentctlError) as caught:
        fetch([server.serve("/file.bin", PAYLOAD, "truncate")], dest, retries=3)
    assert "connection closed early" in caught.value.message
    assert "partial download is kept" in (caught.value.hint or "")
    assert len(server.requests_to("/file.bin")) == 3
    assert part_of(dest).read_bytes() == PAYLOAD[: part_of(dest).stat().st_size]  # 1/2 + 1/4 + 1/8 of it
    assert not dest.exists()


def test_resumes_a_partial_file_left_by_an_earlier_run(server: FileServer, tmp_path: Path) -> None:
    dest = tmp_path / "file.bin"
    part_of(dest).write_bytes(PAYLOAD[:HALF])
    assert fetch([server.serve("/file.bin", PAYLOAD)], dest).read_bytes() == PAYLOAD
    assert [headers["Range"] for headers in server.requests_to("/file.bin")] == [f"bytes={HALF}-"]
    assert server.body_bytes_sent == len(PAYLOAD) - HALF


def test_restarts_from_zero_when_the_server_ignores_range(server: FileServer, tmp_path: Path) -> None:
    dest = tmp_path / "file.bin"
    part_of(dest).write_bytes(PAYLOAD[:HALF])
    assert fetch([server.serve("/file.bin", PAYLOAD, "ignore_range")], dest).read_bytes() == PAYLOAD


def test_accepts_a_complete_part_when_the_server_answers_416(server: FileServer, tmp_path: Path) -> None:
    dest = tmp_path / "file.bin"
    part_of(dest).write_bytes(PAYLOAD)
    assert fetch([server.serve("/file.bin", PAYLOAD)], dest).read_bytes() == PAYLOAD
    assert server.body_bytes_sent == 0


def test_restarts_when_the_part_is_bigger_than_the_file(server: FileServer, tmp_path: Path) -> None:
    dest = tmp_path / "file.bin"
    part_of(dest).write_bytes(PAYLOAD + b"junk")
    assert fetch([server.serve("/file.bin", PAYLOAD)], dest, md5=None).read_bytes() == PAYLOAD


def test_retries_from_zero_when_a_resumed_file_fails_its_checksum(server: FileServer, tmp_path: Path) -> None:
    dest = tmp_path / "file.bin"
    part_of(dest).write_bytes(bytes(HALF))  # a stale partial download of some other file
    assert fetch([server.serve("/file.bin", PAYLOAD)], dest).read_bytes() == PAYLOAD
    assert [headers["Range"] for headers in server.requests_to("/file.bin")] == [f"bytes={HALF}-", None]


def test_skips_a_mirror_that_answers_404_without_retrying_it(server: FileServer, tmp_path: Path) -> None:
    urls = [server.serve("/gone", PAYLOAD, "404"), server.serve("/file.bin", PAYLOAD)]
    assert fetch(urls, tmp_path / "file.bin", retries=3).read_bytes() == PAYLOAD
    assert len(server.requests_to("/gone")) == 1


@pytest.mark.parametrize("behaviour", ["html", "html_as_binary"])
def test_rejects_an_html_page_served_instead_of_the_file(
    server: FileServer, tmp_path: Path, behaviour: str
) -> None:
    dest = tmp_path / "file.bin"
    with pytest.raises(LatentctlError, match="HTML page instead of the file"):
        fetch([server.serve("/file.bin", PAYLOAD, behaviour)], dest, md5=None)
    assert not dest.exists() and not part_of(dest).exists()


def test_an_html_answer_does_not_overwrite_the_partial_download(server: FileServer, tmp_path: Path) -> None:
    dest = tmp_path / "file.bin"
    part_of(dest).write_bytes(PAYLOAD[:HALF])
    urls = [server.serve("/portal", PAYLOAD, "html"), server.serve("/file.bin", PAYLOAD)]
    assert fetch(urls, dest).read_bytes() == PAYLOAD
    assert server.requests_to("/file.bin")[0]["Range"] == f"bytes={HALF}-"


def test_accepts_html_when_binary_is_not_expected(server: FileServer, tmp_path: Path) -> None:
    url = server.serve("/page", PAYLOAD, "html")
    dest = fetch([url], tmp_path / "page.html", md5=None, expect_binary=False)
    assert dest.read_bytes() == QUOTA_PAGE


def test_retries_server_errors_and_then_succeeds(server: FileServer, tmp_path: Path) -> None:
    url = server.serve("/file.bin", PAYLOAD, "500", "500", "ok")
    assert fetch([url], tmp_path / "file.bin", retries=3).read_bytes() == PAYLOAD
    assert len(server.requests_to("/file.bin")) == 3


def test_backs_off_exponentially_between_attempts(
    server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(download.time, "sleep", sleeps.append)
    fetch([server.serve("/file.bin", PAYLOAD, "503", "503", "ok")], tmp_path / "file.bin", backoff=1.5)
    assert sleeps == [1.5, 3.0]


def test_gives_up_on_a_failing_mirror_once_its_attempts_are_spent(server: FileServer, tmp_path: Path) -> None:
    with pytest.raises(LatentctlError) as caught:
        fetch([server.serve("/file.bin", PAYLOAD, "500")], tmp_path / "file.bin", retries=2)
    assert "500 Internal Server Error" in caught.value.message
    assert "try again later" in (caught.value.hint or "")
    assert len(server.requests_to("/file.bin")) == 2


def test_says_no_network_when_no_mirror_can_be_reached(closed_port_url: str, tmp_path: Path) -> None:
    with pytest.raises(LatentctlError) as caught:
        fetch([closed_port_url, "http://127.0.0.1:1/file.bin"], tmp_path / "file.bin")
    assert caught.value.message.startswith("could not reach any mirror for file.bin (no network?)")
    assert "connection refused" in caught.value.message
    assert "--mirror" in (caught.value.hint or "")


def test_does_not_blame_the_network_when_some_mirror_answered(
    server: FileServer, closed_port_url: str, tmp_path: Path
) -> None:
    with pytest.raises(LatentctlError) as caught:
        fetch([closed_port_url, server.serve("/gone", PAYLOAD, "404")], tmp_path / "file.bin")
    assert caught.value.message.startswith("could not download file.bin: ")
    assert caught.value.message.endswith(f"127.0.0.1:{server.server_port}: 404 Not Found")


def test_returns_an_existing_file_with_the_right_md5_without_any_request(
    server: FileServer, tmp_path: Path
) -> None:
    dest = tmp_path / "file.bin"
    dest.write_bytes(PAYLOAD)
    assert fetch([server.serve("/file.bin", PAYLOAD)], dest) == dest
    assert server.requests == []


def test_replaces_an_existing_file_whose_md5_is_wrong(server: FileServer, tmp_path: Path) -> None:
    dest = tmp_path / "file.bin"
    dest.write_bytes(b"stale")
    assert fetch([server.serve("/file.bin", PAYLOAD)], dest).read_bytes() == PAYLOAD


def test_copies_from_a_file_url(tmp_path: Path) -> None:
    source = tmp_path / "mirror" / "file.bin"
    source.parent.mkdir()
    source.write_bytes(PAYLOAD)
    assert fetch([source.as_uri()], tmp_path / "file.bin").read_bytes() == PAYLOAD


def test_keyboard_interrupt_propagates_and_keeps_the_part_for_resume(
    server: FileServer, tmp_path: Path
) -> None:
    dest = tmp_path / "file.bin"
    url = server.serve("/file.bin", PAYLOAD)

    def interrupt(done: int, total: int | None) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fetch([url], dest, on_progress=interrupt)
    kept = part_of(dest).stat().st_size
    assert 0 < kept < len(PAYLOAD)
    assert fetch([url], dest).read_bytes() == PAYLOAD
    assert server.requests_to("/file.bin")[1]["Range"] == f"bytes={kept}-"
