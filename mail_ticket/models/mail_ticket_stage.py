from odoo import api, fields, models, tools


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
    description = fields.Text(translate=True)
    active = fields.Boolean(default=True)

    @api.model_create_multi
    def create(self, vals_list):
        self.env.registry.clear_cache()
        return super().create(vals_list)

    def write(self, vals):
        self.env.registry.clear_cache()
        return super().write(vals)

    def unlink(self):
        self.env.registry.clear_cache()
        return super().unlink()

    @api.model
    @tools.ormcache()
    def _get_routing_stages(self):
        """(first stage id, ids of the stages a customer reply reopens), read once."""
        stages = self.sudo().search([])
        return stages[:1].id, frozenset(stages.filtered("reopen_on_reply").ids)
