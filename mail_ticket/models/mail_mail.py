import logging
from datetime import timedelta

from odoo import fields, models

_logger = logging.getLogger(__name__)

SMTP_RETRY_DELAY = timedelta(minutes=5)  # the mail queue tries again that much later
SMTP_RETRY_PERIOD = timedelta(days=2)  # then a mail is left failed, as Odoo leaves it


class MailMail(models.Model):
    _inherit = "mail.mail"

    def _postprocess_sent_message(
        self, success_pids, success_emails, failure_reason=False, failure_type=None
    ):
        """Odoo marks the mails it could not connect to the outgoing server for as failed
        ("mail_smtp") and its queue sends only outgoing mails: an acknowledgement sent by
        the cron while the SMTP server was down would never leave. Ticket mails go back
        to the queue instead: none of their bytes were sent, so nothing is sent twice."""
        requeued = self.browse()
        if failure_type == "mail_smtp":
            requeued = self._ticket_requeue_unsent(failure_reason)
        return super(MailMail, self - requeued)._postprocess_sent_message(
            success_pids, success_emails, failure_reason=failure_reason, failure_type=failure_type
        )

    def _ticket_requeue_unsent(self, failure_reason):
        """Put the ticket mails back in the queue; return them."""
        now = fields.Datetime.now()
        mails = self.filtered(
            lambda mail: mail.model == "mail.ticket" and mail.create_date > now - SMTP_RETRY_PERIOD
        )
        if mails:
            mails.write({"state": "outgoing"})
            self.env.ref("mail.ir_cron_mail_scheduler_action").sudo()._trigger(
                now + SMTP_RETRY_DELAY
            )
            _logger.warning(
                "Outgoing mail server unreachable (%s): %d ticket mail(s) queued again, next "
                "attempt in %s",
                failure_reason,
                len(mails),
                SMTP_RETRY_DELAY,
            )
        return mails
