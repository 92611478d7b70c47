"""Mail from a real Dovecot mailbox to tickets, through Odoo's fetchmail cron.

Every test reads its own IMAP account with its own Incoming Mail Server record, and
drives the real "Mail: Fetchmail Service" cron (or a separate Odoo process running it).
"""

import contextlib
import imaplib
import signal
from email import message_from_bytes
from email.policy import default as default_policy
from unittest.mock import patch

import pytest
from hostile_mail import big_body
from odoo_env import foreign_team, make_mail, make_team

from odoo.exceptions import UserError

from odoo.addons.mail_ticket.tools.imap_mailbox import ImapMailbox
from odoo.addons.mail_ticket.tools.mailbox_ingestion import MailboxIngestion

POISON = make_mail(
    "Kaufen Sie jetzt", sender="Spam <spam@spam.example>", message_id="<poison@spam.example>"
)


def tickets_of(env, server_id):
    return env["mail.ticket"].search([("fetchmail_server_id", "=", server_id)], order="id")


def inbound_of(env, server_id):
    return env["mail.ticket.inbound"].search([("server_id", "=", server_id)], order="uid")


def drain(odoo_db, server_id, max_runs=30):
    """Run the cron until the server's last fetch left nothing; return the number of runs."""
    for runs in range(1, max_runs + 1):
        odoo_db.run_cron()
        with odoo_db.env() as env:
            if not env["fetchmail.server"].browse(server_id).ticket_fetch_run_ids[:1].left_count:
                return runs
    raise AssertionError(f"the mailbox does not drain in {max_runs} cron runs")


@contextlib.contextmanager
def imap_commands():
    """Record the IMAP commands this process sends (the real server answers them)."""
    sent = []
    command = imaplib.IMAP4._command

    def spy(connection, name, *args):
        sent.append(f"UID {args[0]}" if name == "UID" else name)
        return command(connection, name, *args)

    with patch.object(imaplib.IMAP4, "_command", spy):
        yield sent


def ticket_names(odoo_db, server_id):
    with odoo_db.env() as env:
        return tickets_of(env, server_id).mapped("name")


def test_mail_becomes_ticket_and_reply_a_comment(odoo_db, ticket_server, imap_account):
    server_id = ticket_server()
    imap_account.append(make_mail("Drucker druckt nicht", message_id="<first@agrolait.example>"))
    # read by a person in their mail client before Odoo fetched it
    imap_account.append(
        make_mail("Bildschirm flackert", sender="Hans Müller <hans@beispiel.example>"),
        flags=r"\Seen",
    )
    odoo_db.run_cron()

    with odoo_db.env() as env:
        printer, screen = tickets_of(env, server_id)
        assert (printer.name, screen.name) == ("Drucker druckt nicht", "Bildschirm flackert")
        assert printer.number.startswith("TICKET-") and printer.created_from_email
        assert "nur leere Seiten" in printer.description
        assert printer.partner_id.email_normalized == "sylvie.lelitre@agrolait.example.com"
        assert screen.partner_id.name == "Hans Müller"
        assert printer.stage_id == env.ref("mail_ticket.stage_open")
        number = printer.number

    imap_account.append(
        make_mail(f"AW: [{number}] Drucker druckt nicht", body="Neustart hat nicht geholfen.")
    )
    imap_account.append(
        make_mail("Re: noch eine Frage", headers={"In-Reply-To": "<first@agrolait.example>"})
    )
    odoo_db.run_cron()

    with odoo_db.env() as env:
        printer, screen = tickets_of(env, server_id)
        assert len(tickets_of(env, server_id)) == 2, "replies open no ticket"
        assert printer.comment_ids.mapped("is_from_email") == [True, True]
        assert "Neustart" in printer.comment_ids[0].body
        runs = env["fetchmail.server"].browse(server_id).ticket_fetch_run_ids
        assert [
            (r.fetched_count, r.created_count, r.updated_count, r.failed_count) for r in runs
        ] == [
            (2, 0, 2, 0),
            (2, 2, 0, 0),
        ]
    # default after-processing action: every processed mail is flagged read
    assert all(r"\Seen" in flags for flags in imap_account.flags().values())
    assert len(imap_account.uids()) == 4


