"""The accelerator of fetched batches: the mails of one FETCH go through the gateway
together, what they share read once (see the addon's README, *Development*).

A mail the batch cannot take as ``message_process`` would is left to it, mail by mail.
"""

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from email import message_from_bytes
from email.policy import SMTP
from typing import NamedTuple

from odoo import api, models, tools
from odoo.fields import Domain
from odoo.tools.mail import unfold_references

from ..tools.mail_language import declared_languages
from ..tools.ticket_reference import one_line
from .mail_ticket import contact_key

_logger = logging.getLogger(__name__)


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
)


class BatchResult(NamedTuple):
    """What ``_message_process_batch`` did with a mail it took."""

    ticket: object
    is_new: bool
    message: object  # the email.message.EmailMessage the gateway read


@dataclass(eq=False)
class BatchMail:
    """One mail of a fetched batch on its way through ``_message_process_batch``."""

    message: object
    msg_dict: dict
    route: object = None  # "new", a ticket id, or None: left to message_process
    parent: object = None  # the message its headers answer
    sender: object = None
    author: object = None
    partners: object = None
    ticket: object = None
    ticket_is_new: bool = False
    deferred: bool = False  # answers a mail of its wave: processed in the next one

    def set_partners(self, found):
        """Author and recipients among ``found`` contacts, by normalized address."""
        recipients = set(tools.email_normalize_all(self.msg_dict.get("recipients") or ""))
        self.author = found.filtered(lambda p: p.email_normalized == self.sender.email)[:1]
        self.partners = found.filtered(lambda p: p.email_normalized in recipients)


