from odoo import api, models
from odoo.fields import Command

TAG = "Via Integrator"


class MailTicket(models.Model):
    _inherit = "mail.ticket"

    @api.model
    def message_new(self, msg_dict, custom_values=None):
        """An integrator's rule, the standard way: every ticket a mail opens is tagged."""
        tag = self.env["mail.ticket.tag"].sudo().search([("name", "=", TAG)], limit=1)
        tag = tag or self.env["mail.ticket.tag"].sudo().create({"name": TAG})
        custom_values = {**(custom_values or {}), "tag_ids": [Command.link(tag.id)]}
        return super().message_new(msg_dict, custom_values=custom_values)
