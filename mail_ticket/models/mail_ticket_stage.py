from odoo import fields, models


class MailTicketStage(models.Model):
    _name = "mail.ticket.stage"
    _description = "Ticket Stage"
    _order = "sequence, id"

    name = fields.Char(required=True, translate=True)
    sequence = fields.Integer(default=10)
    fold = fields.Boolean(
        string="Folded in Kanban",
        help="Tickets in a folded stage are collapsed in the kanban view.",
    )
    is_closed = fields.Boolean(
        string="Closing Stage",
        help="Tickets in this stage are done: they no longer count as open.",
    )
    reopen_on_reply = fields.Boolean(
        string="Reopen on Customer Reply",
        help="A customer reply to a ticket in this stage moves it back to the first stage.",
    )
    rating_template_id = fields.Many2one(
        "mail.template",
        string="Rating Email Template",
        domain=[("model", "=", "mail.ticket")],
        help="If set, the customer is asked by email to rate the ticket when it reaches "
        "this stage.",
    )
    team_ids = fields.Many2many(
        "mail.ticket.team",
        "mail_ticket_stage_team_rel",
        "stage_id",
        "team_id",
        string="Teams",
        help="The teams whose tickets use this stage; without a team, every team's do.",
    )
    description = fields.Text(translate=True)
    active = fields.Boolean(default=True)
