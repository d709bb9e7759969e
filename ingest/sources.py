"""Sources: every entry below a source folder, each with a fate decided before anything is
read (hidden, symlinks, fifos and sockets, unreadable folders, names that are not UTF-8 are
skipped with the reason), and reading that checks the size before a byte is read and never
opens anything but a regular file."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ingest.limits import Limits, check_size

CHUNK = 8 * 1024 * 1024  # bytes per read (and per quarantine part) when streaming


def printable(text: str) -> str:
    """`text` with every non-printable character escaped, so that a file name printed in a
    summary or a log cannot start a new line, move the cursor or reorder what follows.
    Printable text (any script) is unchanged; backslashes are not doubled.

    printable("a\\nb.txt") -> "a\\\\nb.txt"; printable("café.txt") -> "café.txt"
    """
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        elif ch in "\n\r\t":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
        elif 0xDC80 <= ord(ch) <= 0xDCFF:  # a byte of a non-UTF-8 name (surrogateescape)
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif ord(ch) <= 0xFF:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return "".join(out)


@dataclass(frozen=True, slots=True)  # slots: one is held per input until ingest ends
class SourceRef:
    """An input found at discovery. `signature` is what discovery saw of it without reading
    it: a local file's `size:mtime_ns`, an S3 object's `size:etag` (from the listing). A source
    whose signature is the one recorded when it was last cleaned is not read again (see
    `signature_of`); "" when unknown (always read)."""

    key: str  # stable name: the path relative to the sources root, or the s3 key
    location: str  # where to read it: a local path or s3://bucket/key
    skip: str | None = None  # why it is not read (decided at discovery); None: read it
    link: bool = False  # a symlink (to a regular file inside the root) that is followed
    signature: str = ""


def signature_of(st: os.stat_result) -> str:
    """A local file's signature: size and mtime in nanoseconds.

    Why trusting it is sound: every write through the file system moves mtime, so a file whose
    size and mtime_ns are unchanged has not been written since. When it is not: a tool that
    sets mtime back on purpose (`touch -d`, `cp -p`/`rsync -t`/`tar x` putting a *different*
    file of the same size in place with the old time), a clock set back between two writes, or
    a file system whose timestamps are coarse (FAT's 2 s, some network mounts) written twice
    within one tick at the same size. For those, `corpusflow run --rehash`
    (CORPUSFLOW_REHASH=1) reads and hashes every source. An S3 object's ETag is the store's
    own content digest, changed by every new upload: trusted as is.

    signature_of(os.stat("a.txt")) -> "1234:1733061234567890123"
    """
    return f"{st.st_size}:{st.st_mtime_ns}"


def object_signature(size: int, etag: str) -> str:
    return f"{size}:etag:{etag}"


def _kind_of(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a fifo"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISDIR, "a folder"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _symlink_fate(path: str, root_real: str) -> str | None:
    """None when the link leads to a regular file inside the root (it is read); else why not."""
    try:
        target = printable(os.readlink(path))
    except OSError as exc:
        return f"unreadable symlink: {exc.strerror}"
    try:
        st = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"symlink loop (-> {target})"
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return f"dangling symlink (-> {target}, which does not exist)"
        return f"unreadable symlink (-> {target}): {exc.strerror}"
    if not _inside(os.path.realpath(path), root_real):
        return f"symlink to outside the source root (-> {target})"
    if stat.S_ISDIR(st.st_mode):
        return f"symlink to a folder (-> {target}): not followed, its files are read where they are"
    if not stat.S_ISREG(st.st_mode):
        return f"symlink to {_kind_of(st.st_mode)} (-> {target})"
    return None


def _key(rel: str) -> tuple[str, str | None]:
    """The key for a relative path and, if its name is not UTF-8, the reason to skip it (the
    key is then the escaped name: the ledger and the store need valid text)."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return printable(rel), "file name is not valid UTF-8"
    return rel, None


def _stat_signature(path: str) -> str:
    try:
        return signature_of(os.stat(path))
    except OSError:
        return ""


def _entries(folder: str, root_str: str, out: list[SourceRef]) -> Iterator[os.DirEntry[str]]:
    """The entries of `folder` as scandir gives them; a folder that cannot be listed (or stops
    being readable part way) is added to `out` as one skipped entry with the reason."""
    try:
        with os.scandir(folder) as it:
            yield from it
    except OSError as exc:
        key, _bad = _key(os.path.relpath(folder, root_str))
        out.append(SourceRef(key, folder, f"unreadable folder: {exc.strerror}"))


def walk(root: Path) -> list[SourceRef]:
    """Every entry below `root`, sorted by key: regular files (and symlinks to regular files
    inside the root) to read, everything else with the reason it is skipped. Hidden entries
    (a name starting with '.') are skipped as one entry each; a hidden folder is not entered."""
    root_str = os.fspath(root)
    root_real = os.path.realpath(root_str)
    out: list[SourceRef] = []
    stack = [root_str]
    while stack:
        folder = stack.pop()
        # one entry at a time: a folder of a million files holds a DirEntry (its name, path
        # and stat) per file only while that file is looked at, not all of them at once
        for entry in _entries(folder, root_str, out):
            key, bad_name = _key(os.path.relpath(entry.path, root_str).replace(os.sep, "/"))
            if bad_name is not None:
                out.append(SourceRef(key, entry.path, bad_name))
            elif entry.name.startswith("."):
                what = "folder" if entry.is_dir(follow_symlinks=False) else "file"
                out.append(SourceRef(key, entry.path, f"hidden {what}: not read"))
            elif entry.is_symlink():
                why = _symlink_fate(entry.path, root_real)
                sig = _stat_signature(entry.path) if why is None else ""
                out.append(SourceRef(key, entry.path, why, link=why is None, signature=sig))
            elif entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
            elif entry.is_file(follow_symlinks=False):
                try:  # scandir has it already (no extra system call on Linux for the type)
                    sig = signature_of(entry.stat(follow_symlinks=False))
                except OSError:
                    sig = ""  # vanished: reading it says so
                out.append(SourceRef(key, entry.path, signature=sig))
            else:
                try:
                    kind = _kind_of(entry.stat(follow_symlinks=False).st_mode)
                except OSError as exc:
                    kind = f"unreadable ({exc.strerror})"
                out.append(SourceRef(key, entry.path, f"not a regular file: {kind}"))
    return sorted(out, key=lambda r: r.key)


def open_regular(path: str | Path, source: str, *, follow: bool = True) -> tuple[int, int]:
    """(fd, size) of a regular file, opened without blocking (a fifo put in place of a file
    after discovery would otherwise block the run forever) and, unless `follow`, refusing a
    symlink put in place of the file after discovery. Raises OSError."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags if follow else flags | getattr(os, "O_NOFOLLOW", 0))
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, f"not a regular file: {_kind_of(st.st_mode)}", str(path))
    return fd, st.st_size


def read_local(path: str | Path, limits: Limits, source: str, *, follow: bool = True) -> bytes:
    """The bytes of a regular file, its size checked (on the open file) before reading.
    Raises IngestError(too_large) naming the limit, or OSError if it cannot be read."""
    fd, size = open_regular(path, source, follow=follow)
    with os.fdopen(fd, "rb") as f:
        check_size(size, limits, source)
        data = f.read(limits.max_source_bytes + 1)  # the file may grow after the check
    check_size(len(data), limits, source)
    return data


def iter_chunks(path: str | Path, source: str) -> Iterator[bytes]:
    """The file's bytes in CHUNK-sized pieces (for a streamed copy into quarantine)."""
    fd, _size = open_regular(path, source)
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def sha256_file(path: str | Path, source: str) -> str:
    digest = hashlib.sha256()
    for chunk in iter_chunks(path, source):
        digest.update(chunk)
    return digest.hexdigest()


def hidden_key(key: str) -> str | None:
    """Why an object key is skipped like a hidden file ('a/.git/x' -> 'hidden ...'), or None."""
    if any(part.startswith(".") for part in key.split("/")):
        return "hidden file: not read"
    return None
