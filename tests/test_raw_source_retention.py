"""Raw sources of mails that gave up are removed after the retention period; the record
of the mail stays, and Retry still finds the mail in the real mailbox."""

from datetime import timedelta

from odoo_env import foreign_team, make_mail

from odoo import fields

POISON = make_mail(
    "Kaufen Sie jetzt", sender="Spam <spam@spam.example>", message_id="<retention@spam.example>"
)


def inbound_of(env, server_id):
    return env["mail.ticket.inbound"].search([("server_id", "=", server_id)])


def test_raw_source_removed_then_retried_from_the_mailbox(odoo_db, ticket_server, imap_account):
    with odoo_db.env() as env:  # no new ticket of this mailbox can be created
        stranger_team_id = foreign_team(env, imap_account.login)
    server_id = ticket_server(ticket_max_attempts=1, ticket_team_id=stranger_team_id)
    uid = imap_account.append(POISON)
    odoo_db.run_cron()
    with odoo_db.env() as env:
        failed = inbound_of(env, server_id)
        assert (failed.uid, failed.state, failed.attempts) == (uid, "failed", 1)
        assert failed._stored_raw() == POISON
        # the last attempt, 31 days ago (the default retention is 30 days)
        failed.date_processed = fields.Datetime.now() - timedelta(days=31)

    with odoo_db.env() as env:
        env.ref("mail_ticket.ir_cron_mail_ticket_purge_raw_sources").method_direct_trigger()
    with odoo_db.env() as env:
        failed = inbound_of(env, server_id)
        assert failed.state == "failed" and failed.error, "the record stays"
        assert not failed.raw_source and failed.date_raw_source_removed
        assert not env["ir.attachment"].search(
            [("res_model", "=", "mail.ticket.inbound"), ("res_id", "=", failed.id)]
        )
        failed.action_retry()

    with odoo_db.env() as env:
        failed = inbound_of(env, server_id)
        assert (failed.state, failed.attempts) == ("failed", 1)
        assert failed._stored_raw() == POISON, "downloaded again from the mailbox"
        assert not failed.date_raw_source_removed
    assert uid in imap_account.uids(), "a mail that failed stays in the mailbox"
