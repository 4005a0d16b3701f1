/* The live inbox: one module that owns the /ws/inbox/ websocket and keeps the page in sync through it and the
 * REST API (/api/v1/). No build step, no dependencies.
 *
 * Consistency rules (see conversations/consumers.py for the server side):
 *  - Every websocket frame carries an increasing event id. `lastEventId` is the id of the last frame applied;
 *    frames with an id <= lastEventId are skipped, so replays and duplicates change nothing.
 *  - First connect: `ready` gives the server's last event id; the REST data is loaded after it, so everything
 *    newer arrives as frames. Every reconnect sends `{"type":"resume","after":lastEventId}` at once and the
 *    server replays what was missed, in order. Until the replay has reached the `ready` id of that connection,
 *    frames newer than it are dropped: they are live frames that the replay sends again, in their place.
 *  - Conversations and messages are upserted by id. Each remembers the id of the last frame that touched it;
 *    a REST answer (requested when lastEventId was S) only overwrites an object no frame has touched since S,
 *    because such a frame may be newer than the answer and a later frame fixes anything older.
 *  - A message's delivery status never moves backwards (queued < sent < delivered < read; failed is final).
 * Message data is only ever put in the page with textContent / attributes, never as HTML.
 */
"use strict";

(() => {
  const root = document.getElementById("inbox-app");
  if (!root) return;
  const CONFIG = JSON.parse(root.dataset.config || "{}");
  const STRINGS = JSON.parse(document.getElementById("inbox-strings").textContent);
  const LANG = document.documentElement.lang || "en";
  const API = "/api/v1";
  const MAX_TEXT = 4096;
  const SOON_MS = 2 * 3600 * 1000;
  const STATUS_RANK = { received: 0, queued: 0, sent: 1, delivered: 2, read: 3 };
  const ACTIVE_TICKET = new Set(["open", "pending"]);
  const SLA_WARN_SHARE = 0.2; // the list's SLA clock turns amber when less than this share of the target is left
  const WARNING_FRAMES = new Set(["sla.warning", "sla.breached", "window.warning", "window.expired"]);

  // ------------------------------------------------------------------ helpers

  const UI = window.HelpdeskUI;
  UI.live.external(); // this page's socket feeds the shared live listeners (the health banners)
  const t = UI.translator(STRINGS);
  const { $, el, SVG_NS } = UI;
  const { request } = UI.api(t, {
    codes: { window_closed: "error_window_closed" }, // the server's text, translated
    onResponse: (response, data) => {
      if (response.status === 401 || (response.status === 403 && isAuthProblem(data))) showSessionEnded();
    },
  });

  const ICONS = {
    // 16x16 viewBox paths (static markup of ours, built with createElementNS)
    clock: ["M8 1.5a6.5 6.5 0 1 0 0 13 6.5 6.5 0 0 0 0-13zm0 1.5a5 5 0 1 1 0 10A5 5 0 0 1 8 3zm-.75 1.75v3.56l2.72 1.63.77-1.28-1.99-1.2V4.75z"],
    check: ["M13.3 4.3l-7 7-3.6-3.6 1.06-1.06L6.3 9.19l5.94-5.95z"],
    checks: ["M11.3 4.3l-7 7-3.1-3.1 1.06-1.06 2.04 2.05 5.94-5.95z", "M15.3 4.3l-7 7-1.2-1.2 1.06-1.06.14.14 5.94-5.95z"],
    alert: ["M8 1.5a6.5 6.5 0 1 0 0 13 6.5 6.5 0 0 0 0-13zM7.25 4.5h1.5v4.5h-1.5zm0 5.75h1.5v1.5h-1.5z"],
    image: ["M2 3h12v10H2zm1.5 1.5v5.3l2.6-2.6 2.4 2.4 1.6-1.6 2.4 2.4V4.5zM10.5 5.5a1 1 0 1 1 0 2 1 1 0 0 1 0-2z"],
    video: ["M2 4h8.5v8H2zm9.5 2.2L14 4.7v6.6l-2.5-1.5z"],
    audio: ["M8 1.5a2.5 2.5 0 0 1 2.5 2.5v4a2.5 2.5 0 0 1-5 0V4A2.5 2.5 0 0 1 8 1.5zM3.5 7.5H5a3 3 0 0 0 6 0h1.5a4.5 4.5 0 0 1-3.75 4.43V14h-1.5v-2.07A4.5 4.5 0 0 1 3.5 7.5z"],
    document: ["M3.5 1.5h6l3 3v10h-9zm1.5 1.5v10h6V5.5H8.5V3zM6 8h4v1H6zm0 2h4v1H6z"],
    sticker: ["M8 1.5a6.5 6.5 0 1 0 0 13h.5l6-6V8A6.5 6.5 0 0 0 8 1.5zM5.5 6a1 1 0 1 1 0 2 1 1 0 0 1 0-2zm5 0a1 1 0 1 1 0 2 1 1 0 0 1 0-2zM5 9.5h6A3 3 0 0 1 8 12a3 3 0 0 1-3-2.5z"],
    pin: ["M8 1.5A4.5 4.5 0 0 0 3.5 6c0 3.4 4.5 8.5 4.5 8.5s4.5-5.1 4.5-8.5A4.5 4.5 0 0 0 8 1.5zm0 2.75a1.75 1.75 0 1 1 0 3.5 1.75 1.75 0 0 1 0-3.5z"],
    person: ["M8 2a3 3 0 1 1 0 6 3 3 0 0 1 0-6zm0 7c3 0 5.5 1.5 5.5 3.5V14h-11v-1.5C2.5 10.5 5 9 8 9z"],
    reply: ["M6.5 3.5v2.6C10.8 6.4 13.5 8.9 14 13c-1.3-2.3-3.6-3.5-7.5-3.5v2.6L1.8 7.8z"],
    tap: ["M6.5 2a1.5 1.5 0 0 1 1.5 1.5V7l3.6.6a1.5 1.5 0 0 1 1.24 1.68L12.3 13.5H6.7L3.6 9.9l.9-.9 2 1.4V3.5A1.5 1.5 0 0 1 6.5 2z"],
    lock: ["M8 1.5a3 3 0 0 0-3 3V6.5H4a1 1 0 0 0-1 1V13.5a1 1 0 0 0 1 1h8a1 1 0 0 0 1-1V7.5a1 1 0 0 0-1-1h-1V4.5a3 3 0 0 0-3-3zm0 1.5A1.5 1.5 0 0 1 9.5 4.5V6.5h-3V4.5A1.5 1.5 0 0 1 8 3zm0 5.5a1.25 1.25 0 0 1 .75 2.25V12h-1.5v-1.25A1.25 1.25 0 0 1 8 8.5z"],
    flag: ["M3.5 1.5H5v13H3.5zM6 2.5h7.5l-2 3.25 2 3.25H6z"],
    question: ["M8 1.5a6.5 6.5 0 1 0 0 13 6.5 6.5 0 0 0 0-13zm0 9.25a.9.9 0 1 1 0 1.8.9.9 0 0 1 0-1.8zM8 4c1.5 0 2.6.9 2.6 2.2 0 1-.6 1.5-1.2 1.9-.5.3-.7.5-.7 1v.3H7.3v-.4c0-1 .5-1.5 1.1-1.9.5-.3.7-.5.7-.9 0-.5-.4-.8-1.1-.8-.7 0-1.2.4-1.3 1.1L5.3 6.3C5.5 4.9 6.6 4 8 4z"],
  };

  function icon(name, className) {
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 16 16");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("class", "icon " + (className || ""));
    for (const d of ICONS[name] || []) {
      const path = document.createElementNS(SVG_NS, "path");
      path.setAttribute("d", d);
      svg.append(path);
    }
    return svg;
  }

  /** An absolute `next`/`previous` link from the API, as a same-origin path (keeps http/https right). */
  function pathOf(link) {
    if (!link) return null;
    const url = new URL(link, location.href);
    return url.pathname + url.search;
  }

  function isAuthProblem(data) {
    return Boolean(data && typeof data.detail === "string" && /credentials|authenticat/i.test(data.detail));
  }

  // Every time is shown in the helpdesk's time zone (as the reports are), never the browser's.
  const TIME_ZONE = CONFIG.timezone || "UTC";
  function zoned(locale, options) {
    try {
      return new Intl.DateTimeFormat(locale, { ...options, timeZone: TIME_ZONE });
    } catch (error) { // an unknown zone: say UTC rather than the browser's zone
      return new Intl.DateTimeFormat(locale, { ...options, timeZone: "UTC" });
    }
  }
  const timeFormat = zoned(LANG, { hour: "2-digit", minute: "2-digit" });
  const dateFormat = zoned(LANG, { day: "numeric", month: "short" });
  const longDateFormat = zoned(LANG, { weekday: "long", day: "numeric", month: "long", year: "numeric" });
  const fullFormat = zoned(LANG, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
    timeZoneName: "short" }); // titles on hover: with the zone
  const weekdayTimeFormat = zoned(LANG, { weekday: "short", hour: "2-digit", minute: "2-digit" });
  const dayFormat = zoned("en-US", { year: "numeric", month: "numeric", day: "numeric" });

  const ms = (iso) => (iso ? Date.parse(iso) : NaN);

  /** The local day (helpdesk zone) of a moment, as a number of days since 1970-01-01 (NaN for no moment). */
  function dayNumber(at) {
    if (!Number.isFinite(at)) return NaN;
    const parts = Object.fromEntries(dayFormat.formatToParts(at).map((part) => [part.type, part.value]));
    return Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day)) / 86400000;
  }

  // The helpdesk's business hours around now, [opens, closes] in ms (conversations/web.py): SLA targets count
  // only business time, so the time left to a deadline is counted inside these intervals.
  const BUSINESS_HOURS = (Array.isArray(CONFIG.business_hours) ? CONFIG.business_hours : [])
    .filter((pair) => Array.isArray(pair) && Number.isFinite(pair[0]) && Number.isFinite(pair[1]) && pair[1] > pair[0]);

  /** Business milliseconds in [from, to). */
  function businessMs(from, to) {
    let total = 0;
    if (!(to > from)) return total;
    for (const [opens, closes] of BUSINESS_HOURS) {
      if (closes <= from) continue;
      if (opens >= to) break;
      total += Math.min(to, closes) - Math.max(from, opens);
    }
    return total;
  }

  function inBusinessHours(at) {
    return BUSINESS_HOURS.some(([opens, closes]) => opens <= at && at < closes);
  }

  function relativeTime(iso) {
    const at = ms(iso);
    if (!Number.isFinite(at)) return "";
    const seconds = Math.max(0, (Date.now() - at) / 1000);
    if (seconds < 60) return t("time_now");
    if (seconds < 3600) return t("time_minutes", { n: Math.floor(seconds / 60) });
    if (seconds < 86400) return t("time_hours", { n: Math.floor(seconds / 3600) });
    if (seconds < 7 * 86400) return t("time_days", { n: Math.floor(seconds / 86400) });
    return dateFormat.format(at);
  }

  function duration(msLeft, short) {
    const minutes = Math.max(1, Math.ceil(msLeft / 60000));
    const h = Math.floor(minutes / 60);
    const m = minutes % 60;
    if (h === 0) return t(short ? "duration_m_short" : "duration_m", { m });
    return t(short ? "duration_hm_short" : "duration_hm", { h, m });
  }

  /** The 24-hour window of a conversation now: {state: "open"|"soon"|"closed", left: ms}. */
  function windowOf(conversation) {
    const left = ms(conversation.window_expires_at) - Date.now();
    if (!Number.isFinite(left) || left <= 0) return { state: "closed", left: 0 };
    return { state: left < SOON_MS ? "soon" : "open", left };
  }

  function dayLabel(at) {
    const diff = dayNumber(Date.now()) - dayNumber(at);
    if (diff === 0) return t("today");
    if (diff === 1) return t("yesterday");
    return longDateFormat.format(at);
  }

  function contactName(contact) {
    if (!contact) return t("unknown_contact");
    if (contact.name && contact.wa_id && contact.name.replace(/\D/g, "") === contact.wa_id) return "+" + contact.wa_id;
    return contact.name || (contact.wa_id ? "+" + contact.wa_id : "") || contact.username || contact.user_id ||
      t("unknown_contact");
  }

  function contactNumber(contact) {
    if (!contact) return "";
    return contact.wa_id ? "+" + contact.wa_id : contact.username ? "@" + contact.username : contact.user_id || "";
  }

  function initials(name) {
    const words = String(name).replace(/[^\p{L}\p{N} ]/gu, " ").trim().split(/\s+/).filter(Boolean);
    if (!words.length) return "#";
    return (words[0][0] + (words.length > 1 ? words[words.length - 1][0] : "")).toUpperCase();
  }

  function avatar(conversation, extraClass) {
    const name = contactName(conversation.contact);
    const hue = (Number(conversation.contact && conversation.contact.id) || Number(conversation.id) || 0) * 47 % 360;
    const letters = initials(name);
    return el("span", { class: "avatar " + (extraClass || ""), style: `--hue:${hue}`, "aria-hidden": "true" },
      /\p{L}/u.test(letters) ? letters : icon("person"));
  }

  function isTyping(target) {
    const node = target || document.activeElement;
    return Boolean(node && (node.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(node.tagName)));
  }

  /** Text with http(s) links made clickable; everything else stays text. */
  function linkified(text) {
    const fragment = document.createDocumentFragment();
    const pattern = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/gi;
    let last = 0;
    for (const match of String(text).matchAll(pattern)) {
      fragment.append(text.slice(last, match.index));
      fragment.append(el("a", { href: match[0], target: "_blank", rel: "noopener noreferrer nofollow", text: match[0] }));
      last = match.index + match[0].length;
    }
    fragment.append(text.slice(last));
    return fragment;
  }

  // ------------------------------------------------------------------ state

  const state = {
    lastEventId: null, // id of the last frame applied; null until the first `ready`
    synced: false, // REST data was loaded after a `ready`: frames keep it current
    resumeTarget: null, // while replaying after a reconnect: the `ready` id of this connection
    conversations: new Map(), // id -> {data, v (id of the last frame applied to it)}
    threads: new Map(), // conversation id -> {messages: Map(id -> {data, v}), previous, loaded, loading, error}
    filter: "",
    list: { next: null, loading: false, loaded: false, error: null, generation: 0 },
    selectedId: null,
    missing: new Set(), // conversation ids the API answered 404 for
    drafts: new Map(),
    sending: false,
    statusBusy: false,
    replyError: "",
    readInFlight: new Map(),
    ordering: "recent", // "recent" or "window" (waiting customers whose window closes soonest first)
    composerMode: "reply", // "reply" or "note"
    tickets: new Map(), // ticket id -> {data (the full ticket), v}
    ticketFetches: new Map(), // ticket id -> signature of the summary it was (being) fetched for
    ticketBusy: false,
    ticketError: "",
    members: new Map(), // user id -> {id, email, name, role, available}
    me: null, // {id, email, name, role, available}
    meBusy: false,
    alerts: new Map(), // conversation id -> {kind, due_at, passed, ticketId} from warning frames
    pageReadyId: null, // the `ready` id of the first connection: frames up to it happened before the page loaded
    labels: new Map(), // label id -> {id, name, color}
    label: null, // the list's label filter (an id), or null
    canned: null, // the canned responses (loaded when "/" is first typed), or null
  };

  function since() {
    return state.lastEventId || 0;
  }

  function upsertConversation(data, frameId, restSince) {
    const entry = state.conversations.get(data.id);
    if (frameId === undefined && entry && entry.v > restSince) return entry; // a frame is at least as new
    const next = { data, v: frameId !== undefined ? frameId : entry ? entry.v : 0, at: ms(data.last_message_at) };
    state.conversations.set(data.id, next);
    state.missing.delete(data.id);
    return next;
  }

  function upsertMessage(data, frameId, restSince) {
    const thread = state.threads.get(data.conversation);
    if (!thread) return; // not loaded: it comes with the thread when it is opened
    const entry = thread.messages.get(data.id);
    if (entry) {
      if (frameId === undefined && entry.v > restSince) return;
      const old = entry.data.status;
      const moved = old === "failed" ? data.status === "failed"
        : data.status === "failed" || (STATUS_RANK[data.status] ?? 0) >= (STATUS_RANK[old] ?? 0);
      if (!moved) return; // a stale answer: never show a tick going backwards
    }
    thread.messages.set(data.id, { data, v: frameId !== undefined ? frameId : entry ? entry.v : 0 });
  }

  /** The list's view of a ticket ({id, status, priority, assignee_id, waiting_since, response_due_at,
   * resolution_due_at}) from a full ticket. */
  function summaryOf(ticket) {
    return {
      id: ticket.id,
      status: ticket.status,
      priority: ticket.priority,
      assignee_id: ticket.assignee ? ticket.assignee.id : null,
      waiting_since: ticket.waiting_since,
      response_due_at: ticket.response_due_at,
      resolution_due_at: ticket.resolution_due_at,
    };
  }

  /** The conversation status (inbox tab) of a conversation whose current ticket has this status. */
  function statusOfTicket(status) {
    return status === "closed" ? "resolved" : status;
  }

  function signatureOf(summary) {
    if (!summary) return "";
    return JSON.stringify([summary.id, summary.status, summary.priority, summary.assignee_id ?? null,
      ms(summary.waiting_since) || 0, ms(summary.response_due_at) || 0, ms(summary.resolution_due_at) || 0]);
  }

  /** Store a full ticket (from a frame or a REST answer) and bring its conversation's summary up to date. */
  function upsertTicket(ticket, frameId, restSince) {
    const entry = state.tickets.get(ticket.id);
    if (frameId === undefined && entry && entry.v > restSince) return;
    state.tickets.set(ticket.id, { data: ticket, v: frameId !== undefined ? frameId : entry ? entry.v : 0 });
    const conversation = state.conversations.get(ticket.conversation);
    if (!conversation || !conversation.data.ticket || conversation.data.ticket.id !== ticket.id) return;
    if (frameId === undefined && conversation.v > restSince) return; // a newer frame already set the summary
    // The tabs follow the current ticket (closed counts as resolved), as the server's `status` does.
    conversation.data = { ...conversation.data, ticket: summaryOf(ticket), status: statusOfTicket(ticket.status) };
    if (frameId !== undefined) conversation.v = frameId;
    state.ticketFetches.set(ticket.id, signatureOf(conversation.data.ticket)); // the full ticket matches it
  }

  function upsertNote(note) {
    const thread = state.threads.get(note.conversation);
    if (!thread) return false; // not loaded: it comes with the thread when it is opened
    const isNew = !thread.notes.has(note.id);
    thread.notes.set(note.id, note); // notes never change once written
    return isNew;
  }

  // ------------------------------------------------------------------ websocket

  const socket = {
    ws: null,
    attempt: 0,
    timer: null,
    openTimer: null,
    lastHeard: 0,
    status: "connecting",
  };

  function connect() {
    clearTimeout(socket.timer);
    socket.timer = null;
    if (socket.ws && socket.ws.readyState <= 1) return; // connecting or open
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    let ws;
    try {
      ws = new WebSocket(`${scheme}//${location.host}/ws/inbox/`);
    } catch (error) {
      scheduleReconnect();
      return;
    }
    socket.ws = ws;
    setConnection(socket.attempt ? "reconnecting" : "connecting");
    clearTimeout(socket.openTimer);
    socket.openTimer = setTimeout(() => { if (socket.ws === ws && ws.readyState === 0) ws.close(); }, 10000);
    ws.onopen = () => {
      if (socket.ws !== ws) return;
      clearTimeout(socket.openTimer);
      socket.lastHeard = Date.now();
      if (state.synced) send(ws, { type: "resume", after: state.lastEventId });
    };
    ws.onmessage = (event) => {
      if (socket.ws !== ws) return;
      socket.lastHeard = Date.now();
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      if (frame && typeof frame === "object") {
        onFrame(frame, ws);
        UI.live.feed(frame);
      }
    };
    ws.onclose = (event) => {
      if (socket.ws !== ws) return;
      socket.ws = null;
      clearTimeout(socket.openTimer);
      if (event.code === 4401) {
        // access revoked (signed out everywhere, deactivated, removed from this helpdesk): sign in again
        location.assign("/login/?next=" + encodeURIComponent(location.pathname));
        return;
      }
      scheduleReconnect();
    };
    ws.onerror = () => {}; // a close event follows
  }

  function send(ws, frame) {
    if (ws && ws.readyState === 1) ws.send(JSON.stringify(frame));
  }

  function scheduleReconnect() {
    setConnection(navigator.onLine === false ? "offline" : "reconnecting");
    clearTimeout(socket.timer);
    const ceiling = Math.min(15000, 500 * 2 ** socket.attempt);
    socket.attempt += 1;
    const delay = ceiling / 2 + Math.random() * (ceiling / 2); // exponential backoff with jitter
    socket.timer = setTimeout(connect, delay);
  }

  /** Reconnect now (network back, tab visible again, the indicator clicked). */
  function reconnectNow() {
    if (socket.ws && socket.ws.readyState === 1) {
      ping();
      return;
    }
    if (socket.ws && socket.ws.readyState === 0) return;
    socket.attempt = Math.min(socket.attempt, 1);
    connect();
  }

  function ping() {
    const ws = socket.ws;
    if (!ws || ws.readyState !== 1) return;
    const asked = Date.now();
    send(ws, { type: "ping" });
    setTimeout(() => {
      if (socket.ws === ws && socket.lastHeard < asked) ws.close(); // silent for 10 s: a dead connection
    }, 10000);
  }

  function onFrame(frame, ws) {
    if (frame.type === "ready") {
      const serverLast = Number(frame.last_event_id) || 0;
      socket.attempt = 0;
      setConnection("live");
      presence.sent = null;
      announcePresence(false);
      if (!state.synced) {
        if (state.pageReadyId === null) state.pageReadyId = serverLast;
        state.lastEventId = serverLast;
        state.resumeTarget = null;
        state.synced = true;
        loadEverything();
      } else if (serverLast < state.lastEventId) {
        // The server's event log is behind what we applied (a reset database): start over from it.
        state.lastEventId = serverLast;
        state.resumeTarget = null;
        state.conversations.clear();
        state.threads.clear();
        view.renderedThread = null;
        send(ws, { type: "resume", after: serverLast });
        loadEverything();
      } else {
        state.resumeTarget = serverLast > state.lastEventId ? serverLast : null;
      }
      return;
    }
    if (frame.type === "pong" || frame.type === "error") return;
    if (frame.type === "presence") {
      onPresence(frame);
      return;
    }
    if (typeof frame.id !== "number" || state.lastEventId === null) return;
    if (frame.id <= state.lastEventId) return; // already applied
    if (state.resumeTarget !== null) {
      if (frame.id > state.resumeTarget) return; // a live frame ahead of the replay: the replay resends it
      if (frame.id === state.resumeTarget) state.resumeTarget = null;
    }
    applyFrame(frame);
    state.lastEventId = frame.id;
  }

  function applyFrame(frame) {
    // Only the API shapes are applied; other event types just advance the id.
    const ticket = frame.ticket && typeof frame.ticket === "object" && "id" in frame.ticket &&
      "conversation" in frame.ticket ? frame.ticket : null;
    const note = frame.note && typeof frame.note === "object" && "id" in frame.note &&
      "conversation" in frame.note ? frame.note : null;
    const message = frame.message && typeof frame.message === "object" && "id" in frame.message &&
      "conversation" in frame.message ? frame.message : null;
    const conversation = frame.conversation && typeof frame.conversation === "object" && "id" in frame.conversation &&
      "contact" in frame.conversation ? frame.conversation : null;
    if (conversation) upsertConversation(conversation, frame.id);
    if (ticket) upsertTicket(ticket, frame.id);
    if (note && frame.type === "note.created" && upsertNote(note) && note.conversation === state.selectedId) {
      noteNewMessage();
    }
    if (WARNING_FRAMES.has(frame.type) && frame.warning && typeof frame.warning === "object") {
      onWarning(frame);
    }
    if (frame.type === "mention.created" && frame.mention && typeof frame.mention === "object") {
      onMention(frame.mention);
    }
    if (message) {
      const thread = state.threads.get(message.conversation);
      const isNew = thread && !thread.messages.has(message.id);
      upsertMessage(message, frame.id);
      if (message.conversation === state.selectedId) {
        if (isNew) noteNewMessage(message);
        if (frame.type === "message.created" && message.direction === "in") readIfWatching(message.conversation);
      }
    }
    scheduleRender();
  }

  function setConnection(status) {
    socket.status = status;
    const node = $("[data-testid=connection-status]");
    if (!node) return;
    node.dataset.state = status;
    $(".conn-label", node).textContent = t("conn_" + status);
    node.title = t("conn_" + (status === "connecting" ? "reconnecting" : status) + "_title");
  }

  // ------------------------------------------------------------------ loading

  function loadEverything() {
    loadList(true);
    loadLabels();
    loadMentions();
    loadMembers();
    loadMe();
    if (state.selectedId !== null) {
      loadThread(state.selectedId);
      readIfWatching(state.selectedId);
    }
  }

  async function loadList(reset) {
    const list = state.list;
    if (!reset && (list.loading || !list.next)) return;
    if (reset) {
      list.generation += 1;
      list.next = null;
      list.loaded = false;
    }
    const generation = list.generation;
    const query = new URLSearchParams();
    if (state.filter) query.set("status", state.filter);
    if (state.ordering !== "recent") query.set("ordering", state.ordering);
    if (state.label !== null) query.set("label", String(state.label));
    const url = reset ? `${API}/conversations/` + (query.toString() ? `?${query}` : "") : list.next;
    const restSince = since();
    list.loading = true;
    list.error = null;
    scheduleRender();
    try {
      const page = await request("GET", url);
      if (generation !== list.generation) return;
      for (const conversation of page.results || []) upsertConversation(conversation, undefined, restSince);
      list.next = pathOf(page.next);
      list.loaded = true;
    } catch (error) {
      if (generation === list.generation) list.error = error.message;
    } finally {
      if (generation === list.generation) list.loading = false;
      scheduleRender();
    }
  }

  function threadOf(id) {
    let thread = state.threads.get(id);
    if (!thread) {
      thread = { messages: new Map(), notes: new Map(), previous: null, loaded: false, loading: false, error: null,
        olderLoading: false };
      state.threads.set(id, thread);
    }
    return thread;
  }

  async function loadThread(id) {
    const thread = threadOf(id);
    const restSince = since();
    thread.loading = true;
    thread.error = null;
    scheduleRender();
    if (!state.conversations.has(id)) loadConversation(id);
    loadNotes(id);
    try {
      const page = await request("GET", `${API}/conversations/${id}/messages/?page=last`);
      const results = page.results || [];
      const firstLoad = !thread.loaded;
      const known = [...thread.messages.keys()];
      if (thread.loaded && results.length && known.length && results[0].id > Math.max(...known)) {
        thread.messages.clear(); // whatever we held is older than this whole page: start from the page
        thread.loaded = false;
      }
      for (const message of results) upsertMessage(message, undefined, restSince);
      if (!thread.loaded) thread.previous = pathOf(page.previous);
      thread.loaded = true;
      if (id === state.selectedId && firstLoad) view.stickToBottom = true;
    } catch (error) {
      thread.error = error;
    } finally {
      thread.loading = false;
      scheduleRender();
    }
  }

  async function loadConversation(id) {
    const restSince = since();
    try {
      upsertConversation(await request("GET", `${API}/conversations/${id}/`), undefined, restSince);
    } catch (error) {
      if (error.status === 404) state.missing.add(id);
    }
    scheduleRender();
  }

  /** Every private note of a conversation (a few pages at most). Frames add the ones written later. */
  async function loadNotes(id) {
    const thread = threadOf(id);
    if (thread.notesLoading) return;
    thread.notesLoading = true;
    try {
      let url = `${API}/conversations/${id}/notes/`;
      for (let pages = 0; url && pages < 20; pages += 1) {
        const page = await request("GET", url);
        for (const note of page.results || []) upsertNote(note);
        url = pathOf(page.next);
      }
    } catch (error) {
      if (error.status !== 404) toast(error.message);
    } finally {
      thread.notesLoading = false;
      scheduleRender();
    }
  }

  /** The full ticket (reopen count, first or next response...) behind a conversation's ticket summary. */
  async function loadTicket(id, signature) {
    state.ticketFetches.set(id, signature);
    const restSince = since();
    try {
      upsertTicket(await request("GET", `${API}/tickets/${id}/`), undefined, restSince);
      state.ticketFetches.set(id, signature); // once per state of the summary, even if a frame overtook us
    } catch (error) {
      // the summary still shows the essentials; the next change of it tries again
    }
    scheduleRender();
  }

  async function loadMembers() {
    try {
      const page = await request("GET", `${API}/members/`);
      state.members = new Map((page.results || []).map((member) => [member.id, member]));
    } catch (error) {
      // the assignee picker shows "Assign to me" / names from the tickets meanwhile
    }
    scheduleRender();
  }

  async function loadMe() {
    try {
      state.me = await request("GET", `${API}/me/`);
      if (state.me) state.members.set(state.me.id, { ...(state.members.get(state.me.id) || {}), ...state.me });
    } catch (error) {
      state.me = null;
    }
    renderAvailability();
  }

  async function loadEarlier() {
    const id = state.selectedId;
    const thread = state.threads.get(id);
    if (!thread || !thread.previous || thread.olderLoading) return;
    const restSince = since();
    thread.olderLoading = true;
    scheduleRender();
    const box = $("[data-testid=message-list]");
    const fromBottom = box.scrollHeight - box.scrollTop;
    try {
      const page = await request("GET", thread.previous);
      for (const message of page.results || []) upsertMessage(message, undefined, restSince);
      thread.previous = pathOf(page.previous);
    } catch (error) {
      toast(error.message);
    } finally {
      thread.olderLoading = false;
      if (id === state.selectedId) view.keepFromBottom = fromBottom;
      scheduleRender();
    }
  }

  // ------------------------------------------------------------------ actions

  function readIfWatching(id) {
    if (document.visibilityState === "visible" && id === state.selectedId) markRead(id);
  }

  function markRead(id) {
    const inFlight = state.readInFlight.get(id);
    if (inFlight) {
      inFlight.again = true;
      return;
    }
    const job = { again: false };
    state.readInFlight.set(id, job);
    const restSince = since();
    request("POST", `${API}/conversations/${id}/read/`)
      .then((conversation) => upsertConversation(conversation, undefined, restSince))
      .catch(() => {})
      .finally(() => {
        state.readInFlight.delete(id);
        if (job.again) markRead(id);
        scheduleRender();
      });
  }

  /** Resolve (`e`) and reopen act on the conversation's ticket; a conversation without one (older data) falls back
   * to its own status. */
  function setStatus(status) {
    const entry = state.conversations.get(state.selectedId);
    if (!entry) return;
    if (entry.data.ticket) {
      if (entry.data.ticket.status !== status) updateTicket({ status });
      return;
    }
    setConversationStatus(status);
  }

  /** PATCH the selected conversation's ticket with {status|priority|assignee}. */
  async function updateTicket(changes) {
    const id = state.selectedId;
    const entry = state.conversations.get(id);
    const summary = entry && entry.data.ticket;
    if (!summary || state.ticketBusy) return;
    state.ticketBusy = true;
    state.ticketError = "";
    scheduleRender();
    const restSince = since();
    try {
      upsertTicket(await request("PATCH", `${API}/tickets/${summary.id}/`, { json: changes }), undefined, restSince);
    } catch (error) {
      if (id === state.selectedId) state.ticketError = error.message;
      else toast(error.message);
    } finally {
      state.ticketBusy = false;
      scheduleRender();
    }
  }

  function assignToMe() {
    const entry = state.conversations.get(state.selectedId);
    const me = CONFIG.user && CONFIG.user.id;
    if (!entry || !entry.data.ticket || !me || entry.data.ticket.assignee_id === me) return;
    updateTicket({ assignee: me });
  }

  async function setAvailability(available) {
    if (!state.me || state.meBusy) return;
    state.meBusy = true;
    renderAvailability();
    try {
      state.me = await request("PATCH", `${API}/me/`, { json: { available } });
    } catch (error) {
      toast(error.message);
    } finally {
      state.meBusy = false;
      renderAvailability();
    }
  }

  async function setConversationStatus(status) {
    const id = state.selectedId;
    const entry = state.conversations.get(id);
    if (id === null || !entry || state.statusBusy || entry.data.status === status) return;
    state.statusBusy = true;
    scheduleRender();
    const restSince = since();
    try {
      upsertConversation(await request("POST", `${API}/conversations/${id}/status/`, { json: { status } }),
        undefined, restSince);
    } catch (error) {
      toast(error.message);
    } finally {
      state.statusBusy = false;
      scheduleRender();
    }
  }

  async function sendReply() {
    if (state.composerMode === "note") {
      sendNote();
      return;
    }
    const id = state.selectedId;
    const box = $("[data-testid=reply-box]");
    const text = box.value;
    if (id === null || state.sending || !text.trim() || box.disabled) return;
    state.sending = true;
    state.replyError = "";
    box.value = "";
    state.drafts.delete(id);
    autoGrow(box);
    view.stickToBottom = true;
    scheduleRender();
    const restSince = since();
    try {
      const message = await request("POST", `${API}/conversations/${id}/messages/`, { json: { text } });
      threadOf(id);
      upsertMessage(message, undefined, restSince);
      if (id === state.selectedId) view.stickToBottom = true;
    } catch (error) {
      if (id === state.selectedId) {
        state.replyError = error.message;
        if (!box.value) {
          box.value = text; // give the text back to fix or keep
          autoGrow(box);
        }
      } else {
        toast(error.message);
        if (!state.drafts.get(id)) state.drafts.set(id, text);
      }
      if (error.status === 409) loadConversation(id); // our idea of the window was out of date
    } finally {
      state.sending = false;
      scheduleRender();
      if (id === state.selectedId) box.focus();
    }
  }

  async function sendNote() {
    const id = state.selectedId;
    const box = $("[data-testid=reply-box]");
    const text = box.value;
    if (id === null || state.sending || !text.trim()) return;
    state.sending = true;
    state.replyError = "";
    box.value = "";
    state.drafts.delete(id);
    autoGrow(box);
    view.stickToBottom = true;
    scheduleRender();
    try {
      const note = await request("POST", `${API}/conversations/${id}/notes/`, { json: { text } });
      threadOf(id);
      upsertNote(note);
      if (id === state.selectedId) view.stickToBottom = true;
    } catch (error) {
      if (id === state.selectedId) {
        state.replyError = error.message;
        if (!box.value) {
          box.value = text;
          autoGrow(box);
        }
      } else {
        toast(error.message);
        if (!state.drafts.get(id)) state.drafts.set(id, text);
      }
    } finally {
      state.sending = false;
      scheduleRender();
      if (id === state.selectedId) box.focus();
    }
  }

  function setComposerMode(mode, focus) {
    state.composerMode = mode === "note" ? "note" : "reply";
    state.replyError = "";
    const entry = state.conversations.get(state.selectedId);
    renderComposer(entry ? entry.data : null);
    const box = $("[data-testid=reply-box]");
    if (focus && !box.disabled) box.focus();
  }

  function select(id, options = {}) {
    if (id === null || id === undefined || Number.isNaN(id)) return;
    const box = $("[data-testid=reply-box]");
    if (state.selectedId !== null && state.selectedId !== id) {
      if (box.value) state.drafts.set(state.selectedId, box.value);
      else state.drafts.delete(state.selectedId);
    }
    const changed = state.selectedId !== id;
    state.selectedId = id;
    if (changed) {
      state.replyError = "";
      state.ticketError = "";
      state.composerMode = "reply"; // a note is always a deliberate choice, per conversation
      closePicker();
      presence.typing = false;
      announcePresence(false);
      box.value = state.drafts.get(id) || "";
      autoGrow(box);
      view.stickToBottom = true;
      view.newBelow = 0;
      view.renderedThread = null;
    }
    if (location.hash !== `#c=${id}`) history.replaceState(null, "", `#c=${id}`);
    root.classList.add("has-selection");
    if (state.synced) { // before the first `ready`, loadEverything() loads it
      loadThread(id);
      markRead(id);
    }
    scheduleRender();
    if (options.focusReply) box.focus();
    if (options.scrollList) view.scrollSelectedIntoView = true;
  }

  function selectedFromHash() {
    const match = location.hash.match(/(?:^#|&)c=(\d+)/);
    return match ? Number(match[1]) : null;
  }

  function move(step) {
    const ids = visibleConversationIds();
    if (!ids.length) return;
    const at = ids.indexOf(state.selectedId);
    const next = at === -1 ? (step > 0 ? 0 : ids.length - 1) : Math.min(ids.length - 1, Math.max(0, at + step));
    if (ids[next] !== state.selectedId) select(ids[next], { scrollList: true });
    if (next >= ids.length - 3) loadList(false);
  }

  function setFilter(filter) {
    if (state.filter === filter) return;
    state.filter = filter;
    loadList(true);
    view.listScrollTop = true;
    scheduleRender();
  }

  function setOrdering(ordering) {
    if (state.ordering === ordering) return;
    state.ordering = ordering === "window" ? "window" : "recent";
    loadList(true);
    view.listScrollTop = true;
    scheduleRender();
  }

  // ------------------------------------------------------------------ rendering

  const view = {
    scheduled: false,
    stickToBottom: true,
    keepFromBottom: null,
    newBelow: 0,
    renderedThread: null,
    listItems: new Map(), // conversation id -> {node, key}
    messageNodes: new Map(), // message id -> {node, key}
    fixedNodes: new Map(), // day separators and notes of the thread, by content
    scrollSelectedIntoView: false,
    listScrollTop: false,
  };

  /** Render once per animation frame; hidden tabs get no animation frames, so a timer stands in there
   * (the title's unread count keeps up while the agent works in another tab). */
  function scheduleRender() {
    if (view.scheduled) return;
    view.scheduled = true;
    let frame = 0;
    let timer = 0;
    const run = () => {
      cancelAnimationFrame(frame);
      clearTimeout(timer);
      if (!view.scheduled) return;
      view.scheduled = false;
      render();
    };
    frame = requestAnimationFrame(run);
    timer = setTimeout(run, 250);
  }

  const baseTitle = document.title;

  function render() {
    renderList();
    renderThread();
    renderPresence();
    let unread = 0;
    for (const entry of state.conversations.values()) {
      if (!(entry.data.id === state.selectedId && document.visibilityState === "visible")) {
        unread += entry.data.unread_count || 0;
      }
    }
    const title = (unread ? `(${unread > 99 ? "99+" : unread}) ` : "") + baseTitle;
    if (document.title !== title) document.title = title;
  }

  /** Make `container`'s children exactly `nodes`, moving only what is out of place (keeps text selections). */
  function reconcile(container, nodes) {
    let cursor = container.firstChild;
    for (const node of nodes) {
      if (node === cursor) cursor = cursor.nextSibling;
      else container.insertBefore(node, cursor);
    }
    while (cursor) {
      const next = cursor.nextSibling;
      cursor.remove();
      cursor = next;
    }
  }

  function visibleConversationIds() {
    const rows = [];
    const now = Date.now();
    for (const entry of state.conversations.values()) {
      if (state.filter && entry.data.status !== state.filter) continue;
      if (state.label !== null && !(entry.data.labels || []).includes(state.label)) continue;
      if (state.ordering === "window" && !(entry.data.ticket && entry.data.ticket.waiting_since &&
          ms(entry.data.window_expires_at) > now)) continue; // only customers still waiting, window open
      rows.push(entry);
    }
    if (state.ordering === "window") {
      rows.sort((a, b) => ms(a.data.window_expires_at) - ms(b.data.window_expires_at) || a.data.id - b.data.id);
      return rows.map((entry) => entry.data.id);
    }
    rows.sort((a, b) => {
      const at = Number.isFinite(a.at) ? a.at : -Infinity;
      const bt = Number.isFinite(b.at) ? b.at : -Infinity;
      return bt - at || b.data.id - a.data.id;
    });
    return rows.map((entry) => entry.data.id);
  }

  function windowPill(conversation) {
    const window = windowOf(conversation);
    if (window.state === "closed") {
      return el("span", { class: "win-pill closed", "data-testid": "window-indicator", "data-state": "closed",
        title: t("window_pill_closed_title"), text: t("window_pill_closed") });
    }
    return el("span", { class: "win-pill " + window.state, "data-testid": "window-indicator",
      "data-state": window.state, title: t("window_pill_title", { time: duration(window.left, false) }) },
    icon("clock"), duration(window.left, true));
  }

  /** The customer's wait against the response target: null when nobody is waiting or there is no target. */
  function slaOf(ticket) {
    if (!ticket || !ticket.waiting_since || !ticket.response_due_at || !ACTIVE_TICKET.has(ticket.status)) return null;
    const due = ms(ticket.response_due_at);
    const start = ms(ticket.waiting_since);
    if (!Number.isFinite(due)) return null;
    const now = Date.now();
    const left = due - now; // calendar time (the deadline as a moment)
    // The target is business time: what is left of it counts only business hours (paused outside them).
    const businessLeft = businessMs(now, due);
    const total = businessMs(start, due);
    const state = left <= 0 ? "overdue"
      : Number.isFinite(total) && total > 0 && businessLeft / total < SLA_WARN_SHARE ? "warning" : "ok";
    return { state, left, businessLeft, due, paused: left > 0 && !inBusinessHours(now) };
  }

  function slaClock(ticket) {
    const sla = slaOf(ticket);
    if (!sla) return null;
    const at = fullFormat.format(sla.due);
    const title = sla.state === "overdue"
      ? t("sla_overdue_title", { time: duration(-sla.left, false), at })
      : t("sla_due_title", { time: duration(sla.businessLeft, false), at }) + (sla.paused ? " " + t("sla_paused") : "");
    return el("span", { class: "sla-clock " + sla.state + (sla.paused ? " paused" : ""), "data-testid": "sla-clock",
      "data-state": sla.state, "data-paused": sla.paused ? "true" : "false", title },
    sla.state === "overdue" ? icon("alert") : null,
    sla.state === "overdue" ? t("sla_overdue") : t("sla_left", { time: duration(sla.businessLeft, true) }));
  }

  function memberName(id, ticket) {
    const member = state.members.get(id);
    if (member) return member.name || member.email;
    const full = ticket && state.tickets.get(ticket.id);
    if (full && full.data.assignee && full.data.assignee.id === id) return full.data.assignee.name;
    return "#" + id;
  }

  function assigneeBadge(ticket) {
    if (ticket.assignee_id === null || ticket.assignee_id === undefined) {
      return el("span", { class: "assignee none", "data-testid": "assignee", "data-assignee": "",
        text: t("unassigned") });
    }
    const name = memberName(ticket.assignee_id, ticket);
    const mine = CONFIG.user && ticket.assignee_id === CONFIG.user.id;
    return el("span", { class: "assignee" + (mine ? " mine" : ""), "data-testid": "assignee",
      "data-assignee": ticket.assignee_id, title: t("assigned_to", { name }), "aria-label": t("assigned_to", { name }),
      style: `--hue:${(Number(ticket.assignee_id) * 83) % 360}` }, initials(name));
  }

  function priorityBadge(ticket) {
    const priority = ticket.priority || "normal";
    return el("span", { class: "prio " + priority, "data-testid": "priority-badge", "data-priority": priority,
      title: t("priority_title", { priority: t("priority_" + priority) }) },
    priority === "urgent" || priority === "high" ? icon("flag") : null, t("priority_" + priority));
  }

  /** A warning frame's mark on a conversation, while it still applies (null otherwise). */
  function alertOf(conversation) {
    const alert = state.alerts.get(conversation.id);
    if (!alert) return null;
    const ticket = conversation.ticket;
    let valid = Boolean(ticket && ticket.id === alert.ticketId);
    if (valid && alert.kind === "window") {
      valid = Boolean(ticket.waiting_since) && ms(conversation.window_expires_at) === ms(alert.due_at);
    } else if (valid && alert.kind === "resolution") {
      valid = ACTIVE_TICKET.has(ticket.status) && Boolean(ticket.resolution_due_at);
    } else if (valid) {
      valid = ACTIVE_TICKET.has(ticket.status) && Boolean(ticket.waiting_since);
    }
    if (!valid) {
      state.alerts.delete(conversation.id);
      return null;
    }
    const overdue = alert.passed || ms(alert.due_at) <= Date.now();
    return { ...alert, level: overdue ? "overdue" : "warning" };
  }

  function alertLabel(alert) {
    if (alert.kind === "window") return t(alert.level === "overdue" ? "alert_window_expired" : "alert_window_warning");
    return t(alert.level === "overdue" ? "alert_sla_breached" : "alert_sla_warning", { target: t("kind_" + alert.kind) });
  }

  function conversationItem(conversation) {
    const unread = conversation.id === state.selectedId && document.visibilityState === "visible"
      ? 0 : conversation.unread_count;
    const name = contactName(conversation.contact);
    const number = contactNumber(conversation.contact);
    const ticket = conversation.ticket || null;
    const alert = alertOf(conversation);
    const ticketStatus = ticket ? ticket.status : conversation.status;
    return el("a", {
      class: "conv" + (conversation.id === state.selectedId ? " active" : "") + (unread ? " unread" : "") +
        (alert ? " alert-" + alert.level : ""),
      href: `#c=${conversation.id}`,
      role: "option",
      "aria-selected": conversation.id === state.selectedId ? "true" : "false",
      "data-testid": "conversation-item",
      "data-conversation-id": conversation.id,
      "data-wa-id": (conversation.contact && conversation.contact.wa_id) || "",
      "data-status": conversation.status,
      "data-ticket-status": ticket ? ticket.status : "",
      "data-alert": alert ? alert.level : "",
    },
    avatar(conversation),
    el("span", { class: "conv-main" },
      el("span", { class: "conv-row" },
        el("span", { class: "conv-name", "data-testid": "conversation-name", text: name }),
        el("time", { class: "conv-time", datetime: conversation.last_message_at || "",
          title: conversation.last_message_at ? fullFormat.format(ms(conversation.last_message_at)) : "",
          text: relativeTime(conversation.last_message_at) })),
      el("span", { class: "conv-row" },
        el("span", { class: "conv-preview", "data-testid": "conversation-preview",
          text: conversation.last_message_preview || "" }),
        unread ? el("span", { class: "badge", "data-testid": "unread-badge", title: t("unread_title", { n: unread }),
          text: unread > 99 ? "99+" : String(unread) }) : null),
      el("span", { class: "conv-meta" },
        ticket ? priorityBadge(ticket) : null,
        slaClock(ticket),
        windowPill(conversation),
        ticketStatus !== "open"
          ? el("span", { class: "status-chip " + ticketStatus, "data-testid": "ticket-status-chip",
            text: t("status_" + ticketStatus) })
          : null,
        alert ? el("span", { class: "conv-alert " + alert.level, "data-testid": "conversation-alert",
          "data-kind": alert.kind, "data-level": alert.level, title: alertLabel(alert), "aria-label": alertLabel(alert),
          role: "img" }, icon(alert.level === "overdue" ? "alert" : "clock")) : null,
        ticket ? assigneeBadge(ticket) : null,
        ...labelChips(conversation.labels, true))));
  }

  function renderList() {
    const container = $("[data-testid=conversation-list]");
    const ids = visibleConversationIds();
    const wanted = [];
    const now = Math.floor(Date.now() / 30000); // relative times and windows change as time passes
    for (const id of ids) {
      const conversation = state.conversations.get(id).data;
      const alert = state.alerts.get(id);
      const assignee = conversation.ticket && conversation.ticket.assignee_id;
      const member = assignee ? state.members.get(assignee) : null;
      const key = JSON.stringify([conversation, state.selectedId === id, state.filter, now,
        document.visibilityState, alert || null, member ? member.name : null]);
      let item = view.listItems.get(id);
      if (!item || item.key !== key) {
        const node = conversationItem(conversation);
        if (item) item.node.replaceWith(node);
        item = { node, key };
        view.listItems.set(id, item);
      }
      wanted.push(item.node);
    }
    const keep = new Set(ids);
    for (const [id, item] of view.listItems) {
      if (!keep.has(id)) {
        item.node.remove();
        view.listItems.delete(id);
      }
    }
    reconcile(container, wanted);

    document.querySelectorAll("[data-testid=status-tab]").forEach((tab) => {
      const active = tab.dataset.status === state.filter;
      tab.classList.toggle("active", active);
      tab.setAttribute("aria-selected", active ? "true" : "false");
    });
    // The window view is a filter as well as an order: it says so while it is on.
    document.querySelectorAll("[data-testid=view-option]").forEach((option) => {
      const active = option.dataset.view === state.ordering;
      option.classList.toggle("active", active);
      option.setAttribute("aria-checked", active ? "true" : "false");
      option.tabIndex = active ? 0 : -1;
    });
    $("[data-testid=view-note]").hidden = state.ordering !== "window";

    const list = state.list;
    const footer = $("[data-testid=conversation-list-footer]");
    footer.replaceChildren();
    if (list.error) {
      footer.append(el("div", { class: "list-note error", role: "alert", text: list.error }),
        el("button", { type: "button", class: "btn small", text: t("retry"),
          onclick: () => loadList(!list.loaded) }));
    } else if (list.loading) {
      footer.append(el("div", { class: "list-note", text: t("loading") }));
    } else if (list.next) {
      footer.append(el("button", { type: "button", class: "btn small ghost", "data-testid": "load-more-conversations",
        text: t("load_more"), onclick: () => loadList(false) }));
    } else if (list.loaded && !ids.length) {
      footer.append(el("div", { class: "list-empty", "data-testid": "conversation-list-empty",
        text: state.ordering === "window" ? t("no_conversations_window")
          : state.filter ? t("no_conversations_filter") : t("no_conversations") }));
    }
    if (view.listScrollTop) {
      container.parentElement.scrollTop = 0;
      view.listScrollTop = false;
    }
    if (view.scrollSelectedIntoView) {
      const item = view.listItems.get(state.selectedId);
      if (item) item.node.scrollIntoView({ block: "nearest" });
      view.scrollSelectedIntoView = false;
    }
  }

  // -- one message

  function tick(message) {
    const status = message.status;
    const glyph = { queued: "clock", sent: "check", delivered: "checks", read: "checks", failed: "alert" }[status];
    if (!glyph) return null;
    const when = { sent: message.sent_at, delivered: message.delivered_at, read: message.read_at,
      failed: message.failed_at }[status];
    const label = t("tick_" + status) + (when ? " · " + fullFormat.format(ms(when)) : "");
    return el("span", { class: "tick " + status, "data-testid": "message-status", "data-status": status,
      title: label, "aria-label": label, role: "img" }, icon(glyph));
  }

  function chip(iconName, title, lines) {
    return el("div", { class: "chip" }, el("span", { class: "chip-icon" }, icon(iconName)),
      el("span", { class: "chip-text" }, el("span", { class: "chip-title", text: title }),
        ...lines.filter(Boolean).map((line) => el("span", { class: "chip-sub", text: line }))));
  }

  function fileSize(bytes) {
    if (typeof bytes !== "number") return "";
    if (bytes < 1024) return t("size_bytes", { n: bytes });
    if (bytes < 1024 * 1024) return t("size_kb", { n: Math.round(bytes / 1024) });
    return t("size_mb", { n: (bytes / (1024 * 1024)).toFixed(1) });
  }

  /** A file of a message: shown inline once downloaded (photo and sticker open full size, audio and video
   * play), a document with its name, size and download; while downloading or after a failure, it says so. */
  function mediaView(message, kind, part) {
    const media = message.media || {};
    const label = kind === "audio" && (part.voice || media.voice) ? t("media_voice") : t("media_" + kind);
    const name = media.filename || part.filename || "";
    if (media.status !== "ready" || !media.url) {
      const state = media.status === "failed" ? t("media_failed", { reason: media.error || "" })
        : media.status === "pending" ? t("media_downloading") : t("media_unavailable");
      return el("div", { class: "media-state", "data-testid": "message-media", "data-kind": kind,
        "data-state": media.status || "none" }, chip(kind, name || label, [name ? label : "", state]));
    }
    const attrs = { "data-testid": "message-media", "data-kind": kind, "data-state": "ready" };
    if (kind === "image" || kind === "sticker") {
      return el("a", { ...attrs, class: "media-image" + (kind === "sticker" ? " sticker" : ""), href: media.url,
        target: "_blank", rel: "noopener", title: t("media_open") },
      el("img", { src: media.url, alt: media.caption || label, loading: "lazy" }));
    }
    if (kind === "audio") {
      return el("div", { ...attrs, class: "media-audio" }, el("span", { class: "media-label", text: label }),
        el("audio", { src: media.url, controls: true, preload: "metadata" }));
    }
    if (kind === "video") {
      return el("video", { ...attrs, class: "media-video", src: media.url, controls: true, preload: "metadata" });
    }
    return el("a", { ...attrs, class: "media-document", href: media.url, download: name || "" },
      chip("document", name || label, [[media.mime_type, fileSize(media.size)].filter(Boolean).join(" · "),
        t("media_download")]));
  }

  function textBlock(text) {
    return el("div", { class: "msg-text", "data-testid": "message-text" }, linkified(text));
  }

  /** The visible content of a message, from its type and the raw WhatsApp object in `content`. */
  function messageBody(message) {
    const content = message.content && typeof message.content === "object" ? message.content : {};
    const kind = message.type;
    const body = message.direction === "in" ? content[kind] : content; // outbound content is the type object
    const part = body && typeof body === "object" ? body : {};
    const nodes = [];
    switch (kind) {
      case "text":
        nodes.push(textBlock(message.text || part.body || ""));
        break;
      case "image":
      case "video":
      case "audio":
      case "document":
      case "sticker": {
        nodes.push(mediaView(message, kind, part));
        const caption = (message.media && message.media.caption) || part.caption ||
          (kind === "document" || message.direction === "out" ? "" : message.text);
        if (caption) nodes.push(textBlock(caption));
        break;
      }
      case "location": {
        const lat = Number(part.latitude);
        const long = Number(part.longitude);
        const place = [part.name, part.address].filter(Boolean);
        const coordinates = Number.isFinite(lat) && Number.isFinite(long) ? `${lat}, ${long}` : "";
        const box = chip("pin", place[0] || t("location"), [place[1] || "", coordinates]);
        nodes.push(box);
        if (coordinates) {
          nodes.push(el("a", { class: "msg-link", href: `https://maps.google.com/?q=${lat},${long}`, target: "_blank",
            rel: "noopener noreferrer", "data-testid": "location-link", text: t("open_in_maps") }));
        }
        break;
      }
      case "contacts": {
        const cards = Array.isArray(content.contacts) ? content.contacts : [];
        for (const card of cards.slice(0, 20)) {
          if (!card || typeof card !== "object") continue;
          const name = (card.name && (card.name.formatted_name ||
            [card.name.first_name, card.name.last_name].filter(Boolean).join(" "))) || t("contact_card");
          const phones = (Array.isArray(card.phones) ? card.phones : [])
            .map((p) => [p.phone || (p.wa_id ? "+" + p.wa_id : ""), p.type].filter(Boolean).join(" · "));
          const emails = (Array.isArray(card.emails) ? card.emails : []).map((e) => e.email);
          const org = card.org && [card.org.company, card.org.title].filter(Boolean).join(" · ");
          nodes.push(chip("person", name, [...phones, ...emails, org]));
        }
        if (!nodes.length) nodes.push(textBlock(message.text || t("contact_card")));
        break;
      }
      case "media_placeholder":
        nodes.push(chip("document", t("media_not_transferred"), []));
        break;
      case "interactive": {
        if (message.direction === "out") { // a question we sent (the satisfaction list): its text and choices
          const rows = ((part.action && part.action.sections) || []).flatMap((section) => section.rows || []);
          const buttons = ((part.action && part.action.buttons) || []).map((button) => button.reply || {});
          nodes.push(textBlock((part.body && part.body.text) || message.text || ""));
          nodes.push(el("ul", { class: "msg-choices", "data-testid": "message-choices" },
            ...[...rows, ...buttons].map((row) => el("li", { text: row.title || "" }))));
          break;
        }
        const kindOfReply = part.type;
        if (kindOfReply === "nfm_reply") { // a WhatsApp Flows form: its fields, one per line
          nodes.push(el("div", { class: "msg-action" }, icon("tap"), t("reply_form")));
          nodes.push(textBlock(message.text || ""));
          break;
        }
        const reply = (kindOfReply && part[kindOfReply]) || {};
        const label = kindOfReply === "list_reply" ? t("reply_list")
          : kindOfReply === "nfm_reply" ? t("reply_form") : t("reply_button");
        nodes.push(el("div", { class: "msg-action" }, icon("tap"), label));
        nodes.push(el("div", { class: "msg-choice", "data-testid": "message-text",
          text: reply.title || reply.name || message.text || "" }));
        if (reply.description) nodes.push(el("div", { class: "msg-sub", text: reply.description }));
        break;
      }
      case "button":
        nodes.push(el("div", { class: "msg-action" }, icon("tap"), t("reply_template_button")));
        nodes.push(el("div", { class: "msg-choice", "data-testid": "message-text",
          text: part.text || part.payload || message.text || "" }));
        break;
      case "reaction": {
        const emoji = part.emoji || "";
        const target = part.message_id ? findByWamid(part.message_id) : null;
        nodes.push(el("div", { class: "msg-reaction", "data-testid": "message-text" },
          emoji ? t("reacted", { emoji }) : t("reaction_removed"),
          target ? el("span", { class: "msg-sub", text: " " + t("reaction_to", { text: snippet(target) }) }) : null));
        break;
      }
      case "unsupported": {
        const what = (content.unsupported && content.unsupported.type) || "";
        nodes.push(el("div", { class: "msg-unsupported", "data-testid": "message-text" }, icon("question"),
          what ? t("unsupported_kind", { kind: what }) : t("unsupported")));
        break;
      }
      case "template": {
        const name = part.name || (part.template && part.template.name) || "";
        if (name) nodes.push(el("div", { class: "msg-action", text: t("template_message", { name }) }));
        if (message.text) nodes.push(textBlock(message.text));
        break;
      }
      default:
        if (message.text) nodes.push(textBlock(message.text));
        else nodes.push(el("div", { class: "msg-unsupported", "data-testid": "message-text",
          text: t("type_fallback", { type: kind }) }));
    }
    return nodes;
  }

  function findByWamid(wamid) {
    const thread = state.threads.get(state.selectedId);
    if (!thread) return null;
    for (const entry of thread.messages.values()) if (entry.data.wamid === wamid) return entry.data;
    return null;
  }

  function snippet(message) {
    const text = message.text || t("type_fallback", { type: message.type });
    return text.length > 60 ? text.slice(0, 57) + "…" : text;
  }

  function senderLabel(message) {
    if (message.direction === "in") return "";
    if (message.sender_kind === "agent") return message.sender_name || "";
    if (message.sender_kind === "phone_app") return t("sender_phone_app");
    const kind = t("sender_" + message.sender_kind);
    return message.sender_name ? `${message.sender_name} · ${kind}` : kind;
  }

  function reactionsOf(message) {
    const reactions = message.reactions && typeof message.reactions === "object" ? Object.entries(message.reactions) : [];
    if (!reactions.length) return null;
    return el("div", { class: "msg-reactions", "data-testid": "message-reactions" },
      ...reactions.map(([who, emoji]) => el("span", { class: "reaction", title: t("reaction_by_" + who),
        "data-who": who, text: emoji })));
  }

  function messageNode(message) {
    const created = ms(message.created_at);
    const when = Number.isFinite(created) ? fullFormat.format(created) : "";
    if (message.sender_kind === "system") { // a notice from WhatsApp ("the customer changed number")
      return el("div", { class: "msg system", "data-testid": "message", "data-message-id": message.id,
        "data-type": message.type }, el("div", { class: "system-notice", title: when, text: message.text }));
    }
    const out = message.direction === "out";
    const failed = message.status === "failed";
    const sender = senderLabel(message);
    const quoted = message.reply_to_wamid && message.type !== "reaction" ? findByWamid(message.reply_to_wamid) : null;
    const edited = ms(message.edited_at);
    const bubble = el("div", { class: "bubble" },
      out && sender ? el("div", { class: "msg-sender", "data-testid": "message-sender", text: sender,
        title: message.sender_kind === "phone_app" ? t("sender_phone_app_title") : null }) : null,
      message.reply_to_wamid && message.type !== "reaction" && !message.deleted
        ? el("div", { class: "msg-quote" }, icon("reply"),
          el("span", { text: t("reply_to") + ": " + (quoted ? snippet(quoted) : t("reply_to_unknown")) }))
        : null,
      ...(message.deleted
        ? [el("div", { class: "msg-deleted", "data-testid": "message-deleted", text: t("message_deleted") })]
        : messageBody(message)),
      el("div", { class: "msg-meta" },
        message.is_history ? el("span", { class: "msg-history", title: t("from_history"), text: "⟲" }) : null,
        Number.isFinite(edited) && !message.deleted
          ? el("span", { class: "msg-edited", "data-testid": "message-edited",
            title: t("edited_at", { time: fullFormat.format(edited) }), text: t("edited") }) : null,
        el("time", { datetime: message.created_at, title: when,
          text: Number.isFinite(created) ? timeFormat.format(created) : "" }),
        out ? tick(message) : null),
      reactionsOf(message));
    const node = el("div", {
      class: `msg ${out ? "out" : "in"} type-${message.type}` + (failed ? " failed" : "")
        + (message.is_history ? " history" : ""),
      "data-testid": "message",
      "data-message-id": message.id,
      "data-direction": message.direction,
      "data-status": message.status,
      "data-type": message.type,
    }, bubble);
    if (failed) {
      const title = message.error_title || "";
      const text = message.error_code !== null && message.error_code !== undefined
        ? t("failed_detail", { code: message.error_code, title: title || t("failed_unknown") })
        : title ? t("failed_detail_no_code", { title }) : t("failed_unknown");
      node.append(el("div", { class: "msg-error", "data-testid": "message-error", role: "note",
        title: message.error_details || "" }, icon("alert"), text));
    }
    return node;
  }

  function noteNode(note) {
    const created = ms(note.created_at);
    return el("div", { class: "note", "data-testid": "note", "data-note-id": note.id, role: "note",
      "aria-label": t("private_note_by", { name: note.author_name || "" }) },
    el("div", { class: "note-head" }, icon("lock"),
      el("span", { class: "note-label", text: t("private_note") }),
      note.author_name ? el("span", { class: "note-author", "data-testid": "note-author", text: note.author_name }) : null,
      el("time", { datetime: note.created_at, title: Number.isFinite(created) ? fullFormat.format(created) : "",
        text: Number.isFinite(created) ? timeFormat.format(created) : "" })),
    el("div", { class: "note-text", "data-testid": "note-text" }, linkified(note.text || "")));
  }

  // -- the thread

  function renderThread() {
    const id = state.selectedId;
    const pane = $("[data-testid=thread]");
    const empty = $("[data-testid=thread-empty]");
    const entry = id !== null ? state.conversations.get(id) : null;
    const thread = id !== null ? state.threads.get(id) : null;
    pane.hidden = id === null;
    empty.hidden = id !== null;
    if (id === null) return;
    const conversation = entry ? entry.data : null;

    renderHeader(conversation, state.missing.has(id));
    renderComposer(conversation);

    const box = $("[data-testid=message-list]");
    if (view.renderedThread !== id) {
      box.replaceChildren();
      view.messageNodes.clear();
      view.fixedNodes.clear();
      view.renderedThread = id;
    }
    // Nodes other than messages, kept while their content is the same so the DOM only changes where needed.
    const fixed = (key, make) => {
      let node = view.fixedNodes.get(key);
      if (!node) {
        node = make();
        view.fixedNodes.set(key, node);
      }
      return node;
    };
    const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    const stick = view.stickToBottom || nearBottom;

    const messages = thread ? [...thread.messages.values()].map((e) => e.data) : [];
    messages.sort((a, b) => ms(a.created_at) - ms(b.created_at) || a.id - b.id);
    const nodes = [];
    if (thread && thread.previous) {
      nodes.push(fixed("earlier:" + thread.olderLoading, () => el("div", { class: "load-earlier" },
        el("button", { type: "button", class: "btn small ghost", "data-testid": "load-earlier",
          disabled: thread.olderLoading, text: thread.olderLoading ? t("loading") : t("load_earlier"),
          onclick: loadEarlier }))));
    }
    if (state.missing.has(id)) {
      nodes.push(el("div", { class: "thread-note error", text: t("conversation_not_found") }));
    } else if (thread && thread.error && !messages.length) {
      nodes.push(el("div", { class: "thread-note error", role: "alert" }, thread.error.message + " ",
        el("button", { type: "button", class: "btn small", text: t("retry"), onclick: () => loadThread(id) })));
    }
    // Private notes go between the messages by time; while earlier messages are not loaded, so are older notes.
    const oldest = messages.length ? ms(messages[0].created_at) : -Infinity;
    const notes = thread ? [...thread.notes.values()]
      .filter((note) => !(thread.previous && ms(note.created_at) < oldest)) : [];
    if (!messages.length && !notes.length && !state.missing.has(id) && !(thread && thread.error)) {
      nodes.push(el("div", { class: "thread-note", text: thread && thread.loaded ? t("no_messages") : t("loading") }));
    }
    const timeline = [...messages.map((data) => ({ note: false, data })), ...notes.map((data) => ({ note: true, data }))];
    timeline.sort((a, b) => ms(a.data.created_at) - ms(b.data.created_at) || (a.note - b.note) || a.data.id - b.data.id);
    let previousDay = null;
    let previous = null;
    const seen = new Set();
    for (const { note, data: message } of timeline) {
      const created = ms(message.created_at);
      const day = Number.isFinite(created) ? String(dayNumber(created)) : "";
      if (day !== previousDay) {
        const label = dayLabel(created);
        nodes.push(fixed(`day:${day}:${label}`, () => el("div", { class: "day-sep", role: "separator" },
          el("span", { text: label }))));
        previousDay = day;
        previous = null;
      }
      if (note) {
        nodes.push(fixed(`note:${message.id}`, () => noteNode(message)));
        previous = null; // a note breaks a run of bubbles
        continue;
      }
      const key = JSON.stringify(message) + (message.reply_to_wamid || message.type === "reaction" ? messages.length : "");
      let item = view.messageNodes.get(message.id);
      if (!item || item.key !== key) {
        item = { node: messageNode(message), key };
        view.messageNodes.set(message.id, item);
      }
      const continues = previous && previous.direction === message.direction &&
        previous.sender_name === message.sender_name && created - ms(previous.created_at) < 5 * 60 * 1000;
      item.node.classList.toggle("cont", Boolean(continues));
      nodes.push(item.node);
      seen.add(message.id);
      previous = message;
    }
    for (const messageId of view.messageNodes.keys()) if (!seen.has(messageId)) view.messageNodes.delete(messageId);
    reconcile(box, nodes);

    if (view.keepFromBottom !== null) {
      box.scrollTop = box.scrollHeight - view.keepFromBottom;
      view.keepFromBottom = null;
    } else if (stick) {
      box.scrollTop = box.scrollHeight;
      view.newBelow = 0;
    }
    view.stickToBottom = false;
    const pill = $("[data-testid=new-messages]");
    pill.hidden = view.newBelow === 0;
    $(".count", pill).textContent = view.newBelow > 1 ? String(view.newBelow) : "";
  }

  function noteNewMessage() {
    const box = $("[data-testid=message-list]");
    if (!box) return;
    const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    if (!nearBottom) view.newBelow += 1;
  }

  function renderHeader(conversation, missing) {
    renderTicketBar(conversation);
    if (conversation) {
      renderLabelBar(conversation); // labels and the contact change apart from what the key below covers
      renderContactPanel();
    }
    const header = $("[data-testid=thread-header]");
    const key = JSON.stringify([conversation, missing, state.statusBusy, state.ticketBusy,
      Math.floor(Date.now() / 30000)]);
    if (header.dataset.key === key) return;
    header.dataset.key = key;
    const title = $("[data-testid=thread-title]");
    const sub = $("[data-testid=thread-subtitle]");
    const windowState = $("[data-testid=window-state]");
    const actions = $("[data-testid=thread-actions]");
    const avatarSlot = $(".thread-avatar", header);
    actions.replaceChildren();
    if (!conversation) {
      title.textContent = missing ? "—" : t("loading");
      sub.textContent = "";
      windowState.hidden = true;
      avatarSlot.replaceChildren();
      return;
    }
    avatarSlot.replaceChildren(avatar(conversation, "large"));
    const name = contactName(conversation.contact);
    const number = contactNumber(conversation.contact);
    title.textContent = name;
    const contact = conversation.contact || {};
    const stoppedAt = ms(contact.marketing_changed_at);
    sub.replaceChildren(...[
      number && number !== name ? el("span", { "data-testid": "thread-number", text: number }) : null,
      contact.marketing === "stop" ? el("span", { class: "marketing-chip", "data-testid": "marketing-state",
        title: t("marketing_stopped_title", { time: Number.isFinite(stoppedAt) ? fullFormat.format(stoppedAt) : "" }),
        text: t("marketing_stopped") }) : null,
      conversation.number && conversation.number.display_number
        ? el("span", { class: "via", text: "→ +" + conversation.number.display_number }) : null,
      conversation.ticket ? null // the ticket bar shows the ticket's status
        : el("span", { class: "status-chip " + conversation.status, "data-testid": "thread-status",
          text: t("status_" + conversation.status) })].filter(Boolean));
    const window = windowOf(conversation);
    windowState.hidden = false;
    windowState.dataset.state = window.state;
    windowState.className = "window-state " + window.state;
    windowState.replaceChildren(icon(window.state === "closed" ? "alert" : "clock"),
      window.state === "closed" ? t("window_closed")
        : t(window.state === "soon" ? "window_soon" : "window_open", { time: duration(window.left, false) }));
    const button = (status, label, testid, primary) => el("button", {
      type: "button", class: "btn" + (primary ? " primary" : ""), "data-testid": testid,
      disabled: state.statusBusy || state.ticketBusy,
      title: status === "resolved" ? t(conversation.ticket ? "action_resolve_ticket_title" : "action_resolve_title")
        : null,
      onclick: () => setStatus(status), text: label });
    const ticket = conversation.ticket;
    if (ticket) { // the buttons act on the ticket; the status select has every other state
      if (ACTIVE_TICKET.has(ticket.status)) actions.append(button("resolved", t("action_resolve"), "resolve-button", true));
      else actions.append(button("open", t("action_reopen"), "reopen-button", true));
      return;
    }
    if (conversation.status !== "pending" && conversation.status !== "resolved") {
      actions.append(button("pending", t("action_pending"), "pending-button", false));
    }
    if (conversation.status === "resolved") {
      actions.append(button("open", t("action_reopen"), "reopen-button", true));
    } else {
      if (conversation.status === "pending") actions.append(button("open", t("action_reopen"), "reopen-button", false));
      actions.append(button("resolved", t("action_resolve"), "resolve-button", true));
    }
  }

  /** The full ticket of the selected conversation, with the (always current) summary laid over it. */
  function currentTicket(conversation) {
    const summary = conversation && conversation.ticket;
    if (!summary) return null;
    const entry = state.tickets.get(summary.id);
    const signature = signatureOf(summary);
    if (state.ticketFetches.get(summary.id) !== signature) loadTicket(summary.id, signature);
    const full = entry ? entry.data : null;
    const assignee = summary.assignee_id === null || summary.assignee_id === undefined ? null
      : { id: summary.assignee_id, name: memberName(summary.assignee_id, summary) };
    return { ...(full || {}), ...summary, assignee, full: Boolean(full) };
  }

  function renderTicketBar(conversation) {
    const bar = $("[data-testid=ticket-bar]");
    const ticket = currentTicket(conversation);
    bar.hidden = !ticket;
    if (!ticket) return;
    bar.dataset.ticketId = ticket.id;
    const busy = state.ticketBusy;
    const me = CONFIG.user && CONFIG.user.id;
    const agent = CONFIG.role === "agent";
    $("[data-testid=ticket-ref]", bar).textContent = t("ticket_ref", { id: ticket.id });

    const status = $("[data-testid=ticket-status]", bar);
    if (document.activeElement !== status || status.dataset.value !== ticket.status) status.value = ticket.status;
    status.dataset.value = ticket.status;
    status.disabled = busy;
    status.closest(".tb-field").dataset.status = ticket.status;

    const priority = $("[data-testid=ticket-priority]", bar);
    priority.value = ticket.priority;
    priority.dataset.value = ticket.priority;
    priority.disabled = busy;
    priority.closest(".tb-field").dataset.priority = ticket.priority;

    // Assignee: every member; agents may only take the ticket or let it go (the server says so too).
    const assignee = $("[data-testid=ticket-assignee]", bar);
    const members = [...state.members.values()].sort((a, b) => (a.name || a.email).localeCompare(b.name || b.email));
    if (ticket.assignee && !state.members.has(ticket.assignee.id)) members.push({ id: ticket.assignee.id,
      name: ticket.assignee.name });
    const options = [{ value: "", label: t("unassigned"), disabled: agent && ticket.assignee && ticket.assignee.id !== me }]
      .concat(members.map((member) => ({
        value: String(member.id),
        label: (member.name || member.email) + (member.id === me ? " " + t("you_suffix") : "") +
          (member.available === false ? " · " + t("away") : ""),
        disabled: agent && member.id !== me && !(ticket.assignee && ticket.assignee.id === member.id),
      })));
    const optionsKey = JSON.stringify(options);
    if (assignee.dataset.options !== optionsKey) {
      assignee.replaceChildren(...options.map((o) => el("option", { value: o.value, disabled: o.disabled,
        text: o.label })));
      assignee.dataset.options = optionsKey;
    }
    assignee.value = ticket.assignee ? String(ticket.assignee.id) : "";
    assignee.dataset.value = assignee.value;
    assignee.disabled = busy;

    const mine = ticket.assignee && ticket.assignee.id === me;
    const assignButton = $("[data-testid=assign-to-me]", bar);
    assignButton.hidden = Boolean(mine) || !me;
    assignButton.disabled = busy;

    // Due times: the response the customer waits for, the resolution target, and how often it was reopened.
    const parts = [];
    const sla = slaOf(ticket);
    if (sla) {
      const label = ticket.full && ticket.awaiting_first_response === false ? "due_next_response" : "due_first_response";
      parts.push(el("span", { class: "due " + sla.state, "data-testid": "ticket-response-due", "data-state": sla.state,
        title: fullFormat.format(sla.due) },
      icon(sla.state === "overdue" ? "alert" : "clock"),
      t(label, { at: shortWhen(sla.due) }) + " · " + (sla.state === "overdue"
        ? t("overdue_by", { time: duration(-sla.left, false) })
        : t("in_business_time", { time: duration(sla.businessLeft, false) }))));
    }
    if (ticket.resolution_due_at && ACTIVE_TICKET.has(ticket.status)) {
      const due = ms(ticket.resolution_due_at);
      const late = due <= Date.now();
      parts.push(el("span", { class: "due" + (late ? " overdue" : ""), "data-testid": "ticket-resolution-due",
        title: fullFormat.format(due) }, t("due_resolution", { at: shortWhen(due) }) +
        (late ? " · " + t("overdue_by", { time: duration(Date.now() - due, false) }) : "")));
    }
    if (ticket.full && ticket.reopen_count > 0) {
      parts.push(el("span", { class: "reopens", "data-testid": "ticket-reopen-count", "data-count": ticket.reopen_count,
        text: t(ticket.reopen_count === 1 ? "reopened_once" : "reopened_times", { n: ticket.reopen_count }) }));
    }
    if (!parts.length && !ACTIVE_TICKET.has(ticket.status) && ticket.full && ticket.resolved_at) {
      parts.push(el("span", { class: "due", text: t("resolved_at", { at: shortWhen(ms(ticket.resolved_at)) }) }));
    }
    if (ticket.csat_score) {
      parts.push(el("span", { class: "rating", "data-testid": "ticket-csat", "data-score": ticket.csat_score,
        text: t("rated", { score: ticket.csat_score }) }));
    }
    const sla_ = $("[data-testid=ticket-sla]", bar);
    const key = JSON.stringify(parts.map((node) => node.outerHTML));
    if (sla_.dataset.key !== key) {
      sla_.replaceChildren(...parts);
      sla_.dataset.key = key;
    }
    const error = $("[data-testid=ticket-error]", bar);
    error.hidden = !state.ticketError;
    error.textContent = state.ticketError;
  }

  /** "14:05" today, "Tue 14:05" within a week, else "3 Dec 14:05". */
  function shortWhen(at) {
    if (dayNumber(at) === dayNumber(Date.now())) return timeFormat.format(at);
    if (Math.abs(at - Date.now()) < 6 * 86400000) return weekdayTimeFormat.format(at);
    return fullFormat.format(at);
  }

  function renderComposer(conversation) {
    const box = $("[data-testid=reply-box]");
    const sendButton = $("[data-testid=reply-send]");
    const notice = $("[data-testid=reply-disabled-notice]");
    const error = $("[data-testid=reply-error]");
    const counter = $("[data-testid=reply-count]");
    const form = $("[data-testid=reply-form]");
    const noteMode = state.composerMode === "note";
    form.dataset.mode = state.composerMode;
    form.querySelectorAll(".mode").forEach((button) => {
      const on = button.dataset.mode === state.composerMode;
      button.setAttribute("aria-checked", on ? "true" : "false");
      button.classList.toggle("active", on);
      button.tabIndex = on ? 0 : -1;
    });
    $("[data-testid=note-hint]").hidden = !noteMode;
    $("[data-testid=template-open]").hidden = noteMode || !conversation;
    $("[data-testid=template-open-closed]").hidden = !$("[data-testid=template-picker]").hidden;
    const closed = !conversation || (!noteMode && windowOf(conversation).state === "closed");
    box.disabled = closed;
    $("[data-testid=attach]").hidden = noteMode || !conversation;
    $("[data-testid=attach]").disabled = closed || state.sending;
    box.setAttribute("aria-label", noteMode ? t("note_label") : t("reply_label"));
    box.placeholder = noteMode ? t("note_placeholder")
      : conversation && closed ? t("reply_closed_placeholder") : t("reply_placeholder");
    notice.hidden = !conversation || !closed || noteMode;
    sendButton.disabled = closed || state.sending || !box.value.trim();
    sendButton.textContent = state.sending ? t("sending") : noteMode ? t("add_note") : t("send");
    error.hidden = !state.replyError;
    error.textContent = state.replyError;
    const length = box.value.length;
    counter.hidden = length < MAX_TEXT - 600;
    counter.textContent = t("char_count", { n: length, max: MAX_TEXT });
    counter.classList.toggle("over", length > MAX_TEXT);
  }

  function autoGrow(box) {
    box.style.height = "auto";
    box.style.height = Math.min(box.scrollHeight, Math.round(window.innerHeight * 0.35)) + "px";
  }

  // ------------------------------------------------------------------ small UI pieces

  function toast(text) {
    const area = $("[data-testid=toasts]");
    const node = el("div", { class: "toast", role: "status", "data-testid": "toast", text });
    area.append(node);
    setTimeout(() => node.remove(), 6000);
  }

  /** A deadline toast: clicking it opens the conversation; it stays a little longer than a plain one. */
  function alertToast(text, level, conversationId) {
    const area = $("[data-testid=toasts]");
    const close = () => node.remove();
    const node = el("div", { class: "toast alert " + level, role: "alert", "data-testid": "alert-toast",
      "data-level": level, "data-conversation-id": conversationId },
    el("button", { type: "button", class: "toast-open", onclick: () => {
      close();
      select(conversationId, { scrollList: true });
    } }, icon(level === "overdue" ? "alert" : "clock"), el("span", { text })),
    el("button", { type: "button", class: "toast-close", "aria-label": t("close"), text: "×", onclick: close }));
    area.append(node);
    while (area.querySelectorAll("[data-testid=alert-toast]").length > 4) area.querySelector("[data-testid=alert-toast]").remove();
    setTimeout(close, 12000);
  }

  /** sla.warning / sla.breached / window.warning / window.expired: mark the conversation; toast what is new. */
  function onWarning(frame) {
    const warning = frame.warning;
    const conversationId = Number(warning.conversation_id);
    if (!Number.isFinite(conversationId)) return;
    const passed = Boolean(warning.passed) || frame.type.endsWith("breached") || frame.type.endsWith("expired");
    state.alerts.set(conversationId, { kind: warning.kind, due_at: warning.due_at, passed,
      ticketId: Number(warning.ticket_id) });
    const entry = state.conversations.get(conversationId);
    if (!entry) loadConversation(conversationId); // so the mark shows once the list has it
    // Replays of what happened before this page was opened are marks only, never toasts.
    if (state.pageReadyId !== null && frame.id <= state.pageReadyId) return;
    const name = entry ? contactName(entry.data.contact) : t("conversation_ref", { id: conversationId });
    const due = ms(warning.due_at);
    // The window is 24 calendar hours; SLA targets are business time.
    const left = !Number.isFinite(due) ? 0 : warning.kind === "window" ? due - Date.now() : businessMs(Date.now(), due);
    let text;
    if (warning.kind === "window") {
      text = passed ? t("toast_window_expired", { name })
        : t("toast_window_warning", { name, time: duration(Math.max(left, 60000), false) });
    } else {
      const target = t("kind_" + warning.kind);
      text = passed ? t("toast_sla_breached", { name, target })
        : t("toast_sla_warning", { name, target, time: duration(Math.max(left, 60000), false) });
    }
    alertToast(text, passed ? "overdue" : "warning", conversationId);
  }

  function renderAvailability() {
    const button = $("[data-testid=availability-toggle]");
    if (!button) return;
    button.hidden = !state.me;
    if (!state.me) return;
    const available = Boolean(state.me.available);
    button.setAttribute("aria-pressed", available ? "true" : "false");
    button.dataset.available = available ? "true" : "false";
    button.disabled = state.meBusy;
    $(".avail-label", button).textContent = available ? t("available") : t("away");
    button.title = available ? t("available_title") : t("away_title");
  }

  let sessionShown = false;
  function showSessionEnded() {
    if (sessionShown) return;
    sessionShown = true;
    const banner = $("[data-testid=session-banner]");
    banner.replaceChildren(el("span", { text: t("error_session") }), el("a", { class: "btn small primary",
      href: "/login/?next=" + encodeURIComponent(location.pathname + location.hash), text: t("sign_in_again") }));
    banner.hidden = false;
  }

  function openHelp() {
    const dialog = $("[data-testid=help-overlay]");
    if (!dialog.open) dialog.showModal();
  }

  function setupSimulator() {
    const toggle = $("[data-testid=simulate-open]");
    const panel = $("[data-testid=simulate-panel]");
    if (!CONFIG.simulator || !toggle || !panel) return;
    const form = $("[data-testid=simulate-form]");
    const feedback = $("[data-testid=simulate-feedback]");
    const submit = $("[data-testid=simulate-submit]");
    const show = (open) => {
      panel.hidden = !open;
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      if (open) $("[data-testid=simulate-text]").focus();
    };
    toggle.addEventListener("click", () => show(panel.hidden));
    $("[data-testid=simulate-close]").addEventListener("click", () => show(false));
    panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.stopPropagation();
        show(false);
        toggle.focus();
      }
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const data = new FormData(form);
      feedback.className = "sim-feedback";
      feedback.textContent = "";
      submit.disabled = true;
      try {
        const answer = await request("POST", form.action, { form: data });
        feedback.classList.add("ok");
        feedback.textContent = t("sim_sent", { wa_id: answer.wa_id });
        $("[data-testid=simulate-text]").value = "";
        $("[data-testid=simulate-text]").focus();
      } catch (error) {
        feedback.classList.add("error");
        feedback.setAttribute("role", "alert");
        feedback.textContent = error.message;
      } finally {
        submit.disabled = false;
        if (!panel.hidden && !panel.contains(document.activeElement)) $("[data-testid=simulate-text]").focus();
      }
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !panel.hidden && !document.querySelector("dialog[open]") &&
          !isTyping(event.target)) {
        show(false);
      }
    });
    $("[data-testid=simulate-text]").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
  }

  // ------------------------------------------------------------------ events


  // ------------------------------------------------------------------ sending a template (any time; the only way
  // once the 24-hour window is closed): pick an approved template of the conversation's number, fill its
  // variables, see exactly what the customer will read, send.

  const picker = { conversationId: null, templates: [], values: {}, sending: false, error: "" };

  const variablesIn = UI.templateVariables;

  function partsOf(template) {
    const parts = {};
    for (const component of template.components || []) parts[String(component.type || "").toUpperCase()] = component;
    return parts;
  }

  /** The inputs a template needs: [{key, label, kind}] (header text or media, body, link buttons, copy codes). */
  function slotsOf(template) {
    const parts = partsOf(template);
    const slots = [];
    const header = parts.HEADER;
    if (header) {
      const format = String(header.format || "TEXT").toUpperCase();
      if (format === "TEXT") {
        for (const name of variablesIn(header.text)) slots.push({ key: `header:${name}`, label: t("tpl_header_var", { name }) });
      } else if (["IMAGE", "VIDEO", "DOCUMENT"].includes(format)) {
        slots.push({ key: "header:media", label: t("tpl_media_link", { kind: format.toLowerCase() }), kind: format.toLowerCase() });
      }
    }
    for (const name of variablesIn(parts.BODY && parts.BODY.text)) slots.push({ key: `body:${name}`, label: t("tpl_body_var", { name }) });
    ((parts.BUTTONS && parts.BUTTONS.buttons) || []).forEach((button, index) => {
      const type = String(button.type || "").toUpperCase();
      if (type === "URL" && variablesIn(button.url).length) {
        slots.push({ key: `button:${index}`, label: t("tpl_link_var", { label: button.text || "" }) });
      } else if (type === "COPY_CODE") {
        slots.push({ key: `button:${index}`, label: t("tpl_copy_code") });
      }
    });
    return slots;
  }

  function valueOf(key) {
    return (picker.values[key] || "").trim();
  }

  function filledText(text, prefix) {
    return UI.fillTemplate(text, (name) => valueOf(`${prefix}:${name}`));
  }

  /** What the customer will read, as the server renders it into the thread. */
  function previewOf(template) {
    const parts = partsOf(template);
    const shown = [];
    const header = parts.HEADER;
    if (header) {
      const format = String(header.format || "TEXT").toUpperCase();
      shown.push(format === "TEXT" ? filledText(header.text, "header") : `[${format.toLowerCase()}]`);
    }
    shown.push(filledText(parts.BODY && parts.BODY.text, "body"));
    if (parts.FOOTER && parts.FOOTER.text) shown.push(parts.FOOTER.text);
    const labels = ((parts.BUTTONS && parts.BUTTONS.buttons) || []).map((button) => `[${button.text || ""}]`);
    if (labels.length) shown.push(labels.join(" | "));
    return shown.filter(Boolean).join("\n\n");
  }

  function textParameters(names, prefix, named) {
    return names.map((name) => (named ? { type: "text", parameter_name: name, text: valueOf(`${prefix}:${name}`) }
      : { type: "text", text: valueOf(`${prefix}:${name}`) }));
  }

  /** Meta's send format for the filled-in template. */
  function templateMessage(template) {
    const parts = partsOf(template);
    const components = [];
    const named = template.parameter_format === "named";
    const header = parts.HEADER;
    if (header) {
      const format = String(header.format || "TEXT").toUpperCase();
      if (format === "TEXT" && variablesIn(header.text).length) {
        components.push({ type: "header", parameters: textParameters(variablesIn(header.text), "header", named) });
      } else if (format !== "TEXT") {
        const kind = format.toLowerCase();
        components.push({ type: "header", parameters: [{ type: kind, [kind]: { link: valueOf("header:media") } }] });
      }
    }
    const bodyNames = variablesIn(parts.BODY && parts.BODY.text);
    if (!named) bodyNames.sort((a, b) => Number(a) - Number(b));
    if (bodyNames.length) components.push({ type: "body", parameters: textParameters(bodyNames, "body", named) });
    ((parts.BUTTONS && parts.BUTTONS.buttons) || []).forEach((button, index) => {
      const type = String(button.type || "").toUpperCase();
      if (type === "URL" && variablesIn(button.url).length) {
        components.push({ type: "button", sub_type: "url", index: String(index),
          parameters: [{ type: "text", text: valueOf(`button:${index}`) }] });
      } else if (type === "COPY_CODE") {
        components.push({ type: "button", sub_type: "copy_code", index: String(index),
          parameters: [{ type: "coupon_code", coupon_code: valueOf(`button:${index}`) }] });
      }
    });
    return { name: template.name, language: template.language, components };
  }

  function chosenTemplate() {
    const select = $("[data-testid=template-select]");
    return picker.templates.find((template) => String(template.id) === select.value) || null;
  }

  async function openPicker() {
    const id = state.selectedId;
    const entry = state.conversations.get(id);
    if (id === null || !entry) return;
    picker.conversationId = id;
    picker.values = {};
    picker.error = "";
    const panel = $("[data-testid=template-picker]");
    panel.hidden = false;
    renderComposer(entry.data);
    const select = $("[data-testid=template-select]");
    select.replaceChildren(el("option", { value: "", text: t("loading") }));
    renderPicker();
    try {
      const number = entry.data.number && entry.data.number.id;
      const data = await request("GET", `${API}/templates/?status=approved&page_size=100${number ? "&number=" + number : ""}`);
      if (picker.conversationId !== id) return;
      picker.templates = data.results || [];
    } catch (error) {
      picker.templates = [];
      picker.error = error.message;
    }
    select.replaceChildren(...(picker.templates.length
      ? picker.templates.map((template) => el("option", { value: template.id,
        text: `${template.name} (${template.language}) · ${template.category.toLowerCase()}` }))
      : [el("option", { value: "", text: t("tpl_none") })]));
    renderPicker();
    select.focus();
  }

  function closePicker() {
    picker.conversationId = null;
    $("[data-testid=template-picker]").hidden = true;
    scheduleRender();
  }

  function renderPicker(keepFocus) {
    const template = chosenTemplate();
    const fields = $("[data-testid=template-fields]");
    if (!keepFocus) {
      fields.replaceChildren(...(template ? slotsOf(template) : []).map((slot) => el("label", { class: "slot" },
        el("span", { text: slot.label }),
        el("input", { value: picker.values[slot.key] || "", "data-testid": "template-variable", "data-key": slot.key,
          type: slot.kind ? "url" : "text", oninput: (event) => {
            picker.values[slot.key] = event.target.value;
            picker.error = "";
            renderPicker(true);
          } }))));
    }
    $("[data-testid=template-preview]").textContent = template ? previewOf(template) : "";
    const missing = template ? slotsOf(template).some((slot) => !valueOf(slot.key)) : true;
    $("[data-testid=template-send]").disabled = missing || picker.sending;
    $("[data-testid=template-send]").textContent = picker.sending ? t("sending") : t("tpl_send");
    const error = $("[data-testid=template-error]");
    error.textContent = picker.error;
    error.hidden = !picker.error;
  }

  async function sendTemplate() {
    const template = chosenTemplate();
    const id = picker.conversationId;
    if (!template || id === null || picker.sending) return;
    picker.sending = true;
    picker.error = "";
    renderPicker(true);
    const restSince = since();
    try {
      const message = await request("POST", `${API}/conversations/${id}/messages/`,
        { json: { template: templateMessage(template) } });
      threadOf(id);
      upsertMessage(message, undefined, restSince);
      if (id === state.selectedId) view.stickToBottom = true;
      closePicker();
    } catch (error) {
      picker.error = error.message;
    } finally {
      picker.sending = false;
      if (picker.conversationId !== null) renderPicker(true);
      scheduleRender();
    }
  }

  // ------------------------------------------------------------------ labels: the list's filter, chips, the editor

  async function loadLabels() {
    try {
      const labels = await request("GET", `${API}/labels/`);
      state.labels = new Map(labels.map((label) => [label.id, label]));
    } catch (error) {
      return; // the list works without them
    }
    const select = $("[data-testid=label-filter]");
    select.replaceChildren(select.options[0], ...[...state.labels.values()].map((label) =>
      el("option", { value: label.id, text: label.name })));
    select.value = state.label === null ? "" : String(state.label);
    const menu = $("[data-testid=label-menu]");
    if (!menu.hidden) toggleLabelMenu(true); // opened before the labels came: fill it, focus its first one
    scheduleRender();
  }

  function labelChips(ids, small) {
    return (ids || []).map((id) => state.labels.get(id)).filter(Boolean).map((label) => el("span", {
      class: "label-chip" + (small ? " small" : ""), "data-testid": "label-chip", "data-label-id": label.id,
      style: `--label: ${label.color}`, text: label.name }));
  }

  function setLabelFilter(value) {
    state.label = value ? Number(value) : null;
    loadList(true);
    view.listScrollTop = true;
    scheduleRender();
  }

  function renderLabelBar(conversation) {
    $("[data-testid=conversation-labels]").replaceChildren(...labelChips(conversation.labels, false));
    const menu = $("[data-testid=label-menu]");
    if (menu.hidden) return;
    const chosen = new Set(conversation.labels || []);
    menu.replaceChildren(...(state.labels.size ? [...state.labels.values()].map((label) => el("label", {
      class: "label-option" },
    el("input", { type: "checkbox", checked: chosen.has(label.id), "data-testid": "label-option",
      "data-label-id": label.id, onchange: (event) => toggleLabel(conversation.id, label.id, event.target.checked) }),
    el("span", { class: "label-chip", style: `--label: ${label.color}`, text: label.name })))
      : [el("p", { class: "hint", text: t("no_labels") })]));
  }

  function toggleLabelMenu(open) {
    const menu = $("[data-testid=label-menu]");
    menu.hidden = !open;
    $("[data-testid=label-edit]").setAttribute("aria-expanded", open ? "true" : "false");
    const entry = state.conversations.get(state.selectedId);
    if (open && entry) {
      renderLabelBar(entry.data);
      const first = menu.querySelector("input");
      if (first) first.focus();
    }
  }

  async function toggleLabel(conversationId, labelId, on) {
    const entry = state.conversations.get(conversationId);
    if (!entry) return;
    const current = entry.data.labels || [];
    const labels = on ? [...new Set([...current, labelId])] : current.filter((id) => id !== labelId);
    const restSince = since();
    try {
      upsertConversation(await request("PATCH", `${API}/conversations/${conversationId}/`, { json: { labels } }),
        undefined, restSince);
    } catch (error) {
      toast(error.message);
    }
    scheduleRender();
  }

  // ------------------------------------------------------------------ canned responses: "/" in the reply box

  const canned = { open: false, query: "", items: [], index: 0 };

  /** The "/name" being typed at the start of the reply box, or null. */
  function cannedQuery(box) {
    const match = /^\/([^\s/]*)$/.exec(box.value.slice(0, box.selectionStart));
    return match && state.composerMode === "reply" ? match[1].toLowerCase() : null;
  }

  async function updateCannedMenu(box) {
    const query = cannedQuery(box);
    if (query === null) {
      closeCanned();
      return;
    }
    if (state.canned === null) {
      state.canned = [];
      try {
        state.canned = (await request("GET", `${API}/canned-responses/?page_size=100`)).results || [];
      } catch (error) {
        state.canned = null;
        return;
      }
    }
    canned.open = true;
    canned.query = query;
    canned.items = state.canned.filter((item) => item.name.toLowerCase().includes(query) ||
      item.text.toLowerCase().includes(query)).slice(0, 8);
    canned.index = Math.min(canned.index, Math.max(0, canned.items.length - 1));
    renderCanned();
  }

  function renderCanned() {
    const menu = $("[data-testid=canned-menu]");
    menu.hidden = !canned.open;
    if (!canned.open) return;
    menu.replaceChildren(...(canned.items.length ? canned.items.map((item, index) => el("li", {
      role: "option", class: "canned-item" + (index === canned.index ? " active" : ""),
      "aria-selected": index === canned.index ? "true" : "false", "data-testid": "canned-option",
      onmousedown: (event) => { event.preventDefault(); insertCanned(item); } },
    el("strong", { text: "/" + item.name }), el("span", { class: "canned-text", text: item.text })))
      : [el("li", { class: "canned-empty", text: t("canned_none") })]));
  }

  function closeCanned() {
    canned.open = false;
    canned.index = 0;
    renderCanned();
  }

  async function insertCanned(item) {
    const id = state.selectedId;
    const box = $("[data-testid=reply-box]");
    closeCanned();
    let text = item.text;
    try {
      text = (await request("POST", `${API}/canned-responses/${item.id}/fill/`, { json: { conversation: id } })).text;
    } catch (error) {
      toast(error.message); // the unfilled text is still better than nothing
    }
    if (id !== state.selectedId) return;
    box.value = text + box.value.slice(box.selectionStart);
    box.setSelectionRange(text.length, text.length);
    autoGrow(box);
    box.focus();
    const entry = state.conversations.get(id);
    renderComposer(entry ? entry.data : null);
  }

  /** The reply box's keys while the menu is open: arrows choose, Enter or Tab inserts, Escape closes. */
  function cannedKey(event) {
    if (!canned.open) return false;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      const step = event.key === "ArrowDown" ? 1 : -1;
      canned.index = (canned.index + step + canned.items.length) % Math.max(1, canned.items.length);
      renderCanned();
    } else if ((event.key === "Enter" || event.key === "Tab") && canned.items[canned.index]) {
      insertCanned(canned.items[canned.index]);
    } else if (event.key === "Escape") {
      closeCanned();
    } else {
      return false;
    }
    event.preventDefault();
    event.stopPropagation();
    return true;
  }

  // ------------------------------------------------------------------ presence: who else is here, who is typing

  const PRESENCE_TTL = 60000; // ms: an agent not heard of again for this long has left
  const presence = { others: new Map(), sent: null, typingTimer: null, typing: false };

  /** Tell the others which conversation this agent has open, and whether they are typing in it. */
  function announcePresence(typing) {
    const frame = { type: "presence", conversation: state.selectedId, typing: Boolean(typing && state.selectedId !== null) };
    const key = JSON.stringify(frame);
    if (presence.sent === key) return;
    presence.sent = key;
    send(socket.ws, frame);
  }

  function noteTyping() {
    if (!presence.typing) {
      presence.typing = true;
      announcePresence(true);
    }
    clearTimeout(presence.typingTimer);
    presence.typingTimer = setTimeout(() => {
      presence.typing = false;
      announcePresence(false);
    }, 4000);
  }

  function onPresence(frame) {
    if (typeof frame.user !== "number") return;
    if (!presence.others.has(frame.user) && frame.conversation !== null) {
      presence.sent = null; // someone arrived: tell them where this agent is, without waiting for the refresh
      announcePresence(presence.typing);
    }
    if (frame.conversation === null) presence.others.delete(frame.user);
    else presence.others.set(frame.user, { conversation: frame.conversation, typing: Boolean(frame.typing), at: Date.now() });
    renderPresence();
  }

  function renderPresence() {
    const node = $("[data-testid=presence]");
    const now = Date.now();
    const here = [];
    for (const [user, seen] of presence.others) {
      if (now - seen.at > PRESENCE_TTL) presence.others.delete(user);
      else if (seen.conversation === state.selectedId) here.push([user, seen]);
    }
    node.replaceChildren(...here.map(([user, seen]) => el("span", {
      class: "presence-chip" + (seen.typing ? " typing" : ""), "data-testid": "presence-agent", "data-user": user,
      "data-typing": seen.typing ? "true" : "false",
      text: seen.typing ? t("presence_typing", { name: memberName(user) }) : t("presence_viewing", { name: memberName(user) }) })));
  }

  // ------------------------------------------------------------------ mentions: @name in a colleague's note

  const mentions = { unread: 0, items: [], open: false };

  async function loadMentions() {
    try {
      const page = await request("GET", `${API}/mentions/`);
      mentions.unread = page.unread;
      mentions.items = page.results || [];
    } catch (error) {
      return;
    }
    renderMentions();
  }

  function onMention(mention) {
    if (!state.me || mention.user !== state.me.id) return; // someone else's
    mentions.unread += 1;
    mentions.items = [mention, ...mentions.items.filter((item) => item.id !== mention.id)].slice(0, 50);
    renderMentions();
    toast(t("mention_toast", { name: mention.author_name }));
  }

  function renderMentions() {
    const count = $("[data-testid=mentions-count]");
    count.hidden = !mentions.unread;
    count.textContent = mentions.unread > 99 ? "99+" : String(mentions.unread);
    const list = $("[data-testid=mentions-list]");
    list.hidden = !mentions.open;
    if (!mentions.open) return;
    list.replaceChildren(...(mentions.items.length ? mentions.items.map((mention) => el("a", {
      class: "mention-item" + (mention.read_at ? "" : " unread"), href: `#c=${mention.conversation}`,
      "data-testid": "mention-item", "data-conversation-id": mention.conversation,
      onclick: (event) => {
        event.preventDefault();
        openMention(mention);
      } },
    el("strong", { text: t("mention_from", { name: mention.author_name }) }),
    el("span", { class: "mention-text", text: mention.text }),
    el("time", { datetime: mention.created_at, text: relativeTime(mention.created_at) })))
      : [el("p", { class: "hint", text: t("mentions_none") })]));
  }

  async function openMention(mention) {
    mentions.open = false;
    $("[data-testid=mentions-button]").setAttribute("aria-expanded", "false");
    select(mention.conversation);
    if (!mention.read_at) {
      mention.read_at = new Date().toISOString();
      mentions.unread = Math.max(0, mentions.unread - 1);
      renderMentions();
      try {
        await request("POST", `${API}/mentions/`, { json: { ids: [mention.id] } });
      } catch (error) {
        loadMentions();
      }
    }
    renderMentions();
  }

  // ------------------------------------------------------------------ search: one box for messages, names, numbers

  const search = { query: "", timer: null, seq: 0, results: [], next: null, count: 0, loading: false };

  function onSearchInput(value) {
    clearTimeout(search.timer);
    search.query = value.trim();
    if (search.query.length < 2) {
      showSearch(false);
      return;
    }
    search.timer = setTimeout(() => runSearch(false), 300);
  }

  async function runSearch(more) {
    const seq = ++search.seq;
    const query = new URLSearchParams({ q: search.query });
    if (state.filter) query.set("status", state.filter);
    if (state.label !== null) query.set("label", String(state.label));
    search.loading = true;
    showSearch(true);
    try {
      const page = await request("GET", more && search.next ? search.next : `${API}/search/?${query}`);
      if (seq !== search.seq) return;
      search.results = more ? [...search.results, ...page.results] : page.results;
      search.next = pathOf(page.next);
      search.count = page.count;
      search.capped = Boolean(page.count_capped);
    } catch (error) {
      if (seq === search.seq) toast(error.message);
    } finally {
      if (seq === search.seq) {
        search.loading = false;
        showSearch(true);
      }
    }
  }

  /** `text` with the hit's places marked (built as DOM: the text stays text). */
  function marked(text, spans) {
    const parts = [];
    let at = 0;
    for (const [start, end] of [...(spans || [])].sort((a, b) => a[0] - b[0])) {
      if (start < at) continue;
      if (start > at) parts.push(text.slice(at, start));
      parts.push(el("mark", { text: text.slice(start, end) }));
      at = end;
    }
    parts.push(text.slice(at));
    return parts;
  }

  /** A window of the text around its first mark, so that a long message shows where it matched. */
  function excerpt(text, spans) {
    const first = spans && spans.length ? spans[0][0] : 0;
    const start = Math.max(0, first - 40);
    const shifted = (spans || []).map(([a, b]) => [a - start, b - start]).filter(([a]) => a >= 0);
    return [start > 0 ? "…" : "", ...marked(text.slice(start, start + 160), shifted),
      text.length > start + 160 ? "…" : ""];
  }

  function showSearch(on) {
    const box = $("[data-testid=search-results]");
    box.hidden = !on;
    $("[data-testid=conversation-list]").hidden = on;
    $("[data-testid=conversation-list-footer]").hidden = on;
    if (!on) {
      search.results = [];
      return;
    }
    const rows = search.results.map((hit) => {
      const conversation = hit.conversation;
      const text = hit.message ? hit.message.text || "" : contactName(conversation.contact);
      const at = hit.message ? hit.message.created_at : conversation.last_message_at;
      return el("a", { class: "search-hit" + (conversation.id === state.selectedId ? " active" : ""),
        href: `#c=${conversation.id}`, "data-testid": "search-result", "data-conversation-id": conversation.id,
        "data-match": hit.match, onclick: (event) => { event.preventDefault(); select(conversation.id); } },
      el("span", { class: "conv-row" },
        el("span", { class: "conv-name", text: contactName(conversation.contact) }),
        el("time", { class: "conv-time", datetime: at || "", text: relativeTime(at) })),
      el("span", { class: "search-text", "data-testid": "search-snippet" },
        ...(hit.message ? excerpt(text, hit.highlights) : [t("search_contact_match"), " ", ...marked(text, hit.highlights)])));
    });
    box.replaceChildren(
      el("p", { class: "search-count", "data-testid": "search-count",
        text: search.loading && !search.results.length ? t("searching")
          : t(search.capped ? "search_count_capped" : "search_count", { n: search.count }) }),
      ...rows,
      search.next ? el("button", { type: "button", class: "btn small ghost", "data-testid": "search-more",
        text: t("search_more"), onclick: () => runSearch(true) }) : null);
  }

  // ------------------------------------------------------------------ the contact panel

  const contactPanel = { open: false, conversationId: null, tickets: [], error: "" };

  function toggleContactPanel(open) {
    contactPanel.open = open;
    $("[data-testid=contact-panel]").hidden = !open;
    $("[data-testid=contact-toggle]").setAttribute("aria-expanded", open ? "true" : "false");
    if (open) {
      contactPanel.conversationId = null; // loads afresh
      renderContactPanel();
      $("[data-testid=contact-name]").focus();
    }
  }

  async function loadContactTickets(conversationId) {
    try {
      const page = await request("GET", `${API}/tickets/?conversation=${conversationId}&page_size=20`);
      if (contactPanel.conversationId === conversationId) contactPanel.tickets = page.results || [];
    } catch (error) {
      contactPanel.tickets = [];
    }
    renderContactPanel();
  }

  function renderContactPanel() {
    if (!contactPanel.open) return;
    const entry = state.conversations.get(state.selectedId);
    if (!entry) return;
    const conversation = entry.data;
    const contact = conversation.contact || {};
    const name = $("[data-testid=contact-name]");
    const another = contactPanel.conversationId !== conversation.id;
    if (another) {
      contactPanel.conversationId = conversation.id;
      contactPanel.tickets = [];
      contactPanel.error = "";
      loadContactTickets(conversation.id);
    }
    // Not while the agent types in it (a live update would undo the typing), but always for another contact.
    if (another || document.activeElement !== name) name.value = contact.name || "";
    const fact = (label, value, testid) => value ? [el("dt", { text: label }),
      el("dd", { "data-testid": testid, text: value })] : [];
    $("[data-testid=contact-facts]").replaceChildren(
      ...fact(t("contact_number"), contact.wa_id ? "+" + contact.wa_id : "", "contact-number"),
      ...fact(t("contact_username"), contact.username ? "@" + contact.username : "", "contact-username"),
      ...fact(t("contact_bsuid"), contact.user_id, "contact-bsuid"),
      ...fact(t("contact_marketing"), contact.marketing === "stop" ? t("marketing_stopped")
        : contact.marketing === "resume" ? t("contact_marketing_resumed") : "", "contact-marketing"),
      ...fact(t("contact_opted_in"), contact.opted_in_at ? fullFormat.format(ms(contact.opted_in_at)) : "", "contact-opted-in"),
      ...fact(t("contact_opted_out"), contact.opted_out_at ? fullFormat.format(ms(contact.opted_out_at)) : "",
        "contact-opted-out"));
    const attributes = Object.entries(contact.attributes || {});
    $("[data-testid=contact-attributes]").replaceChildren(...(attributes.length ? attributes.map(([key, value]) =>
      el("div", { class: "cp-attribute", "data-testid": "contact-attribute", "data-key": key },
        el("span", { class: "cp-key", text: key }), el("span", { class: "cp-value", text: value }),
        el("button", { type: "button", class: "icon-btn", "aria-label": t("contact_remove_attribute", { key }),
          text: "×", onclick: () => saveContact({ attributes: { [key]: null } }) })))
      : [el("p", { class: "hint", text: t("contact_no_attributes") })]));
    const error = $("[data-testid=contact-error]");
    error.textContent = contactPanel.error;
    error.hidden = !contactPanel.error;
    $("[data-testid=contact-tickets]").replaceChildren(...contactPanel.tickets.map((ticket) => el("li", {
      "data-testid": "contact-ticket" },
    el("span", { class: "status-chip " + statusOfTicket(ticket.status), text: t("status_" + statusOfTicket(ticket.status)) }),
    " #" + ticket.id + " · " + (ticket.created_at ? fullFormat.format(ms(ticket.created_at)) : ""))));
  }

  async function saveContact(changes) {
    const entry = state.conversations.get(state.selectedId);
    if (!entry || !entry.data.contact) return;
    contactPanel.error = "";
    const restSince = since();
    try {
      const contact = await request("PATCH", `${API}/contacts/${entry.data.contact.id}/`, { json: changes });
      const current = state.conversations.get(entry.data.id);
      if (current) upsertConversation({ ...current.data, contact }, undefined, restSince);
    } catch (error) {
      contactPanel.error = error.message;
    }
    renderContactPanel();
    scheduleRender();
  }

  function setupContactPanel() {
    $("[data-testid=contact-toggle]").addEventListener("click", () => toggleContactPanel(!contactPanel.open));
    $("[data-testid=contact-close]").addEventListener("click", () => toggleContactPanel(false));
    const name = $("[data-testid=contact-name]");
    const saveName = () => {
      const entry = state.conversations.get(state.selectedId);
      const current = entry && entry.data.contact ? entry.data.contact.name || "" : "";
      if (name.value.trim() !== current) saveContact({ name: name.value });
    };
    name.addEventListener("change", saveName);
    name.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        saveName();
      }
    });
    $("[data-testid=attribute-form]").addEventListener("submit", (event) => {
      event.preventDefault();
      const key = $("[data-testid=attribute-key]");
      const value = $("[data-testid=attribute-value]");
      if (!key.value.trim() || !value.value.trim()) return;
      saveContact({ attributes: { [key.value.trim()]: value.value.trim() } });
      key.value = "";
      value.value = "";
      key.focus();
    });
    const box = $("[data-testid=search-box]");
    box.addEventListener("input", () => onSearchInput(box.value));
    box.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        box.value = "";
        onSearchInput("");
        box.blur();
      }
    });
  }

  // ------------------------------------------------------------------ sending a file (picker, drop, paste)

  async function sendFile(file) {
    const id = state.selectedId;
    const entry = state.conversations.get(id);
    if (!file || id === null || !entry || state.sending) return;
    if (windowOf(entry.data).state === "closed") {
      state.replyError = t("error_window_closed");
      scheduleRender();
      return;
    }
    const box = $("[data-testid=reply-box]");
    const caption = box.value.trim();
    const form = new FormData();
    form.append("file", file, file.name || "file");
    if (caption && !file.type.startsWith("audio/")) form.append("caption", caption);
    state.sending = true;
    state.replyError = "";
    scheduleRender();
    const restSince = since();
    try {
      const message = await request("POST", `${API}/conversations/${id}/messages/`, { multipart: form });
      if (caption && !file.type.startsWith("audio/")) {
        box.value = "";
        state.drafts.delete(id);
        autoGrow(box);
      }
      threadOf(id);
      upsertMessage(message, undefined, restSince);
      if (id === state.selectedId) view.stickToBottom = true;
    } catch (error) {
      if (id === state.selectedId) state.replyError = error.message;
      else toast(error.message);
    } finally {
      state.sending = false;
      scheduleRender();
    }
  }

  function setupAttachments() {
    const input = $("[data-testid=attach-input]");
    $("[data-testid=attach]").addEventListener("click", () => input.click());
    input.addEventListener("change", () => {
      const file = input.files && input.files[0];
      input.value = ""; // the same file may be chosen again
      sendFile(file);
    });
    const thread = $("[data-testid=reply-form]").closest("section") || document.body;
    thread.addEventListener("dragover", (event) => {
      if (!event.dataTransfer || ![...event.dataTransfer.types].includes("Files")) return;
      event.preventDefault();
      thread.classList.add("dropping");
    });
    thread.addEventListener("dragleave", (event) => {
      if (!thread.contains(event.relatedTarget)) thread.classList.remove("dropping");
    });
    thread.addEventListener("drop", (event) => {
      thread.classList.remove("dropping");
      const file = event.dataTransfer && event.dataTransfer.files[0];
      if (!file) return;
      event.preventDefault();
      sendFile(file);
    });
    $("[data-testid=reply-box]").addEventListener("paste", (event) => {
      const file = event.clipboardData && event.clipboardData.files[0];
      if (!file) return;
      event.preventDefault();
      sendFile(file);
    });
  }

  function setupTemplatePicker() {
    $("[data-testid=template-open]").addEventListener("click", openPicker);
    $("[data-testid=template-open-closed]").addEventListener("click", openPicker);
    $("[data-testid=template-close]").addEventListener("click", closePicker);
    $("[data-testid=template-select]").addEventListener("change", () => {
      picker.values = {};
      picker.error = "";
      renderPicker();
    });
    $("[data-testid=template-send]").addEventListener("click", sendTemplate);
  }

  function setupEvents() {
    const list = $("[data-testid=conversation-list]");
    list.addEventListener("click", (event) => {
      const item = event.target.closest("[data-conversation-id]");
      if (!item || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
      event.preventDefault();
      select(Number(item.dataset.conversationId));
    });
    const scroller = list.parentElement;
    scroller.addEventListener("scroll", () => {
      if (scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 200) loadList(false);
    }, { passive: true });

    document.querySelectorAll("[data-testid=status-tab]").forEach((tab) => {
      tab.addEventListener("click", () => setFilter(tab.dataset.status));
    });
    document.querySelectorAll("[data-testid=view-option]").forEach((option) => {
      option.addEventListener("click", () => setOrdering(option.dataset.view));
      option.addEventListener("keydown", (event) => { // a radio group: arrows switch
        if (["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown"].includes(event.key)) {
          event.preventDefault();
          event.stopPropagation();
          setOrdering(state.ordering === "window" ? "recent" : "window");
          $(`[data-testid=view-option][data-view=${state.ordering}]`).focus();
        }
      });
    });

    $("[data-testid=ticket-status]").addEventListener("change", (event) => updateTicket({ status: event.target.value }));
    $("[data-testid=ticket-priority]").addEventListener("change", (event) => {
      updateTicket({ priority: event.target.value });
    });
    $("[data-testid=ticket-assignee]").addEventListener("change", (event) => {
      updateTicket({ assignee: event.target.value ? Number(event.target.value) : null });
    });
    $("[data-testid=assign-to-me]").addEventListener("click", assignToMe);
    $("[data-testid=availability-toggle]").addEventListener("click", () => {
      if (state.me) setAvailability(!state.me.available);
    });
    document.querySelectorAll("[data-testid=reply-form] .mode").forEach((button) => {
      button.addEventListener("click", () => setComposerMode(button.dataset.mode, true));
      button.addEventListener("keydown", (event) => { // a radio group: arrows switch
        if (["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown"].includes(event.key)) {
          event.preventDefault();
          setComposerMode(state.composerMode === "note" ? "reply" : "note", false);
          $(`[data-testid=reply-form] .mode[data-mode=${state.composerMode}]`).focus();
        }
      });
    });

    const box = $("[data-testid=reply-box]");
    box.addEventListener("keydown", (event) => {
      if (cannedKey(event)) return;
      if (event.key === "Enter" && !event.shiftKey && !event.altKey && !event.isComposing && event.keyCode !== 229) {
        event.preventDefault();
        sendReply();
      } else if (event.key === "Escape") {
        event.preventDefault();
        box.blur();
      }
    });
    box.addEventListener("input", () => {
      if (state.composerMode === "reply" && box.value) noteTyping();
      updateCannedMenu(box);
      autoGrow(box);
      if (state.replyError) state.replyError = "";
      const entry = state.conversations.get(state.selectedId);
      renderComposer(entry ? entry.data : null); // only the composer depends on what is typed
    });
    $("[data-testid=reply-form]").addEventListener("submit", (event) => {
      event.preventDefault();
      sendReply();
    });
    setupTemplatePicker();
    setupAttachments();
    setupContactPanel();
    $("[data-testid=mentions-button]").addEventListener("click", (event) => {
      mentions.open = !mentions.open;
      event.currentTarget.setAttribute("aria-expanded", mentions.open ? "true" : "false");
      renderMentions();
    });
    setInterval(() => { // refresh this agent's presence for the others, and forget those not heard of
      presence.sent = null;
      announcePresence(presence.typing);
      renderPresence();
    }, 20000);
    $("[data-testid=label-filter]").addEventListener("change", (event) => setLabelFilter(event.target.value));
    $("[data-testid=label-edit]").addEventListener("click", () =>
      toggleLabelMenu($("[data-testid=label-menu]").hidden));
    box.addEventListener("blur", () => setTimeout(closeCanned, 150));

    const messages = $("[data-testid=message-list]");
    messages.addEventListener("scroll", () => {
      if (view.newBelow && messages.scrollHeight - messages.scrollTop - messages.clientHeight < 80) {
        view.newBelow = 0;
        $("[data-testid=new-messages]").hidden = true;
      }
    }, { passive: true });
    $("[data-testid=new-messages]").addEventListener("click", () => {
      messages.scrollTo({ top: messages.scrollHeight, behavior: "smooth" });
      view.newBelow = 0;
      $("[data-testid=new-messages]").hidden = true;
    });
    $("[data-testid=thread-back]").addEventListener("click", () => {
      root.classList.remove("has-selection");
    });

    const connection = $("[data-testid=connection-status]");
    connection.addEventListener("click", () => {
      if (socket.status !== "live") reconnectNow();
    });

    $("[data-testid=help-button]").addEventListener("click", openHelp);
    $("[data-testid=help-close]").addEventListener("click", () => $("[data-testid=help-overlay]").close());
    $("[data-testid=help-overlay]").addEventListener("click", (event) => {
      if (event.target === event.currentTarget) event.currentTarget.close(); // a click on the backdrop
    });

    const language = $("[data-testid=language-form]");
    if (language) {
      $("[data-testid=language-select]").addEventListener("change", () => {
        language.elements.next.value = location.pathname + location.hash;
        language.submit();
      });
    }

    document.addEventListener("keydown", (event) => {
      if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
      if (document.querySelector("dialog[open]")) return; // the dialog handles its own keys (Esc closes it)
      if (isTyping(event.target)) return;
      const key = event.key;
      if (key === "j" || key === "ArrowDown") {
        event.preventDefault();
        move(1);
      } else if (key === "k" || key === "ArrowUp") {
        event.preventDefault();
        move(-1);
      } else if (key === "r" || key === "/") {
        if (state.selectedId === null) return;
        event.preventDefault();
        setComposerMode("reply", true);
      } else if (key === "n") {
        if (state.selectedId === null) return;
        event.preventDefault();
        setComposerMode("note", true);
      } else if (key === "a") {
        if (state.selectedId === null) return;
        event.preventDefault();
        assignToMe();
      } else if (key === "e") {
        if (state.selectedId === null) return;
        event.preventDefault();
        setStatus("resolved");
      } else if (key === "l") {
        if (state.selectedId === null) return;
        event.preventDefault();
        toggleLabelMenu(true);
      } else if (key === "c") {
        if (state.selectedId === null) return;
        event.preventDefault();
        toggleContactPanel(!contactPanel.open);
      } else if (key === "?") {
        event.preventDefault();
        openHelp();
      }
    });

    window.addEventListener("hashchange", () => {
      const id = selectedFromHash();
      if (id !== null && id !== state.selectedId) select(id);
    });
    window.addEventListener("online", () => {
      socket.attempt = 0;
      reconnectNow();
    });
    window.addEventListener("offline", () => {
      if (!socket.ws || socket.ws.readyState !== 1) setConnection("offline");
    });
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState !== "visible") return;
      reconnectNow();
      const entry = state.conversations.get(state.selectedId);
      if (entry && entry.data.unread_count > 0) markRead(state.selectedId);
      scheduleRender();
    });
    window.addEventListener("resize", () => autoGrow(box));
  }

  // ------------------------------------------------------------------ start

  setupEvents();
  setupSimulator();
  setConnection("connecting");
  const fromHash = selectedFromHash();
  if (fromHash !== null) select(fromHash);
  connect();
  setInterval(ping, 25000);
  setInterval(scheduleRender, 30000); // windows and relative times move with the clock
  // If the websocket cannot get through (a proxy without websockets), still show the data; it is reloaded
  // after the first `ready`.
  setTimeout(() => {
    if (!state.synced && !state.list.loaded && !state.list.loading) {
      loadList(true);
      if (state.selectedId !== null) loadThread(state.selectedId);
    }
  }, 5000);
  scheduleRender();
})();
