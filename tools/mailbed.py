"""Real mail servers on loopback for tests and demos: Dovecot IMAP and an SMTP sink.

Plain Python (stdlib, plus aiosmtpd run as a subprocess); nothing here imports Odoo.

* :class:`Dovecot` runs a private Dovecot instance from one generated config file in a
  scratch directory (nothing in ``/etc/dovecot`` is read or changed).  Plain ``LOGIN`` on
  the non-TLS port works, as Odoo's fetchmail does with ``is_ssl`` off; an IMAPS port
  with a self-signed certificate is offered too.  Accounts (one passwd-file each) can be
  added while the server runs.  Helper methods (``append``, ``uids``, ``flags``, ...)
  inspect mailboxes through IMAP, read-only, so they neither set ``\\Seen`` nor claim
  ``\\Recent``.  Given a :class:`TokenIntrospection` endpoint, it also accepts OAuth 2.0
  logins (SASL ``XOAUTH2`` / ``OAUTHBEARER``, as Microsoft 365 and Gmail mailboxes use
  them) with the access tokens that endpoint issued; password logins keep working.
* :class:`TokenIntrospection` is that endpoint: an RFC 7662 token introspection service
  on loopback (stdlib ``http.server`` in a thread), which issues and revokes tokens.
* :class:`SmtpSink` runs ``python -m aiosmtpd`` with the stock ``Mailbox`` handler: every
  message received is stored in a Maildir *before* the server answers ``250``, so a test
  can read it right after ``sendmail()`` returns.

Folder names given to / returned by the helpers are ordinary ``str`` (IMAP modified
UTF-7 is encoded and decoded here).  The hierarchy separator is Dovecot's Maildir
default, ``"."``.

Command line (used by the "run the demo" command)::

    python tools/mailbed.py serve --dir DIR --imap-port 10143 --smtp-port 10025 \\
        --user support@example.com --password support

Facts and pitfalls behind the choices below: ``/work/shared/MAIL-TESTBED.md``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import email
import email.policy
import email.utils
import grp
import imaplib
import itertools
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

__all__ = [
    "Dovecot",
    "ImapAccount",
    "MailbedError",
    "SmtpSink",
    "TokenIntrospection",
    "free_port",
    "imap_utf7_decode",
    "imap_utf7_encode",
]

HOST = "127.0.0.1"
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
DOVEADM = shutil.which("doveadm") or "/usr/bin/doveadm"
OPENSSL = shutil.which("openssl")

#: Seconds to wait for a server to accept connections / to exit after SIGKILL.
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
#: Seconds Dovecot gets to shut down after SIGTERM before it is killed.  Its master
#: waits for its children, then sleeps 1 s unconditionally; when a child is slow to
#: report it stopped listening, it waits up to 5 s more, which a test bed need not.
#: All IMAP commands have completed by then, so nothing is lost by killing it.
DOVECOT_STOP_GRACE = 1.5
#: Poll interval while waiting for something to happen.
POLL = 0.01


class MailbedError(RuntimeError):
    """A test server failed to start/stop, or an IMAP command was refused."""


# --------------------------------------------------------------------------- helpers


def free_port(host: str = HOST) -> int:
    """Return a TCP port on ``host`` that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _port_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(port: int, host: str = HOST, timeout: float = 30.0) -> None:
    """Wait until something accepts connections on ``host:port`` (a server started)."""
    if not _wait(lambda: _port_accepts(host, port), timeout):
        raise MailbedError(f"nothing listens on {host}:{port} after {timeout:g} s")


def _check_port_free(host: str, port: int) -> None:
    """Fail early (and clearly) when another process already listens on ``port``."""
    if _port_accepts(host, port):
        raise MailbedError(f"{host}:{port} is already in use by another process")


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """Return (state, process group) of ``pid`` from /proc, or None if it is gone.

    ``kill -0`` is no good for liveness here: in a container PID 1 may reap orphans
    late, and a zombie still "exists" for ``kill``.  A zombie counts as dead.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    state, pgrp = fields[0], int(fields[2])
    if state in ("Z", "X"):
        return None
    return state, pgrp


def _pid_alive(pid: int) -> bool:
    return _proc_stat(pid) is not None


def _group_alive(pgid: int) -> bool:
    """True while a live (non-zombie) process of process group ``pgid`` remains."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = _proc_stat(int(entry.name))
            if stat is not None and stat[1] == pgid:
                return True
    return False


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def _start_process(argv: list[str], log: Path) -> subprocess.Popen:
    """Start a server process detached from our stdio and terminal signals.

    Daemon children must not inherit the caller's stdout/stderr (a ``$(...)`` capture
    or pipe would never end), and Ctrl-C in the terminal must not reach them directly:
    they are stopped by :func:`_stop_process`, in their own process group.
    """
    with open(log, "ab") as log_file:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop_process(proc: subprocess.Popen, grace: float) -> None:
    """Stop ``proc`` and everything in its process group, and wait until all are gone.

    SIGTERM first; if the leader still runs after ``grace`` seconds, or children
    outlive it, the group gets SIGKILL.  Zombies (reaped late by PID 1 in containers)
    count as gone.
    """
    pgid = proc.pid  # start_new_session: the process leads its own group
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)  # no-op if it already exited
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        pass
    else:
        if _wait(lambda: not _group_alive(pgid), 0.2):
            return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    proc.wait(STOP_TIMEOUT)
    if not _wait(lambda: not _group_alive(pgid), STOP_TIMEOUT):
        raise MailbedError(f"processes of group {pgid} survived SIGKILL")


