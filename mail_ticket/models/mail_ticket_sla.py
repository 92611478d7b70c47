from odoo import api, fields, models
from odoo.exceptions import ValidationError

from .mail_ticket import TICKET_PRIORITIES


class MailTicketSla(models.Model):
    _name = "mail.ticket.sla"
    _description = "SLA Policy"
    _order = "team_id, sequence, id"
    _check_company_auto = True

    name = fields.Char(required=True, translate=True)
    description = fields.Html(translate=True)
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)
    team_id = fields.Many2one(
        "mail.ticket.team", required=True, index=True, ondelete="cascade", check_company=True
    )
    company_id = fields.Many2one(related="team_id.company_id", store=True, index=True)
    priority = fields.Selection(
        TICKET_PRIORITIES,
        string="Minimum Priority",
        default="0",
        required=True,
        help="The policy applies to the team's tickets of this priority or a higher one.",
    )
    tag_ids = fields.Many2many(
        "mail.ticket.tag",
        string="Tags",
        help="When set, the policy applies only to tickets carrying at least one of these tags.",
    )
    stage_id = fields.Many2one(
        "mail.ticket.stage",
        string="Target Stage",
        required=True,
        help="The policy is reached when the ticket gets to this stage or a later one.",
    )
    exclude_stage_ids = fields.Many2many(
        "mail.ticket.stage",
        "mail_ticket_sla_exclude_stage_rel",
        "sla_id",
        "stage_id",
        string="Paused In",
        help="While a ticket is in one of these stages (e.g. Waiting for Customer), its "
        "clock stops: the deadline moves by the working hours spent there.",
    )
    time = fields.Float(
        string="Within (working hours)",
        required=True,
        help="The working hours of the team (its Working Hours) from the creation of the "
        "ticket to the target stage.",
    )

    @api.constrains("time")
    def _check_time(self):
        if any(sla.time <= 0 for sla in self):
            raise ValidationError(self.env._("An SLA policy gives a ticket some working hours."))

    @api.constrains("stage_id", "exclude_stage_ids")
    def _check_exclude_stage_ids(self):
        if any(sla.stage_id in sla.exclude_stage_ids for sla in self):
            raise ValidationError(self.env._("An SLA policy cannot pause in its target stage."))

    # ------------------------------------------------------------
    # BUSINESS
    # ------------------------------------------------------------

    def _applies_to(self, ticket):
        """Whether this policy holds for ``ticket``: of its team, of the minimum
        priority or higher, and carrying at least one of its tags (when it has some)."""
        self.ensure_one()
        return (
            ticket.team_id == self.team_id
            and (ticket.priority or "0") >= self.priority
            and (not self.tag_ids or bool(self.tag_ids & ticket.tag_ids))
        )
