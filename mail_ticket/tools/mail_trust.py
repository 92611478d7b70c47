"""Who wrote an incoming mail, as far as the receiving mail server could tell.

Anybody can put any address in ``From``. What the receiving MTA checked (SPF, DKIM,
DMARC) it records in an ``Authentication-Results`` header (RFC 8601), whose first token
names the host that wrote it: the authserv-id. Anybody can write such a header too, so
only the headers of the authserv-ids the administrator trusts count (a conforming MTA
removes incoming headers that claim its own id, RFC 8601 section 5).
"""

import logging
import re
from dataclasses import dataclass
from email.utils import getaddresses

import authres

from odoo import tools

_logger = logging.getLogger(__name__)

# an address hidden in a display name: "support@company.example" <mallory@evil.example>
_ADDRESS_IN_NAME_RE = re.compile(r"[^\s@<>\"']+@[^\s@<>\"']+\.[^\s@<>\"']+")


@dataclass(frozen=True)
class MailSender:
    """The sender of one incoming mail and what the trusted mail server said of it.

    ``email``: the normalized ``From`` address (False when there is none);
    ``ambiguous``: why the ``From`` header cannot name one sender (several
    addresses, an address in the display name), else False;
    ``dmarc``: the trusted DMARC result for the ``From`` domain: ``"pass"``,
    ``"fail"``, another result (``"none"``, ``"temperror"`` ...), or None when no
    trusted server checked it.
    """

    email: str | bool = False
    ambiguous: str | bool = False
    dmarc: str | None = None

    @property
    def dmarc_pass(self):
        return self.dmarc == "pass"

    @property
    def dmarc_fail(self):
        return self.dmarc == "fail"


def trusted_authserv_ids(value):
    """The set of authserv-ids named by a comma separated setting."""
    return frozenset(
        authserv_id.strip().lower()
        for authserv_id in (value or "").split(",")
        if authserv_id.strip()
    )


def _header_values(message, name):
    """A header's values as text; a header Python cannot parse counts as absent."""
    values = []
    for value in message.get_all(name) or ():
        try:
            values.append(str(value))
        except Exception:  # a malformed header proves nothing
            continue
    return values


def _from_ambiguity(from_values):
    """Why these ``From`` header values do not name exactly one sender, or False."""
    if len(from_values) != 1:
        return "several From headers" if from_values else "no From header"
    addresses = [(name, address) for name, address in getaddresses(from_values) if name or address]
    if len(addresses) != 1 or len(tools.email_split(from_values[0])) != 1:
        return "several addresses in From"
    if _ADDRESS_IN_NAME_RE.search(addresses[0][0] or ""):
        return "an address in the display name of From"
    return False


def dmarc_result(message, trusted_ids, domain):
    """The DMARC result that a trusted ``Authentication-Results`` header gives for
    ``domain``, or None. The topmost trusted header (added last) wins."""
    if not trusted_ids or not domain:
        return None
    for value in _header_values(message, "Authentication-Results"):
        try:
            header = authres.AuthenticationResultsHeader.parse(f"Authentication-Results: {value}")
        except Exception:  # authres raises its own errors and plain ones alike
            _logger.info("Unparsable Authentication-Results header ignored: %s", value[:200])
            continue
        if (header.authserv_id or "").lower() not in trusted_ids:
            continue
        for result in header.results:
            if result.method.lower() != "dmarc":
                continue
            checked = {
                prop.value.lower()
                for prop in result.properties
                if prop.type.lower() == "header" and prop.name.lower() == "from"
            }
            if not checked or domain in checked:
                return result.result.lower()
        return "none"  # the trusted server wrote its verdicts, but no DMARC one
    return None


def check_sender(message, email_from, trusted_ids):
    """A :class:`MailSender` for an incoming ``email.message.EmailMessage``."""
    email = tools.email_normalize(email_from or "") or False
    ambiguous = _from_ambiguity(_header_values(message, "From"))
    domain = email and tools.email_domain_extract(email)
    return MailSender(
        email=email,
        ambiguous=ambiguous,
        dmarc=dmarc_result(message, trusted_ids, domain),
    )
