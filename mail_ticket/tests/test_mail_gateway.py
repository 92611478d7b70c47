import logging

from markupsafe import Markup

from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.mail_ticket.models.mail_ticket_comment import strip_quoted_history

from .common import (
    MAIL_TICKET_ATTACHMENT_TEMPLATE,
    MAIL_TICKET_INLINE_IMAGE_TEMPLATE,
    MAIL_TICKET_QUOTED_REPLY_TEMPLATE,
    MailTicketCommon,
)


@tagged("post_install", "-at_install", "mail_ticket")
class TestMailGatewayNewTicket(MailTicketCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.mailbox = cls._create_ticket_mailbox()

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_new_mail_creates_ticket(self):
        with self.assertLogs("odoo.addons.mail_ticket", level=logging.INFO) as logs:
            ticket = self.receive_mail(
                subject="Drucker druckt nicht",
                email_from='"Sylvie Lelitre" <sylvie.lelitre@agrolait.example.com>',
                msg_id="<first-mail@agrolait.example.com>",
            )
        self.assertEqual(len(ticket), 1)
        self.assertRegex(ticket.number, r"^TICKET-\d{3,}$")
        self.assertEqual(ticket.name, "Drucker druckt nicht")
        self.assertEqual(ticket.display_name, f"[{ticket.number}] Drucker druckt nicht")
        self.assertIn("nur leere Seiten", ticket.description)
        self.assertTrue(ticket.created_from_email)
        self.assertEqual(
            ticket.email_from, '"Sylvie Lelitre" <sylvie.lelitre@agrolait.example.com>'
        )
        self.assertEqual(ticket.partner_id, self.customer, "the known contact is the customer")
        self.assertEqual(ticket.priority, "1")
        self.assertEqual(ticket.stage_id, self.stage_open)
        self.assertFalse(ticket.user_id, "the gateway user is never the assignee")
        self.assertTrue(ticket.date_last_customer_message)
        self.assertIn(self.customer, ticket.message_partner_ids, "the customer follows the ticket")
        # the mail itself is in the chatter, and is no comment: it is the description
        mail_message = ticket.message_ids.filtered(lambda m: m.message_type == "email")
        self.assertEqual(mail_message.message_id, "<first-mail@agrolait.example.com>")
        self.assertEqual(mail_message.author_id, self.customer)
        self.assertFalse(ticket.comment_ids)
        output = "\n".join(logs.output)
        if not self.fetched:  # message_route logs each mail it routes; a batch, its tickets
            self.assertIn("Processing mail <first-mail@agrolait.example.com>", output)
        self.assertIn(
            f"Ticket {ticket.number} created from mail <first-mail@agrolait.example.com>", output
        )

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_new_mail_unknown_sender_creates_contact(self):
        ticket = self.receive_mail(email_from='"Hans Müller" <Hans.Mueller@Beispiel.example.de>')
        partner = ticket.partner_id
        self.assertEqual(partner.name, "Hans Müller")
        self.assertEqual(partner.email_normalized, "hans.mueller@beispiel.example.de")
        self.assertEqual(
            ticket.message_ids.filtered(lambda m: m.message_type == "email").author_id, partner
        )
        # the next mail of the same sender, in other case, finds the same contact
        ticket_2 = self.receive_mail(
            subject="Noch eine Frage", email_from="hans.mueller@BEISPIEL.example.de"
        )
        self.assertEqual(ticket_2.partner_id, partner)
        self.assertEqual(
            self.env["res.partner"].search_count(
                [("email_normalized", "=", "hans.mueller@beispiel.example.de")]
            ),
            1,
        )

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_new_mail_existing_contact_case_insensitive(self):
        ticket = self.receive_mail(email_from="SYLVIE.Lelitre@AgroLait.example.com")
        self.assertEqual(ticket.partner_id, self.customer)

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_new_mail_without_subject(self):
        ticket = self.receive_mail(subject="")
        self.assertEqual(ticket.name, "(no subject)")
        self.assertTrue(ticket.number)

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_new_mail_keeps_attachments(self):
        ticket = self.receive_mail(
            subject="Fehlerprotokoll", template=MAIL_TICKET_ATTACHMENT_TEMPLATE
        )
        attachment = ticket.message_ids.attachment_ids
        self.assertEqual(attachment.name, "fehlerprotokoll.pdf")
        self.assertEqual((attachment.res_model, attachment.res_id), ("mail.ticket", ticket.id))
        self.assertIn("Fehlerprotokoll", ticket.description)

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_numbers_follow_each_other(self):
        first = self.receive_mail(subject="Eins")
        second = self.receive_mail(subject="Zwei")
        self.assertEqual(
            int(second.number.removeprefix("TICKET-")),
            int(first.number.removeprefix("TICKET-")) + 1,
        )

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_duplicate_message_id_changes_nothing(self):
        ticket = self.receive_mail(msg_id="<dup@agrolait.example.com>")
        self.receive_mail(
            subject=f"Re: [{ticket.number}]", msg_id="<dup-reply@agrolait.example.com>"
        )
        counts = (self.Ticket.search_count([]), len(ticket.comment_ids), len(ticket.message_ids))
        again = self.receive_mail(msg_id="<dup@agrolait.example.com>")
        again_reply = self.receive_mail(
            subject=f"Re: [{ticket.number}]", msg_id="<dup-reply@agrolait.example.com>"
        )
        self.assertFalse(again)
        self.assertFalse(again_reply)
        self.assertEqual(
            (self.Ticket.search_count([]), len(ticket.comment_ids), len(ticket.message_ids)), counts
        )


@tagged("post_install", "-at_install", "mail_ticket")
class TestMailGatewayReplies(MailTicketCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.mailbox = cls._create_ticket_mailbox()
        cls.ticket = cls._create_customer_ticket()
        cls.number = int(cls.ticket.number.removeprefix("TICKET-"))

    def assert_comment(self, thread, subject):
        self.assertEqual(thread, self.ticket, f"{subject!r} must reach {self.ticket.number}")
        comment = self.ticket.comment_ids[-1:]
        self.assertTrue(comment.is_from_email)
        self.assertEqual(comment.author_email, "sylvie.lelitre@agrolait.example.com")
        self.assertEqual(comment.author_name, "Sylvie Lelitre")
        self.assertEqual(comment.author_id, self.customer)
        self.assertIn("nur leere Seiten", comment.body)
        self.assertEqual(comment.message_id.subject, subject)

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_subject_references(self):
        n = self.number
        subjects = [
            f"[TICKET-{n:03d}] Drucker",
            f"Re: [TICKET-{n:03d}] Drucker druckt nicht",
            f"RE: Re: [ticket-{n}] Drucker",
            f"AW: [TICKET-{n:07d}]",
            f"Neue Info zu [TICKET-{n}]",
            f"#{n}",
            f"Re: #{n:05d} Drucker",
            f"AW: WG: #{n}",
            f"Fwd: Fw: #{n} Drucker",
            f"Re[2]: #{n}",
            f"Ticket #{n}",
            f"WG: Ticket #{n:04d}: Drucker",
            f"Frage zu Ticket #{n}",
        ]
        tickets_before = self.Ticket.search_count([])
        for index, subject in enumerate(subjects, start=1):
            with self.subTest(subject=subject):
                thread = self.receive_mail(subject=subject)
                self.assert_comment(thread, subject)
                self.assertEqual(len(self.ticket.comment_ids), index)
        self.assertEqual(self.Ticket.search_count([]), tickets_before, "no new ticket")
        self.assertEqual(
            self.Comment.search_count(
                [("ticket_id", "=", self.ticket.id), ("is_from_email", "=", True)]
            ),
            len(subjects),
        )

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_subject_non_references(self):
        n = self.number
        subjects = [
            f"Problem mit Ticket {n}",
            f"Rechnung #{n} ist falsch",
            f"TICKET {n}",
            f"Re: Bestellung {n}",
            f"Re: [TICKET-{n}x] Drucker",
        ]
        for subject in subjects:
            with self.subTest(subject=subject):
                thread = self.receive_mail(subject=subject)
                self.assertTrue(thread)
                self.assertNotEqual(thread, self.ticket)
                self.assertEqual(thread.name, subject)
        self.assertFalse(self.ticket.comment_ids)

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_unknown_number_opens_new_ticket(self):
        subject = "Re: [TICKET-98765] Drucker"
        thread = self.receive_mail(subject=subject)
        self.assertNotEqual(thread, self.ticket)
        self.assertEqual(thread.name, subject)
        self.assertTrue(thread.created_from_email)

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_reply_threaded_by_headers(self):
        first = self.receive_mail(
            subject="Bildschirm flackert", msg_id="<screen@agrolait.example.com>"
        )
        for headers in (
            "In-Reply-To: <screen@agrolait.example.com>",
            "References: <other@example.com> <screen@agrolait.example.com>",
        ):
            with self.subTest(headers=headers):
                thread = self.receive_mail(subject="Re: noch immer", extra=headers)
                self.assertEqual(thread, first)
        self.assertEqual(len(first.comment_ids), 2)
        self.assertTrue(all(first.comment_ids.mapped("is_from_email")))

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_headers_win_over_subject(self):
        other = self.receive_mail(
            subject="Bildschirm flackert", msg_id="<screen2@agrolait.example.com>"
        )
        thread = self.receive_mail(
            subject=f"Re: [{self.ticket.number}]",
            extra="In-Reply-To: <screen2@agrolait.example.com>",
        )
        self.assertEqual(thread, other)

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_tag_reply_to_catchall_not_bounced(self):
        """A reply sent to the catchall alone, whose client dropped the headers."""
        catchall = f"{self.alias_catchall}@{self.alias_domain}"
        thread = self.receive_mail(subject=f"Re: [{self.ticket.number}] Drucker", to=catchall)
        self.assertEqual(thread, self.ticket)
        self.assertEqual(len(self.ticket.comment_ids), 1)

    @mute_logger("odoo.addons.mail.models.mail_thread", "odoo.models")
    def test_other_mailboxes_route_only_the_tag(self):
        """A mailbox feeding another model keeps its mail, unless it carries our tag."""
        thread = self.receive_mail(
            subject=f"Re: [{self.ticket.number}] Drucker", model="res.partner"
        )
        self.assertEqual(thread._name, "res.partner")
        self.assertEqual(thread.id, self.ticket.id)
        self.assertEqual(len(self.ticket.comment_ids), 1)
        partner = self.receive_mail(subject=f"Re: #{self.number}", model="res.partner")
        self.assertEqual(partner.name, f"Re: #{self.number}", "'#n' is left to that mailbox")
        self.assertEqual(len(self.ticket.comment_ids), 1)

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_customer_reply_reopens(self):
        cases = [
            (self.stage_waiting, self.stage_open),
            (self.stage_solved, self.stage_open),
            (self.stage_in_progress, self.stage_in_progress),
            (self.stage_closed, self.stage_closed),
        ]
        for stage, expected in cases:
            with self.subTest(stage=stage.name):
                self.ticket.stage_id = stage
                self.receive_mail(subject=f"Re: [{self.ticket.number}]")
                self.assertEqual(self.ticket.stage_id, expected)

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_automated_reply_is_recorded_but_does_not_reopen(self):
        automated = [
            "Auto-Submitted: auto-replied",
            "Auto-Submitted: auto-generated",
            "Precedence: bulk",
            "X-Autoreply: yes",
            "X-Auto-Response-Suppress: All",
            "List-Id: <kunden.agrolait.example.com>",
        ]
        self.ticket.stage_id = self.stage_solved
        self.ticket.date_last_customer_message = False
        for index, header in enumerate(automated, start=1):
            with self.subTest(header=header):
                thread = self.receive_mail(
                    subject=f"Abwesenheitsnotiz: [{self.ticket.number}] Drucker", extra=header
                )
                self.assertEqual(thread, self.ticket)
                self.assertEqual(len(self.ticket.comment_ids), index, "recorded as a comment")
                self.assertEqual(self.ticket.stage_id, self.stage_solved)
                self.assertFalse(self.ticket.date_last_customer_message)
        with self.subTest(header="Return-Path: <>"):
            self.receive_mail(subject=f"Re: [{self.ticket.number}]", return_path="<>")
            self.assertEqual(self.ticket.stage_id, self.stage_solved)
        self.receive_mail(subject=f"Re: [{self.ticket.number}]", extra="Auto-Submitted: no")
        self.assertEqual(self.ticket.stage_id, self.stage_open, "a person answering reopens it")

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_comment_without_quoted_history(self):
        self.receive_mail(
            subject=f"Re: [{self.ticket.number}] Drucker",
            template=MAIL_TICKET_QUOTED_REPLY_TEMPLATE,
        )
        comment = self.ticket.comment_ids
        self.assertIn("Neustart hat leider nicht geholfen", comment.body)
        self.assertNotIn("Bitte starten Sie den Drucker neu", comment.body)
        self.assertIn(
            "Bitte starten Sie den Drucker neu", comment.message_id.body, "the chatter keeps it all"
        )

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_reply_keeps_attachments_and_inline_images(self):
        self.receive_mail(
            subject=f"Re: [{self.ticket.number}] Drucker",
            template=MAIL_TICKET_INLINE_IMAGE_TEMPLATE,
        )
        comment = self.ticket.comment_ids
        self.assertEqual(
            sorted(comment.attachment_ids.mapped("name")), ["druckerlog.txt", "screenshot.png"]
        )
        image = comment.attachment_ids.filtered(lambda a: a.name == "screenshot.png")
        self.assertIn(f"/web/image/{image.id}", comment.body, "the inline image is shown in place")
        self.assertNotIn("cid:", comment.body)

    def test_plain_text_quotes_left_out(self):
        for attribution in (
            "Am 10.08.2026 um 15:00 schrieb Support:",
            "On Tue, Aug 10, 2026 at 3:00 PM Support <support@example.com> wrote:",
        ):
            with self.subTest(attribution=attribution):
                body = (
                    Markup("<pre>Geht wieder.\r\n\r\n%s\r\n&gt; Bitte neu starten.\r\n</pre>")
                    % attribution
                )
                self.assertEqual(strip_quoted_history(body), Markup("<pre>Geht wieder.</pre>"))
        only_quote = Markup("<pre>&gt; Bitte neu starten.</pre>")
        self.assertEqual(strip_quoted_history(only_quote), only_quote, "nothing new: keep it")

    def test_comment_text_stays_text(self):
        """Text around the quoted history is text: entities the parser decoded are
        escaped again, never taken for markup; the comment body is sanitized too."""
        body = Markup(
            '&lt;img src=x onerror="alert(1)"&gt; Geht wieder.'
            '<blockquote data-o-mail-quote="1">Bitte neu starten.</blockquote>'
        )
        stripped = strip_quoted_history(body)
        self.assertTrue(stripped.startswith("&lt;img src=x onerror="))
        self.assertTrue(stripped.endswith("Geht wieder."))
        self.assertNotIn("<img", stripped)
        ticket = self._create_customer_ticket()
        message = ticket.message_post(
            body=Markup("<p>Hallo</p><script>alert(1)</script>"),
            message_type="comment",
            subtype_xmlid="mail.mt_comment",
        )
        comment = self.Comment.search([("message_id", "=", message.id)])
        self.assertIn("Hallo", comment.body)
        self.assertNotIn("<script", comment.body)

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_agent_reply_by_mail_does_not_reopen(self):
        self.env["ir.config_parameter"].set_param(
            "mail_ticket.authserv_id", "mx.test.mycompany.com"
        )
        self.ticket.stage_id = self.stage_waiting
        self.receive_mail(
            subject=f"Re: [{self.ticket.number}]",
            email_from=f'"Agnes Agent" <{self.user_agent.email}>',
            extra="Authentication-Results: mx.test.mycompany.com; dmarc=pass "
            "header.from=test.mycompany.com",
        )
        self.assertEqual(self.ticket.stage_id, self.stage_waiting)
        self.assertEqual(self.ticket.comment_ids.author_id, self.user_agent.partner_id)

    def test_agent_answer_and_internal_note(self):
        ticket = self.ticket.with_user(self.user_agent)
        answer = ticket.message_post(
            body="<p>Bitte starten Sie den Drucker neu.</p>",
            message_type="comment",
            subtype_xmlid="mail.mt_comment",
        )
        ticket.message_post(
            body="<p>Kunde ist VIP</p>", message_type="comment", subtype_xmlid="mail.mt_note"
        )
        comment = self.ticket.comment_ids
        self.assertEqual(comment.message_id, answer)
        self.assertFalse(comment.is_from_email)
        self.assertEqual(comment.author_id, self.user_agent.partner_id)
        self.assertIn("Drucker neu", comment.body)
        self.assertEqual(self.ticket.date_last_agent_answer, answer.date)
        self.assertEqual(self.ticket.comment_count, 1)


@tagged("post_install", "-at_install", "mail_ticket")
class TestMailGatewayNewTicketFetched(TestMailGatewayNewTicket):
    """The same new mails, each fetched in a batch from the mailbox."""

    fetched = True


@tagged("post_install", "-at_install", "mail_ticket")
class TestMailGatewayRepliesFetched(TestMailGatewayReplies):
    """The same replies, each fetched in a batch from the mailbox."""

    fetched = True