class MailTicket(models.Model):
    _inherit = "mail.ticket"  # pylint: disable=consider-merging-classes-inherited

    # ------------------------------------------------------------
    # MAIL GATEWAY: FETCHED BATCHES
    # ------------------------------------------------------------

    @api.model
    def _message_process_batch(self, server, raws):
        """Process the mails of one fetched batch of ticket mailbox ``server`` together.

        What the mails of a batch share is read once for the batch: duplicate
        Message-IDs, the messages their headers reply to, the tickets their subjects
        name, aliases among their recipients, the senders' users and contacts (unknown
        senders get theirs in one create), the gateway's loop counters. The batch's new
        tickets are created with one ``create()`` and their comments with another.

        Only plain customer mail takes this path: a new mail or a reply by its headers
        or its subject, to no alias, from a verified sender who is no user, neither
        automated, a bounce, a duplicate nor looping. Every other mail is left to
        ``message_process`` (its result is None), which applies Odoo's and this
        module's rules to it alone. Each new ticket goes through
        ``_mail_ticket_new_values`` and each update through ``message_update``, the
        hooks that ``message_process`` calls too; the messages are posted as the
        gateway posts them (same subtypes, recipients and notifications).

        Return, per raw mail, a :class:`BatchResult` (the ticket, whether the mail
        opened it, the parsed message), or None where ``message_process`` must process
        the mail.
        """
        self = self.with_context(mail_ticket_server_id=server.id)
        Thread = self.env["mail.thread"].with_context(default_fetchmail_server_id=server.id)
        mails = [self._batch_parse(Thread, server, raw) for raw in raws]
        wave, left = mails, set()
        while wave:
            self._batch_process_wave(server, wave, left)
            left.update(m.msg_dict["message_id"] for m in wave if not m.route and not m.deferred)
            # mails answering a mail of the wave (or repeating its Message-ID) come after it
            wave = [mail for mail in wave if mail.deferred]
            for mail in wave:
                mail.deferred = False
        return [
            BatchResult(mail.ticket, mail.ticket_is_new, mail.message) if mail.route else None
            for mail in mails
        ]

    @api.model
    def _batch_process_wave(self, server, mails, left):
        """Process the mails of a batch that do not answer one another; ``left``: the
        Message-IDs of the batch's mails left to ``message_process`` (after the batch)."""
        aliases = self._batch_route(mails, left)
        self._batch_check_senders(mails)
        self._batch_check_loops(mails)
        new = [mail for mail in mails if mail.route == "new"]
        replies = [mail for mail in mails if isinstance(mail.route, int)]
        self._batch_find_authors(new, replies, list(aliases))
        self._batch_create_tickets(server, new)
        for mail in replies:
            mail.ticket = self.browse(mail.route)
        self._batch_post(new + replies)

    @api.model
    def _batch_parse(self, Thread, server, raw):
        message = message_from_bytes(raw, policy=SMTP)
        msg_dict = Thread.message_parse(message, save_original=server.original)
        if not server.attach:
            msg_dict.pop("attachments", None)
        return BatchMail(message=message, msg_dict=msg_dict)

    @api.model
    def _batch_route(self, mails, left=()):
        """Where each mail goes: ``"new"``, a ticket id, or None (``message_process``,
        as the mails it answers, ``left``); ``deferred`` when it answers a mail of the
        same wave."""
        Message = self.env["mail.message"].sudo()
        message_ids = [mail.msg_dict["message_id"] for mail in mails]
        references = {}
        for mail in mails:
            msg_dict = mail.msg_dict
            refs = unfold_references(msg_dict["references"] or msg_dict["in_reply_to"])
            # as message_route: the last 32 references, the latest message matching
            references[mail] = [ref.strip() for ref in refs if "reply_to" not in ref][-32:]
        known = Message.search_fetch(
            [("message_id", "in", message_ids + [r for refs in references.values() for r in refs])],
            ["message_id", "model", "res_id", "author_id"],
        )
        by_message_id = {}
        for message in known.sorted("id"):
            by_message_id[message.message_id] = message
        seen, subjects = set(), {}
        for mail in mails:
            msg_dict = mail.msg_dict
            message_id = msg_dict["message_id"]
            refs = references[mail]
            mail.route = None
            if message_id in seen or seen.intersection(refs):
                mail.deferred = True  # after the mail of this wave it repeats or answers
            elif not (
                message_id in left
                or left.intersection(refs)
                or message_id in by_message_id
                or msg_dict.get("is_bounce")
                or self._detect_loop_headers(msg_dict)
            ):
                parents = [by_message_id[ref] for ref in refs if ref in by_message_id]
                parent = max(parents, key=lambda message: message.id, default=None)
                if parent:
                    mail.parent = parent
                    ok = parent.model == self._name and parent.res_id
                    mail.route = parent.res_id if ok else None
                    if ok and not msg_dict.get("parent_id"):  # posted after the mail was parsed
                        msg_dict.update(self._message_parse_extract_from_parent(parent))
                elif not msg_dict.get("parent_id"):
                    subjects[mail] = msg_dict.get("subject")
            seen.add(message_id)
        by_subject = self._search_by_references(list(subjects.values()))
        for mail, ticket in zip(subjects, by_subject, strict=True):
            mail.route = ticket.id or "new"
        # a mail to an alias or the catchall is routed by Odoo's rules; senders are
        # looked up too, for the contacts search (no contact is linked to an alias)
        recipients = {
            mail: set(tools.email_normalize_all(mail.msg_dict.get("recipients") or ""))
            for mail in mails
            if mail.route
        }
        senders = {tools.email_normalize(mail.msg_dict.get("email_from")) for mail in recipients}
        aliases = set(
            self.env["mail.alias.domain"]
            .sudo()
            ._find_aliases(list(set().union(senders, *recipients.values())))
        )
        for mail, emails in recipients.items():
            if emails & aliases:
                mail.route = None
        return aliases

    @api.model
    def _batch_check_senders(self, mails):
        """Keep on the batch path only verified senders who are no user: an automated,
        unverified or ambiguous mail, or a user's, goes to ``message_process``."""
        routed = [mail for mail in mails if mail.route]
        for mail in routed:
            mail.sender = self._mail_ticket_check_sender(mail.message, mail.msg_dict)
            if not mail.sender.email or self._detect_automated_mail(mail.message, mail.msg_dict):
                mail.route = None
        routed = [mail for mail in routed if mail.route]
        senders = {mail.sender.email for mail in routed}
        users = (
            self.env["res.users"]
            .sudo()
            .with_context(active_test=False)
            .search_fetch([("email_normalized", "in", list(senders))], ["email_normalized"])
        )
        user_emails = set(users.mapped("email_normalized"))
        tickets = (
            self.sudo()
            .browse({mail.route for mail in routed if isinstance(mail.route, int)})
            .exists()
        )
        tickets = {ticket.id: ticket for ticket in tickets}  # prefetched together
        no_user = self.env["res.users"]
        for mail in routed:
            if mail.sender.email in user_emails:
                mail.route = None
            elif mail.route == "new":
                if self.browse()._mail_ticket_sender_doubt(mail.sender, no_user):
                    mail.route = None
            elif mail.route not in tickets or (
                tickets[mail.route]._mail_ticket_sender_doubt(mail.sender, no_user)
            ):
                mail.route = None

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
        new_senders = [m.sender.email for m in routed if m.route == "new"]
        if new_senders:
            for email_from, count in self.sudo()._read_group(
                Domain("create_date", ">=", since)
                & Domain.OR(Domain("email_from", "ilike", email) for email in set(new_senders)),
                ["email_from"],
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
    def _batch_find_authors(self, new, replies, aliases):
        """The contacts of the senders and of the recipients, as the gateway finds them
        (never an alias's): among a ticket's followers first; unknown senders of new
        mails get a contact, recipients do not."""
        Thread = self.env["mail.thread"]
        options = {"avoid_alias": False, "ban_emails": aliases}
        if new:
            senders = [mail.msg_dict["email_from"] for mail in new]
            contacts = {}  # a sender of several mails: the first one's values
            for mail in new:
                key = contact_key(mail.msg_dict["email_from"])
                if key not in contacts:
                    contacts[key] = self._mail_ticket_new_contact_values(
                        mail.msg_dict, declared_languages(mail.message)
                    )
            found = Thread._partner_find_from_emails(
                {Thread: senders}, no_create=False, additional_values=contacts, **options
            )
            found = found[False]
            known = set(found.mapped("email_normalized"))
            copied = {
                email
                for mail in new
                for email in tools.email_split(mail.msg_dict["recipients"] or "")
                if tools.email_normalize(email) not in known
            }
            if copied:
                found |= Thread._partner_find_from_emails(
                    {Thread: list(copied)}, no_create=True, **options
                )[False]
            for mail in new:
                mail.set_partners(found)
        if replies:
            records_emails = {}
            for mail in replies:
                emails = tools.email_split(mail.msg_dict["recipients"] or "")
                records_emails.setdefault(self.browse(mail.route), []).extend(
                    [mail.msg_dict["email_from"], *emails]
                )
            tickets = self.browse([ticket.id for ticket in records_emails])
            found = tickets._partner_find_from_emails(records_emails, no_create=True, **options)
            for mail in replies:
                mail.set_partners(found.get(mail.route, self.env["res.partner"]))

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
    def _batch_create_tickets(self, server, mails):
        """One ``create()`` for the batch's new tickets; return them in mail order."""
        if not mails:
            return []
        Ticket = self.sudo().with_context(
            default_user_id=False,
            mail_create_nosubscribe=True,
            mail_create_nolog=True,
            mail_ticket_automated=False,
            mail_ticket_unverified=(),
        )
        custom_values = server._ticket_default_values()
        vals_list = []
        for mail in mails:
            mail.msg_dict["author_id"] = mail.author.id
            mail.msg_dict.pop("parent_id", None)  # a new thread has no parent
            vals_list.append(Ticket._mail_ticket_new_values(mail.msg_dict, custom_values))
        tickets = Ticket.create(vals_list)
        for mail, ticket in zip(mails, tickets, strict=True):
            mail.ticket, mail.ticket_is_new = ticket, True
            _logger.info(
                "Ticket %s created from mail %s of %s",
                ticket.number,
                mail.msg_dict.get("message_id"),
                mail.msg_dict.get("email_from"),
            )
        if server.ticket_follow_known_contacts:
            for mail in mails:
                mail.ticket._mail_ticket_follow_known_contacts(mail.msg_dict)
        return list(tickets)

    @api.model
    def _batch_post(self, mails):
        """Post each mail on its ticket as ``_message_route_process`` does, then mirror
        the batch's customer messages as comments with one ``create()``."""
        if not mails:
            return
        self._batch_reset_bounce({mail.sender.email for mail in mails})
        root = self.env.ref("base.user_root")
        note = self.env["ir.model.data"]._xmlid_to_res_id("mail.mt_note")
        comment = self.env["ir.model.data"]._xmlid_to_res_id("mail.mt_comment")
        creation = self._creation_subtype().id
        posted = self.env["mail.message"]
        for mail in mails:
            msg_dict = mail.msg_dict
            if msg_dict.get("subject"):
                msg_dict["subject"] = one_line(msg_dict["subject"])
            msg_dict["author_id"] = mail.author.id
            original_partner_ids = mail.partners.ids
            ticket = mail.ticket.sudo().with_context(
                attachments_mime_plainxml=True,
                mail_create_nosubscribe=True,
                mail_create_nolog=True,
                mail_ticket_automated=False,
                mail_ticket_unverified=(),
                mail_ticket_forward=False,
                mail_ticket_batch=True,
            )
            partner_ids = []
            if mail.ticket_is_new:
                subtype_id = creation
            else:
                ticket.message_update(msg_dict)
                subtype_id = note if msg_dict.get("is_internal") else comment
                parent_author = mail.parent.author_id if mail.parent else None
                if parent_author and (msg_dict.get("is_internal") or parent_author.partner_share):
                    partner_ids = parent_author.ids
            post_params = dict(
                incoming_email_cc=msg_dict.pop("cc_filtered", False),
                incoming_email_to=msg_dict.pop("to_filtered", False),
                subtype_id=subtype_id,
                partner_ids=partner_ids,
                **msg_dict,
            )
            for key in _GATEWAY_ONLY_KEYS:
                post_params.pop(key, None)
            message = (
                ticket.with_user(root)
                .with_context(mail_post_autofollow_author_skip=not mail.author)
                .message_post(**post_params)
            )
            if original_partner_ids:
                message.write({"partner_ids": original_partner_ids})
            posted |= message
        self._mail_ticket_add_comments(posted.filtered(lambda m: m.subtype_id.id == comment))
