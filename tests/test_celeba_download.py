"""latentctl data download celeba, offline: Google Drive and the Hugging Face Hub emulated on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import socket
import sys
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from latentctl.data import celeba_download
from latentctl.data.celeba import ATTR_TXT, CELEBA_ATTRIBUTES, IMAGE_DIR, PARTITION_TXT, check_celeba, load_celeba
from latentctl.data.celeba_download import (
    DOWNLOAD_DIR,
    EXTRA_FILES,
    IMAGES_ZIP,
    OFFICIAL_FILES,
    OfficialUnavailable,
    convert_parquet,
    download_celeba,
    download_hub,
    download_official,
    follow_drive_page,
    hub_split,
)
from latentctl.data.synth_faces import synth_faces
from latentctl.errors import LatentctlError

N = 20
REPO = "test/celeba"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
ZIP_ID = OFFICIAL_FILES[IMAGES_ZIP][0]
WARNING_PAGE = """<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>
<div class="uc-main"><p class="uc-warning-caption">Google Drive can't scan this file for viruses.</p>
<p class="uc-warning-subcaption"><span class="uc-name-size"><a href="/open?id={id}">img_align_celeba.zip</a> (1.3G)
</span> is too large for Google to scan for viruses. Would you still like to download this file?</p>
<form id="download-form" action="{action}" method="get">
<input type="submit" id="uc-download-link" class="jfk-button jfk-button-action" value="Download anyway"/>
<input type="hidden" name="id" value="{id}"><input type="hidden" name="export" value="download">
<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="{uuid}"></form></div>
</body></html>"""
QUOTA_PAGE = """<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head><body>
<div class="uc-main"><p class="uc-error-caption">Sorry, you can't view or download this file at this time.</p>
<p class="uc-error-subcaption">Too many users have viewed or downloaded this file recently. Please try accessing
the file again later. If the file you are trying to access is particularly large or is shared with many people, it
may take up to 24 hours to be able to view or download the file.</p></div></body></html>"""
LOGIN_PAGE = "<!DOCTYPE html><html><head><title>Sign in - Google Accounts</title></head><body>Sign in</body></html>"
UUID = "5e7f0c1a-2b3c-4d5e-8f90-123456789abc"


# ------------------------------------------------------------------------------------ a loopback server

Route = Callable[["_Handler", dict[str, str], bool], None]


class Server(ThreadingHTTPServer):
    """A loopback HTTP server whose paths are answered by ``routes[path](handler, query, head)``."""

    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, str, dict[str, str], dict[str, str]]] = []  # method, path, query, headers
        self.body_bytes_sent = 0
        self.lock = threading.Lock()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_port}{path}"

    def requests_to(self, path: str) -> list[tuple[str, dict[str, str], dict[str, str]]]:
        return [(method, query, headers) for method, requested, query, headers in self.requests if requested == path]


class _Handler(BaseHTTPRequestHandler):
    server: Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def _answer(self, head: bool) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        with self.server.lock:
            self.server.requests.append(("HEAD" if head else "GET", path, query, dict(self.headers.items())))
        route = self.server.routes.get(path)
        if route is None:
            self.reply(404, b"not found", content_type="text/plain", head=head)
        else:
            route(self, query, head)

    def reply(self, status: int, body: bytes, *, content_type: str = "application/octet-stream", head: bool = False,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if not head:
            with self.server.lock:
                self.server.body_bytes_sent += len(body)
            self.wfile.write(body)

    def reply_file(self, payload: bytes, head: bool, headers: dict[str, str] | None = None) -> None:
        """Answer like a file server: 200, or 206 for a Range request."""
        requested = self.headers.get("Range", "")
        if requested.startswith("bytes=") and not head:
            start = int(requested.removeprefix("bytes=").split("-")[0])
            self.reply(206, payload[start:], head=head, headers={
                **(headers or {}), "Content-Range": f"bytes {start}-{len(payload) - 1}/{len(payload)}"})
        else:
            self.reply(200, payload, head=head, headers=headers)

    def reply_html(self, page: str, status: int = 200, head: bool = False) -> None:
        self.reply(status, page.encode(), content_type="text/html; charset=utf-8", head=head)


@pytest.fixture
def server() -> Iterator[Server]:
    loopback = Server()
    thread = threading.Thread(target=loopback.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield loopback
    loopback.shutdown()
    loopback.server_close()
    thread.join(timeout=5)


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")


# ------------------------------------------------------------------------------- the official files

@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny CelebA (synthetic faces, their marker removed) in the official layout."""
    root = tmp_path_factory.mktemp("tiny") / "celeba"
    synth_faces(root, N, seed=0, workers=1)
    (root / "SYNTHETIC.json").unlink()
    return root


