import { registry } from "@web/core/registry";

/**
 * An agent opens the helpdesk, finds a ticket created from a customer mail in the
 * kanban, reads the customer's mail and answers it from the chatter.
 */
registry.category("web_tour.tours").add("mail_ticket_agent_answer", {
    steps: () => [
        {
            content: "The open tickets are shown by stage",
            trigger: ".o_kanban_group:contains(Open) .o_kanban_record:contains(Drucker im Lager)",
            run: "click",
        },
        {
            content: "The form shows the ticket number",
            trigger: ".o_form_view .o_field_widget[name=number]:contains(TICKET-)",
        },
        {
            content: "Answer the customer",
            trigger: "button:contains(Send message)",
            run: "click",
        },
        {
            trigger: ".o-mail-Composer-input",
            run: "edit Bitte starten Sie den Drucker neu.",
        },
        {
            trigger: ".o-mail-Composer-send:enabled",
            run: "click",
        },
        {
            content: "The answer is in the conversation",
            trigger: ".o-mail-Message:contains(Bitte starten Sie den Drucker neu)",
        },
        {
            content: "below the customer's mail",
            trigger: ".o-mail-Message:contains(Sylvie Lelitre):contains(Drucker im Lager)",
        },
        {
            content: "and among the ticket's comments",
            trigger: ".o_notebook a:contains(Comments)",
            run: "click",
        },
        {
            trigger: ".o_field_one2many[name=comment_ids] .o_data_row:contains(Bitte starten Sie)",
        },
    ],
});

/**
 * An agent merges a customer's duplicate ticket into the first one from the list's
 * action menu, then looks at the team's response times in the reporting pivot.
 */
registry.category("web_tour.tours").add("mail_ticket_merge_and_report", {
    steps: () => [
        {
            content: "Select the first ticket",
            trigger: ".o_list_renderer tr:contains(Drucker im Lager) td.o_list_record_selector input",
            run: "click",
        },
        {
            content: "and its duplicate",
            trigger: ".o_list_renderer tr:contains(Drucker immer noch) td.o_list_record_selector input",
            run: "click",
        },
        {
            content: "Open the action menu",
            trigger: ".o_cp_action_menus button",
            run: "click",
        },
        {
            content: "Merge",
            trigger: ".o-dropdown--menu span:contains(Merge Tickets)",
            run: "click",
        },
        {
            content: "The oldest ticket stays",
            trigger: ".modal .o_field_widget[name=target_ticket_id] input:value(Drucker im Lager)",
        },
        {
            trigger: ".modal button[name=action_merge]",
            run: "click",
        },
        {
            content: "The ticket that stays shows the duplicate's mail",
            trigger: ".o_form_view .o-mail-Message:contains(Der Drucker ist immer noch kaputt)",
        },
        {
            trigger: ".o_form_view .o-mail-Message:contains(Merged into this ticket)",
        },
        {
            content: "Open the reporting",
            trigger: ".o_main_navbar button:contains(Reporting)",
            run: "click",
        },
        {
            trigger: ".o-dropdown--menu a:contains(Response Times)",
            run: "click",
        },
        {
            content: "The pivot shows the average and the median time to the first answer",
            trigger: ".o_pivot th:contains(Hours to First Answer (Median))",
        },
        {
            trigger: ".o_pivot th:contains(Hours to First Answer):not(:contains(Median))",
        },
        {
            content: "and to closing",
            trigger: ".o_pivot th:contains(Hours to Close (Median))",
        },
        {
            content: "week by week",
            trigger: `.o_pivot tbody th:contains(${luxon.DateTime.now().toFormat("kkkk")})`,
        },
    ],
});

/**
 * A manager starts on the helpdesk overview: a team's card counts the ticket whose SLA
 * failed; the manager opens it from there, checks the SLA report, and splits the
 * customer's second question off the ticket into a ticket of its own.
 */
registry.category("web_tour.tours").add("mail_ticket_team_sla_split", {
    steps: () => [
        {
            content: "The team's card counts its tickets whose SLA failed",
            trigger: ".o_kanban_record:contains(Technik Tour) a:contains(SLA Failed)",
            run: "click",
        },
        {
            content: "which opens them, marked on their card",
            trigger: ".o_kanban_record:contains(Server steht) .badge:contains(SLA Failed)",
        },
        {
            content: "Open the SLA report",
            trigger: ".o_main_navbar button:contains(Reporting)",
            run: "click",
        },
        {
            trigger: ".o-dropdown--menu a:contains(SLA Status)",
            run: "click",
        },
        {
            content: "The report counts the team's failed SLA",
            trigger: ".o_pivot th:contains(Technik Tour)",
        },
        {
            trigger: ".o_pivot th:contains(Failed)",
        },
        {
            content: "and shows the weeks in a graph",
            trigger: "button.o_switch_view.o_graph",
            run: "click",
        },
        {
            trigger: ".o_graph_renderer canvas",
        },
        {
            content: "Back to the team's ticket",
            trigger: ".o_main_navbar button:contains(Tickets)",
            run: "click",
        },
        {
            trigger: ".o-dropdown--menu a:contains(All Tickets)",
            run: "click",
        },
        {
            trigger: ".o_kanban_record:contains(Server steht)",
            run: "click",
        },
        {
            content: "Split the customer's other question off",
            trigger: ".o_form_view .o_form_statusbar button:contains(Split)",
            run: "click",
        },
        {
            content: "The customer's last message opens the new ticket",
            trigger: ".modal .o_field_widget[name=message_body]:contains(Drucker im Lager)",
        },
        {
            trigger: ".modal .o_field_widget[name=name] input",
            run: "edit Drucker im Lager druckt nicht",
        },
        {
            trigger: ".modal button[name=action_split]",
            run: "click",
        },
        {
            content: "The new ticket opens, for the same customer",
            trigger: ".o_form_view .o_field_widget[name=name] input:value(Drucker im Lager druckt nicht)",
        },
        {
            trigger: ".o_form_view .o_field_widget[name=partner_id] input:value(Sylvie Lelitre)",
        },
        {
            trigger: ".o_form_view .o-mail-Message:contains(Split from)",
        },
    ],
});
