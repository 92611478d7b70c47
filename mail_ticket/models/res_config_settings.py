from odoo import api, fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    mail_ticket_fetch_interval = fields.Integer(
        string="Fetch Interval (minutes)",
        compute="_compute_mail_ticket_fetch_interval",
        inverse="_inverse_mail_ticket_fetch_interval",
        readonly=False,
        help="How often the incoming mail servers are read (Odoo's fetchmail cron).",
    )

    mail_ticket_ack_rate_limit = fields.Integer(
        string="Acknowledgements per Sender and Hour",
        config_parameter="mail_ticket.ack_rate_limit",
        default=5,
        help="At most that many acknowledgements go to one sender in an hour, so that "
        "two auto-responders cannot ping-pong through the helpdesk.",
    )
    mail_ticket_mailbox_alert_minutes = fields.Integer(
        string="Report a Failing Mailbox After (minutes)",
        config_parameter="mail_ticket.mailbox_alert_minutes",
        default=60,
        help="When a ticket mailbox cannot be read (connection, login or folder) for that "
        "long, the administrators and the Helpdesk managers are told once, and again when "
        "it works again.",
    )

    mail_ticket_authserv_id = fields.Char(
        string="Trusted Mail Servers",
        config_parameter="mail_ticket.authserv_id",
        help="Comma separated authserv-ids of the mail servers that receive the support "
        "mail (the first word of the Authentication-Results headers they write, e.g. "
        "mx.example.com). Only their SPF/DKIM/DMARC verdicts count: anybody can write "
        "such a header into a mail.",
    )

    mail_ticket_raw_source_retention_days = fields.Integer(
        string="Keep Raw Sources of Failed Mails (days)",
        config_parameter="mail_ticket.raw_source_retention_days",
        default=30,
        help="A mail that failed every attempt keeps its raw source so that it can be "
        "downloaded or retried; it is removed that many days after the last attempt "
        "(the record of the mail stays). 0 keeps them for ever.",
    )

    @api.model
    def _mail_ticket_fetch_cron(self):
        return self.env.ref("mail.ir_cron_mail_gateway_action").sudo()

    def _compute_mail_ticket_fetch_interval(self):
        cron = self._mail_ticket_fetch_cron()
        minutes = {"minutes": 1, "hours": 60, "days": 1440, "weeks": 10080, "months": 43200}
        self.mail_ticket_fetch_interval = cron.interval_number * minutes.get(cron.interval_type, 1)

    def _inverse_mail_ticket_fetch_interval(self):
        for settings in self:
            if settings.mail_ticket_fetch_interval < 1:
                continue
            self._mail_ticket_fetch_cron().write(
                {
                    "interval_number": settings.mail_ticket_fetch_interval,
                    "interval_type": "minutes",
                }
            )
