import re

from odoo.tests import HttpCase, tagged, users
from odoo.tools import mute_logger
from odoo.tools.safe_eval import safe_eval

from odoo.addons.mail.tests.common import mail_new_test_user

from .common import MAIL_TICKET_TEMPLATE, MailTicketCommon

RATE_LINK = re.compile(r"/rate/([0-9a-f]{32})/([135])\b")


@tagged("post_install", "-at_install", "mail_ticket")
class TestRating(MailTicketCommon):
    """A stage with a rating template asks the customer to rate the ticket; the rating
    and its feedback land on the ticket."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.team = cls.env["mail.ticket.team"].create({"name": "Kundendienst"})
        cls.server = cls._create_ticket_mailbox(ticket_team_id=cls.team.id)
        cls.rating_template = cls.env.ref("mail_ticket.mail_template_ticket_rating")
        cls.stage_solved.rating_template_id = cls.rating_template

    def _ticket(self):
        ticket = self.receive_mail(server=self.server)
        ticket.user_id = self.user_agent
        return ticket.with_env(self.env)

    def _solve(self, ticket):
        """Move the ticket to Solved as its agent does; return the mails it queued."""
        Mail = self.env["mail.mail"].sudo()
        domain = [("model", "=", "mail.ticket"), ("res_id", "=", ticket.id)]
        before = Mail.search(domain)
        ticket.stage_id = self.stage_solved
        self.env.flush_all()
        return Mail.search(domain) - before

    @users("agent")
    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_stage_change_sends_one_rating_mail(self):
        ticket = self._ticket()
        ticket.stage_id = self.stage_in_progress  # a stage that asks for nothing
        self.assertFalse(ticket.rating_ids)
        with self.mock_mail_gateway():
            mails = self._solve(ticket)
            self.assertEqual(len(mails), 1, "exactly one mail, the rating request")
            self.assertEqual(mails.state, "outgoing", "through the mail queue")
            self.assertEqual(mails.recipient_ids, self.customer)
            self.assertIn(f"[{ticket.number}]", mails.subject)
            links = {value: token for token, value in RATE_LINK.findall(mails.body_html)}
            self.assertEqual(set(links), {"1", "3", "5"})
            rating = ticket.sudo().rating_ids
            self.assertEqual(set(links.values()), {rating.access_token})
            self.assertEqual(rating.partner_id, self.customer)
            self.assertEqual(rating.rated_partner_id, self.user_agent.partner_id)
            self.assertFalse(rating.consumed)
            self.env["mail.mail"].sudo().process_email_queue()
        (sent,) = [mail for mail in self._mails if "/rate/" in mail["body"]]
        self.assertEqual(sent["email_to"], [self.customer.email_formatted])
        self.assertEqual(sent["subject"], f"[{ticket.number}] {ticket.name}: how did we do?")
        self.assertEqual(sent["reply_to"], f'"{self.company_admin.name}" <{self.server.user}>')
        self.assertIn(f"/rate/{rating.access_token}/5", sent["body"])
        message = mails.mail_message_id
        self.assertEqual(message.message_type, "auto_comment")
        self.assertFalse(ticket.comment_ids.filtered(lambda c: c.message_id == message))

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_rating_mail_in_german(self):
        self.env["res.lang"]._activate_lang("de_DE")
        self.env["ir.module.module"]._load_module_terms(["mail_ticket"], ["de_DE"])
        self.customer.lang = "de_DE"
        ticket = self._ticket()
        (mail,) = self._solve(ticket)
        self.assertEqual(mail.subject, f"[{ticket.number}] {ticket.name}: Wie zufrieden sind Sie?")
        self.assertIn("Wie zufrieden sind Sie mit unserem Support?", mail.body_html)
        self.assertIn(f"/rate/{ticket.rating_ids.access_token}/5", mail.body_html)
        self.assertIn("im Betreff", mail.body_html)

    @users("agent")
    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_no_rating_mail_without_customer_or_template(self):
        ticket = self._ticket()
        self.stage_solved.sudo().rating_template_id = False
        self.assertFalse(self._solve(ticket))
        self.stage_solved.sudo().rating_template_id = self.rating_template
        ticket.stage_id = self.stage_open
        ticket.partner_id = False
        self.assertFalse(self._solve(ticket))
        self.assertFalse(ticket.sudo().rating_ids)

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_rating_apply_lands_on_ticket_and_chatter(self):
        ticket = self._ticket()
        self._solve(ticket)
        token = ticket.rating_ids.access_token
        ticket.rating_apply(5, token=token, feedback="Sehr schnell geholfen, danke!")
        rating = ticket.rating_ids
        self.assertTrue(rating.consumed)
        self.assertEqual(rating.rating, 5)
        self.assertEqual(rating.res_name, ticket.display_name)
        self.assertEqual(rating.parent_res_name, self.team.name, "grouped by team")
        self.assertEqual(ticket.rating_count, 1)
        self.assertEqual(ticket.rating_last_value, 5)
        self.assertEqual(ticket.rating_last_feedback, "Sehr schnell geholfen, danke!")
        message = ticket.message_ids[0]
        self.assertEqual(message.rating_id, rating)
        self.assertEqual(message.author_id, self.customer)
        self.assertEqual(message.subtype_id, self.env.ref("mail_ticket.mt_ticket_rating"))
        self.assertIn("Sehr schnell geholfen", message.body)
        # the report lists it, by agent
        action = ticket.with_user(self.user_agent).action_open_ratings()
        Rating = self.env["rating.rating"].with_user(self.user_agent)
        self.assertEqual(Rating.search(action["domain"]), rating)
        report = self.env["ir.actions.act_window"]._for_xml_id(
            "mail_ticket.rating_rating_action_mail_ticket"
        )
        self.assertEqual(
            Rating._read_group(safe_eval(report["domain"]), ["rated_partner_id"], ["rating:avg"]),
            [(self.user_agent.partner_id, 5.0)],
        )

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_reply_to_rating_mail_is_a_comment(self):
        ticket = self._ticket()
        (mail,) = self._solve(ticket)
        comments = ticket.comment_ids
        reply = self.receive_mail(
            subject=f"Re: {mail.subject}",
            extra=f"In-Reply-To: {mail.message_id}\nReferences: {mail.message_id}\n",
            template=MAIL_TICKET_TEMPLATE,
            server=self.server,
        )
        self.assertEqual(reply, ticket)
        message = ticket.message_ids[0]
        self.assertEqual(message.message_type, "email")
        self.assertEqual(message.subtype_id, self.env.ref("mail.mt_comment"))
        self.assertFalse(message.is_internal)
        self.assertEqual(message.author_id, self.customer)
        self.assertEqual(len(ticket.comment_ids - comments), 1)
        self.assertEqual((ticket.comment_ids - comments).message_id, message)


@tagged("post_install", "-at_install", "mail_ticket")
class TestRatingPortal(HttpCase):
    """The customer rates through rating's own pages and sees the rating on the
    ticket's portal page."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.user_customer = mail_new_test_user(
            cls.env,
            login="portal_customer",
            groups="base.group_portal",
            name="Sylvie Lelitre",
            email="sylvie.lelitre@agrolait.example.com",
        )
        stage_solved = cls.env.ref("mail_ticket.stage_solved")
        stage_solved.rating_template_id = cls.env.ref("mail_ticket.mail_template_ticket_rating")
        cls.ticket = cls.env["mail.ticket"].create(
            {"name": "Printer prints blank pages", "partner_id": cls.user_customer.partner_id.id}
        )
        cls.ticket.stage_id = stage_solved
        cls.token = cls.ticket.rating_ids.access_token

    def test_rate_through_the_links_and_see_it_in_the_portal(self):
        page = self.url_open(f"/rate/{self.token}/3")
        self.assertEqual(page.status_code, 200)
        csrf_token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        response = self.url_open(
            f"/rate/{self.token}/submit_feedback",
            data={"rate": 3, "feedback": "Took a while, but works.", "csrf_token": csrf_token},
        )
        self.assertEqual(response.status_code, 200)
        rating = self.ticket.rating_ids
        self.assertTrue(rating.consumed)
        self.assertEqual((rating.rating, rating.rating_text), (3, "ok"))
        self.assertEqual(rating.feedback, "Took a while, but works.")
        self.assertIn("Took a while", self.ticket.message_ids[0].body)

        self.authenticate("portal_customer", "portal_customer")
        response = self.url_open(f"/my/tickets/{self.ticket.id}")
        self.assertEqual(response.status_code, 200)
        self.assertIn("Your Rating", response.text)
        self.assertIn("Took a while, but works.", response.text)
        self.assertIn("/rating/static/src/img/rating_3.png", response.text)

    def test_portal_page_without_rating(self):
        self.authenticate("portal_customer", "portal_customer")
        response = self.url_open(f"/my/tickets/{self.ticket.id}")
        self.assertEqual(response.status_code, 200)
        self.assertNotIn("Your Rating", response.text)
