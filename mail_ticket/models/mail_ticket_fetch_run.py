from datetime import timedelta

from odoo import api, fields, models


class MailTicketFetchRun(models.Model):
    """What one fetch of a ticket mailbox did: the history shown on the mail server.

    Written by the fetch as superuser only: nobody has write access to it.
    """

    _name = "mail.ticket.fetch.run"
    _description = "Mailbox Fetch Run"
    _order = "id desc"
    _rec_name = "date"

    server_id = fields.Many2one(
        "fetchmail.server", string="Mail Server", required=True, ondelete="cascade", index=True
    )
    date = fields.Datetime(string="Started On", required=True, default=fields.Datetime.now)
    trigger = fields.Selection(
        [("cron", "Schedule"), ("push", "Push"), ("manual", "Fetch Now")],
        string="Started By",
        default="cron",
        required=True,
        help="Schedule: the mailbox's polling interval. Push: the mail server announced a "
        "new mail to the push listener (IMAP IDLE). Fetch Now: a user.",
    )
    idle_event_count = fields.Integer(
        help="The push announcements counted when the run ended: a run after more is the push's."
    )
    duration = fields.Float(string="Duration (s)", digits=(16, 2))
    folder = fields.Char()
    fetched_count = fields.Integer(string="Fetched")
    created_count = fields.Integer(string="Created")
    updated_count = fields.Integer(string="Updated")
    ignored_count = fields.Integer(string="Ignored")
    failed_count = fields.Integer(string="Failed")
    retried_count = fields.Integer(string="Retried")
    left_count = fields.Integer(string="Left for Next Run")
    error = fields.Text(help="Connection or protocol error that stopped the run.")
    check_count = fields.Integer(
        string="Checks",
        default=1,
        help="Runs counted on this row: the run it records and the runs after it that "
        "found nothing to do.",
    )
    date_last_check = fields.Datetime(
        string="Last Checked On", help="The last of the runs counted on this row."
    )
    company_id = fields.Many2one(
        related="server_id.ticket_company_id", store=True, index=True, string="Company"
    )

    @api.autovacuum
    def _gc_fetch_runs(self):
        """Keep three months of history."""
        self.sudo().search([("date", "<", fields.Datetime.now() - timedelta(days=90))]).unlink()