@pytest.fixture(scope="session")
def official(tiny: Path) -> dict[str, bytes]:
    """The six official files, small: the zip of the tiny set's images, its annotations and three extras."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted((tiny / IMAGE_DIR).iterdir()):
            zipped.write(path, f"{IMAGE_DIR}/{path.name}")
    files = {IMAGES_ZIP: archive.getvalue(), ATTR_TXT: (tiny / ATTR_TXT).read_bytes(),
             PARTITION_TXT: (tiny / PARTITION_TXT).read_bytes()}
    files.update({name: f"{N}\n{name} for the tiny set\n".encode() for name in EXTRA_FILES})
    return files


def md5s(files: dict[str, bytes]) -> dict[str, str]:
    return {name: hashlib.md5(data).hexdigest() for name, data in files.items()}


@dataclass
class FakeDrive:
    """Google Drive's download flow: small files at once, the zip behind a virus-scan form, or a quota page."""

    server: Server
    files: dict[str, bytes]  # by official name
    mode: str = "ok"  # "ok", "quota" (200 page), "quota403", "login"
    by_id: dict[str, bytes] = field(init=False)

    def __post_init__(self) -> None:
        self.by_id = {OFFICIAL_FILES[name][0]: data for name, data in self.files.items()}
        self.server.routes["/uc"] = self.uc
        self.server.routes["/download"] = self.usercontent

    @property
    def url(self) -> str:
        return self.server.url("/uc?export=download&id={id}")

    def refuse(self, handler: _Handler, head: bool) -> bool:
        pages = {"quota": (QUOTA_PAGE, 200), "quota403": (QUOTA_PAGE, 403), "login": (LOGIN_PAGE, 200)}
        if self.mode in pages:
            handler.reply_html(*pages[self.mode], head=head)
            return True
        return False

    def uc(self, handler: _Handler, query: dict[str, str], head: bool) -> None:
        if self.refuse(handler, head):
            return
        if query.get("id") == ZIP_ID:
            handler.reply_html(self.warning(), head=head)
        else:
            handler.reply_file(self.by_id[query["id"]], head)

    def usercontent(self, handler: _Handler, query: dict[str, str], head: bool) -> None:
        if self.refuse(handler, head):
            return
        if query.get("confirm") == "t" and query.get("uuid") == UUID and query.get("export") == "download":
            handler.reply_file(self.by_id[query["id"]], head)
        else:
            handler.reply_html(self.warning(), head=head)

    def warning(self) -> str:
        return WARNING_PAGE.format(id=ZIP_ID, action=self.server.url("/download"), uuid=UUID)


def nothing_saved(root: Path) -> bool:
    """True when no file but resumable .part files lies anywhere under ``root``."""
    return not [path for path in root.rglob("*") if path.is_file() and not path.name.endswith(".part")]


# ---------------------------------------------------------------------------------------------- the Hub

