import logging
from collections import Counter, defaultdict
from datetime import timedelta

from markupsafe import Markup

from odoo import api, fields, models, tools
from odoo.exceptions import UserError
from odoo.fields import Command, Domain
from odoo.tools import SQL

from ..tools.mail_verdict import VERDICT_KEY
from ..tools.ticket_reference import clean_title, split_number, subject_references
from .mail_ticket_sla_status import NEW_STATE

_logger = logging.getLogger(__name__)

TICKET_PRIORITIES = [("0", "Low"), ("1", "Medium"), ("2", "High"), ("3", "Urgent")]
# the response times of the reporting views: field -> (stored hours, the date they
# need: tickets without it, not answered or not closed yet, do not count)
_RESPONSE_TIMES = {
    "first_answer_hours": ("first_answer_hours", "date_first_answer"),
    "first_answer_hours_median": ("first_answer_hours", "date_first_answer"),
    "close_hours": ("close_hours", "date_closed"),
    "close_hours_median": ("close_hours", "date_closed"),
}


# what decides which SLA policies hold for a ticket and where it stands with them
SLA_FIELDS = {"team_id", "priority", "tag_ids", "stage_id"}


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


class MailTicket(models.Model):
    _name = "mail.ticket"
    _description = "Ticket"
    _inherit = ["portal.mixin", "mail.thread.cc", "mail.activity.mixin", "rating.mixin"]
    _order = "priority desc, id desc"
    _rec_names_search = ["number", "name"]
    _check_company_auto = True
    _primary_email = "email_from"

    def _default_stage_id(self):
        """The first stage shared by all teams (a stage without a team), with what a
        new ticket's stored fields read of it (is_closed)."""
        Stage = self.env["mail.ticket.stage"]
        return Stage.search_fetch([("team_ids", "=", False)], ["is_closed"], limit=1) or (
            Stage.search_fetch([], ["is_closed"], limit=1)
        )

    def _default_team_id(self):
        return self.env["mail.ticket.team"].browse(self.env.context.get("default_team_id"))

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
    team_id = fields.Many2one(
        "mail.ticket.team",
        tracking=True,
        index="btree_not_null",
        check_company=True,
        default=lambda self: self._default_team_id(),
    )
    stage_id = fields.Many2one(
        "mail.ticket.stage",
        default=lambda self: self._default_team_id()._first_stage(),
        domain="['|', ('team_ids', '=', False), ('team_ids', 'in', team_id)]",
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

    sla_status_ids = fields.One2many("mail.ticket.sla.status", "ticket_id", string="SLA Statuses")
    sla_deadline = fields.Datetime(
        string="SLA Deadline",
        compute="_compute_sla",
        store=True,
        index="btree_not_null",
        help="The earliest deadline of the ticket's SLA policies still ongoing.",
    )
    sla_status = fields.Selection(
        [("ongoing", "Ongoing"), ("reached", "Reached"), ("failed", "Failed")],
        string="SLA",
        compute="_compute_sla",
        store=True,
        index="btree_not_null",
        help="Failed when one of its SLA policies failed, else ongoing while one is, else reached.",
    )
    spam_reason = fields.Char(
        string="Spam",
        readonly=True,
        copy=False,
        help="The verdict of the receiving mail server that called the mail opening this "
        "ticket spam: the ticket is kept out of the open tickets, nobody is mailed and no "
        "contact is made, until an agent releases it.",
    )
    is_spam = fields.Boolean(compute="_compute_is_spam", store=True, index="btree_not_null")

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

    @api.depends("spam_reason")
    def _compute_is_spam(self):
        for ticket in self:
            ticket.is_spam = bool(ticket.spam_reason)

    @api.depends("sla_status_ids.deadline", "sla_status_ids.status")
    def _compute_sla(self):
        for ticket in self:
            statuses = set(ticket.sla_status_ids.mapped("status"))
            ticket.sla_deadline = min(
                (
                    status.deadline
                    for status in ticket.sla_status_ids
                    if status.status == "ongoing" and status.deadline
                ),
                default=False,
            )
            ticket.sla_status = next(
                (status for status in ("failed", "ongoing", "reached") if status in statuses),
                False,
            )

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
        """The kanban's columns: the stages of the team in the context (its own and the
        shared ones), else all."""
        team = self.env["mail.ticket.team"].browse(self.env.context.get("default_team_id"))
        search_domain = team._stage_domain() if team else Domain.TRUE
        return stages.search(search_domain, order=stages._order)

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
        for vals in vals_list:
            if "name" in vals:
                vals["name"] = clean_title(vals["name"])
        self._number_and_stage(vals_list)
        tickets = super().create(vals_list)
        # the customer follows the ticket, to receive the answers; straight to the
        # followers' insert, without message_subscribe's access and active-partner checks
        # (the creator or the assignee may already follow: existing ones are skipped).
        # The gateway creates without subscribing (mail_create_nosubscribe) and
        # subscribes the customers its verdict allows (see message_new)
        if not self.env.context.get("mail_create_nosubscribe"):
            tickets.filtered("partner_id")._subscribe_customers()
        tickets.filtered("team_id")._sla_apply()
        return tickets

    @api.model
    def _number_and_stage(self, vals_list):
        """Give the tickets to create of ``vals_list`` their numbers, in list order, and
        their team's first stage (or the first of all), in place; values that name
        them keep theirs. Each company's sequence and each team's first stage are read
        once for the list. ``create()`` calls it; the gateway's batch calls it for the
        tickets of a fetch before it creates them in several ``create()``."""
        new_label = self.env._("New")
        to_number = defaultdict(list)
        for vals in vals_list:
            if not vals.get("number") or vals["number"] == new_label:
                to_number[vals.get("company_id") or self.env.company.id].append(vals)
        for company_id, company_vals in to_number.items():
            numbers = self._next_numbers(
                self.env["res.company"].browse(company_id), len(company_vals)
            )
            for vals, number in zip(company_vals, numbers, strict=True):
                vals["number"] = number
        if "default_stage_id" in self.env.context:
            return
        default_team_id = self.env.context.get("default_team_id") or False
        stageless = defaultdict(list)
        for vals in vals_list:
            if "stage_id" not in vals:
                stageless[vals.get("team_id", default_team_id)].append(vals)
        Team = self.env["mail.ticket.team"]
        for team_id, team_vals in stageless.items():
            stage = Team.browse(team_id)._first_stage()
            for vals in team_vals:
                vals["stage_id"] = stage.id

    @api.model
    def _next_numbers(self, company, count):
        """``count`` new ticket numbers of ``company``'s sequence (one look-up of it)."""
        sequence = (
            self.env["ir.sequence"]
            .with_company(company)
            .search_fetch(
                [("code", "=", "mail.ticket"), ("company_id", "in", [company.id, False])],
                # with what drawing a number reads (ir.sequence._next)
                ["implementation", "use_date_range", "prefix", "suffix", "padding"],
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
        if vals.get("stage_id"):
            self._send_rating_request()
        if SLA_FIELDS.intersection(vals):
            (self if "team_id" in vals else self.filtered("team_id"))._sla_apply()
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

    def action_release_spam(self):
        """Not spam after all: the ticket joins the open tickets, its sender becomes its
        customer (a contact made when unknown), follows it, and is acknowledged when the
        mailbox acknowledges."""
        for ticket in self.filtered("is_spam"):
            # the contact the gateway would have made, whoever releases the ticket
            customer = ticket.partner_id or self.sudo()._partner_find_from_emails_single(
                [ticket.email_from], no_create=False
            )
            server = ticket.fetchmail_server_id
            ticket.write(
                {
                    "spam_reason": False,
                    "partner_id": customer.id,
                    "ack_pending": bool(customer) and (server.ticket_send_ack if server else True),
                }
            )
            ticket.filtered("partner_id")._subscribe_customers()
            ticket.message_post(
                body=self.env._("Released from spam by %(user)s.", user=self.env.user.name),
                subtype_xmlid="mail.mt_note",
            )
        return True

    def action_block_sender(self):
        """Block the address of the mail that opened the ticket: its mail opens no ticket
        and creates no contact any more (see ``mail.ticket.blocked.sender``)."""
        self.ensure_one()
        email = tools.email_normalize(self.email_from or "") or self.partner_id.email_normalized
        if not email:
            raise UserError(self.env._("This ticket names no sender address to block."))
        Blocked = self.env["mail.ticket.blocked.sender"]
        if not Blocked._blocked_emails([email]):
            Blocked.create(
                {
                    "name": email,
                    "reason": self.env._(
                        "Blocked from ticket %(number)s", number=self.number or self.name
                    ),
                }
            )
        self.message_post(
            body=self.env._("%(email)s blocked by %(user)s.", email=email, user=self.env.user.name),
            subtype_xmlid="mail.mt_note",
        )
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success",
                "message": self.env._("Mail from %(email)s opens no ticket any more.", email=email),
                "next": {"type": "ir.actions.act_window_close"},
            },
        }

    def action_open_ratings(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "mail_ticket.rating_rating_action_mail_ticket"
        )
        action["domain"] = [
            ("res_model", "=", self._name),
            ("res_id", "=", self.id),
            ("consumed", "=", True),
        ]
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

    def _split_default_message(self):
        """The message a split starts from: the customer's latest."""
        self.ensure_one()
        return self.env["mail.message"].search(
            [
                ("model", "=", self._name),
                ("res_id", "=", self.id),
                ("message_type", "in", ("email", "comment")),
                ("author_id.partner_share", "=", True),
            ],
            order="date desc, id desc",
            limit=1,
        )

    def _split_message(self, message, name=None):
        """Open a new ticket from ``message`` of this ticket: its body is the
        description, its author the customer, its attachments are copied; a note on
        each ticket links the other. Return the new ticket."""
        self.ensure_one()
        self.check_access("write")
        new_ticket = self.create(
            {
                "name": name or self.name,
                "description": message.body,
                "partner_id": message.author_id.id,
                "company_id": self.company_id.id,
                "fetchmail_server_id": self.fetchmail_server_id.id,
            }
        )
        for attachment in message.attachment_ids:
            attachment.copy({"res_model": self._name, "res_id": new_ticket.id})
        new_ticket.message_post(
            body=self.env._(
                "Split from %(ticket)s.", ticket=self._get_html_link(title=self.display_name)
            ),
            subtype_xmlid="mail.mt_note",
        )
        self.message_post(
            body=self.env._(
                "A message was split off into %(ticket)s.",
                ticket=new_ticket._get_html_link(title=new_ticket.display_name),
            ),
            subtype_xmlid="mail.mt_note",
        )
        _logger.info("Ticket %s split off ticket %s", new_ticket.number, self.number)
        return new_ticket

    def _merge_destination(self):
        """The ticket that speaks for this one: itself, or the one it was merged into."""
        self.ensure_one()
        ticket, seen = self, set()
        while ticket.merged_into_id and ticket.id not in seen:
            seen.add(ticket.id)
            ticket = ticket.merged_into_id
        return ticket

    # ------------------------------------------------------------
    # SLA
    # ------------------------------------------------------------

    def _sla_apply(self, now=None):
        """Give these tickets a status for each SLA policy of their team that holds for
        them (drop those that no longer hold, unless reached), then bring the statuses
        up to date (see ``mail.ticket.sla.status._sla_refresh``)."""
        if not self:
            return
        tickets = self.sudo()
        Sla = self.env["mail.ticket.sla"].sudo()
        policies = Sla.search([("team_id", "in", tickets.team_id.ids)]) if tickets.team_id else Sla
        Status = self.env["mail.ticket.sla.status"].sudo()
        now = now or fields.Datetime.now()
        plans = {}  # the tickets of a batch share their creation date: one deadline
        to_drop, to_refresh, to_create = Status, Status, []
        for ticket in tickets:
            holding = policies.filtered(lambda sla, ticket=ticket: sla._applies_to(ticket))
            current = ticket.sla_status_ids
            dropped = current.filtered(
                lambda status, holding=holding: (
                    status.sla_id not in holding and not status.reached_datetime
                )
            )
            to_drop |= dropped
            to_refresh |= current - dropped
            to_create += [
                {
                    "ticket_id": ticket.id,
                    "sla_id": sla.id,
                    **Status._sla_values(ticket, sla, NEW_STATE, now, plans),
                }
                for sla in holding - current.sla_id
            ]
        to_drop.unlink()
        to_refresh._sla_refresh(now, plans)
        Status.create(to_create)

    @api.model
    def _cron_update_sla(self):
        """Every quarter of an hour: the overdue statuses fail, those due soon warn their
        agent, the failed ones tell the team's members (each once)."""
        now = fields.Datetime.now()
        Status = self.env["mail.ticket.sla.status"].sudo()
        Status.search([("status", "=", "ongoing"), ("deadline", "<", now)])._sla_refresh(now)
        # the hours late of the open tickets that failed count on
        Status.search(
            [
                ("status", "=", "failed"),
                ("reached_datetime", "=", False),
                ("ticket_id.is_closed", "=", False),
            ]
        )._sla_refresh(now)
        Status.search(
            [("status", "=", "ongoing"), ("deadline", "!=", False), ("is_warned", "=", False)]
        )._sla_warn(now)
        Status.search(
            [
                ("status", "=", "failed"),
                ("reached_datetime", "=", False),
                ("is_failure_notified", "=", False),
            ]
        )._sla_notify_failure()

    # ------------------------------------------------------------
    # RATING
    # ------------------------------------------------------------

    def _send_rating_request(self):
        """Ask the customers of these tickets to rate them, where their stage has a
        rating template (project.task's ``_send_task_rating_mail``). Not when the
        customer moves their own ticket, nor for tickets without a customer
        (unverified senders)."""
        for ticket in self:
            template = ticket.stage_id.rating_template_id
            partner = ticket._rating_get_partner()
            if template and partner and partner != self.env.user.partner_id:
                ticket.rating_send_request(template, lang=partner.lang, force_send=False)

    def rating_send_request(self, template, lang=False, force_send=True):
        """As rating's, but the request is an automatic answer to the customer alone
        (as the acknowledgement), not a note: a reply to it is then a comment on the
        ticket as every reply is, where Odoo makes a reply to a note a note. It goes
        out through the mail queue unless ``force_send``."""
        if lang:
            template = template.with_context(lang=lang)
        for ticket in self:
            ticket.with_context(mail_notify_force_send=force_send).message_post_with_source(
                template,
                message_type="auto_comment",
                subtype_xmlid="mail.mt_comment",
                email_layout_xmlid="mail.mail_notification_light",
                partner_ids=[Command.set(ticket._rating_get_partner().ids)],
                notify_skip_followers=True,
            )

    def _rating_apply_get_default_subtype_id(self):
        return self.env["ir.model.data"]._xmlid_to_res_id("mail_ticket.mt_ticket_rating")

    def _rating_get_parent_field_name(self):
        # the team groups the ratings (rating.rating's parent): its dashboard shows them
        return "team_id"

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
        return subject_references(subject, bracketed_only=bracketed_only)

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

    def message_post(self, **kwargs):
        # the gateway's verdict travels with the parsed mail, not into the message
        kwargs.pop(VERDICT_KEY, None)
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
            # the ticket is this one: the new message's res_id is not read again
            self._mail_ticket_add_comments(
                message, is_from_email=message_type == "email", ticket_ids=self.ids
            )
        return super()._message_post_after_hook(message, msg_vals)

    @api.model
    def _mail_ticket_add_comments(self, messages, is_from_email=True, ticket_ids=None):
        """Mirror messages of the customer conversations as comments (one create), and
        note on their tickets who spoke last. ``ticket_ids``: each message's ticket, when
        the caller knows them (else read from the messages)."""
        if ticket_ids is None:
            ticket_ids = [message.res_id for message in messages]
        self.env["mail.ticket.comment"].sudo().create(
            [
                {"ticket_id": ticket_id, "message_id": message.id, "is_from_email": is_from_email}
                for message, ticket_id in zip(messages, ticket_ids, strict=True)
            ]
        )
        tickets = self.browse(ticket_ids)  # read together
        for message, ticket in zip(messages, tickets, strict=True):
            ticket._mail_ticket_comment_effects(message)

    def _mail_ticket_comment_effects(self, message):
        """What an agent's message of the conversation changes on its ticket."""
        self.ensure_one()
        author = message.author_id
        # a mail of the customer's side is noted by the gateway, which knows whether it
        # speaks for its sender (message_update, _mail_ticket_customer_spoke)
        if author and not author.partner_share:
            vals = {"date_last_agent_answer": message.date}
            if not self.date_first_answer and not message.is_internal:
                vals["date_first_answer"] = message.date
            self.sudo().write(vals)
