from . import mail_trust
