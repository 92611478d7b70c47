from datetime import timedelta

from odoo import fields, models
from odoo.fields import Domain

from odoo.addons.rating.models.rating_data import RATING_LIMIT_MIN, RATING_LIMIT_SATISFIED

# the dashboard's figures of a team: its tickets that (domain)
DASHBOARD_DOMAINS = {
    "open": [("is_closed", "=", False), ("is_spam", "=", False)],
    "unassigned": [("is_closed", "=", False), ("is_spam", "=", False), ("user_id", "=", False)],
    "sla_failed": [("is_closed", "=", False), ("sla_status", "=", "failed")],
}


class MailTicketTeam(models.Model):
    _name = "mail.ticket.team"
    _description = "Helpdesk Team"
    _inherit = ["mail.thread", "rating.parent.mixin"]
    _order = "sequence, name, id"
    _check_company_auto = True
    _rating_satisfaction_days = 30  # the dashboard's ratings: the last 30 days

    def _default_resource_calendar_id(self):
        return self.env.company.resource_calendar_id

    name = fields.Char(required=True, tracking=True)
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)
    color = fields.Integer()
    company_id = fields.Many2one(
        "res.company",
        default=lambda self: self.env.company,
        index=True,
        help="Leave empty for a team that serves every company.",
    )
    member_ids = fields.Many2many(
        "res.users",
        "mail_ticket_team_member_rel",
        "team_id",
        "user_id",
        string="Members",
        domain="[('share', '=', False)]",
        check_company=True,
        help="The agents of the team: those who take its tickets in turn, see them when "
        "the team's tickets are for its members only, and are told of its failed SLAs.",
    )
    stage_ids = fields.Many2many(
        "mail.ticket.stage",
        "mail_ticket_stage_team_rel",
        "team_id",
        "stage_id",
        string="Stages",
        help="The stages of this team's tickets besides the stages of all teams (stages "
        "without a team).",
    )
    resource_calendar_id = fields.Many2one(
        "resource.calendar",
        string="Working Hours",
        default=lambda self: self._default_resource_calendar_id(),
        help="The hours the SLA deadlines of the team's tickets count.",
    )
    visibility = fields.Selection(
        [("all", "All agents"), ("members", "Members only")],
        string="Tickets Visible To",
        default="all",
        required=True,
        help="Members only: the team's tickets are seen by its members and the helpdesk "
        "managers alone.",
    )
    assignment = fields.Selection(
        [("none", "Nobody"), ("user", "One agent"), ("balanced", "Members, in turn")],
        string="Assign New Tickets",
        default="none",
        required=True,
        tracking=True,
        help="Who gets the new tickets of the team that have nobody yet. In turn: the "
        "member with the fewest open tickets; a customer's new ticket goes to the agent of "
        "their last open ticket when that agent is a member.",
    )
    assign_user_id = fields.Many2one(
        "res.users",
        string="Assignee",
        domain="[('share', '=', False)]",
        check_company=True,
    )
    fetchmail_server_ids = fields.One2many("fetchmail.server", "ticket_team_id", string="Mailboxes")
    ticket_ids = fields.One2many("mail.ticket", "team_id", string="Tickets")
    sla_ids = fields.One2many("mail.ticket.sla", "team_id", string="SLA Policies")
    open_ticket_count = fields.Integer(string="Open Tickets", compute="_compute_ticket_counts")
    unassigned_ticket_count = fields.Integer(
        string="Unassigned Tickets", compute="_compute_ticket_counts"
    )
    sla_failed_ticket_count = fields.Integer(
        string="Failed SLA Tickets", compute="_compute_ticket_counts"
    )

    _assign_user_required = models.Constraint(
        "CHECK(assignment != 'user' OR assign_user_id IS NOT NULL)",
        "A team assigning its tickets to one agent needs that agent.",
    )

    def _compute_ticket_counts(self):
        Ticket = self.env["mail.ticket"]
        counts = {}
        for key, domain in DASHBOARD_DOMAINS.items():
            counts[key] = dict(
                Ticket._read_group(
                    Domain.AND([domain, [("team_id", "in", self.ids)]]), ["team_id"], ["__count"]
                )
            )
        for team in self:
            team.open_ticket_count = counts["open"].get(team._origin, 0)
            team.unassigned_ticket_count = counts["unassigned"].get(team._origin, 0)
            team.sla_failed_ticket_count = counts["sla_failed"].get(team._origin, 0)

    # ------------------------------------------------------------
    # ACTIONS
    # ------------------------------------------------------------

    def action_open_tickets(self):
        """The team's kanban of tickets (its stages), filtered as the dashboard's figure
        clicked (context ``dashboard_filter``: open, unassigned, sla_failed)."""
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("mail_ticket.mail_ticket_action")
        figure = self.env.context.get("dashboard_filter")
        action["display_name"] = self.name
        action["domain"] = Domain.AND(
            [[("team_id", "=", self.id)], DASHBOARD_DOMAINS.get(figure, [])]
        )
        action["context"] = {
            "default_team_id": self.id,
            "search_default_open": 1 if figure is None else 0,
        }
        return action

    def action_open_ratings(self):
        """The team's ratings of the last 30 days, as the dashboard counts them."""
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "mail_ticket.rating_rating_action_mail_ticket"
        )
        since = fields.Datetime.now() - timedelta(days=self._rating_satisfaction_days)
        action["domain"] = [
            ("res_model", "=", "mail.ticket"),
            ("parent_res_model", "=", self._name),
            ("parent_res_id", "=", self.id),
            ("consumed", "=", True),
            ("rating", ">=", RATING_LIMIT_MIN),
            ("write_date", ">=", since),
        ]
        if self.env.context.get("satisfied"):
            action["domain"].append(("rating", ">=", RATING_LIMIT_SATISFIED))
        return action

    # ------------------------------------------------------------
    # BUSINESS
    # ------------------------------------------------------------

    def _stage_domain(self):
        """The stages of this team's tickets: its own and those of all teams."""
        return Domain("team_ids", "=", False) | Domain("team_ids", "in", self.ids)

    def _first_stage(self):
        """The stage a new ticket of the team starts in: the first of its stages (its
        own and the shared ones); without a team, the first shared stage."""
        if self:
            self.ensure_one()
            stage = self.env["mail.ticket.stage"].search_fetch(
                self._stage_domain(), ["is_closed"], limit=1
            )
            if stage:
                return stage
        return self.env["mail.ticket"]._default_stage_id()

    def _assign_new_ticket(self, customer):
        """The agent who takes a new ticket of the team without one (empty for nobody)."""
        self.ensure_one()
        if self.assignment == "user":
            return self.assign_user_id
        if self.assignment == "balanced":
            return self.env["mail.ticket"]._assign_from_team(self.member_ids, customer)
        return self.env["res.users"]
