from types import MappingProxyType

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
        entries = super().create([self._normalized_vals(vals) for vals in vals_list])
        self.env.registry.clear_cache()  # _blocked_names
        return entries

    def write(self, vals):
        result = super().write(self._normalized_vals(vals))
        if {"name", "active"} & vals.keys():
            self.env.registry.clear_cache()
        return result

    def unlink(self):
        result = super().unlink()
        self.env.registry.clear_cache()
        return result

    @api.model
    @tools.ormcache()
    def _blocked_names(self):
        """``{name: id}`` of the active entries: read once per worker, not once per
        mail (every mail to a ticket mailbox is checked; the list changes seldom)."""
        entries = self.sudo().search_fetch([], ["name"], order="id")
        return MappingProxyType({entry.name: entry.id for entry in entries})

    @api.model
    def _blocked_emails(self, emails):
        """``{email: blocked sender}`` for the normalized addresses of ``emails`` that are
        blocked, by their address or their domain."""
        names = self._blocked_names()
        found = {}
        for email in filter(None, emails):
            entry_id = names.get(email) or names.get(f"@{tools.email_domain_extract(email)}")
            if entry_id:
                found[email] = self.sudo().browse(entry_id)
        return found
