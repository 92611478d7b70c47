"""The Odoo side of the end-to-end tests: a real database, driven the way Odoo's cron does.

The database is named by ``MAIL_TICKET_E2E_DB`` (``./dev test`` makes it, a copy of the
freshly installed test database). Unlike the addon's unit tests, nothing here runs in a
rolled-back transaction: fetchmail opens its own cursors and commits per mail, so each
test works on its own mailbox and its own mail server record, and asserts on what is
committed.
"""

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from email.message import EmailMessage
from email.utils import format_datetime, formatdate
from pathlib import Path

import psycopg2
import pytest
from mailbed import free_port  # tools/ is on sys.path (tests/conftest.py)
from odoo_worker import run_fetch_jobs

from odoo import SUPERUSER_ID, api
from odoo.modules.registry import Registry
from odoo.tools import config

WORKER = Path(__file__).with_name("odoo_worker.py")


def make_mail(
    subject,
    sender='"Sylvie Lelitre" <sylvie.lelitre@agrolait.example.com>',
    to="support@example.com",
    body="Unser Drucker druckt nur leere Seiten.",
    message_id=None,
    headers=None,
    attachment=None,
    date=None,
):
    """A customer mail as raw bytes with CRLF line ends, as IMAP stores it."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date) if date else formatdate(localtime=True)
    msg["Message-ID"] = message_id or f"<{uuid.uuid4().hex}@agrolait.example.com>"
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    if attachment:
        name, content = attachment
        msg.add_attachment(content, maintype="application", subtype="octet-stream", filename=name)
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def foreign_agent(env, login):
    """An agent of another company: as a mailbox's default assignee, they make every new
    ticket of that mailbox fail (replies still work), the usual admin mistake behind
    mails that cannot be processed until the server is corrected."""
    company = env["res.company"].create({"name": f"Andere GmbH {login}"})
    return env["res.users"].create(
        {
            "name": "Agent der Anderen",
            "login": f"agent-{login}",
            "company_id": company.id,
            "company_ids": [(6, 0, company.ids)],
            "group_ids": [(4, env.ref("mail_ticket.mail_ticket_group_user").id)],
        }
    )


def make_team(env, **vals):
    """A helpdesk team (the id), as a mailbox's team gives its new tickets their agent."""
    return env["mail.ticket.team"].create({"name": "Support", **vals}).id


def foreign_team(env, login):
    """A team of all companies giving its tickets to an agent of another company (see
    ``foreign_agent``): every new ticket of its mailbox fails."""
    return make_team(
        env, company_id=False, assignment="user", assign_user_id=foreign_agent(env, login).id
    )


