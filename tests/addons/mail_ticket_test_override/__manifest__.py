{
    "name": "Mail Tickets: an integrator's gateway override (test)",
    "summary": "Test addon: overrides mail.ticket's message_new as an integrator would",
    "version": "19.0.1.0.0",
    "category": "Hidden/Tests",
    "author": "mail_ticket developers",
    "license": "LGPL-3",
    "depends": ["mail_ticket"],
    "installable": True,
}
