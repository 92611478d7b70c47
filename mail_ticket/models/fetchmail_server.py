import logging
import time
from collections import Counter
from imaplib import IMAP4

from odoo import api, fields, models, tools
from odoo.exceptions import UserError, ValidationError
from odoo.fields import Command
from odoo.tools import exception_to_unicode

from odoo.addons.mail.models.fetchmail import MAIL_SERVER_DEACTIVATE_TIME, MAIL_SERVER_DOMAIN

from .imap_mailbox import ImapMailbox
from .mail_ticket import TICKET_PRIORITIES

_logger = logging.getLogger(__name__)

FETCH_BATCH_SIZE = 50  # mails per UID FETCH round trip
FETCH_BATCH_BYTES = 32 * 1024 * 1024  # and at most that much mail in memory
MANUAL_FETCH_LIMIT = 500  # "Fetch Now" leaves the rest to the cron


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
        string="Unknown Sender Naming a Ticket",
        default="note",
        required=True,
        help="A mail whose subject names a ticket but whose sender is neither the "
        "customer, a follower, an internal user nor from the customer's company: keep it "
        "on the ticket as an internal note marked unverified, or open a new ticket.",
    )
    ticket_follow_known_contacts = fields.Boolean(
        string="Copied Contacts Follow",
        help="People in To/Cc of a verified mail who are already contacts follow its "
        "ticket and receive the answers. Otherwise they are only suggested to the agents "
        "as recipients; unknown addresses never get a contact.",
    )
    ticket_ack_hourly_limit = fields.Integer(
        string="Acknowledgements per Hour",
        default=100,
        help="At most that many acknowledgements leave this mailbox in an hour, whoever "
        "the senders are: a flood of mail cannot make the helpdesk mail back a crowd.",
    )
    ticket_assignment = fields.Selection(
        [("none", "Nobody"), ("user", "One agent"), ("team", "A team, in turn")],
        string="Assign New Tickets",
        compute="_compute_ticket_assignment",
        store=True,
        readonly=False,
        help="Who gets the tickets this mailbox opens. A team takes them in turn: the "
        "agent with the fewest open tickets; a customer's new ticket goes to the agent of "
        "their last open ticket when that agent is in the team.",
    )
    ticket_user_id = fields.Many2one(
        "res.users", string="Default Assignee", domain="[('share', '=', False)]"
    )
    ticket_team_user_ids = fields.Many2many(
        "res.users",
        "fetchmail_server_ticket_team_rel",
        "server_id",
        "user_id",
        string="Team",
        domain="[('share', '=', False)]",
    )
    ticket_priority = fields.Selection(
        TICKET_PRIORITIES, string="Default Priority", default="1", required=True
    )
    ticket_tag_ids = fields.Many2many("mail.ticket.tag", string="Default Tags")
    ticket_fetch_run_ids = fields.One2many(
        "mail.ticket.fetch.run", "server_id", string="Fetch History"
    )
    ticket_inbound_ids = fields.One2many("mail.ticket.inbound", "server_id", string="Fetched Mails")
    ticket_failed_count = fields.Integer(
        string="Failed Mails", compute="_compute_ticket_failed_count"
    )

    @api.depends("object_id")
    def _compute_is_ticket_server(self):
        for server in self:
            server.is_ticket_server = server.object_id.model == "mail.ticket"

    @api.depends("ticket_user_id")
    def _compute_ticket_assignment(self):
        for server in self:
            if server.ticket_assignment != "team":
                server.ticket_assignment = "user" if server.ticket_user_id else "none"

    @api.depends("user")
    def _compute_ticket_reply_to(self):
        for server in self:
            if not server.ticket_reply_to:
                server.ticket_reply_to = tools.email_normalize(server.user) or False

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

    @api.constrains("ticket_max_attempts", "ticket_max_size", "ticket_ack_hourly_limit")
    def _check_ticket_limits(self):
        if any(server.ticket_max_attempts < 1 or server.ticket_max_size < 1 for server in self):
            raise ValidationError(self.env._("Attempts and size limit must be at least 1."))
        if any(server.ticket_ack_hourly_limit < 0 for server in self):
            raise ValidationError(self.env._("The acknowledgements per hour cannot be negative."))

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
        servers = super().create(vals_list)
        self.env.registry.clear_cache()  # _ticket_default_reply_to_server_id
        return servers

    def write(self, vals):
        res = super().write(vals)
        # not on every fetch (it writes the date): only when the answer may change
        if vals.keys() & {"object_id", "ticket_reply_to", "user", "active"}:
            self.env.registry.clear_cache()
        return res

    def unlink(self):
        res = super().unlink()
        self.env.registry.clear_cache()
        return res

    # ------------------------------------------------------------
    # ACTIONS
    # ------------------------------------------------------------

    def button_confirm_login(self):
        res = super().button_confirm_login()
        for server in self._ticket_imap_servers():
            connection = server._connect__(allow_archived=True)
            try:
                ImapMailbox(connection, server.ticket_folder).select()
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
    # FETCH
    # ------------------------------------------------------------

    def _ticket_imap_servers(self):
        return self.filtered(
            lambda server: server.is_ticket_server and server._get_connection_type() == "imap"
        )

    @api.model
    def _ticket_default_reply_to_server(self):
        """The mailbox that answers for tickets entered by hand."""
        return self.browse(self._ticket_default_reply_to_server_id())

    @api.model
    @tools.ormcache()
    def _ticket_default_reply_to_server_id(self):
        return (
            self.sudo()
            .search(
                [("object_id.model", "=", "mail.ticket"), ("ticket_reply_to", "!=", False)],
                limit=1,
            )
            .id
        )

    def _ticket_default_values(self):
        """Values of the tickets this server creates (``custom_values`` of the gateway)."""
        self.ensure_one()
        values = {"priority": self.ticket_priority, "ack_pending": self.ticket_send_ack}
        if self.ticket_assignment == "user" and self.ticket_user_id:
            values["user_id"] = self.ticket_user_id.id
        if self.ticket_tag_ids:
            values["tag_ids"] = [Command.set(self.ticket_tag_ids.ids)]
        return values

    def _fetch_mail(self, batch_limit=50):
        """Ticket mailboxes on IMAP are read by UID, losslessly; others as Odoo does."""
        ticket_servers = self._ticket_imap_servers()
        exception = None
        if others := self - ticket_servers:
            exception = super(FetchmailServer, others)._fetch_mail(batch_limit=batch_limit)
        if ticket_servers:
            exception = ticket_servers._fetch_ticket_mail() or exception
        return exception

    def _fetch_ticket_mail(self):
        progress = (
            self.env["ir.cron.progress"].sudo().browse(self.env.context.get("ir_cron_progress_id"))
        )
        limit = None if progress else MANUAL_FETCH_LIMIT
        # what other mail servers left, plus the servers still to check
        remaining = (progress.remaining if progress else 0) + len(self)
        self.env["ir.cron"]._commit_progress(remaining=remaining)
        exception = None
        for server in self:
            remaining -= 1
            if not server.try_lock_for_update(allow_referencing=True).filtered_domain(
                MAIL_SERVER_DOMAIN
            ):
                _logger.info(
                    "Skip checking for new mails on mail server id %d (unavailable)", server.id
                )
                continue
            left, error = server._ticket_fetch(remaining, limit)
            remaining += left
            exception = error or exception
            # As Odoo's fetch does: commit the run's history and the server (releasing its
            # lock) before touching the cron progress, which the mail transactions updated
            # meanwhile; the progress write would otherwise fail to serialize.
            self.env.cr.commit()  # pylint: disable=invalid-commit
            if not self.env["ir.cron"]._commit_progress(remaining=remaining):
                break
        return exception

    def _ticket_fetch(self, remaining_others, limit):
        """Fetch one locked server; return (mails left for the next run, general error)."""
        self.ensure_one()
        started = time.monotonic()
        _logger.info(
            "Start checking for new emails on %s server %s, folder %s",
            self.server_type,
            self.name,
            self.ticket_folder,
        )
        counts = Counter()
        left, error = 0, None
        connection = message_cr = None
        try:
            connection = self._connect__()
            mailbox = ImapMailbox(connection, self.ticket_folder)
            mailbox.select()
            # mails are processed in their own transactions, the server stays locked
            message_cr = self.env.registry.cursor()
            server = self.with_env(self.env(cr=message_cr))
            left = server._ticket_fetch_mailbox(mailbox, counts, remaining_others, limit)
        except Exception as exc:  # kept on the server and in its fetch history
            error = exc
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
        self.env["mail.ticket.fetch.run"].sudo().create(
            {
                "server_id": self.id,
                "folder": self.ticket_folder,
                "duration": duration,
                "fetched_count": counts["fetched"],
                "created_count": counts["created"],
                "updated_count": counts["updated"],
                "ignored_count": counts["ignored"],
                "failed_count": counts["failed"],
                "retried_count": counts["retried"],
                "left_count": left,
                "error": error and exception_to_unicode(error),
            }
        )
        _logger.info(
            "Fetched %d mail(s) from %s server %s in %.2fs: %d created, %d updated, %d ignored, "
            "%d failed, %d retried, %d left for the next run",
            counts["fetched"],
            self.server_type,
            self.name,
            duration,
            counts["created"],
            counts["updated"],
            counts["ignored"],
            counts["failed"],
            counts["retried"],
            left,
        )
        self._ticket_record_connection_state(error)
        if counts["created"] and self.ticket_send_ack:
            self.env.ref("mail_ticket.ir_cron_mail_ticket_ack")._trigger()
        return left, error

    def _ticket_fetch_mailbox(self, mailbox, counts, remaining_others, limit):
        """Process the selected folder; return how many mails are left for the next run."""
        Inbound = self.env["mail.ticket.inbound"]
        Cron = self.env["ir.cron"]
        self._ticket_apply_mailbox_action(mailbox, self._ticket_pending_mailbox_action(mailbox))
        retries = Inbound.search(
            [
                ("server_id", "=", self.id),
                ("state", "=", "failed"),
                ("attempts", "<", self.ticket_max_attempts),
                ("raw_attachment_id", "!=", False),
            ],
            order="id",
        )
        last_uid = Inbound._last_uid(self, mailbox.folder, mailbox.uidvalidity)
        if not last_uid:
            self._ticket_check_uidvalidity(mailbox)
        uids = mailbox.search_after(last_uid)
        if limit is not None:
            uids = uids[:limit]
        todo = len(retries) + len(uids)
        time_left = Cron._commit_progress(remaining=remaining_others + todo)

        for inbound in retries:
            if time_left and inbound.try_lock_for_update():
                inbound._retry()
                counts["retried"] += 1
                self._ticket_count(counts, inbound)
                time_left = Cron._commit_progress(1)
            todo -= 1
        if not time_left:
            return todo

        sizes = mailbox.sizes(uids)
        max_bytes = self.ticket_max_size * 1024 * 1024
        for batch in self._ticket_batches(uids, sizes, max_bytes):
            raws = mailbox.fetch([uid for uid in batch if sizes.get(uid, 0) <= max_bytes])
            handled = Inbound
            for uid in batch:
                todo -= 1
                too_big = sizes.get(uid, 0) > max_bytes
                if uid not in raws and not too_big:
                    continue  # expunged by another client meanwhile
                inbound = Inbound._ingest(self, mailbox, uid, raws.pop(uid, None), sizes[uid])
                counts["fetched"] += 1
                self._ticket_count(counts, inbound)
                if inbound.state != "failed":
                    handled |= inbound
                time_left = Cron._commit_progress(1)
                if not time_left:
                    break
            self._ticket_apply_mailbox_action(mailbox, handled)
            if not time_left:
                break
        return todo

    @api.model
    def _ticket_count(self, counts, inbound):
        if inbound.state == "done":
            counts["created" if inbound.is_new_ticket else "updated"] += 1
        else:
            counts[inbound.state] += 1

    @api.model
    def _ticket_batches(self, uids, sizes, max_bytes):
        """Split UIDs into FETCH batches bounded in count and bytes."""
        batch, batch_bytes = [], 0
        for uid in uids:
            size = sizes.get(uid, 0) if sizes.get(uid, 0) <= max_bytes else 0
            if batch and (len(batch) >= FETCH_BATCH_SIZE or batch_bytes + size > FETCH_BATCH_BYTES):
                yield batch
                batch, batch_bytes = [], 0
            batch.append(uid)
            batch_bytes += size
        if batch:
            yield batch

    def _ticket_check_uidvalidity(self, mailbox):
        """Warn when a folder read before comes back with another UIDVALIDITY."""
        if self.env["mail.ticket.inbound"].search_count(
            [
                ("server_id", "=", self.id),
                ("folder", "=", mailbox.folder),
                ("uidvalidity", "!=", mailbox.uidvalidity),
            ],
            limit=1,
        ):
            _logger.warning(
                "Folder %s of mail server %s was rebuilt (new UIDVALIDITY %s): reading it again "
                "from its first mail; mails already processed are recognised by Message-ID",
                mailbox.folder,
                self.name,
                mailbox.uidvalidity,
            )

    def _ticket_pending_mailbox_action(self, mailbox):
        """Processed mails whose after-processing action an interrupted run did not apply."""
        return self.env["mail.ticket.inbound"].search(
            [
                ("server_id", "=", self.id),
                ("folder", "=", mailbox.folder),
                ("uidvalidity", "=", mailbox.uidvalidity),
                ("state", "!=", "failed"),
                ("mailbox_done", "=", False),
            ]
        )

    def _ticket_apply_mailbox_action(self, mailbox, inbounds):
        if not inbounds:
            return
        uids = inbounds.mapped("uid")
        if self.ticket_processed_action == "move":
            mailbox.move(uids, self.ticket_processed_folder)
        elif self.ticket_processed_action == "delete":
            mailbox.delete(uids)
        else:
            mailbox.mark_seen(uids)
        inbounds.write({"mailbox_done": True})
        self.env["ir.cron"]._commit_progress()

    def _ticket_record_connection_state(self, error):
        """Keep the last general error on the server, as Odoo's fetch does."""
        now = fields.Datetime.now()
        if error is None:
            self.write({"date": now, "error_date": False, "error_message": False})
        elif not self.error_date:
            self.write(
                {"date": now, "error_date": now, "error_message": exception_to_unicode(error)}
            )
        elif self.error_date < now - MAIL_SERVER_DEACTIVATE_TIME:
            self.set_draft()
            self.env["ir.cron"]._notify_admin(
                f"Deactivating fetchmail {self.server_type} server {self.name} (too many failures)"
            )
