import hashlib
import logging
import os
import re
import time
from datetime import timedelta
from imaplib import IMAP4
from itertools import groupby

from odoo import SUPERUSER_ID, api, fields, models, tools
from odoo.exceptions import UserError, ValidationError
from odoo.fields import Command
from odoo.tools import SQL, config, exception_to_unicode

from odoo.addons.mail.models.fetchmail import MAIL_SERVER_DEACTIVATE_TIME, MAIL_SERVER_DOMAIN

from ..service.idle_listener import CHANNEL as IDLE_CHANNEL
from ..service.idle_listener import LOCK_KEY as IDLE_LOCK_KEY
from ..service.idle_listener import MESSAGES as IDLE_MESSAGES
from ..tools.imap_mailbox import ImapMailbox
from ..tools.mailbox_ingestion import IngestionResult, MailboxIngestion
from .mail_ticket import TICKET_PRIORITIES

_logger = logging.getLogger(__name__)

# server types of Odoo's microsoft_outlook and google_gmail: IMAP with an OAuth access token
OAUTH_SERVER_TYPES = ("outlook", "gmail")
MANUAL_FETCH_LIMIT = 500  # "Fetch Now" leaves the rest to the cron
# what a ticket mailbox's own scheduled action follows
CRON_FIELDS = {"active", "state", "name", "object_id", "server_type", "ticket_fetch_interval"}
# what the push listener's connection to a mailbox follows
IDLE_FIELDS = {
    "active",
    "state",
    "server_type",
    "server",
    "port",
    "is_ssl",
    "user",
    "password",
    "ticket_secret_key",
    "ticket_folder",
    "ticket_idle",
    "object_id",
}
IMAP_SERVER_TYPES = ("imap", *OAUTH_SERVER_TYPES)
# a mailbox's password kept out of the database, where operators keep secrets
SECRET_KEY_RE = re.compile(r"[a-z0-9_]+")  # odoo.conf lowercases its option names
SECRET_OPTION = "mail_ticket_password_{key}"  # in odoo.conf
SECRET_ENVIRON = "MAIL_TICKET_PASSWORD_{KEY}"  # in the environment of the Odoo process
DEFAULT_ALERT_MINUTES = 60  # a mailbox failing that long is reported


