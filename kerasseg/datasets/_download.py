"""Resumable download, checksum verification and safe extraction of dataset archives.

Bytes go to `<archive>.part` first; a later call continues from its size (an HTTP Range request,
or a seek for file:// URLs) and the file is renamed only once complete and verified. A server that
ignores the Range header answers with the whole file, which is then written from the start.
"""

import hashlib
import io
import os
import shutil
import sys
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile

_CHUNK = 1 << 20


def _log(verbose, msg):
    if verbose:
        print(msg, file=sys.stderr, flush=True)


def file_digest(path, algorithm):
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _open(url, offset, timeout):
    """(stream, resumed, total size or None) for reading `url` from byte `offset`."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme in ("", "file"):
        path = urllib.request.url2pathname(parsed.path) if parsed.scheme else url
        if not os.path.isfile(path):
            raise FileNotFoundError(f"archive not found: {url!r}")
        f = open(path, "rb")
        size = os.path.getsize(path)
        if 0 < offset <= size:
            f.seek(offset)
            return f, True, size
        return f, False, size
    request = urllib.request.Request(url, headers={"User-Agent": "kerasseg"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:  # nothing left past offset: the .part is complete
            return io.BytesIO(b""), True, offset
        raise
    resumed = offset > 0 and getattr(response, "status", None) == 206
    length = response.headers.get("Content-Length")
    total = (int(length) + (offset if resumed else 0)) if length else None
    return response, resumed, total


def download_file(url, dest, md5=None, sha256=None, verbose=True, timeout=60):
    """Download `url` to `dest` (resuming `dest.part`), verify it and return `dest`.

    With no known digest the sha256 of the file is computed and reported instead.
    """
    part = dest + ".part"
    offset = os.path.getsize(part) if os.path.exists(part) else 0
    stream, resumed, total = _open(url, offset, timeout)
    if offset and not resumed:
        _log(
            verbose,
            f"server ignored the resume request; downloading "
            f"{os.path.basename(dest)} from the start",
        )
        offset = 0
    elif resumed:
        _log(verbose, f"resuming {os.path.basename(dest)} at byte {offset}")
    with stream, open(part, "ab" if resumed else "wb") as out:
        done, last = offset, -1
        for block in iter(lambda: stream.read(_CHUNK), b""):
            out.write(block)
            done += len(block)
            if verbose and total:
                pct = int(100 * done / total)
                if pct // 10 != last:
                    last = pct // 10
                    _log(verbose, f"  {os.path.basename(dest)}: {pct}% of {total / 1e6:.1f} MB")
    _verify(part, dest, md5, sha256, verbose)
    os.replace(part, dest)
    return dest


def _verify(path, dest, md5, sha256, verbose):
    for algorithm, expected in (("md5", md5), ("sha256", sha256)):
        if expected:
            got = file_digest(path, algorithm)
            if got.lower() != expected.lower():
                bad = dest + ".corrupt"
                os.replace(path, bad)
                raise ValueError(
                    f"{algorithm} mismatch for {os.path.basename(dest)}: "
                    f"expected {expected}, got {got}; "
                    f"the file was kept as {bad!r} — delete it and download again"
                )
    if not md5 and not sha256:
        _log(
            verbose,
            f"no published checksum known for {os.path.basename(dest)}; "
            f"sha256 = {file_digest(path, 'sha256')} (keep it to check later copies)",
        )


def _safe_target(root, name):
    target = os.path.realpath(os.path.join(root, name))
    if not (target == os.path.realpath(root) or target.startswith(os.path.realpath(root) + os.sep)):
        raise ValueError(
            f"archive member {name!r} would be written outside {root!r}; refusing to extract"
        )
    return target


def extract_archive(archive, dest):
    """Extract a .tar(.gz/.bz2/.xz) or .zip archive into `dest`, refusing members that escape it."""
    os.makedirs(dest, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                _safe_target(dest, name)
            z.extractall(dest)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            members = t.getmembers()
            for m in members:
                _safe_target(dest, m.name)
                if m.issym() or m.islnk():
                    _safe_target(dest, os.path.join(os.path.dirname(m.name), m.linkname))
            try:
                t.extractall(dest, members=members, filter="data")
            except TypeError:  # Python without extraction filters
                t.extractall(dest, members=members)
    else:
        raise ValueError(f"cannot extract {archive!r}: not a tar or zip archive")


def fetch_all(resources, data_dir, extract=True, force=False, verbose=True):
    """Download and extract every resource into data_dir; returns the archive paths."""
    os.makedirs(data_dir, exist_ok=True)
    paths = []
    for r in resources:
        dest = os.path.join(data_dir, r.filename)
        marker = os.path.join(data_dir, f".{r.filename}.extracted")
        if force:
            for p in (dest, marker):
                if os.path.exists(p):
                    os.remove(p)
        if not os.path.exists(dest):
            _log(verbose, f"downloading {r.url}")
            download_file(r.url, dest, r.md5, r.sha256, verbose)
        else:
            _log(verbose, f"{dest} already present")
        if extract and r.extract and not os.path.exists(marker):
            target = os.path.join(data_dir, r.subdir) if r.subdir else data_dir
            _log(verbose, f"extracting {r.filename} into {target}")
            extract_archive(dest, target)
            if r.post_extract is not None:
                r.post_extract(data_dir)
            open(marker, "w").close()
        paths.append(dest)
    return paths


def move_up(src_rel, dst_rel):
    """A post-extract hook: move data_dir/src_rel to data_dir/dst_rel (merging into an existing
    one)."""

    def hook(data_dir):
        src, dst = os.path.join(data_dir, src_rel), os.path.join(data_dir, dst_rel)
        if not os.path.exists(src):
            return
        if not os.path.exists(dst):
            shutil.move(src, dst)
            return
        for name in os.listdir(src):
            if not os.path.exists(os.path.join(dst, name)):
                shutil.move(os.path.join(src, name), os.path.join(dst, name))

    return hook
