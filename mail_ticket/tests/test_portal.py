from urllib.parse import parse_qs, urlsplit

from odoo.tests import HttpCase, tagged
from odoo.tests.common import JsonRpcException

from odoo.addons.mail.tests.common import mail_new_test_user


@tagged("post_install", "-at_install", "mail_ticket")
class TestMailTicketPortal(HttpCase):
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
        cls.customer = cls.user_customer.partner_id
        cls.user_stranger = mail_new_test_user(
            cls.env,
            login="portal_stranger",
            groups="base.group_portal",
            name="Other Customer",
            email="other.customer@example.com",
        )
        cls.ticket = cls.env["mail.ticket"].create(
            {
                "name": "Printer prints blank pages",
                "partner_id": cls.customer.id,
                "description": "<p>Since this morning the printer prints blank pages.</p>",
            }
        )

    def _assert_ticket_shown(self, response):
        self.assertEqual(response.status_code, 200)
        self.assertEqual(urlsplit(response.url).path, f"/my/tickets/{self.ticket.id}")
        self.assertIn(self.ticket.number, response.text)
        self.assertIn(self.ticket.name, response.text)

    def test_anonymous_with_token(self):
        token = self.ticket._portal_ensure_token()
        response = self.url_open(f"/my/tickets/{self.ticket.id}?access_token={token}")
        self._assert_ticket_shown(response)
        self.assertIn("o_portal_chatter", response.text)

    def test_anonymous_wrong_token(self):
        self.ticket._portal_ensure_token()
        for query in ("?access_token=wrong-token", ""):
            response = self.url_open(f"/my/tickets/{self.ticket.id}{query}")
            self.assertNotIn(self.ticket.number, response.text)
            self.assertNotIn(self.ticket.name, response.text)
            self.assertEqual(urlsplit(response.url).path, "/web/login")

    def test_portal_customer_sees_own_ticket(self):
        self.authenticate("portal_customer", "portal_customer")
        response = self.url_open("/my/tickets")
        self.assertEqual(response.status_code, 200)
        self.assertIn(self.ticket.number, response.text)
        self.assertIn(self.ticket.name, response.text)
        self._assert_ticket_shown(self.url_open(f"/my/tickets/{self.ticket.id}"))
        for sortby in ("date", "number", "stage"):
            response = self.url_open(f"/my/tickets?sortby={sortby}")
            self.assertIn(self.ticket.number, response.text)
        self.assertEqual(
            self.env["mail.ticket"].with_user(self.user_customer).search([]), self.ticket
        )

    def test_portal_stranger_has_no_access(self):
        self.authenticate("portal_stranger", "portal_stranger")
        response = self.url_open("/my/tickets")
        self.assertEqual(response.status_code, 200)
        self.assertNotIn(self.ticket.number, response.text)
        response = self.url_open(f"/my/tickets/{self.ticket.id}")
        self.assertEqual(urlsplit(response.url).path, "/my")
        self.assertNotIn(self.ticket.number, response.text)
        self.assertNotIn(self.ticket.name, response.text)
        self.assertFalse(self.env["mail.ticket"].with_user(self.user_stranger).search([]))

    def test_notification_link_opens_ticket_without_login(self):
        link = self.ticket._notify_get_action_link(
            "view",
            access_token=self.ticket._portal_ensure_token(),
            pid=self.customer.id,
            hash=self.ticket._sign_token(self.customer.id),
        )
        self.assertIn("/mail/view", link)
        response = self.url_open(link)
        self._assert_ticket_shown(response)
        query = parse_qs(urlsplit(response.url).query)
        self.assertEqual(query.get("pid"), [str(self.customer.id)])
        self.assertIn(f'data-pid="{self.customer.id}"', response.text)

    def _post_from_portal(self, body, message_type="comment", **access):
        return self.make_jsonrpc_request(
            "/mail/message/post",
            {
                "thread_model": "mail.ticket",
                "thread_id": self.ticket.id,
                # as the portal composer sends it
                "post_data": {
                    "body": body,
                    "message_type": message_type,
                    "subtype_xmlid": "mail.mt_comment",
                },
                **access,
            },
        )

    def test_portal_post_is_never_an_incoming_mail(self):
        """A portal post that claims to be a mail that came in is a comment: it reopens
        nothing and is not mirrored as a customer mail."""
        stage_solved = self.env.ref("mail_ticket.stage_solved")
        self.ticket.stage_id = stage_solved
        token = self.ticket._portal_ensure_token()
        self.authenticate("portal_customer", "portal_customer")
        self._post_from_portal("Wieder offen!", message_type="email", token=token)
        message = self.ticket.message_ids.filtered(lambda m: "Wieder offen" in m.body)
        self.assertEqual(message.message_type, "comment")
        self.assertEqual(self.ticket.stage_id, stage_solved, "no reopening")
        self.assertFalse(self.ticket.comment_ids.filtered("is_from_email"))
        self.assertFalse(self.ticket.date_last_customer_message)

    def test_unverified_ticket_is_in_no_portal(self):
        """A forged mail from the customer's address opens a ticket that is nobody's:
        the customer whose address was used does not see it in their portal."""
        self.env["ir.config_parameter"].sudo().set_param("mail_ticket.authserv_id", "mx.test")
        server = self.env["fetchmail.server"].create(
            {
                "name": "Support",
                "server": "127.0.0.1",
                "user": "support@test.mycompany.com",
                "password": "x",
                "object_id": self.env["ir.model"]._get_id("mail.ticket"),
            }
        )
        forged = (
            "From: Sylvie Lelitre <sylvie.lelitre@agrolait.example.com>\r\n"
            "To: support@test.mycompany.com\r\nSubject: Bitte Passwort zuruecksetzen\r\n"
            "Message-ID: <forged@evil.example>\r\n"
            "Authentication-Results: mx.test; dmarc=fail header.from=agrolait.example.com\r\n"
            "\r\nNeues Passwort bitte an mallory@evil.example.\r\n"
        )
        thread_id = (
            self.env["mail.thread"]
            .with_context(default_fetchmail_server_id=server.id)
            .message_process("mail.ticket", forged)
        )
        forged_ticket = self.env["mail.ticket"].browse(thread_id)
        self.assertFalse(forged_ticket.partner_id)
        self.assertIn("DMARC", forged_ticket.unverified_reason)
        self.authenticate("portal_customer", "portal_customer")
        response = self.url_open("/my/tickets")
        self.assertIn(self.ticket.number, response.text)
        self.assertNotIn(forged_ticket.number, response.text)
        self.assertFalse(
            forged_ticket.with_user(self.user_customer).has_access("read"),
            "and not by its id either",
        )

    def test_customer_replies_from_portal(self):
        token = self.ticket._portal_ensure_token()
        self._post_from_portal("Still blank pages.", token=token)
        self.authenticate("portal_customer", "portal_customer")
        self._post_from_portal("Any news?", token=token)
        messages = self.ticket.message_ids.filtered(
            lambda message: message.message_type == "comment"
        )
        self.assertEqual(len(messages), 2)
        self.assertEqual(messages.author_id, self.customer)
        self.assertFalse(any(messages.mapped("is_internal")))
        self.assertEqual(len(self.ticket.comment_ids), 2)
        # no token: a portal user may not write tickets
        self.authenticate("portal_stranger", "portal_stranger")
        with self.assertRaisesRegex(JsonRpcException, "NotFound"):
            self._post_from_portal("Let me in")
        self.assertNotIn("Let me in", "".join(self.ticket.message_ids.mapped("body")))