def parquet_bytes(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def celeba_table(root: Path, rows: list[int], image: Callable[[bytes], bytes] = lambda data: data) -> pa.Table:
    """The rows of the tiny set as a Hub mirror keeps them: an image struct, celeb_id and 40 bool columns."""
    loaded = load_celeba(root)
    images = [{"bytes": image((loaded.image_dir / loaded.filenames[row]).read_bytes()), "path": None} for row in rows]
    columns: dict[str, object] = {"image": images, "celeb_id": [row * 7 for row in rows]}
    for index, name in enumerate(CELEBA_ATTRIBUTES):
        columns[name] = [bool(loaded.attributes[row, index]) for row in rows]
    return pa.table(columns)


def hub_files(root: Path, folder: str = "img_align+identity+attr") -> dict[str, bytes]:
    """One parquet file per split, named as flwrlabs/celeba names them."""
    split = load_celeba(root).split
    return {f"{folder}/{name}-00000-of-00001.parquet": parquet_bytes(celeba_table(root, np.flatnonzero(split == code)
                                                                                  .tolist()))
            for code, name in enumerate(("train", "valid", "test"))}


@dataclass
class FakeHub:
    """The two Hub endpoints huggingface_hub uses here: the repository tree and /resolve (HEAD, then GET)."""

    server: Server
    files: dict[str, bytes]
    repo: str = REPO

    def __post_init__(self) -> None:
        self.server.routes[f"/api/datasets/{self.repo}/tree/main"] = self.tree
        for path in self.files:
            self.server.routes[f"/datasets/{self.repo}/resolve/main/{path}"] = self.resolve

    @property
    def endpoint(self) -> str:
        return self.server.url("")

    def tree(self, handler: _Handler, query: dict[str, str], head: bool) -> None:
        entries = [{"type": "file", "path": ".gitattributes", "size": 10, "oid": "1" * 40}]
        entries += [{"type": "file", "path": path, "size": len(data), "oid": hashlib.sha1(data).hexdigest(),
                     "lfs": {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}}
                    for path, data in self.files.items()]
        handler.reply(200, json.dumps(entries).encode(), content_type="application/json", head=head)

    def resolve(self, handler: _Handler, query: dict[str, str], head: bool) -> None:
        path = unquote(urlsplit(handler.path).path).split("/resolve/main/", 1)[1]
        data = self.files[path]
        handler.reply_file(data, head, headers={"X-Repo-Commit": COMMIT,
                                                "ETag": f'"{hashlib.sha256(data).hexdigest()}"'})

    def downloads(self) -> list[str]:
        return [path for method, path, _, _ in self.server.requests
                if method == "GET" and "/resolve/" in path]


@pytest.fixture
def drive(server: Server, official: dict[str, bytes]) -> FakeDrive:
    return FakeDrive(server, official)


@pytest.fixture
def hub(server: Server, tiny: Path) -> FakeHub:
    return FakeHub(server, hub_files(tiny))


def get_official(root: Path, drive: FakeDrive, files: dict[str, bytes], **options: object) -> object:
    return download_official(root, drive_url=drive.url, checksums=md5s(files), **options)  # type: ignore[arg-type]


def assert_same_celeba(installed: Path, source: Path) -> None:
    got, want = load_celeba(installed), load_celeba(source)
    assert got.filenames == want.filenames
    np.testing.assert_array_equal(got.attributes, want.attributes)
    np.testing.assert_array_equal(got.split, want.split)
    assert check_celeba(installed).ok


# ------------------------------------------------------------------------------------- official source

def test_official_download_follows_the_virus_scan_form_and_installs_a_checked_celeba(
    drive: FakeDrive, official: dict[str, bytes], tiny: Path, tmp_path: Path
) -> None:
    root = tmp_path / "celeba"
    calls: list[tuple[str, int, int | None]] = []
    result = get_official(root, drive, official, on_progress=lambda *call: calls.append(call))
    assert result.source == "official" and result.origin == "Google Drive" and result.images == N
    assert_same_celeba(root, tiny)
    assert (root / IMAGE_DIR / "000001.jpg").read_bytes() == (tiny / IMAGE_DIR / "000001.jpg").read_bytes()
    for name in EXTRA_FILES:
        assert (root / name).read_bytes() == official[name]
    assert not (root / DOWNLOAD_DIR).exists()  # the zip and the staging are gone
    [(_, query, _)] = drive.server.requests_to("/download")
    assert query == {"id": ZIP_ID, "export": "download", "confirm": "t", "uuid": UUID}
    assert (IMAGES_ZIP, len(official[IMAGES_ZIP]), len(official[IMAGES_ZIP])) in calls


def test_a_second_run_keeps_the_installed_celeba_without_any_request(
    drive: FakeDrive, official: dict[str, bytes], tmp_path: Path
) -> None:
    root = tmp_path / "celeba"
    get_official(root, drive, official)
    drive.server.requests.clear()
    again = download_celeba(root, drive_url=drive.url, checksums=md5s(official))
    assert again.source == "existing" and again.images == N and drive.server.requests == []


@pytest.mark.parametrize("mode", ["quota", "quota403"])
def test_a_drive_quota_page_is_a_one_line_error_and_nothing_is_saved(
    drive: FakeDrive, official: dict[str, bytes], tmp_path: Path, mode: str
) -> None:
    drive.mode = mode
    root = tmp_path / "celeba"
    with pytest.raises(OfficialUnavailable) as raised:
        get_official(root, drive, official)
    message = raised.value.message
    assert message.startswith(f"Google Drive refuses {IMAGES_ZIP} for now: too many users have viewed or downloaded")
    assert "\n" not in message and "--source hub" in (raised.value.hint or "")
    assert "latentctl data import celeba PATH" in (raised.value.hint or "")
    assert nothing_saved(root)


def test_another_drive_page_is_reported_with_its_title(
    drive: FakeDrive, official: dict[str, bytes], tmp_path: Path
) -> None:
    drive.mode = "login"
    root = tmp_path / "celeba"
    with pytest.raises(OfficialUnavailable, match="HTML page instead of the file.*'Sign in - Google Accounts'"):
        get_official(root, drive, official)
    assert nothing_saved(root)


def test_a_bad_checksum_names_the_file_and_installs_nothing(
    drive: FakeDrive, official: dict[str, bytes], tmp_path: Path
) -> None:
    root = tmp_path / "celeba"
    wrong = {**md5s(official), ATTR_TXT: "0" * 32}
    with pytest.raises(OfficialUnavailable) as raised:
        download_official(root, drive_url=drive.url, checksums=wrong)
    assert raised.value.message.startswith(f"could not download {ATTR_TXT}: 127.0.0.1:")
    assert "checksum mismatch (expected 00000000" in raised.value.message
    assert not (root / IMAGE_DIR).exists() and not (root / ATTR_TXT).exists()


def test_a_truncated_zip_is_caught_before_anything_is_installed(
    drive: FakeDrive, official: dict[str, bytes], tmp_path: Path
) -> None:
    truncated = {**official, IMAGES_ZIP: official[IMAGES_ZIP][: len(official[IMAGES_ZIP]) // 2]}
    FakeDrive(drive.server, truncated)  # serves the truncated zip, with its own md5 expected
    root = tmp_path / "celeba"
    with pytest.raises(OfficialUnavailable, match=f"the downloaded {IMAGES_ZIP} is corrupt: it is truncated"):
        get_official(root, drive, truncated)
    assert not (root / IMAGE_DIR).exists() and not (root / ATTR_TXT).exists()
    assert not (root / DOWNLOAD_DIR / IMAGES_ZIP).exists()  # deleted, so the next run downloads it again


def test_resumes_a_partial_zip_left_by_an_interrupted_run(
    drive: FakeDrive, official: dict[str, bytes], tiny: Path, tmp_path: Path
) -> None:
    root = tmp_path / "celeba"
    half = len(official[IMAGES_ZIP]) // 2
    (root / DOWNLOAD_DIR).mkdir(parents=True)
    (root / DOWNLOAD_DIR / f"{IMAGES_ZIP}.part").write_bytes(official[IMAGES_ZIP][:half])
    get_official(root, drive, official)
    [(_, _, headers)] = drive.server.requests_to("/download")
    assert headers["Range"] == f"bytes={half}-"
    assert_same_celeba(root, tiny)


def test_mirrors_serve_the_official_names_instead_of_drive(
    server: Server, official: dict[str, bytes], tiny: Path, tmp_path: Path
) -> None:
    for name, data in official.items():
        server.routes[f"/celeba/{name}"] = lambda handler, query, head, data=data: handler.reply_file(data, head)
    root = tmp_path / "celeba"
    result = download_official(root, mirrors=[server.url("/celeba")], checksums=md5s(official))
    assert result.origin == server.url("/celeba/")
    assert_same_celeba(root, tiny)
    assert server.requests_to("/uc") == []


def test_follows_an_older_drive_page_with_a_confirm_link() -> None:
    page = b'<html><body><a id="uc-download-link" href="/uc?export=download&amp;confirm=AbCd&amp;id=X">Download</a>'
    target = follow_drive_page("x.zip", "https://drive.google.com/uc?export=download&id=X", page)
    assert target == "https://drive.google.com/uc?export=download&confirm=AbCd&id=X"
    assert follow_drive_page("x.zip", "https://drive.google.com/uc", b"<html>nothing to follow</html>") is None


# ------------------------------------------------------------------------------------------ hub source

def test_hub_download_converts_parquet_to_the_official_layout(hub: FakeHub, tiny: Path, tmp_path: Path) -> None:
    root = tmp_path / "celeba"
    calls: list[tuple[str, int, int | None]] = []
    result = download_hub(root, REPO, endpoint=hub.endpoint, on_progress=lambda *call: calls.append(call))
    assert result.source == "hub" and result.origin == f"hf:{REPO}" and result.images == N
    for path, data in hub.files.items():  # huggingface_hub's progress reaches each file's size
        assert (path.rsplit("/", 1)[1], len(data), len(data)) in calls
    assert result.reencoded == 0
    assert_same_celeba(root, tiny)
    for name in ("000001.jpg", f"{N:06d}.jpg"):  # JPEG bytes are written as they are
        assert (root / IMAGE_DIR / name).read_bytes() == (tiny / IMAGE_DIR / name).read_bytes()
    assert not (root / DOWNLOAD_DIR).exists()
    assert len(hub.downloads()) == 3


def test_auto_falls_back_to_the_hub_when_drive_shows_a_quota_page(
    drive: FakeDrive, official: dict[str, bytes], hub: FakeHub, tiny: Path, tmp_path: Path
) -> None:
    drive.mode = "quota"
    root = tmp_path / "celeba"
    notes: list[str] = []
    result = download_celeba(root, drive_url=drive.url, checksums=md5s(official), hub_repo=REPO,
                             hub_endpoint=hub.endpoint, on_fallback=notes.append)
    assert result.source == "hub" and result.fallback and "too many users" in result.fallback
    [note] = notes
    assert note.endswith(f"; trying the Hugging Face Hub ({REPO}) instead") and "\n" not in note
    assert_same_celeba(root, tiny)


def test_non_jpeg_images_are_reencoded_and_attribute_names_are_matched_loosely(tiny: Path, tmp_path: Path) -> None:
    def png(data: bytes) -> bytes:
        buffer = io.BytesIO()
        Image.open(io.BytesIO(data)).save(buffer, "PNG")
        return buffer.getvalue()

    table = celeba_table(tiny, list(range(N)), image=png)
    names = ["five_o_clock_shadow" if name == "5_o_Clock_Shadow" else name.lower() for name in table.column_names]
    signs = [pa.array(np.where(column.to_numpy(zero_copy_only=False), 1, -1)) for column in table.columns[2:]]
    table = pa.table([table.column(0), table.column(1), *signs], names=names)  # lower case, -1/1 ints
    path = tmp_path / "all.parquet"
    pq.write_table(table, path)
    out = tmp_path / "out"
    assert convert_parquet([(path, 0)], out) == N
    loaded = load_celeba(out)
    np.testing.assert_array_equal(loaded.attributes, load_celeba(tiny).attributes)
    assert (out / IMAGE_DIR / "000001.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
    with Image.open(out / IMAGE_DIR / "000001.jpg") as image:
        assert image.size == (178, 218)


def test_a_hub_repo_that_is_not_celeba_fails_after_one_file(server: Server, tiny: Path, tmp_path: Path) -> None:
    labels = pa.table({"image": [{"bytes": b"\xff\xd8\xff", "path": None}], "label": [3]})
    hub = FakeHub(server, {f"data/{split}-00000-of-00001.parquet": parquet_bytes(labels)
                           for split in ("train", "test")})
    root = tmp_path / "celeba"
    with pytest.raises(LatentctlError) as raised:
        download_hub(root, REPO, endpoint=hub.endpoint)
    message = raised.value.message
    assert message.startswith(f"the Hub dataset {REPO} does not look like CelebA with attributes: ")
    assert "no column for 40 of the 40 attributes (5_o_Clock_Shadow, Arched_Eyebrows, Attractive and 37 more" in message
    assert "--hub-repo" in (raised.value.hint or "")
    assert len(hub.downloads()) == 1 and not (root / IMAGE_DIR).exists()


@pytest.mark.parametrize(("repo", "status", "code", "message", "hint"), [
    ("nobody/nothing", 401, "RepoNotFound",
     "the dataset nobody/nothing does not exist on the Hub, or it is private and your token cannot see it",
     "--hub-repo"),
    ("someone/gated", 403, "GatedRepo",
     "the dataset someone/gated is gated: accept its conditions on https://huggingface.co/datasets/someone/gated first",
     "HF_TOKEN"),
], ids=["missing", "gated"])
def test_a_missing_or_gated_hub_dataset_is_a_one_line_error(server: Server, tmp_path: Path, repo: str, status: int,
                                                            code: str, message: str, hint: str) -> None:
    def refuse(handler: _Handler, query: dict[str, str], head: bool) -> None:  # as the Hub answers
        handler.reply(status, b'{"error": "Repository not found"}', content_type="application/json",
                      headers={"X-Error-Code": code})

    server.routes[f"/api/datasets/{repo}/tree/main"] = refuse
    with pytest.raises(LatentctlError) as raised:
        download_hub(tmp_path / "celeba", repo, endpoint=server.url(""))
    assert raised.value.message == message
    assert hint in (raised.value.hint or "")


@pytest.mark.parametrize(("path", "split"), [
    ("img_align+identity+attr/train-00003-of-00019.parquet", 0),
    ("img_align+identity+attr/valid-00000-of-00003.parquet", 1),
    ("data/validation-00000-of-00001.parquet", 1),
    ("default/test/0000.parquet", 2),
    ("data/all-00000-of-00001.parquet", None),
])
def test_the_split_of_a_parquet_file_comes_from_its_path(path: str, split: int | None) -> None:
    assert hub_split(path) == split


def test_a_missing_pyarrow_is_a_one_line_error_with_the_pip_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # what `import` sees when it is not installed
    with pytest.raises(LatentctlError) as raised:
        download_hub(tmp_path / "celeba", REPO, endpoint="http://127.0.0.1:9")
    assert "needs pyarrow" in raised.value.message and "pip install" in (raised.value.hint or "")


# ------------------------------------------------------------------------------ what is already there

def test_refuses_to_replace_a_synthetic_celeba_without_force(
    drive: FakeDrive, official: dict[str, bytes], tiny: Path, tmp_path: Path
) -> None:
    root = tmp_path / "celeba"
    synth_faces(root, 5, seed=1, workers=1)
    with pytest.raises(LatentctlError, match="holds a synthetic CelebA") as raised:
        get_official(root, drive, official)
    assert "--force" in (raised.value.hint or "") and drive.server.requests == []
    get_official(root, drive, official, force=True)
    assert_same_celeba(root, tiny)
    assert not (root / "SYNTHETIC.json").exists()


# --------------------------------------------------------------------------------------------- the CLI

@pytest.fixture
def pointed(monkeypatch: pytest.MonkeyPatch, drive: FakeDrive, hub: FakeHub, official: dict[str, bytes]) -> FakeDrive:
    """Point the CLI at the loopback Drive and Hub, with the tiny files' md5s as the expected ones."""
    monkeypatch.setattr(celeba_download, "DRIVE_URL", drive.url)
    monkeypatch.setattr(celeba_download, "HUB_ENDPOINT", hub.endpoint)
    monkeypatch.setattr(celeba_download, "HUB_REPO", REPO)
    monkeypatch.setattr(celeba_download, "OFFICIAL_FILES", {name: (drive_id, hashlib.md5(official[name]).hexdigest())
                                                            for name, (drive_id, _) in OFFICIAL_FILES.items()})
    return drive


def test_cli_downloads_and_prints_the_root(cli, pointed: FakeDrive, tmp_path: Path) -> None:
    root = tmp_path / "celeba"
    result = cli("data", "download", "celeba", "--root", root, "--source", "official")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(root)
    assert check_celeba(root).ok


def test_cli_json_says_which_source_was_used(cli, pointed: FakeDrive, tmp_path: Path) -> None:
    pointed.mode = "quota"
    root = tmp_path / "celeba"
    result = cli("data", "download", "celeba", "--root", root, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["command"] == "data download" and document["dataset"] == "celeba"
    assert document["source"] == "hub" and document["origin"] == f"hf:{REPO}" and document["images"] == N
    assert document["root"] == str(root) and "too many users" in document["fallback"]
    assert [file["name"] for file in document["files"]] == [ATTR_TXT, PARTITION_TXT]
    warnings = [line for line in result.stderr.splitlines() if "trying the Hugging Face Hub" in line]
    assert len(warnings) == 1


def test_cli_quota_with_the_official_source_exits_1_with_one_line_and_a_hint(
    cli, pointed: FakeDrive, tmp_path: Path
) -> None:
    pointed.mode = "quota"
    result = cli("data", "download", "celeba", "--root", tmp_path / "celeba", "--source", "official")
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    error = [line for line in lines if line.startswith("error:")]
    assert error == [f"error: Google Drive refuses {IMAGES_ZIP} for now: too many users have viewed or downloaded "
                     "it recently (its download quota is exceeded)"]
    assert any(line.startswith("hint:") and "latentctl data import celeba PATH" in line for line in lines)


def test_cli_falls_back_when_drive_is_unreachable_and_fails_in_one_line_when_the_hub_does_too(
    cli, monkeypatch: pytest.MonkeyPatch, server: Server, tmp_path: Path
) -> None:
    with socket.socket() as probe:  # a port nobody listens on (bound, then released)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(celeba_download, "DRIVE_URL", f"http://127.0.0.1:{port}/uc?id={{id}}")
    monkeypatch.setattr(celeba_download, "HUB_ENDPOINT", server.url(""))  # answers, but has no such dataset
    result = cli("data", "download", "celeba", "--root", tmp_path / "celeba", "--hub-repo", "nobody/nothing")
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert any("could not reach any mirror for img_align_celeba.zip (no network?)" in line
               and line.endswith("trying the Hugging Face Hub (nobody/nothing) instead") for line in lines)
    [error] = [line for line in lines if line.startswith("error:")]
    assert error.startswith("error: could not list the files of the Hub dataset nobody/nothing: ")
    assert any(line.startswith("hint: the official download failed too;") for line in lines)


def test_cli_rejects_celeba_options_for_mnist_and_a_mirror_for_the_hub(cli) -> None:
    assert cli("data", "download", "mnist", "--source", "hub").exit_code == 2
    assert cli("data", "download", "celeba", "--source", "hub", "--mirror", "http://127.0.0.1:9/").exit_code == 2


def test_cli_keeps_an_installed_celeba(cli, pointed: FakeDrive, tmp_path: Path, tiny: Path) -> None:
    root = tmp_path / "celeba"
    shutil.copytree(tiny, root)
    result = cli("data", "download", "celeba", "--root", root)
    assert result.exit_code == 0 and result.stdout.strip() == str(root)
    assert "already" in result.stderr and pointed.server.requests == []
