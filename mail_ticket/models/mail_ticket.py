import logging
import re
from collections import Counter
from datetime import timedelta

from markupsafe import Markup

from odoo import api, fields, models, tools

_logger = logging.getLogger(__name__)

TICKET_NUMBER_PREFIX = "TICKET-"
# shared by strangers: no proof of belonging to the customer's company
FREE_MAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "hotmail.de",
        "live.com",
        "live.de",
        "msn.com",
        "yahoo.com",
        "yahoo.de",
        "icloud.com",
        "me.com",
        "aol.com",
        "gmx.de",
        "gmx.net",
        "gmx.at",
        "gmx.ch",
        "web.de",
        "t-online.de",
        "freenet.de",
        "posteo.de",
        "mailbox.org",
        "proton.me",
        "protonmail.com",
        "yandex.ru",
        "mail.ru",
    }
)
TICKET_PRIORITIES = [("0", "Low"), ("1", "Medium"), ("2", "High"), ("3", "Urgent")]
# reply and forward prefixes of the usual mail clients, chained ("AW: WG: Re[2]: ...")
_REPLY_PREFIXES = r"(?:(?:re|aw|antw|wg|fw|fwd|sv|vs|tr)\s*(?:\[\d+\])?\s*:\s*)*"
# [TICKET-123] anywhere: the tag this module puts in every subject it sends
_TAG_RE = re.compile(r"\[\s*TICKET-0*(\d{1,9})\s*\]", re.IGNORECASE)
# "Ticket #123" anywhere: explicit enough to be a reference
_TICKET_HASH_RE = re.compile(r"\bTicket\s*#0*(\d{1,9})\b", re.IGNORECASE)
# "#123" only right behind the reply prefixes, so "Invoice #123" is not a reference
_LEADING_HASH_RE = re.compile(rf"^\s*{_REPLY_PREFIXES}#0*(\d{{1,9}})\b", re.IGNORECASE)


