import re

from lxml import html as lxml_html
from markupsafe import Markup, escape

from odoo import api, fields, models, tools

# "On Tuesday, Jane wrote:", "Am 10.08.2026 um 15:00 schrieb Support:" ...
_ATTRIBUTION_RE = re.compile(
    r"^\s{0,20}(on|am|le|el|il|op)\b.{0,200}\b(wrote|schrieb|a écrit|escribió|ha scritto|schreef)"
    r"\b.{0,100}:\s{0,20}$",
    re.IGNORECASE,
)
ATTRIBUTION_MAX_LENGTH = 400


def _strip_plain_quotes(text):
    """Text of a plain-text mail without its quoted part ("> " lines, and the
    attribution line above them, or left at the end once Odoo's quote tags are
    dropped), or None when there is nothing to take out."""
    lines = text.splitlines()
    cut = next((i for i, line in enumerate(lines) if line.lstrip().startswith(">")), len(lines))
    while cut and not lines[cut - 1].strip():
        cut -= 1
    # an attribution is one short line: the pattern never reads a long one
    if (
        cut
        and len(lines[cut - 1]) <= ATTRIBUTION_MAX_LENGTH
        and _ATTRIBUTION_RE.match(lines[cut - 1])
    ):
        cut -= 1
    kept = "\n".join(lines[:cut]).rstrip()
    return kept if kept and kept != text.rstrip() else None


def strip_quoted_history(body):
    """The new text of a mail body, without the history it quotes: what Odoo's
    sanitizer tagged as quoted (earlier messages, signatures) in HTML mails, the "> "
    lines of plain-text ones; the whole body when nothing else is left."""
    if not body or ("data-o-mail-quote" not in body and "&gt;" not in body):
        return body
    root = lxml_html.fragment_fromstring(str(body), create_parent="div")
    for node in root.xpath("//*[@data-o-mail-quote]"):
        node.drop_tree()
    for pre in root.xpath("//pre"):
        kept = _strip_plain_quotes(pre.text_content())
        if kept:
            pre.clear()
            pre.text = kept
    if not root.text_content().strip():
        return body
    # root.text is text, entities decoded: escaped again, never taken for markup
    return escape(root.text or "") + Markup("").join(
        Markup(lxml_html.tostring(child, encoding="unicode")) for child in root
    )


class MailTicketComment(models.Model):
    _name = "mail.ticket.comment"
    _description = "Ticket Comment"
    _order = "id"
    _rec_name = "ticket_id"

    ticket_id = fields.Many2one("mail.ticket", required=True, index=True, ondelete="cascade")
    # the comment mirrors a message of the chatter: its content lives there only
    message_id = fields.Many2one("mail.message", required=True, index=True, ondelete="cascade")
    is_from_email = fields.Boolean(
        string="From Email", readonly=True, help="The comment came in by email."
    )
    author_id = fields.Many2one(related="message_id.author_id", string="Author")
    author_name = fields.Char(compute="_compute_author_contact")
    author_email = fields.Char(compute="_compute_author_contact")
    body = fields.Html(
        compute="_compute_body",
        help="What the message says, without the quoted history below it.",
    )
    date = fields.Datetime(related="message_id.date")
    attachment_ids = fields.Many2many(related="message_id.attachment_ids")

    _message_uniq = models.Constraint(
        "UNIQUE(message_id)", "A message is mirrored by one comment at most."
    )

    @api.depends("message_id.body")
    def _compute_body(self):
        for comment in self:
            comment.body = strip_quoted_history(comment.message_id.body)

    @api.depends("message_id.email_from", "message_id.author_id")
    def _compute_author_contact(self):
        for comment in self:
            name, email = tools.parse_contact_from_email(comment.message_id.email_from or "")
            author = comment.message_id.author_id
            comment.author_email = email or author.email
            comment.author_name = name or author.name or email
