from . import mail_ticket
