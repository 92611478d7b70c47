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
