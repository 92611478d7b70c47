"""What a fetched batch does as Odoo's gateway does it mail by mail, for many mails at
once: each method names the Odoo 19.0 code it mirrors, which must be read again when
that code changes. A module that overrides one of these steps on tickets or
``mail.thread`` makes the batch step aside (``BATCH_SKIPPED_METHODS``), unless the
override is mirrored here too (``BATCH_KNOWN_MODULES``).

- ``addons/mail/models/mail_thread.py``, ``MailThread._message_route_process``: the post
  of an incoming mail (subtype, the ping of the parent's author, the keys not stored,
  the recipients written after the post): :meth:`_batch_post_params`, ``_batch_post``;
- ``MailThread._detect_loop_sender`` and ``_detect_loop_sender_domain``:
  :meth:`_batch_check_loops`;
- ``MailThread._routing_reset_bounce``: :meth:`_batch_reset_bounce`;
- ``addons/mass_mailing/models/mail_thread.py``, ``MailThread._message_route_process``:
  a reply marks the mailing traces it answers opened and replied:
  :meth:`_batch_mailing_replied`.
"""

from collections import Counter
from datetime import timedelta

from odoo import api, models, tools
from odoo.fields import Domain

from ..tools.mail_verdict import VERDICT_KEY

# what the gateway parses but does not store on the message (``_message_route_process``)
_GATEWAY_ONLY_KEYS = (
    "from",
    "recipients",
    "cc",
    "to",
    "references",
    "in_reply_to",
    "x_odoo_message_id",
    "is_bounce",
    "bounced_email",
    "bounced_message",
    "bounced_msg_ids",
    "bounced_partner",
    "partner_ids",
    VERDICT_KEY,
)


class MailTicket(models.Model):
    _inherit = "mail.ticket"  # pylint: disable=consider-merging-classes-inherited

    @api.model
    def _batch_post_params(self, mail, creation_subtype_id):
        """The ``message_post`` values of a batch mail, as ``_message_route_process``
        builds them: the creation subtype for a new ticket, else a note for a reply to
        an internal message and a comment otherwise; the parent message's author
        pinged when the reply is internal or the parent is a customer's.

        :param creation_subtype_id: the tickets' ``_creation_subtype()``, read once
        """
        msg_dict = mail.msg_dict
        partner_ids = []
        if mail.ticket_is_new:
            subtype_id = creation_subtype_id
        else:
            subtype_xmlid = "mail.mt_note" if msg_dict.get("is_internal") else "mail.mt_comment"
            subtype_id = self.env["ir.model.data"]._xmlid_to_res_id(subtype_xmlid)
            parent = self.env["mail.message"].sudo().browse(msg_dict.get("parent_id"))
            if parent.author_id and (msg_dict.get("is_internal") or parent.author_id.partner_share):
                partner_ids = parent.author_id.ids
        params = dict(
            incoming_email_cc=msg_dict.pop("cc_filtered", False),
            incoming_email_to=msg_dict.pop("to_filtered", False),
            subtype_id=subtype_id,
            partner_ids=partner_ids,
            **msg_dict,
        )
        for key in _GATEWAY_ONLY_KEYS:
            params.pop(key, None)
        return params

    @api.model
    def _batch_check_loops(self, mails):
        """Leave to ``message_process`` the mails of a sender the gateway may find in a
        loop (``_detect_loop_sender``): those counting the batch near the threshold."""
        routed = [mail for mail in mails if mail.route]
        if not routed:
            return
        get_param = self.env["ir.config_parameter"].sudo().get_param
        minutes = int(get_param("mail.gateway.loop.minutes", 120))
        threshold = int(get_param("mail.gateway.loop.threshold", 20))
        since = self.env.cr.now() - timedelta(minutes=minutes)
        senders = list({mail.sender.email for mail in routed})
        allowed = set(
            self.env["mail.gateway.allowed"]
            .sudo()
            .search_fetch([("email_normalized", "in", senders)], ["email_normalized"])
            .mapped("email_normalized")
        )
        created = Counter()
        new_senders = {m.sender.email for m in routed if m.route == "new"}
        if new_senders:
            # _detect_loop_sender_domain of mail.thread: the primary email field
            primary_email = self._mail_get_primary_email_field()
            for email_from, count in self.sudo()._read_group(
                Domain("create_date", ">=", since)
                & Domain.OR(Domain(primary_email, "ilike", email) for email in new_senders),
                [primary_email],
                ["__count"],
            ):
                created[tools.email_normalize(email_from)] += count
        replied = Counter()
        reply_tickets = [m.route for m in routed if isinstance(m.route, int)]
        if reply_tickets:
            for res_id, email_from, count in (
                self.env["mail.message"]
                .sudo()
                ._read_group(
                    [
                        ("model", "=", self._name),
                        ("res_id", "in", reply_tickets),
                        ("create_date", ">=", since),
                        ("message_type", "=", "email"),
                    ],
                    ["res_id", "email_from"],
                    ["__count"],
                )
            ):
                replied[res_id, tools.email_normalize(email_from)] += count
        for mail in routed:
            email = mail.sender.email
            if email in allowed:
                continue
            key = email if mail.route == "new" else (mail.route, email)
            counter = created if mail.route == "new" else replied
            # as the gateway, mail by mail: counting the batch's earlier mails
            if counter[key] >= threshold:
                mail.route = None
            counter[key] += 1

    @api.model
    def _batch_reset_bounce(self, emails):
        """Mail from an address proves it valid: as ``_routing_reset_bounce``, once."""
        models_bl = (
            self.env["ir.model"]
            .sudo()
            .search_fetch(
                [("is_mail_blacklist", "=", True), ("model", "!=", "mail.thread.blacklist")],
                ["model"],
            )
        )
        for model in models_bl.filtered(lambda m: m.model in self.env):
            bounced = (
                self.env[model.model]
                .sudo()
                .search([("message_bounce", ">", 0), ("email_normalized", "in", list(emails))])
            )
            for record in bounced:
                record._message_reset_bounce(record.email_normalized)

    @api.model
    def _batch_mailing_replied(self, mails):
        """With ``mass_mailing``: the mailing traces the mails answer are opened and
        replied, in one search for the run."""
        if "mailing.trace" not in self.env:
            return
        references = [
            ref
            for mail in mails
            for ref in tools.mail.mail_header_msgid_re.findall(
                mail.msg_dict["references"] or mail.msg_dict["in_reply_to"] or ""
            )
        ]
        if references:
            Trace = self.env["mailing.trace"]
            Trace.set_opened(domain=[("message_id", "in", references)])
            Trace.set_replied(domain=[("message_id", "in", references)])
