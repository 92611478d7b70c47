from datetime import timedelta
from unittest.mock import patch

from odoo import Command, fields
from odoo.tests import HttpCase, freeze_time, tagged

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

    def test_agent_merges_and_reports(self):
        customer = self.env["res.partner"].create(
            {"name": "Sylvie Lelitre", "email": "sylvie.lelitre@agrolait.example.com"}
        )
        first, duplicate = self.env["mail.ticket"].create(
            [
                {"name": "Drucker im Lager", "partner_id": customer.id},
                {"name": "Drucker immer noch kaputt", "partner_id": customer.id},
            ]
        )
        duplicate.message_post(
            body="Der Drucker ist immer noch kaputt.",
            message_type="comment",
            subtype_xmlid="mail.mt_comment",
            author_id=customer.id,
        )
        self.start_tour(
            "/odoo/tickets?view_type=list", "mail_ticket_merge_and_report", login="admin"
        )
        self.assertFalse(duplicate.active)
        self.assertEqual(duplicate.merged_into_id, first)
        self.assertIn(
            "Der Drucker ist immer noch kaputt", "".join(first.message_ids.mapped("body"))
        )

    def test_team_dashboard_sla_report_split(self):
        customer = self.env["res.partner"].create(
            {"name": "Sylvie Lelitre", "email": "sylvie.lelitre@agrolait.example.com"}
        )
        team = self.env["mail.ticket.team"].create(
            {
                "name": "Technik Tour",
                "member_ids": [Command.set(self.env.ref("base.user_admin").ids)],
            }
        )
        self.env["mail.ticket.sla"].create(
            {
                "name": "Antwort in einer Stunde",
                "team_id": team.id,
                "time": 1,
                "stage_id": self.env.ref("mail_ticket.stage_solved").id,
            }
        )
        # a week ago (for Python and the database's timestamps): one working hour later,
        # whatever the weekday, it failed
        week_ago = fields.Datetime.now() - timedelta(days=7)
        with freeze_time(week_ago), patch.object(self.env.cr, "now", lambda: week_ago):
            ticket = self.env["mail.ticket"].create(
                {"name": "Server steht", "partner_id": customer.id, "team_id": team.id}
            )
        ticket.message_post(
            body="Und der Drucker im Lager druckt auch nicht mehr.",
            message_type="email",
            subtype_xmlid="mail.mt_comment",
            author_id=customer.id,
        )
        self.env["mail.ticket"]._cron_update_sla()
        self.assertEqual(ticket.sla_status, "failed")

        self.start_tour("/odoo/helpdesk-overview", "mail_ticket_team_sla_split", login="admin")

        split = self.env["mail.ticket"].search([("name", "=", "Drucker im Lager druckt nicht")])
        self.assertEqual(split.partner_id, customer)
        self.assertIn("Drucker im Lager", split.description)
        self.assertEqual(ticket.stage_id, self.env.ref("mail_ticket.stage_open"), "left as it was")
