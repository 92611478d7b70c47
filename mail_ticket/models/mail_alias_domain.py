from odoo import api, models

# cr.cache key of the alias look-ups made while one incoming mail is processed
GATEWAY_ALIAS_MEMO = "mail_ticket.gateway_find_aliases"


class MailAliasDomain(models.Model):
    _inherit = "mail.alias.domain"

    def _find_aliases(self, email_list):
        """While the gateway processes a mail, answer repeated look-ups from a memo.

        Routing, author and recipient look-ups ask the same question for the same
        addresses several times per mail (two queries each); the answer cannot change
        while the mail is processed, unless aliases are edited, which clears the memo.
        """
        memo = self.env.cr.cache.get(GATEWAY_ALIAS_MEMO)
        if memo is None:
            return super()._find_aliases(email_list)
        key = tuple(email_list)
        if key not in memo:
            memo[key] = super()._find_aliases(email_list)
        return list(memo[key])

    @api.model
    def _clear_gateway_alias_memo(self):
        if memo := self.env.cr.cache.get(GATEWAY_ALIAS_MEMO):
            memo.clear()

    @api.model_create_multi
    def create(self, vals_list):
        self._clear_gateway_alias_memo()
        return super().create(vals_list)

    def write(self, vals):
        self._clear_gateway_alias_memo()
        return super().write(vals)

    def unlink(self):
        self._clear_gateway_alias_memo()
        return super().unlink()
