import logging
from email.message import EmailMessage

from odoo import api, models

from ..tools.mail_repair import read_headers_once, repair_message
from ..tools.mail_trust import remember_from
from ..tools.mail_verdict import VERDICT_KEY
from ..tools.ticket_reference import one_line

_logger = logging.getLogger(__name__)


class MailThread(models.AbstractModel):
    _inherit = "mail.thread"

    @api.model
    def message_parse(self, message, save_original=False):
        """Repair what the gateway could not read (unknown charsets, header parser
        errors, impossible dates...) before Odoo parses the mail; a well-formed mail is
        left as it is. The mail's source, as received, is not changed. Each header
        is parsed once however often it is read (``tools.mail_repair.read_headers_once``).

        Before anything is repaired, the ``From`` header is read as the receiving mail
        server read it (``tools.mail_trust.remember_from``): who sent the mail is decided
        on that reading, never on the repaired one."""
        if isinstance(message, EmailMessage):
            try:
                read_headers_once(message)
            except Exception:  # a speed-up: never a reason to fail a mail
                _logger.warning("Could not make a mail read its headers once", exc_info=True)
            # who sent it is decided on the From header as the receiving server read it
            from_header = remember_from(message)
            try:
                repairs = repair_message(message)
            except Exception:  # a repair that fails must not fail a mail Odoo may read
                _logger.warning("Could not repair an incoming mail", exc_info=True)
                repairs = None
            if repairs and any(repair.lower().startswith("header from") for repair in repairs):
                remember_from(message, repaired=True)
            elif from_header.doubt:
                _logger.info(
                    "Mail %s: sender in doubt (%s)",
                    message.get("Message-Id", failobj=""),
                    from_header.doubt,
                )
            if repairs:
                _logger.info(
                    "Repaired mail %s before parsing: %s",
                    message.get("Message-Id", failobj=""),
                    ", ".join(repairs),
                )
        return super().message_parse(message, save_original=save_original)

    @api.model
    def _message_route_process(self, message, message_dict, routes):
        """Decide once what mail_ticket makes of a mail routed to tickets
        (``mail.ticket._mail_ticket_verdict``) and hand the verdict to the ticket
        hooks with the mail (``message_dict[VERDICT_KEY]``).

        A mail that lands on an existing ticket speaks there only if its sender is
        verified (see ``mail.ticket._mail_ticket_sender_doubt``): otherwise it is kept
        as an internal note marked unverified, or opens a new ticket, as the mailbox
        says. A sender that is not verified never acts as the user its address
        belongs to. A verified agent's forward of a customer's mail opens the ticket
        for that customer. The mailbox is the one Odoo's fetch names in the context
        (``default_fetchmail_server_id``), read here once.
        """
        if any(route[0] == "mail.ticket" for route in routes or ()):
            # a line break hidden in an encoded subject would break every mail quoting it
            if message_dict.get("subject"):
                message_dict["subject"] = one_line(message_dict["subject"])
            server = self.env["fetchmail.server"].browse(
                self.env.context.get("default_fetchmail_server_id")
            )
            routes, message_dict[VERDICT_KEY] = self.env["mail.ticket"]._mail_ticket_verdict(
                message, message_dict, routes, server
            )
        return super()._message_route_process(message, message_dict, routes)

    @api.model
    def message_route(self, message, message_dict, model=None, thread_id=None, custom_values=None):
        """Route a mail whose subject names a ticket to that ticket.

        Odoo routes replies by their References / In-Reply-To headers only; those
        still win. Without a header match, a subject reference such as
        ``Re: [TICKET-042] ...`` or ``AW: #42`` makes the mail a comment of that
        ticket. Beyond ticket mailboxes (fallback model ``mail.ticket``), only the
        ``[TICKET-042]`` tag this module puts in outgoing subjects is routed. This
        runs before Odoo's catchall check, so a reply whose client dropped the
        threading headers is not bounced. Whether the sender may speak on the
        ticket is decided for every route to a ticket, in ``_message_route_process``.
        """
        if model == "mail.ticket":
            _logger.info(
                "Processing mail %s from %s: %s",
                message_dict.get("message_id"),
                message_dict.get("email_from"),
                message_dict.get("subject"),
            )
            if blocked := self.env["mail.ticket"]._mail_ticket_blocked(message, message_dict):
                # no ticket, no contact, no bounce: recorded as ignored with the reason
                _logger.info(
                    "Mail %s from a blocked sender (%s: %s): ignored",
                    message_dict.get("message_id"),
                    blocked.name,
                    blocked.reason,
                )
                return []
        if not message_dict.get("is_bounce") and not message_dict.get("parent_id"):
            ticket = (
                self.env["mail.ticket"]
                .sudo()
                ._search_by_reference(
                    message_dict.get("subject"), bracketed_only=model != "mail.ticket"
                )
            )
            if ticket:
                self._routing_reset_bounce(message, message_dict)
                user = self._mail_find_user_for_gateway(message_dict["email_from"])
                route = self._routing_check_route(
                    message,
                    message_dict,
                    (
                        "mail.ticket",
                        ticket.id,
                        None,
                        user.id or self.env.uid,
                        self.env["mail.alias"],
                    ),
                    raise_exception=False,
                )
                if route:
                    _logger.info(
                        "Routing mail %s from %s to ticket %s by its subject",
                        message_dict.get("message_id"),
                        message_dict.get("email_from"),
                        ticket.number,
                    )
                    return [route]
        return super().message_route(
            message, message_dict, model=model, thread_id=thread_id, custom_values=custom_values
        )