class MailTicket(models.Model):
    _name = "mail.ticket"
    _description = "Ticket"
    _inherit = ["portal.mixin", "mail.thread.cc", "mail.activity.mixin"]
    _order = "priority desc, id desc"
    _rec_names_search = ["number", "name"]
    _check_company_auto = True
    _primary_email = "email_from"

    def _default_stage_id(self):
        return self.env["mail.ticket.stage"].browse(
            self.env["mail.ticket.stage"]._get_routing_stages()[0]
        )

    number = fields.Char(
        readonly=True,
        copy=False,
        index=True,
        default=lambda self: self.env._("New"),
    )
    name = fields.Char(string="Title", required=True, tracking=True)
    description = fields.Html()
    stage_id = fields.Many2one(
        "mail.ticket.stage",
        default=lambda self: self._default_stage_id(),
        group_expand="_read_group_stage_ids",
        ondelete="restrict",
        tracking=True,
        index=True,
        copy=False,
    )
    is_closed = fields.Boolean(related="stage_id.is_closed")
    priority = fields.Selection(
        TICKET_PRIORITIES,
        default="1",
        tracking=True,
        index=True,
    )
    partner_id = fields.Many2one("res.partner", string="Customer", tracking=True, index=True)
    email_from = fields.Char(
        string="Email",
        compute="_compute_email_from",
        store=True,
        readonly=False,
        index="trigram",
        help="Address the conversation with the customer uses.",
    )
    created_from_email = fields.Boolean(readonly=True, copy=False)
    fetchmail_server_id = fields.Many2one(
        "fetchmail.server",
        string="Mailbox",
        readonly=True,
        copy=False,
        index="btree_not_null",
        help="Incoming mail server the ticket was created from.",
    )
    user_id = fields.Many2one(
        "res.users",
        string="Assigned to",
        domain="[('share', '=', False)]",
        tracking=True,
        index=True,
        check_company=True,
    )
    company_id = fields.Many2one(
        "res.company",
        required=True,
        index=True,
        default=lambda self: self.env.company,
    )
    tag_ids = fields.Many2many("mail.ticket.tag", string="Tags")
    comment_ids = fields.One2many("mail.ticket.comment", "ticket_id", string="Comments")
    comment_count = fields.Integer(compute="_compute_comment_count")
    date_last_customer_message = fields.Datetime(
        string="Last Customer Message", readonly=True, copy=False
    )
    date_last_agent_answer = fields.Datetime(string="Last Agent Answer", readonly=True, copy=False)
    date_closed = fields.Datetime(
        string="Closed On", compute="_compute_date_closed", store=True, copy=False
    )
    color = fields.Integer()
    ack_pending = fields.Boolean(
        string="Acknowledgement to Send", readonly=True, copy=False, index="btree_not_null"
    )
    date_ack_sent = fields.Datetime(string="Acknowledged On", readonly=True, copy=False)

    _number_company_uniq = models.Constraint(
        "UNIQUE(number, company_id)",
        "A ticket number must be unique per company.",
    )

    @api.depends("number", "name")
    def _compute_display_name(self):
        for ticket in self:
            if ticket.number and ticket.id:
                ticket.display_name = f"[{ticket.number}] {ticket.name or ''}".strip()
            else:
                ticket.display_name = ticket.name

    def _compute_access_url(self):
        for ticket in self:
            ticket.access_url = f"/my/tickets/{ticket.id}"

    @api.depends("partner_id")
    def _compute_email_from(self):
        for ticket in self.filtered("partner_id.email"):
            ticket.email_from = ticket.partner_id.email

    def _compute_comment_count(self):
        counts = dict(
            self.env["mail.ticket.comment"]._read_group(
                [("ticket_id", "in", self.ids)], ["ticket_id"], ["__count"]
            )
        )
        for ticket in self:
            ticket.comment_count = counts.get(ticket._origin, 0)

    @api.depends("stage_id.is_closed")
    def _compute_date_closed(self):
        for ticket in self:
            if not ticket.is_closed:
                ticket.date_closed = False
            elif not ticket.date_closed:
                ticket.date_closed = fields.Datetime.now()

    @api.model
    def _read_group_stage_ids(self, stages, domain):
        return stages.search([], order=stages._order)

    # ------------------------------------------------------------
    # ORM
    # ------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        new_label = self.env._("New")
        for vals in vals_list:
            if not vals.get("number") or vals["number"] == new_label:
                company = self.env["res.company"].browse(vals.get("company_id"))
                vals["number"] = (
                    self.env["ir.sequence"]
                    .with_company(company or self.env.company)
                    .next_by_code("mail.ticket")
                )
        tickets = super().create(vals_list)
        # the customer follows the ticket, to receive the answers; straight to the
        # followers' insert, without message_subscribe's access and active-partner checks
        # (the creator or the assignee may already follow: existing ones are skipped)
        # (not a machine's address: answers must not go to a list or an auto-responder)
        Followers = self.env["mail.followers"]
        followed = self.browse() if self.env.context.get("mail_ticket_automated") else tickets
        for partner, partner_tickets in (
            followed.filtered("partner_id").grouped("partner_id").items()
        ):
            Followers._insert_followers(
                self._name, partner_tickets.ids, partner.ids, customer_ids=partner.ids
            )
        return tickets

    def write(self, vals):
        res = super().write(vals)
        if vals.get("partner_id"):
            self.message_subscribe([vals["partner_id"]])
        return res

    # ------------------------------------------------------------
    # ACTIONS
    # ------------------------------------------------------------

    def action_open_comments(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "mail_ticket.mail_ticket_comment_action"
        )
        action["domain"] = [("ticket_id", "=", self.id)]
        action["context"] = {"default_ticket_id": self.id}
        return action

    # ------------------------------------------------------------
    # TICKET REFERENCES
    # ------------------------------------------------------------

    @api.model
    def _parse_ticket_reference(self, subject, bracketed_only=False):
        """Return the ticket number an email subject refers to, or ``None``.

        ``[TICKET-123]`` and ``Ticket #123`` are references wherever they stand;
        ``#123`` only at the start of the subject, behind any chain of reply and
        forward prefixes (``Re:``, ``AW:``, ``WG:``, ``Fwd:`` ...). A bare number
        ("Problem mit Ticket 123") is no reference. Leading zeros are ignored.
        """
        if not subject:
            return None
        patterns = (_TAG_RE,) if bracketed_only else (_TAG_RE, _TICKET_HASH_RE, _LEADING_HASH_RE)
        for pattern in patterns:
            match = pattern.search(subject)
            if match and int(match.group(1)):
                return int(match.group(1))
        return None

    @api.model
    def _search_by_reference(self, subject, bracketed_only=False):
        """Return the ticket the subject refers to (empty when none exists)."""
        reference = self._parse_ticket_reference(subject, bracketed_only=bracketed_only)
        if reference is None:
            return self.browse()
        # numbers are padded by the sequence; match whatever padding it uses
        numbers = {f"{TICKET_NUMBER_PREFIX}{reference:0{width}d}" for width in range(1, 10)}
        return self.search([("number", "in", list(numbers))], order="id desc", limit=1)

    def _is_known_sender(self, email_from, user):
        """Whether a mail naming this ticket comes from someone in its conversation:
        the customer, a follower, an internal user, or the customer's company domain
        (unless it is a free-mail domain, shared by strangers)."""
        self.ensure_one()
        email = tools.email_normalize(email_from)
        if not email:
            return False
        if user and not user.share:
            return True
        if email in (self.partner_id | self.message_partner_ids).mapped("email_normalized"):
            return True
        customer_domain = tools.email_domain_extract(self.partner_id.email_normalized or "")
        return bool(
            customer_domain
            and customer_domain not in FREE_MAIL_DOMAINS
            and tools.email_domain_extract(email) == customer_domain
        )

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

    def _mark_unverified(self, message_dict):
        """Keep a mail of an unknown sender as an internal note, flagged as such."""
        self.ensure_one()
        _logger.warning(
            "Mail %s from %s names ticket %s but its sender is unknown to the ticket: kept "
            "as an internal note",
            message_dict.get("message_id"),
            message_dict.get("email_from"),
            self.number,
        )
        message_dict["is_internal"] = True
        warning = self.env._(
            "Unverified sender: %(sender)s is neither the customer nor a follower of this "
            "ticket. This mail was not sent to anyone.",
            sender=message_dict.get("email_from"),
        )
        message_dict["body"] = Markup(
            '<div class="alert alert-warning" role="alert">%s</div>'
        ) % warning + (message_dict.get("body") or "")

    # ------------------------------------------------------------
    # MAIL GATEWAY
    # ------------------------------------------------------------

    def _creation_subtype(self):
        return self.env.ref("mail_ticket.mt_ticket_new")

    def _track_subtype(self, init_values):
        self.ensure_one()
        if "stage_id" in init_values:
            return self.env.ref("mail_ticket.mt_ticket_stage")
        return super()._track_subtype(init_values)

    @api.model
    def message_new(self, msg_dict, custom_values=None):
        # the gateway runs as the sender's user: no field may default to them
        self = self.with_context(default_user_id=False)
        if not msg_dict.get("author_id") and msg_dict.get("email_from"):
            author = self.env["mail.thread"]._partner_find_from_emails_single(
                [msg_dict["email_from"]], no_create=False
            )
            msg_dict["author_id"] = author.id
        automated = self.env.context.get("mail_ticket_automated")
        # the mailbox says whether to acknowledge (in its custom values): no read per mail
        custom_values = dict(custom_values or {})
        send_ack = bool(
            custom_values.pop("ack_pending", True) and msg_dict.get("author_id") and not automated
        )
        defaults = {
            "ack_pending": send_ack,
            "name": (msg_dict.get("subject") or "").strip() or self.env._("(no subject)"),
            "description": msg_dict.get("body"),
            "email_from": msg_dict.get("email_from"),
            "email_cc": ", ".join(self._mail_cc_sanitized_raw_dict(msg_dict.get("cc")).values()),
            "partner_id": msg_dict.get("author_id"),
            "created_from_email": True,
            "date_last_customer_message": msg_dict.get("date"),
        }
        defaults.update(custom_values)
        # What mail.thread and mail.thread.cc would add (title, primary email, Cc) is in
        # the values already; their message_new would only cost a fields_get() per mail,
        # about a tenth of the gateway's time.
        ticket = self.create(defaults)
        if not automated:
            ticket._subscribe_copied_people(msg_dict)
        _logger.info(
            "Ticket %s created from mail %s of %s",
            ticket.number,
            msg_dict.get("message_id"),
            msg_dict.get("email_from"),
        )
        return ticket

    def _subscribe_copied_people(self, msg_dict):
        """The people the customer wrote to along with the support mailbox (To, Cc)
        follow the ticket and receive the answers; agents can remove them."""
        sender = tools.email_normalize(msg_dict.get("email_from"))
        candidates = {
            tools.email_normalize(email): email
            for email in tools.email_split(
                (msg_dict.get("to") or "") + "," + (msg_dict.get("cc") or "")
            )
        }
        candidates.pop(sender, None)
        candidates.pop(False, None)
        if not candidates:
            return
        server = self.fetchmail_server_id
        if server:
            mailbox = {tools.email_normalize(server.user), server.ticket_reply_to}
        else:  # nothing tells which To address is the support mailbox: only Cc
            mailbox = set(candidates) - {
                tools.email_normalize(email) for email in tools.email_split(msg_dict.get("cc"))
            }
        emails = [email for normalized, email in candidates.items() if normalized not in mailbox]
        if emails:
            partners = self._partner_find_from_emails_single(emails, no_create=False)
            self.message_subscribe(partners.ids)

    @api.model
    def _cron_send_acknowledgements(self, batch_size=100):
        tickets = self.search([("ack_pending", "=", True)], order="id", limit=batch_size)
        tickets._send_acknowledgement()
        remaining = (
            self.search_count([("ack_pending", "=", True)]) if len(tickets) == batch_size else 0
        )
        self.env["ir.cron"]._commit_progress(len(tickets), remaining=remaining)

    def _send_acknowledgement(self):
        """Acknowledge the tickets that mails opened, at most so many per sender and
        hour: two auto-responders cannot keep each other busy through us."""
        template = self.env.ref("mail_ticket.mail_template_ticket_ack")
        limit = int(
            self.env["ir.config_parameter"].sudo().get_param("mail_ticket.ack_rate_limit", 5)
        )
        now = fields.Datetime.now()
        sent = Counter(
            dict(
                self._read_group(
                    [
                        ("partner_id", "in", self.partner_id.ids),
                        ("date_ack_sent", ">=", now - timedelta(hours=1)),
                    ],
                    ["partner_id"],
                    ["__count"],
                )
            )
        )
        for ticket in self.sorted("id"):  # in the order the mails came
            if sent[ticket.partner_id] >= limit:
                _logger.warning(
                    "Acknowledgement of ticket %s not sent: %s had %d in the last hour",
                    ticket.number,
                    ticket.partner_id.email,
                    limit,
                )
                ticket.ack_pending = False
                continue
            # crons queue their notifications for the hourly mail queue: this one is
            # expected now (sent once the batch is committed), as scheduled messages are
            ticket.with_context(mail_notify_force_send=True).message_post_with_source(
                template,
                message_type="auto_comment",
                subtype_xmlid="mail.mt_comment",
                email_layout_xmlid="mail.mail_notification_light",
            )
            ticket.write({"ack_pending": False, "date_ack_sent": now})
            sent[ticket.partner_id] += 1

    def message_post(self, **kwargs):
        # an agent's answer reaches the customer in the ticket's own layout (notes do not)
        if (
            kwargs.get("message_type") == "comment"
            and kwargs.get("subtype_xmlid") != "mail.mt_note"
            and "email_layout_xmlid" not in kwargs
        ):
            kwargs["email_layout_xmlid"] = "mail_ticket.mail_notification_ticket"
        return super().message_post(**kwargs)

    def _notify_get_reply_to_batch(self, defaults=None, author_ids=None):
        """Replies go to the support mailbox the ticket came from, so they come back
        to the ticket even without an alias domain (Odoo would use the author's own
        address then). Tickets entered by hand use the first ticket mailbox."""
        reply_to = {}
        fallback = None
        for ticket in self.sudo():
            server = ticket.fetchmail_server_id
            if not server.ticket_reply_to:
                if fallback is None:
                    fallback = self.env["fetchmail.server"].sudo()._ticket_default_reply_to_server()
                server = fallback
            if server.ticket_reply_to:
                name = ticket.company_id.name or server.name
                reply_to[ticket.id] = tools.formataddr((name, server.ticket_reply_to))
        if reply_to and len(reply_to) == len(self):
            return reply_to
        others = self.browse(res_id for res_id in self.ids if res_id not in reply_to)
        if defaults is not None:
            defaults = {key: value for key, value in defaults.items() if key not in reply_to}
        if author_ids is not None:
            author_ids = {key: value for key, value in author_ids.items() if key not in reply_to}
        reply_to.update(
            super(MailTicket, others)._notify_get_reply_to_batch(
                defaults=defaults, author_ids=author_ids
            )
        )
        return reply_to

    def _message_post_after_hook(self, message, msg_vals):
        comment_subtype_id = self.env["ir.model.data"]._xmlid_to_res_id("mail.mt_comment")
        message_type = msg_vals.get("message_type", message.message_type)
        subtype_id = msg_vals.get("subtype_id", message.subtype_id.id)
        if message_type in ("email", "comment") and subtype_id == comment_subtype_id:
            self._add_comment(message, is_from_email=message_type == "email")
        return super()._message_post_after_hook(message, msg_vals)

    def _add_comment(self, message, is_from_email):
        """Mirror a message of the customer conversation as a comment."""
        self.ensure_one()
        self.env["mail.ticket.comment"].sudo().create(
            {"ticket_id": self.id, "message_id": message.id, "is_from_email": is_from_email}
        )
        author = message.author_id
        from_customer = not author or author.partner_share
        if is_from_email and (automated := self.env.context.get("mail_ticket_automated")):
            _logger.info(
                "Automated mail %s (%s) recorded on ticket %s, which stays as it is",
                message.message_id,
                automated,
                self.number,
            )
        elif is_from_email and from_customer:
            vals = {"date_last_customer_message": message.date}
            first_stage_id, reopen_stage_ids = self.env["mail.ticket.stage"]._get_routing_stages()
            if self.stage_id.id in reopen_stage_ids:
                vals["stage_id"] = first_stage_id
            self.sudo().write(vals)
            _logger.info(
                "Comment added to ticket %s from mail %s of %s",
                self.number,
                message.message_id,
                message.email_from,
            )
        elif not from_customer:
            self.sudo().date_last_agent_answer = message.date
