"""Ticket references in mail subjects, and ticket titles: pure functions, linear time.

A subject refers to a ticket by ``[TICKET-123]`` (whatever prefix the numbering uses or
used) or ``Ticket #123`` anywhere, or by ``#123`` right behind the reply and forward
prefixes; a bare number ("Problem mit Ticket 123") is no reference.
"""

import itertools
import re

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


def split_number(number):
    """``(prefix, counter)`` of a ticket number such as ``TICKET-007``, or
    ``(False, 0)`` for a number that does not end with its counter."""
    match = _NUMBER_RE.match(number or "")
    if not match:
        return False, 0
    return match["prefix"], int(match["int"])


def subject_references(subject, bracketed_only=False):
    """The ticket references of ``subject``: ``(prefix, number)`` pairs, best first (the
    prefix is None where the subject gives none), at most ``MAX_REFERENCES``; only the
    ``[PREFIX-n]`` tags with ``bracketed_only``. Leading zeros are ignored."""
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


_LEADING_REPLY_RE = re.compile(rf"^{_REPLY_PREFIXES}", re.IGNORECASE)


def title_from_subject(subject):
    """The title of a ticket opened from a mail of another ticket's conversation: its
    subject without the ticket tags and the reply prefixes ("AW: [TICKET-001] Drucker"
    is "Drucker"); empty when nothing else is left."""
    subject = one_line((subject or "")[: REFERENCE_SUBJECT_LENGTH * 4])[:REFERENCE_SUBJECT_LENGTH]
    subject = one_line(_TAG_RE.sub(" ", subject))
    return clean_title(_LEADING_REPLY_RE.sub("", subject).strip())
