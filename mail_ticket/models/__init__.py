from . import (
    fetchmail_server,
    mail_mail,
    mail_thread,
    mail_ticket,
    mail_ticket_comment,
    mail_ticket_fetch_run,
    mail_ticket_idle_session,
    mail_ticket_inbound,
    mail_ticket_inbound_attempt,
    mail_ticket_stage,
    mail_ticket_tag,
    res_config_settings,
)