# ------------------------------------------------------------ IMAP modified UTF-7


def imap_utf7_encode(name: str) -> str:
    """Encode a folder name to IMAP modified UTF-7 (RFC 3501, 5.1.3)."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            b64 = base64.b64encode(raw).rstrip(b"=").replace(b"/", b",")
            out.append(f"&{b64.decode('ascii')}-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


def imap_utf7_decode(name: str) -> str:
    """Decode an IMAP modified UTF-7 folder name."""

    def decode(match: re.Match) -> str:
        b64 = match.group(1)
        if not b64:
            return "&"
        b64 = b64.replace(",", "/") + "=" * (-len(b64) % 4)
        return base64.b64decode(b64).decode("utf-16-be")

    return re.sub(r"&([^-]*)-", decode, name)


def _quote(folder: str) -> str:
    """A folder name as an IMAP quoted string (imaplib on Python 3 does not quote)."""
    encoded = imap_utf7_encode(folder)
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unquote(token: str) -> str:
    if token.startswith('"') and token.endswith('"'):
        return re.sub(r"\\(.)", r"\1", token[1:-1])
    return token


def _ok(response: tuple[str, list], what: str) -> list:
    typ, data = response
    if typ != "OK":
        detail = b" ".join(d for d in data if isinstance(d, bytes)).decode(errors="replace")
        raise MailbedError(f"IMAP {what} failed: {typ} {detail}")
    return data


_LIST_RE = re.compile(r'^\((?P<attrs>[^)]*)\) (?P<delim>NIL|"(?:[^"\\]|\\.)*") (?P<name>.*)$')
_APPENDUID_RE = re.compile(rb"\[APPENDUID (\d+) (\d+)\]")


# ------------------------------------------------------------------------ Dovecot

_CONFIG = """\
# Generated by tools/mailbed.py; rewritten on every start.
protocols = imap
listen = {host}
base_dir = {run_dir}
state_dir = {state_dir}
instance_name = mailbed-dovecot-{port}
log_path = {log}
{ssl_block}
# plain LOGIN without TLS on the imap port (Odoo fetchmail with is_ssl off)
disable_plaintext_auth = no
auth_mechanisms = {auth_mechanisms}
auth_failure_delay = 0
auth_username_format = %Lu
# the reason of every failed login goes to the log
auth_verbose = yes
mail_location = maildir:{mail_dir}/%u
mail_fsync = never
mail_uid = {mail_user}
mail_gid = {mail_group}
first_valid_uid = 1
{rootless_block}
namespace inbox {{
  inbox = yes
  mailbox Drafts {{
    special_use = \\Drafts
  }}
  mailbox Junk {{
    special_use = \\Junk
  }}
  mailbox Trash {{
    special_use = \\Trash
  }}
  mailbox Sent {{
    special_use = \\Sent
  }}
}}
protocol imap {{
  mail_max_userip_connections = 1000
{imap_capability}}}
protocol lda {{
  postmaster_address = postmaster@localhost
}}
service imap-login {{
{chroot}  inet_listener imap {{
    address = {host}
    port = {port}
  }}
  inet_listener imaps {{
    address = {host}
    port = {imaps_port}
    ssl = yes
  }}
}}
# no per-IP penalty after failed logins (4 wrong passwords would slow every login)
service anvil {{
{chroot}  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
{oauth2_passdb}passdb {{
  driver = passwd-file
  args = scheme=SHA512-CRYPT {users}/%u
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={mail_group} home={mail_dir}/%u
}}
"""

# Only for the OAuth mechanisms; LOGIN and PLAIN still go to the passwd-files.
_OAUTH2_PASSDB = """\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {config}
}}
"""

_OAUTH2_CONFIG = """\
introspection_mode = post
introspection_url = {url}
username_attribute = username
active_attribute = active
active_value = true
"""


class Dovecot:
    """A private Dovecot IMAP server on 127.0.0.1, living in ``directory``.

    Layout of ``directory``: ``dovecot.conf``, ``dovecot.log``, ``users/<login>`` (one
    passwd-file per account), ``mail/<login>/`` (Maildir), ``certs/``, ``state/`` and
    ``run/`` (sockets).  Logins are case-insensitive (Dovecot lower-cases them).

    As root, mail is handled by the packaged ``dovecot`` user (Dovecot refuses uid 0), so
    ``directory`` and all its parents must be traversable (``o+x``) by that user; the
    directory itself is given ``o+x`` here.  As any other user, everything runs as that
    user.

    Usable as a context manager (``with Dovecot(path) as server: ...``).
    """

    host = HOST

    def __init__(
        self,
        directory: str | os.PathLike,
        imap_port: int | None = None,
        imaps_port: int | None = None,
        *,
        ssl: bool = True,
        introspection: TokenIntrospection | None = None,
        auth_mechanisms: str = "plain login",
        imap_capability: str | None = None,
    ):
        self.directory = Path(directory).resolve()
        #: SASL mechanisms offered besides the LOGIN command (Dovecot's auth_mechanisms)
        self.auth_mechanisms = auth_mechanisms
        #: the CAPABILITY announced after login instead of Dovecot's own (None: its own)
        self.imap_capability = imap_capability
        self.port = imap_port or free_port()
        #: OAuth 2.0 logins are checked against this endpoint (None: passwords only).
        self.introspection = introspection
        #: IMAPS port (self-signed certificate), or None when ``ssl=False`` or no openssl.
        self.imaps_port = (imaps_port or free_port()) if ssl and OPENSSL else None
        self.config = self.directory / "dovecot.conf"
        self.log = self.directory / "dovecot.log"
        self.users_dir = self.directory / "users"
        self.mail_dir = self.directory / "mail"
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self.users_dir.mkdir(parents=True, exist_ok=True)

        if os.geteuid() == 0:
            self._mail_user, self._mail_group = "dovecot", "dovecot"
        else:
            self._mail_user = pwd.getpwuid(os.getuid()).pw_name
            self._mail_group = grp.getgrgid(os.getgid()).gr_name
        # Unix socket paths are limited to 107 bytes; keep base_dir short.
        self.run_dir = self.directory / "run"
        if len(str(self.run_dir)) > 70:
            self.run_dir = Path(tempfile.mkdtemp(prefix="mailbed-run-"))

    # ----------------------------------------------------------------- lifecycle

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> Dovecot:
        """Start the server and wait until its ports accept connections."""
        if self.running:
            return self
        self._check_stale_instance()
        for port in (self.port, self.imaps_port):
            if port:
                _check_port_free(self.host, port)
        self._prepare_directory()
        self.config.write_text(self._render_config())
        self._proc = _start_process([DOVECOT, "-F", "-c", str(self.config)], self.log)

        def ready() -> bool:
            if self._proc.poll() is not None:
                raise MailbedError(
                    f"dovecot exited with {self._proc.returncode}; log:\n{_tail(self.log)}"
                )
            ports = (self.port, self.imaps_port)
            return all(_port_accepts(self.host, p) for p in ports if p)

        if not _wait(ready, START_TIMEOUT):
            self.stop()
            raise MailbedError(f"dovecot did not open its ports; log:\n{_tail(self.log)}")
        return self

    def stop(self) -> None:
        """Stop the server; returns once the master and all its children are gone."""
        proc, self._proc = self._proc, None
        if proc is not None:
            _stop_process(proc, DOVECOT_STOP_GRACE)

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Dovecot {self.host}:{self.port} {state} in {self.directory}>"

    def _check_stale_instance(self) -> None:
        """Refuse to start over a Dovecot still running from this directory."""
        try:
            pid = int((self.run_dir / "master.pid").read_text().split()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            return  # no pid file, or its process is gone
        if _pid_alive(pid) and b"dovecot" in cmdline:
            raise MailbedError(
                f"a Dovecot (pid {pid}) still runs from {self.directory}; "
                f"stop it with: {DOVEADM} -c {self.config} stop"
            )

    def _prepare_directory(self) -> None:
        for sub in ("state", "certs", "mail"):
            (self.directory / sub).mkdir(exist_ok=True)
        # A stale socket left in base_dir makes the first failed login hang for 5 s.
        shutil.rmtree(self.run_dir, ignore_errors=True)
        self.run_dir.mkdir(mode=0o755)
        if self.imaps_port:
            self._make_certificate()
        if os.geteuid() == 0:
            self.directory.chmod(self.directory.stat().st_mode | 0o001)
            # the auth process (user dovecot) reads the passwd-files
            shutil.chown(self.users_dir, group=self._mail_group)
            self.users_dir.chmod(0o750)
            self._check_traversable()
            # Dovecot (as the mail user) must own the Maildirs, whoever created them.
            shutil.chown(self.mail_dir, self._mail_user, self._mail_group)
            for path in self.mail_dir.rglob("*"):
                shutil.chown(path, self._mail_user, self._mail_group)

    def _check_traversable(self) -> None:
        gid = grp.getgrnam(self._mail_group).gr_gid
        for path in (self.directory, *self.directory.parents):
            st = path.stat()
            if not (st.st_mode & 0o001 or (st.st_gid == gid and st.st_mode & 0o010)):
                raise MailbedError(
                    f"{path} is not traversable by the {self._mail_user!r} user "
                    "(Dovecot runs mail and auth as that user): use another directory "
                    "or chmod o+x it"
                )

    def _make_certificate(self) -> None:
        cert, key = self.directory / "certs/cert.pem", self.directory / "certs/key.pem"
        if cert.exists() and key.exists():
            return
        # An EC key is generated in milliseconds (RSA 2048 takes up to half a second).
        subprocess.run(
            [OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-days", "3650",
             "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
             "-keyout", str(key), "-out", str(cert)],
            check=True, stdin=subprocess.DEVNULL, capture_output=True,
        )  # fmt: skip

    def _render_config(self) -> str:
        if self.imaps_port:
            ssl_block = (
                "ssl = yes\n"
                f"ssl_cert = <{self.directory}/certs/cert.pem\n"
                f"ssl_key = <{self.directory}/certs/key.pem\n"
                "ssl_min_protocol = TLSv1.2"
            )
        else:
            ssl_block = "ssl = no"
        rootless_block = ""
        if os.geteuid() != 0:
            rootless_block = (
                f"default_internal_user = {self._mail_user}\n"
                f"default_internal_group = {self._mail_group}\n"
                f"default_login_user = {self._mail_user}"
            )
        auth_mechanisms, oauth2_passdb = self.auth_mechanisms, ""
        if self.introspection:
            oauth2_conf = self.directory / "oauth2.conf.ext"
            oauth2_conf.write_text(_OAUTH2_CONFIG.format(url=self.introspection.url))
            auth_mechanisms += " xoauth2 oauthbearer"
            oauth2_passdb = _OAUTH2_PASSDB.format(config=oauth2_conf)
        config = _CONFIG.format(
            auth_mechanisms=auth_mechanisms,
            imap_capability=(
                f"  imap_capability = {self.imap_capability}\n" if self.imap_capability else ""
            ),
            oauth2_passdb=oauth2_passdb,
            host=self.host,
            port=self.port,
            imaps_port=self.imaps_port or 0,
            run_dir=self.run_dir,
            state_dir=self.directory / "state",
            log=self.log,
            mail_dir=self.mail_dir,
            users=self.users_dir,
            mail_user=self._mail_user,
            mail_group=self._mail_group,
            ssl_block=ssl_block,
            rootless_block=rootless_block,
            # chroot() needs root
            chroot="" if os.geteuid() == 0 else "  chroot =\n",
        )
        if not self.imaps_port:  # drop the imaps listener
            config = re.sub(r"  inet_listener imaps \{.*?\n  \}\n", "", config, flags=re.DOTALL)
        return config

    # ------------------------------------------------------------------ accounts

    def add_user(self, login: str, password: str) -> None:
        """Create (or re-password) an IMAP account; works while the server runs.

        Each account has its own passwd-file, ``users/<login>``: Dovecot looks at a
        passwd-file at most once per second, so a new account in a shared file could
        be refused for up to a second, while a new file is read at the first LOGIN.
        Changing the password of an existing account has that delay, and therefore
        waits for the next second.
        """
        login = login.lower()  # auth_username_format = %Lu
        if (
            not login
            or login.startswith(".")
            or any(c in login for c in ":/\\\n\r\t ")
            or "\n" in password
        ):
            raise ValueError(f"unusable login/password: {login!r}")
        hashed = subprocess.run(
            [DOVEADM, "-O", "pw", "-s", "SHA512-CRYPT", "-p", password],
            check=True,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
        ).stdout.strip()
        path = self.users_dir / login
        with self._lock:
            try:
                old_mtime = int(path.stat().st_mtime)
            except FileNotFoundError:
                old_mtime = None
            tmp = path.with_name(f".{login}.tmp")
            tmp.write_text(f"{login}:{hashed}::::::\n")
            tmp.chmod(0o640)
            if os.geteuid() == 0:  # the auth process runs as the dovecot user
                shutil.chown(tmp, group=self._mail_group)
            if old_mtime is not None:
                # Dovecot re-reads a file whose mtime (whole seconds) or size changed,
                # but checks it at most once per second.
                mtime = max(int(time.time()), old_mtime + 1)
                os.utime(tmp, (mtime, mtime))
            os.replace(tmp, path)
            if old_mtime is not None and self.running:
                time.sleep(1.01 - time.time() % 1)

    def new_account(self, prefix: str = "user", domain: str = "example.com") -> ImapAccount:
        """Create a fresh account with a unique login and a random password."""
        login = f"{prefix}{next(self._counter)}-{secrets.token_hex(3)}@{domain}"
        password = secrets.token_urlsafe(9)
        self.add_user(login, password)
        return ImapAccount(self, login, password)

    def account(self, login: str, password: str) -> ImapAccount:
        """An :class:`ImapAccount` handle for an existing login."""
        return ImapAccount(self, login, password)

    # ------------------------------------------------------------- IMAP helpers

    def client(self, login: str, password: str, *, ssl: bool = False) -> imaplib.IMAP4:
        """A logged-in ``imaplib`` connection (plain, or IMAPS when ``ssl``).

        The caller logs out; the connection is also a context manager that does so.
        """
        if ssl:
            if not self.imaps_port:
                raise MailbedError("this Dovecot has no IMAPS port")
            # no ssl_context: like Odoo, accept the self-signed certificate
            imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(self.host, self.imaps_port, timeout=10)
        else:
            imap = imaplib.IMAP4(self.host, self.port, timeout=10)
        try:
            if password.isascii():
                _ok(imap.login(login, password), f"LOGIN {login}")
            else:  # LOGIN carries ASCII only; SASL PLAIN is UTF-8 (RFC 4616)
                credentials = f"\0{login}\0{password}".encode()
                _ok(imap.authenticate("PLAIN", lambda _challenge: credentials), f"PLAIN {login}")
        except BaseException:
            with contextlib.suppress(Exception):
                imap.shutdown()
            raise
        return imap

    @contextlib.contextmanager
    def _session(self, login: str, password: str, folder: str | None = None):
        """Logged-in session, with ``folder`` selected read-only (EXAMINE) if given.

        EXAMINE changes nothing: no \\Seen, no claim on \\Recent.
        """
        with self.client(login, password) as imap:
            count = 0
            if folder is not None:
                data = _ok(imap.select(_quote(folder), readonly=True), f"EXAMINE {folder}")
                count = int(data[0] or 0)
            yield imap, count

    def append(
        self,
        login: str,
        password: str,
        raw: bytes,
        folder: str = "INBOX",
        flags: str = "",
        *,
        create: bool = True,
    ) -> int:
        """APPEND ``raw`` (bytes of an RFC 822 message) and return its new UID.

        ``flags`` is e.g. ``"\\\\Seen \\\\Flagged"``.  Line endings are normalised to CRLF
        by imaplib.  A missing folder is created first when ``create`` (the default).
        Do not pass mbox files with a ``From `` first line: it would be stored as is.
        """
        if isinstance(raw, str):
            raw = raw.encode()
        flag_arg = f"({flags.strip('()')})" if flags.strip("() ") else None
        with self.client(login, password) as imap:
            typ, data = imap.append(_quote(folder), flag_arg, None, raw)
            if typ == "NO" and create and b"TRYCREATE" in b" ".join(data):
                _ok(imap.create(_quote(folder)), f"CREATE {folder}")
                typ, data = imap.append(_quote(folder), flag_arg, None, raw)
            data = _ok((typ, data), f"APPEND to {folder}")
        match = _APPENDUID_RE.search(b" ".join(d for d in data if isinstance(d, bytes)))
        if not match:
            raise MailbedError(f"APPEND to {folder}: no APPENDUID in {data!r}")
        return int(match.group(2))

    def uids(
        self, login: str, password: str, folder: str = "INBOX", criteria: str = "ALL"
    ) -> list[int]:
        """UIDs matching the IMAP SEARCH ``criteria`` (ASCII), e.g. ``"UNSEEN"``."""
        with self._session(login, password, folder) as (imap, _count):
            data = _ok(imap.uid("SEARCH", criteria), f"UID SEARCH {criteria}")
        return sorted(int(uid) for uid in b" ".join(d for d in data if d).split())

    def flags(
        self, login: str, password: str, folder: str = "INBOX", *, recent: bool = False
    ) -> dict[int, set[str]]:
        """``{uid: {"\\\\Seen", ...}}`` for every message of ``folder``.

        The session flag ``\\Recent`` is left out unless ``recent``.
        """
        result: dict[int, set[str]] = {}
        with self._session(login, password, folder) as (imap, count):
            if not count:
                return result
            data = _ok(imap.uid("FETCH", "1:*", "(FLAGS)"), "UID FETCH FLAGS")
        for item in data:
            line = item[0] if isinstance(item, tuple) else item
            if not isinstance(line, bytes):
                continue
            uid = re.search(rb"UID (\d+)", line)
            flags = re.search(rb"FLAGS \(([^)]*)\)", line)
            if uid and flags:
                found = set(flags.group(1).decode().split())
                if not recent:
                    found.discard("\\Recent")
                result[int(uid.group(1))] = found
        return result

    def fetch(self, login: str, password: str, uid: int, folder: str = "INBOX") -> bytes:
        """The raw bytes of message ``uid`` (read with BODY.PEEK, so not marked seen)."""
        with self._session(login, password, folder) as (imap, _count):
            data = _ok(imap.uid("FETCH", str(uid), "(BODY.PEEK[])"), f"UID FETCH {uid}")
        for item in data:
            if isinstance(item, tuple):
                return item[1]
        raise MailbedError(f"no message with UID {uid} in {folder}")

    def folders(self, login: str, password: str) -> list[str]:
        """All folder names of the account, decoded, in server order (INBOX first)."""
        names: list[str] = []
        with self._session(login, password) as (imap, _count):
            data = _ok(imap.list('""', '"*"'), "LIST")
        for item in data:
            if item is None:
                continue
            if isinstance(item, tuple):  # name sent as a literal: (b'(...) "." {5}', b'name')
                match, name = _LIST_RE.match(item[0].decode()), item[1].decode()
            else:
                match = _LIST_RE.match(item.decode())
                name = _unquote(match.group("name")) if match else ""
            if match:
                names.append(imap_utf7_decode(name))
        return names

    def uidvalidity(self, login: str, password: str, folder: str = "INBOX") -> int:
        """The UIDVALIDITY of ``folder`` (from STATUS)."""
        with self._session(login, password) as (imap, _count):
            data = _ok(imap.status(_quote(folder), "(UIDVALIDITY)"), f"STATUS {folder}")
        match = re.search(rb"UIDVALIDITY (\d+)", b" ".join(d for d in data if d))
        if not match:
            raise MailbedError(f"STATUS {folder}: no UIDVALIDITY in {data!r}")
        return int(match.group(1))


@dataclass(frozen=True)
class ImapAccount:
    """One account on a :class:`Dovecot`, with the server's helpers bound to it."""

    server: Dovecot
    login: str
    password: str

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def imaps_port(self) -> int | None:
        return self.server.imaps_port

    def client(self, *, ssl: bool = False) -> imaplib.IMAP4:
        return self.server.client(self.login, self.password, ssl=ssl)

    def append(self, raw: bytes, folder: str = "INBOX", flags: str = "", **kw) -> int:
        return self.server.append(self.login, self.password, raw, folder, flags, **kw)

    def uids(self, folder: str = "INBOX", criteria: str = "ALL") -> list[int]:
        return self.server.uids(self.login, self.password, folder, criteria)

    def flags(self, folder: str = "INBOX", *, recent: bool = False) -> dict[int, set[str]]:
        return self.server.flags(self.login, self.password, folder, recent=recent)

    def fetch(self, uid: int, folder: str = "INBOX") -> bytes:
        return self.server.fetch(self.login, self.password, uid, folder)

    def folders(self) -> list[str]:
        return self.server.folders(self.login, self.password)

    def uidvalidity(self, folder: str = "INBOX") -> int:
        return self.server.uidvalidity(self.login, self.password, folder)