@pytest.mark.parametrize("action", ["seen", "move", "delete"])
def test_after_processing_action(odoo_db, ticket_server, imap_account, action):
    server_id = ticket_server(ticket_processed_action=action, ticket_processed_folder="Geprüft")
    for subject in ("Eins", "Zwei", "Drei"):
        imap_account.append(make_mail(subject))
    odoo_db.run_cron()

    assert ticket_names(odoo_db, server_id) == ["Eins", "Zwei", "Drei"]
    inbox = imap_account.uids()
    if action == "seen":
        assert len(inbox) == 3
        assert all(r"\Seen" in flags for flags in imap_account.flags().values())
    elif action == "move":
        assert inbox == []
        assert "Geprüft" in imap_account.folders()
        moved = [
            message_from_bytes(imap_account.fetch(uid, "Geprüft"), policy=default_policy)
            for uid in imap_account.uids("Geprüft")
        ]
        assert [m["Subject"] for m in moved] == ["Eins", "Zwei", "Drei"]
    else:
        assert inbox == []
        assert "Geprüft" not in imap_account.folders()
    with odoo_db.env() as env:
        assert all(inbound_of(env, server_id).mapped("mailbox_done"))


def test_failed_mail_is_kept_retried_and_blocks_nothing(odoo_db, ticket_server, imap_account):
    server_id = ticket_server(ticket_max_attempts=3)
    imap_account.append(make_mail("Vorher"))
    odoo_db.run_cron()
    with odoo_db.env() as env:
        number = tickets_of(env, server_id).number
        # from now on no new ticket of this mailbox can be created; replies still work
        server = env["fetchmail.server"].browse(server_id)
        server.ticket_team_id = foreign_team(env, imap_account.login)
    imap_account.append(make_mail(f"Re: [{number}] Vorher", body="Erste Antwort"))
    poison_uid = imap_account.append(POISON)
    imap_account.append(make_mail(f"Re: [{number}] Vorher", body="Zweite Antwort"))
    odoo_db.run_cron()

    def comments():
        with odoo_db.env() as env:
            return [c.body for c in tickets_of(env, server_id).comment_ids]

    assert ticket_names(odoo_db, server_id) == ["Vorher"]
    assert ["Erste" in body for body in comments()] == [True, False], "the mail behind it too"
    with odoo_db.env() as env:
        failed = inbound_of(env, server_id).filtered(lambda i: i.state == "failed")
        assert failed.uid == poison_uid
        assert failed.attempts == 1
        assert "compan" in failed.error.lower()
        assert failed._stored_raw() == POISON, "the raw source is kept as fetched"
        assert failed.message_id == "<poison@spam.example>"
        assert env["fetchmail.server"].browse(server_id).ticket_failed_count == 1
    flags = imap_account.flags()
    assert r"\Seen" not in flags[poison_uid], "a failed mail is left as it was in the mailbox"

    for expected_attempts in (2, 3, 3):  # retried on the next runs, up to the maximum
        odoo_db.run_cron()
        with odoo_db.env() as env:
            failed = inbound_of(env, server_id).filtered(lambda i: i.uid == poison_uid)
            assert (failed.state, failed.attempts) == ("failed", expected_attempts)
    assert ticket_names(odoo_db, server_id) == ["Vorher"]
    assert len(comments()) == 2


def test_admin_fixes_the_cause_and_retries(odoo_db, ticket_server, imap_account):
    """A default assignee of another company makes every new ticket fail; once the admin
    corrects the server, "Retry" processes the kept raw source."""
    with odoo_db.env() as env:
        stranger_team_id = foreign_team(env, imap_account.login)
    server_id = ticket_server(ticket_team_id=stranger_team_id)
    uid = imap_account.append(make_mail("Rechnung falsch"))
    odoo_db.run_cron()
    with odoo_db.env() as env:
        failed = inbound_of(env, server_id)
        assert failed.state == "failed" and "compan" in failed.error.lower()
        assert not tickets_of(env, server_id)
        env["fetchmail.server"].browse(server_id).ticket_team_id = False
    with odoo_db.env() as env:
        inbound_of(env, server_id).action_retry()
    with odoo_db.env() as env:
        done = inbound_of(env, server_id)
        assert done.state == "done" and not done.raw_source
        assert done.ticket_id.name == "Rechnung falsch"
        assert done.is_new_ticket
    assert r"\Seen" not in imap_account.flags()[uid]
    odoo_db.run_cron()  # the next run applies the after-processing action
    assert r"\Seen" in imap_account.flags()[uid]


