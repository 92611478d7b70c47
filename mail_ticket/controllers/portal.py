from odoo import http
from odoo.exceptions import AccessError, MissingError
from odoo.http import request

from odoo.addons.portal.controllers.portal import CustomerPortal
from odoo.addons.portal.controllers.portal import pager as portal_pager


class MailTicketPortal(CustomerPortal):
    def _prepare_home_portal_values(self, counters):
        values = super()._prepare_home_portal_values(counters)
        if "ticket_count" in counters:
            Ticket = request.env["mail.ticket"]
            values["ticket_count"] = Ticket.search_count([]) if Ticket.has_access("read") else 0
        return values

    def _ticket_get_searchbar_sortings(self):
        return {
            "date": {"label": request.env._("Newest"), "order": "create_date desc, id desc"},
            "number": {"label": request.env._("Number"), "order": "number desc, id desc"},
            "stage": {"label": request.env._("Stage"), "order": "stage_id, id desc"},
        }

    @http.route(
        ["/my/tickets", "/my/tickets/page/<int:page>"],
        type="http",
        auth="user",
        website=True,
        readonly=True,
    )
    def portal_my_tickets(self, page=1, sortby=None, **kw):
        Ticket = request.env["mail.ticket"]
        if not Ticket.has_access("read"):
            return request.redirect("/my")
        values = self._prepare_portal_layout_values()
        searchbar_sortings = self._ticket_get_searchbar_sortings()
        if sortby not in searchbar_sortings:
            sortby = "date"
        order = searchbar_sortings[sortby]["order"]

        pager = portal_pager(
            url="/my/tickets",
            url_args={"sortby": sortby},
            total=Ticket.search_count([]),
            page=page,
            step=self._items_per_page,
        )
        tickets = Ticket.search([], order=order, limit=self._items_per_page, offset=pager["offset"])
        request.session["my_tickets_history"] = tickets.ids[:100]

        values.update(
            {
                # the rules chose the tickets; the stages are no portal model
                "tickets": tickets.sudo(),
                "page_name": "ticket",
                "default_url": "/my/tickets",
                "pager": pager,
                "searchbar_sortings": searchbar_sortings,
                "sortby": sortby,
            }
        )
        return request.render("mail_ticket.portal_my_tickets", values)

    @http.route(["/my/tickets/<int:ticket_id>"], type="http", auth="public", website=True)
    def portal_my_ticket(self, ticket_id, access_token=None, **kw):
        try:
            ticket_sudo = self._document_check_access("mail.ticket", ticket_id, access_token)
        except (AccessError, MissingError):
            return request.redirect("/my")
        # the portal chatter posts with the token (portal users may not write tickets)
        ticket_sudo._portal_ensure_token()
        values = {
            "page_name": "ticket",
            "ticket": ticket_sudo,
            "preview_object": ticket_sudo,
        }
        values = self._get_page_view_values(
            ticket_sudo, access_token, values, "my_tickets_history", False, **kw
        )
        return request.render("mail_ticket.portal_my_ticket", values)
