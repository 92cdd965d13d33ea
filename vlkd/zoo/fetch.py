"""Download one file over HTTP(S): mirrors, retries with backoff, resume, size and sha256.

Only the standard library's urllib is used; proxies come from the usual ``HTTPS_PROXY``
environment variables. ``timeout`` is the longest wait, in seconds, for a connection or for
the next bytes of a response.
"""
import hashlib
import http.client
import logging
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional, Sequence

from tqdm import tqdm

from .errors import ChecksumError, DownloadError

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 16
USER_AGENT = 'vlkd-zoo'
# HTTP statuses worth another try on the same URL; any other error status moves on.
TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}


class _Transient(Exception):
    """A failure worth another try on the same URL (timeout, dropped connection, 5xx)."""


class _Permanent(Exception):
    """A failure that another try on the same URL would repeat (404, wrong file)."""

    def __init__(self, message, checksum=False):
        super().__init__(message)
        self.checksum = checksum


def sha256_file(path, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 digest of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, 'rb') as file:
        while chunk := file.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def download_file(urls: Sequence[str], part: Path, *, sha256: Optional[str] = None,
                  size: Optional[int] = None, timeout: float = 30.0, retries: int = 3,
                  backoff: float = 1.0, progress: bool = False, label: str = '',
                  hint: str = '') -> str:
    """Download into ``part`` from the first URL that delivers the right file; return its
    sha256.

    Each URL gets ``retries`` attempts. After a transient failure (timeout, dropped
    connection, HTTP 5xx/429) the next attempt waits ``backoff * 2**k`` seconds and resumes
    from the bytes already in ``part`` with an HTTP Range request. A permanent failure
    (HTTP 4xx, wrong size, sha256 mismatch) moves to the next URL at once. A file of the
    wrong size or sha256 is deleted. ``part`` may hold bytes of an earlier, interrupted
    download: they are resumed, and dropped if the result does not match ``sha256``.

    Raises :class:`ChecksumError` if every URL delivered a file with the wrong sha256,
    else :class:`DownloadError`; both list each URL with its error, then ``hint``.
    """
    part = Path(part)
    failures = []
    for index, url in enumerate(urls):
        try:
            return _download_from(url, part, sha256=sha256, size=size, timeout=timeout,
                                  retries=retries, backoff=backoff, progress=progress,
                                  label=label)
        except (_Transient, _Permanent) as error:
            failures.append((url, str(error), getattr(error, 'checksum', False)))
            if index + 1 < len(urls):
                logger.warning('%s: %s failed (%s); trying the next mirror.', label, url, error)
    listing = '\n'.join(f'  {url}: {reason}' for url, reason, _ in failures)
    pairs = [(url, reason) for url, reason, _ in failures]
    if all(checksum for _, _, checksum in failures):
        raise ChecksumError(
            f'{label}: every mirror delivered a file with the wrong checksum; it was rejected '
            f'and deleted, nothing was added to the cache.\n{listing}\n{hint}'.rstrip(), pairs)
    raise DownloadError(f'{label}: could not download from any of its {len(urls)} URL(s):\n'
                        f'{listing}\n{hint}'.rstrip(), pairs)


def _download_from(url, part, *, sha256, size, timeout, retries, backoff, progress, label):
    """All attempts on one URL; returns the sha256 of the complete, accepted ``part``."""
    stale = part.exists()  # bytes not fetched from this URL in this call
    last_error = None
    for attempt in range(max(1, retries)):
        if attempt:
            delay = backoff * 2 ** (attempt - 1)
            logger.warning('%s: %s: %s; retrying in %.1f s (attempt %d of %d).', label, url,
                           last_error, delay, attempt + 1, retries)
            time.sleep(delay)
        try:
            _get(url, part, size=size, timeout=timeout, progress=progress, label=label)
        except _Transient as error:
            last_error = error
            continue
        digest = sha256_file(part)
        if sha256 is None or digest == sha256:
            return digest
        got_bytes = part.stat().st_size
        part.unlink()
        last_error = _Permanent(f'checksum mismatch: expected sha256 {sha256}, got {digest} '
                                f'({got_bytes} bytes)', checksum=True)
        if not stale:
            raise last_error
        stale = False  # the resumed bytes may be what was wrong: one more try from zero
    raise last_error


def _get(url, part, *, size, timeout, progress, label):
    """One HTTP GET that appends to ``part`` (Range request) or rewrites it."""
    start = part.stat().st_size if part.exists() else 0
    if size is not None and start >= size:
        if start == size:
            return  # complete from an earlier attempt; the caller checks its sha256
        part.unlink()
        start = 0
    headers = {'User-Agent': USER_AGENT}
    if start:
        headers['Range'] = f'bytes={start}-'
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                          timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416:  # the partial file does not fit what the server has
            part.unlink(missing_ok=True)
            raise _Transient('HTTP 416: the server cannot resume the partial file; '
                             'starting over') from None
        message = f'HTTP {error.code} {error.reason}'
        raise (_Transient if error.code in TRANSIENT_STATUS else _Permanent)(message) from None
    except (OSError, http.client.HTTPException) as error:
        raise _Transient(_describe(error, timeout)) from None
    with response:
        if start and response.status == 206:
            first, total = _parse_content_range(response.headers.get('Content-Range'))
            if first != start:
                raise _Transient(f'asked for bytes from {start}, the server sent them from '
                                 f'{first}')
            mode = 'ab'
        else:  # a full answer, also when the server ignores Range
            start, mode = 0, 'wb'
            length = response.headers.get('Content-Length', '')
            total = int(length) if length.isdigit() else None
        if size is not None and total is not None and total != size:
            raise _Permanent(f'the server offers {total} bytes, the manifest says {size}')
        received = start
        with open(part, mode) as out, tqdm(total=total or size, initial=start, unit='B',
                                           unit_scale=True, unit_divisor=1024, desc=label,
                                           disable=not progress) as bar:
            try:
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
                    if size is not None and received > size:
                        break
            except (OSError, http.client.HTTPException) as error:
                raise _Transient(f'{_describe(error, timeout)} after {received} bytes') from None
    if size is not None and received > size:
        part.unlink()
        raise _Permanent(f'the server sent more than the {size} bytes of the manifest')
    if total is not None and received < total:
        raise _Transient(f'connection closed after {received} of {total} bytes')


def _parse_content_range(value):
    """``'bytes 100-199/200'`` -> ``(100, 200)``; the total is None when given as ``*``."""
    try:
        unit, spec = value.split(' ', 1)
        first_last, total = spec.split('/')
        first = int(first_last.split('-')[0])
        assert unit == 'bytes'
    except (AttributeError, ValueError, AssertionError):
        raise _Transient(f'unreadable Content-Range header {value!r}') from None
    return first, (int(total) if total.isdigit() else None)


def _describe(error, timeout) -> str:
    reason = getattr(error, 'reason', error)
    if isinstance(reason, (TimeoutError, socket.timeout)) or 'timed out' in str(reason):
        return f'timed out (no data for {timeout:g} s)'
    return f'{type(reason).__name__}: {reason}' if isinstance(reason, Exception) else str(reason)
