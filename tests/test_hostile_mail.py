"""Failures around one mail through the real IMAP fetch: they stay with that mail."""

from odoo_env import make_mail
from test_imap_ingestion import inbound_of


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
