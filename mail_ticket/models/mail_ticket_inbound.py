import base64
import logging
from datetime import UTC, timedelta
from email.parser import BytesHeaderParser
from email.policy import SMTP
from email.utils import parsedate_to_datetime

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.fields import Domain

from .imap_mailbox import ImapMailbox

_logger = logging.getLogger(__name__)


class BigInteger(fields.Integer):
    """An integer stored as ``bigint``: IMAP UIDs and UIDVALIDITY are unsigned 32-bit."""

    _column_type = ("int8", "int8")


class MailTicketInbound(models.Model):
    """One mail fetched from a ticket mailbox, and what became of it.

    The record is written in the transaction that processes the mail, so a mail is
    recorded if and only if its processing was committed: the highest recorded UID
    of a folder is where the next fetch resumes.

    The records are evidence: nobody may write them (no write, create or unlink access
    right, not even for admins). The fetch writes them as superuser, and *Retry* and
    *Download* check the manager group and then act as superuser.
    """

    _name = "mail.ticket.inbound"
    _description = "Fetched Mail"
    _order = "id desc"
    _rec_name = "subject"

    server_id = fields.Many2one(
        "fetchmail.server", string="Mail Server", required=True, ondelete="cascade"
    )
    folder = fields.Char(required=True)
    uidvalidity = BigInteger(string="UIDVALIDITY", required=True)
    uid = BigInteger(string="UID", required=True)
    message_id = fields.Char(string="Message-ID", index="btree_not_null")
    email_from = fields.Char(string="From")
    subject = fields.Char()
    date = fields.Datetime(help="Date the mail was sent.")
    size = fields.Integer(help="Size of the mail in bytes.")
    state = fields.Selection(
        [("done", "Done"), ("ignored", "Ignored"), ("failed", "Failed")],
        required=True,
        index=True,
    )
    ticket_id = fields.Many2one("mail.ticket", ondelete="set null", index="btree_not_null")
    is_new_ticket = fields.Boolean(string="Created a Ticket", readonly=True)
    error = fields.Text(help="Why the mail failed or was ignored.")
    attempts = fields.Integer(help="How many times processing this mail was tried.")
    # an attachment of this field only: readable through this record alone
    raw_source = fields.Binary(
        attachment=True,
        help="The mail as it was fetched, kept while it could not be processed.",
    )
    date_raw_source_removed = fields.Datetime(
        string="Raw Source Removed On",
        help="The mail gave up and its raw source was removed after the retention period "
        "set in the Helpdesk settings; the mail may still be in the mailbox.",
    )
    mailbox_done = fields.Boolean(
        string="Handled in Mailbox",
        help="The server's after-processing action (mark read, move, delete) was applied.",
    )
    date_processed = fields.Datetime(string="Processed On")
    max_attempts = fields.Integer(related="server_id.ticket_max_attempts", string="Max Attempts")
    company_id = fields.Many2one(
        related="server_id.ticket_company_id", store=True, index=True, string="Company"
    )

    _mail_uniq = models.Constraint(
        "UNIQUE(server_id, folder, uidvalidity, uid)",
        "A mail of a mailbox folder is recorded once.",
    )
    _retry_idx = models.Index("(server_id, attempts) WHERE state = 'failed'")

    # ------------------------------------------------------------
    # ACTIONS
    # ------------------------------------------------------------

    def action_retry(self):
        """Process failed mails again, now, whatever their attempts."""
        self._check_manager_access()
        failed = self.sudo().filtered(lambda inbound: inbound.state == "failed")
        if not failed:
            raise UserError(self.env._("Only failed mails can be retried."))
        for inbound in failed:
            if not inbound.try_lock_for_update():
                raise UserError(
                    self.env._("Mail %(subject)s is being processed.", subject=inbound.subject)
                )
            inbound._retry(manual=True)
        return True

    def action_open_raw_source(self):
        self.ensure_one()
        self._check_manager_access()
        if not self.sudo().with_context(bin_size=True).raw_source:
            raise UserError(self.env._("The raw source of this mail was not kept."))
        # /web/content checks the read access to this record, then streams its field
        filename = f"mail-{self.uidvalidity}-{self.uid}.eml"
        return {
            "type": "ir.actions.act_url",
            "url": f"/web/content/{self._name}/{self.id}/raw_source?download=true"
            f"&filename={filename}",
            "target": "new",
        }

    def action_open_ticket(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "mail.ticket",
            "res_id": self.ticket_id.id,
            "view_mode": "form",
        }

    def _check_manager_access(self):
        """Retry and Download act as superuser: for managers, on the mails they may read."""
        if not self.env.user.has_group("mail_ticket.mail_ticket_group_manager"):
            raise AccessError(
                self.env._("Only helpdesk managers may retry fetched mails or download them.")
            )
        self.check_access("read")

    # ------------------------------------------------------------
    # PROCESSING
    # ------------------------------------------------------------

    @api.model
    def _last_uid(self, server, folder, uidvalidity):
        """Highest UID recorded for that folder, where fetching resumes."""
        self.env.cr.execute(
            "SELECT MAX(uid) FROM mail_ticket_inbound"
            " WHERE server_id = %s AND folder = %s AND uidvalidity = %s",
            (server.id, folder, uidvalidity),
        )
        return self.env.cr.fetchone()[0] or 0

    @api.model
    def _headers_vals(self, raw):
        """Message-ID, From, Subject and Date of a raw mail, for the record; never fails
        (a value that cannot be read is left empty: the gateway decides on the mail)."""
        try:
            headers = BytesHeaderParser(policy=SMTP).parsebytes(raw)
        except Exception:  # not even a header block: the gateway will say why
            return {}

        def header(name):
            try:
                value = str(headers.get(name) or "")
            except Exception:  # header parser errors (ValueError, AttributeError, ...)
                return ""
            # the record must always be storable: PostgreSQL text refuses NUL
            return value.replace("\x00", "").strip()

        try:
            date = parsedate_to_datetime(header("Date"))
            if date.tzinfo:
                date = date.astimezone(UTC).replace(tzinfo=None)
            if date.year < 1900:  # "Apr 101": no date Odoo could store
                date = False
        except Exception:
            date = False
        return {
            "message_id": header("Message-ID") or False,
            "email_from": header("From")[:512] or False,
            "subject": header("Subject")[:512] or False,
            "date": date,
        }

    @api.model
    def _ingest(self, server, mailbox, uid, raw, size):
        """Record and process one fetched mail, in the current transaction."""
        vals = {
            "server_id": server.id,
            "folder": mailbox.folder,
            "uidvalidity": mailbox.uidvalidity,
            "uid": uid,
            "size": size,
            "attempts": 0,
        }
        if raw is None:
            limit = server.ticket_max_size
            inbound = self.sudo().create(
                {
                    **vals,
                    "state": "failed",
                    "error": self.env._(
                        "The mail is %(size).1f MB, over the %(limit)s MB limit of this "
                        "mail server: it was not processed and is left in the mailbox.",
                        size=size / 1024 / 1024,
                        limit=limit,
                    ),
                }
            )
            _logger.warning(
                "Mail UID %s of %s on server %s is %d bytes, over its %s MB limit: left in the "
                "mailbox",
                uid,
                mailbox.folder,
                server.name,
                size,
                limit,
            )
            return inbound
        try:
            with self.env.cr.savepoint():
                inbound = self.sudo().create({**vals, **self._headers_vals(raw), "state": "done"})
                inbound._process(raw)
                return inbound
        except Exception as exc:  # whatever fails stays with this mail: the run goes on
            inbound = self.sudo().create({**vals, "state": "failed"})
            inbound._process_failed(raw, exc)
            return inbound

    def _process(self, raw):
        """Run the mail through the gateway in a savepoint and record the outcome.

        Never raises: any error, whatever its type (the gateway's, or recording the
        outcome), rolls the mail's work back and is recorded on the mail as failed,
        with its raw source.
        """
        self.ensure_one()
        try:
            with self.env.cr.savepoint():
                self._process_gateway(raw)
        except Exception as exc:  # any failure is recorded with the mail, never lost
            self._process_failed(raw, exc)

    def _process_gateway(self, raw):
        server = self.server_id
        thread = self.env["mail.thread"].with_context(default_fetchmail_server_id=server.id)
        thread_id = thread.message_process(
            server.object_id.model,
            raw,
            custom_values=server._ticket_default_values(),
            save_original=server.original,
            strip_attachments=not server.attach,
        )
        vals = {"attempts": self.attempts + 1, "date_processed": fields.Datetime.now()}
        if thread_id:
            vals.update(self._outcome_vals(thread_id), state="done", error=False)
        else:
            vals.update(state="ignored", error=self._ignored_reason())
        vals["raw_source"] = False  # no-op unless an earlier attempt kept it
        self.sudo().write(vals)

    def _process_failed(self, raw, error):
        """Record that processing the mail failed with ``error``; keep its raw source."""
        server = self.server_id
        # PostgreSQL text takes neither NUL nor lone surrogates (undecodable bytes)
        message = f"{type(error).__name__}: {error}".replace("\x00", "\\x00")
        vals = {
            "state": "failed",
            "error": message.encode("utf-8", "backslashreplace").decode("utf-8"),
            "attempts": self.attempts + 1,
            "date_processed": fields.Datetime.now(),
        }
        if not self._stored_raw():
            self._store_raw(raw)
        _logger.warning(
            "Failed to process mail %s (UID %s) from %s on server %s, attempt %d/%d: %s",
            self.message_id,
            self.uid,
            self.email_from,
            server.name,
            vals["attempts"],
            server.ticket_max_attempts,
            vals["error"],
            exc_info=error,
        )
        self.sudo().write(vals)

    def _outcome_vals(self, thread_id):
        """The ticket the mail created or updated."""
        message = self.env["mail.message"]
        if self.message_id:
            message = message.search([("message_id", "=", self.message_id)], limit=1)
        if message and message.model != "mail.ticket":
            return {"ticket_id": False, "is_new_ticket": False}
        creation_subtype = self.env["ir.model.data"]._xmlid_to_res_id("mail_ticket.mt_ticket_new")
        return {
            "ticket_id": message.res_id or thread_id,
            "is_new_ticket": message.subtype_id.id == creation_subtype,
        }

    def _ignored_reason(self):
        if self.message_id and self.env["mail.message"].search_count(
            [("message_id", "=", self.message_id)], limit=1
        ):
            return self.env._("Already processed: a message with this Message-ID exists.")
        return self.env._(
            "Not routed: a bounce, an auto-reply loop or a mail to the catchall alone "
            "(the server log tells which)."
        )

    def _store_raw(self, raw):
        """Keep the mail as fetched (bytes), as the attachment of field ``raw_source``."""
        self.ensure_one()
        self.sudo().write({"raw_source": base64.b64encode(raw), "date_raw_source_removed": False})

    def _stored_raw(self):
        """The kept raw source (bytes), or None."""
        self.ensure_one()
        raw_source = self.sudo().with_context(bin_size=False).raw_source
        return base64.b64decode(raw_source) if raw_source else None

    def _retry(self, manual=False):
        """Process a failed mail again from its raw source (or from the mailbox)."""
        self.ensure_one()
        raw = self._stored_raw()
        if not raw:
            raw = self._fetch_from_mailbox()
        elif manual:
            self.sudo().attempts = 0
        self._process(raw)
        _logger.info(
            "Retried mail %s (UID %s) of server %s: %s",
            self.message_id,
            self.uid,
            self.server_id.name,
            self.state,
        )

    def _fetch_from_mailbox(self):
        """Download a mail left in the mailbox (over the size limit at fetch time, or
        whose raw source was removed)."""
        server = self.sudo().server_id
        connection = server._connect__()
        try:
            mailbox = ImapMailbox(connection, self.folder)
            if mailbox.select() != self.uidvalidity:
                raise UserError(
                    self.env._("The mailbox folder was rebuilt: this mail is no longer there.")
                )
            size = mailbox.sizes([self.uid]).get(self.uid)
            if size is None:
                raise UserError(self.env._("This mail is no longer in the mailbox."))
            if size > server.ticket_max_size * 1024 * 1024:
                raise UserError(
                    self.env._(
                        "The mail is still over the %(limit)s MB limit of the mail server: "
                        "raise the limit first.",
                        limit=server.ticket_max_size,
                    )
                )
            raw = mailbox.fetch([self.uid]).get(self.uid)
        finally:
            connection.disconnect()
        self.sudo().write({"attempts": 0, **self._headers_vals(raw)})
        return raw

    # ------------------------------------------------------------
    # RETENTION
    # ------------------------------------------------------------

    @api.model
    def _cron_purge_raw_sources(self, batch_size=100):
        """Remove the raw sources of the mails that gave up, after the retention period.

        The records stay: they are the evidence of what was fetched.
        """
        domain = self._purge_raw_source_domain()
        if domain.is_false():
            return
        inbounds = self.search(domain, order="id", limit=batch_size)
        if inbounds:
            inbounds._purge_raw_source()
        remaining = self.search_count(domain) if len(inbounds) == batch_size else 0
        self.env["ir.cron"]._commit_progress(len(inbounds), remaining=remaining)

    @api.model
    def _purge_raw_source_domain(self):
        days = int(
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("mail_ticket.raw_source_retention_days", 30)
        )
        if days <= 0:  # kept for ever
            return Domain.FALSE
        servers = self.env["fetchmail.server"].sudo().with_context(active_test=False).search([])
        gave_up = Domain.OR(
            Domain("server_id", "=", server.id)
            & Domain("attempts", ">=", server.ticket_max_attempts)
            for server in servers
        )
        return gave_up & Domain(
            [
                ("state", "=", "failed"),
                ("raw_source", "!=", False),
                ("date_processed", "<", fields.Datetime.now() - timedelta(days=days)),
            ]
        )

    def _purge_raw_source(self):
        self.sudo().write({"raw_source": False, "date_raw_source_removed": fields.Datetime.now()})
        _logger.info("Removed the raw source of %d mail(s) that gave up", len(self))