def test_size_limit(odoo_db, ticket_server, imap_account):
    server_id = ticket_server(ticket_max_size=1)
    big = make_mail("Scan", attachment=("scan.bin", b"\x01" * (1536 * 1024)))
    big_uid = imap_account.append(big)
    imap_account.append(make_mail("Klein"))
    odoo_db.run_cron()

    assert ticket_names(odoo_db, server_id) == ["Klein"]
    with odoo_db.env() as env:
        failed = inbound_of(env, server_id).filtered(lambda i: i.state == "failed")
        assert failed.uid == big_uid and failed.size == len(big)
        assert "over the 1 MB limit" in failed.error
        assert not failed.raw_source, "an oversized mail is not downloaded"
    assert big_uid in imap_account.uids()
    assert r"\Seen" not in imap_account.flags()[big_uid]

    odoo_db.run_cron()  # not retried by itself
    with odoo_db.env() as env:
        assert inbound_of(env, server_id).filtered(lambda i: i.uid == big_uid).state == "failed"
        env["fetchmail.server"].browse(server_id).ticket_max_size = 5
    with odoo_db.env() as env:
        inbound_of(env, server_id).filtered(lambda i: i.uid == big_uid).action_retry()
    with odoo_db.env() as env:
        ticket = tickets_of(env, server_id).filtered(lambda t: t.name == "Scan")
        assert ticket.message_ids.attachment_ids.mapped("name") == ["scan.bin"]


def test_uidvalidity_change_duplicates_nothing(odoo_db, ticket_server, imap_account):
    first, second = make_mail("Eins"), make_mail("Zwei")
    imap_account.append(first, folder="Support")
    imap_account.append(second, folder="Support")
    server_id = ticket_server(ticket_folder="Support")
    odoo_db.run_cron()
    old_validity = imap_account.uidvalidity("Support")

    client = imap_account.client()
    client.delete('"Support"')  # the mailbox is rebuilt: same mails, new UIDVALIDITY
    client.logout()
    for raw in (first, second, make_mail("Drei")):
        imap_account.append(raw, folder="Support")
    assert imap_account.uidvalidity("Support") != old_validity
    odoo_db.run_cron()

    assert ticket_names(odoo_db, server_id) == ["Eins", "Zwei", "Drei"]
    with odoo_db.env() as env:
        rebuilt = inbound_of(env, server_id).filtered(
            lambda i: i.uidvalidity != old_validity and i.state == "ignored"
        )
        assert len(rebuilt) == 2
        assert all("Already processed" in error for error in rebuilt.mapped("error"))


def test_kill_9_mid_batch_loses_and_duplicates_nothing(odoo_db, ticket_server, imap_account):
    server_id = ticket_server()
    total = 300
    for index in range(total):
        imap_account.append(make_mail(f"Anfrage {index:03d}"))

    worker = odoo_db.spawn("cron")
    started = odoo_db.wait_for(
        lambda env: env["mail.ticket.inbound"].search_count([("server_id", "=", server_id)]) >= 40,
        timeout=120,
    )
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)
    assert started, worker.stdout.read().decode(errors="replace")[-3000:]
    with odoo_db.env() as env:
        done_before = len(inbound_of(env, server_id))
    assert 40 <= done_before < total, "the process died in the middle of the mailbox"

    drain(odoo_db, server_id)
    with odoo_db.env() as env:
        tickets = tickets_of(env, server_id)
        inbound = inbound_of(env, server_id)
        assert sorted(tickets.mapped("name")) == [f"Anfrage {i:03d}" for i in range(total)]
        assert len(inbound) == total and set(inbound.mapped("state")) == {"done"}
        assert len(set(inbound.mapped("uid"))) == total
        messages = env["mail.message"].search(
            [
                ("model", "=", "mail.ticket"),
                ("res_id", "in", tickets.ids),
                ("message_type", "=", "email"),
            ]
        )
        assert len(messages) == total, "every mail is in a chatter exactly once"
    assert all(r"\Seen" in flags for flags in imap_account.flags().values())


