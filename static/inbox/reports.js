/* Reports for supervisors and admins: headline figures, charts over time and the per-agent table, all from
 * /api/v1/reports/ (definitions: docs/metrics.md). No build step, no dependencies; charts are inline SVG.
 * Filters live in the address (?from=&to=&interval=&agent=&number=&label=&basis=), so a report can be reloaded or shared.
 * Report data is only ever put in the page with textContent / attributes, never as HTML.
 */
"use strict";

(() => {
  const root = document.getElementById("reports-app");
  if (!root) return;
  const CONFIG = JSON.parse(root.dataset.config || "{}");
  const STRINGS = JSON.parse(document.getElementById("page-strings").textContent);
  const LANG = document.documentElement.lang || "en";
  const API = "/api/v1/reports";
  const TZ = CONFIG.timezone || "UTC";
  const TIMES = ["first_response", "response", "resolution"];

  // ------------------------------------------------------------------ helpers

  const UI = window.HelpdeskUI;
  const t = UI.translator(STRINGS);
  const { $, el, svg, setLanguageSwitch } = UI;
  const { request } = UI.api(t);
  const getJSON = (url, signal) => request("GET", url, { signal });

  const numberFormat = new Intl.NumberFormat(LANG);
  const decimalFormat = new Intl.NumberFormat(LANG, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  const percentFormat = new Intl.NumberFormat(LANG, { style: "percent", maximumFractionDigits: 1 });
  const dayFormat = new Intl.DateTimeFormat(LANG, { day: "numeric", month: "short", timeZone: "UTC" });
  const longDayFormat = new Intl.DateTimeFormat(LANG, { weekday: "short", day: "numeric", month: "short",
    year: "numeric", timeZone: "UTC" });

  const count = (value) => (value === null || value === undefined ? "—" : numberFormat.format(value));

  /** Seconds as people say them: "45 s", "4 min 12 s", "2 h 5 min", "3 d 4 h". */
  function human(seconds) {
    if (seconds === null || seconds === undefined || !Number.isFinite(Number(seconds))) return "—";
    let s = Math.max(0, Math.round(Number(seconds)));
    if (s < 60) return t("dur_s", { s });
    if (s < 3600) {
      const m = Math.floor(s / 60);
      s %= 60;
      return s ? t("dur_m_s", { m, s }) : t("dur_m", { m });
    }
    let minutes = Math.round(s / 60);
    if (minutes < 24 * 60) {
      const h = Math.floor(minutes / 60);
      minutes %= 60;
      return minutes ? t("dur_h_m", { h, m: minutes }) : t("dur_h", { h });
    }
    const hours = Math.round(s / 3600);
    const d = Math.floor(hours / 24);
    const h = hours % 24;
    return h ? t("dur_d_h", { d, h }) : t("dur_d", { d });
  }

  // Dates are plain days (YYYY-MM-DD) in the helpdesk's time zone; arithmetic on them is done in UTC.
  function todayInZone() {
    const parts = new Intl.DateTimeFormat("en-CA", { timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit" })
      .formatToParts(new Date());
    const get = (type) => parts.find((part) => part.type === type).value;
    return `${get("year")}-${get("month")}-${get("day")}`;
  }

  function addDays(day, days) {
    const date = new Date(day + "T00:00:00Z");
    date.setUTCDate(date.getUTCDate() + days);
    return date.toISOString().slice(0, 10);
  }

  const isDay = (value) => /^\d{4}-\d{2}-\d{2}$/.test(value || "") && !Number.isNaN(Date.parse(value + "T00:00:00Z"));
  const utcDate = (day) => new Date(day + "T00:00:00Z");

  // ------------------------------------------------------------------ state

  const params = new URLSearchParams(location.search);
  const today = todayInZone();
  const state = {
    from: isDay(params.get("from")) ? params.get("from") : addDays(today, -29),
    to: isDay(params.get("to")) ? params.get("to") : today,
    interval: params.get("interval") === "week" ? "week" : "day",
    agent: /^\d+$/.test(params.get("agent") || "") ? params.get("agent") : "",
    number: /^\d+$/.test(params.get("number") || "") ? params.get("number") : "",
    label: /^\d+$/.test(params.get("label") || "") ? params.get("label") : "",
    basis: params.get("basis") === "business" ? "business" : "calendar",
    metric: TIMES.includes(params.get("metric")) ? params.get("metric") : "first_response",
    summary: null,
    series: null,
    agents: null,
    members: [],
    errors: {},
    loading: 0,
    generation: 0,
    controller: null,
    sort: { key: "agent", descending: false },
  };

  const suffix = () => (state.basis === "business" ? "_business_seconds" : "_seconds");

  function query(extra) {
    const query = new URLSearchParams({ from: state.from, to: state.to });
    if (state.agent) query.set("agent", state.agent);
    if (state.number) query.set("number", state.number);
    if (state.label) query.set("label", state.label);
    for (const [key, value] of Object.entries(extra || {})) query.set(key, value);
    return query.toString();
  }

  function saveToAddress() {
    const query = new URLSearchParams({ from: state.from, to: state.to });
    if (state.interval !== "day") query.set("interval", state.interval);
    if (state.agent) query.set("agent", state.agent);
    if (state.number) query.set("number", state.number);
    if (state.label) query.set("label", state.label);
    if (state.basis !== "calendar") query.set("basis", state.basis);
    if (state.metric !== "first_response") query.set("metric", state.metric);
    history.replaceState(null, "", `${location.pathname}?${query}`);
  }

  // ------------------------------------------------------------------ loading

  async function load(parts) {
    const wanted = parts || ["summary", "series", "agents"];
    saveToAddress();
    renderControls();
    if (state.controller) state.controller.abort();
    const controller = new AbortController();
    state.controller = controller;
    const generation = ++state.generation;
    root.setAttribute("aria-busy", "true");
    root.classList.add("loading");
    const urls = {
      summary: `${API}/summary/?${query()}`,
      series: `${API}/timeseries/?${query({ interval: state.interval })}`,
      agents: `${API}/agents/?${query()}`,
    };
    await Promise.all(wanted.map(async (part) => {
      try {
        state[part] = await getJSON(urls[part], controller.signal);
        delete state.errors[part];
      } catch (error) {
        if (error.name === "AbortError") return;
        state[part] = null;
        state.errors[part] = error.message;
      }
    }));
    if (generation !== state.generation) return;
    root.setAttribute("aria-busy", "false");
    root.classList.remove("loading");
    render();
  }

  async function loadMembers() {
    try {
      const page = await getJSON("/api/v1/members/");
      state.members = page.results || [];
    } catch (error) {
      state.members = [];
    }
    const select = $("[data-testid=report-agent]");
    const options = [el("option", { value: "", text: t("all_agents") })];
    for (const member of [...state.members].sort((a, b) => (a.name || a.email).localeCompare(b.name || b.email))) {
      options.push(el("option", { value: String(member.id), text: `${member.name || member.email} · ${t("role_" + member.role)}` }));
    }
    select.replaceChildren(...options);
    select.value = state.agent;
    if (select.value !== state.agent) { // an agent no longer in the helpdesk: keep the filter visible
      select.append(el("option", { value: state.agent, text: "#" + state.agent }));
      select.value = state.agent;
    }
  }

  async function loadLabels() {
    let labels = [];
    try {
      labels = await getJSON("/api/v1/labels/");
    } catch (error) {
      labels = [];
    }
    const select = $("[data-testid=report-label]");
    select.replaceChildren(el("option", { value: "", text: t("all_labels") }),
      ...(Array.isArray(labels) ? labels : []).map((label) => el("option", { value: String(label.id), text: label.name })));
    select.value = state.label;
    if (select.value !== state.label) { // a label since deleted: keep the filter visible
      select.append(el("option", { value: state.label, text: "#" + state.label }));
      select.value = state.label;
    }
  }

  // ------------------------------------------------------------------ rendering

  function render() {
    renderControls();
    renderError();
    renderCards();
    renderCharts();
    renderAgents();
    renderExports();
  }

  function renderControls() {
    const form = $("[data-testid=report-filters]");
    form.elements.from.value = state.from;
    form.elements.to.value = state.to;
    form.elements.to.max = today;
    form.elements.from.max = state.to || today;
    form.elements.to.min = state.from;
    form.elements.number.value = state.number;
    if (state.members.length) form.elements.agent.value = state.agent;
    document.querySelectorAll("[data-days]").forEach((button) => {
      const days = Number(button.dataset.days);
      const active = state.to === today && state.from === addDays(today, -(days - 1));
      button.setAttribute("aria-pressed", active ? "true" : "false");
    });
    document.querySelectorAll("[data-basis]").forEach((button) => {
      const on = button.dataset.basis === state.basis;
      button.setAttribute("aria-checked", on ? "true" : "false");
      button.tabIndex = on ? 0 : -1;
    });
    document.querySelectorAll("[data-interval]").forEach((button) => {
      const on = button.dataset.interval === state.interval;
      button.setAttribute("aria-checked", on ? "true" : "false");
      button.tabIndex = on ? 0 : -1;
    });
    $("[data-testid=chart-metric]").value = state.metric;
    $("[data-testid=basis-note]").textContent = t(state.basis === "business" ? "basis_business" : "basis_calendar");
  }

  function renderError() {
    const box = $("[data-testid=report-error]");
    const messages = [...new Set(Object.values(state.errors))];
    box.hidden = !messages.length;
    box.replaceChildren(...messages.map((message) => el("div", { text: message })));
  }

  function renderExports() {
    const links = {
      summary: `${API}/summary/?${query({ format: "csv" })}`,
      timeseries: `${API}/timeseries/?${query({ interval: state.interval, format: "csv" })}`,
      agents: `${API}/agents/?${query({ format: "csv" })}`,
    };
    for (const [name, href] of Object.entries(links)) {
      const link = $(`[data-testid=export-${name}-csv]`);
      link.href = href;
      link.title = t("export_title");
    }
  }

  // -- headline figures

  function info(text) {
    // A keyboard-reachable explanation: shown on hover and on focus.
    const id = "tip-" + Math.random().toString(36).slice(2);
    return el("span", { class: "info" },
      el("button", { type: "button", class: "info-btn", "aria-label": t("what_is_this"), "aria-describedby": id,
        text: "i" }),
      el("span", { class: "tip", role: "tooltip", id, text }));
  }

  function timeCard(name) {
    const figures = state.summary ? state.summary[name + suffix()] : null;
    const stats = figures || { mean: null, median: null, p90: null, count: 0 };
    const card = el("article", { class: "card time-card", "data-testid": "figure-" + name,
      "data-count": stats.count, "data-median": stats.median === null ? "" : stats.median },
    el("header", { class: "card-head" }, el("h3", { text: t("metric_" + name) }), info(t("stats_help"))),
    el("div", { class: "card-value", "data-testid": "figure-value" },
      stats.count ? human(stats.median) : "—",
      el("span", { class: "card-unit", text: t("median") })),
    el("dl", { class: "card-stats" },
      el("div", {}, el("dt", { text: t("mean") }), el("dd", { text: human(stats.mean) })),
      el("div", {}, el("dt", { text: "p90" }), el("dd", { text: human(stats.p90) })),
      el("div", {}, el("dt", { text: t("count") }), el("dd", { "data-testid": "figure-count", text: count(stats.count) }))),
    el("p", { class: "card-def", text: t("def_" + name) }));
    return card;
  }

  function numberCard(name, value, definition, extra) {
    return el("article", { class: "card", "data-testid": "figure-" + name, "data-value": value ?? "" },
      el("header", { class: "card-head" }, el("h3", { text: t("metric_" + name) })),
      el("div", { class: "card-value", "data-testid": "figure-value", text: count(value) }),
      extra || null,
      el("p", { class: "card-def", text: definition }));
  }

  function renderCards() {
    const box = $("[data-testid=headline-figures]");
    const summary = state.summary;
    if (!summary && state.errors.summary) {
      box.replaceChildren();
      return;
    }
    const volume = summary ? summary.chat_volume : {};
    const sla = summary ? summary.sla : { met: null, breached: null };
    const measured = (sla.met || 0) + (sla.breached || 0);
    const slaCard = el("article", { class: "card sla-card", "data-testid": "figure-sla", "data-met": sla.met ?? "",
      "data-breached": sla.breached ?? "" },
    el("header", { class: "card-head" }, el("h3", { text: t("metric_sla") })),
    el("div", { class: "card-value", "data-testid": "figure-value" },
      measured ? percentFormat.format(sla.met / measured) : "—",
      el("span", { class: "card-unit", text: t("met_share") })),
    measured ? el("div", { class: "meter", role: "img", "aria-label": t("sla_split", { met: count(sla.met),
      breached: count(sla.breached) }) }, el("span", { class: "meter-ok", style: `width:${(100 * sla.met) / measured}%` }))
      : null,
    el("dl", { class: "card-stats" },
      el("div", {}, el("dt", { text: t("met") }), el("dd", { "data-testid": "sla-met", text: count(sla.met) })),
      el("div", {}, el("dt", { text: t("breached") }), el("dd", { "data-testid": "sla-breached",
        class: sla.breached ? "bad" : "", text: count(sla.breached) }))),
    el("p", { class: "card-def", text: t("def_sla") }));

    const volumeCard = el("article", { class: "card volume-card", "data-testid": "figure-chat_volume" },
      el("header", { class: "card-head" }, el("h3", { text: t("metric_chat_volume") })),
      el("dl", { class: "volume-grid" },
        ...["conversations", "tickets_opened", "messages_in", "messages_out"].map((key) => el("div", {
          "data-testid": "volume-" + key },
        el("dd", { text: count(volume[key]) }),
        el("dt", {}, t("volume_" + key), info(t("def_" + key)))))));

    box.replaceChildren(
      timeCard("first_response"), timeCard("response"), timeCard("resolution"), slaCard,
      volumeCard,
      numberCard("resolved_tickets", summary ? summary.resolved_tickets : null, t("def_resolved_tickets")),
      numberCard("windows_expired_unanswered", summary ? summary.windows_expired_unanswered : null,
        t("def_windows_expired_unanswered")),
      csatCard(summary ? summary.csat : null));
  }

  /** The satisfaction answers: the share of 4 and 5 ratings, the average and how many answered. */
  function csatCard(csat) {
    const answers = csat ? csat.responses : 0;
    return el("article", { class: "card", "data-testid": "figure-csat", "data-score": csat && csat.score !== null
      ? csat.score : "", "data-responses": answers },
    el("header", { class: "card-head" }, el("h3", { text: t("metric_csat") })),
    el("div", { class: "card-value", "data-testid": "figure-value" },
      answers ? percentFormat.format(csat.score / 100) : "—",
      el("span", { class: "card-unit", text: t("satisfied_share") })),
    el("dl", { class: "card-stats" },
      el("div", {}, el("dt", { text: t("csat_average") }), el("dd", { "data-testid": "csat-average",
        text: answers ? decimalFormat.format(csat.average) + " / 5" : "—" })),
      el("div", {}, el("dt", { text: t("csat_responses") }), el("dd", { "data-testid": "csat-responses",
        text: count(answers) }))),
    el("p", { class: "card-def", text: t("def_csat") }));
  }

  // -- charts

  /** Round numbers for an axis up to `max`: counts in 1/2/5 steps, durations in familiar units. */
  function ticks(max, durations) {
    if (!(max > 0)) return [0, 1];
    const steps = durations
      ? [1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 432000, 864000]
      : null;
    let step;
    if (steps) {
      step = steps.find((candidate) => max / candidate <= 5) || Math.ceil(max / 5 / 86400) * 86400;
    } else {
      const raw = max / 5;
      const power = 10 ** Math.floor(Math.log10(raw));
      step = [1, 2, 5, 10].map((f) => f * power).find((candidate) => raw <= candidate);
      step = Math.max(1, step);
    }
    const out = [];
    for (let value = 0; value < max + step; value += step) {
      out.push(value);
      if (value >= max) break;
    }
    return out;
  }

  function bucketLabel(start, long) {
    const date = utcDate(start);
    if (state.interval === "week") return t(long ? "week_of_long" : "week_of", { date: (long ? longDayFormat : dayFormat).format(date) });
    return (long ? longDayFormat : dayFormat).format(date);
  }

  /**
   * One chart: `kind` "line" (null values leave gaps) or "bar" (grouped). Hover, or focus and the arrow keys,
   * show the values of a bucket.
   */
  function chart(container, { kind, labels, series, format, emptyText }) {
    const width = Math.max(320, container.clientWidth || 600);
    const height = 240;
    const pad = { top: 14, right: 14, bottom: 30, left: kind === "line" ? 68 : 44 };
    const plotW = width - pad.left - pad.right;
    const plotH = height - pad.top - pad.bottom;
    const n = labels.length;
    const values = series.flatMap((s) => s.values).filter((v) => v !== null && v !== undefined);
    const max = values.length ? Math.max(...values) : 0;
    const axis = ticks(max, kind === "line");
    const top = axis[axis.length - 1] || 1;
    const y = (v) => pad.top + plotH - (v / top) * plotH;
    const band = plotW / Math.max(1, n);
    const xMid = (i) => pad.left + band * (i + 0.5);

    const root_ = svg("svg", { class: "chart-svg", viewBox: `0 0 ${width} ${height}`, width, height,
      "aria-hidden": "true" });
    for (const value of axis) {
      root_.append(svg("line", { class: "grid", x1: pad.left, x2: width - pad.right, y1: y(value), y2: y(value) }));
      root_.append(svg("text", { class: "axis-y", x: pad.left - 8, y: y(value) + 4, "text-anchor": "end",
        text: format(value, true) }));
    }
    const every = Math.max(1, Math.ceil(n / Math.max(1, Math.floor(plotW / 64))));
    labels.forEach((label, i) => {
      if (i % every !== 0 && i !== n - 1) return;
      if (i === n - 1 && i % every !== 0 && (n - 1) % every < every / 2) return; // too close to the previous label
      root_.append(svg("text", { class: "axis-x", x: xMid(i), y: height - 10, "text-anchor": "middle", text: label }));
    });
    root_.append(svg("line", { class: "axis", x1: pad.left, x2: width - pad.right, y1: y(0), y2: y(0) }));

    if (kind === "line") {
      for (const s of series) {
        let d = "";
        let open = false;
        s.values.forEach((value, i) => {
          if (value === null || value === undefined) {
            open = false;
            return;
          }
          d += `${open ? "L" : "M"}${xMid(i).toFixed(1)},${y(value).toFixed(1)}`;
          open = true;
        });
        if (d) root_.append(svg("path", { class: "line " + s.key, d, fill: "none" }));
        s.values.forEach((value, i) => {
          if (value === null || value === undefined) return;
          root_.append(svg("circle", { class: "dot " + s.key, cx: xMid(i), cy: y(value), r: n > 45 ? 1.6 : 3 }));
        });
      }
    } else {
      const groupW = Math.min(band * 0.78, 14 * series.length + 4 * (series.length - 1));
      const barW = Math.max(1, (groupW - 2 * (series.length - 1)) / series.length);
      series.forEach((s, k) => {
        s.values.forEach((value, i) => {
          if (!value) return;
          const x = xMid(i) - groupW / 2 + k * (barW + 2);
          root_.append(svg("rect", { class: "bar " + s.key, x, y: y(value), width: barW, height: y(0) - y(value),
            rx: Math.min(2, barW / 2) }));
        });
      });
    }

    const guide = svg("line", { class: "guide", x1: 0, x2: 0, y1: pad.top, y2: pad.top + plotH, visibility: "hidden" });
    root_.append(guide);
    const tip = el("div", { class: "chart-tip", hidden: true, role: "status" });
    const legend = el("ul", { class: "legend" }, ...series.map((s) => el("li", { class: s.key },
      el("span", { class: "swatch " + kind }), s.label)));
    const frame = el("div", { class: "chart-frame", tabindex: "0", role: "group",
      "aria-label": t("chart_keys_help") }, root_, tip);

    let current = -1;
    const show = (i) => {
      current = Math.max(0, Math.min(n - 1, i));
      const x = xMid(current);
      guide.setAttribute("x1", x);
      guide.setAttribute("x2", x);
      guide.setAttribute("visibility", "visible");
      tip.replaceChildren(el("strong", { text: bucketLabel(rawLabels[current], true) }),
        ...series.map((s) => el("div", { class: "tip-row " + s.key }, el("span", { class: "swatch " + kind }),
          el("span", { text: s.label }), el("b", { text: s.values[current] === null || s.values[current] === undefined
            ? t("no_data") : format(s.values[current], false) }))));
      tip.hidden = false;
      const left = (x / width) * frame.clientWidth;
      tip.style.left = `${Math.min(Math.max(left, 90), frame.clientWidth - 90)}px`;
    };
    const hide = () => {
      guide.setAttribute("visibility", "hidden");
      tip.hidden = true;
    };
    const rawLabels = container.__starts || [];
    frame.addEventListener("mousemove", (event) => {
      const box = root_.getBoundingClientRect();
      const x = ((event.clientX - box.left) / box.width) * width;
      if (x < pad.left || x > width - pad.right) return;
      show(Math.floor((x - pad.left) / band));
    });
    frame.addEventListener("mouseleave", () => { if (document.activeElement !== frame) hide(); });
    frame.addEventListener("focus", () => show(current < 0 ? n - 1 : current));
    frame.addEventListener("blur", hide);
    frame.addEventListener("keydown", (event) => {
      const moves = { ArrowLeft: -1, ArrowRight: 1, Home: -Infinity, End: Infinity };
      if (!(event.key in moves)) return;
      event.preventDefault();
      const step = moves[event.key];
      show(Number.isFinite(step) ? current + step : step < 0 ? 0 : n - 1);
    });

    const nodes = [legend, frame];
    if (!values.length) nodes.push(el("div", { class: "chart-empty", text: emptyText }));
    container.replaceChildren(...nodes);
  }

  function renderCharts() {
    const rows = state.series ? state.series.results || [] : [];
    const starts = rows.map((row) => row.start);
    const labels = starts.map((start) => bucketLabel(start, false));
    const times = $("[data-testid=chart-times]");
    const volume = $("[data-testid=chart-volume]");
    if (!state.series) {
      times.replaceChildren(el("div", { class: "chart-empty static", text: state.errors.series ? "—" : t("loading") }));
      volume.replaceChildren();
      return;
    }
    times.__starts = starts;
    volume.__starts = starts;
    const field = state.metric + suffix();
    const stat = (row, key) => (row[field] && row[field].count ? row[field][key] : null);
    chart(times, {
      kind: "line",
      labels,
      format: (value) => human(value),
      emptyText: t("no_times"),
      series: [
        { key: "median", label: t("median"), values: rows.map((row) => stat(row, "median")) },
        { key: "p90", label: "p90", values: rows.map((row) => stat(row, "p90")) },
      ],
    });
    chart(volume, {
      kind: "bar",
      labels,
      format: (value) => count(value),
      emptyText: t("no_volume"),
      series: [
        { key: "in", label: t("volume_messages_in"), values: rows.map((row) => row.chat_volume.messages_in) },
        { key: "out", label: t("volume_messages_out"), values: rows.map((row) => row.chat_volume.messages_out) },
        { key: "opened", label: t("volume_tickets_opened"), values: rows.map((row) => row.chat_volume.tickets_opened) },
      ],
    });
  }

  // -- agents

  const AGENT_COLUMNS = [
    { key: "agent", label: () => t("col_agent"), value: (row) => (row.agent.name || row.agent.email).toLowerCase() },
    { key: "first_response", label: () => t("col_first_response"), time: true, help: "def_first_response" },
    { key: "response", label: () => t("col_response"), time: true, help: "def_response" },
    { key: "resolution", label: () => t("col_resolution"), time: true, help: "def_resolution" },
    { key: "messages_out", label: () => t("col_messages_out"), value: (row) => row.messages_out, help: "def_agent_messages_out" },
    { key: "resolved_tickets", label: () => t("col_resolved"), value: (row) => row.resolved_tickets, help: "def_resolved_tickets" },
    { key: "sla", label: () => t("col_sla"), value: (row) => slaShare(row.sla), help: "def_sla" },
    { key: "windows_expired_unanswered", label: () => t("col_windows"), value: (row) => row.windows_expired_unanswered,
      help: "def_windows_expired_unanswered" },
    { key: "csat", label: () => t("col_csat"), value: (row) => (row.csat && row.csat.responses ? row.csat.score : null),
      help: "def_csat" },
  ];

  function slaShare(sla) {
    const total = (sla.met || 0) + (sla.breached || 0);
    return total ? sla.met / total : null;
  }

  function sortValue(column, row) {
    if (column.time) {
      const figures = row[column.key + suffix()];
      return figures && figures.count ? figures.median : null;
    }
    return column.value(row);
  }

  function renderAgents() {
    const table = $("[data-testid=agents-table]");
    const head = $("thead", table);
    const body = $("tbody", table);
    head.replaceChildren(el("tr", {}, ...AGENT_COLUMNS.map((column) => {
      const sorted = state.sort.key === column.key;
      return el("th", { scope: "col", class: column.key === "agent" ? "" : "num",
        "aria-sort": sorted ? (state.sort.descending ? "descending" : "ascending") : null },
      el("button", { type: "button", class: "th-sort", onclick: () => {
        state.sort = { key: column.key, descending: sorted ? !state.sort.descending : column.key !== "agent" };
        renderAgents();
      } }, column.label(), el("span", { class: "sort-mark", "aria-hidden": "true",
        text: sorted ? (state.sort.descending ? "↓" : "↑") : "" })),
      column.help ? info(t(column.help)) : null);
    })));
    if (!state.agents) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: AGENT_COLUMNS.length, class: "empty",
        text: state.errors.agents ? "—" : t("loading") })));
      return;
    }
    const column = AGENT_COLUMNS.find((c) => c.key === state.sort.key) || AGENT_COLUMNS[0];
    const rows = [...(state.agents.results || [])].sort((a, b) => {
      const av = sortValue(column, a);
      const bv = sortValue(column, b);
      if (av === null && bv === null) return 0;
      if (av === null) return 1; // no figure: always last
      if (bv === null) return -1;
      const order = av < bv ? -1 : av > bv ? 1 : 0;
      return state.sort.descending ? -order : order;
    });
    if (!rows.length) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: AGENT_COLUMNS.length, class: "empty",
        text: t("no_agents") })));
      return;
    }
    body.replaceChildren(...rows.map((row) => el("tr", { "data-testid": "agent-row", "data-agent-id": row.agent.id },
      el("th", { scope: "row" },
        el("div", { class: "agent-name", text: row.agent.name || row.agent.email }),
        el("div", { class: "agent-sub", text: `${row.agent.email} · ${t("role_" + row.agent.role)}` })),
      ...["first_response", "response", "resolution"].map((name) => {
        const figures = row[name + suffix()] || { count: 0 };
        return el("td", { class: "num", "data-testid": "agent-" + name, "data-count": figures.count,
          title: figures.count ? t("n_measured", { n: count(figures.count) }) : null },
          el("div", { text: figures.count ? human(figures.median) : "—" }),
          figures.count ? el("div", { class: "cell-sub nowrap", title: t("n_measured", { n: count(figures.count) }),
            text: "p90 " + human(figures.p90) }) : null);
      }),
      el("td", { class: "num", "data-testid": "agent-messages_out", text: count(row.messages_out) }),
      el("td", { class: "num", "data-testid": "agent-resolved", text: count(row.resolved_tickets) }),
      el("td", { class: "num", "data-testid": "agent-sla" },
        el("div", { text: slaShare(row.sla) === null ? "—" : percentFormat.format(slaShare(row.sla)) }),
        (row.sla.met || row.sla.breached) ? el("div", { class: "cell-sub", text: t("met_breached", {
          met: count(row.sla.met), breached: count(row.sla.breached) }) }) : null),
      el("td", { class: "num", "data-testid": "agent-windows", text: count(row.windows_expired_unanswered) }),
      el("td", { class: "num", "data-testid": "agent-csat" },
        el("div", { text: row.csat && row.csat.responses ? percentFormat.format(row.csat.score / 100) : "—" }),
        row.csat && row.csat.responses ? el("div", { class: "cell-sub", text: t("csat_detail", {
          average: decimalFormat.format(row.csat.average), n: count(row.csat.responses) }) }) : null))));
  }

  // ------------------------------------------------------------------ events

  function setup() {
    setLanguageSwitch();
    $("[data-testid=report-timezone]").textContent = t("timezone_note", { tz: TZ });
    const numberSelect = $("[data-testid=report-number]");
    for (const number of CONFIG.numbers || []) {
      numberSelect.append(el("option", { value: String(number.id), text: "+" + number.display_number }));
    }
    if ((CONFIG.numbers || []).length < 2) numberSelect.closest(".field").classList.add("single");

    const form = $("[data-testid=report-filters]");
    form.addEventListener("submit", (event) => event.preventDefault());
    const dateChanged = () => {
      const from = form.elements.from.value;
      const to = form.elements.to.value;
      if (!isDay(from) || !isDay(to)) return; // half-typed: wait for a whole date
      state.from = from;
      state.to = to;
      load();
    };
    form.elements.from.addEventListener("change", dateChanged);
    form.elements.to.addEventListener("change", dateChanged);
    form.elements.agent.addEventListener("change", () => {
      state.agent = form.elements.agent.value;
      load();
    });
    form.elements.number.addEventListener("change", () => {
      state.number = form.elements.number.value;
      load();
    });
    form.elements.label.addEventListener("change", () => {
      state.label = form.elements.label.value;
      load();
    });
    document.querySelectorAll("[data-days]").forEach((button) => button.addEventListener("click", () => {
      state.to = todayInZone();
      state.from = addDays(state.to, -(Number(button.dataset.days) - 1));
      load();
    }));
    const radios = (selector, apply) => {
      const buttons = [...document.querySelectorAll(selector)];
      buttons.forEach((button, index) => {
        button.addEventListener("click", () => apply(button));
        button.addEventListener("keydown", (event) => {
          const step = { ArrowLeft: -1, ArrowUp: -1, ArrowRight: 1, ArrowDown: 1 }[event.key];
          if (!step) return;
          event.preventDefault();
          const next = buttons[(index + step + buttons.length) % buttons.length];
          apply(next);
          next.focus();
        });
      });
    };
    radios("[data-basis]", (button) => {
      if (state.basis === button.dataset.basis) return;
      state.basis = button.dataset.basis;
      saveToAddress();
      render(); // business time is in the same answers
    });
    radios("[data-interval]", (button) => {
      if (state.interval === button.dataset.interval) return;
      state.interval = button.dataset.interval;
      load(["series"]);
    });
    $("[data-testid=chart-metric]").addEventListener("change", (event) => {
      state.metric = event.target.value;
      saveToAddress();
      renderCharts();
    });
    let resizeTimer = 0;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(renderCharts, 150);
    });
  }

  setup();
  render();
  loadMembers();
  loadLabels();
  load();
})();
