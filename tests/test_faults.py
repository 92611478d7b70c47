"""Faults, end to end: nothing is lost or duplicated when a server goes away.

* PostgreSQL restarted in the middle of a fetch run: a private cluster (never the
  machine's shared one) holding a copy of the end-to-end database, fetched by a separate
  Odoo process, restarted while that process works through the mailbox.
* The IMAP server stopped in the middle of a batch: a private Dovecot, stopped while a
  separate Odoo process fetches, then started again.
* The SMTP server down when the acknowledgements are due: a private SMTP sink that Odoo
  prefers while the test runs; Odoo's mail queue delivers each acknowledgement once it
  is back.
* A mailbox down for longer than the alert delay: the administrators and the Helpdesk
  managers are told once, and again when it works.
"""

import contextlib
import secrets
import shutil
import time
from datetime import timedelta

import pytest
from mailbed import Dovecot, SmtpSink
from odoo_env import PrivatePostgres, make_mail

from odoo.tools import config


def tickets_of(env, server_id):
    return env["mail.ticket"].search([("fetchmail_server_id", "=", server_id)], order="id")


def inbound_count(env, server_id):
    return env["mail.ticket.inbound"].search_count([("server_id", "=", server_id)])


def fill_mailbox(account, subjects):
    client = account.client()
    for subject in subjects:
        client.append("INBOX", None, None, make_mail(subject))
    client.logout()


def drain(odoo_db, server_id, max_runs=30):
    """Run the fetchmail cron until the server's last run left nothing and failed not."""
    for _run in range(max_runs):
        odoo_db.run_cron()
        with odoo_db.env() as env:
            last = env["fetchmail.server"].browse(server_id).ticket_fetch_run_ids[:1]
            if not last.error and not last.left_count:
                return
    raise AssertionError(f"the mailbox does not drain in {max_runs} cron runs")


@contextlib.contextmanager
def reaped(process):
    """A worker process, killed if the test leaves before it ended."""
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def run_cron(odoo_db, xmlid):
    with odoo_db.env() as env:
        env.ref(xmlid).method_direct_trigger()


@pytest.fixture
def private_dovecot(mailbed_dir):
    """A Dovecot of the test's own, which it may stop: the session's one keeps running."""
    server = Dovecot(mailbed_dir / f"faults-imap-{secrets.token_hex(3)}", ssl=False)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def private_smtp(odoo_db, odoo_smtp, mailbed_dir):
    """An SMTP sink of the test's own, first in Odoo's outgoing mail servers meanwhile."""
    sink = SmtpSink(mailbed_dir / f"faults-smtp-{secrets.token_hex(3)}")
    sink.start()
    try:
        with odoo_db.env() as env:
            mail_server_id = (
                env["ir.mail_server"]
                .create(
                    {
                        "name": "Faults sink",
                        "sequence": 1,
                        "smtp_host": sink.host,
                        "smtp_port": sink.port,
                        "smtp_encryption": "none",
                    }
                )
                .id
            )
        yield sink
        with odoo_db.env() as env:
            env["ir.mail_server"].browse(mail_server_id).unlink()
    finally:
        sink.stop()


# ------------------------------------------------------------------ PostgreSQL


def sql(connection, query, *params):
    with connection.cursor() as cr:
        cr.execute(query, params)
        return cr.fetchall()


def wait_sql(pg, dbname, query, params, predicate, timeout=120):
    deadline = time.monotonic() + timeout
    connection = pg.connect(dbname)
    try:
        while time.monotonic() < deadline:
            if predicate(sql(connection, query, *params)[0][0]):
                return True
            time.sleep(0.05)
        return False
    finally:
        connection.close()