def test_concurrent_fetchers_do_not_duplicate(odoo_db, ticket_server, imap_account):
    server_id = ticket_server()
    total = 120
    for index in range(total):
        imap_account.append(make_mail(f"Frage {index:03d}"))

    workers = [odoo_db.spawn("cron"), odoo_db.spawn("fetch-now", server_id)]
    outputs = [worker.communicate(timeout=300)[0].decode(errors="replace") for worker in workers]
    drain(odoo_db, server_id)  # whatever both left

    with odoo_db.env() as env:
        names = tickets_of(env, server_id).mapped("name")
        assert sorted(names) == [f"Frage {i:03d}" for i in range(total)], outputs
        assert len(inbound_of(env, server_id)) == total


def test_big_mailbox_drains_over_several_runs_oldest_first(odoo_db, ticket_server, imap_account):
    total = 2000
    client = imap_account.client()
    for index in range(total):
        client.append("INBOX", None, None, make_mail(f"Massenmail {index:04d}"))
    client.logout()
    server_id = ticket_server()

    runs = drain(odoo_db, server_id)
    assert runs > 1, "a cron run is bounded in time, so 2000 mails take several"

    with odoo_db.env() as env:
        tickets = tickets_of(env, server_id)
        assert tickets.mapped("name") == [f"Massenmail {i:04d}" for i in range(total)]
        numbers = [int(n.removeprefix("TICKET-")) for n in tickets.mapped("number")]
        assert numbers == sorted(numbers), "oldest mail first"
        history = env["fetchmail.server"].browse(server_id).ticket_fetch_run_ids
        assert sum(history.mapped("created_count")) == total
    assert len(imap_account.uids("INBOX", "UNSEEN")) == 0


def test_server_form_buttons_and_defaults(odoo_db, ticket_server, imap_account):
    with odoo_db.env() as env:
        tag = env["mail.ticket.tag"].create({"name": f"Hotline {imap_account.login}"})
        tag_id = tag.id
        admin_id = env.ref("base.user_admin").id
        team_id = make_team(env, assignment="user", assign_user_id=admin_id)
    server_id = ticket_server(
        ticket_team_id=team_id, ticket_priority="2", ticket_tag_ids=[(6, 0, [tag_id])]
    )
    imap_account.append(make_mail("Bitte zurückrufen"))
    with odoo_db.env() as env:
        action = env["fetchmail.server"].browse(server_id).fetch_mail()
        assert "1 new ticket(s)" in action["params"]["message"]
    with odoo_db.env() as env:
        ticket = tickets_of(env, server_id)
        assert (ticket.user_id.id, ticket.priority, ticket.tag_ids.ids) == (admin_id, "2", [tag_id])

    with odoo_db.env() as env:
        server = env["fetchmail.server"].browse(server_id)
        server.set_draft()
        server.ticket_folder = "Gibt es nicht"
        with pytest.raises(UserError, match="Gibt es nicht"):
            server.button_confirm_login()


def test_idle_poll_is_one_status_command(odoo_db, ticket_server, imap_account):
    server_id = ticket_server()
    imap_account.append(make_mail("Eins"))
    odoo_db.run_cron()
    with imap_commands() as sent:
        odoo_db.run_cron()
        odoo_db.run_cron()
    session = [name for name in sent if name not in ("CAPABILITY", "LOGIN", "LOGOUT")]
    assert session == ["STATUS", "STATUS"], "no SELECT, SEARCH or FETCH when nothing is new"
    with odoo_db.env() as env:
        server = env["fetchmail.server"].browse(server_id)
        runs = server.ticket_fetch_run_ids
        assert [(run.created_count, run.check_count) for run in runs] == [(1, 3)], (
            "the idle runs count on the row of the run before them"
        )
        assert server.date and not server.error_date

    imap_account.append(make_mail("Zwei"))
    with imap_commands() as sent:
        odoo_db.run_cron()
    assert sent.count("STATUS") == 1 and "UID SEARCH" in sent and "UID FETCH" in sent
    assert ticket_names(odoo_db, server_id) == ["Eins", "Zwei"]
    with odoo_db.env() as env:
        runs = env["fetchmail.server"].browse(server_id).ticket_fetch_run_ids
        assert [(run.created_count, run.check_count) for run in runs] == [(1, 1), (1, 3)]


