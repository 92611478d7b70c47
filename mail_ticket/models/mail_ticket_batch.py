"""The accelerator of fetched batches: the mails of one FETCH go through the gateway
together, what they share read once (see the addon's README, *Development*).

A mail the batch cannot take as ``message_process`` would is left to it, in its turn:
the mails are processed in the order they arrived. Where the batch does what Odoo's
gateway does mail by mail, the code is in ``mail_ticket_batch_mirror.py``; when a
module the batch does not know overrides a step of the gateway it does not run mail by
mail, the batch steps aside and every mail goes through ``message_process``.
"""

import logging
from dataclasses import dataclass
from email import message_from_bytes
from typing import NamedTuple

from odoo import api, models, tools
from odoo.tools.mail import unfold_references

from ..tools.mail_repair import read_once_policy
from ..tools.mail_verdict import VERDICT_KEY
from ..tools.ticket_reference import one_line
from .mail_ticket import contact_key

_logger = logging.getLogger(__name__)

#: The steps of the gateway a fetched batch does not run mail by mail (it runs
#: ``message_parse``, ``_detect_loop_headers``, ``message_update``, the partner look-ups
#: and ``message_post`` of each mail, and ``_mail_ticket_new_values`` of each new ticket).
BATCH_SKIPPED_METHODS = (
    "message_process",
    "message_route",
    "message_new",
    "_message_route_process",
    "_message_parse_post_process",
    "_routing_check_route",
    "_routing_reset_bounce",
    "_detect_loop_sender",
    "_detect_loop_sender_domain",
    "_mail_find_user_for_gateway",
)
#: The modules whose overrides of those steps the batch reproduces.
BATCH_KNOWN_MODULES = frozenset({"mail", "mail_ticket", "mass_mailing"})


class BatchResult(NamedTuple):
    """What ``_message_process_batch`` did with a mail it took."""

    ticket: object
    is_new: bool
    message: object  # the email.message.EmailMessage the gateway read


