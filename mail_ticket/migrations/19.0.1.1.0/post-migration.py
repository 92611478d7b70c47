import logging
from collections import defaultdict

from odoo import SUPERUSER_ID, api
from odoo.fields import Command
from odoo.tools import SQL, sql

_logger = logging.getLogger(__name__)

SAVED_TABLE = "mail_ticket_mig_mailbox_assignment"  # see pre-migration.py


def migrate(cr, version):
    env = api.Environment(cr, SUPERUSER_ID, {})
    migrate_mailbox_assignments(env)
    migrate_rating_parents(env)


def migrate_mailbox_assignments(env):
    """One team per mailbox that assigned its new tickets (saved by the pre-migration),
    named after it: one agent stays one agent (and the team's member), a team in turn
    becomes the members taking the tickets in turn. The mailbox routes to the team, and
    its tickets join it (their stages are shared by all teams: nothing else moves)."""
    cr = env.cr
    if not sql.table_exists(cr, SAVED_TABLE):
        return
    cr.execute(
        SQL(
            "SELECT server_id, assignment, user_id, member_ids FROM %s ORDER BY server_id",
            SQL.identifier(SAVED_TABLE),
        )
    )
    Users = env["res.users"].with_context(active_test=False)
    for server_id, assignment, user_id, member_ids in cr.fetchall():
        server = env["fetchmail.server"].with_context(active_test=False).browse(server_id).exists()
        if not server or server.ticket_team_id:
            continue
        user = Users.browse(user_id).exists() if assignment == "user" else Users
        members = Users.browse(member_ids or []).exists() | user
        company = server.ticket_company_id
        if any(company not in member.company_ids for member in members):
            company = company.browse()  # a team of all companies keeps its agents
        team = env["mail.ticket.team"].create(
            {
                "name": server.name,
                "company_id": company.id,
                "member_ids": [Command.set(members.ids)],
                "assignment": "user" if user else "balanced" if members else "none",
                "assign_user_id": user.id,
            }
        )
        server.ticket_team_id = team
        tickets = (
            env["mail.ticket"]
            .with_context(active_test=False, tracking_disable=True)
            .search([("fetchmail_server_id", "=", server.id), ("team_id", "=", False)])
        )
        tickets.write({"team_id": team.id})
        _logger.info(
            "Mailbox %s: its assignment moved to the new team %s (%d tickets)",
            server.name,
            team.name,
            len(tickets),
        )
    cr.execute(SQL("DROP TABLE %s", SQL.identifier(SAVED_TABLE)))
    # the mailbox's team of agents in turn, which the ORM leaves behind
    cr.execute("DROP TABLE IF EXISTS fetchmail_server_ticket_team_rel")


def migrate_rating_parents(env):
    """The ratings of tickets were grouped by mailbox (their parent): they are by team
    now, the ticket's team (or none)."""
    team_model_id = env["ir.model"]._get_id("mail.ticket.team")
    ratings = env["rating.rating"].search([("res_model", "=", "mail.ticket")])
    tickets = env["mail.ticket"].with_context(active_test=False).browse(ratings.mapped("res_id"))
    team_of = {ticket.id: ticket.team_id.id for ticket in tickets.exists()}
    by_team = defaultdict(list)
    for rating in ratings:
        by_team[team_of.get(rating.res_id, False)].append(rating.id)
    for team_id, rating_ids in by_team.items():
        env["rating.rating"].browse(rating_ids).write(
            {"parent_res_model_id": team_model_id if team_id else False, "parent_res_id": team_id}
        )
