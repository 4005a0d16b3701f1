/* Support settings: time zone, reopen window, warnings, auto-assignment, the customers' language, the satisfaction
 * question, business hours, holidays and SLA targets,
 * from GET /api/v1/settings/support/. Admins save the sections they changed with PATCH; supervisors only look (the
 * server refuses their PATCH too). On a refusal the form keeps what was typed and shows the server's reason.
 */
"use strict";

(() => {
  const root = document.getElementById("settings-app");
  if (!root) return;
  const CONFIG = JSON.parse(root.dataset.config || "{}");
  const STRINGS = JSON.parse(document.getElementById("page-strings").textContent);
  const LANG = document.documentElement.lang || "en";
  const URL_ = "/api/v1/settings/support/";
  const EDITABLE = CONFIG.role === "admin";
  const PRIORITIES = ["low", "normal", "high", "urgent"];
  const TARGETS = ["first_response_seconds", "next_response_seconds", "resolution_seconds"];
  const UNITS = { minutes: 60, hours: 3600 };
  const SECTIONS = ["timezone", "reopen_window_hours", "window_warning_minutes", "sla_warning_percent", "auto_assign",
    "customer_language", "csat_enabled", "business_hours", "holidays", "sla_policies"];

  // ------------------------------------------------------------------ helpers

  const UI = window.HelpdeskUI;
  const t = UI.translator(STRINGS);
  const { $, el, setLanguageSwitch } = UI;
  const api = UI.api(t);
  const request = (method, json) => api.request(method, URL_, { json });

  const weekdayNames = (() => {
    // 2024-01-01 was a Monday.
    const format = new Intl.DateTimeFormat(LANG, { weekday: "long", timeZone: "UTC" });
    return [0, 1, 2, 3, 4, 5, 6].map((day) => format.format(new Date(Date.UTC(2024, 0, 1 + day))));
  })();

  function timeZones() {
    let zones = [];
    try {
      zones = Intl.supportedValuesOf("timeZone");
    } catch (error) {
      zones = [];
    }
    if (!zones.includes("UTC")) zones = ["UTC", ...zones];
    return zones;
  }

  function offsetOf(zone) {
    try {
      const parts = new Intl.DateTimeFormat("en-US", { timeZone: zone, timeZoneName: "shortOffset" })
        .formatToParts(new Date());
      const name = parts.find((part) => part.type === "timeZoneName");
      return name ? name.value.replace("GMT", "UTC") : "";
    } catch (error) {
      return "";
    }
  }

  // ------------------------------------------------------------------ state

  const state = {
    saved: null, // the document as the server has it
    hours: [[], [], [], [], [], [], []], // per weekday: [{opens, closes}]
    holidays: [], // [{date, name}]
    saving: false,
    savedAt: null,
  };
  const form = $("[data-testid=settings-form]");

  /** Seconds as a value and unit for the form: whole hours in hours, anything else in minutes. */
  function splitSeconds(seconds) {
    if (seconds === null || seconds === undefined) return { value: "", unit: "hours" };
    if (seconds % 3600 === 0) return { value: String(seconds / 3600), unit: "hours" };
    return { value: String(Math.round((seconds / 60) * 100) / 100), unit: "minutes" };
  }

  // ------------------------------------------------------------------ filling the form

  function fill(doc) {
    state.saved = doc;
    form.elements.timezone.value = doc.timezone;
    form.elements.reopen_window_hours.value = doc.reopen_window_hours;
    form.elements.window_warning_minutes.value = doc.window_warning_minutes;
    form.elements.sla_warning_percent.value = doc.sla_warning_percent;
    form.elements.auto_assign.checked = Boolean(doc.auto_assign);
    form.elements.customer_language.value = doc.customer_language || "id";
    form.elements.csat_enabled.checked = Boolean(doc.csat_enabled);
    state.hours = [[], [], [], [], [], [], []];
    for (const row of doc.business_hours || []) {
      if (row.weekday >= 0 && row.weekday <= 6) state.hours[row.weekday].push({ opens: row.opens, closes: row.closes });
    }
    state.holidays = (doc.holidays || []).map((row) => ({ date: row.date, name: row.name || "" }));
    renderHours();
    renderHolidays();
    renderPolicies(doc.sla_policies || []);
    const list = $("#timezone-list");
    const zones = timeZones();
    if (doc.timezone && !zones.includes(doc.timezone)) zones.unshift(doc.timezone);
    if (!list.children.length) {
      list.replaceChildren(...zones.map((zone) => el("option", { value: zone, text: offsetOf(zone) })));
    }
    setEditable();
    updateDirty();
  }

  function setEditable() {
    form.querySelectorAll("input, select, textarea, button").forEach((node) => {
      if (!EDITABLE) node.disabled = true;
    });
    $("[data-testid=save-bar]").hidden = !EDITABLE;
    $("[data-testid=copy-monday]").hidden = !EDITABLE;
    $("[data-testid=add-holiday]").hidden = !EDITABLE;
  }

  function renderHours() {
    const box = $("[data-testid=business-hours]");
    const focused = document.activeElement && document.activeElement.dataset.focusKey;
    box.replaceChildren(...state.hours.map((intervals, weekday) => {
      const rows = intervals.map((interval, index) => el("div", { class: "interval", "data-testid": "hours-interval" },
        el("input", { type: "time", value: interval.opens, required: true, "data-focus-key": `h${weekday}-${index}-o`,
          "aria-label": t("opens_on", { day: weekdayNames[weekday] }), "data-testid": "hours-opens",
          oninput: (event) => { interval.opens = event.target.value; updateDirty(); } }),
        el("span", { class: "dash", "aria-hidden": "true", text: "–" }),
        el("input", { type: "time", value: interval.closes, required: true, "data-focus-key": `h${weekday}-${index}-c`,
          "aria-label": t("closes_on", { day: weekdayNames[weekday] }), "data-testid": "hours-closes",
          oninput: (event) => { interval.closes = event.target.value; updateDirty(); } }),
        interval.closes === "00:00" ? el("span", { class: "midnight", text: t("midnight") }) : null,
        EDITABLE ? el("button", { type: "button", class: "icon-btn", "data-testid": "hours-remove",
          "aria-label": t("remove_hours", { day: weekdayNames[weekday] }), title: t("remove"), text: "×",
          onclick: () => {
            intervals.splice(index, 1);
            renderHours();
            updateDirty();
            const next = $(`[data-testid=hours-add][data-weekday="${weekday}"]`);
            if (next) next.focus();
          } }) : null));
      return el("div", { class: "day-row" + (intervals.length ? "" : " closed"), "data-testid": "hours-day",
        "data-weekday": weekday },
      el("div", { class: "day-name", text: weekdayNames[weekday] }),
      el("div", { class: "day-intervals" },
        ...(rows.length ? rows : [el("span", { class: "closed-label", text: t("closed_all_day") })]),
        EDITABLE ? el("button", { type: "button", class: "btn small ghost add", "data-testid": "hours-add",
          "data-weekday": weekday, text: "+ " + t(intervals.length ? "add_interval" : "add_hours"),
          onclick: () => {
            intervals.push(nextInterval(intervals));
            renderHours();
            updateDirty();
            const inputs = document.querySelectorAll(`[data-weekday="${weekday}"] [data-testid=hours-opens]`);
            if (inputs.length) inputs[inputs.length - 1].focus();
          } }) : null));
    }));
    if (focused) {
      const again = box.querySelector(`[data-focus-key="${focused}"]`);
      if (again) again.focus();
    }
    setEditable();
  }

  function nextInterval(intervals) {
    if (!intervals.length) return { opens: "09:00", closes: "17:00" };
    const last = intervals[intervals.length - 1].closes || "17:00";
    if (last === "00:00") return { opens: "08:00", closes: "09:00" };
    const [h, m] = last.split(":").map(Number);
    const start = Math.min(23, h + 1);
    const end = Math.min(24, start + 3);
    const pad = (n) => String(n).padStart(2, "0");
    return { opens: `${pad(start)}:${pad(m)}`, closes: end >= 24 ? "00:00" : `${pad(end)}:${pad(m)}` };
  }

  function renderHolidays() {
    const box = $("[data-testid=holidays]");
    if (!state.holidays.length) {
      box.replaceChildren(el("p", { class: "empty-line", text: t("no_holidays") }));
      setEditable();
      return;
    }
    box.replaceChildren(...state.holidays.map((holiday, index) => el("div", { class: "holiday",
      "data-testid": "holiday" },
    el("input", { type: "date", value: holiday.date, required: true, "aria-label": t("holiday_date"),
      "data-testid": "holiday-date", oninput: (event) => { holiday.date = event.target.value; updateDirty(); } }),
    el("input", { type: "text", value: holiday.name, maxlength: 200, placeholder: t("holiday_name_placeholder"),
      "aria-label": t("holiday_name"), "data-testid": "holiday-name",
      oninput: (event) => { holiday.name = event.target.value; updateDirty(); } }),
    EDITABLE ? el("button", { type: "button", class: "icon-btn", "data-testid": "holiday-remove",
      "aria-label": t("remove_holiday"), title: t("remove"), text: "×", onclick: () => {
        state.holidays.splice(index, 1);
        renderHolidays();
        updateDirty();
        $("[data-testid=add-holiday]").focus();
      } }) : null)));
    setEditable();
  }

  function renderPolicies(policies) {
    const body = $("[data-testid=sla-policies] tbody");
    const byPriority = new Map(policies.map((policy) => [policy.priority, policy]));
    body.replaceChildren(...PRIORITIES.map((priority) => {
      const policy = byPriority.get(priority) || {};
      return el("tr", { "data-priority": priority, "data-testid": "sla-row" },
        el("th", { scope: "row" }, el("span", { class: "prio " + priority, text: t("priority_" + priority) })),
        ...TARGETS.map((target) => {
          const { value, unit } = splitSeconds(policy[target]);
          const label = t("target_label", { target: t("target_" + target), priority: t("priority_" + priority) });
          return el("td", {},
            el("span", { class: "target" },
              el("input", { type: "number", min: "1", step: "any", value, placeholder: t("no_target"),
                "aria-label": label, "data-target": target, "data-testid": `sla-${priority}-${target}`,
                oninput: updateDirty }),
              el("select", { "aria-label": t("unit_of", { label }), "data-unit": target, onchange: updateDirty },
                ...Object.keys(UNITS).map((name) => el("option", { value: name, selected: name === unit,
                  text: t("unit_" + name) })))));
        }));
    }));
    setEditable();
  }

  // ------------------------------------------------------------------ reading the form

  /** The form as a settings document, and what is wrong with it (messages, first bad field). */
  function collect(mark) {
    const problems = [];
    let firstBad = null;
    const bad = (node, message) => {
      problems.push(message);
      if (!firstBad) firstBad = node;
      if (mark && node !== form) node.setAttribute("aria-invalid", "true");
    };
    if (mark) form.querySelectorAll("[aria-invalid]").forEach((node) => node.removeAttribute("aria-invalid"));
    const whole = (name, low, high, label) => {
      const input = form.elements[name];
      const value = Number(input.value);
      if (input.value === "" || !Number.isInteger(value) || value < low || value > high) {
        bad(input, t("error_range", { label, low, high }));
      }
      return value;
    };
    const timezone = form.elements.timezone.value.trim();
    if (!timezone) bad(form.elements.timezone, t("error_timezone"));
    const doc = {
      timezone,
      reopen_window_hours: whole("reopen_window_hours", 1, 720, t("label_reopen")),
      window_warning_minutes: whole("window_warning_minutes", 1, 1440, t("label_window_warning")),
      sla_warning_percent: whole("sla_warning_percent", 1, 99, t("label_sla_warning")),
      auto_assign: form.elements.auto_assign.checked,
      customer_language: form.elements.customer_language.value,
      csat_enabled: form.elements.csat_enabled.checked,
      business_hours: [],
      holidays: [],
      sla_policies: [],
    };
    state.hours.forEach((intervals, weekday) => {
      const inputs = document.querySelectorAll(`[data-testid=hours-day][data-weekday="${weekday}"] input`);
      const sorted = [...intervals].sort((a, b) => a.opens.localeCompare(b.opens));
      intervals.forEach((interval, index) => {
        if (!/^\d\d:\d\d$/.test(interval.opens) || !/^\d\d:\d\d$/.test(interval.closes)) {
          bad(inputs[index * 2] || form, t("error_time", { day: weekdayNames[weekday] }));
        } else if (interval.closes !== "00:00" && interval.closes <= interval.opens) {
          bad(inputs[index * 2 + 1] || form, t("error_hours_order", { day: weekdayNames[weekday],
            opens: interval.opens, closes: interval.closes }));
        }
        doc.business_hours.push({ weekday, opens: interval.opens, closes: interval.closes });
      });
      for (let i = 1; i < sorted.length; i += 1) {
        if (sorted[i - 1].closes === "00:00" || sorted[i].opens < sorted[i - 1].closes) {
          bad(inputs[0] || form, t("error_overlap", { day: weekdayNames[weekday] }));
          break;
        }
      }
    });
    doc.business_hours.sort((a, b) => a.weekday - b.weekday || a.opens.localeCompare(b.opens));
    const seen = new Set();
    const dateInputs = document.querySelectorAll("[data-testid=holiday-date]");
    state.holidays.forEach((holiday, index) => {
      if (!holiday.date && !holiday.name.trim()) return; // an empty row is simply left out
      if (!/^\d{4}-\d{2}-\d{2}$/.test(holiday.date)) {
        bad(dateInputs[index] || form, t("error_holiday_date"));
        return;
      }
      if (seen.has(holiday.date)) bad(dateInputs[index] || form, t("error_holiday_twice", { date: holiday.date }));
      seen.add(holiday.date);
      doc.holidays.push({ date: holiday.date, name: holiday.name.trim() });
    });
    doc.holidays.sort((a, b) => a.date.localeCompare(b.date));
    for (const priority of PRIORITIES) {
      const row = $(`[data-testid=sla-policies] tr[data-priority=${priority}]`);
      const policy = { priority };
      for (const target of TARGETS) {
        const input = $(`input[data-target=${target}]`, row);
        const unit = UNITS[$(`select[data-unit=${target}]`, row).value] || 60;
        if (input.value.trim() === "") {
          policy[target] = null;
          continue;
        }
        const seconds = Math.round(Number(input.value) * unit);
        if (!Number.isFinite(seconds) || seconds <= 0) {
          bad(input, t("error_target", { target: t("target_" + target), priority: t("priority_" + priority) }));
        }
        policy[target] = seconds;
      }
      doc.sla_policies.push(policy);
    }
    return { doc, problems, firstBad };
  }

  function normalized(doc) {
    const copy = { ...doc };
    copy.business_hours = [...(doc.business_hours || [])].sort((a, b) => a.weekday - b.weekday ||
      a.opens.localeCompare(b.opens)).map((row) => ({ weekday: row.weekday, opens: row.opens, closes: row.closes }));
    copy.holidays = [...(doc.holidays || [])].sort((a, b) => a.date.localeCompare(b.date))
      .map((row) => ({ date: row.date, name: row.name || "" }));
    copy.sla_policies = PRIORITIES.map((priority) => {
      const policy = (doc.sla_policies || []).find((p) => p.priority === priority) || {};
      return { priority, ...Object.fromEntries(TARGETS.map((target) => [target, policy[target] ?? null])) };
    });
    return copy;
  }

  /** The sections that differ from what the server has. */
  function changes() {
    if (!state.saved) return {};
    const { doc } = collect(false);
    const now = normalized(doc);
    const before = normalized(state.saved);
    const out = {};
    for (const key of SECTIONS) {
      if (JSON.stringify(now[key]) !== JSON.stringify(before[key])) out[key] = now[key];
    }
    return out;
  }

  /** The time of a save on the helpdesk's clock (its saved zone), as every time in the app. */
  function savedTime(at) {
    const zone = (state.saved && state.saved.timezone) || CONFIG.timezone || "UTC";
    try {
      return new Intl.DateTimeFormat(LANG, { hour: "2-digit", minute: "2-digit", timeZone: zone }).format(at);
    } catch (error) {
      return new Intl.DateTimeFormat(LANG, { hour: "2-digit", minute: "2-digit", timeZone: "UTC" }).format(at);
    }
  }

  function updateDirty() {
    if (!EDITABLE) return;
    const dirty = Object.keys(changes()).length > 0;
    root.classList.toggle("dirty", dirty);
    $("[data-testid=settings-save]").disabled = !dirty || state.saving;
    $("[data-testid=settings-reset]").hidden = !dirty;
    const status = $("[data-testid=settings-status]");
    status.dataset.state = state.saving ? "saving" : dirty ? "dirty" : state.savedAt ? "saved" : "";
    status.textContent = state.saving ? t("saving") : dirty ? t("unsaved") : state.savedAt
      ? t("saved_at", { time: savedTime(state.savedAt) })
      : "";
    // Redraw the "midnight" marks next to closing times.
    document.querySelectorAll("[data-testid=hours-interval]").forEach((row) => {
      const closes = row.querySelector("[data-testid=hours-closes]").value;
      let mark = row.querySelector(".midnight");
      if (closes === "00:00" && !mark) {
        mark = el("span", { class: "midnight", text: t("midnight") });
        row.querySelector("[data-testid=hours-closes]").after(mark);
      } else if (closes !== "00:00" && mark) mark.remove();
    });
  }

  function showError(messages) {
    const box = $("[data-testid=settings-error]");
    box.hidden = !messages.length;
    box.replaceChildren(...messages.map((message) => el("div", { text: message })));
  }

  async function save() {
    if (!EDITABLE || state.saving) return;
    const { problems, firstBad } = collect(true);
    if (problems.length) {
      showError([...new Set(problems)]);
      // collect() marked the bad fields; keep the marks until the next edit
      if (firstBad && firstBad.focus) firstBad.focus();
      return;
    }
    const patch = changes();
    if (!Object.keys(patch).length) return;
    state.saving = true;
    showError([]);
    updateDirty();
    try {
      const doc = await request("PATCH", patch);
      state.savedAt = new Date();
      state.saving = false;
      fill(doc);
    } catch (error) {
      state.saving = false;
      showError([error.status === 403 ? t("error_forbidden") + " " + error.message : error.message]);
      $("[data-testid=settings-error]").focus();
      updateDirty();
    }
  }

  // ------------------------------------------------------------------ start

  async function start() {
    setLanguageSwitch();
    $("[data-testid=settings-readonly]").hidden = EDITABLE;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      save();
    });
    form.addEventListener("input", (event) => {
      event.target.removeAttribute("aria-invalid");
      updateDirty();
    });
    form.addEventListener("change", updateDirty);
    $("[data-testid=settings-reset]").addEventListener("click", () => {
      if (state.saved) fill(state.saved);
      showError([]);
    });
    $("[data-testid=add-holiday]").addEventListener("click", () => {
      state.holidays.push({ date: "", name: "" });
      renderHolidays();
      updateDirty();
      const dates = document.querySelectorAll("[data-testid=holiday-date]");
      dates[dates.length - 1].focus();
    });
    $("[data-testid=copy-monday]").addEventListener("click", () => {
      for (let day = 1; day <= 4; day += 1) state.hours[day] = state.hours[0].map((interval) => ({ ...interval }));
      renderHours();
      updateDirty();
    });
    document.addEventListener("keydown", (event) => {
      if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "s") {
        event.preventDefault();
        save();
      }
    });
    window.addEventListener("beforeunload", (event) => {
      if (EDITABLE && state.saved && Object.keys(changes()).length) {
        event.preventDefault();
        event.returnValue = "";
      }
    });
    try {
      fill(await request("GET"));
      form.hidden = false;
    } catch (error) {
      showError([error.message]);
    } finally {
      root.setAttribute("aria-busy", "false");
    }
  }

  start();
})();
