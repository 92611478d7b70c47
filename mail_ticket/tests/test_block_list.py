from odoo.exceptions import ValidationError
from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import MailTicketCommon

SPAM_HEADERS = {
    "SpamAssassin flag": "X-Spam-Flag: YES\n",
    "SpamAssassin status": "X-Spam-Status: Yes, score=9.1 required=5.0 tests=BAYES_99\n",
    "Rspamd": "X-Spamd-Result: default: True [16.20 / 15.00];\n\tBAYES_SPAM(5.10)[99.99%]\n",
}


@tagged("post_install", "-at_install", "mail_ticket")
class TestBlockList(MailTicketCommon):
    """A blocked sender's mail opens no ticket and makes no contact; it is recorded as
    ignored, with the reason."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.mailbox = cls._create_ticket_mailbox()
        cls.Blocked = cls.env["mail.ticket.blocked.sender"]

    def receive(self, email_from, subject="Kaufen Sie jetzt"):
        """The mail fetched as the mailbox does; return its record and its ticket."""
        raw = self.format(
            "From: {email_from}\nTo: support@example.com\nSubject: {subject}\n"
            "Message-ID: <{msg_id}@spam.example>\n\nBilliger geht es nicht.\n",
            email_from=email_from,
            subject=subject,
            msg_id=self._next_msg_id(),
        ).encode()
        ticket = self.receive_mail(raw=raw)
        inbound = self.env["mail.ticket.inbound"].search([], order="id desc", limit=1)
        return inbound, ticket

    def test_names_are_addresses_or_domains(self):
        self.assertEqual(
            self.Blocked.create({"name": " Spam@Example.COM ", "reason": "Werbung"}).name,
            "spam@example.com",
        )
        self.assertEqual(
            self.Blocked.create({"name": "Spammer.example", "reason": "Werbung"}).name,
            "@spammer.example",
        )
        with self.assertRaises(ValidationError):
            self.Blocked.create({"name": "kein spam", "reason": "Werbung"})

    @mute_logger("odoo.addons.mail_ticket.models.mail_thread")
    def test_blocked_address_and_domain(self):
        self.Blocked.create({"name": "werbung@spam.example", "reason": "Werbung"})
        self.Blocked.create({"name": "@spammer.example", "reason": "Phishing"})
        for fetched in (False, True):
            self.fetched = fetched
            for sender, reason in (
                ('"Werbung" <Werbung@spam.example>', "Werbung"),
                ("boss@spammer.example", "Phishing"),
            ):
                with self.subTest(fetched=fetched, sender=sender):
                    inbound, ticket = self.receive(sender)
                    self.assertFalse(ticket, "no ticket")
                    email = sender.split("<")[-1].rstrip(">").lower()
                    self.assertFalse(
                        self.env["res.partner"].search([("email_normalized", "=", email)]),
                        "no contact",
                    )
                    if fetched:
                        self.assertEqual(inbound.state, "ignored")
                        self.assertIn(reason, inbound.error)
        self.fetched = True
        inbound, ticket = self.receive("kunde@spam.example", "Eine echte Frage")
        self.assertTrue(ticket, "the rest of the domain is not blocked")

    @mute_logger("odoo.addons.mail_ticket.models.mail_thread")
    def test_list_changes_apply_to_the_next_mail(self):
        """The list is read once per worker, not per mail: what an admin adds, renames,
        archives or deletes counts from the next mail on."""
        self.fetched = True
        self.assertTrue(self.receive("neu@spam.example")[1], "not blocked yet")
        entry = self.Blocked.create({"name": "neu@spam.example", "reason": "Werbung"})
        self.assertFalse(self.receive("neu@spam.example")[1], "blocked once added")
        entry.name = "@spam.example"
        self.assertFalse(
            self.receive("andere@spam.example")[1], "the renamed entry blocks the whole domain"
        )
        entry.active = False
        self.assertTrue(self.receive("andere@spam.example")[1], "an archived entry blocks nothing")
        entry.active = True
        self.assertFalse(self.receive("andere@spam.example")[1])
        entry.unlink()
        self.assertTrue(self.receive("andere@spam.example")[1], "a deleted entry blocks nothing")

    def test_block_sender_from_a_ticket(self):
        ticket = self.receive_mail(email_from='"Lästig" <laestig@example.com>')
        action = ticket.with_user(self.user_agent).action_block_sender()
        self.assertEqual(action["tag"], "display_notification")
        entry = self.Blocked.search([("name", "=", "laestig@example.com")])
        self.assertEqual(entry.user_id, self.user_agent, "who added it")
        self.assertIn(ticket.number, entry.reason)
        self.assertFalse(self.receive_mail(email_from="laestig@example.com", subject="Nochmal"))


@tagged("post_install", "-at_install", "mail_ticket")
class TestSpam(MailTicketCommon):
    """A trusted mail server's spam verdict keeps the mail out of the open tickets: a
    ticket to review, without a customer, and nobody mailed."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.mailbox = cls._create_ticket_mailbox()
        cls.env["ir.config_parameter"].sudo().set_param("mail_ticket.authserv_id", "mx.example.com")

    @mute_logger("odoo.addons.mail_ticket.models.mail_ticket_gateway")
    def test_spam_verdicts_through_both_paths(self):
        for fetched in (False, True):
            self.fetched = fetched
            for name, header in SPAM_HEADERS.items():
                with self.subTest(fetched=fetched, verdict=name):
                    email = f"spam.{fetched}.{len(header)}@example.com"
                    ticket = self.receive_mail(email_from=email, subject=name, extra=header)
                    self.assertTrue(ticket.is_spam)
                    self.assertIn(header.split(":")[0], ticket.spam_reason)
                    self.assertFalse(ticket.partner_id, "nobody's ticket")
                    self.assertFalse(ticket.ack_pending, "never acknowledged")
                    self.assertFalse(
                        self.env["res.partner"].search([("email_normalized", "=", email)])
                    )
                    self.assertFalse(ticket.message_partner_ids)
                    open_tickets = self.Ticket.search(
                        [("is_closed", "=", False), ("is_spam", "=", False)]
                    )
                    self.assertNotIn(ticket, open_tickets, "out of the open tickets")

    @mute_logger("odoo.addons.mail_ticket.models.mail_ticket_gateway")
    def test_release(self):
        ticket = self.receive_mail(
            email_from='"Echte Kundin" <echte.kundin@example.com>', extra="X-Spam-Flag: YES\n"
        )
        ticket.with_user(self.user_agent).action_release_spam()
        self.assertFalse(ticket.is_spam)
        self.assertEqual(ticket.partner_id.email_normalized, "echte.kundin@example.com")
        self.assertIn(ticket.partner_id, ticket.message_partner_ids)
        self.assertTrue(ticket.ack_pending, "acknowledged now")

    def test_no_trusted_server_no_verdict(self):
        self.env["ir.config_parameter"].sudo().set_param("mail_ticket.authserv_id", "")
        ticket = self.receive_mail(extra="X-Spam-Flag: YES\n")
        self.assertFalse(ticket.is_spam, "anybody may write that header")
        self.assertEqual(ticket.partner_id, self.customer)

    @mute_logger("odoo.addons.mail_ticket.models.mail_ticket_gateway")
    def test_spam_reply_changes_nothing(self):
        ticket = self._create_customer_ticket()
        ticket.stage_id = self.stage_solved
        self.receive_mail(subject=f"Re: [{ticket.number}] Drucker", extra="X-Spam: Yes\n")
        self.assertEqual(ticket.stage_id, self.stage_solved, "not reopened")
        last = ticket.message_ids.sorted("id")[-1]
        self.assertTrue(last.is_internal)
        self.assertIn("Spam", last.body)
