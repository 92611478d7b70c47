from odoo import tools
from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import MailTicketCommon


@tagged("post_install", "-at_install", "mail_ticket")
class TestConversation(MailTicketCommon):
    """The customer only uses email: acknowledgement, answers, Cc, loops."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = cls._create_ticket_mailbox()
        cls.reply_to = f'"{cls.company_admin.name}" <support@test.mycompany.com>'

    def send_acknowledgements(self):
        with self.mock_mail_gateway():
            self.Ticket.search([("ack_pending", "=", True)])._send_acknowledgement()
        return self._mails

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_acknowledgement(self):
        ticket = self.receive_mail(server=self.server)
        self.assertTrue(ticket.ack_pending)
        mails = self.send_acknowledgements()
        self.assertEqual(len(mails), 1)
        ack = mails[0]
        self.assertEqual(ack["email_to"], [self.customer.email_formatted])
        self.assertEqual(ack["subject"], f"[{ticket.number}] {ticket.name}")
        self.assertEqual(ack["reply_to"], self.reply_to)
        self.assertIn(ticket.number, ack["body"])
        self.assertIn("reply to this email", ack["body"])
        self.assertFalse(ticket.ack_pending)
        self.assertTrue(ticket.date_ack_sent)
        self.assertFalse(ticket.comment_ids, "an acknowledgement is no agent answer")
        self.assertFalse(self.send_acknowledgements(), "sent once")

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_acknowledgement_in_german(self):
        self.env["res.lang"]._activate_lang("de_DE")
        self.env["ir.module.module"]._load_module_terms(["mail_ticket"], ["de_DE"])
        self.customer.lang = "de_DE"
        ticket = self.receive_mail(server=self.server)
        (ack,) = self.send_acknowledgements()
        self.assertEqual(ack["subject"], f"[{ticket.number}] {ticket.name}")
        self.assertIn("vielen Dank für Ihre Nachricht", ack["body"])
        self.assertIn(f"[{ticket.number}]", ack["body"])
        self.assertIn("im Betreff", ack["body"])

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_acknowledgement_switched_off_per_server(self):
        self.server.ticket_send_ack = False
        ticket = self.receive_mail(server=self.server)
        self.assertFalse(ticket.ack_pending)
        self.assertFalse(self.send_acknowledgements())

    @mute_logger(
        "odoo.addons.mail.models.mail_thread", "odoo.addons.mail_ticket.models.mail_ticket"
    )
    def test_acknowledgements_rate_limited_per_sender(self):
        self.env["ir.config_parameter"].set_param("mail_ticket.ack_rate_limit", 3)
        tickets = self.Ticket
        for index in range(5):
            tickets |= self.receive_mail(subject=f"Anfrage {index}", server=self.server)
        tickets |= self.receive_mail(
            subject="Andere", email_from="andere@kunde.example", server=self.server
        )
        mails = self.send_acknowledgements()
        self.assertEqual(
            sorted(mail["subject"] for mail in mails),
            sorted(f"[{t.number}] {t.name}" for t in tickets[:3] + tickets[5:]),
        )
        self.assertFalse(any(tickets.mapped("ack_pending")))

    @mute_logger(
        "odoo.addons.mail.models.mail_thread", "odoo.addons.mail_ticket.models.mail_ticket"
    )
    def test_acknowledgements_rate_limited_per_mailbox_address(self):
        """victim+1@, victim+2@, VICTIM@ ... are contacts of their own, but one mailbox:
        one sender for the limit."""
        self.env["ir.config_parameter"].set_param("mail_ticket.ack_rate_limit", 3)
        senders = [f"opfer+{n}@flut.example" for n in range(5)] + ["OPFER@flut.example"]
        tickets = self.Ticket.union(
            *(
                self.receive_mail(subject=f"Anfrage {n}", email_from=sender, server=self.server)
                for n, sender in enumerate(senders)
            )
        )
        self.assertEqual(len(tickets.partner_id), 6, "a contact each")
        mails = self.send_acknowledgements()
        self.assertEqual(len(mails), 3)
        self.assertEqual(len(tickets.filtered("date_ack_sent")), 3)

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_copied_contacts_follow_up_to_the_cap(self):
        """A mail copied to a crowd of contacts makes at most the mailbox's number of
        them followers."""
        self.server.write({"ticket_follow_known_contacts": True, "ticket_follow_limit": 2})
        known = self.env["res.partner"].create(
            [
                {"name": f"Kontakt {n}", "email": f"kontakt{n}@partnerfirma.example"}
                for n in range(6)
            ]
        )
        ticket = self.receive_mail(
            server=self.server, cc=", ".join(known[:4].mapped("email_formatted"))
        )
        self.assertEqual(ticket.message_partner_ids, self.customer | known[:2])
        self.receive_mail(
            subject=f"Re: [{ticket.number}] mehr",
            server=self.server,
            cc=", ".join(known[4:].mapped("email_formatted")),
        )
        self.assertEqual(ticket.message_partner_ids, self.customer | known[:2], "the cap holds")

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_no_acknowledgement_nor_follower_for_machines(self):
        for header in ("Auto-Submitted: auto-replied", "Precedence: list", "List-Id: <x.example>"):
            with self.subTest(header=header):
                ticket = self.receive_mail(subject=header, extra=header, server=self.server)
                self.assertTrue(ticket, "the mail is kept as a ticket")
                self.assertFalse(ticket.ack_pending)
                self.assertFalse(ticket.message_partner_ids, "answers must not go to a machine")
        self.assertFalse(self.send_acknowledgements())

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_copied_people_are_suggested_not_mailed(self):
        """Whom the customer copied did not write to us: no contact, no follower, no
        mail; the agents see them as suggested recipients."""
        known = self.env["res.partner"].create(
            {"name": "Kollegin", "email": "kollegin@partnerfirma.example"}
        )
        ticket = self.receive_mail(
            server=self.server,
            to="support@test.mycompany.com, Chef <chef@agrolait.example.com>",
            cc="Kollegin <kollegin@partnerfirma.example>, catchall.test@test.mycompany.com",
        )
        self.assertEqual(ticket.message_partner_ids, self.customer)
        self.assertFalse(
            self.env["res.partner"].search([("email", "ilike", "chef@agrolait.example.com")]),
            "no contact created for an address that was only copied",
        )
        self.assertEqual(
            sorted(tools.email_split(ticket.email_cc)),
            ["chef@agrolait.example.com", "kollegin@partnerfirma.example"],
            "not the support mailbox, not the catchall",
        )
        suggested = ticket._message_get_suggested_recipients()
        self.assertEqual(
            sorted(r["email"] for r in suggested if r["email"] != self.customer.email),
            ["chef@agrolait.example.com", "kollegin@partnerfirma.example"],
        )
        self.assertIn(known.id, [r.get("partner_id") for r in suggested])
        mails = self.send_acknowledgements()
        self.assertEqual([mail["email_to"] for mail in mails], [[self.customer.email_formatted]])

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_copied_known_contacts_follow_when_the_mailbox_says(self):
        self.server.ticket_follow_known_contacts = True
        known = self.env["res.partner"].create(
            {"name": "Kollegin", "email": "kollegin@partnerfirma.example"}
        )
        ticket = self.receive_mail(
            server=self.server,
            to="support@test.mycompany.com, Chef <chef@agrolait.example.com>",
            cc="Kollegin <kollegin@partnerfirma.example>",
        )
        self.assertEqual(ticket.message_partner_ids, self.customer | known)
        self.assertFalse(
            self.env["res.partner"].search([("email", "ilike", "chef@agrolait.example.com")])
        )
        ticket.with_user(self.user_agent).message_unsubscribe(known.ids)
        self.assertNotIn(known, ticket.message_partner_ids, "agents can remove them")

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_acknowledgement_to_the_sender_alone(self):
        ticket = self.receive_mail(server=self.server)
        ticket.message_subscribe(self.user_agent.partner_id.ids)
        self.user_agent.notification_type = "email"
        mails = self.send_acknowledgements()
        self.assertEqual([mail["email_to"] for mail in mails], [[self.customer.email_formatted]])
        ack = ticket.message_ids.filtered(lambda m: m.message_type == "auto_comment")
        self.assertEqual(ack.notified_partner_ids, self.customer)

    @mute_logger(
        "odoo.addons.mail.models.mail_thread", "odoo.addons.mail_ticket.models.mail_ticket"
    )
    def test_acknowledgements_capped_per_mailbox(self):
        """A flood from ever new senders: the per-sender limit never triggers, the
        mailbox's hourly cap does."""
        self.server.ticket_ack_hourly_limit = 3
        tickets = self.Ticket
        for index in range(5):
            tickets |= self.receive_mail(
                subject=f"Spam {index}", email_from=f"opfer{index}@flut.example", server=self.server
            )
        mails = self.send_acknowledgements()
        self.assertEqual(
            sorted(mail["email_to"][0] for mail in mails),
            sorted(tickets[:3].partner_id.mapped("email_formatted")),
        )
        self.assertFalse(any(tickets.mapped("ack_pending")))
        self.assertFalse(any(tickets[3:].mapped("date_ack_sent")))

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_agent_answer_mail(self):
        ticket = self.receive_mail(server=self.server)
        with self.mock_mail_gateway():
            ticket.with_user(self.user_agent).message_post(
                body="<p>Bitte starten Sie den Drucker neu.</p>",
                message_type="comment",
                subtype_xmlid="mail.mt_comment",
            )
        self.assertEqual(len(self._mails), 1)
        mail = self._mails[0]
        self.assertEqual(mail["email_to"], [self.customer.email_formatted])
        self.assertEqual(mail["subject"], f"[{ticket.number}] {ticket.name}")
        self.assertEqual(mail["reply_to"], self.reply_to)
        body = mail["body"]
        self.assertIn(f"Ticket {ticket.number}", body)
        self.assertIn(ticket.name, body)
        self.assertIn("Agnes Agent", body)
        self.assertIn("Bitte starten Sie den Drucker neu.", body)
        self.assertIn("access_token=", body, "a link where the customer sees the ticket")
        self.assertIn(mail["message_id"], mail["references"])

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_internal_note_never_reaches_the_customer(self):
        ticket = self.receive_mail(server=self.server)
        with self.mock_mail_gateway():
            ticket.with_user(self.user_agent).message_post(
                body="<p>Kunde ist VIP</p>", message_type="comment", subtype_xmlid="mail.mt_note"
            )
        self.assertFalse([m for m in self._mails if self.customer.email_formatted in m["email_to"]])


@tagged("post_install", "-at_install", "mail_ticket")
class TestConversationFetched(TestConversation):
    """The same conversation, each mail fetched in a batch from the mailbox."""

    fetched = True
