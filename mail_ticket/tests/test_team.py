import importlib.util
from pathlib import Path

from odoo.exceptions import AccessError
from odoo.tests import Form, tagged, users
from odoo.tools import mute_logger

from odoo.addons.mail.tests.common import mail_new_test_user

from .common import MailTicketCommon

MIGRATIONS = Path(__file__).parent.parent / "migrations" / "19.0.1.1.0"


def load_migration(name):
    spec = importlib.util.spec_from_file_location(
        f"mail_ticket_migration_{name}", MIGRATIONS / name
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TeamCommon(MailTicketCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.agent_2 = cls._create_agent("agent2", "Bernd Agent")
        cls.stage_triage = cls.env["mail.ticket.stage"].create({"name": "Triage", "sequence": 0})
        cls.team = cls.env["mail.ticket.team"].create(
            {
                "name": "Technischer Support",
                "member_ids": cls.user_agent.ids,
                "stage_ids": cls.stage_triage.ids,
                "visibility": "members",
            }
        )
        cls.server = cls._create_ticket_mailbox(ticket_team_id=cls.team.id)


@tagged("post_install", "-at_install", "mail_ticket")
class TestTeamGateway(TeamCommon):
    """A mailbox's mail opens tickets of its team, in the team's first stage."""

    mailbox = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.mailbox = cls.server

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_team_and_first_stage_from_mailbox(self):
        ticket = self.receive_mail()
        self.assertEqual(ticket.team_id, self.team)
        self.assertEqual(ticket.stage_id, self.stage_triage, "the team's own first stage")
        other = self.env["mail.ticket.team"].create({"name": "Kundendienst"})
        self.server.ticket_team_id = other
        ticket = self.receive_mail(subject="Andere Frage")
        self.assertEqual(ticket.team_id, other)
        self.assertEqual(ticket.stage_id, self.stage_open, "a team without stages: shared ones")
        self.server.ticket_team_id = False
        ticket = self.receive_mail(subject="Dritte Frage")
        self.assertFalse(ticket.team_id)
        self.assertEqual(ticket.stage_id, self.stage_open, "not the stage of a team")

    @mute_logger("odoo.addons.mail.models.mail_thread")
    def test_reply_reopens_in_the_team_first_stage(self):
        ticket = self.receive_mail()
        ticket.stage_id = self.stage_solved
        self.receive_mail(subject=f"Re: [{ticket.number}] Drucker druckt nicht")
        self.assertEqual(ticket.stage_id, self.stage_triage)


@tagged("post_install", "-at_install", "mail_ticket")
class TestTeamGatewayFetched(TestTeamGateway):
    """The same, each mail fetched in a batch from the mailbox."""

    fetched = True


@tagged("post_install", "-at_install", "mail_ticket")
class TestTeam(TeamCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ticket = cls.Ticket.create(
            {"name": "Server steht", "team_id": cls.team.id, "partner_id": cls.customer.id}
        )
        cls.shared_ticket = cls.Ticket.create({"name": "Frage zur Rechnung"})

    def test_ticket_of_a_team_starts_in_its_first_stage(self):
        self.assertEqual(self.ticket.stage_id, self.stage_triage)
        self.assertEqual(self.shared_ticket.stage_id, self.stage_open)
        with Form(self.Ticket.with_context(default_team_id=self.team.id)) as form:
            form.name = "Neu aus dem Team"
            self.assertEqual(form.stage_id, self.stage_triage)

    @users("agent2")
    def test_members_only_team_hidden_from_other_agents(self):
        Ticket = self.env["mail.ticket"]
        self.assertEqual(
            Ticket.search([("name", "in", ["Server steht", "Frage zur Rechnung"])]),
            self.shared_ticket,
            "a ticket of no team, not the members-only team's",
        )
        with self.assertRaises(AccessError):
            Ticket.browse(self.ticket.id).read(["name"])
        self.team.sudo().visibility = "all"
        self.assertEqual(Ticket.browse(self.ticket.id).name, "Server steht")

    @users("helpdesk_manager")
    def test_managers_configure_teams_agents_read_them(self):
        with Form(self.env["mail.ticket.team"]) as form:
            form.name = "Vertrieb"
            form.assignment = "user"
            form.assign_user_id = self.user_agent
        team = form.record
        self.assertEqual(team.resource_calendar_id, self.env.company.resource_calendar_id)
        team = team.with_user(self.user_agent)
        self.assertEqual(team.name, "Vertrieb")
        with self.assertRaises(AccessError):
            team.name = "Anders"

    @users("agent")
    def test_members_see_their_team_tickets(self):
        self.assertEqual(self.env["mail.ticket"].browse(self.ticket.id).name, "Server steht")

    @users("helpdesk_manager")
    def test_managers_see_all_tickets(self):
        self.assertEqual(self.env["mail.ticket"].browse(self.ticket.id).name, "Server steht")

    @users("agent")
    def test_kanban_of_a_team_shows_its_stages(self):
        def columns(default_team_id):  # as the team's kanban asks
            groups = (
                self.env["mail.ticket"]
                .with_context(read_group_expand=True, default_team_id=default_team_id)
                .web_read_group([("team_id", "=", default_team_id)], ["stage_id"], ["__count"])
            )["groups"]
            return [group["stage_id"][1] for group in groups]

        shared = ["Open", "In Progress", "Waiting for Customer", "Solved", "Closed"]
        self.assertEqual(columns(default_team_id=self.team.id), ["Triage", *shared])
        other = self.env["mail.ticket.team"].sudo().create({"name": "Kundendienst"})
        self.assertEqual(columns(default_team_id=other.id), shared)
        # the stages a ticket may take: its team's and the shared ones
        stage_domain = self.Ticket._fields["stage_id"].domain
        self.assertIn("team_id", stage_domain)
        self.assertEqual(
            self.env["mail.ticket.stage"].search(other._stage_domain()).mapped("name"), shared
        )

    def test_dashboard_counts_and_links(self):
        self.Ticket.create(
            [
                {"name": "Zugewiesen", "team_id": self.team.id, "user_id": self.user_agent.id},
                {"name": "Erledigt", "team_id": self.team.id, "stage_id": self.stage_closed.id},
            ]
        )
        team = self.team.with_user(self.user_agent)
        self.assertEqual((team.open_ticket_count, team.unassigned_ticket_count), (2, 1))
        action = team.with_context(dashboard_filter="unassigned").action_open_tickets()
        self.assertEqual(self.Ticket.search(action["domain"]), self.ticket)
        self.assertEqual(action["context"]["default_team_id"], self.team.id)
        action = team.with_context(dashboard_filter="open").action_open_tickets()
        self.assertEqual(
            self.Ticket.search(action["domain"]).mapped("name"), ["Zugewiesen", "Server steht"]
        )

    def test_team_groups_the_ratings(self):
        self.stage_solved.rating_template_id = self.env.ref(
            "mail_ticket.mail_template_ticket_rating"
        )
        with self.mock_mail_gateway():
            self.ticket.stage_id = self.stage_solved
        rating = self.ticket.rating_ids
        rating.write({"rating": 5, "consumed": True})
        self.assertEqual(rating.parent_res_name, self.team.name)
        self.assertEqual((self.team.rating_count, self.team.rating_avg), (1, 5))
        self.assertEqual(self.team.rating_percentage_satisfaction, 100)
        action = self.team.action_open_ratings()
        self.assertEqual(self.env["rating.rating"].search(action["domain"]), rating)


@tagged("post_install", "-at_install", "mail_ticket")
class TestTeamMigration(MailTicketCommon):
    """19.0.1.1.0: the mailboxes' assignments become teams."""

    def _old_columns(self):
        """The schema of 19.0.1.0.1, in this test's transaction."""
        self.env.cr.execute(
            """ALTER TABLE fetchmail_server ADD COLUMN ticket_assignment varchar,
                   ADD COLUMN ticket_user_id integer;
               CREATE TABLE fetchmail_server_ticket_team_rel
                   (server_id integer, user_id integer)"""
        )

    @mute_logger("odoo.addons.mail_ticket.migrations")
    def test_mailbox_assignment_becomes_a_team(self):
        agent_2 = mail_new_test_user(
            self.env,
            login="agent2",
            name="Bernd Agent",
            groups="base.group_user,mail_ticket.mail_ticket_group_user",
        )
        one, turns, nobody = (
            self._create_ticket_mailbox(name=name) for name in ("Vertrieb", "Support", "Info")
        )
        ticket = self.Ticket.create({"name": "Alt", "fetchmail_server_id": turns.id})
        rating = self.env["rating.rating"].create(
            {"res_model_id": self.env["ir.model"]._get_id("mail.ticket"), "res_id": ticket.id}
        )
        # as 19.0.1.0.1 grouped the ratings: by mailbox
        rating.write(
            {
                "parent_res_model_id": self.env["ir.model"]._get_id("fetchmail.server"),
                "parent_res_id": turns.id,
            }
        )
        self._old_columns()
        cr = self.env.cr
        cr.execute(
            "UPDATE fetchmail_server SET ticket_assignment = 'user', ticket_user_id = %s "
            "WHERE id = %s",
            [self.user_agent.id, one.id],
        )
        cr.execute(
            "UPDATE fetchmail_server SET ticket_assignment = 'team' WHERE id = %s", [turns.id]
        )
        cr.execute(
            "UPDATE fetchmail_server SET ticket_assignment = 'none' WHERE id = %s", [nobody.id]
        )
        cr.execute(
            "INSERT INTO fetchmail_server_ticket_team_rel VALUES (%s, %s), (%s, %s)",
            [turns.id, self.user_agent.id, turns.id, agent_2.id],
        )
        load_migration("pre-migration.py").migrate(cr, "19.0.1.0.1")
        load_migration("post-migration.py").migrate(cr, "19.0.1.0.1")
        self.env.invalidate_all()

        self.assertEqual(one.ticket_team_id.name, "Vertrieb")
        self.assertEqual(
            (one.ticket_team_id.assignment, one.ticket_team_id.assign_user_id),
            ("user", self.user_agent),
        )
        self.assertEqual(one.ticket_team_id.member_ids, self.user_agent)
        team = turns.ticket_team_id
        self.assertEqual((team.name, team.assignment), ("Support", "balanced"))
        self.assertEqual(team.member_ids, self.user_agent | agent_2)
        self.assertEqual(ticket.team_id, team, "the mailbox's tickets join its team")
        self.assertEqual(
            (rating.parent_res_model, rating.parent_res_id, rating.parent_res_name),
            ("mail.ticket.team", team.id, "Support"),
            "its ratings too",
        )
        self.assertFalse(nobody.ticket_team_id, "no assignment, no team")
        # new mail of the mailbox is assigned as before
        ticket = self.receive_mail(server=turns, email_from="neu@kunde.example.com")
        self.assertEqual(ticket.team_id, team)
        self.assertIn(ticket.user_id, self.user_agent | agent_2)
