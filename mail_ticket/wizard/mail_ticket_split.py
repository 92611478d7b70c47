from odoo import api, fields, models
from odoo.exceptions import UserError

from ..tools.ticket_reference import title_from_subject


class MailTicketSplit(models.TransientModel):
    """Split a message off its ticket: a customer who asks about something else in a
    reply gets a ticket of its own for it, opened from that message."""

    _name = "mail.ticket.split"
    _description = "Split Ticket"

    @api.model
    def default_get(self, fields):
        result = super().default_get(fields)
        context = self.env.context
        if (
            "ticket_id" in fields
            and not result.get("ticket_id")
            and context.get("active_model") == "mail.ticket"
            and context.get("active_id")
        ):
            result["ticket_id"] = context["active_id"]
        return result

    ticket_id = fields.Many2one("mail.ticket", required=True)
    message_id = fields.Many2one(
        "mail.message",
        compute="_compute_message_id",
        store=True,
        readonly=False,
        required=True,
        domain="[('model', '=', 'mail.ticket'), ('res_id', '=', ticket_id), "
        "('message_type', 'in', ('email', 'comment')), ('author_id.partner_share', '=', True)]",
        help="The customer's message that opens the new ticket: its text becomes the "
        "description, its author the customer, its attachments are copied.",
    )
    message_body = fields.Html(related="message_id.body")
    name = fields.Char(
        string="Title",
        compute="_compute_name",
        store=True,
        readonly=False,
        help="The title of the new ticket: the message's subject, else the ticket's title.",
    )

    @api.depends("ticket_id")
    def _compute_message_id(self):
        for wizard in self:
            if wizard.message_id.res_id != wizard.ticket_id.id:
                wizard.message_id = wizard.ticket_id._split_default_message()

    @api.depends("message_id", "ticket_id")
    def _compute_name(self):
        for wizard in self:
            wizard.name = (
                title_from_subject(wizard.message_id.subject) or wizard.ticket_id.name or False
            )

    def action_split(self):
        self.ensure_one()
        message = self.message_id
        if message.model != "mail.ticket" or not message.res_id:
            raise UserError(
                self.env._("Only a message of a ticket can be split off into a new ticket.")
            )
        ticket = self.env["mail.ticket"].browse(message.res_id)
        if self.ticket_id and ticket != self.ticket_id:
            raise UserError(
                self.env._(
                    "The message is not one of ticket %(ticket)s.",
                    ticket=self.ticket_id.display_name,
                )
            )
        if not message.author_id:
            raise UserError(
                self.env._(
                    "The message has no author: a new ticket needs a customer. Set the "
                    "customer's contact on the message's ticket first, or create the "
                    "ticket by hand."
                )
            )
        if not message.author_id.partner_share:
            raise UserError(
                self.env._(
                    "The message is an agent's (%(author)s): only a customer's message "
                    "opens a ticket.",
                    author=message.author_id.display_name,
                )
            )
        new_ticket = ticket._split_message(message, name=self.name)
        return {
            "type": "ir.actions.act_window",
            "res_model": "mail.ticket",
            "res_id": new_ticket.id,
            "view_mode": "form",
            "views": [(False, "form")],
        }
