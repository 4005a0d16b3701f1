/* Broadcasts (supervisors and admins): GET|POST /api/v1/broadcasts/ and their actions. A new broadcast is saved
 * as a draft and its preview says exactly who is skipped and why, the share of the daily limit and the cost
 * before anything is sent; while it sends, its progress and counts are read again every second. Contacts are
 * imported from CSV here too (POST /api/v1/contacts/import/), with the rows refused and why.
 */
"use strict";

(() => {
  const root = document.getElementById("broadcasts-app");
  if (!root) return;
  const CONFIG = JSON.parse(root.dataset.config || "{}");
  const STRINGS = JSON.parse(document.getElementById("page-strings").textContent);
  const API = "/api/v1/broadcasts/";
  const UI = window.HelpdeskUI;
  const t = UI.translator(STRINGS);
  const { $, el, setLanguageSwitch, templateVariables } = UI;
  const { request } = UI.api(t);
  const LANG = document.documentElement.lang || "en";
  const count = new Intl.NumberFormat(LANG);
  const when = new Intl.DateTimeFormat(LANG, { dateStyle: "medium", timeStyle: "short" });
  const HANDLED = ["sent", "delivered", "read", "replied", "failed"];
  const REASONS = ["invalid_number", "duplicate", "opted_out", "marketing_stopped", "no_opt_in", "frequency_cap"];

  const state = { broadcasts: [], labels: [], templates: [], selected: null, preview: null, recipients: null,
    filter: "", timer: null, confirmNeeded: null };
  const form = $("[data-testid=broadcast-form]");
  const detail = $("[data-testid=broadcast-detail]");

  function showError(text) {
    const box = $("[data-testid=broadcasts-error]");
    box.textContent = text || "";
    box.hidden = !text;
  }

  async function load() {
    try {
      const [page, labels] = await Promise.all([request("GET", API + "?page_size=50"), request("GET", "/api/v1/labels/")]);
      state.broadcasts = page.results || [];
      state.labels = Array.isArray(labels) ? labels : [];
      showError("");
    } catch (error) {
      showError(error.message);
    }
    root.setAttribute("aria-busy", "false");
    renderList();
  }

  // ------------------------------------------------------------------ the list

  function progressOf(broadcast) {
    const counts = broadcast.counts || {};
    const total = (counts.total || 0) - (counts.skipped || 0);
    const done = HANDLED.reduce((sum, key) => sum + (counts[key] || 0), 0);
    return { total, done, share: total ? done / total : 0 };
  }

  function progressBar(broadcast) {
    const { total, done, share } = progressOf(broadcast);
    return el("div", { class: "progress", "data-testid": "broadcast-progress", role: "progressbar",
      "aria-valuemin": "0", "aria-valuemax": String(total), "aria-valuenow": String(done),
      "data-done": String(done), "data-total": String(total) },
    el("span", { class: "progress-bar", style: `width:${Math.round(share * 100)}%` }),
    el("span", { class: "progress-text", text: t("progress", { done: count.format(done), total: count.format(total) }) }));
  }

  function renderList() {
    const box = $("[data-testid=broadcast-list]");
    if (!state.broadcasts.length) {
      box.replaceChildren(el("p", { class: "empty", text: t("no_broadcasts") }));
      return;
    }
    box.replaceChildren(...state.broadcasts.map((broadcast) => el("button", {
      type: "button", class: "broadcast-item" + (state.selected && state.selected.id === broadcast.id ? " selected" : ""),
      "data-testid": "broadcast-item", "data-id": String(broadcast.id), "data-status": broadcast.status,
      onclick: () => select(broadcast.id) },
    el("span", { class: "broadcast-name", text: broadcast.name }),
    el("span", { class: "status-chip " + broadcast.status, text: t("status_" + broadcast.status) }),
    progressBar(broadcast))));
  }

  // ------------------------------------------------------------------ the form

  async function openForm() {
    form.reset();
    setFormError("");
    const numbers = CONFIG.numbers || [];
    form.elements.number.replaceChildren(...numbers.map((number) => el("option", { value: String(number.id),
      text: "+" + number.display_number })));
    $("[data-testid=broadcast-labels]").replaceChildren(...state.labels.map((label) => el("label", { class: "check" },
      el("input", { type: "checkbox", name: "label", value: String(label.id), "data-testid": "broadcast-label" }),
      " ", el("span", { class: "label-dot", style: `background:${label.color}` }), " " + label.name)));
    form.hidden = false;
    form.elements.name.focus();
    await loadTemplates();
  }

  async function loadTemplates() {
    const number = form.elements.number.value;
    try {
      const page = await request("GET", `/api/v1/templates/?status=approved&page_size=100&number=${number}`);
      state.templates = page.results || [];
    } catch (error) {
      state.templates = [];
      setFormError(error.message);
    }
    form.elements.template.replaceChildren(...state.templates.map((template) => el("option", { value: String(template.id),
      text: `${template.name} (${template.language}, ${template.category.toLowerCase()})` })));
    if (!state.templates.length) setFormError(t("no_templates"));
    showVariables();
  }

  function chosenTemplate() {
    return state.templates.find((template) => String(template.id) === form.elements.template.value) || null;
  }

  function bodyText(template) {
    const body = (template && template.components || []).find((part) => String(part.type).toUpperCase() === "BODY");
    return body ? body.text || "" : "";
  }

  function showVariables() {
    const template = chosenTemplate();
    const text = bodyText(template);
    $("[data-testid=broadcast-template-text]").textContent = text;
    $("[data-testid=broadcast-variables]").replaceChildren(...templateVariables(text).map((name, index) => el("label", {},
      t("variable", { n: name }),
      el("input", { name: "variable", "data-name": name, "data-testid": "broadcast-variable", placeholder: t("variable_hint"),
        value: index === 0 ? "{{contact.name}}" : "" }))));
  }

  function setFormError(text) {
    const box = $("[data-testid=broadcast-form-error]");
    box.textContent = text || "";
    box.hidden = !text;
  }

  async function create(event) {
    event.preventDefault();
    const template = chosenTemplate();
    const labels = [...form.querySelectorAll("[data-testid=broadcast-label]:checked")].map((box) => Number(box.value));
    const waIds = form.elements.wa_ids.value.split(/[\n,;]+/).map((line) => line.trim()).filter(Boolean);
    if (!labels.length && !waIds.length) {
      setFormError(t("error_audience"));
      return;
    }
    const named = template && template.parameter_format === "NAMED";
    const parameters = [...form.querySelectorAll("[data-testid=broadcast-variable]")].map((input) => ({
      type: "text", text: input.value, ...(named ? { parameter_name: input.dataset.name } : {}) }));
    const audience = {};
    if (labels.length) audience.labels = labels;
    if (waIds.length) audience.wa_ids = waIds;
    const body = {
      name: form.elements.name.value.trim(),
      number: Number(form.elements.number.value),
      template: { name: template ? template.name : "", language: template ? template.language : "",
        components: parameters.length ? [{ type: "body", parameters }] : [] },
      audience,
    };
    if (form.elements.scheduled_at.value) body.scheduled_at = form.elements.scheduled_at.value;
    try {
      const created = await request("POST", API, { json: body });
      form.hidden = true;
      state.broadcasts.unshift(created);
      renderList();
      await select(created.id, t("created"));
    } catch (error) {
      setFormError(error.message);
    }
  }

  // ------------------------------------------------------------------ one broadcast

  async function select(id, notice) {
    state.confirmNeeded = null;
    try {
      state.selected = await request("GET", `${API}${id}/`);
      state.preview = ["draft", "scheduled"].includes(state.selected.status)
        ? await request("GET", `${API}${id}/preview/`) : null;
      await loadRecipients();
    } catch (error) {
      showError(error.message);
      return;
    }
    renderDetail(notice);
    renderList();
    follow();
  }

  async function loadRecipients() {
    const filter = state.filter ? `&status=${state.filter}` : "";
    state.recipients = await request("GET", `${API}${state.selected.id}/recipients/?page_size=50${filter}`);
  }

  function previewBlock() {
    const preview = state.preview;
    if (!preview) return null;
    const skipped = REASONS.filter((reason) => preview.skipped[reason]);
    const limit = preview.daily_limit || {};
    const cost = preview.cost || {};
    return el("div", { class: "preview", "data-testid": "broadcast-preview" },
      el("h3", { text: t("preview_title") }),
      el("p", { class: "will-receive", "data-testid": "preview-recipients", "data-count": String(preview.recipients),
        text: t("will_receive", { n: count.format(preview.recipients) }) }),
      el("h4", { text: t("skipped_title") }),
      skipped.length ? el("ul", { class: "reasons" }, ...skipped.map((reason) => el("li", {
        "data-testid": "preview-skipped", "data-reason": reason, "data-count": String(preview.skipped[reason]) },
      el("strong", { text: count.format(preview.skipped[reason]) }), " " + t("reason_" + reason))))
        : el("p", { text: t("nobody_skipped") }),
      el("p", { "data-testid": "preview-limit", text: limit.limit
        ? t("daily_limit", { used: count.format(limit.used_last_24h), n: count.format(limit.this_broadcast),
          limit: count.format(limit.limit) }) : t("daily_limit_unknown") }),
      limit.fits === false ? el("p", { class: "warning", text: t("daily_limit_over") }) : null,
      cost.per_message !== null && cost.per_message !== undefined ? el("p", { "data-testid": "preview-cost",
        text: t("cost", { amount: cost.estimate, category: String(cost.category).toLowerCase(), rate: cost.per_message,
          basis: cost.basis }) }) : null);
  }

  function actionButton(label, testid, run, kind) {
    return el("button", { type: "button", class: "btn " + (kind || ""), "data-testid": testid, text: label, onclick: run });
  }

  function renderDetail(notice) {
    const broadcast = state.selected;
    if (!broadcast) {
      detail.hidden = true;
      return;
    }
    detail.hidden = false;
    const counts = broadcast.counts || {};
    const actions = [];
    if (broadcast.status === "draft") {
      actions.push(actionButton(t(broadcast.scheduled_at ? "schedule" : "start"), "broadcast-start", () => change("start"),
        "primary"));
    }
    if (state.confirmNeeded && CONFIG.role === "admin") {
      actions.push(actionButton(t("start_anyway"), "broadcast-start-confirm", () => change("start", { confirm: true }), "primary"));
    }
    if (["running", "scheduled"].includes(broadcast.status)) actions.push(actionButton(t("pause"), "broadcast-pause", () => change("pause")));
    if (broadcast.status === "paused") actions.push(actionButton(t("resume"), "broadcast-resume", () => change("resume"), "primary"));
    if (!["completed", "cancelled"].includes(broadcast.status)) {
      actions.push(actionButton(t("cancel"), "broadcast-cancel", () => {
        if (window.confirm(t("confirm_cancel"))) change("cancel");
      }, "ghost"));
    }
    const shownCounts = ["queued", ...HANDLED, "skipped"].filter((key) => counts[key]);
    detail.replaceChildren(
      el("div", { class: "card-title-row" },
        el("h2", { "data-testid": "broadcast-title", text: broadcast.name }),
        el("span", { class: "status-chip " + broadcast.status, "data-testid": "broadcast-status",
          "data-status": broadcast.status, text: t("status_" + broadcast.status) })),
      notice ? el("p", { class: "notice", role: "status", text: notice }) : null,
      broadcast.paused_reason ? el("p", { class: "warning", "data-testid": "broadcast-paused-reason",
        text: t("paused_because", { reason: broadcast.paused_reason }) }) : null,
      state.confirmNeeded ? el("p", { class: "warning", "data-testid": "broadcast-confirm-needed", text: state.confirmNeeded }) : null,
      broadcast.scheduled_at ? el("p", { class: "hint", text: when.format(new Date(broadcast.scheduled_at)) }) : null,
      previewBlock(),
      broadcast.status !== "draft" ? progressBar(broadcast) : null,
      shownCounts.length ? el("dl", { class: "count-grid", "data-testid": "broadcast-counts" }, ...shownCounts.map((key) => el("div", {
        "data-testid": "count-" + key, "data-count": String(counts[key]) },
      el("dd", { text: count.format(counts[key]) }), el("dt", { text: t("recipient_" + key) })))) : null,
      el("div", { class: "form-actions" }, ...actions),
      recipientsBlock());
  }

  function recipientsBlock() {
    const page = state.recipients;
    if (!page || state.selected.status === "draft") return null;
    const filter = el("select", { "data-testid": "recipient-filter", "aria-label": t("all_recipients"),
      onchange: async (event) => {
        state.filter = event.target.value;
        await loadRecipients();
        renderDetail();
      } },
    el("option", { value: "", text: t("all_recipients") }),
    ...["queued", "skipped", ...HANDLED].map((key) => el("option", { value: key, text: t("recipient_" + key) })));
    filter.value = state.filter;
    return el("div", { class: "recipients" }, filter,
      el("table", { class: "data-table", "data-testid": "recipient-table" },
        el("tbody", {}, ...(page.results || []).map((row) => el("tr", { "data-testid": "recipient-row", "data-status": row.status },
          el("td", { text: "+" + row.wa_id.replace(/^\+/, "") }),
          el("td", { text: t("recipient_" + row.status) }),
          el("td", { class: "cell-sub", text: row.reason ? t("reason_" + row.reason)
            : row.error_code ? `${row.error_code} ${row.error_title}` : "" }))))));
  }

  async function change(action, body) {
    const id = state.selected.id;
    try {
      state.selected = await request("POST", `${API}${id}/${action}/`, { json: body || {} });
      state.confirmNeeded = null;
      state.preview = null;
      await loadRecipients();
    } catch (error) {
      if (error.data && error.data.code === "confirmation_required") state.confirmNeeded = error.message;
      else showError(error.message);
    }
    replaceInList(state.selected);
    renderDetail();
    follow();
  }

  function replaceInList(broadcast) {
    state.broadcasts = state.broadcasts.map((item) => (item.id === broadcast.id ? broadcast : item));
    renderList();
  }

  /** While it sends (or waits for its time), read it again every second: the progress and counts move live. */
  function follow() {
    clearTimeout(state.timer);
    if (!state.selected || !["running", "scheduled"].includes(state.selected.status)) return;
    state.timer = setTimeout(async () => {
      try {
        state.selected = await request("GET", `${API}${state.selected.id}/`);
        await loadRecipients();
        replaceInList(state.selected);
        renderDetail();
      } catch (error) {
        showError(error.message);
      }
      follow();
    }, 1000);
  }

  // ------------------------------------------------------------------ contacts import

  async function importContacts(event) {
    event.preventDefault();
    const box = $("[data-testid=import-report]");
    const file = $("[data-testid=import-file]").files[0];
    if (!file) return;
    const data = new FormData();
    data.append("file", file);
    try {
      const report = await request("POST", "/api/v1/contacts/import/", { multipart: data });
      box.replaceChildren(
        el("p", { "data-testid": "import-summary", text: t("import_done", { created: report.created, updated: report.updated,
          opted_in: report.opted_in, rejected: report.rejected.length }) }),
        report.rejected.length ? el("ul", {}, ...report.rejected.map((row) => el("li", { "data-testid": "import-rejected",
          "data-reason": row.reason, text: `${t("line", { line: row.line })}: ${row.detail}` }))) : null);
    } catch (error) {
      box.replaceChildren(el("p", { class: "warning", text: error.message }));
    }
    box.hidden = false;
  }

  // ------------------------------------------------------------------ events

  setLanguageSwitch();
  $("[data-testid=broadcast-new]").addEventListener("click", openForm);
  $("[data-testid=broadcast-form-cancel]").addEventListener("click", () => { form.hidden = true; });
  form.addEventListener("submit", create);
  form.elements.number.addEventListener("change", loadTemplates);
  form.elements.template.addEventListener("change", showVariables);
  $("[data-testid=import-form]").addEventListener("submit", importContacts);
  load();
})();
