"""The push listener: one IMAP IDLE connection per ticket mailbox, in one thread.

RFC 2177: a client in IDLE is told at once (``* 12 EXISTS``) when a mail arrives. The
listener holds such a connection on the folder of every ticket mailbox marked *Instant
(IMAP IDLE)*, of every database it serves, and on news it triggers that mailbox's own
scheduled fetch (``ticket_cron_id._trigger()``, which wakes the cron workers through
PostgreSQL's ``cron_trigger`` channel). It never reads a mail: the UID fetch stays the
only way mail becomes tickets, and the polling interval stays the safety net.

Shape:

* one thread runs a selector loop over all IDLE sockets and, per database, one
  dedicated PostgreSQL connection (autocommit) that ``LISTEN``\\ s for changes of the
  mail servers and holds the advisory locks: of several Odoo servers on one database,
  only the one holding a mailbox's lock (``pg_try_advisory_lock``) connects to it, the
  others try again every ``lock_retry`` seconds and take over when the holder stops
  (its session ends, PostgreSQL releases its locks);
* what blocks runs in small pools of worker threads (logins in a pool of their own),
  each in a short transaction of its own: the login (the server's own ``_connect__``:
  passwords from the configuration, XOAUTH2 tokens refreshed), the mailbox list, the
  cron trigger and the connection state shown on the mailbox;
* while nothing happens, it sleeps in ``select()`` and sends no database query; it
  renews IDLE (``DONE``, then ``IDLE`` again) every ``renew`` seconds, before the
  servers end it (Gmail after 29 minutes), reconnects with exponential backoff after
  errors, and re-reads the mailbox list on ``NOTIFY mail_ticket_idle`` and every
  ``reload`` seconds.

Settings (odoo.conf option ``mail_ticket_idle_<name>``, else environment variable
``MAIL_TICKET_IDLE_<NAME>``, in seconds): ``renew`` (1500), ``lock_retry`` (30),
``reload`` (1500), ``backoff_max`` (120), ``timeout`` (30), ``db_scan`` (600).
"""

import contextlib
import logging
import os
import queue
import re
import selectors
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg2
import psycopg2.sql

from odoo import SUPERUSER_ID, api, sql_db
from odoo.modules.registry import Registry
from odoo.tools import config
from odoo.tools.translate import LazyTranslate

from ..tools.imap_mailbox import ImapMailbox

_logger = logging.getLogger(__name__)

CHANNEL = "mail_ticket_idle"  # NOTIFY'd when a mail server changes (fetchmail_server.py)
LOCK_KEY = 0x6D746964  # first key of the advisory locks: "mtid"; the second: the server id
DEFAULTS = {
    "renew": 25 * 60,  # re-issue IDLE before the servers' 29-30 minute timeouts
    "lock_retry": 30,  # try again for mailboxes another Odoo server holds
    "reload": 25 * 60,  # re-read the mailbox list besides the NOTIFY (changes made in SQL)
    "backoff_max": 120,  # longest wait between two connection attempts
    "timeout": 30,  # for a login and for an answer of the IMAP server
    "db_scan": 600,  # look again for databases with mail_ticket (without db_name)
}
_lt = LazyTranslate(__name__)
#: the listener's own failures, stored by key on the push connection, translated when shown
MESSAGES = {
    "closed": _lt("The mail server closed the connection."),
    "no_answer": _lt("The mail server did not answer in time."),
    "not_announced": _lt(
        "The mail server does not announce IDLE: the mailbox is read at its interval only."
    ),
    "too_long": _lt("The mail server sent a response longer than 1 MB."),
}
LINE_LIMIT = 1 << 20  # an untagged response longer than that ends the connection
_LITERAL_RE = re.compile(rb"\{(\d+)\+?\}$")
_NEWS_RE = re.compile(rb"^\* \d+ (EXISTS|RECENT)\b", re.IGNORECASE)


def setting(name):
    value = config.get(f"mail_ticket_idle_{name}") or os.environ.get(
        f"MAIL_TICKET_IDLE_{name.upper()}"
    )
    return float(value) if value else float(DEFAULTS[name])


