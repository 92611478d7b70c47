from odoo.tests import HttpCase, tagged

from .common import MAIL_TICKET_TEMPLATE


@tagged("post_install", "-at_install", "mail_ticket")
class TestMailTicketUi(HttpCase):
    def test_agent_answers_from_the_ticket(self):
        customer = self.env["res.partner"].create(
            {"name": "Sylvie Lelitre", "email": "sylvie.lelitre@agrolait.example.com"}
        )
        mail = MAIL_TICKET_TEMPLATE.format(
            return_path="",
            to="support@example.com",
            cc="",
            email_from=f'"{customer.name}" <{customer.email}>',
            subject="Drucker im Lager",
            msg_id="<ui-tour@agrolait.example.com>",
            extra="",
        )
        ticket_id = self.env["mail.thread"].sudo().message_process("mail.ticket", mail)
        ticket = self.env["mail.ticket"].browse(ticket_id)

        self.start_tour("/odoo/tickets", "mail_ticket_agent_answer", login="admin")

        comment = ticket.comment_ids
        self.assertEqual(len(comment), 1)
        self.assertFalse(comment.is_from_email)
        self.assertEqual(comment.author_id, self.env.ref("base.partner_admin"))
        self.assertIn(customer, comment.message_id.notified_partner_ids)
        self.assertTrue(ticket.date_last_agent_answer)
