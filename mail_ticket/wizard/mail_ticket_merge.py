from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.fields import Command


class MailTicketMerge(models.TransientModel):
    """Merge duplicate tickets into one: their conversation, comments, attachments
    and followers move to the ticket that stays; the others are archived and hand
    any later mail to it."""

    _name = "mail.ticket.merge"
    _description = "Merge Tickets"

    @api.model
    def default_get(self, fields):
        result = super().default_get(fields)
        context = self.env.context
        if (
            "ticket_ids" in fields
            and context.get("active_model") == "mail.ticket"
            and context.get("active_ids")
        ):
            result["ticket_ids"] = [Command.set(context["active_ids"])]
        return result

    ticket_ids = fields.Many2many("mail.ticket", string="Tickets", required=True)
    target_ticket_id = fields.Many2one(
        "mail.ticket",
        string="Merge Into",
        compute="_compute_target_ticket_id",
        store=True,
        readonly=False,
        required=True,
        domain="[('id', 'in', ticket_ids)]",
        help="The ticket that stays; the others are archived. Defaults to the oldest.",
    )
    different_customers = fields.Boolean(compute="_compute_different_customers")
    confirm_different_customers = fields.Boolean(
        string="Merge Tickets of Different Customers",
        help="The customers of the merged tickets follow the ticket that stays and "
        "receive its answers.",
    )

    @api.depends("ticket_ids")
    def _compute_target_ticket_id(self):
        for wizard in self:
            if wizard.target_ticket_id not in wizard.ticket_ids:
                wizard.target_ticket_id = wizard.ticket_ids.sorted("id")[:1]

    @api.depends("ticket_ids.partner_id")
    def _compute_different_customers(self):
        for wizard in self:
            wizard.different_customers = len(wizard.ticket_ids.partner_id) > 1

    def action_merge(self):
        self.ensure_one()
        target = self.target_ticket_id
        tickets = self.ticket_ids - target
        if target not in self.ticket_ids or not tickets:
            raise UserError(self.env._("Choose at least two tickets and the one that stays."))
        if len(self.ticket_ids.company_id) > 1:
            raise UserError(self.env._("Tickets of different companies cannot be merged."))
        if self.different_customers and not self.confirm_different_customers:
            raise UserError(
                self.env._(
                    "These tickets are of different customers (%(customers)s): confirm that "
                    "they are to be merged.",
                    customers=self.ticket_ids.partner_id.mapped("display_name"),
                )
            )
        target._merge_tickets(tickets)
        return {
            "type": "ir.actions.act_window",
            "res_model": "mail.ticket",
            "res_id": target.id,
            "view_mode": "form",
            "views": [(False, "form")],
        }
