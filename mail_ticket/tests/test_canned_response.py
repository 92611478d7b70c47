from odoo.tests import HttpCase, tagged

from odoo.addons.mail.tests.common import mail_new_test_user


@tagged("post_install", "-at_install", "mail_ticket")
class TestCannedResponse(HttpCase):
    """Odoo's canned responses (``::shortcut`` in the composer) work in a ticket's
    chatter: the agents' shared ones are offered, and the answer reaches the ticket."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.user_agent = mail_new_test_user(
            cls.env,
            login="canned_agent",
            name="Agnes Agent",
            email="agnes.agent@test.mycompany.com",
            groups="base.group_user,mail_ticket.mail_ticket_group_user",
        )
        cls.customer = cls.env["res.partner"].create(
            {"name": "Sylvie Lelitre", "email": "sylvie.lelitre@agrolait.example.com"}
        )
        cls.ticket = cls.env["mail.ticket"].create(
            {"name": "Drucker druckt nicht", "partner_id": cls.customer.id}
        )
        Canned = cls.env["mail.canned.response"]
        cls.restart = Canned.create(
            {
                "source": "neustart",
                "substitution": "Bitte starten Sie den Drucker neu und versuchen Sie es erneut.",
                "group_ids": [cls.env.ref("mail_ticket.mail_ticket_group_user").id],
            }
        )
        cls.private = Canned.create({"source": "privat", "substitution": "Nur für den Admin."})

    def test_shared_canned_response_in_the_ticket_composer(self):
        self.authenticate("canned_agent", "canned_agent")
        # what the composer's suggestions fetch once "::" is typed
        result = self.make_jsonrpc_request("/mail/data", {"fetch_params": ["mail.canned.response"]})
        offered = {canned["source"]: canned for canned in result["mail.canned.response"]}
        self.assertIn("neustart", offered)
        self.assertEqual(offered["neustart"]["substitution"], self.restart.substitution)
        self.assertNotIn("privat", offered, "another user's own canned response")

        # the agent sends the substituted text from the ticket's composer
        self.make_jsonrpc_request(
            "/mail/message/post",
            {
                "thread_model": "mail.ticket",
                "thread_id": self.ticket.id,
                "post_data": {
                    "body": self.restart.substitution,
                    "message_type": "comment",
                    "subtype_xmlid": "mail.mt_comment",
                },
                "canned_response_ids": [self.restart.id],
            },
        )
        message = self.ticket.message_ids[0]
        self.assertIn("Bitte starten Sie den Drucker neu", message.body)
        self.assertEqual(message.author_id, self.user_agent.partner_id)
        self.assertIn(self.customer, message.notified_partner_ids, "the customer gets it")
        self.assertEqual(self.ticket.comment_ids.message_id, message, "an agent's answer")
        self.assertTrue(self.restart.last_used)