def test_postgres_restarted_mid_run(odoo_db, ticket_server, imap_account):
    total = 150
    subjects = [f"Datenbank {index:03d}" for index in range(total)]
    fill_mailbox(imap_account, subjects)
    server_id = ticket_server()
    dbname = f"{odoo_db.dbname}_pgrestart"
    count_inbound = "SELECT COUNT(*) FROM mail_ticket_inbound WHERE server_id = %s"

    with PrivatePostgres("mail_ticket") as pg:
        try:
            pg.copy_database(odoo_db.dbname, dbname)
            connection = pg.connect(dbname)
            # the copy reads this test's mailbox only
            sql(
                connection, "UPDATE fetchmail_server SET active = (id = %s) RETURNING id", server_id
            )
            connection.close()

            with reaped(pg.spawn(dbname, "cron")) as worker:
                started = wait_sql(pg, dbname, count_inbound, [server_id], lambda n: n >= 30)
                pg.restart("immediate")
                output = worker.communicate(timeout=120)[0].decode(errors="replace")
            assert started, output[-3000:]
            connection = pg.connect(dbname)
            (done_before,) = sql(connection, count_inbound, server_id)[0]
            assert 30 <= done_before < total, "PostgreSQL restarted in the middle of the run"
            assert "terminat" in output or "closed the connection" in output, output[-3000:]

            with reaped(pg.spawn(dbname, "drain", server_id)) as drainer:
                output = drainer.communicate(timeout=300)[0].decode(errors="replace")
            assert drainer.returncode == 0, output[-3000:]

            tickets = sql(
                connection,
                "SELECT name, COUNT(*) FROM mail_ticket WHERE fetchmail_server_id = %s "
                "GROUP BY name ORDER BY name",
                server_id,
            )
            assert tickets == [(subject, 1) for subject in subjects], "each mail one ticket"
            assert sql(
                connection,
                "SELECT COUNT(*), COUNT(DISTINCT uid), BOOL_AND(state = 'done'), "
                "BOOL_AND(mailbox_done), COUNT(ticket_id) "
                "FROM mail_ticket_inbound WHERE server_id = %s",
                server_id,
            ) == [(total, total, True, True, total)]
            assert sql(
                connection,
                "SELECT COUNT(*), COUNT(DISTINCT m.message_id) FROM mail_message m "
                "JOIN mail_ticket t ON m.model = 'mail.ticket' AND m.res_id = t.id "
                "WHERE t.fetchmail_server_id = %s AND m.message_type = 'email'",
                server_id,
            ) == [(total, total)], "every mail is in a chatter exactly once"
            connection.close()
        finally:
            shutil.rmtree(config.filestore(dbname), ignore_errors=True)
    assert all(r"\Seen" in flags for flags in imap_account.flags().values()), "drained"


# ------------------------------------------------------------------------- IMAP


def test_imap_server_stopped_mid_batch(odoo_db, ticket_server, private_dovecot):
    account = private_dovecot.new_account()
    total = 200
    subjects = [f"Postfach {index:03d}" for index in range(total)]
    fill_mailbox(account, subjects)
    server_id = ticket_server(
        port=private_dovecot.port, user=account.login, password=account.password
    )

    with reaped(odoo_db.spawn("cron")) as worker:
        started = odoo_db.wait_for(lambda env: inbound_count(env, server_id) >= 40, timeout=120)
        private_dovecot.stop()
        output = worker.communicate(timeout=120)[0].decode(errors="replace")
    assert started, output[-3000:]
    with odoo_db.env() as env:
        server = env["fetchmail.server"].browse(server_id)
        assert 40 <= inbound_count(env, server_id) < total, "stopped in the middle"
        failed_runs = server.ticket_fetch_run_ids.filtered("error")
        assert failed_runs, "the general error is in the fetch history"
        assert failed_runs[-1].fetched_count, "the first failed run had fetched mails"
        assert server.error_date and server.error_message, "and on the mail server"

    private_dovecot.start()
    drain(odoo_db, server_id)
    with odoo_db.env() as env:
        server = env["fetchmail.server"].browse(server_id)
        assert sorted(tickets_of(env, server_id).mapped("name")) == subjects, "once each"
        inbound = env["mail.ticket.inbound"].search([("server_id", "=", server_id)])
        assert len(inbound) == total and len(set(inbound.mapped("uid"))) == total
        assert set(inbound.mapped("state")) == {"done"} and all(inbound.mapped("mailbox_done"))
        assert not server.error_date and not server.error_message
    assert all(r"\Seen" in flags for flags in account.flags().values())


# ------------------------------------------------------------------------- SMTP


