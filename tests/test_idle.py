"""Push ingestion (IMAP IDLE) end to end: real Odoo processes against the test Dovecot.

Every mailbox here polls once an hour: a ticket that appears within the wait came by
push. The listener runs inside ``odoo-bin`` (mail_ticket among the server-wide modules,
its cron thread fetching) or as the ``mail_ticket_idle`` command next to a cron-only
Odoo; the tests kill them with SIGKILL, restart Dovecot, and run two listeners on one
database.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid

import psutil
import psycopg2
import pytest
from mailbed import Dovecot
from odoo_env import make_mail

from odoo.tools import config

HOUR = 60
WAIT = 60  # generous: two Odoo processes share two cores with the other tests
LISTENER_ENV = {
    "MAIL_TICKET_IDLE_LOCK_RETRY": "1",  # takeover within seconds
    "MAIL_TICKET_IDLE_RENEW": "4",  # DONE + IDLE again every 4 s, renewals are exercised
    "MAIL_TICKET_IDLE_BACKOFF_MAX": "2",
}


class OdooProcess:
    """``odoo-bin`` on the end-to-end database: a server (``--no-http``, one cron
    thread), or the ``mail_ticket_idle`` command; its log in ``log``."""

    def __init__(self, dbname, log, *, listener=False, command=None, workers=0):
        addons = config["addons_path"]
        addons = addons if isinstance(addons, str) else ",".join(addons)
        options = [
            f"--addons-path={addons}",
            "-d",
            dbname,
            f"--db-filter=^{dbname}$",
            "--log-level=info",
        ]
        for option, key in (("db_host", "db_host"), ("db_port", "db_port"), ("db_user", "db_user")):
            if config[key]:
                options.append(f"--{option}={config[key]}")
        if command:
            self.argv = [sys.executable, "-m", "odoo", f"--addons-path={addons}", command, *options]
        else:
            load = "base,web,mail_ticket" if listener else "base,web"
            self.argv = [
                sys.executable, "-m", "odoo", *options,
                "--no-http", "--max-cron-threads=1", f"--load={load}", f"--workers={workers}",
            ]  # fmt: skip
        self.log = log
        self.process = None

    def start(self):
        env = {**os.environ, **LISTENER_ENV, "PYTHONPATH": os.pathsep.join(sys.path)}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                self.argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    @property
    def pid(self):
        return self.process.pid

    def kill(self):
        """SIGKILL: no goodbye to Dovecot nor to PostgreSQL."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def imap_connections(self, port):
        """Established TCP connections of this process (and its children) to ``port``."""
        processes = [psutil.Process(self.pid)]
        processes += processes[0].children(recursive=True)
        return sum(
            1
            for process in processes
            for conn in process.connections(kind="tcp")
            if conn.raddr and conn.raddr.port == port and conn.status == psutil.CONN_ESTABLISHED
        )

    def tail(self, lines=40):
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


@pytest.fixture
def odoo_processes(odoo_db, tmp_path):
    """Factory of Odoo processes on the e2e database, stopped after the test (their logs
    shown when it fails)."""
    started = []

    def start(name, **kwargs):
        process = OdooProcess(odoo_db.dbname, tmp_path / f"{name}.log", **kwargs).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
        print(f"----- {process.log.name}\n{process.tail()}")  # shown when the test fails


def mailbox_state(odoo_db, server_id):
    with odoo_db.env() as env:
        server = env["fetchmail.server"].browse(server_id)
        return server.ticket_idle_state, server.ticket_idle_holder


def wait_connected(odoo_db, server_id, holder=None):
    def connected(env):
        server = env["fetchmail.server"].browse(server_id)
        return server.ticket_idle_state == "connected" and (
            holder is None or server.ticket_idle_holder.endswith(f":{holder}")
        )

    assert odoo_db.wait_for(connected, timeout=WAIT), mailbox_state(odoo_db, server_id)


def tickets(env, server_id):
    return env["mail.ticket"].search([("fetchmail_server_id", "=", server_id)], order="id")


def push(odoo_db, account, server_id, subject=None):
    """Append a mail and wait for its ticket: the mailbox's poll is an hour away."""
    subject = subject or f"Drucker {uuid.uuid4().hex[:8]}"
    with odoo_db.env() as env:
        before = len(tickets(env, server_id))
    account.append(make_mail(subject))
    arrived = odoo_db.wait_for(
        lambda env: len(tickets(env, server_id)) > before, timeout=WAIT, interval=0.2
    )
    assert arrived, f"no ticket for {subject!r}: {mailbox_state(odoo_db, server_id)}"
    with odoo_db.env() as env:
        assert tickets(env, server_id)[-1:].name == subject
    return subject


