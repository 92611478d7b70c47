"""The verdict on one incoming mail, decided once before the gateway acts on it.

``mail.ticket._mail_ticket_verdict`` decides it, for ``message_process`` (in
``mail.thread._message_route_process``) and for a fetched batch alike. It travels with
the parsed mail, in ``msg_dict[VERDICT_KEY]``, to the hooks that act on it
(``message_new``, ``_mail_ticket_new_values``, ``message_update``...); it is no value
of the message and never reaches ``mail.message``.
"""

from dataclasses import dataclass, field
from types import MappingProxyType

from .mail_trust import MailSender

#: The key of the parsed mail (``msg_dict``) that holds its :class:`MailVerdict`.
VERDICT_KEY = "mail_ticket_verdict"


@dataclass(frozen=True, eq=False)
class MailVerdict:
    """Who sent an incoming mail, whether they may speak where it goes, what it is.

    ``server``: the ticket mailbox (``fetchmail.server``) the mail was read from, an
    empty recordset when none; ``sender``: the :class:`~.mail_trust.MailSender` (the
    ``From`` address as the receiving server read it, and its DMARC verdict);
    ``doubts``: ticket id (0: a new ticket) -> why the sender may not speak there, for
    the tickets the mail is routed to; ``automated``: why a machine wrote the mail, or
    False; ``forward``: the customer's mail (:class:`~.mail_forward.ForwardedMail`) that
    a verified agent forwarded to open a ticket for them, or None; ``languages``: the
    language tags the mail declares (``Content-Language``).
    """

    server: object
    sender: MailSender = field(default_factory=MailSender)
    doubts: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    automated: str | bool = False
    spam: str | bool = False
    forward: object = None
    languages: tuple = ()

    def doubt(self, ticket_id=0):
        """Why the sender may not speak on ticket ``ticket_id`` (0 or False: a new
        ticket), or False when they may."""
        return self.doubts.get(ticket_id or 0, False)

    def speaks(self, ticket_id=0):
        """Whether the mail speaks for its sender there: a verified person, not a machine
        nor spam. Only then does it acknowledge, subscribe, reopen or make the copied
        follow."""
        return not (self.automated or self.spam or self.doubt(ticket_id))
