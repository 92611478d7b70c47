from odoo.exceptions import UserError
from odoo.tests import Form, tagged, users
from odoo.tools import mute_logger

from .common import MAIL_TICKET_ATTACHMENT_TEMPLATE, MailTicketCommon


@tagged("post_install", "-at_install", "mail_ticket")
class TestSplit(MailTicketCommon):
    """A customer asks about something else in a reply: the agent splits that message
    off into a ticket of its own."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = cls._create_ticket_mailbox()
        cls.colleague = cls.env["res.partner"].create(
            {"name": "Paul Pinguin", "email": "paul.pinguin@agrolait.example.com"}
        )

    def split_wizard(self, ticket, message=None):
        """The wizard as the ticket form's Split button opens it."""
        wizard_form = Form(self.env["mail.ticket.split"].with_context(default_ticket_id=ticket.id))
        if message:
            wizard_form.message_id = message
        return wizard_form.save()

    @users("agent")
    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_split_a_customer_reply(self):
        ticket = self.receive_mail(subject="Drucker druckt nicht", server=self.server)
        ticket = ticket.with_env(self.env)
        ticket.message_post(
            body="Bitte starten Sie den Drucker neu.",
            message_type="comment",
            subtype_xmlid="mail.mt_comment",
        )
        self.receive_mail(
            subject=f"AW: [{ticket.number}] Scanner schickt leere Seiten",
            template=MAIL_TICKET_ATTACHMENT_TEMPLATE,
            server=self.server,
        )
        reply = ticket.message_ids[0]
        self.assertEqual(reply.author_id, self.customer)
        self.assertTrue(reply.attachment_ids)

        wizard = self.split_wizard(ticket)
        self.assertEqual(wizard.message_id, reply, "the customer's latest message by default")
        self.assertEqual(wizard.name, "Scanner schickt leere Seiten")
        action = wizard.action_split()

        new_ticket = self.Ticket.browse(action["res_id"])
        self.assertEqual(
            (action["type"], action["res_model"], action["views"]),
            ("ir.actions.act_window", "mail.ticket", [(False, "form")]),
        )
        self.assertNotEqual(new_ticket, ticket)
        self.assertEqual(new_ticket.name, "Scanner schickt leere Seiten")
        self.assertIn("Anbei das Fehlerprotokoll", new_ticket.description)
        self.assertEqual(new_ticket.partner_id, self.customer)
        self.assertIn(self.customer, new_ticket.message_partner_ids, "the customer follows")
        self.assertEqual(new_ticket.fetchmail_server_id, self.server, "answers from the mailbox")
        copies = self.env["ir.attachment"].search(
            [("res_model", "=", "mail.ticket"), ("res_id", "=", new_ticket.id)]
        )
        self.assertEqual(copies.mapped("name"), reply.attachment_ids.mapped("name"))
        self.assertEqual(copies.mapped("raw"), reply.attachment_ids.mapped("raw"))
        self.assertNotEqual(copies, reply.attachment_ids, "copies: the original keeps its own")
        self.assertIn(reply, ticket.message_ids, "the message stays on its ticket")

        note_new, note_old = new_ticket.message_ids[0], ticket.message_ids[0]
        note = self.env.ref("mail.mt_note")
        self.assertEqual((note_new.subtype_id, note_old.subtype_id), (note, note), "notes")
        self.assertIn(ticket.number, note_new.body)
        self.assertIn(f'data-oe-id="{ticket.id}"', note_new.body)
        self.assertIn(new_ticket.number, note_old.body)
        self.assertIn(f'data-oe-id="{new_ticket.id}"', note_old.body)

    @users("agent")
    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_split_without_subject_keeps_the_title(self):
        ticket = self.receive_mail(subject="Drucker druckt nicht", server=self.server)
        ticket = ticket.with_env(self.env)
        self.receive_mail(subject=f"Re: [{ticket.number}]", server=self.server)
        wizard = self.split_wizard(ticket)
        self.assertEqual(wizard.name, "Drucker druckt nicht")
        new_ticket = self.Ticket.browse(wizard.action_split()["res_id"])
        self.assertEqual(new_ticket.name, "Drucker druckt nicht")
        self.assertEqual(new_ticket.partner_id, self.customer)

    @users("agent")
    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_bad_messages(self):
        ticket = self.receive_mail(subject="Drucker druckt nicht", server=self.server)
        ticket = ticket.with_env(self.env)
        other = self._create_customer_ticket().with_env(self.env)
        partner_message = (
            self.colleague.with_env(self.env)
            .sudo()
            .message_post(body="Notiz am Kontakt", message_type="comment")
        )
        other_ticket_message = other.message_post(body="Andere", message_type="comment")
        anonymous = ticket.sudo().message_post(
            body="Ohne Absender", message_type="email", author_id=False, email_from=False
        )
        agent_answer = ticket.message_post(body="Antwort", message_type="comment")
        tickets_before = self.Ticket.search_count([])
        for message, error in (
            (partner_message, "Only a message of a ticket"),
            (other_ticket_message, "is not one of ticket"),
            (anonymous, "has no author"),
            (agent_answer, "an agent's"),
        ):
            with self.subTest(error=error):
                wizard = self.env["mail.ticket.split"].create(
                    {"ticket_id": ticket.id, "message_id": message.id}
                )
                with self.assertRaisesRegex(UserError, error):
                    wizard.action_split()
        self.assertEqual(self.Ticket.search_count([]), tickets_before)

    def test_split_button_on_the_form(self):
        arch = self.env["mail.ticket"].get_view(view_type="form")["arch"]
        action = self.env.ref("mail_ticket.mail_ticket_split_action")
        self.assertIn(f'name="{action.id}"', arch)
        self.assertEqual(action.res_model, "mail.ticket.split")
        self.assertEqual(action.target, "new")