def test_push_opens_the_ticket_while_polling_is_hourly(
    odoo_db, ticket_server, imap_account, odoo_processes
):
    odoo = odoo_processes("odoo", listener=True)
    server_id = ticket_server(ticket_fetch_interval=HOUR)
    with odoo_db.env() as env:
        assert env["fetchmail.server"].browse(server_id).ticket_idle, "Dovecot announces IDLE"
    wait_connected(odoo_db, server_id, holder=odoo.pid)

    first = push(odoo_db, imap_account, server_id)
    # after a few renewals of IDLE (every 4 s here), push still works
    time.sleep(6)
    second = push(odoo_db, imap_account, server_id)

    # the run's history row is committed just after the tickets it made
    assert odoo_db.wait_for(
        lambda env: (
            sum(
                env["fetchmail.server"]
                .browse(server_id)
                .ticket_fetch_run_ids.mapped("created_count")
            )
            == 2
        ),
        timeout=WAIT,
    )
    with odoo_db.env() as env:
        server = env["fetchmail.server"].browse(server_id)
        assert tickets(env, server_id).mapped("name") == [first, second]
        assert server.ticket_idle_date_event
        # the fetch history tells the run the push started (the first mail may have been
        # caught by the run that followed the connection)
        last_run = server.ticket_fetch_run_ids.filtered("created_count")[:1]
        assert last_run.trigger == "push", server.ticket_fetch_run_ids.read(
            ["trigger", "created_count"]
        )


def test_not_instant_when_the_server_cannot_push(odoo_db, ticket_server, imap_account, mailbed_dir):
    """Test & Confirm against a server that does not announce IDLE switches push off;
    confirmed again against one that does, the choice stays (an admin's or this one)."""
    capability = "IMAP4rev1 SASL-IR LITERAL+ ID ENABLE UIDPLUS"
    with Dovecot(mailbed_dir / "imap-no-idle", ssl=False, imap_capability=capability) as server:
        login, password = f"no-idle-{uuid.uuid4().hex[:6]}@example.com", "secret"
        server.add_user(login, password)
        server_id = ticket_server(
            user=login, password=password, server=server.host, port=server.port
        )
        with odoo_db.env() as env:
            mailbox = env["fetchmail.server"].browse(server_id)
            assert (mailbox.state, mailbox.ticket_idle) == ("done", False)
            mailbox.set_draft()
            mailbox.write(
                {
                    "server": imap_account.host,
                    "port": imap_account.port,
                    "user": imap_account.login,
                    "password": imap_account.password,
                }
            )
            mailbox.button_confirm_login()  # Dovecot's own capabilities announce IDLE
            assert (mailbox.state, mailbox.ticket_idle) == ("done", False)


def test_listener_killed_and_restarted(odoo_db, ticket_server, imap_account, odoo_processes):
    odoo_processes("cron")  # the cron worker: fetches what the listener triggers
    listener = odoo_processes("listener", command="mail_ticket_idle")
    server_id = ticket_server(ticket_fetch_interval=HOUR)
    wait_connected(odoo_db, server_id, holder=listener.pid)
    first = push(odoo_db, imap_account, server_id)

    listener.kill()
    assert odoo_db.wait_for(
        lambda env: env["fetchmail.server"].browse(server_id).ticket_idle_state == "waiting",
        timeout=WAIT,
    ), "a killed listener leaves its lock, not a connection that seems alive"
    while_down = f"Bildschirm {uuid.uuid4().hex[:8]}"
    imap_account.append(make_mail(while_down))

    listener = odoo_processes("listener-again", command="mail_ticket_idle")
    wait_connected(odoo_db, server_id, holder=listener.pid)
    # what arrived meanwhile is fetched as soon as it holds the mailbox again
    assert odoo_db.wait_for(lambda env: len(tickets(env, server_id)) == 2, timeout=WAIT)
    third = push(odoo_db, imap_account, server_id)

    with odoo_db.env() as env:
        found = tickets(env, server_id)
        assert found.mapped("name") == [first, while_down, third], "nothing lost or duplicated"
        assert len(env["mail.ticket.inbound"].search([("server_id", "=", server_id)])) == 3


def test_push_comes_back_after_a_dovecot_restart(
    odoo_db, ticket_server, imap_account, dovecot, odoo_processes
):
    odoo = odoo_processes("odoo", listener=True)
    server_id = ticket_server(ticket_fetch_interval=HOUR)
    wait_connected(odoo_db, server_id, holder=odoo.pid)
    push(odoo_db, imap_account, server_id)

    dovecot.stop()
    assert odoo_db.wait_for(
        lambda env: env["fetchmail.server"].browse(server_id).ticket_idle_state == "reconnecting",
        timeout=WAIT,
    ), mailbox_state(odoo_db, server_id)
    dovecot.start()
    wait_connected(odoo_db, server_id, holder=odoo.pid)
    push(odoo_db, imap_account, server_id)
    with odoo_db.env() as env:
        assert len(tickets(env, server_id)) == 2


