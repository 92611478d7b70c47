from datetime import timedelta

from markupsafe import Markup

from odoo import api, fields, models
from odoo.tools import format_datetime

SLA_STATUSES = [("ongoing", "Ongoing"), ("reached", "Reached"), ("failed", "Failed")]
DEFAULT_WARNING_HOURS = 1.0
# where a status starts (its values that _sla_values follows)
NEW_STATE = {
    "deadline": False,
    "reached_datetime": False,
    "status": "ongoing",
    "exceeded_hours": 0.0,
    "paused_hours": 0.0,
    "date_paused": False,
}


class MailTicketSlaStatus(models.Model):
    """Where a ticket stands with one SLA policy of its team: its deadline (working
    hours of the team from the ticket's creation, moved by the hours paused), when the
    ticket reached the policy's stage, and whether it did in time."""

    _name = "mail.ticket.sla.status"
    _description = "Ticket SLA Status"
    _order = "deadline, id"
    _rec_name = "sla_id"

    ticket_id = fields.Many2one("mail.ticket", required=True, index=True, ondelete="cascade")
    sla_id = fields.Many2one(
        "mail.ticket.sla", string="SLA Policy", required=True, index=True, ondelete="cascade"
    )
    team_id = fields.Many2one(related="sla_id.team_id", store=True, index=True)
    user_id = fields.Many2one(related="ticket_id.user_id", string="Agent", store=True)
    company_id = fields.Many2one(related="ticket_id.company_id", store=True, index=True)
    date_ticket = fields.Datetime(
        related="ticket_id.create_date", string="Ticket Created On", store=True
    )
    deadline = fields.Datetime(
        readonly=True, help="Empty while the clock is paused (the ticket waits in a paused stage)."
    )
    reached_datetime = fields.Datetime(string="Reached On", readonly=True)
    status = fields.Selection(SLA_STATUSES, default="ongoing", required=True, readonly=True)
    exceeded_hours = fields.Float(
        string="Hours Late",
        readonly=True,
        aggregator="avg",
        help="The working hours between the deadline and the ticket reaching the policy's "
        "stage (or now, while it has not).",
    )
    paused_hours = fields.Float(
        string="Hours Paused",
        readonly=True,
        help="The working hours the ticket spent in the policy's paused stages.",
    )
    date_paused = fields.Datetime(string="Paused Since", readonly=True)
    is_warned = fields.Boolean(
        string="Warning Sent", readonly=True, help="The agent got an activity before the deadline."
    )
    is_failure_notified = fields.Boolean(
        string="Failure Notified", readonly=True, help="The team's members were told it failed."
    )

    _ticket_sla_uniq = models.Constraint(
        "UNIQUE(ticket_id, sla_id)", "A ticket has one status per SLA policy."
    )

    # ------------------------------------------------------------
    # BUSINESS
    # ------------------------------------------------------------

    @api.model
    def _working_hours(self, calendar, start, end):
        """The working hours of ``calendar`` (its leaves excluded) from ``start`` to
        ``end`` (naive UTC); calendar hours without a calendar."""
        if end <= start:
            return 0.0
        if not calendar:
            return (end - start).total_seconds() / 3600
        return calendar.get_work_hours_count(start, end, compute_leaves=True)

    @api.model
    def _plan(self, calendar, hours, start):
        """``start`` (naive UTC) plus ``hours`` working hours of ``calendar``."""
        if not calendar:
            return start + timedelta(hours=hours)
        return calendar.plan_hours(hours, start, compute_leaves=True) or False

    def _sla_refresh(self, now=None, plans=None):
        """Bring these statuses up to date with their tickets' stages at ``now`` (see
        ``_sla_values``); ``plans``: the deadlines already planned, shared by a batch."""
        now = now or fields.Datetime.now()
        plans = {} if plans is None else plans
        for status in self:
            state = {fname: status[fname] for fname in NEW_STATE}
            vals = self._sla_values(status.ticket_id, status.sla_id, state, now, plans)
            changed = {key: value for key, value in vals.items() if state[key] != value}
            if changed:
                status.write(changed)

    @api.model
    def _sla_values(self, ticket, sla, state, now, plans):
        """The values of the status of ``ticket`` with ``sla`` at ``now``, from its
        values ``state`` (``NEW_STATE`` for a new one): close or open a pause, note when
        the target stage is reached, then the deadline and the status. The deadlines of
        a batch of tickets created together are planned once (``plans``)."""
        calendar = sla.team_id.resource_calendar_id
        stage = ticket.stage_id
        vals = {}
        reached = state["reached_datetime"]
        reaches = bool(stage) and (stage.sequence, stage.id) >= (
            sla.stage_id.sequence,
            sla.stage_id.id,
        )
        pauses = (
            not reached
            and not reaches
            and stage in sla.exclude_stage_ids
            and state["status"] != "failed"
        )
        paused_hours = state["paused_hours"]
        if state["date_paused"] and not pauses:
            paused_hours += self._working_hours(calendar, state["date_paused"], now)
            vals.update(paused_hours=paused_hours, date_paused=False)
        elif pauses and not state["date_paused"]:
            vals["date_paused"] = now
        if not reached and reaches:
            # a ticket entered closed (an import, the demo) reached when it closed
            closed = ticket.is_closed and ticket.date_closed
            reached = vals["reached_datetime"] = min(closed, now) if closed else now
        deadline = state["deadline"]
        if pauses:
            deadline = False
        elif not deadline or "paused_hours" in vals:
            key = (calendar.id, sla.time + paused_hours, ticket.create_date or now)
            if key not in plans:
                plans[key] = self._plan(calendar, key[1], key[2])
            deadline = plans[key]
        vals["deadline"] = deadline
        if reached:
            late = bool(deadline) and reached > deadline
        else:
            late = bool(deadline) and now > deadline
        vals["status"] = "failed" if late else "reached" if reached else "ongoing"
        vals["exceeded_hours"] = (
            self._working_hours(calendar, deadline, reached or now) if late else 0.0
        )
        return vals

    @api.model
    def _warning_hours(self):
        param = self.env["ir.config_parameter"].sudo().get_param("mail_ticket.sla_warning_hours")
        return float(param) if param else DEFAULT_WARNING_HOURS

    def _sla_warn(self, now):
        """An activity for the agent of each ongoing status due within the warning
        hours (working hours of its team; the team's first member when the ticket has no
        agent), once."""
        hours = self._warning_hours()
        due = self.browse()
        for calendar, statuses in self.grouped(lambda s: s.team_id.resource_calendar_id).items():
            limit = self._plan(calendar, hours, now) or now + timedelta(hours=hours)
            due |= statuses.filtered(lambda s, limit=limit: s.deadline and s.deadline <= limit)
        for status in due:
            ticket = status.ticket_id
            agent = ticket.user_id or status.team_id.member_ids[:1]
            if agent:
                ticket.activity_schedule(
                    "mail.mail_activity_data_todo",
                    date_deadline=fields.Date.context_today(ticket, status.deadline),
                    summary=self.env._(
                        "SLA %(policy)s due %(deadline)s",
                        policy=status.sla_id.name,
                        deadline=status._deadline_text(),
                    ),
                    note=self.env._(
                        "This ticket must reach the stage %(stage)s before its SLA deadline.",
                        stage=status.sla_id.stage_id.name,
                    ),
                    user_id=agent.id,
                )
        due.write({"is_warned": True})

    def _sla_notify_failure(self):
        """Tell the team's members (and the ticket's agent) that the ticket failed its
        SLA policy: an internal note notifying them, once."""
        for status in self:
            ticket = status.ticket_id
            partners = (status.team_id.member_ids | ticket.user_id).partner_id
            ticket.message_post(
                body=Markup("<p>%s</p>")
                % self.env._(
                    "SLA policy %(policy)s failed: the deadline was %(deadline)s and the "
                    "ticket has not reached the stage %(stage)s.",
                    policy=status.sla_id.name,
                    deadline=status._deadline_text(),
                    stage=status.sla_id.stage_id.name,
                ),
                subtype_xmlid="mail.mt_note",
                partner_ids=partners.ids,
            )
        self.write({"is_failure_notified": True})

    def _deadline_text(self):
        """The deadline as the team reads it: in the time zone of its working hours."""
        self.ensure_one()
        return format_datetime(
            self.env,
            self.deadline,
            tz=self.team_id.resource_calendar_id.tz or self.env.user.tz or "UTC",
            dt_format="short",
        )
