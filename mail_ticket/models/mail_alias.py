from odoo import api, models


class MailAlias(models.Model):
    _inherit = "mail.alias"

    @api.model_create_multi
    def create(self, vals_list):
        self.env["mail.alias.domain"]._clear_gateway_alias_memo()
        return super().create(vals_list)

    def write(self, vals):
        self.env["mail.alias.domain"]._clear_gateway_alias_memo()
        return super().write(vals)

    def unlink(self):
        self.env["mail.alias.domain"]._clear_gateway_alias_memo()
        return super().unlink()
