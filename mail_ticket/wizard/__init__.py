from . import mail_ticket_merge, mail_ticket_split
