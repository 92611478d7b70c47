from . import imap_mailbox, mail_forward, mail_repair, mail_trust, mailbox_ingestion
