from . import mail_ticket_merge