def test_two_mailboxes_drained_by_two_cron_workers(odoo_db, ticket_server, imap_account, dovecot):
    """Each ticket mailbox has its own job: two cron workers (here two Odoo processes)
    read two mailboxes at the same time, a third one running a job already running adds
    nothing, and the shared fetchmail cron leaves both mailboxes to their jobs."""
    other = dovecot.new_account()
    total = 80
    for index in range(total):
        imap_account.append(make_mail(f"Erstes Postfach {index:03d}"))
        other.append(make_mail(f"Zweites Postfach {index:03d}"))
    first = ticket_server()
    second = ticket_server(name=f"Support {other.login}", user=other.login, password=other.password)
    with odoo_db.env() as env:
        env.ref("mail.ir_cron_mail_gateway_action").method_direct_trigger()
    with odoo_db.env() as env:
        servers = env["fetchmail.server"].browse([first, second])
        assert not env["mail.ticket.inbound"].search_count([("server_id", "in", servers.ids)])
        assert len(servers.ticket_cron_id) == 2 and all(servers.ticket_cron_id.mapped("active"))

    workers = [odoo_db.spawn("job", server_id) for server_id in (first, second, first)]
    outputs = [worker.communicate(timeout=300)[0].decode(errors="replace") for worker in workers]
    # of two workers on one job, one runs it; the other finds it running, or runs it after
    assert "worker done" in outputs[1], outputs[1][-3000:]
    assert "worker done" in outputs[0] or "worker done" in outputs[2], outputs
    assert all("worker done" in out or "already executing" in out for out in outputs), outputs
    drain(odoo_db, first)
    drain(odoo_db, second)

    with odoo_db.env() as env:
        for server_id, name in ((first, "Erstes Postfach"), (second, "Zweites Postfach")):
            tickets = tickets_of(env, server_id)
            assert sorted(tickets.mapped("name")) == [f"{name} {i:03d}" for i in range(total)]
            assert len(inbound_of(env, server_id)) == total
            assert (
                env["mail.message"].search_count(
                    [
                        ("model", "=", "mail.ticket"),
                        ("res_id", "in", tickets.ids),
                        ("message_type", "=", "email"),
                    ]
                )
                == total
            ), "every mail is in a chatter exactly once"


def test_shared_cron_reads_other_servers_and_mailboxes_without_job(
    odoo_db, ticket_server, imap_account, dovecot
):
    """The shared cron reads, in priority order, Odoo's other mail servers (as Odoo does)
    and a ticket mailbox whose own job was archived by an admin."""
    contacts = dovecot.new_account()
    with odoo_db.env() as env:
        partner_model_id = env["ir.model"]._get_id("res.partner")
    other_id = ticket_server(
        name=f"Contacts {contacts.login}",
        user=contacts.login,
        password=contacts.password,
        object_id=partner_model_id,
        priority=1,
    )
    server_id = ticket_server(priority=2)
    with odoo_db.env() as env:
        servers = env["fetchmail.server"].browse([other_id, server_id])
        assert not servers[0].ticket_cron_id, "Odoo's mail servers have no job of their own"
        servers[1].ticket_cron_id.active = False
    contacts.append(make_mail(f"Neuer Kontakt {contacts.login}"))
    imap_account.append(make_mail("Drucker druckt nicht"))
    with odoo_db.env() as env:
        env.ref("mail.ir_cron_mail_gateway_action").method_direct_trigger()

    assert ticket_names(odoo_db, server_id) == ["Drucker druckt nicht"]
    with odoo_db.env() as env:
        assert env["res.partner"].search_count([("name", "=", f"Neuer Kontakt {contacts.login}")])
    assert all(r"\Seen" in flags for flags in contacts.flags().values())


