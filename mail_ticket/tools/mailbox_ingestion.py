"""Ingestion of one ticket mailbox folder: everything a fetch does between login and logout.

:class:`MailboxIngestion` owns the folder-level work (the idle check, the after-processing
actions an interrupted run left pending, the retries of failed mails, the UIDVALIDITY
check, the UID search, the size rule, FETCH batches bounded in count and bytes, the
after-processing action) and the processing of each batch (recorded in
``mail.ticket.inbound`` in the transaction that processes it: its plain customer mails
through ``mail.ticket._message_process_batch`` together, the others, or all of them when
the batch fails, through the mail gateway one by one, each in a savepoint, failures kept
with their raw source). ``fetchmail.server`` only locks the
server, connects, runs :meth:`MailboxIngestion.run` and records the outcome, as Odoo's
own fetch loop does; the model ``mail.ticket.inbound`` keeps the records, their actions
(its *Retry* goes through :meth:`MailboxIngestion.retry`) and their retention.

A run commits through the cron's progress API (``ir.cron._commit_progress``): after each
FETCH batch is processed, and after the mailbox action applied to it, in this order, so
that a mail is only marked read, moved or deleted once its processing is committed.
"""

import base64
import logging
from dataclasses import dataclass
from datetime import timezone
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import SMTP
from email.utils import parsedate_to_datetime

from odoo import fields as odoo_fields
from odoo import tools
from odoo.exceptions import UserError
from odoo.tools import SQL, exception_to_unicode

from .imap_mailbox import ImapMailbox

_logger = logging.getLogger(__name__)

FETCH_BATCH_SIZE = 50  # mails per UID FETCH round trip
FETCH_BATCH_BYTES = 32 * 1024 * 1024  # and at most that much mail in memory


def headers_vals(mail):
    """Message-ID, From, Subject and Date of a mail (raw bytes, or the message the
    gateway parsed), for its record; never fails (a value that cannot be read is left
    empty: the gateway decides on the mail)."""
    if isinstance(mail, Message):
        headers = mail
    else:
        try:
            headers = BytesHeaderParser(policy=SMTP).parsebytes(mail)
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
            date = date.astimezone(timezone.utc).replace(tzinfo=None)
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


def fetch_batches(uids, sizes, max_bytes, alone=()):
    """Split UIDs into FETCH batches bounded in count and bytes; a mail over
    ``max_bytes`` is not downloaded, so it weighs nothing, and one of unknown size weighs
    the limit (no more of it is read). The UIDs of ``alone`` get a batch each."""
    batch, batch_bytes = [], 0
    for uid in uids:
        if uid in alone:
            if batch:
                yield batch
                batch, batch_bytes = [], 0
            yield [uid]
            continue
        size = sizes.get(uid, max_bytes)
        size = size if size <= max_bytes else 0
        if batch and (len(batch) >= FETCH_BATCH_SIZE or batch_bytes + size > FETCH_BATCH_BYTES):
            yield batch
            batch, batch_bytes = [], 0
        batch.append(uid)
        batch_bytes += size
    if batch:
        yield batch


@dataclass
class FetchedMail:
    """One mail of a FETCH batch: its source, or why there is none (``problem``:
    ``"too_big"`` over the size limit, ``"gone"`` no longer in the mailbox, ``"empty"``
    the server sent no content); ``size`` in bytes, None when unknown."""

    uid: int
    raw: bytes | None
    size: int | None
    problem: str | None = None


@dataclass
class IngestionResult:
    """What one run did to a mailbox folder (the figures of its fetch history row)."""

    fetched: int = 0  # new mails read from the mailbox
    created: int = 0  # mails (new or retried) that opened a ticket
    updated: int = 0  # ... that became a comment of a ticket
    ignored: int = 0  # ... that the gateway did not route (duplicate, bounce, loop)
    failed: int = 0  # ... that failed, or are over the size limit
    retried: int = 0  # failed mails processed again
    left: int = 0  # mails (new or to retry) left for the next run
    idle: bool = False  # STATUS told that nothing changed: no SEARCH, no FETCH
    error: Exception | None = None  # what stopped the run (connection, login, protocol)

    def count(self, inbound):
        """Count the outcome of one processed mail."""
        if inbound.state == "done":
            if inbound.is_new_ticket:
                self.created += 1
            else:
                self.updated += 1
        elif inbound.state == "ignored":
            self.ignored += 1
        else:
            self.failed += 1

    @property
    def is_empty(self):
        """Nothing read, retried or left, no error: an idle poll's result."""
        return not (self.fetched or self.retried or self.left or self.error)


