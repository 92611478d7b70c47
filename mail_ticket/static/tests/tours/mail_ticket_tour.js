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
