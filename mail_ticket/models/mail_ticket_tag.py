from random import randint

from odoo import fields, models


class MailTicketTag(models.Model):
    _name = "mail.ticket.tag"
    _description = "Ticket Tag"
    _order = "name"

    name = fields.Char(required=True, translate=True)
    color = fields.Integer(default=lambda self: randint(1, 11))
    active = fields.Boolean(default=True)

    _name_uniq = models.Constraint("UNIQUE(name)", "A tag with this name already exists.")
