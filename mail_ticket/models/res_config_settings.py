import re

from odoo import api, fields, models
from odoo.exceptions import ValidationError


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    mail_ticket_fetch_interval = fields.Integer(
        string="Fetch Interval (minutes)",
        compute="_compute_mail_ticket_fetch_interval",
        inverse="_inverse_mail_ticket_fetch_interval",
        readonly=False,
        help="How often the incoming mail servers are read by Odoo's fetchmail cron; "
        "ticket mailboxes have their own interval, on the mail server.",
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

    mail_ticket_number_prefix = fields.Char(
        string="Ticket Number Prefix",
        compute="_compute_mail_ticket_numbering",
        inverse="_inverse_mail_ticket_numbering",
        readonly=False,
        help="Put before the counter of new ticket numbers. Mails naming numbers issued "
        "under an earlier prefix still reach their tickets.",
    )
    mail_ticket_number_padding = fields.Integer(
        string="Ticket Number Digits",
        compute="_compute_mail_ticket_numbering",
        inverse="_inverse_mail_ticket_numbering",
        readonly=False,
        help="The counter is padded with zeros to that many digits.",
    )
    mail_ticket_waiting_hours = fields.Integer(
        string="Waiting Too Long (hours)",
        config_parameter="mail_ticket.waiting_hours",
        default=24,
        help="An open ticket whose customer has waited longer than that for an answer is "
        "found by the filter Waiting Too Long.",
    )

    mail_ticket_sla_warning_hours = fields.Float(
        string="SLA Warning (working hours)",
        config_parameter="mail_ticket.sla_warning_hours",
        default=1.0,
        help="A ticket due within that many working hours of its team gives its agent "
        "(or, unassigned, the team's first member) a To-Do activity, once.",
    )

    @api.model
    def _mail_ticket_sequence(self):
        """The sequence that numbers the tickets of the current company."""
        return (
            self.env["ir.sequence"]
            .sudo()
            .search(
                [("code", "=", "mail.ticket"), ("company_id", "in", [self.env.company.id, False])],
                order="company_id",
                limit=1,
            )
        )

    def _compute_mail_ticket_numbering(self):
        sequence = self._mail_ticket_sequence()
        for settings in self:
            settings.mail_ticket_number_prefix = sequence.prefix
            settings.mail_ticket_number_padding = sequence.padding

    def _inverse_mail_ticket_numbering(self):
        sequence = self._mail_ticket_sequence()
        for settings in self:
            prefix = settings.mail_ticket_number_prefix or ""
            padding = settings.mail_ticket_number_padding
            if not sequence or (sequence.prefix or "", sequence.padding) == (prefix, padding):
                continue
            # a number must split back into prefix and counter (mail_ticket.split_number)
            if not re.fullmatch(r"[^\[\]%\s\d][^\[\]%\n]{0,30}", prefix) or prefix[-1].isdigit():
                raise ValidationError(
                    self.env._(
                        "The ticket number prefix must be 1 to 31 characters, start with no "
                        "digit nor space, end with no digit, and hold no brackets: %(prefix)s",
                        prefix=prefix,
                    )
                )
            if not 1 <= padding <= 9:
                raise ValidationError(self.env._("A ticket number has 1 to 9 digits."))
            sequence.write({"prefix": prefix, "padding": padding})

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