# ------------------------------------------------------------- OAuth introspection


class TokenIntrospection:
    """OAuth 2.0 token introspection (RFC 7662) on 127.0.0.1, for Dovecot's oauth2 passdb.

    Stands in for the identity provider (Microsoft Entra ID, Google): it issues access
    tokens for a login and answers Dovecot's ``POST /introspect`` (form field ``token``)
    with ``{"active": "true", "username": <login>}`` for a token it issued and has not
    revoked, ``{"active": "false"}`` otherwise.  ``checked`` lists the tokens Dovecot asked
    about, in order.  ``POST /token`` is the provider's token endpoint for the
    ``refresh_token`` grant (what Odoo's mail OAuth calls when an access token expires):
    a new access token for a refresh token it issued, else HTTP 400 ``invalid_grant``.
    A stdlib HTTP server in a daemon thread; a context manager.
    """

    host = HOST
    path = "/introspect"

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.checked: list[str] = []
        self._tokens: dict[str, str] = {}
        self._refresh_tokens: dict[str, str] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}"

    @property
    def base_url(self) -> str:
        """Where the token endpoint lives: ``<base_url>token``."""
        return f"http://{self.host}:{self.port}/"

    def issue(self, login: str) -> str:
        """A new access token for ``login`` (lower-cased, as Dovecot reports logins)."""
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = login.lower()
        return token

    def issue_refresh(self, login: str) -> str:
        """A new refresh token for ``login``."""
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._refresh_tokens[token] = login.lower()
        return token

    def revoke(self, token: str) -> None:
        """From now on ``token`` (access or refresh) is refused: expired or withdrawn."""
        with self._lock:
            self._tokens.pop(token, None)
            self._refresh_tokens.pop(token, None)

    def _refresh(self, form: dict[str, list[str]]) -> tuple[int, dict]:
        with self._lock:
            login = self._refresh_tokens.get(form.get("refresh_token", [""])[0])
        if form.get("grant_type") != ["refresh_token"] or not login:
            return 400, {
                "error": "invalid_grant",
                "error_description": "The refresh token has expired or was revoked.",
            }
        return 200, {
            "token_type": "Bearer",
            "access_token": self.issue(login),
            "refresh_token": form["refresh_token"][0],
            "id_token": "",
            "expires_in": 3600,
        }

    def _introspect(self, token: str) -> dict[str, str]:
        with self._lock:
            self.checked.append(token)
            login = self._tokens.get(token)
        return {"active": "true", "username": login} if login else {"active": "false"}

    def start(self) -> TokenIntrospection:
        if self._server is not None:
            return self
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                if self.path == endpoint.path:
                    status, answer = 200, endpoint._introspect(form.get("token", [""])[0])
                elif self.path == "/token":
                    status, answer = endpoint._refresh(form)
                else:
                    self.send_error(404)
                    return
                body = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # no request lines on the test output
                pass

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="mailbed-introspection", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            self._thread.join(STOP_TIMEOUT)

    def __enter__(self) -> TokenIntrospection:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self._server else "stopped"
        return f"<TokenIntrospection {self.url} {state}>"


