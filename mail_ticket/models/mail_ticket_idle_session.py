from odoo import fields, models


class MailTicketIdleSession(models.Model):
    """The push connection (IMAP IDLE) of one ticket mailbox, as the listener holding it
    last told: written by the listener, as superuser, when it connects, disconnects or
    hears of new mail, never while the mailbox is idle.

    A table of its own, not columns of the mail server: the fetch keeps the server's row
    locked while it runs, and these writes come exactly then (new mail while a fetch
    runs); they must neither wait for it nor make it fail to serialize.
    """

    _name = "mail.ticket.idle.session"
    _description = "Mailbox Push Connection"
    _rec_name = "server_id"

    server_id = fields.Many2one(
        "fetchmail.server", string="Mail Server", required=True, ondelete="cascade", index=True
    )
    state = fields.Selection(
        [
            ("connected", "Connected"),
            ("reconnecting", "Reconnecting"),
            ("unsupported", "IDLE not supported"),
            ("stopped", "Stopped"),
        ],
        required=True,
    )
    holder = fields.Char(string="Held By", help="Host and process id of the listener.")
    date_connected = fields.Datetime(string="Connected Since")
    date_event = fields.Datetime(string="Last New Mail")
    event_count = fields.Integer(string="New Mail Announcements")
    error = fields.Text()

    _server_uniq = models.Constraint("UNIQUE(server_id)", "A mail server has one push connection.")
