from odoo.exceptions import AccessError
from odoo.tests import tagged, users
from odoo.tools import mute_logger

from .common import MailTicketCommon


@tagged("post_install", "-at_install", "mail_ticket", "security")
class TestMailTicketSecurity(MailTicketCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ticket = cls._create_customer_ticket()
        cls.ticket_c2 = cls.env["mail.ticket"].create(
            {"name": "Other company", "company_id": cls.company_2.id}
        )

    def test_admin_is_manager(self):
        self.assertTrue(self.user_admin.has_group("mail_ticket.mail_ticket_group_manager"))
        self.assertTrue(self.user_manager.has_group("mail_ticket.mail_ticket_group_user"))

    @users("agent")
    def test_agent_works_tickets_but_cannot_delete(self):
        ticket = self.ticket.with_user(self.env.user)
        ticket.write({"user_id": self.env.uid, "stage_id": self.stage_in_progress.id})
        new = self.env["mail.ticket"].create({"name": "Neu"})
        self.assertEqual(new.create_uid, self.env.user)
        self.env["mail.ticket.tag"].create({"name": "Hardware"})
        with self.assertRaises(AccessError), mute_logger("odoo.models"):
            ticket.unlink()
        with self.assertRaises(AccessError), mute_logger("odoo.models"):
            self.stage_open.with_user(self.env.user).write({"name": "Offen"})
        with self.assertRaises(AccessError), mute_logger("odoo.models"):
            self.env["mail.ticket.stage"].create({"name": "Eskaliert"})

    @users("helpdesk_manager")
    def test_manager_deletes_and_configures(self):
        self.env["mail.ticket.stage"].create({"name": "Eskaliert"})
        ticket = self.ticket.with_user(self.env.user)
        message = ticket.message_post(
            body="Antwort", message_type="comment", subtype_xmlid="mail.mt_comment"
        )
        comment = ticket.comment_ids
        self.assertEqual(comment.message_id, message)
        ticket.unlink()
        self.assertFalse(comment.exists(), "comments go with their ticket")

    @users("employee")
    def test_non_agent_sees_no_ticket(self):
        with self.assertRaises(AccessError), mute_logger("odoo.models"):
            self.env["mail.ticket"].search([])
        with self.assertRaises(AccessError), mute_logger("odoo.models"):
            self.env["mail.ticket.comment"].search([])

    @users("agent")
    def test_agent_reads_comments_but_cannot_forge_them(self):
        ticket = self.ticket.with_user(self.env.user)
        ticket.message_post(body="Antwort", message_type="comment", subtype_xmlid="mail.mt_comment")
        comment = ticket.comment_ids
        self.assertTrue(comment.is_from_email is False)
        with self.assertRaises(AccessError), mute_logger("odoo.models"):
            comment.write({"is_from_email": True})
        with self.assertRaises(AccessError), mute_logger("odoo.models"):
            comment.unlink()

    @users("agent")
    def test_multi_company(self):
        tickets = self.env["mail.ticket"].search([])
        self.assertIn(self.ticket, tickets)
        self.assertNotIn(
            self.ticket_c2, tickets, "an agent sees only the tickets of their companies"
        )
        with self.assertRaises(AccessError), mute_logger("odoo.models"):
            self.ticket_c2.with_user(self.env.user).read(["name"])