# ----------------------------------------------------------------------- SMTP sink

_MAILDIR_NAME_RE = re.compile(r"^(\d+)\.M(\d+)P\d+Q(\d+)\.")


class SmtpSink:
    """An SMTP server on 127.0.0.1 that stores every message in ``directory/maildir``.

    No AUTH and no TLS (so an Odoo outgoing server needs an empty user name).  Each
    message is stored once, whatever the number of recipients, with the envelope added
    as headers ``X-Peer``, ``X-MailFrom`` and ``X-RcptTo`` (comma-separated).
    SMTPUTF8 is enabled.  Bare-LF data is refused (``500 Line too long``), as strict
    servers do.  Usable as a context manager.
    """

    host = HOST

    def __init__(self, directory: str | os.PathLike, port: int | None = None):
        self.directory = Path(directory).resolve()
        self.port = port or free_port()
        self.maildir = self.directory / "maildir"
        self.log = self.directory / "aiosmtpd.log"
        self._proc: subprocess.Popen | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> SmtpSink:
        """Start aiosmtpd and wait until the port accepts connections."""
        if self.running:
            return self
        _check_port_free(self.host, self.port)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._proc = _start_process(
            # -n: as root, aiosmtpd would otherwise setuid to nobody and fail every DATA
            [sys.executable, "-m", "aiosmtpd", "-n", "-u",
             "-l", f"{self.host}:{self.port}",
             "-c", "aiosmtpd.handlers.Mailbox", str(self.maildir)],
            self.log,
        )  # fmt: skip

        def ready() -> bool:
            if self._proc.poll() is not None:
                raise MailbedError(
                    f"aiosmtpd exited with {self._proc.returncode}; log:\n{_tail(self.log)}"
                )
            return _port_accepts(self.host, self.port)

        if not _wait(ready, START_TIMEOUT):
            self.stop()
            raise MailbedError(f"aiosmtpd did not open its port; log:\n{_tail(self.log)}")
        return self

    def stop(self) -> None:
        """Stop the server and wait for it to exit."""
        proc, self._proc = self._proc, None
        if proc is not None:
            _stop_process(proc, grace=5.0)

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<SmtpSink {self.host}:{self.port} {state} in {self.directory}>"

    def _files(self) -> list[Path]:
        files = []
        for sub in ("new", "cur"):
            with contextlib.suppress(FileNotFoundError):
                files.extend(p for p in (self.maildir / sub).iterdir() if p.is_file())

        def arrival(path: Path) -> tuple[int, int, int, str]:
            match = _MAILDIR_NAME_RE.match(path.name)
            if match:  # "<sec>.M<usec>P<pid>Q<n>.<host>" written by mailbox.Maildir
                sec, usec, seq = map(int, match.groups())
                return sec, usec, seq, path.name
            mtime = path.stat().st_mtime_ns
            return mtime // 10**9, mtime % 10**9 // 1000, 0, path.name

        return sorted(files, key=arrival)

    def messages(self) -> list[EmailMessage]:
        """Every message received so far, parsed (``email.policy.default``), oldest first."""
        return [
            email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            for path in self._files()
        ]

    def clear(self) -> None:
        """Forget every message received so far."""
        for sub in ("new", "cur", "tmp"):
            with contextlib.suppress(FileNotFoundError):
                for path in (self.maildir / sub).iterdir():
                    path.unlink(missing_ok=True)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        """Wait until at least ``count`` messages arrived; return them all.

        Raises ``TimeoutError`` (with what did arrive) after ``timeout`` seconds.
        """
        if not _wait(lambda: len(self._files()) >= count, timeout):
            got = [m.get("Subject") for m in self.messages()]
            raise TimeoutError(f"expected {count} message(s) within {timeout}s, got {got}")
        return self.messages()