@dataclass(eq=False)
class BatchMail:
    """One mail of a fetched batch on its way through ``_message_process_batch``."""

    index: int  # its place in the batch
    message: object
    msg_dict: dict
    route: object = None  # "new", a ticket id, or None: left to message_process
    parent: object = None  # the message its headers answer
    sender: object = None
    user: object = None  # the (portal) user of its sender, as the gateway finds them
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
    def _mail_ticket_batch_blockers(self):
        """The modules that override a gateway step the batch does not run mail by mail
        (``BATCH_SKIPPED_METHODS``) on tickets or ``mail.thread``, beyond the ones it
        reproduces: as ``{module: [method, ...]}``, empty when the batch may run.

        Read from the classes of the loaded registry, every time (no cache: a module
        installed since the last fetch counts at once)."""
        blockers = {}
        for cls in type(self.env[self._name]).__mro__:
            module = cls.__dict__.get("_module")  # a class an addon defines
            if not module or module in BATCH_KNOWN_MODULES:
                continue
            for name in BATCH_SKIPPED_METHODS:
                if name in cls.__dict__:
                    blockers.setdefault(module, []).append(name)
        return blockers

    def _register_hook(self):
        super()._register_hook()
        if blockers := self._mail_ticket_batch_blockers():
            _logger.warning(
                "Fetched mails go through message_process one by one, not in batches: %s",
                self._mail_ticket_batch_blockers_text(blockers),
            )

    @api.model
    def _mail_ticket_batch_blockers_text(self, blockers):
        return "; ".join(
            self.env._(
                "module %(module)s overrides %(methods)s",
                module=module,
                methods=", ".join(methods),
            )
            for module, methods in sorted(blockers.items())
        )

    @api.model
    def _message_process_batch(self, server, raws, process_alone):
        """Process the mails of one fetched batch of ticket mailbox ``server`` together.

        What the mails of a batch share is read once for the batch: duplicate
        Message-IDs, the messages their headers reply to, the tickets their subjects
        name, aliases among their recipients, the senders' users and contacts (unknown
        senders get theirs in one create), the gateway's loop counters. The new tickets
        of a run of mails are created with one ``create()`` per user the gateway runs
        as (see below) and their comments with another.

        The customers' mail takes this path: a new mail or a reply by its headers or
        its subject, to no alias, whose verdict (``_mail_ticket_verdict``, the one
        ``message_process`` decides) says it speaks for a verified sender who is no
        agent, neither a forward, a bounce, a duplicate nor looping, nor a machine's
        new mail (a machine's reply to a ticket, such as an out-of-office, is). A
        sender with a portal account is such a customer: the gateway runs as their
        user, as it does for ``message_process``. Every other mail is left to
        ``message_process``, which applies Odoo's and this module's rules to it alone:
        ``process_alone(index)`` processes it in its turn, after the mails before it
        and before the mails after it, so that tickets are numbered in the order mails
        arrived. Each new ticket goes through ``_mail_ticket_new_values`` and each
        update through ``message_update``, the hooks that ``message_process`` calls
        too; the messages are posted as the gateway posts them (same subtypes,
        recipients and notifications).

        When a module overrides a step of the gateway that the batch does not run
        mail by mail (``_mail_ticket_batch_blockers``), every mail is left.

        Return, per raw mail, a :class:`BatchResult` (the ticket, whether the mail
        opened it, the parsed message), or None where the mail was left.
        """
        if self._mail_ticket_batch_blockers():
            for index in range(len(raws)):
                process_alone(index)
            return [None] * len(raws)
        Thread = self.env["mail.thread"].with_context(default_fetchmail_server_id=server.id)
        mails = [self._batch_parse(Thread, server, index, raw) for index, raw in enumerate(raws)]
        wave = mails
        while wave:
            self._batch_process_wave(server, wave, process_alone)
            # mails answering a mail of the wave (or repeating its Message-ID) come after it
            wave = [mail for mail in wave if mail.deferred]
            for mail in wave:
                mail.deferred = False
        return [
            BatchResult(mail.ticket, mail.ticket_is_new, mail.message) if mail.route else None
            for mail in mails
        ]

    @api.model
    def _batch_process_wave(self, server, mails, process_alone):
        """Process the mails of a batch that do not answer one another, in order: each
        run of mails the batch takes together, then the mail it leaves, and so on."""
        aliases = self._batch_route(mails)
        self._batch_judge(server, mails)
        self._batch_check_loops(mails)
        run = []
        for mail in mails:
            if mail.deferred:
                continue
            if mail.route:
                run.append(mail)
                continue
            self._batch_process_run(server, run, aliases)
            run = []
            process_alone(mail.index)
        self._batch_process_run(server, run, aliases)

    @api.model
    def _batch_process_run(self, server, mails, aliases):
        """Create and post a run of mails that the batch takes, together."""
        if not mails:
            return
        new = [mail for mail in mails if mail.route == "new"]
        replies = [mail for mail in mails if mail.route != "new"]
        self._batch_find_authors(new, replies, list(aliases))
        self._batch_create_tickets(server, new)
        self._batch_post(mails)

    @api.model
    def _batch_parse(self, Thread, server, index, raw):
        # as message_process parses it (email.policy.SMTP), each header parsed once
        message = message_from_bytes(raw, policy=read_once_policy())
        msg_dict = Thread.message_parse(message, save_original=server.original)
        if not server.attach:
            msg_dict.pop("attachments", None)
        # as _message_route_process: a line break hidden in an encoded subject would
        # break every mail quoting it
        if msg_dict.get("subject"):
            msg_dict["subject"] = one_line(msg_dict["subject"])
        return BatchMail(index=index, message=message, msg_dict=msg_dict)

    @api.model
    def _batch_route(self, mails):
        """Where each mail goes: ``"new"``, a ticket id, or None (``message_process``);
        ``deferred`` when it answers a mail of the same wave, or repeats its Message-ID.
        Return the aliases among the mails' addresses."""
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
                message_id in by_message_id
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
    def _batch_judge(self, server, mails):
        """The verdict of each routed mail, as ``message_process`` decides it
        (``_mail_ticket_verdict``, the users of the senders read for the batch). A
        mail stays on the batch path when its verdict keeps its route and says it
        speaks for a verified sender who is no agent; it then carries its verdict."""
        routed = [mail for mail in mails if mail.route]
        for mail in routed:
            mail.sender = self._mail_ticket_check_sender(mail.message, mail.msg_dict)
            if not mail.sender.email:
                mail.route = None
        routed = [mail for mail in routed if mail.route]
        # a blocked sender's mail is message_process's to ignore, with the reason
        senders = {
            mail: {mail.sender.email, tools.email_normalize(mail.msg_dict.get("email_from"))}
            for mail in routed
        }
        blocked = self.env["mail.ticket.blocked.sender"]._blocked_emails(
            set().union(*senders.values())
        )
        routed = [mail for mail in routed if not senders[mail] & blocked.keys()]
        for mail in senders.keys() - set(routed):
            mail.route = None
        users = self._batch_gateway_users({mail.sender.email for mail in routed})
        # the tickets answered, read together (see _mail_ticket_verify_routes)
        tickets = (
            self.sudo().browse({mail.route for mail in routed if mail.route != "new"}).exists()
        )
        no_alias = self.env["mail.alias"]
        for mail in routed:
            user = users.get(mail.sender.email, self.env["res.users"])
            if (user and not user.share) or (mail.route != "new" and mail.route not in tickets.ids):
                mail.route = None  # an agent's mail; a ticket deleted meanwhile
                continue
            thread_id = False if mail.route == "new" else mail.route
            route = (self._name, thread_id, None, user.id or self.env.uid, no_alias)
            routes, verdict = tickets._mail_ticket_verdict(
                mail.message, mail.msg_dict, [route], server, sender=mail.sender
            )
            # a machine's answer on a ticket (an out-of-office) is posted there and
            # changes nothing (message_update): as message_process does; a machine's new
            # mail is left to it
            machine_reply = thread_id and verdict.automated and not verdict.spam
            if (
                routes != [route]
                or verdict.forward
                or verdict.doubt(thread_id)
                or not (verdict.speaks(thread_id) or machine_reply)
            ):
                mail.route = None
                continue
            mail.user = user
            if thread_id:
                mail.ticket = tickets.browse(thread_id).with_prefetch(tickets._prefetch_ids)
            mail.msg_dict[VERDICT_KEY] = verdict

    @api.model
    def _batch_gateway_users(self, emails):
        """The user the gateway runs as for mail of each address
        (``_mail_find_user_for_gateway``): ``{email: user}``, for the addresses of users.
        An internal user comes first, as the partner's ``main_user_id``."""
        users = (
            self.env["res.users"]
            .sudo()
            .search_fetch([("email_normalized", "in", list(emails))], ["email_normalized", "share"])
        )
        found = {}
        for user in users.sorted(lambda user: (user.share, user.id)):
            found.setdefault(user.email_normalized, user)
        return found

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
                        mail.msg_dict, mail.msg_dict[VERDICT_KEY].languages
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
    def _batch_create_tickets(self, server, mails):
        """The new tickets of a run, in mail order: one ``create()`` per sequence of
        mails the gateway runs as the same user for (the portal user of the sender, else
        the one running it), so that the tickets follow the order their mails arrived;
        the numbers and first stages of the whole run drawn before, at once
        (``_number_and_stage``). A team that assigns its tickets in turn gets them one
        by one, each valued after the one before was created."""
        if not mails:
            return
        Ticket = self.with_context(
            default_user_id=False, mail_create_nosubscribe=True, mail_create_nolog=True
        )
        # a team that takes its tickets in turn weighs each new ticket before it assigns
        # the next one (in _mail_ticket_new_values): those are created one by one, as
        # message_process creates them, and numbered each by its create()
        if server.ticket_team_id.assignment == "balanced":
            for mail in mails:
                mail.msg_dict["author_id"] = mail.author.id
                mail.msg_dict.pop("parent_id", None)  # a new thread has no parent
                Created = Ticket.with_user(mail.user) if mail.user else Ticket
                ticket = Created.sudo().create(Ticket._mail_ticket_new_values(mail.msg_dict))
                mail.ticket, mail.ticket_is_new = ticket.with_env(self.env), True
        else:
            self._batch_create_runs(Ticket, mails)
        tickets = self.browse([mail.ticket.id for mail in mails])
        # as message_new: the customers follow, and whom they copied when known
        tickets.filtered("partner_id")._subscribe_customers()
        for mail in mails:
            _logger.info(
                "Ticket %s created from mail %s of %s",
                mail.ticket.number,
                mail.msg_dict.get("message_id"),
                mail.msg_dict.get("email_from"),
            )
        if server.ticket_follow_known_contacts:
            for mail in mails:
                mail.ticket._mail_ticket_follow_known_contacts(mail.msg_dict)

    @api.model
    def _batch_create_runs(self, Ticket, mails):
        """Create the new tickets of ``mails``, numbered and staged at once in mail
        order, with one ``create()`` per sequence of mails of the same user."""
        groups, vals_list = [], []
        for mail in mails:
            mail.msg_dict["author_id"] = mail.author.id
            mail.msg_dict.pop("parent_id", None)  # a new thread has no parent
            vals = Ticket._mail_ticket_new_values(mail.msg_dict)
            if "company_id" not in vals:  # the default of the user it is created as
                vals["company_id"] = (
                    Ticket.with_user(mail.user) if mail.user else Ticket
                ).env.company.id
            vals_list.append(vals)
            if groups and groups[-1][0] == mail.user:
                groups[-1][1].append((mail, vals))
            else:
                groups.append((mail.user, [(mail, vals)]))
        # numbered in the order the mails arrived, the sequences and stages read once
        Ticket._number_and_stage(vals_list)
        for user, group in groups:
            Created = Ticket.with_user(user) if user else Ticket
            tickets = Created.sudo().create([vals for __, vals in group])
            for (mail, __), ticket in zip(group, tickets, strict=True):
                mail.ticket, mail.ticket_is_new = ticket.with_env(self.env), True

    @api.model
    def _batch_post(self, mails):
        """Post each mail on its ticket as ``_message_route_process`` does (see
        ``_batch_post_params``), then mirror the run's customer messages as comments
        with one ``create()``."""
        self._batch_reset_bounce({mail.sender.email for mail in mails})
        self._batch_mailing_replied(mails)
        root = self.env.ref("base.user_root")
        comment = self.env["ir.model.data"]._xmlid_to_res_id("mail.mt_comment")
        creation = any(mail.ticket_is_new for mail in mails) and self._creation_subtype().id
        posted = self.env["mail.message"]
        for mail in mails:
            mail.msg_dict["author_id"] = mail.author.id
            ticket = mail.ticket.with_context(
                attachments_mime_plainxml=True,
                mail_create_nosubscribe=True,
                mail_create_nolog=True,
                mail_ticket_batch=True,
            )
            if not mail.ticket_is_new:  # as the gateway: as the sender's user
                (ticket.with_user(mail.user) if mail.user else ticket).sudo().message_update(
                    mail.msg_dict
                )
            message = (
                ticket.with_user(root)
                .with_context(mail_post_autofollow_author_skip=not mail.author)
                .message_post(**self._batch_post_params(mail, creation))
            )
            if mail.partners:
                message.write({"partner_ids": mail.partners.ids})
            posted |= message
        self._mail_ticket_add_comments(posted.filtered(lambda m: m.subtype_id.id == comment))
