from odoo.tests import Form, tagged
from odoo.tools import mute_logger

from .common import MAIL_TICKET_TEMPLATE, MailTicketCommon


@tagged("post_install", "-at_install", "mail_ticket")
class TestAssignment(MailTicketCommon):
    """The team of a mailbox gives its new tickets from mail to nobody, one agent, or its
    members in turn."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.team = cls.env["mail.ticket.team"].create({"name": "Kundendienst"})
        cls.server = cls._create_ticket_mailbox(ticket_team_id=cls.team.id)
        cls.agent_2 = cls._create_agent("agent2", "Bernd Agent")
        cls.agent_3 = cls._create_agent("agent3", "Carla Agent")

    def mail_from(self, name, subject="Drucker druckt nicht"):
        return self.receive_mail(
            subject=subject,
            email_from=f'"{name}" <{name.lower()}@kunde.example.com>',
            server=self.server,
        )

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_nobody_and_one_agent(self):
        self.assertEqual(self.team.assignment, "none")
        self.assertFalse(self.mail_from("Anna").user_id)
        with Form(self.team) as team_form:
            team_form.assignment = "user"
            team_form.assign_user_id = self.user_agent
        bert = self.mail_from("Bert")
        self.assertEqual((bert.user_id, bert.team_id), (self.user_agent, self.team))
        self.team.assignment = "none"
        self.assertFalse(self.mail_from("Cora").user_id)

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_mailbox_without_team_assigns_nobody(self):
        self.server.ticket_team_id = False
        ticket = self.mail_from("Anna")
        self.assertFalse(ticket.user_id)
        self.assertFalse(ticket.team_id)

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_team_in_turn_balanced_by_open_tickets(self):
        team = self.user_agent | self.agent_2 | self.agent_3
        self.team.write({"assignment": "balanced", "member_ids": team.ids})
        # the first agent already has two open tickets, and a closed one
        self.Ticket.create([{"name": "Alt", "user_id": self.user_agent.id} for __ in range(2)])
        self.Ticket.create(
            {"name": "Erledigt", "user_id": self.agent_2.id, "stage_id": self.stage_closed.id}
        )
        assignees = [self.mail_from(name).user_id for name in ("Anna", "Bert", "Cora", "Dora")]
        self.assertEqual(
            assignees[:2], [self.agent_2, self.agent_3], "the ones without open tickets first"
        )
        # now each of the others has one open ticket, the first agent two
        self.assertEqual(assignees[2:], [self.agent_2, self.agent_3], "then in turn")
        open_counts = [
            self.Ticket.search_count([("user_id", "=", user.id), ("is_closed", "=", False)])
            for user in team
        ]
        self.assertEqual(open_counts, [2, 2, 2])

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_customer_keeps_their_agent(self):
        team = self.user_agent | self.agent_2
        self.team.write({"assignment": "balanced", "member_ids": team.ids})
        first = self.mail_from("Anna")
        self.assertEqual(first.user_id, self.user_agent)
        self.mail_from("Bert")
        self.Ticket.create([{"name": "Last", "user_id": self.user_agent.id} for __ in range(3)])
        again = self.mail_from("Anna", subject="Noch eine Frage")
        self.assertEqual(again.user_id, self.user_agent, "the agent of her last open ticket")
        (first | again).user_id = self.agent_3  # not a member: balanced again
        self.assertEqual(self.mail_from("Anna", subject="Dritte Frage").user_id, self.agent_2)
        self.Ticket.search(
            [("partner_id.email", "=", "anna@kunde.example.com")]
        ).stage_id = self.stage_closed
        self.assertEqual(
            self.mail_from("Anna", subject="Vierte Frage").user_id,
            self.agent_2,
            "no open ticket: balanced",
        )

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_team_of_inactive_users_assigns_nobody(self):
        self.agent_2.active = False
        self.team.write({"assignment": "balanced", "member_ids": self.agent_2.ids})
        self.assertFalse(self.mail_from("Anna").user_id)


@tagged("post_install", "-at_install", "mail_ticket")
class TestAssignmentFetched(TestAssignment):
    """The same assignments, each mail fetched in a batch from the mailbox."""

    fetched = True

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_members_in_turn_within_one_batch(self):
        """Mails fetched together are shared out as if they came one by one."""
        team = self.user_agent | self.agent_2 | self.agent_3
        self.team.write({"assignment": "balanced", "member_ids": team.ids})
        raws = [
            self.format(
                MAIL_TICKET_TEMPLATE,
                subject="Drucker druckt nicht",
                email_from=f'"{name}" <{name.lower()}@kunde.example.com>',
                msg_id=f"<{self._next_msg_id()}@kunde.example.com>",
            ).encode()
            for name in ("Anna", "Bert", "Cora", "Dora")
        ]
        tickets = self.receive_fetched(raws, self.server)
        self.assertEqual(
            [ticket.user_id for ticket in tickets],
            [self.user_agent, self.agent_2, self.agent_3, self.user_agent],
        )