# ---------------------------------------------------------------------------- CLI


class _Stop(Exception):
    pass


def _raise_stop(signum, _frame):
    raise _Stop(signum)


def serve(args: argparse.Namespace) -> int:
    """Run Dovecot and the SMTP sink until SIGTERM/SIGINT/SIGHUP; stop both cleanly."""
    base = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="mailbed-"))
    if os.geteuid() == 0 and not args.dir:
        base.chmod(0o711)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _raise_stop)
    imap = Dovecot(base / "imap", args.imap_port, args.imaps_port, ssl=not args.no_ssl)
    smtp = SmtpSink(base / "smtp", args.smtp_port)
    try:
        imap.add_user(args.user, args.password)
        imap.start()
        smtp.start()
        imaps = f"{imap.host}:{imap.imaps_port} (SSL, self-signed)" if imap.imaps_port else "off"
        print(
            f"mailbed ready (pid {os.getpid()}), data in {base}\n"
            f"  IMAP   {imap.host}:{imap.port} (no SSL, plain LOGIN)\n"
            f"  IMAPS  {imaps}\n"
            f"         login {args.user}  password {args.password}\n"
            f"  SMTP   {smtp.host}:{smtp.port} (no auth, no TLS)"
            f" -> Maildir {smtp.maildir}\n"
            f"  logs   {imap.log}  {smtp.log}\n"
            "Stop with Ctrl-C or SIGTERM.",
            flush=True,
        )
        while True:
            signal.pause()
    except _Stop:
        print("mailbed: stopping...", flush=True)
    finally:
        # a second signal during shutdown must not abort it half-way
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        smtp.stop()
        imap.stop()
    print("mailbed: stopped", flush=True)
    return 0


