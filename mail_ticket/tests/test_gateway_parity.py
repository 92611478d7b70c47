import re

from odoo.tests import tagged
from odoo.tools import html2plaintext, mute_logger

from odoo.addons.mail.tests.common import mail_new_test_user

from .common import (
    MAIL_TICKET_ATTACHMENT_TEMPLATE,
    MAIL_TICKET_TEMPLATE,
    MailTicketCommon,
)


@tagged("post_install", "-at_install", "mail_ticket")
class TestGatewayParity(MailTicketCommon):
    """The same conversation, mail by mail through ``message_process`` and as fetched
    batches: the tickets, their chatters (bodies, attachments, parents, recipients,
    notifications) and the mail sent out are the same."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = cls._create_ticket_mailbox(ticket_follow_known_contacts=True)
        cls.portal_user = mail_new_test_user(
            cls.env,
            login="hanna_portal",
            name="Hanna Portal",
            email="hanna.portal@kunde.example.com",
            groups="base.group_portal",
        )
        cls.colleague = cls.env["res.partner"].create(
            {"name": "Lager Kunde", "email": "lager@kunde.example.com"}
        )

    def conversation(self, fetched, tag):
        """A portal customer opens a ticket with an attachment, copying a known contact;
        an agent answers; the customer's out-of-office answers it; the customer answers
        the answer (In-Reply-To the answer, the newest reference an older message) and
        again by the subject only."""
        self.fetched = fetched
        customer = '"Hanna Portal" <hanna.portal@kunde.example.com>'
        ticket = self.receive_mail(
            template=MAIL_TICKET_ATTACHMENT_TEMPLATE,
            server=self.server,
            email_from=customer,
            subject=f"Drucker {tag}",
            cc='"Lager Kunde" <lager@kunde.example.com>',
        )
        self.Ticket.search([("ack_pending", "=", True)])._send_acknowledgement()
        opening = ticket.message_ids.sorted("id")[0]
        answer = ticket.with_user(self.user_agent).message_post(
            body="Bitte starten Sie den Drucker neu.",
            message_type="comment",
            subtype_xmlid="mail.mt_comment",
        )
        self.receive_mail(  # the customer's out-of-office answers first
            server=self.server,
            email_from=customer,
            subject=f"Automatische Antwort: [{ticket.number}] Drucker {tag}",
            extra=f"Auto-Submitted: auto-replied\nIn-Reply-To: {answer.message_id}\n"
            f"References: {opening.message_id} {answer.message_id}\n",
        )
        self.receive_mail(
            server=self.server,
            email_from=customer,
            subject=f"Re: [{ticket.number}] Drucker {tag}",
            extra=f"In-Reply-To: {answer.message_id}\n"
            f"References: {answer.message_id} {opening.message_id}\n",
        )
        self.receive_mail(
            template=MAIL_TICKET_TEMPLATE,
            server=self.server,
            email_from=customer,
            subject=f"AW: #{ticket.number_int} Drucker {tag}",
        )
        return ticket

    @staticmethod
    def seen(ticket, mails):
        """What users see of a ticket: its fields, its chatter, the mail it sent."""

        def text(value):
            value = html2plaintext(value or "") if "<" in (value or "") else value or ""
            return re.sub(r"TICKET-\d+|#\d+|Drucker \w+", "X", value).strip()

        messages = ticket.message_ids.sorted("id")
        chatter = [
            (
                message.message_type,
                message.subtype_id.name,
                message.author_id.name,
                text(message.body),
                sorted(message.attachment_ids.mapped("name")),
                messages.ids.index(message.parent_id.id) if message.parent_id else None,
                sorted(message.partner_ids.mapped("name")),
                sorted(message.notification_ids.res_partner_id.mapped("name")),
                message.is_internal,
            )
            for message in messages
        ]
        sent = sorted(
            (
                text(mail.subject),
                sorted(mail.recipient_ids.mapped("name")),
                mail.email_to or "",
                text(mail.body_html)[:200],
            )
            for mail in mails
            if mail.model == "mail.ticket" and mail.res_id == ticket.id
        )
        return {
            "ticket": (
                ticket.partner_id.name,
                ticket.stage_id.name,
                ticket.email_cc,
                ticket.created_from_email,
                ticket.create_uid.name,
                sorted(ticket.message_partner_ids.mapped("name")),
                len(ticket.comment_ids),
                bool(ticket.date_last_customer_message),
                bool(ticket.date_ack_sent),
            ),
            "chatter": chatter,
            "sent": sent,
        }

    @mute_logger("odoo.addons.mail.models.mail_thread", "odoo.addons.mail_ticket.models")
    def test_same_conversation_through_both_paths(self):
        with self.mock_mail_gateway():
            alone = self.conversation(False, "eins")
        alone_seen = self.seen(alone, self._new_mails)
        with self.mock_mail_gateway():
            fetched = self.conversation(True, "zwei")
        fetched_seen = self.seen(fetched, self._new_mails)
        self.assertEqual(fetched_seen["ticket"], alone_seen["ticket"])
        self.assertEqual(fetched_seen["chatter"], alone_seen["chatter"])
        self.assertEqual(fetched_seen["sent"], alone_seen["sent"])
        # and what was compared is the conversation the customer had
        self.assertEqual(alone.partner_id, self.portal_user.partner_id)
        self.assertEqual(alone.create_uid, self.portal_user, "the gateway ran as their user")
        opening, _ack, answer, out_of_office, reply, reply_by_subject = alone_seen["chatter"]
        self.assertEqual(out_of_office[5], 2, "the out-of-office is posted below the answer")
        self.assertEqual(opening[4], ["fehlerprotokoll.pdf"])
        self.assertEqual(opening[2], "Hanna Portal")
        self.assertEqual(answer[2], "Agnes Agent")
        self.assertEqual(reply[5], 2, "the answer it replies to (In-Reply-To)")
        self.assertEqual(out_of_office[0], "email")
        self.assertEqual((reply[2], reply_by_subject[2]), ("Hanna Portal", "Hanna Portal"))
        self.assertIn("Agnes Agent", reply[7], "the agent is notified of the reply")
        self.assertIn(self.colleague.name, alone_seen["ticket"][5], "the copied contact follows")
        self.assertTrue(alone_seen["sent"], "the acknowledgement and the answer went out")
