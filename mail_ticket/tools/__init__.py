from . import mail_repair, mail_trust
