from contextlib import contextmanager
from datetime import datetime
from unittest.mock import patch

from odoo import fields
from odoo.fields import Command
from odoo.tests import tagged
from odoo.tests.common import freeze_time
from odoo.tools import mute_logger

from .common import MailTicketCommon

FRIDAY_4PM = datetime(2026, 12, 4, 16, 0)  # a Friday


class SlaCommon(MailTicketCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.agent_2 = cls._create_agent("agent2", "Bernd Agent")
        cls.calendar = cls.env["resource.calendar"].create(
            {
                "name": "Mo-Fr 8-17",
                "tz": "UTC",
                "attendance_ids": [Command.clear()]
                + [
                    Command.create(
                        {
                            "name": f"Tag {day}",
                            "dayofweek": str(day),
                            "hour_from": 8,
                            "hour_to": 17,
                            "day_period": "full_day",
                        }
                    )
                    for day in range(5)
                ],
            }
        )
        cls.team = cls.env["mail.ticket.team"].create(
            {
                "name": "Kundendienst",
                "member_ids": (cls.user_agent | cls.agent_2).ids,
                "resource_calendar_id": cls.calendar.id,
                "assignment": "user",
                "assign_user_id": cls.user_agent.id,
            }
        )
        cls.sla = cls.env["mail.ticket.sla"].create(
            {
                "name": "Antwort in 4 Stunden",
                "team_id": cls.team.id,
                "stage_id": cls.stage_solved.id,
                "time": 4,
                "exclude_stage_ids": cls.stage_waiting.ids,
            }
        )
        cls.server = cls._create_ticket_mailbox(ticket_team_id=cls.team.id)
        cls.mailbox = cls.server

    @contextmanager
    def at(self, when):
        """Now is ``when`` (naive UTC), for Python and for the database's timestamps of
        the records created (the transaction's ``now()``)."""
        with freeze_time(when), patch.object(self.env.cr, "now", lambda: when):
            yield

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def new_ticket(self, when=FRIDAY_4PM, **kwargs):
        with self.at(when):
            return self.receive_mail(**kwargs)

    def move(self, ticket, stage, when):
        with self.at(when):
            ticket.stage_id = stage

    def cron(self, when):
        with self.at(when):
            self.Ticket._cron_update_sla()


@tagged("post_install", "-at_install", "mail_ticket")
class TestSla(SlaCommon):
    """The SLA policies of a mailbox's team hold for the tickets its mail opens."""

    def test_deadline_counts_working_hours(self):
        ticket = self.new_ticket()
        self.assertEqual(ticket.team_id, self.team)
        status = ticket.sla_status_ids
        self.assertEqual(status.sla_id, self.sla)
        # Friday 16:00-17:00, then Monday 08:00-11:00
        self.assertEqual(ticket.sla_deadline, datetime(2026, 12, 7, 11, 0))
        self.assertEqual((ticket.sla_status, status.status), ("ongoing", "ongoing"))

    def test_waiting_for_the_customer_pauses_the_clock(self):
        ticket = self.new_ticket()
        self.move(ticket, self.stage_waiting, datetime(2026, 12, 7, 9, 0))
        self.assertFalse(ticket.sla_deadline, "no deadline while paused")
        self.assertEqual(ticket.sla_status, "ongoing")
        self.cron(datetime(2026, 12, 7, 12, 0))  # past the first deadline, but paused
        self.assertEqual(ticket.sla_status, "ongoing")
        self.move(ticket, self.stage_open, datetime(2026, 12, 7, 13, 30))
        # 4.5 working hours paused: the deadline moves from 11:00 to 15:30
        self.assertEqual(ticket.sla_deadline, datetime(2026, 12, 7, 15, 30))
        self.assertEqual(ticket.sla_status_ids.paused_hours, 4.5)

    def test_reached_in_time(self):
        ticket = self.new_ticket()
        self.move(ticket, self.stage_in_progress, datetime(2026, 12, 7, 9, 0))
        self.assertEqual(ticket.sla_status, "ongoing", "not the policy's stage yet")
        self.move(ticket, self.stage_solved, datetime(2026, 12, 7, 10, 0))
        status = ticket.sla_status_ids
        self.assertEqual(ticket.sla_status, "reached")
        self.assertFalse(ticket.sla_deadline, "nothing left to be late for")
        self.assertEqual(status.reached_datetime, datetime(2026, 12, 7, 10, 0))
        self.assertEqual(status.deadline, datetime(2026, 12, 7, 11, 0))
        self.move(ticket, self.stage_open, datetime(2026, 12, 7, 12, 0))
        self.assertEqual(ticket.sla_status, "reached", "reached once is reached")

    def test_later_stage_reaches_too_late(self):
        ticket = self.new_ticket()
        self.move(ticket, self.stage_closed, datetime(2026, 12, 7, 12, 30))
        status = ticket.sla_status_ids
        self.assertEqual((ticket.sla_status, status.status), ("failed", "failed"))
        self.assertEqual(status.exceeded_hours, 1.5)

    def test_cron_fails_overdue_tickets_and_tells_the_team_once(self):
        ticket = self.new_ticket()
        self.cron(datetime(2026, 12, 7, 10, 59))
        self.assertEqual(ticket.sla_status, "ongoing")
        with self.mock_mail_gateway():
            self.cron(datetime(2026, 12, 7, 11, 30))
        self.assertEqual(ticket.sla_status, "failed")
        self.assertEqual(ticket.sla_status_ids.exceeded_hours, 0.5)
        failures = ticket.message_ids.filtered(lambda m: "Antwort in 4 Stunden failed" in m.body)
        self.assertEqual(len(failures), 1)
        self.assertEqual(
            failures.partner_ids, (self.user_agent | self.agent_2).partner_id, "the members"
        )
        self.assertTrue(failures.subtype_id.internal, "an internal note")
        self.cron(datetime(2026, 12, 7, 12, 0))
        self.assertEqual(ticket.sla_status_ids.exceeded_hours, 1.0, "the hours late count on")
        self.assertEqual(
            len(ticket.message_ids.filtered(lambda m: "Antwort in 4 Stunden failed" in m.body)),
            1,
            "once",
        )
        self.assertEqual(
            ticket.with_user(self.user_agent).search([("sla_status", "=", "failed")]), ticket
        )

    def test_warning_activity_once(self):
        ticket = self.new_ticket()
        self.cron(datetime(2026, 12, 7, 9, 30))  # 1.5 working hours left: not yet
        self.assertFalse(ticket.activity_ids)
        self.cron(datetime(2026, 12, 7, 10, 15))
        activity = ticket.activity_ids
        self.assertEqual(len(activity), 1)
        self.assertEqual(activity.user_id, self.user_agent)
        self.assertEqual(activity.activity_type_id, self.env.ref("mail.mail_activity_data_todo"))
        self.assertIn("Antwort in 4 Stunden", activity.summary)
        self.cron(datetime(2026, 12, 7, 10, 30))
        self.assertEqual(ticket.activity_ids, activity, "once")

    def test_warning_of_an_unassigned_ticket_goes_to_the_first_member(self):
        self.team.assignment = "none"
        ticket = self.new_ticket()
        self.assertFalse(ticket.user_id)
        # Friday 16:30: the deadline is two working hours away, after the weekend
        self.cron(datetime(2026, 12, 4, 16, 30))
        self.assertFalse(ticket.activity_ids)
        self.cron(datetime(2026, 12, 7, 10, 30))
        self.assertEqual(ticket.activity_ids.user_id, self.team.member_ids[:1])

    def test_policies_by_priority_and_tags(self):
        vip = self.env["mail.ticket.tag"].create({"name": "VIP"})
        urgent = self.env["mail.ticket.sla"].create(
            {
                "name": "Dringend in 1 Stunde",
                "team_id": self.team.id,
                "priority": "3",
                "tag_ids": vip.ids,
                "stage_id": self.stage_in_progress.id,
                "time": 1,
            }
        )
        ticket = self.new_ticket()
        self.assertEqual(ticket.sla_status_ids.sla_id, self.sla, "priority Medium, no tag")
        with self.at(FRIDAY_4PM):
            ticket.write({"priority": "3", "tag_ids": vip.ids})
        self.assertEqual(ticket.sla_status_ids.sla_id, self.sla | urgent)
        self.assertEqual(ticket.sla_deadline, datetime(2026, 12, 4, 17, 0), "the earliest")
        with self.at(FRIDAY_4PM):
            ticket.tag_ids = False
        self.assertEqual(ticket.sla_status_ids.sla_id, self.sla, "no longer holds")
        with self.at(FRIDAY_4PM):
            ticket.team_id = False
        self.assertFalse(ticket.sla_status_ids)
        self.assertFalse(ticket.sla_status)

    def test_dashboard_counts_failed_tickets(self):
        ticket = self.new_ticket()
        self.cron(datetime(2026, 12, 7, 11, 30))
        team = self.team.with_user(self.user_agent)
        self.assertEqual(team.sla_failed_ticket_count, 1)
        action = team.with_context(dashboard_filter="sla_failed").action_open_tickets()
        self.assertEqual(self.Ticket.search(action["domain"]), ticket)

    def test_ticket_without_calendar_counts_calendar_hours(self):
        self.team.resource_calendar_id = False
        ticket = self.new_ticket()
        self.assertEqual(ticket.sla_deadline, datetime(2026, 12, 4, 20, 0))

    def test_warning_hours_setting(self):
        settings = self.env["res.config.settings"].create({})
        self.assertEqual(settings.mail_ticket_sla_warning_hours, 1.0)
        settings.mail_ticket_sla_warning_hours = 3
        settings.execute()
        ticket = self.new_ticket()
        self.cron(datetime(2026, 12, 7, 8, 30))  # 2.5 working hours left
        self.assertEqual(len(ticket.activity_ids), 1)
        self.assertEqual(fields.Date.to_string(ticket.activity_ids.date_deadline), "2026-12-07")


@tagged("post_install", "-at_install", "mail_ticket")
class TestSlaFetched(TestSla):
    """The same, each mail fetched in a batch from the mailbox."""

    fetched = True
