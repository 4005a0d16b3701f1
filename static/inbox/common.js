/* Helpers shared by the helpdesk pages (inbox.js, reports.js, settings.js), as one global: window.HelpdeskUI.
 * Load it before the page's own script. No build step, no dependencies.
 * Data is only ever put in the page with textContent / attributes, never as HTML.
 */
"use strict";

(() => {
  const SVG_NS = "http://www.w3.org/2000/svg";

  /** translator(STRINGS) -> t(key, params): the page's text for `key` (or the key itself), %(name)s filled in. */
  function translator(strings) {
    return function t(key, params) {
      let text = Object.prototype.hasOwnProperty.call(strings, key) ? strings[key] : key;
      if (params) text = text.replace(/%\((\w+)\)s/g, (whole, name) => (name in params ? String(params[name]) : whole));
      return text;
    };
  }

  const $ = (selector, scope) => (scope || document).querySelector(selector);

  /** A message template's variables, {{1}} or {{name}}, as conversations/template_check.py reads them. */
  const TEMPLATE_VARIABLE = /\{\{\s*([^{}]*?)\s*\}\}/g;

  /** The distinct variable names of a template's text, in order of first use. */
  function templateVariables(text) {
    return [...new Set([...String(text || "").matchAll(TEMPLATE_VARIABLE)].map((match) => match[1]))];
  }

  /** The text with each variable replaced by `valueOf(name)`, or left as it is when that gives nothing. */
  function fillTemplate(text, valueOf) {
    return String(text || "").replace(TEMPLATE_VARIABLE, (whole, name) => valueOf(name) || whole);
  }

  /** Attributes for el() and svg(): class, text (as text), dataset, style, on<event> listeners, others as attributes. */
  function setAttrs(node, attrs) {
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.setAttribute("class", value); // works for SVG elements too
      else if (key === "text") node.textContent = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key === "style") node.style.cssText = value; // through the CSSOM: CSP allows no inline style attribute
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
  }

  /** el("div", {class: "x", dataset: {id: 1}, text: "hi"}, child, ...): a DOM element; text goes in as text. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /** svg("line", {x1: 0, ...}, child, ...): an SVG element, attributes as for el(). */
  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    for (const child of children) if (child) node.append(child);
    return node;
  }

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  /**
   * api(t, {codes, onResponse}) -> {ApiError, messageOf, request} for the JSON API.
   *  - codes: {errorCode: stringKey}: an answer whose `code` is listed gets that (translated) message.
   *  - onResponse(response, data): called with every answer that arrived, before a refusal is thrown.
   * request(method, url, {json, form, multipart, signal}) sends the CSRF token on anything but GET, a JSON body
   * for `json`, a form body for `form` or a FormData for `multipart`, and resolves to the decoded answer; refusals and network errors throw ApiError
   * (status 0: no answer). An abort through `signal` rethrows the AbortError as it is.
   */
  function api(t, { codes = {}, onResponse } = {}) {
    function messageOf(status, data) {
      if (status === 0) return t("error_network");
      if (data && typeof data === "object") {
        if (typeof data.code === "string" && Object.prototype.hasOwnProperty.call(codes, data.code)) {
          return t(codes[data.code]); // the server's text, translated
        }
        if (typeof data.detail === "string" && data.detail) return data.detail;
        for (const value of Object.values(data)) {
          if (Array.isArray(value) && value.length && typeof value[0] === "string") return value[0];
          if (typeof value === "string" && value) return value;
        }
      }
      return t("error_http", { status });
    }

    class ApiError extends Error {
      constructor(status, data) {
        super(messageOf(status, data));
        this.status = status;
        this.data = data;
      }
    }

    async function request(method, url, { json, form, multipart, signal } = {}) {
      const options = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
      if (signal) options.signal = signal;
      if (method !== "GET") options.headers["X-CSRFToken"] = csrfToken();
      if (json !== undefined) {
        options.headers["Content-Type"] = "application/json";
        options.body = JSON.stringify(json);
      } else if (form !== undefined) {
        options.body = new URLSearchParams(form);
      } else if (multipart !== undefined) {
        options.body = multipart; // FormData: the browser writes the multipart Content-Type with its boundary
      }
      let response;
      try {
        response = await fetch(url, options);
      } catch (error) {
        if (signal && error.name === "AbortError") throw error;
        throw new ApiError(0, null);
      }
      let data = null;
      try {
        data = await response.json();
      } catch (error) {
        data = null;
      }
      if (onResponse) onResponse(response, data);
      if (!response.ok) throw new ApiError(response.status, data);
      return data;
    }

    return { ApiError, messageOf, request };
  }

  /** The header's language picker: a change submits its form, coming back to this very address. */
  function setLanguageSwitch() {
    const form = $("[data-testid=language-form]");
    const select = $("[data-testid=language-select]");
    if (!form || !select) return;
    select.addEventListener("change", () => {
      form.elements.next.value = location.pathname + location.search + location.hash;
      form.submit();
    });
  }

  /**
   * The live feed (the inbox websocket) for pages that follow it: subscribe(fn) gets every frame, and a
   * {type: "ready"} after each (re)connection, when frames may have been missed. The inbox page has a socket of
   * its own: it calls external() first and hands its frames to feed(), so that a page opens one socket only.
   */
  const live = (() => {
    const listeners = new Set();
    let ownSocket = false;
    let fedByPage = false;
    let attempt = 0;

    function feed(frame) {
      for (const listener of listeners) {
        try {
          listener(frame);
        } catch (error) {
          console.error(error); // one listener's bug must not silence the others
        }
      }
    }

    function connect() {
      const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/inbox/`);
      ws.addEventListener("message", (event) => {
        let frame;
        try {
          frame = JSON.parse(event.data);
        } catch (error) {
          return;
        }
        if (frame && frame.type === "ready") attempt = 0;
        if (frame && typeof frame === "object") feed(frame);
      });
      ws.addEventListener("close", (event) => {
        if (event.code === 4401 || event.code === 4403) return; // access ended: the page's next request says so
        attempt += 1;
        setTimeout(connect, Math.min(30000, 1000 * 2 ** Math.min(attempt, 5)));
      });
    }

    return Object.freeze({
      subscribe(listener) {
        listeners.add(listener);
        if (!fedByPage && !ownSocket) {
          ownSocket = true;
          connect();
        }
      },
      external() {
        fedByPage = true;
      },
      feed,
    });
  })();

  /**
   * Banners for admins and supervisors when a number's standing with Meta drops (quality, restriction, violation,
   * scheduled disable): GET /api/v1/alerts/, again on each health.* frame. "Got it" acknowledges one; it comes
   * back if the state worsens.
   */
  function healthBanners() {
    const box = $("[data-testid=health-banners]");
    if (!box) return;
    const words = box.dataset;
    const t = translator({});
    const { request } = api(t);
    let seq = 0;

    async function refresh() {
      const mine = ++seq;
      let alerts;
      try {
        alerts = await request("GET", "/api/v1/alerts/");
      } catch (error) {
        return; // the page itself reports a lost connection or session
      }
      if (mine !== seq) return;
      box.replaceChildren(...alerts.map((alert) => el("div", {
        class: `health-banner level-${alert.level}`, role: "alert", "data-testid": "health-banner",
        "data-kind": alert.kind },
      el("strong", { text: words.title }), " ", el("span", { text: alert.summary }), " ",
      words.numbersLink ? el("a", { href: "/numbers/", text: words.numbersLink }) : null,
      el("button", { type: "button", class: "btn small", "data-testid": "health-acknowledge", text: words.ack,
        onclick: async () => {
          try {
            await request("POST", `/api/v1/alerts/${alert.id}/acknowledge/`);
          } finally {
            refresh();
          }
        } }))));
      box.hidden = !alerts.length;
    }

    live.subscribe((frame) => {
      if (frame.type === "ready" || String(frame.type || "").startsWith("health.")) refresh();
    });
    refresh();
  }

  window.HelpdeskUI = Object.freeze({
    SVG_NS, translator, $, setAttrs, el, svg, csrfToken, api, setLanguageSwitch, live, templateVariables, fillTemplate,
  });
  // After every deferred script: the inbox has said by then that it feeds the live frames itself.
  document.addEventListener("DOMContentLoaded", healthBanners);
})();