def send(args: argparse.Namespace) -> int:
    """APPEND one message (built here, or read from ``--file``) to a running Dovecot."""
    if args.file:
        raw = Path(args.file).read_bytes()
    else:
        msg = EmailMessage()
        msg["From"] = args.sender
        msg["To"] = args.user
        msg["Subject"] = args.subject
        msg["Date"] = email.utils.formatdate(localtime=True)
        msg["Message-ID"] = email.utils.make_msgid(domain="mailbed.example.org")
        msg.set_content(args.body)
        raw = msg.as_bytes(policy=email.policy.SMTP)
    with imaplib.IMAP4(args.host, args.imap_port, timeout=10) as imap:
        _ok(imap.login(args.user, args.password), f"LOGIN {args.user}")
        data = _ok(imap.append(_quote(args.folder), None, None, raw), "APPEND")
    match = _APPENDUID_RE.search(b" ".join(d for d in data if isinstance(d, bytes)))
    uid = match.group(2).decode() if match else "?"
    print(f"appended to {args.user} {args.folder} on {args.host}:{args.imap_port}, UID {uid}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    commands = parser.add_subparsers(dest="command", required=True)
    cmd = commands.add_parser("serve", help="run Dovecot IMAP and the SMTP sink")
    cmd.add_argument("--dir", help="data directory (default: a new temporary one)")
    cmd.add_argument("--imap-port", type=int, default=10143)
    cmd.add_argument("--imaps-port", type=int, default=10993)
    cmd.add_argument("--no-ssl", action="store_true", help="no IMAPS port")
    cmd.add_argument("--smtp-port", type=int, default=10025)
    cmd.add_argument("--user", default="support@example.com")
    cmd.add_argument("--password", default="support")
    cmd = commands.add_parser("send", help="APPEND a message to a running mailbed")
    cmd.add_argument("--host", default=HOST)
    cmd.add_argument("--imap-port", type=int, default=10143)
    cmd.add_argument("--user", default="support@example.com")
    cmd.add_argument("--password", default="support")
    cmd.add_argument("--folder", default="INBOX")
    cmd.add_argument("--file", help="an RFC 822 message file (.eml) to append as is")
    cmd.add_argument("--sender", default="Jane Customer <jane@customer.example.org>")
    cmd.add_argument("--subject", default="Printer on floor 2 is jammed")
    cmd.add_argument(
        "--body", default="Hello,\n\nthe printer on floor 2 is jammed again.\n\nJane\n"
    )
    args = parser.parse_args(argv)
    try:
        return serve(args) if args.command == "serve" else send(args)
    except (MailbedError, OSError, imaplib.IMAP4.error) as exc:
        print(f"mailbed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
