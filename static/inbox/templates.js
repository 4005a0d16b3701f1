/* Message templates (admins): the list with Meta's state, category, quality and the reason in plain words, kept
 * live by the websocket (a status webhook shows at once); sync from Meta; and the editor: header, body, footer,
 * buttons and an example per variable, a preview of what the customer will see, and the content check
 * (POST /api/v1/templates/check/) before anything is submitted (POST /api/v1/templates/).
 */
"use strict";

(() => {
  const root = document.getElementById("templates-app");
  if (!root) return;
  const CONFIG = JSON.parse(root.dataset.config || "{}");
  const STRINGS = JSON.parse(document.getElementById("page-strings").textContent);
  const API = "/api/v1/templates/";
  const EDITABLE = new Set(["approved", "rejected", "paused", "draft"]); // what Meta lets us edit (and drafts)

  const UI = window.HelpdeskUI;
  const t = UI.translator(STRINGS);
  const { $, el, setLanguageSwitch, fillTemplate } = UI;
  const variablesOf = UI.templateVariables;
  const { request } = UI.api(t, { codes: { template_exists: "error_template_exists" } });

  const state = { templates: [], buttons: [], examples: {}, checkTimer: null, checkSeq: 0, loadSeq: 0, editing: null };
  const form = $("[data-testid=template-form]");
  const fields = form.elements;

  function message(node, text) {
    node.textContent = text || "";
    node.hidden = !text;
  }

  // ------------------------------------------------------------------ the list

  async function load() {
    const seq = ++state.loadSeq;
    const status = $("[data-testid=templates-filter]").value;
    try {
      const data = await request("GET", `${API}?page_size=100${status ? "&status=" + status : ""}`);
      if (seq !== state.loadSeq) return;
      state.templates = data.results || [];
      message($("[data-testid=templates-error]"), "");
    } catch (error) {
      message($("[data-testid=templates-error]"), error.message);
    }
    root.setAttribute("aria-busy", "false");
    renderList();
  }

  function renderList() {
    const body = $("[data-testid=templates-table] tbody");
    if (!state.templates.length) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: 7, class: "empty", "data-testid": "templates-empty",
        text: t("no_templates") })));
      return;
    }
    body.replaceChildren(...state.templates.map((template) => el("tr", {
      "data-testid": "template-row", "data-name": template.name, "data-status": template.status },
    el("td", {}, el("code", { text: template.name })),
    el("td", { text: template.language }),
    el("td", { text: t("category_" + template.category.toLowerCase()) + (template.correct_category
      ? " → " + t("category_" + template.correct_category.toLowerCase()) : "") }),
    el("td", {}, el("span", { class: `badge status-${template.status}`, "data-testid": "template-status",
      text: t("status_" + template.status) })),
    el("td", {}, el("span", { class: `badge quality-${template.quality}`, text: t("quality_" + template.quality) })),
    el("td", { class: "reason", "data-testid": "template-reason", text: template.reason || "" }),
    el("td", { class: "row-actions" },
      EDITABLE.has(template.status) ? el("button", { type: "button", class: "btn small", "data-testid": "template-edit",
        text: t("edit"), onclick: () => openEditor(template) }) : null,
      el("button", { type: "button", class: "btn small ghost danger", "data-testid": "template-delete",
        text: t("delete"), onclick: () => remove(template) })))));
  }

  async function remove(template) {
    if (!window.confirm(t("confirm_delete", { name: template.name, language: template.language }))) return;
    try {
      await request("DELETE", `${API}${template.id}/`);
      load();
    } catch (error) {
      message($("[data-testid=templates-error]"), error.message);
    }
  }

  async function sync(event) {
    const button = event.currentTarget;
    button.disabled = true;
    try {
      const answer = await request("POST", `${API}sync/`);
      message($("[data-testid=templates-status]"), t("synced", { n: answer.synced }));
      const display = (id) => {
        const number = (CONFIG.numbers || []).find((item) => item.id === id);
        return number ? "+" + number.display_number : String(id);
      };
      message($("[data-testid=templates-error]"), (answer.errors || []).length ? t("sync_failed_for", {
        numbers: answer.errors.map((error) => `${display(error.number)} (${error.message})`).join(", ") }) : "");
      load();
    } catch (error) {
      message($("[data-testid=templates-error]"), error.message);
    } finally {
      button.disabled = false;
    }
  }

  // ------------------------------------------------------------------ the editor

  /** The editor, empty for a new template or filled with `template`'s components to edit it. */
  function openEditor(template) {
    form.reset();
    state.editing = template || null;
    state.buttons = [];
    state.examples = {};
    const numbers = CONFIG.numbers || [];
    fields.number.replaceChildren(...numbers.map((number) => el("option", { value: number.id,
      text: "+" + number.display_number })));
    $("[data-testid=template-number-field]").hidden = numbers.length < 2 || Boolean(template);
    $("[data-testid=template-form-title]").textContent = template ? t("edit_title", { name: template.name })
      : t("new_title");
    for (const name of ["name", "language"]) fields[name].disabled = Boolean(template);
    if (template) fillFrom(template);
    message($("[data-testid=template-form-error]"), "");
    form.hidden = false;
    refresh();
    (template ? fields.body : fields.name).focus();
  }

  function fillFrom(template) {
    fields.name.value = template.name;
    fields.language.value = template.language;
    fields.category.value = template.category;
    if (template.number) fields.number.value = template.number;
    for (const component of template.components || []) {
      const type = String(component.type || "").toUpperCase();
      const example = component.example || {};
      if (type === "HEADER") {
        fields.header_format.value = String(component.format || "TEXT").toUpperCase();
        fields.header_text.value = component.text || "";
        variablesOf(component.text).forEach((name, index) => {
          state.examples[`HEADER:${name}`] = (example.header_text || [])[index] || "";
        });
        fields.header_example.value = (example.header_handle || [])[0] || "";
      } else if (type === "BODY") {
        fields.body.value = component.text || "";
        const positional = (example.body_text || [])[0] || [];
        positional.forEach((value, index) => { state.examples[`BODY:${index + 1}`] = value; });
        for (const item of example.body_text_named_params || []) state.examples[`BODY:${item.param_name}`] = item.example;
      } else if (type === "FOOTER") {
        fields.footer.value = component.text || "";
      } else if (type === "BUTTONS") {
        state.buttons = (component.buttons || []).map((button) => ({
          type: String(button.type || "QUICK_REPLY").toUpperCase(), text: button.text || "", url: button.url || "",
          phone_number: button.phone_number || "",
          example: Array.isArray(button.example) ? button.example[0] || "" : button.example || "" }));
      }
    }
  }

  const sample = (key, name) => (state.examples[`${key}:${name}`] || "").trim();

  function exampleInputs() {
    const box = $("[data-testid=template-examples]");
    const rows = [];
    const headerText = fields.header_format.value === "TEXT" ? fields.header_text.value : "";
    for (const [key, text] of [["HEADER", headerText], ["BODY", fields.body.value]]) {
      for (const name of variablesOf(text)) {
        const id = `${key}:${name}`;
        rows.push(el("label", { class: "example" },
          el("span", { text: key === "HEADER" ? t("example_header", { name }) : t("example_body", { name }) }),
          el("input", { value: state.examples[id] || "", "data-testid": "template-example", "data-variable": name,
            "data-component": key, oninput: (event) => { state.examples[id] = event.target.value; changed(false); } })));
      }
    }
    const focused = document.activeElement;
    const keep = focused && focused.dataset && focused.dataset.testid === "template-example"
      ? `${focused.dataset.component}:${focused.dataset.variable}` : null;
    box.replaceChildren(...rows);
    if (keep) {
      const [component, variable] = keep.split(":");
      const again = box.querySelector(`[data-component="${component}"][data-variable="${CSS.escape(variable)}"]`);
      if (again) again.focus();
    }
  }

  function renderButtons() {
    $("[data-testid=template-buttons]").replaceChildren(...state.buttons.map((button, index) => {
      const input = (key, label, attrs = {}) => el("input", { value: button[key] || "", "aria-label": label,
        placeholder: label, "data-testid": `button-${key}`, ...attrs,
        oninput: (event) => { button[key] = event.target.value; changed(false); } });
      return el("div", { class: "button-row", "data-testid": "template-button" },
        el("span", { class: "badge", text: t("button_" + button.type.toLowerCase()) }),
        button.type === "COPY_CODE" ? null : input("text", t("button_label"), { maxlength: 25 }),
        button.type === "URL" ? input("url", t("button_url"), { type: "url" }) : null,
        button.type === "URL" && variablesOf(button.url).length ? input("example", t("button_url_example")) : null,
        button.type === "PHONE_NUMBER" ? input("phone_number", t("button_phone"), { inputmode: "tel" }) : null,
        button.type === "COPY_CODE" ? input("example", t("button_code_example")) : null,
        el("button", { type: "button", class: "icon-btn", "aria-label": t("remove"), text: "×", onclick: () => {
          state.buttons.splice(index, 1);
          renderButtons();
          changed(true);
        } }));
    }));
  }

  /** The draft in Meta's creation format (the body of check and create). */
  function draft() {
    const components = [];
    const format = fields.header_format.value;
    if (format === "TEXT") {
      const header = { type: "HEADER", format, text: fields.header_text.value };
      const names = variablesOf(header.text);
      if (names.length) header.example = { header_text: names.map((name) => sample("HEADER", name)) };
      components.push(header);
    } else if (format) {
      components.push({ type: "HEADER", format, example: { header_handle: [fields.header_example.value.trim()] } });
    }
    const body = { type: "BODY", text: fields.body.value };
    const names = variablesOf(body.text);
    if (names.length && names.every((name) => /^\d+$/.test(name))) {
      body.example = { body_text: [names.sort((a, b) => a - b).map((name) => sample("BODY", name))] };
    } else if (names.length) {
      body.example = { body_text_named_params: names.map((name) => ({ param_name: name, example: sample("BODY", name) })) };
    }
    components.push(body);
    if (fields.footer.value.trim()) components.push({ type: "FOOTER", text: fields.footer.value });
    if (state.buttons.length) {
      components.push({ type: "BUTTONS", buttons: state.buttons.map((button) => {
        if (button.type === "URL") {
          const out = { type: "URL", text: button.text || "", url: button.url || "" };
          if (variablesOf(button.url).length) out.example = [button.example || ""];
          return out;
        }
        if (button.type === "PHONE_NUMBER") {
          return { type: "PHONE_NUMBER", text: button.text || "", phone_number: button.phone_number || "" };
        }
        if (button.type === "COPY_CODE") return { type: "COPY_CODE", example: button.example || "" };
        return { type: "QUICK_REPLY", text: button.text || "" };
      }) });
    }
    const out = { name: fields.name.value.trim(), language: fields.language.value.trim(),
      category: fields.category.value, components };
    if (fields.number.value) out.number = Number(fields.number.value);
    return out;
  }

  function filled(text, key) {
    return fillTemplate(text, (name) => sample(key, name));
  }

  function renderPreview() {
    const format = fields.header_format.value;
    const bubble = el("div", { class: "wa-bubble" },
      format === "TEXT" && fields.header_text.value ? el("strong", { class: "wa-header",
        text: filled(fields.header_text.value, "HEADER") }) : null,
      format && format !== "TEXT" ? el("div", { class: "wa-media", text: t("media_" + format.toLowerCase()) }) : null,
      el("div", { class: "wa-body", "data-testid": "preview-body",
        text: filled(fields.body.value, "BODY") || t("preview_empty") }),
      fields.footer.value ? el("div", { class: "wa-footer", text: fields.footer.value }) : null);
    const buttons = state.buttons.map((button) => el("div", { class: "wa-button",
      text: button.type === "COPY_CODE" ? t("button_copy_code") : button.text || "…" }));
    $("[data-testid=template-preview]").replaceChildren(bubble, ...buttons);
  }

  function renderFindings(findings) {
    const box = $("[data-testid=template-findings]");
    if (!findings.length) {
      box.replaceChildren(el("p", { class: "finding ok", "data-testid": "findings-clean", text: t("check_clean") }));
      return;
    }
    box.replaceChildren(el("ul", {}, ...findings.map((finding) => el("li", {
      class: `finding ${finding.severity}`, "data-testid": "finding", "data-code": finding.code,
      "data-severity": finding.severity },
    el("strong", { text: finding.severity === "error" ? t("finding_error") : t("finding_warning") }),
    " ", finding.component ? el("span", { class: "finding-part", text: finding.component + ": " }) : null,
    finding.message))));
  }

  async function check() {
    const seq = ++state.checkSeq;
    try {
      const answer = await request("POST", `${API}check/`, { json: draft() });
      if (seq === state.checkSeq) {
        renderFindings(answer.findings);
        $("[data-testid=template-submit]").disabled = answer.blocking;
      }
    } catch (error) {
      if (seq === state.checkSeq) message($("[data-testid=template-form-error]"), error.message);
    }
  }

  /** Anything typed: the preview now, the check a moment after the typing stops. */
  function changed(structure) {
    if (structure) exampleInputs();
    renderPreview();
    clearTimeout(state.checkTimer);
    state.checkTimer = setTimeout(check, 400);
  }

  function refresh() {
    const format = fields.header_format.value;
    fields.header_text.hidden = format !== "TEXT";
    fields.header_example.hidden = !format || format === "TEXT";
    renderButtons();
    changed(true);
  }

  async function submit(event) {
    event.preventDefault();
    clearTimeout(state.checkTimer);
    const button = $("[data-testid=template-submit]");
    button.disabled = true;
    message($("[data-testid=template-form-error]"), "");
    try {
      const body = draft();
      const template = state.editing
        ? await request("PATCH", `${API}${state.editing.id}/`,
          { json: { components: body.components, category: body.category } })
        : await request("POST", API, { json: body });
      form.hidden = true;
      message($("[data-testid=templates-status]"), t("submitted", { name: template.name }));
      load();
    } catch (error) {
      if (error.data && Array.isArray(error.data.findings)) renderFindings(error.data.findings);
      message($("[data-testid=template-form-error]"), error.message);
      button.disabled = false;
    }
  }

  // ------------------------------------------------------------------ the tenant's word lists

  const LISTS = ["prohibited", "promotional", "opt_out", "url_shorteners"];

  async function loadWordLists() {
    try {
      const lists = await request("GET", `${API}words/`);
      $("[data-testid=word-list-grid]").replaceChildren(...LISTS.map((name) => el("label", { class: "word-list" },
        el("span", { class: "label", text: t("list_" + name) }),
        el("span", { class: "hint", text: t("built_in_count", { n: lists[name].built_in.length }),
          title: lists[name].built_in.join(", ") }),
        el("textarea", { rows: 5, "data-testid": "word-list", "data-list": name, spellcheck: "false",
          text: lists[name].own.join("\n") }))));
    } catch (error) {
      message($("[data-testid=word-lists-error]"), error.message);
    }
  }

  async function saveWordLists() {
    const body = {};
    root.querySelectorAll("[data-testid=word-list]").forEach((area) => {
      body[area.dataset.list] = area.value.split("\n").map((line) => line.trim()).filter(Boolean);
    });
    try {
      await request("PUT", `${API}words/`, { json: body });
      message($("[data-testid=word-lists-error]"), "");
      $("[data-testid=word-lists-status]").textContent = t("word_lists_saved");
      loadWordLists();
    } catch (error) {
      message($("[data-testid=word-lists-error]"), error.message);
    }
  }

  // ------------------------------------------------------------------ wiring

  form.addEventListener("input", (event) => {
    const name = event.target.name;
    if (name === "header_format") refresh();
    else if (["body", "header_text"].includes(name)) changed(true);
    else if (name) changed(false);
  });
  form.addEventListener("change", (event) => { if (event.target.name === "header_format") refresh(); });
  form.querySelectorAll("[data-add-button]").forEach((button) => button.addEventListener("click", () => {
    state.buttons.push({ type: button.dataset.addButton });
    renderButtons();
    changed(true);
  }));
  form.addEventListener("submit", submit);
  $("[data-testid=template-check]").addEventListener("click", check);
  $("[data-testid=template-cancel]").addEventListener("click", () => { form.hidden = true; });
  $("[data-testid=template-new]").addEventListener("click", () => openEditor(null));
  $("[data-testid=templates-sync]").addEventListener("click", sync);
  $("[data-testid=templates-filter]").addEventListener("change", load);
  // Meta's verdicts arrive by webhook: the list follows them live (and catches up after a reconnect).
  UI.live.subscribe((frame) => {
    if (frame.type === "template.updated" || frame.type === "ready") load();
  });
  $("[data-testid=word-lists]").addEventListener("toggle", (event) => { if (event.target.open) loadWordLists(); });
  $("[data-testid=word-lists-save]").addEventListener("click", saveWordLists);
  setLanguageSwitch();
  load();
})();