def test_mail_that_kills_its_worker_cannot_stall_the_mailbox(odoo_db, ticket_server, imap_account):
    """A mail whose processing kills the fetching process (the CPU or memory limit of a
    cron worker, an out-of-memory kill) is attempted as often as the mailbox allows, then
    recorded failed with its raw source, and the mails after it are fetched.

    The worker is killed, as the kernel or Odoo would, each time that mail is being
    processed: a 20 MB mail takes seconds, so the kill lands while it is."""
    server_id = ticket_server(ticket_max_attempts=3)
    for index in range(3):
        imap_account.append(make_mail(f"Vorher {index}"))
    poison = big_body(20)
    poison_uid = imap_account.append(poison)
    for index in range(3):
        imap_account.append(make_mail(f"Nachher {index}"))

    def attempts(env):
        return (
            env["mail.ticket.inbound.attempt"]
            .search([("server_id", "=", server_id), ("uid", "=", poison_uid)])
            .attempts
        )

    for attempt in (1, 2, 3):
        worker = odoo_db.spawn("cron")
        started = odoo_db.wait_for(lambda env, n=attempt: attempts(env) == n, timeout=180)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
        assert started, worker.stdout.read().decode(errors="replace")[-3000:]
        with odoo_db.env() as env:
            assert not inbound_of(env, server_id).filtered(lambda i: i.uid == poison_uid)

    # a job killed three times in a row is skipped once by Odoo's scheduler itself (its
    # CONSECUTIVE_TIMEOUT_FOR_FAILURE); the run after records the mail, and goes on
    for __ in range(3):
        odoo_db.run_cron()
        with odoo_db.env() as env:
            if inbound_of(env, server_id).filtered(lambda i: i.uid == poison_uid):
                break
    drain(odoo_db, server_id)
    with odoo_db.env() as env:
        inbounds = inbound_of(env, server_id)
        assert len(inbounds) == 7, "every mail is recorded, once"
        failed = inbounds.filtered(lambda i: i.uid == poison_uid)
        assert failed.state == "failed" and failed.attempts == 3
        assert "interrupted 3 times" in failed.error
        assert failed._stored_raw() == poison, "kept, to be retried by a manager"
        others = inbounds - failed
        assert set(others.mapped("state")) == {"done"}
        assert sorted(tickets_of(env, server_id).mapped("name")) == sorted(
            [f"Vorher {i}" for i in range(3)] + [f"Nachher {i}" for i in range(3)]
        ), "each other mail became one ticket"
        assert not env["mail.ticket.inbound.attempt"].search([("server_id", "=", server_id)])
    flags = imap_account.flags()
    assert r"\Seen" not in flags[poison_uid], "the failed mail waits in the mailbox"
    assert all(r"\Seen" in flags[uid] for uid in flags if uid != poison_uid)


def test_fetch_keeps_bodies_when_a_person_reads_meanwhile(imap_account):
    """Another client marks a mail read while it is fetched: the server tells in an
    untagged FETCH after the body (with its UID once QRESYNC is on). The body stays."""
    uids = [imap_account.append(make_mail(f"Mail {index}")) for index in range(3)]
    connection = imap_account.client()
    assert connection.enable("QRESYNC")[0] == "OK"
    mailbox = ImapMailbox(connection)
    mailbox.select()
    other = imap_account.client()
    other.select('"INBOX"')
    other.uid("STORE", str(uids[1]), "+FLAGS", r"(\Seen)")
    other.logout()
    bodies = mailbox.fetch(uids)
    connection.logout()
    assert sorted(bodies) == uids
    assert [message_from_bytes(bodies[uid])["Subject"] for uid in uids] == [
        "Mail 0",
        "Mail 1",
        "Mail 2",
    ]


def test_size_unknown_is_read_up_to_the_limit(odoo_db, ticket_server, imap_account):
    """A mail the server tells no size of is read up to the size limit only, and
    recorded over the limit; a UID that is gone by the time it is read gets a record."""
    server_id = ticket_server(ticket_max_size=1)
    big = imap_account.append(big_body(2))
    small = imap_account.append(make_mail("Klein"))
    gone = imap_account.append(make_mail("Weg"))
    connection = imap_account.client()
    mailbox = ImapMailbox(connection)
    mailbox.select()
    partial = mailbox.fetch([big], max_bytes=1000)
    assert len(partial[big]) == 1001, "no more than the limit and one byte is read"
    client = imap_account.client()
    client.select('"INBOX"')
    client.uid("STORE", str(gone), "+FLAGS", r"(\Deleted)")
    client.expunge()
    client.logout()
    with odoo_db.env() as env:
        server = env["fetchmail.server"].browse(server_id)
        ingestion = MailboxIngestion(server, mailbox)
        mails = ingestion._fetch([big, small, gone], sizes={})  # as from a server telling none
        assert [(mail.uid, mail.problem) for mail in mails] == [
            (big, "too_big"),
            (small, None),
            (gone, "gone"),
        ]
        assert mails[1].raw.startswith(b"From:")
        env.cr.rollback()
    connection.logout()
