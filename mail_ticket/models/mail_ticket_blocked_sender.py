from odoo import api, fields, models, tools
from odoo.exceptions import ValidationError


class MailTicketBlockedSender(models.Model):
    """An address, or a whole domain, whose mail opens no ticket and creates no contact
    (it is recorded among the fetched mails as ignored, with the reason)."""

    _name = "mail.ticket.blocked.sender"
    _description = "Blocked Sender"
    _order = "name"

    name = fields.Char(
        string="Address or Domain",
        required=True,
        help="An address (spam@example.com), or a whole domain with its @ (@example.com).",
    )
    reason = fields.Char(required=True)
    user_id = fields.Many2one(
        "res.users",
        string="Added By",
        default=lambda self: self.env.user,
        readonly=True,
        ondelete="set null",
    )
    active = fields.Boolean(default=True)

    _name_uniq = models.Constraint("UNIQUE(name)", "This sender is blocked already.")

    @api.model
    def _normalize_name(self, name):
        """``spam@Example.com`` -> ``spam@example.com``; ``Example.com`` or ``@example.com``
        -> ``@example.com``; None when neither an address nor a domain."""
        name = (name or "").strip().lower()
        if name.startswith("@") or "@" not in name:
            domain = name.removeprefix("@")
            if domain and "." in domain and tools.email_normalize(f"x@{domain}"):
                return f"@{domain}"
            return None
        return tools.email_normalize(name) or None

    def _normalized_vals(self, vals):
        if "name" in vals:
            name = self._normalize_name(vals["name"])
            if not name:
                raise ValidationError(
                    self.env._(
                        "“%(name)s” is neither a mail address nor a domain (@example.com).",
                        name=vals["name"],
                    )
                )
            vals = {**vals, "name": name}
        return vals

    @api.model_create_multi
    def create(self, vals_list):
        return super().create([self._normalized_vals(vals) for vals in vals_list])

    def write(self, vals):
        return super().write(self._normalized_vals(vals))

    @api.model
    def _blocked_emails(self, emails):
        """``{email: blocked sender}`` for the normalized addresses of ``emails`` that are
        blocked, by their address or their domain: one search for them all."""
        emails = {email for email in emails if email}
        if not emails:
            return {}
        keys = emails | {f"@{tools.email_domain_extract(email)}" for email in emails}
        blocked = {entry.name: entry for entry in self.sudo().search([("name", "in", list(keys))])}
        found = {}
        for email in emails:
            entry = blocked.get(email) or blocked.get(f"@{tools.email_domain_extract(email)}")
            if entry:
                found[email] = entry
        return found
