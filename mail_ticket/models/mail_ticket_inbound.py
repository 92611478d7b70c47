import base64
import logging
from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.fields import Domain

from ..tools.mailbox_ingestion import MailboxIngestion

_logger = logging.getLogger(__name__)


class BigInteger(fields.Integer):
    """An integer stored as ``bigint``: IMAP UIDs and UIDVALIDITY are unsigned 32-bit."""

    _column_type = ("int8", "int8")


class MailTicketInbound(models.Model):
    """One mail fetched from a ticket mailbox, and what became of it.

    The record is written in the transaction that processes the mail, so a mail is
    recorded if and only if its processing was committed: the highest recorded UID
    of a folder is where the next fetch resumes. The processing itself belongs to
    :class:`~odoo.addons.mail_ticket.tools.mailbox_ingestion.MailboxIngestion`.

    The records are evidence: nobody may write them (no write, create or unlink access
    right, not even for admins). The fetch writes them as superuser, and *Retry* and
    *Download* check the manager group and then act as superuser.
    """

    _name = "mail.ticket.inbound"
    _description = "Fetched Mail"
    _order = "id desc"
    _rec_name = "subject"

    server_id = fields.Many2one(
        "fetchmail.server", string="Mail Server", required=True, ondelete="cascade"
    )
    folder = fields.Char(required=True)
    uidvalidity = BigInteger(string="UIDVALIDITY", required=True)
    uid = BigInteger(string="UID", required=True)
    message_id = fields.Char(string="Message-ID", index="btree_not_null")
    email_from = fields.Char(string="From")
    subject = fields.Char()
    date = fields.Datetime(help="Date the mail was sent.")
    size = fields.Integer(help="Size of the mail in bytes.")
    state = fields.Selection(
        [("done", "Done"), ("ignored", "Ignored"), ("failed", "Failed")],
        required=True,
        index=True,
    )
    ticket_id = fields.Many2one("mail.ticket", ondelete="set null", index="btree_not_null")
    is_new_ticket = fields.Boolean(string="Created a Ticket", readonly=True)
    error = fields.Text(help="Why the mail failed or was ignored.")
    attempts = fields.Integer(help="How many times processing this mail was tried.")
    # an attachment of this field only: readable through this record alone
    raw_source = fields.Binary(
        attachment=True,
        help="The mail as it was fetched, kept while it could not be processed.",
    )
    date_raw_source_removed = fields.Datetime(
        string="Raw Source Removed On",
        help="The mail gave up and its raw source was removed after the retention period "
        "set in the Helpdesk settings; the mail may still be in the mailbox.",
    )
    mailbox_done = fields.Boolean(
        string="Handled in Mailbox",
        help="The server's after-processing action (mark read, move, delete) was applied.",
    )
    date_processed = fields.Datetime(string="Processed On")
    max_attempts = fields.Integer(related="server_id.ticket_max_attempts", string="Max Attempts")
    company_id = fields.Many2one(
        related="server_id.ticket_company_id", store=True, index=True, string="Company"
    )

    _mail_uniq = models.Constraint(
        "UNIQUE(server_id, folder, uidvalidity, uid)",
        "A mail of a mailbox folder is recorded once.",
    )
    _retry_idx = models.Index("(server_id, attempts) WHERE state = 'failed'")
    # processed mails whose after-processing action is still to apply (the idle check)
    _mailbox_action_idx = models.Index(
        "(server_id, folder, uidvalidity) WHERE state != 'failed' AND mailbox_done IS NOT TRUE"
    )

    # ------------------------------------------------------------
    # ACTIONS
    # ------------------------------------------------------------

    def action_retry(self):
        """Process failed mails again, now, whatever their attempts."""
        self._check_manager_access()
        failed = self.sudo().filtered(lambda inbound: inbound.state == "failed")
        if not failed:
            raise UserError(self.env._("Only failed mails can be retried."))
        for inbound in failed:
            if not inbound.try_lock_for_update():
                raise UserError(
                    self.env._("Mail %(subject)s is being processed.", subject=inbound.subject)
                )
            MailboxIngestion(inbound.server_id).retry(inbound, manual=True)
        return True

    def action_open_raw_source(self):
        self.ensure_one()
        self._check_manager_access()
        if not self.sudo().with_context(bin_size=True).raw_source:
            raise UserError(self.env._("The raw source of this mail was not kept."))
        # /web/content checks the read access to this record, then streams its field
        filename = f"mail-{self.uidvalidity}-{self.uid}.eml"
        return {
            "type": "ir.actions.act_url",
            "url": f"/web/content/{self._name}/{self.id}/raw_source?download=true"
            f"&filename={filename}",
            "target": "new",
        }

    def action_open_ticket(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "mail.ticket",
            "res_id": self.ticket_id.id,
            "view_mode": "form",
        }

    def _check_manager_access(self):
        """Retry and Download act as superuser: for managers, on the mails they may read."""
        if not self.env.user.has_group("mail_ticket.mail_ticket_group_manager"):
            raise AccessError(
                self.env._("Only helpdesk managers may retry fetched mails or download them.")
            )
        self.check_access("read")

    # ------------------------------------------------------------
    # RAW SOURCE
    # ------------------------------------------------------------

    def _stored_raw(self):
        """The kept raw source (bytes), or None."""
        self.ensure_one()
        raw_source = self.sudo().with_context(bin_size=False).raw_source
        return base64.b64decode(raw_source) if raw_source else None

    # ------------------------------------------------------------
    # RETENTION
    # ------------------------------------------------------------

    @api.model
    def _cron_purge_raw_sources(self, batch_size=100):
        """Remove the raw sources of the mails that gave up, after the retention period.

        The records stay: they are the evidence of what was fetched.
        """
        domain = self._purge_raw_source_domain()
        if domain.is_false():
            return
        inbounds = self.search(domain, order="id", limit=batch_size)
        if inbounds:
            inbounds._purge_raw_source()
        remaining = self.search_count(domain) if len(inbounds) == batch_size else 0
        self.env["ir.cron"]._commit_progress(len(inbounds), remaining=remaining)

    @api.model
    def _purge_raw_source_domain(self):
        days = int(
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("mail_ticket.raw_source_retention_days", 30)
        )
        if days <= 0:  # kept for ever
            return Domain.FALSE
        servers = self.env["fetchmail.server"].sudo().with_context(active_test=False).search([])
        gave_up = Domain.OR(
            Domain("server_id", "=", server.id)
            & Domain("attempts", ">=", server.ticket_max_attempts)
            for server in servers
        )
        return gave_up & Domain(
            [
                ("state", "=", "failed"),
                ("raw_source", "!=", False),
                ("date_processed", "<", fields.Datetime.now() - timedelta(days=days)),
            ]
        )

    def _purge_raw_source(self):
        self.sudo().write({"raw_source": False, "date_raw_source_removed": fields.Datetime.now()})
        _logger.info("Removed the raw source of %d mail(s) that gave up", len(self))
