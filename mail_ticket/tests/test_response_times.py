from datetime import datetime, timedelta
from statistics import median

from freezegun import freeze_time

from odoo import fields
from odoo.tests import tagged, users
from odoo.tools import mute_logger

from .common import MailTicketCommon

START = datetime(2026, 8, 10, 8, 0, 0)


@tagged("post_install", "-at_install", "mail_ticket")
class TestResponseTimes(MailTicketCommon):
    """How fast the team answers: the first answer that reached the customer, the
    hours to it and to closing, their average and median in the reporting views."""

    def ticket_created_at(self, when, **vals):
        with freeze_time(when):
            ticket = self.Ticket.create({"name": "Drucker", "partner_id": self.customer.id, **vals})
            ticket.flush_recordset()
        self.env.cr.execute(
            "UPDATE mail_ticket SET create_date = %s WHERE id = %s", (when, ticket.id)
        )
        ticket.invalidate_recordset(["create_date"])
        ticket.modified(["create_date"])
        return ticket

    def answer_at(self, ticket, when, note=False):
        with freeze_time(when):
            ticket.with_user(self.user_agent).message_post(
                body="Bitte starten Sie den Drucker neu.",
                message_type="comment",
                subtype_xmlid="mail.mt_note" if note else "mail.mt_comment",
            )
            ticket.flush_recordset()

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_first_answer_not_notes(self):
        ticket = self.ticket_created_at(START)
        self.answer_at(ticket, START + timedelta(hours=1), note=True)
        self.assertFalse(ticket.date_first_answer, "a note does not reach the customer")
        self.assertEqual(ticket.first_answer_hours, 0.0)
        self.answer_at(ticket, START + timedelta(hours=3))
        self.answer_at(ticket, START + timedelta(hours=5))
        self.assertEqual(ticket.date_first_answer, START + timedelta(hours=3))
        self.assertEqual(ticket.first_answer_hours, 3.0)
        self.assertEqual(ticket.date_last_agent_answer, START + timedelta(hours=5))
        with freeze_time(START + timedelta(hours=50)):
            ticket.stage_id = self.stage_solved
            ticket.flush_recordset()
        self.assertEqual(ticket.close_hours, 50.0)

    def test_customer_mail_is_no_answer(self):
        ticket = self.receive_mail()
        self.assertFalse(ticket.date_first_answer)
        self.receive_mail(subject=f"Re: [{ticket.number}] Drucker")
        self.assertFalse(ticket.date_first_answer)

    def test_average_and_median_by_group(self):
        """Four answered tickets of one agent (1, 2, 3 and 10 hours), one unanswered
        that must not count as zero hours; two of another agent (4 and 8 hours)."""
        other = self.user_manager
        hours = {self.user_agent: [1, 2, 3, 10], other: [4, 8]}
        for user, user_hours in hours.items():
            for offset in user_hours:
                ticket = self.ticket_created_at(START, user_id=user.id)
                self.answer_at(ticket, START + timedelta(hours=offset))
        self.ticket_created_at(START, user_id=self.user_agent.id)
        groups = self.Ticket.formatted_read_group(
            [("user_id", "in", (self.user_agent | other).ids)],
            ["user_id"],
            ["__count", "first_answer_hours:avg", "first_answer_hours_median:median"],
            order="user_id",
        )
        result = {
            group["user_id"][0]: (
                group["__count"],
                group["first_answer_hours:avg"],
                group["first_answer_hours_median:median"],
            )
            for group in groups
        }
        self.assertEqual(result[self.user_agent.id], (5, 4.0, median([1, 2, 3, 10])))
        self.assertEqual(result[other.id], (2, 6.0, 6.0))
        self.assertEqual(median([1, 2, 3, 10]), 2.5)
        (total,) = self.Ticket.formatted_read_group(
            [("user_id", "in", (self.user_agent | other).ids)],
            [],
            ["first_answer_hours:avg", "first_answer_hours_median:median", "close_hours:avg"],
        )
        self.assertAlmostEqual(total["first_answer_hours:avg"], 28 / 6)
        self.assertEqual(total["first_answer_hours_median:median"], 3.5)
        self.assertFalse(total["close_hours:avg"], "no ticket is closed: no time to close")

    def test_reporting_measures(self):
        fields_info = self.Ticket.fields_get(
            ["first_answer_hours", "first_answer_hours_median", "close_hours_median"],
            ["aggregator"],
        )
        self.assertEqual(
            {name: info.get("aggregator") for name, info in fields_info.items()},
            {
                "first_answer_hours": "avg",
                "first_answer_hours_median": "median",
                "close_hours_median": "median",
            },
        )
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "mail_ticket.mail_ticket_action_report"
        )
        self.assertEqual(action["view_mode"], "pivot,graph,list,form")
        for group_by in (
            "stage_id",
            "fetchmail_server_id",
            "user_id",
            "tag_ids",
            "create_date:week",
        ):
            with self.subTest(group_by=group_by):
                self.Ticket.formatted_read_group(
                    [], [group_by], ["__count", "first_answer_hours_median:median"]
                )

    @users("agent")
    def test_unanswered_and_waiting_too_long(self):
        self.env["ir.config_parameter"].sudo().set_param("mail_ticket.waiting_hours", 4)
        now = fields.Datetime.now()
        ticket = self.ticket_created_at(now - timedelta(hours=6))
        fresh = self.ticket_created_at(now - timedelta(hours=1))
        mine = ticket | fresh
        Ticket = self.Ticket.with_context(active_test=True)
        self.assertEqual(
            Ticket.search([("id", "in", mine.ids), ("date_first_answer", "=", False)]), mine
        )
        waiting = [("id", "in", mine.ids), ("is_waiting_too_long", "=", True)]
        self.assertEqual(Ticket.search(waiting), ticket)
        self.assertEqual(
            Ticket.search([("id", "in", mine.ids), ("is_waiting_too_long", "=", False)]), fresh
        )
        self.assertTrue(ticket.is_waiting_too_long)
        self.answer_at(ticket.sudo(), now)
        self.assertFalse(Ticket.search(waiting), "answered: waiting no more")
        self.assertEqual(ticket.date_first_answer, now)
        # the customer writes again and waits once more
        ticket.sudo().date_last_customer_message = now - timedelta(hours=5)
        ticket.sudo().date_last_agent_answer = now - timedelta(hours=6)
        self.assertEqual(Ticket.search(waiting), ticket)
        ticket.sudo().stage_id = self.stage_closed
        self.assertFalse(Ticket.search(waiting), "a closed ticket waits for nothing")
