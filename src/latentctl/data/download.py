"""Download one file from a list of mirrors: resume, retries with backoff, md5 check, atomic rename.

Standard library only (urllib), so downloading works wherever Python does. Bytes go to ``<dest>.part``
first and reach ``dest`` only once complete and verified: an interrupted run (dropped connection,
Ctrl-C) never leaves half a file under the final name, and the next run resumes where it stopped.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import http.cookiejar
import os
import re
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from email.message import Message
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

from latentctl import __version__
from latentctl.errors import LatentctlError

ProgressCallback = Callable[[int, int | None], None]
# follow(url, page): given an HTML page served instead of the file, the URL to try instead, or None
FollowPage = Callable[[str, bytes], str | None]

_CHUNK_SIZE = 1 << 16
# errno values that say "this machine cannot get out", as opposed to "that server misbehaved".
_UNREACHABLE_ERRNOS = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN}
_HTML_ANSWER = "answered with an HTML page instead of the file (quota exceeded, a login or a confirmation page?)"
_PAGE_LIMIT = 1 << 20  # how much of an HTML answer is read, for its title and for ``follow``


class _AttemptFailed(Exception):
    """Why one attempt on one mirror failed, and whether asking the same mirror again may help."""

    def __init__(self, reason: str, *, retry: bool = True, unreachable: bool = False,
                 page: bytes | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry
        self.unreachable = unreachable
        self.page = page  # the HTML page answered instead of the file, if that is what happened


def md5_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """Return the hex md5 of the file at ``path``, read in chunks so large archives need little memory."""
    digest = hashlib.md5(usedforsecurity=False)  # an integrity check, not security: fine on FIPS systems
    with open(path, "rb") as file:
        while chunk := file.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def download_file(
    urls: Sequence[str],
    dest: Path,
    md5: str | None = None,
    *,
    retries: int = 3,
    timeout: float = 30.0,
    backoff: float = 1.0,
    on_progress: ProgressCallback | None = None,
    expect_binary: bool = True,
    follow: FollowPage | None = None,
) -> Path:
    """Download one file to ``dest`` from the first mirror that delivers it intact, and return ``dest``.

    ``urls`` are mirrors of the same file, tried in order. Each gets up to ``retries`` attempts for
    transient failures (5xx, resets, timeouts, short bodies), ``backoff * 2**n`` seconds apart; 403, 404
    and 410 move on to the next mirror at once. An existing ``dest`` whose md5 matches is returned
    without touching the network. ``on_progress(bytes_so_far, total_or_None)`` is called as bytes
    arrive; ``bytes_so_far`` drops back when a download restarts from zero. With ``expect_binary``, an
    HTML page (a quota, login or captive-portal answer) counts as a failure rather than as the file;
    ``follow(url, page)``, when given, sees such a page first and may return the URL to try instead (the
    target of a "download anyway" confirmation form), or raise ``LatentctlError`` to say what the page means.

    Raises ``LatentctlError`` when every mirror fails. ``KeyboardInterrupt`` propagates and keeps the
    ``.part`` file, so the next call resumes it.
    """
    if not urls:
        raise ValueError("download_file needs at least one URL")
    dest = Path(dest)
    expected = md5.strip().lower() if md5 else None
    if dest.is_file() and (expected is None or md5_file(dest) == expected):
        size = dest.stat().st_size
        if on_progress is not None:
            on_progress(size, size)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")

    failures: list[tuple[str, _AttemptFailed]] = []
    attempts = max(retries, 1)
    # One cookie jar per file: a confirmation page may set a cookie that the confirmed request needs.
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    pending, tried = list(urls), set[str]()
    while pending:
        url = pending.pop(0)
        tried.add(url)
        for attempt in range(attempts):
            if attempt:
                time.sleep(backoff * 2 ** (attempt - 1))
            try:
                resumed = _fetch(opener, url, part, timeout, on_progress, expect_binary)
                if expected is not None:
                    _check_md5(part, expected, resumed)
            except _AttemptFailed as failure:
                target = follow(url, failure.page) if follow is not None and failure.page is not None else None
                if target is not None and target not in tried:
                    pending.insert(0, target)
                    break
                if failure.retry and attempt + 1 < attempts:
                    continue
                failures.append((urlsplit(url).netloc or url, failure))
                break
            # Atomic, so a bad file already at dest is replaced only by a verified one.
            os.replace(part, dest)
            return dest
    raise _all_mirrors_failed(dest.name, failures, partial_kept=part.exists())


def _fetch(
    opener: urllib.request.OpenerDirector, url: str, part: Path, timeout: float,
    on_progress: ProgressCallback | None, expect_binary: bool,
) -> bool:
    """Bring ``part`` up to the whole file from ``url``; return True if it kept bytes it already had."""
    # file:// answers ignore Range, so local copies are simply copied whole.
    resumable = urlsplit(url).scheme in ("http", "https")
    offset = part.stat().st_size if resumable and part.exists() else 0
    headers = {"User-Agent": f"latentctl/{__version__}"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = opener.open(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as error:
        # A refusal may come as a web page that says why (Google Drive's quota page, for one).
        page = _read_page(error) if error.headers is not None and _is_html_type(error.headers) else None
        error.close()
        if error.code == 416 and offset:
            # "Range Not Satisfiable": the .part already holds the whole file, or more than the file.
            if _content_range(error.headers) == (None, offset):
                if on_progress is not None:
                    on_progress(offset, offset)
                return True
            part.unlink()
            return _fetch(opener, url, part, timeout, on_progress, expect_binary)
        # 5xx, 408 and 429 are the server's passing trouble; any other 4xx will answer the same again.
        transient = error.code >= 500 or error.code in (408, 429)
        raise _AttemptFailed(f"{error.code} {error.reason}", retry=transient, page=page) from error
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
        raise _connection_failure(error) from error

    with response:
        resuming = offset > 0 and response.status == 206
        if resuming and _content_range(response.headers)[0] != offset:
            part.unlink()
            raise _AttemptFailed("server sent a different byte range than asked for")
        start = offset if resuming else 0  # a 200 answer to a Range request is the whole file again
        length = response.headers.get("Content-Length", "")
        total = start + int(length) if length.isdigit() else None

        chunk = _read(response, start, total)
        if expect_binary and (_is_html_type(response.headers) or _is_html(chunk, start)):
            # Checked before opening the .part, so an HTML answer never overwrites a good partial file.
            page = _read_page(response, chunk)
            title = _page_title(page)
            raise _AttemptFailed(_HTML_ANSWER + (f": {title!r}" if title else ""), retry=False, page=page)
        done = start
        with open(part, "ab" if resuming else "wb") as file:
            while chunk:
                file.write(chunk)
                done += len(chunk)
                if on_progress is not None:
                    on_progress(done, total)
                chunk = _read(response, done, total)
    if total is not None and done < total:
        raise _AttemptFailed(f"connection closed early ({done} of {total} bytes)")
    return resuming


def _read(response: http.client.HTTPResponse, done: int, total: int | None) -> bytes:
    """Return the next chunk of the body (empty at its end); a lost connection is a retryable failure."""
    try:
        # read1 returns what has arrived instead of waiting for a full chunk, so a timeout or a reset
        # loses no bytes that the .part could have kept.
        return response.read1(_CHUNK_SIZE)
    except (http.client.HTTPException, OSError) as error:
        reason = f"connection lost after {done} of {total or '?'} bytes ({_describe(error)})"
        raise _AttemptFailed(reason) from error


def _is_html_type(headers: Message) -> bool:
    return headers.get_content_type() == "text/html"


def _read_page(response: object, first: bytes = b"") -> bytes:
    """Return the start of an HTML answer (``first``, then up to ``_PAGE_LIMIT`` bytes in all)."""
    try:
        return first + response.read(max(_PAGE_LIMIT - len(first), 0))  # type: ignore[attr-defined]
    except (http.client.HTTPException, OSError):
        return first


class _TitleParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.title: str | None = None
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_title = tag == "title" and self.title is None

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title = " ".join(data.split())[:100]
            self._in_title = False


def _page_title(page: bytes) -> str | None:
    """Return the <title> of an HTML page, which usually says what it is ("Google Drive - Quota exceeded")."""
    parser = _TitleParser()
    parser.feed(page.decode("utf-8", errors="replace"))
    return parser.title or None


def _is_html(first_chunk: bytes, start: int) -> bool:
    """True when a body that starts at byte 0 opens like an HTML document."""
    return start == 0 and first_chunk[:256].lstrip().lower().startswith((b"<!doctype", b"<html"))


def _content_range(headers: Message) -> tuple[int | None, int | None]:
    """Return (first byte, full size) from a Content-Range such as ``bytes 0-99/200`` or ``bytes */200``."""
    match = re.fullmatch(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)", headers.get("Content-Range", "").strip())
    if match is None:
        return None, None
    first, size = match.groups()
    return (int(first) if first else None, int(size) if size.isdigit() else None)


def _check_md5(part: Path, expected: str, resumed: bool) -> None:
    """Delete ``part`` and fail the attempt if its md5 is not ``expected``."""
    actual = md5_file(part)
    if actual != expected:
        part.unlink()
        # Bad bytes in a resumed file may come from an older partial download rather than from this
        # mirror, so that is worth one more attempt from zero; a fresh mismatch is the mirror's copy.
        raise _AttemptFailed(f"checksum mismatch (expected {expected}, got {actual})", retry=resumed)


def _connection_failure(error: Exception) -> _AttemptFailed:
    """Classify an error raised before any answer arrived: unreachable, permanent or transient."""
    reason: object = error.reason if isinstance(error, urllib.error.URLError) else error
    # Unreachable hosts fail the same way a second later: better to move on to the next mirror at once.
    if isinstance(reason, socket.gaierror):
        return _AttemptFailed("could not resolve the host name", retry=False, unreachable=True)
    if isinstance(reason, ConnectionRefusedError):
        return _AttemptFailed("connection refused", retry=False, unreachable=True)
    if isinstance(reason, OSError) and reason.errno in _UNREACHABLE_ERRNOS:
        return _AttemptFailed("network unreachable", retry=False, unreachable=True)
    if isinstance(reason, FileNotFoundError):
        return _AttemptFailed("file not found", retry=False)
    if isinstance(reason, ssl.SSLCertVerificationError):
        return _AttemptFailed(f"TLS certificate rejected ({reason.verify_message})", retry=False)
    if isinstance(reason, (str, ValueError)):  # urllib's "unknown url type", a malformed URL
        return _AttemptFailed(f"bad URL ({reason})", retry=False)
    return _AttemptFailed(_describe(reason))


def _describe(error: object) -> str:
    """Return a short human phrase for a low-level error ("Connection reset by peer", "timed out")."""
    return str(getattr(error, "strerror", None) or error) or type(error).__name__


def _all_mirrors_failed(
    name: str, failures: list[tuple[str, _AttemptFailed]], partial_kept: bool
) -> LatentctlError:
    """Return the one-line error for a file that no mirror delivered, with a per-mirror summary."""
    summary = "; ".join(f"{mirror}: {failure.reason}" for mirror, failure in failures)
    if all(failure.unreachable for _, failure in failures):
        return LatentctlError(
            f"could not reach any mirror for {name} (no network?): {summary}",
            hint="check your connection, or pass --mirror URL to a reachable copy",
        )
    kept = " (the partial download is kept and resumes)" if partial_kept else ""
    return LatentctlError(
        f"could not download {name}: {summary}", hint=f"try again later{kept}, or pass --mirror URL to another copy"
    )
