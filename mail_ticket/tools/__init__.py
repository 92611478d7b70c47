from . import mail_forward, mail_trust