def served_databases():
    """The databases whose mailboxes this process holds: those its cron workers serve
    (``db_name``, else every database listed as ``dbfilter`` allows) that have
    mail_ticket installed."""
    from odoo.service.server import cron_database_list  # noqa: PLC0415 - loaded late

    names = []
    for name in cron_database_list():
        try:
            with contextlib.closing(sql_db.db_connect(name).cursor()) as cr:
                cr.execute(
                    "SELECT 1 FROM ir_module_module WHERE name = 'mail_ticket' "
                    "AND state IN ('installed', 'to upgrade')"
                )
                if cr.fetchone():
                    names.append(name)
        except psycopg2.Error:  # not an Odoo database, or gone
            _logger.debug("mail_ticket push: database %s skipped", name, exc_info=True)
    return names


class IdleUnsupportedError(Exception):
    """The IMAP server does not announce IDLE."""


class LineReader:
    """Splits what an IMAP server sends into responses, literals included."""

    def __init__(self, data=b""):
        self.buffer = data

    def feed(self, data):
        self.buffer += data
        if len(self.buffer) > LINE_LIMIT:
            raise OSError("too_long")

    def pop(self):
        """The next complete response, or None."""
        pos = 0
        while True:
            end = self.buffer.find(b"\r\n", pos)
            if end < 0:
                return None
            literal = _LITERAL_RE.search(self.buffer, pos, end)
            if not literal:
                line, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
                return line
            pos = end + 2 + int(literal.group(1))
            if len(self.buffer) < pos:
                return None


def _drain_imaplib(connection):
    """What imaplib read ahead of its last response (normally nothing)."""
    sock = connection.sock
    sock.setblocking(False)
    try:
        return connection.file.peek() or b""
    except (OSError, ValueError):
        return b""
    finally:
        sock.setblocking(True)


def open_idle(registry, server_id, timeout):
    """Log in to the mailbox as its fetch does, select its folder and start IDLE.

    :return: ``(connection, reader, tag_counter)``; the socket is in IDLE
    """
    with registry.cursor() as cr:  # committed: an OAuth login may renew the token
        server = api.Environment(cr, SUPERUSER_ID, {})["fetchmail.server"].browse(server_id)
        connection, folder = server._ticket_idle_connect()
    try:
        mailbox = ImapMailbox(connection, folder)
        if "IDLE" not in mailbox.authenticated_capabilities():
            raise IdleUnsupportedError("not_announced")
        mailbox.select()
        sock = connection.sock
        sock.settimeout(timeout)
        reader = LineReader(_drain_imaplib(connection))
        sock.sendall(b"MTI1 IDLE\r\n")
        while True:
            line = reader.pop()
            if line is None:
                data = sock.recv(65536)
                if not data:
                    raise OSError("closed")
                reader.feed(data)
                continue
            if line.startswith(b"+"):
                return connection, reader
            if line.startswith(b"MTI1 "):
                raise IdleUnsupportedError(line.decode(errors="replace"))
    except BaseException:
        with contextlib.suppress(Exception):
            connection.shutdown()
        raise


class Mailbox:
    """The listener's view of one mailbox: its lock, its connection, its timers."""

    def __init__(self, database, server_id, signature):
        self.database = database
        self.server_id = server_id
        self.signature = signature
        self.locked = False
        self.state = "standby"  # standby, connecting, idle, done_sent, idle_sent, waiting
        self.connection = self.sock = self.reader = None
        self.tag = 1
        self.deadline = None  # an answer is due, or the connection counts as lost
        self.renew_at = None
        self.retry_at = None
        self.backoff = 1.0
        self.connected_at = None
        self.reported = None  # (state, error) last written to the database
        self.trigger_busy = self.trigger_again = False
        self.closed = False

    def __repr__(self):
        return f"<mailbox {self.server_id} of {self.database.name}: {self.state}>"


class Database:
    def __init__(self, name):
        self.name = name
        self.pg = None
        self.mailboxes = {}
        self.reload_at = 0.0
        self.reloading = self.reload_again = False
        self.lock_retry_at = None
        self.pg_retry_at = 0.0
        self.pg_backoff = 1.0

    @property
    def registry(self):
        return Registry(self.name).check_signaling()