class FetchmailServer(models.Model):
    _inherit = "fetchmail.server"

    is_ticket_server = fields.Boolean(compute="_compute_is_ticket_server")
    ticket_folder = fields.Char(
        string="Folder", default="INBOX", help="Mailbox folder read for new mail."
    )
    ticket_processed_action = fields.Selection(
        [("seen", "Mark as read"), ("move", "Move to a folder"), ("delete", "Delete")],
        string="After Processing",
        default="seen",
        required=True,
        help="What happens in the mailbox to a mail once it is a ticket or a comment. "
        "Mails that failed are left as they are.",
    )
    ticket_processed_folder = fields.Char(
        string="Move to Folder",
        default="Processed",
        help="Created in the mailbox if it does not exist.",
    )
    ticket_max_attempts = fields.Integer(
        string="Attempts",
        default=3,
        help="How many times a failing mail is processed before it is left to an admin.",
    )
    ticket_max_size = fields.Integer(
        string="Size Limit (MB)",
        default=25,
        help="Larger mails are not processed: they are recorded as failed and left in the mailbox.",
    )
    ticket_reply_to = fields.Char(
        string="Support Address",
        compute="_compute_ticket_reply_to",
        store=True,
        readonly=False,
        help="Reply-To of the mails sent from its tickets, so that customer replies come "
        "back to this mailbox. Defaults to the login when it is an address.",
    )
    ticket_send_ack = fields.Boolean(
        string="Acknowledge New Tickets",
        default=True,
        help="Send the customer a mail with the number of the ticket their mail opened "
        "(never to auto-replies, lists or mailer daemons).",
    )
    ticket_unverified_policy = fields.Selection(
        [("note", "Internal note on the ticket"), ("new", "New ticket")],
        string="Unverified Sender Naming a Ticket",
        default="note",
        required=True,
        help="A mail that names a ticket (by its subject or its headers) but whose sender "
        "is not verified: neither the customer, a follower nor a colleague of the "
        "customer's company, or DMARC failed, or an internal user's address without a "
        "DMARC pass. Keep it on the ticket as an internal note marked unverified (it "
        "reaches nobody and changes nothing), or open a new ticket.",
    )
    ticket_follow_known_contacts = fields.Boolean(
        string="Copied Contacts Follow",
        help="People in To/Cc of a verified mail who are already contacts follow its "
        "ticket and receive the answers. Otherwise they are only suggested to the agents "
        "as recipients; unknown addresses never get a contact.",
    )
    ticket_follow_limit = fields.Integer(
        string="Copied Contacts per Ticket",
        default=5,
        help="At most that many copied contacts (besides the customer) follow a ticket: a "
        "mail copied to a crowd cannot make the helpdesk mail them all.",
    )
    ticket_ack_hourly_limit = fields.Integer(
        string="Acknowledgements per Hour",
        default=100,
        help="At most that many acknowledgements leave this mailbox in an hour, whoever "
        "the senders are: a flood of mail cannot make the helpdesk mail back a crowd.",
    )
    ticket_team_id = fields.Many2one(
        "mail.ticket.team",
        string="Team",
        index="btree_not_null",
        help="The team of the tickets this mailbox opens: their stages, who gets them, "
        "who sees them and their SLA policies.",
    )
    ticket_priority = fields.Selection(
        TICKET_PRIORITIES, string="Default Priority", default="1", required=True
    )
    ticket_tag_ids = fields.Many2many("mail.ticket.tag", string="Default Tags")
    ticket_company_id = fields.Many2one(
        "res.company",
        string="Company",
        default=lambda self: self.env.company,
        index=True,
        help="Company of the tickets this mailbox creates, and of its fetched mails and "
        "fetch history.",
    )
    ticket_secret_key = fields.Char(
        string="Password from Configuration",
        help="Read the password from the Odoo configuration file (option "
        "mail_ticket_password_<key>) or, when it is not there, from the environment "
        "variable MAIL_TICKET_PASSWORD_<KEY> of the Odoo process, instead of the "
        "database. Lowercase letters, digits and underscores.",
    )
    ticket_fetch_interval = fields.Integer(
        string="Fetch Every (minutes)",
        default=1,
        help="How often this mailbox is read, by its own scheduled action: an idle mailbox "
        "costs one IMAP command per run.",
    )
    ticket_idle = fields.Boolean(
        string="Instant (IMAP IDLE)",
        default=True,
        help="Keep a connection open on the folder (IMAP IDLE): the server announces each "
        "new mail at once and its scheduled fetch runs within seconds, the polling above "
        "staying the safety net. Needs the push listener of the Odoo server (mail_ticket "
        "among its server-wide modules, or the mail_ticket_idle command). Turned off by "
        "Test & Confirm when the server does not announce IDLE.",
    )
    ticket_cron_id = fields.Many2one(
        "ir.cron",
        string="Scheduled Fetch",
        readonly=True,
        copy=False,
        ondelete="set null",
        help="The scheduled action that reads this mailbox, on its own, so that Odoo's cron "
        "workers read several mailboxes at once. Active while the server is confirmed.",
    )
    ticket_idle_state = fields.Selection(
        [
            ("off", "Off"),
            ("waiting", "No listener"),
            ("connected", "Connected"),
            ("reconnecting", "Reconnecting"),
            ("unsupported", "IDLE not supported"),
        ],
        string="Push",
        compute="_compute_ticket_idle_state",
        help="Whether a push listener holds this mailbox in IMAP IDLE. No listener: none "
        "runs (mail_ticket is not among the server-wide modules of the Odoo servers and "
        "the mail_ticket_idle command does not run), or it stopped; the polling still "
        "reads the mailbox.",
    )
    ticket_idle_date_connected = fields.Datetime(
        string="Connected Since", compute="_compute_ticket_idle_state"
    )
    ticket_idle_date_event = fields.Datetime(
        string="Last New Mail",
        compute="_compute_ticket_idle_state",
        help="When the mail server last announced a new mail to the listener.",
    )
    ticket_idle_holder = fields.Char(
        string="Held By",
        compute="_compute_ticket_idle_state",
        help="Host and process id of the listener.",
    )
    ticket_idle_error = fields.Text(string="Push Error", compute="_compute_ticket_idle_state")
    ticket_batch_blocked = fields.Text(
        string="Batched Ingestion Off",
        compute="_compute_ticket_batch_blocked",
        help="Why this database processes fetched mails one by one through Odoo's "
        "message_process rather than in batches: a module overrides a step of the mail "
        "gateway that the batches do not run mail by mail. Mails are processed all the "
        "same, only slower.",
    )
    ticket_fetch_run_ids = fields.One2many(
        "mail.ticket.fetch.run", "server_id", string="Fetch History"
    )
    ticket_inbound_ids = fields.One2many("mail.ticket.inbound", "server_id", string="Fetched Mails")
    ticket_failed_count = fields.Integer(
        string="Failed Mails", compute="_compute_ticket_failed_count"
    )
    date_ticket_alert = fields.Datetime(
        string="Failure Reported On",
        readonly=True,
        copy=False,
        help="When the administrators were told that this mailbox fails; cleared, with a "
        "second message, once it works again.",
    )

    @api.depends("object_id")
    def _compute_is_ticket_server(self):
        for server in self:
            server.is_ticket_server = server.object_id.model == "mail.ticket"

    def _compute_ticket_batch_blocked(self):
        Ticket = self.env["mail.ticket"]
        blocked = Ticket._mail_ticket_batch_blockers()
        self.ticket_batch_blocked = Ticket._mail_ticket_batch_blockers_text(blocked) or False

    @api.depends("user")
    def _compute_ticket_reply_to(self):
        for server in self:
            if not server.ticket_reply_to:
                server.ticket_reply_to = tools.email_normalize(server.user) or False

    @api.depends("ticket_idle")
    def _compute_ticket_idle_state(self):
        sessions = {
            session.server_id: session
            for session in self.env["mail.ticket.idle.session"]
            .sudo()
            .search([("server_id", "in", self.ids)])
        }
        # a session is live while its listener holds the mailbox's advisory lock: a
        # listener killed leaves its last word behind, not its lock
        held = set()
        if sessions:
            self.env.cr.execute(
                SQL(
                    "SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND classid = %s AND objsubid = 2 AND objid = ANY(%s) AND database = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database())",
                    IDLE_LOCK_KEY,
                    [server.id for server in sessions],
                )
            )
            held = {objid for (objid,) in self.env.cr.fetchall()}
        for server in self:
            session = sessions.get(server._origin)
            live = session and session.server_id.id in held and session.state != "stopped"
            server.ticket_idle_state = (
                "off" if not server.ticket_idle else session.state if live else "waiting"
            )
            server.ticket_idle_date_connected = live and session.date_connected
            server.ticket_idle_date_event = session.date_event if session else False
            server.ticket_idle_holder = live and session.holder
            error = live and session.error
            if error in IDLE_MESSAGES:  # the listener's own, translated
                error = str(IDLE_MESSAGES[error])
            server.ticket_idle_error = error

    def _compute_ticket_failed_count(self):
        counts = dict(
            self.env["mail.ticket.inbound"]._read_group(
                [("server_id", "in", self.ids), ("state", "=", "failed")],
                ["server_id"],
                ["__count"],
            )
        )
        for server in self:
            server.ticket_failed_count = counts.get(server._origin, 0)

    @api.constrains(
        "ticket_max_attempts",
        "ticket_max_size",
        "ticket_ack_hourly_limit",
        "ticket_fetch_interval",
        "ticket_follow_limit",
    )
    def _check_ticket_limits(self):
        if any(server.ticket_max_attempts < 1 or server.ticket_max_size < 1 for server in self):
            raise ValidationError(self.env._("Attempts and size limit must be at least 1."))
        if any(server.ticket_fetch_interval < 1 for server in self):
            raise ValidationError(self.env._("A mailbox is read every minute at most."))
        if any(server.ticket_ack_hourly_limit < 0 for server in self):
            raise ValidationError(self.env._("The acknowledgements per hour cannot be negative."))
        if any(server.ticket_follow_limit < 0 for server in self):
            raise ValidationError(self.env._("The copied contacts per ticket cannot be negative."))

    @api.constrains("ticket_secret_key", "server_type")
    def _check_ticket_secret_key(self):
        for server in self.filtered("ticket_secret_key"):
            if not SECRET_KEY_RE.fullmatch(server.ticket_secret_key):
                raise ValidationError(
                    self.env._(
                        "The password key of mail server %(name)s may only hold lowercase "
                        "letters, digits and underscores.",
                        name=server.name,
                    )
                )
            if server.server_type != "imap":
                raise ValidationError(
                    self.env._(
                        "Only an IMAP server with a login and password can read its password "
                        "from the configuration (mail server %(name)s).",
                        name=server.name,
                    )
                )

    @api.constrains("ticket_processed_action", "ticket_processed_folder", "ticket_folder")
    def _check_ticket_processed_folder(self):
        for server in self.filtered(lambda s: s.ticket_processed_action == "move"):
            folder = (server.ticket_processed_folder or "").strip()
            if not folder or folder == (server.ticket_folder or "INBOX"):
                raise ValidationError(
                    self.env._(
                        "Mail server %(name)s moves processed mail: give it a folder other "
                        "than the one it reads.",
                        name=server.name,
                    )
                )

    # ------------------------------------------------------------
    # ORM
    # ------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        vals_list = [self._ticket_drop_stored_password(vals) for vals in vals_list]
        servers = super().create(vals_list)
        servers._ticket_sync_cron()
        servers._ticket_idle_notify()
        return servers

    def write(self, vals):
        res = super().write(self._ticket_drop_stored_password(vals))
        # as Odoo's _update_cron: not while fetching (the job of the mailbox is running)
        if vals.keys() & CRON_FIELDS and not self.env.context.get("fetchmail_cron_running"):
            self._ticket_sync_cron()
        if vals.keys() & IDLE_FIELDS:
            self._ticket_idle_notify()
        return res

    def unlink(self):
        # the database cascade would leave the raw sources (attachments) behind
        self.check_access("unlink")
        self.env["mail.ticket.inbound"].sudo().search([("server_id", "in", self.ids)]).unlink()
        crons = self.sudo().ticket_cron_id
        self._ticket_idle_notify()
        res = super().unlink()
        self._ticket_unlink_crons(crons)
        return res

    def _ticket_idle_notify(self):
        """Tell the push listeners to read the mailbox list again (on commit: NOTIFY is
        transactional)."""
        if self:
            self.env.cr.execute(
                SQL("SELECT pg_notify(%s, %s)", IDLE_CHANNEL, ",".join(map(str, self.ids)))
            )

    @api.model
    def _ticket_sync_all_crons(self):
        """Bring the scheduled actions of all mail servers up to date (on install and
        update of the addon: mailboxes created before had none)."""
        self.sudo().with_context(active_test=False).search([])._ticket_sync_cron()

    @api.model
    def _ticket_unlink_crons(self, crons):
        """Remove scheduled actions of ticket mailboxes, with their server actions (which
        the ORM keeps when it removes a record that _inherits them)."""
        actions = crons.sudo().ir_actions_server_id
        crons.sudo().unlink()
        actions.unlink()

    def _ticket_sync_cron(self):
        """Give each ticket mailbox on IMAP its own scheduled action, active while the
        server is active and confirmed; remove it from the other servers."""
        Cron = self.env["ir.cron"].sudo()
        for server in self.sudo().with_context(active_test=False):
            cron = server.ticket_cron_id
            if not server.is_ticket_server or server._get_connection_type() != "imap":
                if cron:
                    server.ticket_cron_id = False
                    self._ticket_unlink_crons(cron)
                continue
            vals = {
                "name": self.env._("Helpdesk: Fetch Mailbox %(name)s", name=server.name),
                "interval_number": server.ticket_fetch_interval,
                "interval_type": "minutes",
                "active": server.active and server.state == "done",
            }
            if not cron:
                server.ticket_cron_id = Cron.create(
                    {
                        **vals,
                        "model_id": self.env["ir.model"]._get_id("fetchmail.server"),
                        "state": "code",
                        "code": f"model._cron_fetch_ticket_mailbox({server.id})",
                        "user_id": SUPERUSER_ID,
                        "priority": 4,  # before the shared fetchmail cron (5)
                    }
                )
                continue
            changes = {name: value for name, value in vals.items() if cron[name] != value}
            # a running job is locked: it deactivates itself when it finds its server
            # unconfirmed, and is brought up to date by the next change (Odoo's toggle)
            if changes and cron.try_lock_for_update(allow_referencing=True):
                cron.write(changes)

    # ------------------------------------------------------------
    # ACTIONS
    # ------------------------------------------------------------

    def button_confirm_login(self):
        res = super().button_confirm_login()
        for server in self._ticket_imap_servers():
            connection = server._connect__(allow_archived=True)
            try:
                mailbox = ImapMailbox(connection, server.ticket_folder)
                mailbox.select()
                if server.ticket_idle and "IDLE" not in mailbox.authenticated_capabilities():
                    server.ticket_idle = False  # polling only: the server cannot push
            except IMAP4.error as error:
                raise UserError(
                    self.env._(
                        'The connection works, but folder "%(folder)s" cannot be read: %(error)s',
                        folder=server.ticket_folder,
                        error=error,
                    )
                ) from error
            finally:
                connection.disconnect()
        return res

    def fetch_mail(self):
        res = super().fetch_mail()
        if not self.is_ticket_server:
            return res
        run = self.ticket_fetch_run_ids[:1]
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success",
                "title": self.env._("Mailbox fetched"),
                "message": self.env._(
                    "%(fetched)s mail(s): %(created)s new ticket(s), %(updated)s comment(s), "
                    "%(ignored)s ignored, %(failed)s failed.",
                    fetched=run.fetched_count,
                    created=run.created_count,
                    updated=run.updated_count,
                    ignored=run.ignored_count,
                    failed=run.failed_count,
                ),
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    def action_open_ticket_failed(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "mail_ticket.mail_ticket_inbound_action"
        )
        action["domain"] = [("server_id", "=", self.id)]
        action["context"] = {"search_default_failed": 1}
        return action

    # ------------------------------------------------------------
    # CONNECTION
    # ------------------------------------------------------------

    def _imap_login__(self, connection):
        if self.server_type == "imap":
            password = (
                self._ticket_secret_password() if self.ticket_secret_key else self.password or ""
            )
            if not (password.isascii() and (self.user or "").isascii()):
                self._ticket_login_utf8(connection, password)
                return
            if self.ticket_secret_key:
                connection.login(self.user, password)
                return
        super()._imap_login__(connection)

    def _ticket_login_utf8(self, connection, password):
        """Log in with a login or password that is not ASCII: IMAP's LOGIN command cannot
        carry it, SASL PLAIN can (RFC 4616: UTF-8). Never quotes the password in an error
        (imaplib's encoding error names the character it could not send)."""
        if "AUTH=PLAIN" not in connection.capabilities:
            raise UserError(
                self.env._(
                    "The login or password of mail server %(name)s contains characters "
                    "that the IMAP server's LOGIN command cannot carry, and the server "
                    "offers no other way to log in with them (AUTHENTICATE PLAIN): use a "
                    "password of ASCII letters, digits and punctuation only.",
                    name=self.name,
                )
            )
        credentials = f"\0{self.user}\0{password}".encode()
        connection.authenticate("PLAIN", lambda challenge: credentials)

    @api.model
    def _ticket_drop_stored_password(self, vals):
        """A password read from the configuration leaves none in the database."""
        if vals.get("ticket_secret_key"):
            return {**vals, "password": False}
        return vals

    def _ticket_secret_password(self):
        """The password kept out of the database: odoo.conf first, then the environment."""
        self.ensure_one()
        key = self.ticket_secret_key
        option = SECRET_OPTION.format(key=key)
        variable = SECRET_ENVIRON.format(KEY=key.upper())
        password = config.get(option) or os.environ.get(variable)
        if not password:
            raise UserError(
                self.env._(
                    "Mail server %(name)s reads its password from the configuration, but "
                    "neither option %(option)s of the Odoo configuration file nor the "
                    "environment variable %(variable)s is set.",
                    name=self.name,
                    option=option,
                    variable=variable,
                )
            )
        return password

    # ------------------------------------------------------------
    # FETCH
    # ------------------------------------------------------------

    def _ticket_imap_servers(self):
        return self.filtered(
            lambda server: server.is_ticket_server and server._get_connection_type() == "imap"
        )

    @api.model
    def _ticket_default_reply_to_server(self):
        """The mailbox that answers for tickets entered by hand: the first ticket mailbox
        with a support address (one indexed query, only for tickets without a mailbox)."""
        return self.sudo().search(
            [("object_id.model", "=", "mail.ticket"), ("ticket_reply_to", "!=", False)],
            limit=1,
        )

    def _ticket_default_values(self):
        """Values of the tickets this server creates (``custom_values`` of the gateway)."""
        self.ensure_one()
        values = {
            "priority": self.ticket_priority,
            # not left to the context's default: the gateway drops it when it runs as
            # another user than the superuser (Fetch Now by an admin, Retry by a manager)
            "fetchmail_server_id": self.id,
        }
        if self.ticket_company_id:
            values["company_id"] = self.ticket_company_id.id
        if self.ticket_team_id:
            values["team_id"] = self.ticket_team_id.id
        if self.ticket_tag_ids:
            values["tag_ids"] = [Command.set(self.ticket_tag_ids.ids)]
        return values

    @api.model
    def _cron_fetch_ticket_mailbox(self, server_id):
        """The job of one ticket mailbox (its ``ticket_cron_id``): fetch it alone, so that
        Odoo's cron workers read several mailboxes in parallel."""
        server = self.browse(server_id).exists()
        server = server.filtered_domain(MAIL_SERVER_DOMAIN).filtered("active")
        if not server:  # draft, archived or deleted meanwhile: wait until it is confirmed
            self.env["ir.cron"]._commit_progress(deactivate=True)
            return
        server._fetch_mail()

    @api.model
    def _fetch_mails(self, **kw):
        """The shared cron "Mail: Fetchmail Service" leaves the ticket mailboxes that have
        their own job to it."""
        return super(FetchmailServer, self.with_context(mail_ticket_shared_cron=True))._fetch_mails(
            **kw
        )

    def _fetch_mail(self, batch_limit=50):
        """Fetch the servers in priority order, as Odoo's loop does (one server locked at a
        time, ``fetchmail_cron_running`` so that their writes leave the crons alone).

        Ticket mailboxes on IMAP are read by UID, losslessly, by
        :class:`~odoo.addons.mail_ticket.tools.mailbox_ingestion.MailboxIngestion`; the
        other servers by Odoo, a run of consecutive ones at a time. A cron run is bounded
        in time (``ir.cron._commit_progress``), Fetch Now in mails.
        """
        servers = self.with_context(fetchmail_cron_running=True).sorted(
            lambda server: (server.priority, server.id)
        )
        if self.env.context.get("mail_ticket_shared_cron"):
            servers = servers.filtered(lambda server: not server.ticket_cron_id.active)
        limit = None if self.env.context.get("cron_id") else MANUAL_FETCH_LIMIT
        Cron = self.env["ir.cron"]
        # The cron's progress: the servers still to check, plus the mails the ticket
        # mailboxes left. Odoo's loop sets it to what its own servers leave while it runs
        # them; a ticket mailbox checked after them in the same run sets it anew (the
        # shared cron leaves ticket mailboxes to their own jobs, so both rarely mix).
        remaining = len(servers)
        Cron._commit_progress(remaining=remaining)
        exception = None
        ticket_servers = servers._ticket_imap_servers()
        for is_ticket_server, group in groupby(servers, lambda s: s in ticket_servers):
            group = servers.browse().union(*group)
            if not is_ticket_server:
                remaining -= len(group)
                exception = (
                    super(FetchmailServer, group)._fetch_mail(batch_limit=batch_limit) or exception
                )
                if not Cron._commit_progress():  # keeps the count Odoo's loop left
                    return exception
                continue
            for server in group:
                remaining -= 1
                if not server.try_lock_for_update(allow_referencing=True).filtered_domain(
                    MAIL_SERVER_DOMAIN
                ):
                    _logger.info(
                        "Skip checking for new mails on mail server id %d (unavailable)",
                        server.id,
                    )
                    continue
                result = server._ticket_fetch_mailbox(limit)
                remaining += result.left
                exception = result.error or exception
                # As Odoo's fetch does: commit the run's history and the server (releasing
                # its lock) before touching the cron progress, which the mail transactions
                # updated meanwhile; the progress write would otherwise fail to serialize.
                self.env.cr.commit()  # pylint: disable=invalid-commit
                if not Cron._commit_progress(remaining=remaining):
                    return exception
        return exception

    def _ticket_fetch_mailbox(self, limit=None):
        """Fetch this locked ticket mailbox; record the run and the server's state.

        :return: the run's :class:`~odoo.addons.mail_ticket.tools.mailbox_ingestion.IngestionResult`
        """
        self.ensure_one()
        started = time.monotonic()
        _logger.debug(
            "Start checking for new emails on %s server %s, folder %s",
            self.server_type,
            self.name,
            self.ticket_folder,
        )
        result = IngestionResult()
        connection = message_cr = None
        try:
            connection = self._ticket_connect()
            # mails are processed in their own transactions, the server stays locked
            message_cr = self.env.registry.cursor()
            server = self.with_env(self.env(cr=message_cr))
            ingestion = MailboxIngestion(server, ImapMailbox(connection, self.ticket_folder))
            result = ingestion.result  # what it did, also when an error stops it
            ingestion.run(limit)
        except Exception as exc:  # kept on the server and in its fetch history
            result.error = exc
            _logger.warning(
                "General failure when fetching mail from %s server %s",
                self.server_type,
                self.name,
                exc_info=True,
            )
        finally:
            if message_cr is not None:
                message_cr.close()
            try:
                if connection:
                    connection.disconnect()
            except (OSError, IMAP4.error):
                _logger.warning("Failed to close the connection to %s", self.name, exc_info=True)
        duration = time.monotonic() - started
        self._ticket_record_run(result, duration)
        self._ticket_record_connection_state(result.error)
        if result.created and self.ticket_send_ack:
            self.env.ref("mail_ticket.ir_cron_mail_ticket_ack")._trigger()
        return result

    def _ticket_fetch_trigger(self, last_run):
        """What started this fetch: ``(trigger, push announcements counted so far)``. A
        run of the mailbox's job after the listener counted new mail (since ``last_run``,
        the mailbox's latest run) is the push's."""
        events = (
            self.env["mail.ticket.idle.session"]
            .sudo()
            .search([("server_id", "=", self.id)])
            .event_count
        )
        if not self.env.context.get("cron_id"):
            return "manual", events
        return ("push" if events > last_run.idle_event_count else "cron"), events

    def _ticket_record_run(self, result, duration):
        """Add the run to the fetch history; an empty run (nothing read, retried or left,
        no error) after an empty run only counts on that row, so that polling every
        minute does not fill the history."""
        Run = self.env["mail.ticket.fetch.run"].sudo()
        log = _logger.debug if result.is_empty else _logger.info
        log(
            "Fetched %d mail(s) from %s server %s in %.2fs: %d created, %d updated, %d ignored, "
            "%d failed, %d retried, %d left for the next run%s",
            result.fetched,
            self.server_type,
            self.name,
            duration,
            result.created,
            result.updated,
            result.ignored,
            result.failed,
            result.retried,
            result.left,
            " (idle)" if result.idle else "",
        )
        last = Run.search([("server_id", "=", self.id)], limit=1)
        trigger, events = self._ticket_fetch_trigger(last)
        # a run that found nothing to do counts on the row before it, unless that one
        # failed or was started otherwise: the history grows with the runs that did something
        if result.is_empty and last and not last.error and last.trigger == trigger:
            last.write(
                {
                    "check_count": last.check_count + 1,
                    "date_last_check": fields.Datetime.now(),
                    "idle_event_count": events,
                }
            )
            return last
        return Run.create(
            {
                "server_id": self.id,
                "trigger": trigger,
                "idle_event_count": events,
                "folder": self.ticket_folder,
                "duration": duration,
                "fetched_count": result.fetched,
                "created_count": result.created,
                "updated_count": result.updated,
                "ignored_count": result.ignored,
                "failed_count": result.failed,
                "retried_count": result.retried,
                "left_count": result.left,
                "error": result.error and exception_to_unicode(result.error),
            }
        )

    # ------------------------------------------------------------
    # PUSH (IMAP IDLE)
    # ------------------------------------------------------------

    @api.model
    def _ticket_idle_mailboxes(self):
        """The mailboxes a push listener holds: ``{server id: signature}``, the signature
        changing with what its connection follows (then the listener reconnects)."""
        servers = self.sudo().search(
            [
                ("ticket_idle", "=", True),
                ("state", "=", "done"),
                ("server_type", "in", IMAP_SERVER_TYPES),
                ("object_id.model", "=", "mail.ticket"),
            ]
        )
        return {server.id: server._ticket_idle_signature() for server in servers}

    def _ticket_idle_signature(self):
        self.ensure_one()
        values = [
            self[name].id if name == "object_id" else self[name] for name in sorted(IDLE_FIELDS)
        ]
        return hashlib.sha256(repr(values).encode()).hexdigest()  # no password in memory

    def _ticket_idle_connect(self):
        """Log in as the fetch does (its password from the configuration, its OAuth
        token renewed): ``(connection, folder)``. Failures are the fetch's to report."""
        self.ensure_one()
        return self._connect__(), self.ticket_folder

    def _ticket_idle_record(self, state, holder, error=None, event=False):
        """What the push listener tells of its connection; on new mail (``event``) or
        once connected (what arrived meanwhile), the mailbox's job runs at once."""
        self.ensure_one()
        Session = self.env["mail.ticket.idle.session"].sudo()
        session = Session.search([("server_id", "=", self.id)])
        now = fields.Datetime.now()
        vals = {"state": state, "holder": holder, "error": error or False}
        if event:
            vals.update(date_event=now, event_count=session.event_count + 1)
        elif state == "connected":
            vals["date_connected"] = now
        else:
            vals["date_connected"] = False
        if session:
            session.write(vals)
        else:
            Session.create({**vals, "server_id": self.id})
        if state == "connected" and self.ticket_cron_id:
            self.ticket_cron_id._trigger()

    def _ticket_connect(self):
        """Log in; tell the admins when an OAuth mailbox's token is refused or expired."""
        try:
            return self._connect__()
        except (IMAP4.error, UserError) as error:
            if (
                self.server_type in OAUTH_SERVER_TYPES
                and not isinstance(error, IMAP4.abort)
                and not self.error_date  # once, when the mailbox starts failing
            ):
                self._ticket_notify_oauth_failure(error)
            raise

    def _ticket_notify_oauth_failure(self, error):
        """An access token is refused by the mail server (IMAP ``AUTHENTICATIONFAILED``), or
        could not be renewed (the refresh token expired or was revoked): only an admin
        signing in to the mail provider again can fix it."""
        self.env["ir.cron"]._notify_admin(
            self.env._(
                "Mail server %(name)s cannot log in to %(user)s any more: its OAuth access "
                "was refused (%(error)s). Open the mail server, sign in to the mail provider "
                "again and press Test & Confirm.",
                name=self.name,
                user=self.user,
                error=exception_to_unicode(error),
            )
        )

    def _ticket_record_connection_state(self, error):
        """Keep the last general error on the server, as Odoo's fetch does, and tell the
        administrators once when the mailbox has failed for too long, then when it works."""
        now = fields.Datetime.now()
        if error is None:
            if self.date_ticket_alert:
                self._ticket_notify_mailbox_state(recovered=True)
            vals = {"date": now}  # when the mailbox was last read, even when idle
            if self.error_date or self.error_message or self.date_ticket_alert:
                vals.update(error_date=False, error_message=False, date_ticket_alert=False)
            self.write(vals)
            return
        if not self.error_date:
            self.write(
                {"date": now, "error_date": now, "error_message": exception_to_unicode(error)}
            )
        elif self.error_date < now - MAIL_SERVER_DEACTIVATE_TIME:
            self.set_draft()
            self.env["ir.cron"]._notify_admin(
                f"Deactivating fetchmail {self.server_type} server {self.name} (too many failures)"
            )
        if not self.date_ticket_alert and self.error_date <= now - self._ticket_alert_delay():
            self._ticket_notify_mailbox_state(error=error)
            self.date_ticket_alert = now

    @api.model
    def _ticket_alert_delay(self):
        """How long a mailbox may fail before the administrators are told (a setting)."""
        minutes = (
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("mail_ticket.mailbox_alert_minutes", DEFAULT_ALERT_MINUTES)
        )
        return timedelta(minutes=max(int(minutes), 0))

    def _ticket_notify_mailbox_state(self, error=None, recovered=False):
        """Tell the administrators in their Discuss channel, where Odoo reports mailboxes it
        deactivates, and the Helpdesk managers in their inbox: they miss the tickets."""
        self.ensure_one()
        if recovered:
            subject = self.env._("Mailbox %(name)s works again", name=self.name)
            body = self.env._(
                "Mail server %(name)s works again since %(date)s: its new mails become "
                "tickets again.",
                name=self.name,
                date=tools.format_datetime(self.env, fields.Datetime.now()),
            )
        else:
            subject = self.env._("Mailbox %(name)s fails", name=self.name)
            body = self.env._(
                "Mail server %(name)s has failed since %(date)s: %(error)s. No mail of this "
                "mailbox becomes a ticket until an administrator corrects its settings or "
                "the mail server is reachable again; its fetch history shows every attempt.",
                name=self.name,
                date=tools.format_datetime(self.env, self.error_date),
                error=exception_to_unicode(error) if error else self.error_message,
            )
        self.env["ir.cron"]._notify_admin(body)  # logged there too
        managers = self.env.ref("mail_ticket.mail_ticket_group_manager").all_user_ids.filtered(
            lambda user: not user.share and not user._is_system()
        )
        if managers:
            self.env["mail.thread"].sudo().message_notify(
                subject=subject, body=body, partner_ids=managers.partner_id.ids
            )