def test_acknowledgements_wait_for_the_smtp_server(
    odoo_db, ticket_server, imap_account, private_smtp
):
    server_id = ticket_server()
    for subject in ("Kein Netz", "Kein Strom", "Kein Kaffee"):
        imap_account.append(make_mail(subject, to=imap_account.login))
    private_smtp.stop()  # down when the acknowledgements are due
    odoo_db.run_cron()
    with odoo_db.env() as env:
        tickets = tickets_of(env, server_id)
        ticket_ids = tickets.ids
        expected = sorted(f"[{ticket.number}] {ticket.name}" for ticket in tickets)

    def acknowledgements():
        with odoo_db.env() as env:
            return env["mail.mail"].search(
                [("model", "=", "mail.ticket"), ("res_id", "in", ticket_ids)]
            )

    def received():
        return sorted(m["Subject"] for m in private_smtp.messages() if m["Subject"] in expected)

    run_cron(odoo_db, "mail_ticket.ir_cron_mail_ticket_ack")
    with odoo_db.env() as env:
        assert not any(env["mail.ticket"].browse(ticket_ids).mapped("ack_pending"))
        mails = acknowledgements().with_env(env)
        assert len(mails) == 3
        assert set(mails.mapped("state")) == {"outgoing"}, "in Odoo's queue, not failed"
        assert all("refused" in reason.lower() for reason in mails.mapped("failure_reason"))

    run_cron(odoo_db, "mail.ir_cron_mail_scheduler_action")  # still down
    with odoo_db.env() as env:
        assert set(acknowledgements().with_env(env).mapped("state")) == {"outgoing"}

    private_smtp.start()
    run_cron(odoo_db, "mail.ir_cron_mail_scheduler_action")
    assert received() == expected
    run_cron(odoo_db, "mail.ir_cron_mail_scheduler_action")
    run_cron(odoo_db, "mail_ticket.ir_cron_mail_ticket_ack")
    assert received() == expected, "each acknowledgement exactly once"
    with odoo_db.env() as env:
        assert set(acknowledgements().with_env(env).mapped("state")) <= {"sent"}
        notifications = env["mail.notification"].search(
            [
                ("mail_message_id.model", "=", "mail.ticket"),
                ("mail_message_id.res_id", "in", ticket_ids),
                ("notification_type", "=", "email"),
            ]
        )
        assert len(notifications) == 3
        assert set(notifications.mapped("notification_status")) == {"sent"}


# ----------------------------------------------------------------------- alerts


def test_mailbox_down_too_long_is_reported_then_its_recovery(
    odoo_db, ticket_server, private_dovecot
):
    account = private_dovecot.new_account()
    account.append(make_mail("Während der Störung"))
    server_id = ticket_server(
        port=private_dovecot.port, user=account.login, password=account.password
    )
    with odoo_db.env() as env:
        name = env["fetchmail.server"].browse(server_id).name
        manager = env["res.users"].create(
            {
                "name": "Helga Helpdesk",
                "login": f"manager-{account.login}",
                "email": f"manager-{account.login}",
                "group_ids": [(4, env.ref("mail_ticket.mail_ticket_group_manager").id)],
            }
        )
        manager_partner_id = manager.partner_id.id
        channel_id = env.ref("mail.channel_admin").id

    def admin_posts():
        with odoo_db.env() as env:
            posts = env["mail.message"].search(
                [("model", "=", "discuss.channel"), ("res_id", "=", channel_id)], order="id"
            )
            return [html for html in posts.mapped("body") if name in html]

    def manager_notices():
        with odoo_db.env() as env:
            return (
                env["mail.message"]
                .search(
                    [
                        ("message_type", "=", "user_notification"),
                        ("partner_ids", "in", [manager_partner_id]),
                    ],
                    order="id",
                )
                .mapped("subject")
            )

    private_dovecot.stop()
    odoo_db.run_cron()
    with odoo_db.env() as env:
        server = env["fetchmail.server"].browse(server_id)
        assert server.error_date and not server.date_ticket_alert
        # the outage began over an hour ago (the default alert delay is 60 minutes)
        server.error_date -= timedelta(minutes=61)
    assert not admin_posts()

    odoo_db.run_cron()
    (alert,) = admin_posts()
    assert "Connection refused" in alert
    assert manager_notices() == [f"Mailbox {name} fails"]
    odoo_db.run_cron()
    assert len(admin_posts()) == 1, "told once per outage"

    private_dovecot.start()
    odoo_db.run_cron()
    alert, recovery = admin_posts()
    assert f"Mail server {name} works again" in recovery
    assert manager_notices() == [f"Mailbox {name} fails", f"Mailbox {name} works again"]
    with odoo_db.env() as env:
        server = env["fetchmail.server"].browse(server_id)
        assert not server.error_date and not server.date_ticket_alert
        assert tickets_of(env, server_id).mapped("name") == ["Während der Störung"]
