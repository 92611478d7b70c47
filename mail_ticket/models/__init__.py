from . import mail_thread, mail_ticket, mail_ticket_comment, mail_ticket_stage, mail_ticket_tag
