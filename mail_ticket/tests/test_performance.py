from odoo.tests import tagged, users, warmup
from odoo.tools import mute_logger

from .common import MailTicketCommon


@tagged("post_install", "-at_install", "mail_ticket", "mail_performance")
class TestMailTicketPerformance(MailTicketCommon):
    """Query budget of the gateway hot path: a new ticket, and a reply on it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ticket = cls._create_customer_ticket()

    @users("admin")
    @warmup
    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_new_ticket_queries(self):
        # rating.mixin's stored rating_last_value, computed at create (1 query)
        with self.assertQueryCount(admin=47), self.mock_mail_gateway():
            self.receive_mail(email_from='"Neu Kunde" <neu.kunde@example.com>')

    @users("admin")
    @warmup
    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_reply_queries(self):
        with self.assertQueryCount(admin=43), self.mock_mail_gateway():
            self.receive_mail(subject=f"Re: [{self.ticket.number}] Drucker")