class MailboxIngestion:
    """Ingest the mails of one folder of a ticket mailbox.

    ``server`` is the ``fetchmail.server`` in the environment the mails are processed in
    (its own cursor during a fetch: the server's row stays locked in the fetch's cursor);
    ``mailbox`` an :class:`ImapMailbox` on an authenticated connection, or None for a
    *Retry* that may not need the mailbox.
    """

    def __init__(self, server, mailbox=None):
        server.ensure_one()
        self.server = server
        self.env = server.env
        self.mailbox = mailbox
        self.folder = mailbox.folder if mailbox else server.ticket_folder or "INBOX"
        self.Inbound = self.env["mail.ticket.inbound"].sudo()
        self.Attempt = self.env["mail.ticket.inbound.attempt"].sudo()
        self.max_bytes = server.ticket_max_size * 1024 * 1024
        # what the run did so far, also when it stops on an error (connection lost)
        self.result = IngestionResult()

    # ------------------------------------------------------------
    # FOLDER
    # ------------------------------------------------------------

    def run(self, limit=None):
        """Process what is new in the folder, and what is pending: return the
        :class:`IngestionResult` (``self.result``, which keeps what was done when a
        connection or protocol error stops the run).

        :param limit: at most that many new mails (None: as many as the cron's time
            allows, see ``ir.cron._commit_progress``)
        """
        result = self.result
        uidvalidity, uidnext = self.mailbox.status()
        last_uid, retry_due, action_due = self._folder_state(uidvalidity)
        if uidnext - 1 <= last_uid and not retry_due and not action_due:
            result.idle = True
            return result

        if self.mailbox.select() != uidvalidity:  # rebuilt between STATUS and SELECT
            last_uid, retry_due, action_due = self._folder_state(self.mailbox.uidvalidity)
        if action_due:
            self._apply_mailbox_action(self._pending_mailbox_action())
        if not last_uid:
            self._check_uidvalidity()
        uids = self.mailbox.search_after(last_uid)
        # mails an interrupted run was processing (its process was killed): alone now
        interrupted = self.Attempt._interrupted(self.server, self.folder, self.mailbox.uidvalidity)
        self._forget_gone(interrupted, uids)
        if limit is not None:
            result.left += max(len(uids) - limit, 0)
            uids = uids[:limit]
        time_left = self._progress()
        if retry_due:
            time_left = self._retry_failed(result, time_left)
        if not time_left:
            result.left += len(uids)
            return result

        sizes = self.mailbox.sizes(uids)  # the size rule, applied once, here
        batches = list(fetch_batches(uids, sizes, self.max_bytes, alone=interrupted))
        for index, batch in enumerate(batches):
            if not time_left:
                result.left += sum(len(rest) for rest in batches[index:])
                break
            fetched = self._fetch(batch, sizes)
            attempts = self._begin(fetched, interrupted)
            inbounds = self._process_batch(fetched, attempts, interrupted)
            result.fetched += len(inbounds)
            for inbound in inbounds:
                result.count(inbound)
            time_left = self._progress(len(inbounds))  # commit before the mailbox action
            self._apply_mailbox_action(inbounds.filtered(lambda i: i.state != "failed"))
        return result

    def _folder_state(self, uidvalidity):
        """``(last_uid, retry_due, action_due)`` of the folder, in one indexed query: the
        highest UID recorded for this UIDVALIDITY (where reading resumes), whether a failed
        mail waits for another attempt, whether a processed mail waits for its mailbox
        action."""
        self.env.cr.execute(
            SQL(
                """
                SELECT (SELECT MAX(uid) FROM mail_ticket_inbound
                         WHERE server_id = %(server)s AND folder = %(folder)s
                           AND uidvalidity = %(uidvalidity)s),
                       EXISTS(SELECT FROM mail_ticket_inbound i
                               WHERE i.server_id = %(server)s AND i.state = 'failed'
                                 AND i.attempts < %(attempts)s
                                 AND EXISTS(SELECT FROM ir_attachment a
                                             WHERE a.res_model = 'mail.ticket.inbound'
                                               AND a.res_field = 'raw_source'
                                               AND a.res_id = i.id)),
                       EXISTS(SELECT FROM mail_ticket_inbound
                               WHERE server_id = %(server)s AND folder = %(folder)s
                                 AND uidvalidity = %(uidvalidity)s
                                 AND state != 'failed' AND mailbox_done IS NOT TRUE)
                """,
                server=self.server.id,
                folder=self.folder,
                uidvalidity=uidvalidity,
                attempts=self.server.ticket_max_attempts,
            )
        )
        last_uid, retry_due, action_due = self.env.cr.fetchone()
        return last_uid or 0, retry_due, action_due

    def _progress(self, processed=0):
        """Commit, count ``processed`` mails in the cron's progress; return the time left."""
        return self.env["ir.cron"]._commit_progress(processed)

    def _retry_failed(self, result, time_left):
        """Process again the failed mails that have attempts left, oldest first."""
        retries = self.Inbound.search(
            [
                ("server_id", "=", self.server.id),
                ("state", "=", "failed"),
                ("attempts", "<", self.server.ticket_max_attempts),
                ("raw_source", "!=", False),
            ],
            order="id",
        )
        for index, inbound in enumerate(retries):
            if not time_left:
                result.left += len(retries) - index
                break
            if not inbound.try_lock_for_update():  # not while a manager retries it
                continue
            # counted, and committed, before: a retry that kills its process used it up
            inbound.attempts += 1
            self._progress()
            inbound.invalidate_recordset(["state"])
            if not inbound.try_lock_for_update() or inbound.state != "failed":
                continue  # a manager retried it meanwhile
            self.retry(inbound)
            result.retried += 1
            result.count(inbound)
            time_left = self._progress(1)
        return time_left

    def _check_uidvalidity(self):
        """Warn when a folder read before comes back with another UIDVALIDITY."""
        if self.Inbound.search_count(
            [
                ("server_id", "=", self.server.id),
                ("folder", "=", self.folder),
                ("uidvalidity", "!=", self.mailbox.uidvalidity),
            ],
            limit=1,
        ):
            _logger.warning(
                "Folder %s of mail server %s was rebuilt (new UIDVALIDITY %s): reading it again "
                "from its first mail; mails already processed are recognised by Message-ID",
                self.folder,
                self.server.name,
                self.mailbox.uidvalidity,
            )

    def _pending_mailbox_action(self):
        """Processed mails whose after-processing action an interrupted run did not apply."""
        return self.Inbound.search(
            [
                ("server_id", "=", self.server.id),
                ("folder", "=", self.folder),
                ("uidvalidity", "=", self.mailbox.uidvalidity),
                ("state", "!=", "failed"),
                ("mailbox_done", "=", False),
            ]
        )

    def _apply_mailbox_action(self, inbounds):
        """Mark read, move or delete processed mails in the mailbox.

        The mails stay processed whatever happens here: when the mailbox refuses, the
        error is noted on them, ``mailbox_done`` stays unset so that the next run applies
        the action again, and this run goes on.
        """
        if not inbounds:
            return
        server = self.server
        uids = inbounds.mapped("uid")
        try:
            if server.ticket_processed_action == "move":
                self.mailbox.move(uids, server.ticket_processed_folder)
            elif server.ticket_processed_action == "delete":
                self.mailbox.delete(uids)
            else:
                self.mailbox.mark_seen(uids)
        except Exception as exc:  # noted on the mails, applied again by the next run
            _logger.warning(
                "After-processing action %s failed for %d mail(s) of %s on server %s",
                server.ticket_processed_action,
                len(uids),
                self.folder,
                server.name,
                exc_info=True,
            )
            failure = self.env._(
                "The mail is processed, but the mailbox action after processing failed "
                "(applied again on the next run): %(error)s",
                error=exception_to_unicode(exc),
            )
            self._note_mailbox_failure(inbounds, failure)
        else:
            inbounds.write({"mailbox_done": True})
            self._note_mailbox_failure(
                inbounds.filtered(lambda i: i.error and (i.state == "done" or "\n" in i.error)),
                False,
            )
        self._progress()

    def _note_mailbox_failure(self, inbounds, failure):
        """Put ``failure`` (False: nothing) in the error of processed mails; an ignored
        mail keeps the reason it was ignored for (its first line) above it."""
        reasons = inbounds.grouped(
            lambda i: i.state == "ignored" and (i.error or "").split("\n", 1)[0]
        )
        for reason, group in reasons.items():
            note = "\n".join(filter(None, (reason, failure)))
            group.write({"error": note or False})

    # ------------------------------------------------------------
    # MAILS
    # ------------------------------------------------------------

    def _fetch(self, uids, sizes):
        """Read the mails ``uids`` of one batch: a :class:`FetchedMail` per UID, in order.

        A mail whose size the server did not tell is read up to the size limit only; one
        the FETCH returned nothing for is looked up again (another client may have
        expunged it meanwhile) and read alone if it is still there."""
        limit = self.max_bytes
        known = [uid for uid in uids if uid in sizes and sizes[uid] <= limit]
        unknown = [uid for uid in uids if uid not in sizes]
        raws = self.mailbox.fetch(known)
        if unknown:
            raws.update(self.mailbox.fetch(unknown, max_bytes=limit))
        missing = [uid for uid in known + unknown if uid not in raws]
        present = set(self.mailbox.existing(missing)) if missing else set()
        for uid in sorted(present):
            raws.update(self.mailbox.fetch([uid], max_bytes=limit))
        mails = []
        for uid in uids:
            raw, size = raws.get(uid), sizes.get(uid)
            if size is not None and size > limit:
                mails.append(FetchedMail(uid, None, size, "too_big"))
            elif raw is None:
                mails.append(FetchedMail(uid, None, size, "empty" if uid in present else "gone"))
            elif len(raw) > limit:  # read up to the limit: over it
                mails.append(FetchedMail(uid, None, None, "too_big"))
            else:
                mails.append(FetchedMail(uid, raw, size or len(raw)))
        return mails

    def _begin(self, fetched, interrupted):
        """Count, and commit, an attempt of each mail of the batch about to be processed
        (``mail.ticket.inbound.attempt``); return ``{uid: attempts}``. A mail whose
        processing was interrupted as many times as the mailbox allows attempts gets none:
        it is not processed again."""
        max_attempts = self.server.ticket_max_attempts
        attempts = self.Attempt._begin(
            self.server,
            self.folder,
            self.mailbox.uidvalidity,
            [
                mail.uid
                for mail in fetched
                if mail.raw is not None and interrupted.get(mail.uid, 0) < max_attempts
            ],
        )
        self._progress()
        return attempts

    def _process_batch(self, fetched, attempts=None, interrupted=None):
        """Record and process the mails of one FETCH batch, in the current transaction,
        and forget their attempts with their outcome.

        The plain customer mails of the batch go through the gateway together
        (``mail.ticket._message_process_batch``), in one savepoint; the others, and all of
        them when anything in the batch fails, mail by mail in their own savepoints. A
        mail without an attempt (see :meth:`_begin`) whose processing was interrupted
        before is recorded failed with its source, and not processed.

        :param fetched: :class:`FetchedMail` of the batch, oldest first
        :param attempts: ``{uid: attempts}`` counted by :meth:`_begin` (default: one each)
        :param interrupted: ``{uid: attempts}`` of the mails an interrupted run left
        :return: the ``mail.ticket.inbound`` records, one per mail, in that order
        """
        interrupted = interrupted or {}
        if attempts is None:
            attempts = {mail.uid: 1 for mail in fetched if mail.raw is not None}
        todo = [mail for mail in fetched if mail.raw is not None and mail.uid in attempts]
        together = self._process_together(todo, attempts)
        inbounds = self.Inbound
        for mail in fetched:
            if mail.uid in together:
                inbounds |= together[mail.uid]
            elif mail.problem:
                inbounds |= self._record_unread(mail)
            elif mail.uid not in attempts:
                inbounds |= self._record_interrupted(mail, interrupted[mail.uid])
            else:
                inbounds |= self._ingest(mail.uid, mail.raw, mail.size, attempts[mail.uid])
        self.Attempt._end(
            self.server, self.folder, self.mailbox.uidvalidity, [mail.uid for mail in fetched]
        )
        return inbounds

    def _forget_gone(self, interrupted, uids):
        """Record the interrupted mails that are no longer in the mailbox (another client
        moved or deleted them): skipped, with a record saying why."""
        gone = sorted(set(interrupted) - set(uids))
        if not gone:
            return
        for uid in gone:
            self._record_unread(FetchedMail(uid, None, None, "gone"))
            del interrupted[uid]
        self.Attempt._end(self.server, self.folder, self.mailbox.uidvalidity, gone)
        self._progress()

    def _record_unread(self, mail):
        """Record a mail that could not be read: over the size limit, gone or empty."""
        vals = self._record_vals(mail.uid, mail.size or 0)
        if mail.problem == "too_big":
            return self._ingest_too_big(vals, mail.size)
        if mail.problem == "gone":
            _logger.info(
                "Mail UID %s of %s on server %s is no longer in the mailbox",
                mail.uid,
                self.folder,
                self.server.name,
            )
            return self.Inbound.create(
                {
                    **vals,
                    "state": "ignored",
                    "mailbox_done": True,
                    "date_processed": odoo_fields.Datetime.now(),
                    "error": self.env._(
                        "The mail was no longer in the mailbox when it was to be read: "
                        "another mail client moved or deleted it."
                    ),
                }
            )
        _logger.warning(
            "Mail UID %s of %s on server %s: the mail server sent no content",
            mail.uid,
            self.folder,
            self.server.name,
        )
        return self.Inbound.create(
            {
                **vals,
                "state": "failed",
                "attempts": 1,
                "date_processed": odoo_fields.Datetime.now(),
                "error": self.env._(
                    "The mail server sent no content for this mail: it is left in the "
                    "mailbox, Retry reads it again."
                ),
            }
        )

    def _record_interrupted(self, mail, attempts):
        """Record a mail whose processing was interrupted ``attempts`` times as failed,
        with its source, without processing it again."""
        _logger.warning(
            "Mail UID %s of %s on server %s was being processed when the fetch was "
            "interrupted, %d time(s): recorded failed, not processed again",
            mail.uid,
            self.folder,
            self.server.name,
            attempts,
        )
        return self.Inbound.create(
            {
                **self._record_vals(mail.uid, mail.size),
                **headers_vals(mail.raw),
                "state": "failed",
                "attempts": attempts,
                "date_processed": odoo_fields.Datetime.now(),
                "raw_source": base64.b64encode(mail.raw),
                "error": self.env._(
                    "Processing this mail was interrupted %(count)s times (the process "
                    "fetching the mailbox stopped, e.g. at its CPU or memory limit): the "
                    "fetch does not process it again, so that the mails after it are "
                    "not held up. Retry processes it again.",
                    count=attempts,
                ),
            }
        )

    def _process_together(self, fetched, attempts):
        """Process ``fetched`` (:class:`FetchedMail` with a source) through the batched
        gateway, in their order: the mails it takes together, those it leaves alone
        each in its turn (:meth:`_ingest`); record them all. Return ``{uid: record}``
        (empty when the batch failed: it is rolled back, the mails left alone too)."""
        if not fetched:
            return {}
        alone = {}

        def process_alone(index):
            mail = fetched[index]
            alone[mail.uid] = self._ingest(mail.uid, mail.raw, mail.size, attempts[mail.uid])

        try:
            with self.env.cr.savepoint():
                results = (
                    self.env["mail.ticket"]
                    .sudo()
                    ._message_process_batch(
                        self.server, [mail.raw for mail in fetched], process_alone
                    )
                )
                now = odoo_fields.Datetime.now()
                taken = [
                    (mail, result) for mail, result in zip(fetched, results, strict=True) if result
                ]
                records = self.Inbound.create(
                    [
                        {
                            **self._record_vals(mail.uid, mail.size),
                            **headers_vals(result.message),  # parsed once, by the gateway
                            "state": "done",
                            "attempts": attempts[mail.uid],
                            "date_processed": now,
                            "ticket_id": result.ticket.id,
                            "is_new_ticket": result.is_new,
                        }
                        for mail, result in taken
                    ]
                )
        except Exception:  # the batch is rolled back: mail by mail, each guarded
            _logger.warning(
                "Processing %d mail(s) of server %s together failed: processing them one by one",
                len(fetched),
                self.server.name,
                exc_info=True,
            )
            return {}
        return {**alone, **dict(zip((mail.uid for mail, __ in taken), records, strict=True))}

    def _ingest(self, uid, raw, size, attempts=1):
        """Record and process one fetched mail in a savepoint; return its record."""
        vals = {**self._record_vals(uid, size), "attempts": attempts}
        try:
            with self.env.cr.savepoint():
                inbound = self.Inbound.create({**vals, **headers_vals(raw), "state": "done"})
                self._process(inbound, raw)
                return inbound
        except Exception as exc:  # whatever fails stays with this mail: the run goes on
            inbound = self.Inbound.create({**vals, "state": "failed"})
            self._process_failed(inbound, raw, exc)
            return inbound

    def _record_vals(self, uid, size):
        """What the record of a fetched mail says of where it was read."""
        return {
            "server_id": self.server.id,
            "folder": self.folder,
            "uidvalidity": self.mailbox.uidvalidity,
            "uid": uid,
            "size": size,
            "attempts": 0,
        }

    def _ingest_too_big(self, vals, size=None):
        limit = self.server.ticket_max_size
        _logger.warning(
            "Mail UID %s of %s on server %s is %s bytes, over its %s MB limit: left in the mailbox",
            vals["uid"],
            self.folder,
            self.server.name,
            size or "more than the limit",
            limit,
        )
        if size:
            error = self.env._(
                "The mail is %(size).1f MB, over the %(limit)s MB limit of this "
                "mail server: it was not processed and is left in the mailbox.",
                size=size / 1024 / 1024,
                limit=limit,
            )
        else:
            error = self.env._(
                "The mail is over the %(limit)s MB limit of this mail server: it was not "
                "processed and is left in the mailbox.",
                limit=limit,
            )
        return self.Inbound.create({**vals, "state": "failed", "error": error})

    def _process(self, inbound, raw):
        """Run the mail through the gateway in a savepoint and record the outcome.

        Never raises: any error, whatever its type (the gateway's, or recording the
        outcome), rolls the mail's work back and is recorded on the mail as failed,
        with its raw source.
        """
        try:
            with self.env.cr.savepoint():
                self._process_gateway(inbound, raw)
        except Exception as exc:  # any failure is recorded with the mail, never lost
            self._process_failed(inbound, raw, exc)

    def _process_gateway(self, inbound, raw):
        server = self.server
        thread = self.env["mail.thread"].with_context(default_fetchmail_server_id=server.id)
        thread_id = thread.message_process(
            server.object_id.model,
            raw,
            save_original=server.original,
            strip_attachments=not server.attach,
        )
        vals = {"date_processed": odoo_fields.Datetime.now()}
        if thread_id:
            vals.update(self._outcome_vals(inbound, thread_id), state="done", error=False)
        else:
            vals.update(state="ignored", error=self._ignored_reason(inbound))
        vals["raw_source"] = False  # no-op unless an earlier attempt kept it
        inbound.write(vals)

    def _process_failed(self, inbound, raw, error):
        """Record that processing the mail failed with ``error``; keep its raw source."""
        # PostgreSQL text takes neither NUL nor lone surrogates (undecodable bytes)
        message = f"{type(error).__name__}: {error}".replace("\x00", "\\x00")
        vals = {
            "state": "failed",
            "error": message.encode("utf-8", "backslashreplace").decode("utf-8"),
            "date_processed": odoo_fields.Datetime.now(),
        }
        if not inbound._stored_raw():
            vals.update(raw_source=base64.b64encode(raw), date_raw_source_removed=False)
        _logger.warning(
            "Failed to process mail %s (UID %s) from %s on server %s, attempt %d/%d: %s",
            inbound.message_id,
            inbound.uid,
            inbound.email_from,
            self.server.name,
            inbound.attempts,
            self.server.ticket_max_attempts,
            vals["error"],
            exc_info=error,
        )
        inbound.write(vals)

    def _outcome_vals(self, inbound, thread_id):
        """The ticket the mail created or updated."""
        message = self.env["mail.message"].sudo()
        if inbound.message_id:
            message = message.search([("message_id", "=", inbound.message_id)], limit=1)
        if message and message.model != "mail.ticket":
            return {"ticket_id": False, "is_new_ticket": False}
        creation_subtype = self.env["ir.model.data"]._xmlid_to_res_id("mail_ticket.mt_ticket_new")
        return {
            "ticket_id": message.res_id or thread_id,
            "is_new_ticket": message.subtype_id.id == creation_subtype,
        }

    def _ignored_reason(self, inbound):
        blocked = self.env["mail.ticket.blocked.sender"]._blocked_emails(
            [tools.email_normalize(inbound.email_from or "")]
        )
        if blocked:
            entry = next(iter(blocked.values()))
            return self.env._(
                "Blocked sender (%(sender)s): %(reason)s", sender=entry.name, reason=entry.reason
            )
        if inbound.message_id and self.env["mail.message"].sudo().search_count(
            [("message_id", "=", inbound.message_id)], limit=1
        ):
            return self.env._("Already processed: a message with this Message-ID exists.")
        return self.env._(
            "Not routed: a bounce, an auto-reply loop or a mail to the catchall alone "
            "(the server log tells which)."
        )

    # ------------------------------------------------------------
    # RETRY
    # ------------------------------------------------------------

    def retry(self, inbound, manual=False):
        """Process a failed mail again, from its raw source or, when none is kept, from
        the mailbox. The fetch counts the attempt before (see ``_retry_failed``); a
        manager's *Retry* (``manual``) starts the attempts again, with this one."""
        raw = inbound._stored_raw() or self._download(inbound)
        if manual:
            inbound.attempts = 1
        self._process(inbound, raw)
        _logger.info(
            "Retried mail %s (UID %s) of server %s: %s",
            inbound.message_id,
            inbound.uid,
            self.server.name,
            inbound.state,
        )

    def _download(self, inbound):
        """Read a mail left in the mailbox (over the size limit at fetch time, or whose
        raw source was removed), on the run's connection or on a new one."""
        if self.mailbox:
            return self._download_from(self.mailbox, inbound)
        connection = self.server._connect__()
        try:
            return self._download_from(ImapMailbox(connection, inbound.folder), inbound)
        finally:
            connection.disconnect()

    def _download_from(self, mailbox, inbound):
        if mailbox.select() != inbound.uidvalidity:
            raise UserError(
                self.env._("The mailbox folder was rebuilt: this mail is no longer there.")
            )
        size = mailbox.sizes([inbound.uid]).get(inbound.uid)
        if size is None:
            raise UserError(self.env._("This mail is no longer in the mailbox."))
        if size > self.max_bytes:
            raise UserError(
                self.env._(
                    "The mail is still over the %(limit)s MB limit of the mail server: "
                    "raise the limit first.",
                    limit=self.server.ticket_max_size,
                )
            )
        raw = mailbox.fetch([inbound.uid]).get(inbound.uid)
        if raw is None:
            raise UserError(self.env._("The mail server sent no content for this mail."))
        inbound.write(headers_vals(raw))
        return raw