class IdleListener:
    """Holds the IDLE connections of the ticket mailboxes of ``databases`` (a list, or a
    callable returning it, called again every ``db_scan`` seconds)."""

    def __init__(self, databases=served_databases, workers=4, should_stop=None):
        self.databases_source = databases
        self.should_stop = should_stop  # checked every few seconds (a prefork worker's parent)
        self.settings = {name: setting(name) for name in DEFAULTS}
        self.holder = f"{socket.gethostname()}:{os.getpid()}"
        self.selector = selectors.DefaultSelector()
        # logins apart: a mail server that does not answer keeps a login waiting for up
        # to a minute, and must not hold back the triggers of the others
        self.pool = ThreadPoolExecutor(2, thread_name_prefix="mail_ticket_idle_db")
        self.login_pool = ThreadPoolExecutor(workers, thread_name_prefix="mail_ticket_idle_login")
        self.results = queue.SimpleQueue()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.selector.register(self.wake_r, selectors.EVENT_READ, None)
        self.databases = {}
        self.stopping = threading.Event()
        self.db_scan_at = 0.0

    # ------------------------------------------------------------ life cycle

    def stop(self):
        self.stopping.set()
        self._wake()

    def run(self):
        _logger.info("mail_ticket push listener started (%s)", self.holder)
        try:
            while not self.stopping.is_set():
                self._step()
        except Exception:
            _logger.exception("mail_ticket push listener failed")
            raise
        finally:
            self._shutdown()
        _logger.info("mail_ticket push listener stopped")

    def _step(self):
        if self.should_stop and self.should_stop():
            self.stopping.set()
            return
        now = time.monotonic()
        self._timers(now)
        timeout = self._next_timer(now)
        if self.should_stop:
            timeout = min(timeout, 5.0)
        for key, _events in self.selector.select(timeout):
            if key.data is None:
                with contextlib.suppress(BlockingIOError):
                    while os.read(self.wake_r, 4096):
                        pass
            elif isinstance(key.data, Database):
                self._on_notify(key.data)
            elif not key.data.closed and key.data.sock is not None:
                self._on_readable(key.data)
        while True:
            try:
                callback, future = self.results.get_nowait()
            except queue.Empty:
                break
            callback(future)

    def _shutdown(self):
        reports = []
        for database in self.databases.values():
            for mailbox in database.mailboxes.values():
                if mailbox.sock is not None:
                    with contextlib.suppress(OSError):
                        mailbox.sock.setblocking(True)
                        mailbox.sock.settimeout(2)
                        mailbox.sock.sendall(b"DONE\r\nMTI0 LOGOUT\r\n")
                    self._close(mailbox)
                if mailbox.locked and mailbox.reported and mailbox.reported[0] != "stopped":
                    reports.append(
                        self.pool.submit(self._job_report, mailbox, "stopped", None, False)
                    )
        for future in reports:
            with contextlib.suppress(Exception):
                future.result(timeout=5)
        for database in self.databases.values():
            self._close_pg(database)
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.login_pool.shutdown(wait=False, cancel_futures=True)
        self.selector.close()
        os.close(self.wake_r)
        os.close(self.wake_w)

    def _wake(self):
        with contextlib.suppress(OSError):
            os.write(self.wake_w, b".")

    def _submit(self, callback, function, *args, pool=None):
        """Run ``function`` in a worker thread, then ``callback(future)`` in the loop."""

        def done(future):
            self.results.put((callback, future))
            self._wake()

        (pool or self.pool).submit(function, *args).add_done_callback(done)

    # ------------------------------------------------------------ timers

    def _timers(self, now):
        if now >= self.db_scan_at:
            self.db_scan_at = now + self.settings["db_scan"]
            self._scan_databases()
        for database in list(self.databases.values()):
            if database.pg is None:
                if now >= database.pg_retry_at:
                    self._open_pg(database)
                continue
            if now >= database.reload_at:
                self._reload(database)
            if database.lock_retry_at is not None and now >= database.lock_retry_at:
                database.lock_retry_at = None
                self._lock(database, [m for m in database.mailboxes.values() if not m.locked])
            for mailbox in list(database.mailboxes.values()):
                if mailbox.state == "waiting" and now >= mailbox.retry_at:
                    self._connect(mailbox)
                elif mailbox.deadline is not None and now >= mailbox.deadline:
                    self._lost(mailbox, "no_answer")
                elif mailbox.state == "idle" and now >= mailbox.renew_at:
                    mailbox.state = "done_sent"
                    mailbox.deadline = now + self.settings["timeout"]
                    self._send(mailbox, b"DONE\r\n")  # on failure: lost, to be retried

    def _next_timer(self, now):
        moments = [self.db_scan_at]
        for database in self.databases.values():
            if database.pg is None:
                moments.append(database.pg_retry_at)
                continue
            moments.append(database.reload_at)
            if database.lock_retry_at is not None:
                moments.append(database.lock_retry_at)
            for mailbox in database.mailboxes.values():
                if mailbox.state == "waiting":
                    moments.append(mailbox.retry_at)
                if mailbox.deadline is not None:
                    moments.append(mailbox.deadline)
                if mailbox.state == "idle":
                    moments.append(mailbox.renew_at)
        return max(0.0, min(moments) - now)

    # ------------------------------------------------------------ databases

    def _scan_databases(self):
        source = self.databases_source
        try:
            names = set(source() if callable(source) else source)
        except Exception:
            _logger.warning("mail_ticket push: cannot list the databases", exc_info=True)
            return
        for name in names - self.databases.keys():
            _logger.info("mail_ticket push: serving database %s", name)
            self.databases[name] = Database(name)
        for name in self.databases.keys() - names:
            database = self.databases.pop(name)
            for mailbox in list(database.mailboxes.values()):
                self._drop(mailbox)
            self._close_pg(database)

    def _open_pg(self, database):
        """The database's dedicated session: LISTEN, and the advisory locks."""
        try:
            _dbname, info = sql_db.connection_info_for(database.name)
            pg = psycopg2.connect(**info, connect_timeout=int(self.settings["timeout"]))
            pg.autocommit = True
            with pg.cursor() as cr:
                cr.execute(psycopg2.sql.SQL("LISTEN {}").format(psycopg2.sql.Identifier(CHANNEL)))
        except psycopg2.Error as error:
            database.pg_retry_at = time.monotonic() + database.pg_backoff
            database.pg_backoff = min(database.pg_backoff * 2, self.settings["backoff_max"])
            _logger.warning("mail_ticket push: cannot connect to %s: %s", database.name, error)
            return
        database.pg = pg
        database.pg_backoff = 1.0
        database.reload_at = 0.0
        self.selector.register(pg, selectors.EVENT_READ, database)

    def _close_pg(self, database):
        if database.pg is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(database.pg)
            with contextlib.suppress(psycopg2.Error):
                database.pg.close()
            database.pg = None

    def _lost_pg(self, database, error):
        """The session holding the locks is gone, and so are the locks: let go of every
        mailbox (another server may hold them already) and start again."""
        _logger.warning("mail_ticket push: lost database %s: %s", database.name, error)
        self._close_pg(database)
        for mailbox in list(database.mailboxes.values()):
            mailbox.locked = False
            self._drop(mailbox, unlock=False)
        database.pg_retry_at = time.monotonic() + database.pg_backoff
        database.pg_backoff = min(database.pg_backoff * 2, self.settings["backoff_max"])

    def _on_notify(self, database):
        try:
            database.pg.poll()
        except psycopg2.Error as error:
            self._lost_pg(database, error)
            return
        if database.pg.notifies:
            database.pg.notifies.clear()
            self._reload(database)

    def _reload(self, database):
        database.reload_at = time.monotonic() + self.settings["reload"]
        if database.reloading:
            database.reload_again = True
            return
        database.reloading = True
        self._submit(lambda future: self._reloaded(database, future), self._job_mailboxes, database)

    def _job_mailboxes(self, database):
        threading.current_thread().dbname = database.name
        with database.registry.cursor() as cr:
            return api.Environment(cr, SUPERUSER_ID, {})[
                "fetchmail.server"
            ]._ticket_idle_mailboxes()

    def _reloaded(self, database, future):
        database.reloading = False
        if self.databases.get(database.name) is not database or database.pg is None:
            return
        try:
            wanted = future.result()
        except Exception:
            _logger.warning(
                "mail_ticket push: cannot read the mailboxes of %s", database.name, exc_info=True
            )
            database.reload_at = time.monotonic() + self.settings["lock_retry"]
            return
        for server_id, mailbox in list(database.mailboxes.items()):
            if wanted.get(server_id) != mailbox.signature:
                self._drop(mailbox)
        new = [
            Mailbox(database, server_id, signature)
            for server_id, signature in wanted.items()
            if server_id not in database.mailboxes
        ]
        database.mailboxes.update((mailbox.server_id, mailbox) for mailbox in new)
        self._lock(database, new)
        if database.reload_again:
            database.reload_again = False
            self._reload(database)

    # ------------------------------------------------------------ locks

    def _lock(self, database, mailboxes):
        """Take the advisory locks of ``mailboxes`` that nobody holds (one query), and
        connect to those; try the others again in ``lock_retry`` seconds."""
        if not mailboxes:
            return
        try:
            with database.pg.cursor() as cr:
                cr.execute(
                    "SELECT id FROM unnest(%s) AS id WHERE pg_try_advisory_lock(%s, id)",
                    ([mailbox.server_id for mailbox in mailboxes], LOCK_KEY),
                )
                locked = {server_id for (server_id,) in cr.fetchall()}
        except psycopg2.Error as error:
            self._lost_pg(database, error)
            return
        for mailbox in mailboxes:
            mailbox.locked = mailbox.server_id in locked
            if mailbox.locked:
                _logger.info(
                    "mail_ticket push: holding mailbox %s of %s", mailbox.server_id, database.name
                )
                self._connect(mailbox)
        if len(locked) < len(mailboxes) and database.lock_retry_at is None:
            database.lock_retry_at = time.monotonic() + self.settings["lock_retry"]

    def _unlock(self, mailbox):
        database = mailbox.database
        if not mailbox.locked or database.pg is None:
            return
        mailbox.locked = False
        try:
            with database.pg.cursor() as cr:
                cr.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_KEY, mailbox.server_id))
        except psycopg2.Error as error:
            self._lost_pg(database, error)

    def _drop(self, mailbox, unlock=True):
        """Let go of a mailbox that is no longer to be held (or changed)."""
        mailbox.closed = True
        self._close(mailbox)
        if unlock:
            self._unlock(mailbox)
        mailbox.database.mailboxes.pop(mailbox.server_id, None)

    # ------------------------------------------------------------ IMAP

    def _connect(self, mailbox):
        mailbox.state = "connecting"
        mailbox.retry_at = mailbox.deadline = None
        self._submit(
            lambda future: self._connected(mailbox, future),
            self._job_connect,
            mailbox,
            pool=self.login_pool,
        )

    def _job_connect(self, mailbox):
        threading.current_thread().dbname = mailbox.database.name
        return open_idle(mailbox.database.registry, mailbox.server_id, self.settings["timeout"])

    def _connected(self, mailbox, future):
        try:
            connection, reader = future.result()
        except IdleUnsupportedError as error:
            if not mailbox.closed:
                mailbox.state = "unsupported"
                self._report(mailbox, "unsupported", str(error))
            return
        except Exception as error:  # reported, then retried
            if not mailbox.closed:
                _logger.info(
                    "mail_ticket push: cannot connect to mailbox %s of %s: %s",
                    mailbox.server_id,
                    mailbox.database.name,
                    error,
                )
                self._retry_later(mailbox, error)
            return
        if mailbox.closed:  # dropped while it logged in
            with contextlib.suppress(Exception):
                connection.shutdown()
            return
        mailbox.connection, mailbox.reader = connection, reader
        mailbox.sock = connection.sock
        mailbox.sock.setblocking(False)
        with contextlib.suppress(OSError):
            mailbox.sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self.selector.register(mailbox.sock, selectors.EVENT_READ, mailbox)
        mailbox.state = "idle"
        mailbox.connected_at = time.monotonic()
        mailbox.renew_at = mailbox.connected_at + self.settings["renew"]
        _logger.info(
            "mail_ticket push: mailbox %s of %s in IDLE", mailbox.server_id, mailbox.database.name
        )
        # and a fetch, for what arrived while nobody listened
        self._report(mailbox, "connected", None)
        if mailbox.reader.buffer:
            self._process(mailbox)

    def _retry_later(self, mailbox, error):
        self._close(mailbox)
        mailbox.state = "waiting"
        mailbox.retry_at = time.monotonic() + mailbox.backoff
        mailbox.backoff = min(mailbox.backoff * 2, self.settings["backoff_max"])
        self._report(mailbox, "reconnecting", str(error) or error.__class__.__name__)

    def _lost(self, mailbox, error):
        _logger.info(
            "mail_ticket push: lost mailbox %s of %s: %s",
            mailbox.server_id,
            mailbox.database.name,
            error,
        )
        if mailbox.connected_at and time.monotonic() - mailbox.connected_at > 60:
            mailbox.backoff = 1.0  # it worked for a while: try again soon
        self._retry_later(mailbox, error)

    def _close(self, mailbox):
        if mailbox.sock is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(mailbox.sock)
        if mailbox.connection is not None:
            with contextlib.suppress(Exception):
                mailbox.connection.shutdown()
        mailbox.connection = mailbox.sock = mailbox.reader = None
        mailbox.deadline = mailbox.renew_at = None

    def _send(self, mailbox, data):
        sock = mailbox.sock
        try:
            sock.settimeout(self.settings["timeout"])
            sock.sendall(data)
            sock.setblocking(False)
        except OSError as error:
            self._lost(mailbox, error)

    def _on_readable(self, mailbox):
        sock = mailbox.sock
        try:
            while True:
                try:
                    data = sock.recv(65536)
                except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    break
                if not data:
                    raise OSError("closed")
                mailbox.reader.feed(data)
                if not isinstance(sock, ssl.SSLSocket) and len(data) < 65536:
                    break
        except OSError as error:
            self._lost(mailbox, error)
            return
        self._process(mailbox)

    def _process(self, mailbox):
        news = False
        while mailbox.reader is not None and (line := mailbox.reader.pop()) is not None:
            if _NEWS_RE.match(line):
                news = True
            elif line.startswith(b"* BYE"):
                self._lost(mailbox, line.decode(errors="replace"))
                break
            elif line.startswith(b"+") and mailbox.state == "idle_sent":
                mailbox.state = "idle"
                mailbox.deadline = None
                mailbox.renew_at = time.monotonic() + self.settings["renew"]
            elif line.startswith(b"MTI"):  # the end of the IDLE we renew
                if mailbox.state != "done_sent" or line.split(b" ")[1:2] != [b"OK"]:
                    self._lost(mailbox, line.decode(errors="replace"))
                    break
                mailbox.tag += 1
                mailbox.state = "idle_sent"
                mailbox.deadline = time.monotonic() + self.settings["timeout"]
                self._send(mailbox, b"MTI%d IDLE\r\n" % mailbox.tag)
        if news:
            self._trigger(mailbox)

    # ------------------------------------------------------------ database writes

    def _trigger(self, mailbox):
        if mailbox.trigger_busy:
            mailbox.trigger_again = True
            return
        mailbox.trigger_busy = True
        self._submit(
            lambda future: self._triggered(mailbox, future),
            self._job_report,
            mailbox,
            "connected",
            None,
            True,
        )

    def _triggered(self, mailbox, future):
        mailbox.trigger_busy = False
        try:
            future.result()
        except Exception:
            _logger.warning(
                "mail_ticket push: cannot trigger the fetch of mailbox %s of %s",
                mailbox.server_id,
                mailbox.database.name,
                exc_info=True,
            )
            mailbox.trigger_again = True  # the mail is there: the next news, or the poll
        if mailbox.trigger_again and not mailbox.closed:
            mailbox.trigger_again = False
            self._trigger(mailbox)

    def _report(self, mailbox, state, error):
        """Show the connection on the mailbox: on connect and disconnect only (a failing
        mailbox is written once per error, not once per attempt)."""
        if mailbox.reported == (state, error) and state != "connected":
            return
        mailbox.reported = (state, error)
        self._submit(self._reported, self._job_report, mailbox, state, error, False)

    def _reported(self, future):
        with contextlib.suppress(Exception):
            future.result()

    def _job_report(self, mailbox, state, error, event):
        threading.current_thread().dbname = mailbox.database.name
        with mailbox.database.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            server = env["fetchmail.server"].browse(mailbox.server_id).exists()
            if server:
                server._ticket_idle_record(state, self.holder, error=error, event=event)
