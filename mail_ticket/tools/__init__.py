from . import mail_forward, mail_repair, mail_trust
