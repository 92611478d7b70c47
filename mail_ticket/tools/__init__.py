from . import mail_repair
