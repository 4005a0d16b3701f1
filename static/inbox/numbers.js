/* WhatsApp numbers (admins): GET /api/v1/numbers/ and its actions. Each number shows how Meta rates it (quality,
 * messaging limit, throughput, name), the last connection test, what to paste into Meta's app settings, its health
 * history in plain words (the raw event one click away) and what its messages cost. Credentials are typed, never
 * shown: an empty credential field on edit keeps the one stored.
 */
"use strict";

(() => {
  const root = document.getElementById("numbers-app");
  if (!root) return;
  const STRINGS = JSON.parse(document.getElementById("page-strings").textContent);
  const API = "/api/v1/numbers/";

  const UI = window.HelpdeskUI;
  const t = UI.translator(STRINGS);
  const { $, el, setLanguageSwitch } = UI;
  const { request } = UI.api(t, { codes: { number_exists: "error_number_exists", number_in_use: "error_number_in_use" } });
  const when = new Intl.DateTimeFormat(document.documentElement.lang || "en", { dateStyle: "medium", timeStyle: "short" });

  const state = { numbers: [], editing: null, busy: new Set(), results: new Map(), open: new Set() };
  const form = $("[data-testid=number-form]");

  function showError(text) {
    const box = $("[data-testid=numbers-error]");
    box.textContent = text || "";
    box.hidden = !text;
  }

  async function load() {
    try {
      const data = await request("GET", API + "?page_size=100");
      state.numbers = data.results || [];
      showError("");
    } catch (error) {
      showError(error.message);
    }
    root.setAttribute("aria-busy", "false");
    render();
  }

  // ------------------------------------------------------------------ the add / edit form

  function openForm(number) {
    state.editing = number || null;
    form.reset();
    $("[data-testid=number-form-title]").textContent = number ? t("edit_title", { number: "+" + number.display_number })
      : t("add_title");
    const fields = form.elements;
    fields.phone_number_id.disabled = Boolean(number);
    for (const name of ["phone_number_id", "waba_id", "display_number"]) fields[name].value = number ? number[name] : "";
    fields.simulator.checked = Boolean(number && number.simulator);
    for (const name of ["access_token", "app_secret"]) {
      fields[name].required = !number;
      fields[name].placeholder = number ? t("secret_kept") : "";
    }
    fields.verify_token.placeholder = number ? t("verify_kept") : t("verify_generated");
    setFormError("");
    form.hidden = false;
    (number ? fields.waba_id : fields.phone_number_id).focus();
  }

  function closeForm() {
    form.hidden = true;
    state.editing = null;
  }

  function setFormError(text) {
    const box = $("[data-testid=number-form-error]");
    box.textContent = text;
    box.hidden = !text;
  }

  async function saveForm(event) {
    event.preventDefault();
    const fields = form.elements;
    const body = { simulator: fields.simulator.checked };
    for (const name of ["waba_id", "display_number", "access_token", "app_secret", "verify_token"]) {
      const value = fields[name].value.trim();
      if (value || (!state.editing && ["waba_id", "display_number"].includes(name))) body[name] = value;
    }
    if (!state.editing) {
      body.phone_number_id = fields.phone_number_id.value.trim();
      const missing = ["phone_number_id", "waba_id", "display_number", "access_token", "app_secret"]
        .filter((name) => !body[name]);
      if (missing.length) {
        setFormError(t("error_required"));
        fields[missing[0]].focus();
        return;
      }
    }
    const save = $("[data-testid=number-save]");
    save.disabled = true;
    try {
      const saved = state.editing
        ? await request("PATCH", `${API}${state.editing.id}/`, { json: body })
        : await request("POST", API, { json: body });
      upsert(saved);
      closeForm();
      render();
    } catch (error) {
      setFormError(fieldErrors(error) || error.message);
    } finally {
      save.disabled = false;
    }
  }

  /** "phone number id: ...; waba id: ..." from DRF's per-field errors, or "". */
  function fieldErrors(error) {
    const fields = error.data && error.data.fields;
    if (!fields || typeof fields !== "object") return "";
    return Object.entries(fields).map(([name, messages]) => `${t("field_" + name)}: ${[].concat(messages)[0]}`)
      .join("; ");
  }

  function upsert(number) {
    const index = state.numbers.findIndex((item) => item.id === number.id);
    if (index >= 0) state.numbers[index] = number;
    else state.numbers.push(number);
  }

  // ------------------------------------------------------------------ actions of a number

  async function act(number, key, work) {
    if (state.busy.has(number.id)) return;
    state.busy.add(number.id);
    render();
    try {
      await work();
    } catch (error) {
      state.results.set(number.id, { ok: false, text: error.message, key });
    } finally {
      state.busy.delete(number.id);
      render();
    }
  }

  function testConnection(number) {
    return act(number, "test", async () => {
      const answer = await request("POST", `${API}${number.id}/test/`);
      upsert(answer.number);
      state.results.set(number.id, answer.ok ? { ok: true, text: t("test_ok") }
        : { ok: false, text: t("test_failed", { code: answer.error.code ?? "—", message: answer.error.message }) });
    });
  }

  function newVerifyToken(number) {
    if (!window.confirm(t("confirm_verify_token"))) return;
    return act(number, "verify", async () => {
      upsert(await request("POST", `${API}${number.id}/verify-token/`));
      state.results.set(number.id, { ok: true, text: t("verify_token_new") });
    });
  }

  function remove(number) {
    if (!window.confirm(t("confirm_remove", { number: "+" + number.display_number }))) return;
    return act(number, "remove", async () => {
      await request("DELETE", `${API}${number.id}/`);
      state.numbers = state.numbers.filter((item) => item.id !== number.id);
    });
  }

  async function copy(text, button) {
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = t("copied");
    } catch (error) {
      button.textContent = t("copy_failed");
    }
    setTimeout(() => { button.textContent = t("copy"); }, 1500);
  }

  // ------------------------------------------------------------------ history and costs (loaded when opened)

  async function loadHistory(number, box) {
    box.replaceChildren(el("p", { class: "hint", text: t("loading") }));
    try {
      const data = await request("GET", `${API}${number.id}/events/?page_size=50`);
      const rows = data.results || [];
      box.replaceChildren(rows.length ? el("ol", { class: "history", "data-testid": "number-history" },
        ...rows.map((event) => el("li", { "data-testid": "history-item", "data-field": event.field },
          el("time", { datetime: event.received_at, text: when.format(new Date(event.received_at)) }),
          el("span", { class: "history-summary", text: event.summary }),
          el("details", { class: "raw" },
            el("summary", { text: t("raw_event") }),
            el("pre", { text: JSON.stringify(event.payload, null, 2) })))))
        : el("p", { class: "hint", text: t("no_history") }));
    } catch (error) {
      box.replaceChildren(el("p", { class: "form-error", text: error.message }));
    }
  }

  async function loadCosts(number, box) {
    box.replaceChildren(el("p", { class: "hint", text: t("loading") }));
    try {
      const report = await request("GET", `${API}${number.id}/costs/?days=30`);
      if (!report.rows.length) {
        box.replaceChildren(el("p", { class: "hint", text: t("no_costs") }));
        return;
      }
      box.replaceChildren(el("table", { class: "costs", "data-testid": "number-costs" },
        el("thead", {}, el("tr", {}, ...["cost_day", "cost_category", "cost_billable", "cost_free"]
          .map((key) => el("th", { scope: "col", text: t(key) })))),
        el("tbody", {}, ...report.rows.map((row) => el("tr", {},
          el("td", { text: row.day }), el("td", { text: row.category || "—" }),
          el("td", { class: "num", text: row.billable }), el("td", { class: "num", text: row.free }))))),
      el("p", { class: "hint", text: t("costs_hint", { tz: report.time_zone }) }));
    } catch (error) {
      box.replaceChildren(el("p", { class: "form-error", text: error.message }));
    }
  }

  /** A section loaded when opened; it stays open (and is loaded again) when the card is drawn anew. */
  function lazySection(key, title, loader, number) {
    const body = el("div", { class: "lazy-body" });
    const id = `${number.id}:${key}`;
    const section = el("details", { class: "number-section", "data-testid": key, open: state.open.has(id),
      ontoggle: (event) => {
        if (event.target.open) {
          state.open.add(id);
          loader(number, body);
        } else {
          state.open.delete(id);
        }
      } }, el("summary", { text: title }), body);
    return section;
  }

  // ------------------------------------------------------------------ rendering

  function fact(label, value, testid) {
    return el("div", { class: "fact" }, el("dt", { text: label }), el("dd", { "data-testid": testid, text: value }));
  }

  function connectionText(number) {
    const connection = number.connection;
    if (!connection) return t("never_tested");
    const at = when.format(new Date(connection.checked_at));
    if (connection.ok) return t("connection_ok", { when: at });
    const error = connection.error || {};
    return t("connection_failed", { when: at, code: error.code ?? "—", message: error.message || "" });
  }

  function card(number) {
    const busy = state.busy.has(number.id);
    const result = state.results.get(number.id);
    const quality = number.quality || "unknown";
    const copyButton = (text, testid) => el("button", { type: "button", class: "btn small ghost", "data-testid": testid,
      text: t("copy"), onclick: (event) => copy(text, event.currentTarget) });
    return el("article", { class: "settings-card number-card", "data-testid": "number-card", "data-id": number.id,
      "data-pnid": number.phone_number_id },
    el("div", { class: "card-title-row" },
      el("div", {},
        el("h2", { text: "+" + number.display_number }),
        el("p", { class: "hint", "data-testid": "number-verified-name",
          text: number.verified_name || t("name_unknown") })),
      el("div", { class: "badges" },
        el("span", { class: `badge quality-${quality}`, "data-testid": "number-quality", title: t("quality_help"),
          text: t("quality_" + quality) }),
        number.simulator ? el("span", { class: "badge simulator", "data-testid": "number-simulator",
          title: t("simulator_help"), text: t("simulator") }) : null)),
    number.simulator ? el("p", { class: "page-notice", text: t("simulator_help") }) : null,
    el("dl", { class: "facts" },
      fact(t("messaging_limit"), number.messaging_limit_words || number.messaging_limit || t("not_known"),
        "number-limit"),
      fact(t("throughput"), number.throughput || t("not_known"), "number-throughput"),
      fact(t("name_status"), number.name_status || t("not_known"), "number-name-status"),
      fact(t("ids"), `${number.phone_number_id} · WABA ${number.waba_id}`, "number-ids"),
      fact(t("connection"), connectionText(number), "number-connection")),
    result ? el("p", { class: result.ok ? "result ok" : "result failed", role: "status",
      "data-testid": "number-result", text: result.text }) : null,
    el("div", { class: "setup" },
      el("h3", { text: t("meta_setup") }),
      el("p", { class: "hint", text: t("meta_setup_help") }),
      el("div", { class: "copy-row" }, el("span", { class: "label", text: t("webhook_url") }),
        el("code", { "data-testid": "number-webhook-url", text: number.webhook_url }),
        copyButton(number.webhook_url, "copy-webhook-url")),
      el("div", { class: "copy-row" }, el("span", { class: "label", text: t("verify_token") }),
        el("code", { "data-testid": "number-verify-token", text: number.verify_token || t("verify_unknown") }),
        number.verify_token ? copyButton(number.verify_token, "copy-verify-token") : null)),
    el("div", { class: "form-actions left" },
      el("button", { type: "button", class: "btn primary", "data-testid": "number-test", disabled: busy,
        text: busy ? t("working") : t("test_connection"), onclick: () => testConnection(number) }),
      el("button", { type: "button", class: "btn", "data-testid": "number-edit", disabled: busy, text: t("edit"),
        onclick: () => openForm(number) }),
      el("button", { type: "button", class: "btn", "data-testid": "number-verify-new", disabled: busy,
        text: t("new_verify_token"), onclick: () => newVerifyToken(number) }),
      el("button", { type: "button", class: "btn ghost danger", "data-testid": "number-remove", disabled: busy,
        text: t("remove"), onclick: () => remove(number) })),
    lazySection("number-history-section", t("health_history"), loadHistory, number),
    lazySection("number-costs-section", t("costs"), loadCosts, number));
  }

  function render() {
    const list = $("[data-testid=number-list]");
    list.replaceChildren(...(state.numbers.length ? state.numbers.map(card)
      : [el("p", { class: "empty", "data-testid": "numbers-empty", text: t("no_numbers") })]));
  }

  $("[data-testid=number-add]").addEventListener("click", () => openForm(null));
  $("[data-testid=number-cancel]").addEventListener("click", closeForm);
  form.addEventListener("submit", saveForm);
  setLanguageSwitch();
  load();
})();