def test_two_listeners_hold_each_mailbox_once(
    odoo_db, ticket_server, imap_account, dovecot, odoo_processes
):
    other_account = dovecot.new_account()
    server_ids = [
        ticket_server(ticket_fetch_interval=HOUR),
        ticket_server(
            name=f"Support {other_account.login}",
            user=other_account.login,
            password=other_account.password,
            ticket_fetch_interval=HOUR,
        ),
    ]
    accounts = dict(zip(server_ids, [imap_account, other_account], strict=True))
    odoo_processes("cron")
    listeners = [
        odoo_processes("listener-1", command="mail_ticket_idle"),
        odoo_processes("listener-2", command="mail_ticket_idle"),
    ]
    for server_id in server_ids:
        wait_connected(odoo_db, server_id)
    assert odoo_db.wait_for(
        lambda env: sum(p.imap_connections(dovecot.port) for p in listeners) == 2, timeout=10
    ), "one IMAP connection per mailbox, whichever listener holds it"
    assert sum(p.imap_connections(dovecot.port) for p in listeners) == 2
    for server_id in server_ids:
        push(odoo_db, accounts[server_id], server_id)

    # the holder of the first mailbox dies: the other listener takes it over
    _state, holder = mailbox_state(odoo_db, server_ids[0])
    victim = next(p for p in listeners if holder.endswith(f":{p.pid}"))
    survivor = next(p for p in listeners if p is not victim)
    victim.kill()
    for server_id in server_ids:
        wait_connected(odoo_db, server_id, holder=survivor.pid)
    assert survivor.imap_connections(dovecot.port) == 2
    for server_id in server_ids:
        push(odoo_db, accounts[server_id], server_id)
    with odoo_db.env() as env:
        assert [len(tickets(env, server_id)) for server_id in server_ids] == [2, 2]


@pytest.mark.parametrize("login", ["password from the configuration", "gmail xoauth2"])
def test_push_logs_in_as_the_fetch_does(
    odoo_db, ticket_server, imap_account, oauth_tokens, odoo_processes, monkeypatch, login
):
    if login == "gmail xoauth2":  # over IMAPS, as the providers require
        vals = {
            "server_type": "gmail",
            "is_ssl": True,
            "port": imap_account.imaps_port,
            "password": False,
            "google_gmail_refresh_token": "unused while the access token is valid",
            "google_gmail_access_token": oauth_tokens.issue(imap_account.login),
            "google_gmail_access_token_expiration": int(time.time()) + 86400,
        }
    else:
        monkeypatch.setenv("MAIL_TICKET_PASSWORD_IDLE_SUPPORT", imap_account.password)
        vals = {"ticket_secret_key": "idle_support"}
    odoo = odoo_processes("odoo", listener=True)  # inherits the environment variable
    server_id = ticket_server(ticket_fetch_interval=HOUR, **vals)
    wait_connected(odoo_db, server_id, holder=odoo.pid)
    push(odoo_db, imap_account, server_id)


def test_prefork_server_holds_the_mailboxes_in_one_worker(
    odoo_db, ticket_server, imap_account, dovecot, odoo_processes
):
    odoo = odoo_processes("odoo", listener=True, workers=2)
    server_id = ticket_server(ticket_fetch_interval=HOUR)
    wait_connected(odoo_db, server_id)
    _state, holder = mailbox_state(odoo_db, server_id)
    workers = {child.pid for child in psutil.Process(odoo.pid).children()}
    assert int(holder.rpartition(":")[2]) in workers, "a worker of its own, not the master"
    assert odoo.imap_connections(dovecot.port) == 1, "not one per worker"
    push(odoo_db, imap_account, server_id)


def test_listener_follows_the_mailbox_settings(
    odoo_db, ticket_server, imap_account, dovecot, odoo_processes
):
    odoo = odoo_processes("odoo", listener=True)
    server_id = ticket_server(ticket_fetch_interval=HOUR)
    wait_connected(odoo_db, server_id, holder=odoo.pid)

    def change(action):
        # as Odoo retries a request that a running fetch (writing the server) outran
        for _attempt in range(10):
            with contextlib.suppress(psycopg2.errors.SerializationFailure):
                with odoo_db.env() as env:
                    action(env["fetchmail.server"].browse(server_id))
                return
            time.sleep(0.5)
        raise AssertionError("the mail server stays locked")

    def write(vals):
        change(lambda server: server.write(vals))

    def connections(count):
        return odoo_db.wait_for(
            lambda env: odoo.imap_connections(dovecot.port) == count, timeout=WAIT
        )

    assert connections(1)
    write({"active": False})
    assert connections(0), "an archived mailbox is let go"
    write({"active": True})
    wait_connected(odoo_db, server_id, holder=odoo.pid)
    write({"ticket_idle": False})
    assert connections(0), "polling only"
    assert mailbox_state(odoo_db, server_id) == ("off", False)
    write({"ticket_idle": True})
    wait_connected(odoo_db, server_id, holder=odoo.pid)
    write({"ticket_folder": "Support"})  # the listener follows it to the new folder
    imap_account.append(make_mail("Ordner angelegt"), folder="Support")
    assert connections(1)
    push_folder = f"Anderer Ordner {uuid.uuid4().hex[:8]}"
    imap_account.append(make_mail(push_folder), folder="Support")
    assert odoo_db.wait_for(
        lambda env: push_folder in tickets(env, server_id).mapped("name"), timeout=WAIT
    )
    change(lambda server: server.unlink())
    assert connections(0), "a deleted mailbox is let go"