class OdooDb:
    """A registry on the end-to-end database, with committed environments."""

    def __init__(self, dbname):
        self.dbname = dbname
        self.registry = Registry(dbname)

    @contextlib.contextmanager
    def env(self, context=None):
        """Superuser environment on a new cursor, committed when the block ends."""
        with self.registry.cursor() as cr:
            yield api.Environment(cr, SUPERUSER_ID, context or {})

    def run_cron(self):
        """Run the fetch jobs as the scheduler would (their own cursors): each ticket
        mailbox's own job, then "Mail: Fetchmail Service" for the other mail servers."""
        with self.env() as env:
            run_fetch_jobs(env)

    def spawn(self, *args):
        """Start tests/odoo_worker.py in a separate Odoo process."""
        command = [
            sys.executable,
            str(WORKER),
            "--db",
            self.dbname,
            "--addons-path",
            config["addons_path"]
            if isinstance(config["addons_path"], str)
            else ",".join(config["addons_path"]),
            "--db-host",
            config["db_host"] or "",
            "--db-port",
            str(config["db_port"] or ""),
            "--db-user",
            config["db_user"] or "",
            *map(str, args),
        ]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def wait_for(self, predicate, timeout=60, interval=0.05):
        """Poll ``predicate(env)`` on fresh cursors until it is true."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.env() as env:
                if predicate(env):
                    return True
            time.sleep(interval)
        return False


@pytest.fixture(scope="session")
def odoo_db():
    dbname = os.environ.get("MAIL_TICKET_E2E_DB")
    if not dbname:
        raise pytest.UsageError(
            "MAIL_TICKET_E2E_DB names no database: run the suite with ./dev test"
        )
    return OdooDb(dbname)


@pytest.fixture(scope="session")
def odoo_smtp(odoo_db, smtp_sink):
    """Odoo's outgoing mail goes to the session's SMTP sink, never to the network."""
    with odoo_db.env() as env:
        send_to_sink(env, smtp_sink)
    return smtp_sink


def send_to_sink(env, smtp_sink):
    """Odoo's outgoing mail of ``env``'s database goes to ``smtp_sink`` only."""
    env["ir.mail_server"].search([]).unlink()
    env["ir.mail_server"].create(
        {
            "name": "Test sink",
            "smtp_host": smtp_sink.host,
            "smtp_port": smtp_sink.port,
            "smtp_encryption": "none",
        }
    )


def create_ticket_server(env, imap_account, **vals):
    """An Incoming Mail Server on ``imap_account`` feeding tickets, confirmed through
    "Test & Confirm" (a real IMAP login)."""
    server = env["fetchmail.server"].create(
        {
            "name": f"Support {imap_account.login}",
            "server_type": "imap",
            "server": imap_account.host,
            "port": imap_account.port,
            "is_ssl": False,
            "user": imap_account.login,
            "password": imap_account.password,
            "object_id": env["ir.model"]._get_id("mail.ticket"),
            **vals,
        }
    )
    server.button_confirm_login()
    return server


def load_registry(dbname):
    """An :class:`OdooDb` on another database, its registry loaded as a server loads it:
    with test_enable off (pytest-odoo's is on, which would run the modules' tests)."""
    test_enable, config["test_enable"] = config["test_enable"], False
    try:
        return OdooDb(dbname)
    finally:
        config["test_enable"] = test_enable


@pytest.fixture
def ticket_server(odoo_db, odoo_smtp, imap_account):
    """Factory: an Incoming Mail Server on the test account, feeding tickets, confirmed
    through "Test & Confirm" (a real IMAP login)."""
    created = []

    def make(**vals):
        with odoo_db.env() as env:
            server = create_ticket_server(env, imap_account, **vals)
            created.append(server.id)
            return server.id

    yield make
    with odoo_db.env() as env:
        servers = env["fetchmail.server"].browse(created).exists()
        env["mail.ticket"].search([("fetchmail_server_id", "in", servers.ids)]).unlink()
        servers.unlink()


def _postgres_bin():
    """Directory of initdb and pg_ctl: $MAIL_TICKET_PG_BIN, else Debian's newest version."""
    if os.environ.get("MAIL_TICKET_PG_BIN"):
        return Path(os.environ["MAIL_TICKET_PG_BIN"])
    installed = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda path: float(path.parts[-3])
    )
    if installed:
        return installed[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _postgres_bin()


class PrivatePostgres:
    """A throw-away PostgreSQL cluster on a free loopback port, for tests that restart it.

    The machine's shared cluster is never stopped: this one lives in its own directory
    (``initdb``), runs as the ``postgres`` OS user when the tests run as root (initdb
    refuses root), trusts local connections as its superuser ``user``, and is removed
    with its directory by :meth:`destroy`.
    fsync is off: a restart (even ``immediate``) kills processes, not the kernel, so the
    page cache keeps every committed write.
    """

    def __init__(self, user, port=None):
        self.user = user
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="mail-ticket-pg-"))
        self.data = self.directory / "data"
        self.log = self.directory / "postgres.log"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.directory, "postgres", "postgres")

    def _run(self, *argv, **kwargs):
        command = [str(argv[0]), *map(str, argv[1:])]
        if self._as_postgres:
            # util-linux's runuser lives in /usr/sbin, which a plain PATH may lack
            runuser = shutil.which("runuser") or "/usr/sbin/runuser"
            command = [runuser, "-u", "postgres", "--", *command]
        return subprocess.run(
            command, check=True, stdin=subprocess.DEVNULL, capture_output=True, **kwargs
        )

    def start(self):
        self._run(
            PG_BIN / "initdb", "-D", self.data, "-U", self.user, "-A", "trust",
            "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
        )  # fmt: skip
        options = (
            f"-p {self.port} -c listen_addresses={self.host} -k {self.directory} "
            "-c fsync=off -c full_page_writes=off"
        )
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-l", self.log, "-o", options, "-w", "start")
        return self

    def restart(self, mode="immediate"):
        """Restart the cluster: every connection is cut, open transactions are lost."""
        # its options are kept from the start; the log must be named again, or the
        # new server would write to (and hold open) our pipe
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-l", self.log, "-m", mode, "-w", "restart")

    def destroy(self):
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self._run(PG_BIN / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.destroy()
            raise

    def __exit__(self, *exc_info):
        self.destroy()

    def connect(self, dbname):
        connection = psycopg2.connect(host=self.host, port=self.port, user=self.user, dbname=dbname)
        connection.autocommit = True
        return connection

    def copy_database(self, source, target):
        """Copy database ``source`` of Odoo's cluster into this one as ``target``."""
        self._run(PG_BIN / "createdb", "-h", self.host, "-p", self.port, "-U", self.user, target)
        # connect to the source as Odoo does (libpq's PG* variables fill what it leaves)
        origin = [
            f"--{option}={config[key]}"
            for option, key in (("host", "db_host"), ("port", "db_port"), ("username", "db_user"))
            if config[key]
        ]
        dump = subprocess.Popen(
            [PG_BIN / "pg_dump", "--no-owner", "--no-privileges", *origin, source],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        restore = subprocess.run(
            [
                PG_BIN / "psql", "-q", "-X", "-v", "ON_ERROR_STOP=1",
                "-h", self.host, "-p", str(self.port), "-U", self.user, "-d", target,
            ],
            stdin=dump.stdout, capture_output=True,
        )  # fmt: skip
        dump.stdout.close()
        dump_error = dump.stderr.read()
        if dump.wait() or restore.returncode:
            raise RuntimeError(
                f"copying {source} failed: {dump_error.decode()} {restore.stderr.decode()}"
            )

    def spawn(self, dbname, *args):
        """Start tests/odoo_worker.py on database ``dbname`` of this cluster."""
        command = [
            sys.executable,
            str(WORKER),
            "--db",
            dbname,
            "--addons-path",
            config["addons_path"]
            if isinstance(config["addons_path"], str)
            else ",".join(config["addons_path"]),
            "--db-host",
            self.host,
            "--db-port",
            str(self.port),
            "--db-user",
            self.user,
            *map(str, args),
        ]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
