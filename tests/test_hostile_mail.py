"""Hostile mails through the real IMAP fetch: none fails, none blocks the mail behind it.

Every hostile mail (tests/hostile_mail.py) is followed in the mailbox by an ordinary
customer mail; Odoo's fetchmail cron runs until the mailbox is drained. Their cost is
measured by bench/hostile.py, not here.
"""

from hostile_mail import HOSTILE, big_body
from odoo_env import make_mail
from test_imap_ingestion import drain, inbound_of


def assert_processed(inbound, what):
    assert inbound.state in ("done", "ignored"), f"{what}: {inbound.state}: {inbound.error}"
    if inbound.state == "ignored":
        assert inbound.error, f"{what}: ignored without a reason"


def test_hostile_mails_become_tickets_and_block_nothing(odoo_db, ticket_server, imap_account):
    server_id = ticket_server()
    uids = {}
    for name, (build, _fragment) in HOSTILE.items():
        uids[name] = imap_account.append(build())
        uids[f"after {name}"] = imap_account.append(make_mail(f"Normal nach {name}"))
    drain(odoo_db, server_id)

    with odoo_db.env() as env:
        by_uid = {inbound.uid: inbound for inbound in inbound_of(env, server_id)}
        assert set(by_uid) == set(uids.values()), "every mail is recorded"
        for name, (_build, fragment) in HOSTILE.items():
            hostile = by_uid[uids[name]]
            assert_processed(hostile, name)
            assert hostile.state == "done" and hostile.is_new_ticket, name
            assert fragment in hostile.ticket_id.description, name
            after = by_uid[uids[f"after {name}"]]
            assert after.state == "done", f"the mail after {name}: {after.error}"
            assert after.ticket_id.name == f"Normal nach {name}"

        attachments = by_uid[uids["500 attachments"]].ticket_id.message_ids.attachment_ids
        assert len(attachments) == 500
        subject = by_uid[uids["10,000-character subject"]].ticket_id.name
        assert subject.startswith("Lang xxx") and len(subject) >= 9990
        parser_bug = by_uid[uids["From parser bug"]].ticket_id
        assert parser_bug.partner_id.email_normalized == "sylvie.lelitre@agrolait.example.com"
        dated = by_uid[uids["Date with %"]].ticket_id.message_ids[-1:]
        assert dated.date.year == 2001, "a three-digit year is read as RFC 5322 says"
        assert by_uid[uids["CR/LF in encoded subject"]].ticket_id
    assert not imap_account.uids("INBOX", "UNSEEN"), "every mail is handled in the mailbox"


def test_twenty_megabyte_body(odoo_db, ticket_server, imap_account):
    server_id = ticket_server()
    raw = big_body(20)
    assert 20 * 1024 * 1024 <= len(raw) < 25 * 1024 * 1024, "under the default size limit"
    big_uid = imap_account.append(raw)
    after_uid = imap_account.append(make_mail("Normal nach dem Protokoll"))
    drain(odoo_db, server_id)

    with odoo_db.env() as env:
        by_uid = {inbound.uid: inbound for inbound in inbound_of(env, server_id)}
        big = by_uid[big_uid]
        assert_processed(big, "20 MB body")
        assert big.state == "done" and big.size == len(raw)
        assert big.ticket_id.name == "Riesiges Protokoll"
        assert by_uid[after_uid].ticket_id.name == "Normal nach dem Protokoll"


def test_mailbox_action_failure_keeps_mails_processed(odoo_db, ticket_server, imap_account):
    """The mailbox refuses the move (Dovecot allows no "/" in a folder name): the mails
    stay tickets, the failure is noted on them, and the next run moves them once it can."""
    server_id = ticket_server(ticket_processed_action="move", ticket_processed_folder="Fertig/Neu")
    imap_account.append(make_mail("Erste"))
    imap_account.append(make_mail("Zweite"))
    odoo_db.run_cron()

    with odoo_db.env() as env:
        inbounds = inbound_of(env, server_id)
        assert inbounds.mapped("state") == ["done", "done"]
        assert inbounds.ticket_id.mapped("name") == ["Erste", "Zweite"]
        assert not any(inbounds.mapped("mailbox_done"))
        assert all("mailbox action after processing failed" in e for e in inbounds.mapped("error"))
        server = env["fetchmail.server"].browse(server_id)
        assert not server.ticket_fetch_run_ids[:1].error, "the run itself went on"
        server.ticket_processed_folder = "Fertig"
    assert len(imap_account.uids()) == 2

    odoo_db.run_cron()
    with odoo_db.env() as env:
        inbounds = inbound_of(env, server_id)
        assert all(inbounds.mapped("mailbox_done"))
        assert not any(inbounds.mapped("error")), "the note goes once the action is applied"
        assert len(inbounds.ticket_id) == 2, "never processed twice"
    assert imap_account.uids() == []
    assert len(imap_account.uids("Fertig")) == 2
