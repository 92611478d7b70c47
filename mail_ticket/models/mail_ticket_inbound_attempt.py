from odoo import fields, models
from odoo.tools import SQL

from .mail_ticket_inbound import BigInteger


class MailTicketInboundAttempt(models.Model):
    """A mail of a ticket mailbox whose processing has begun and has no outcome yet.

    Written and committed before the mails of a FETCH batch are processed, removed in
    the transaction that records their outcome (``mail.ticket.inbound``): a row that
    outlives its run tells that the run was interrupted while processing that mail (its
    process was killed by the CPU or memory limit, or died). A mail interrupted as many
    times as its mailbox allows attempts is recorded failed without being processed
    again, so that no mail stalls its mailbox (see
    :class:`~odoo.addons.mail_ticket.tools.mailbox_ingestion.MailboxIngestion`).

    Technical: written by the fetch as superuser only.
    """

    _name = "mail.ticket.inbound.attempt"
    _description = "Fetched Mail Being Processed"
    _order = "id"

    server_id = fields.Many2one(
        "fetchmail.server", string="Mail Server", required=True, ondelete="cascade"
    )
    folder = fields.Char(required=True)
    uidvalidity = BigInteger(string="UIDVALIDITY", required=True)
    uid = BigInteger(string="UID", required=True)
    attempts = fields.Integer(required=True, default=1)

    _mail_uniq = models.Constraint(
        "UNIQUE(server_id, folder, uidvalidity, uid)",
        "A mail being processed is counted once.",
    )

    def _begin(self, server, folder, uidvalidity, uids):
        """Count one more attempt of the mails ``uids`` (one statement); return
        ``{uid: attempts}``, this one included."""
        if not uids:
            return {}
        self.env.cr.execute(
            SQL(
                """
                INSERT INTO mail_ticket_inbound_attempt AS attempt
                       (server_id, folder, uidvalidity, uid, attempts,
                        create_uid, write_uid, create_date, write_date)
                SELECT %(server)s, %(folder)s, %(uidvalidity)s, uid, 1,
                       %(user)s, %(user)s, %(now)s, %(now)s
                  FROM unnest(%(uids)s::bigint[]) AS uid
                    ON CONFLICT (server_id, folder, uidvalidity, uid)
                    DO UPDATE SET attempts = attempt.attempts + 1, write_date = %(now)s
                RETURNING uid, attempts
                """,
                server=server.id,
                folder=folder,
                uidvalidity=uidvalidity,
                uids=list(uids),
                user=self.env.uid,
                now=fields.Datetime.now(),
            )
        )
        self.invalidate_model()
        return dict(self.env.cr.fetchall())

    def _end(self, server, folder, uidvalidity, uids):
        """The mails ``uids`` have their outcome: forget their attempts (one statement)."""
        if not uids:
            return
        self.env.cr.execute(
            SQL(
                """
                DELETE FROM mail_ticket_inbound_attempt
                 WHERE server_id = %s AND folder = %s AND uidvalidity = %s
                   AND uid = ANY(%s::bigint[])
                """,
                server.id,
                folder,
                uidvalidity,
                list(uids),
            )
        )
        self.invalidate_model()

    def _interrupted(self, server, folder, uidvalidity):
        """``{uid: attempts}`` of the mails of the folder whose processing was interrupted;
        the attempts of a folder rebuilt since (another UIDVALIDITY) are forgotten."""
        attempts = self.search_fetch(
            [("server_id", "=", server.id), ("folder", "=", folder)],
            ["uidvalidity", "uid", "attempts"],
        )
        stale = attempts.filtered(lambda attempt: attempt.uidvalidity != uidvalidity)
        stale.unlink()
        return {attempt.uid: attempt.attempts for attempt in attempts - stale}
