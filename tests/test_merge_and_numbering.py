"""Merged tickets and renamed number prefixes, over real IMAP and SMTP.

The customer keeps answering the mails they received: after an agent merged their
duplicate ticket, and after the company renamed its number prefix, their replies (with
or without the threading headers) still reach the right ticket.
"""

import pytest
from odoo_env import make_mail
from test_conversation import reply_to, run_acknowledgements


@pytest.fixture
def numbering(odoo_db):
    """The ticket numbering, restored after the test (the database is the session's)."""
    with odoo_db.env() as env:
        sequence = env.ref("mail_ticket.seq_mail_ticket")
        saved = sequence.prefix, sequence.padding
    yield
    with odoo_db.env() as env:
        env.ref("mail_ticket.seq_mail_ticket").write({"prefix": saved[0], "padding": saved[1]})


def set_numbering(odoo_db, prefix, padding):
    with odoo_db.env() as env:
        settings = env["res.config.settings"].create(
            {"mail_ticket_number_prefix": prefix, "mail_ticket_number_padding": padding}
        )
        settings.execute()


def test_replies_reach_merged_and_renumbered_tickets(
    odoo_db, ticket_server, imap_account, smtp_outbox, numbering
):
    server_id = ticket_server()
    support = imap_account.login
    imap_account.append(make_mail("Drucker druckt nicht", to=support))
    imap_account.append(make_mail("Drucker immer noch kaputt", to=support))
    odoo_db.run_cron()
    run_acknowledgements(odoo_db)
    acks = {ack["Subject"]: ack for ack in smtp_outbox.wait_for(2)}
    with odoo_db.env() as env:
        first, duplicate = env["mail.ticket"].search(
            [("fetchmail_server_id", "=", server_id)], order="id"
        )
        first_id, duplicate_id = first.id, duplicate.id
        duplicate_ack = acks[f"[{duplicate.number}] Drucker immer noch kaputt"]
        # the agent merges the duplicate, then the company renames its prefix
        env["mail.ticket.merge"].create(
            {"ticket_ids": (first | duplicate).ids, "target_ticket_id": first.id}
        ).action_merge()
    set_numbering(odoo_db, "SUP-", 5)

    # the customer answers the duplicate's acknowledgement, threaded and not
    imap_account.append(reply_to(duplicate_ack, "Er druckt jetzt rosa Seiten."))
    imap_account.append(reply_to(duplicate_ack, "Und jetzt gar nichts.", threaded=False))
    # and writes about something new: a ticket with the new prefix
    imap_account.append(make_mail("Bildschirm flackert", to=support))
    odoo_db.run_cron()
    with odoo_db.env() as env:
        first = env["mail.ticket"].browse(first_id)
        bodies = " ".join(first.comment_ids.mapped("body"))
        assert "rosa Seiten" in bodies and "gar nichts" in bodies
        assert not env["mail.ticket"].browse(duplicate_id).active
        screen = env["mail.ticket"].search(
            [("fetchmail_server_id", "=", server_id), ("name", "=", "Bildschirm flackert")]
        )
        assert screen.number.startswith("SUP-") and len(screen.number) == 9
        screen_id, screen_number = screen.id, screen.number
        assert env["mail.ticket"].search_count([("fetchmail_server_id", "=", server_id)]) == 2
    smtp_outbox.clear()
    run_acknowledgements(odoo_db)
    (screen_ack,) = smtp_outbox.wait_for(1)
    assert screen_ack["Subject"] == f"[{screen_number}] Bildschirm flackert"
    imap_account.append(reply_to(screen_ack, "Flackert weiter.", threaded=False))
    odoo_db.run_cron()
    with odoo_db.env() as env:
        assert "Flackert weiter" in env["mail.ticket"].browse(screen_id).comment_ids.body
