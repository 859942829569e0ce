/*! Seamline web chat widget. Plain ES2019, no dependencies, no build step.
 *
 * Embed with one tag:
 *   <script src="https://shop.example/widget.js" async data-lang="ru" data-title="Поддержка"></script>
 * Optional data attributes: data-lang (ru|en), data-title, data-open="true",
 * data-server (WebSocket URL override), data-color (accent CSS color), and for a logged-in
 * user of the site data-external-id (the site's user id) with data-signature (hex
 * HMAC-SHA256 of that id with SEAMLINE_WEB_IDENTITY_SECRET, computed on the site's server).
 * Wire protocol: docs/web-chat-protocol.md.
 *
 * Security rule for this file: text that comes from the server (or the user) only
 * ever reaches the DOM through textContent / createTextNode / setAttribute.
 * There is no innerHTML anywhere, on purpose.
 */
(function () {
  "use strict";

  if (window.Seamline && typeof window.Seamline.open === "function") return; // embedded twice

  const MAX_TEXT = 4096;                 // characters (code points), same limit as the server
  const TOKEN_KEY = "seamline.token";    // localStorage: restores the conversation after a reload
  const OUTBOX_KEY = "seamline.outbox";  // sessionStorage: unacknowledged messages survive a reload
  const IDENTITY_KEY = "seamline.identity"; // localStorage: the site user the stored conversation is theirs
  const BACKOFF_START = 500, BACKOFF_FACTOR = 2, BACKOFF_MAX = 10000;
  const PING_EVERY = 25000, PONG_TIMEOUT = 10000; // detects connections that died silently (sleep, Wi-Fi switch)
  const INTERNAL_RETRIES = 3;
  const ROLES = ["customer", "bot", "agent"];
  const SVG_NS = "http://www.w3.org/2000/svg";

  const STRINGS = {
    en: {
      title: "Support", placeholder: "Type a message…", send: "Send", inputLabel: "Message",
      connecting: "connecting…", online: "online", reconnecting: "reconnecting…", sending: "sending…",
      openChat: "Open chat", closeChat: "Close chat", unread: "unread messages", agent: "Agent",
      messages: "Messages", quickReplies: "Quick replies", failed: "Not delivered",
      tooLong: "The message is too long: {n} characters, at most 4096 are allowed.",
      continueIn: "Continue in", continueLabel: "Continue in {channel}",
      openLink: "Open {channel} to continue there", linkOffline: "No connection; try again in a moment.",
      linkUnavailable: "Continuing in {channel} is not available right now.",
      linkRateLimited: "Too many links were asked for; use the last one, or try again later.",
      older: "Earlier messages", image: "Image",
    },
    ru: {
      title: "Поддержка", placeholder: "Напишите сообщение…", send: "Отправить", inputLabel: "Сообщение",
      connecting: "подключение…", online: "в сети", reconnecting: "переподключение…", sending: "отправка…",
      openChat: "Открыть чат", closeChat: "Закрыть чат", unread: "непрочитанных сообщений", agent: "Оператор",
      messages: "Сообщения", quickReplies: "Быстрые ответы", failed: "Не доставлено",
      tooLong: "Сообщение слишком длинное: {n} символов, можно не больше 4096.",
      continueIn: "Продолжить в", continueLabel: "Продолжить в {channel}",
      openLink: "Открыть {channel} и продолжить там", linkOffline: "Нет соединения; попробуйте через минуту.",
      linkUnavailable: "Продолжить в {channel} сейчас нельзя.",
      linkRateLimited: "Слишком много ссылок; используйте последнюю или попробуйте позже.",
      older: "Ранние сообщения", image: "Изображение",
    },
  };

  // ---------------------------------------------------------------- configuration

  function findOwnScript() {
    if (document.currentScript) return document.currentScript;
    // currentScript is null e.g. when called from a callback; fall back to the last matching tag.
    const all = document.getElementsByTagName("script");
    for (let i = all.length - 1; i >= 0; i--) {
      if (/widget\.js(?:[?#].*)?$/.test(all[i].getAttribute("src") || "")) return all[i];
    }
    return null;
  }

  function toWsProtocol(u) {
    if (u.protocol === "https:") u.protocol = "wss:";
    else if (u.protocol === "http:") u.protocol = "ws:";
    return u;
  }

  // Same origin as the script, path prefix kept: /seamline/widget.js -> /seamline/chat/ws.
  function serverUrl(script) {
    const override = script && script.getAttribute("data-server");
    if (override) return toWsProtocol(new URL(override, location.href)).href;
    if (!script || !script.src) return toWsProtocol(new URL("/chat/ws", location.href)).href;
    const src = new URL(script.src, location.href);
    const u = new URL(src.pathname.replace(/[^/]*$/, "") + "chat/ws", src.origin);
    return toWsProtocol(u).href;
  }

  function pickLang(attr) {
    const a = String(attr || "").toLowerCase().slice(0, 2);
    if (a === "ru" || a === "en") return a;
    return String(navigator.language || "").toLowerCase().startsWith("ru") ? "ru" : "en";
  }

  const script = findOwnScript();
  const data = (script && script.dataset) || {};
  const lang = pickLang(data.lang);
  const T = STRINGS[lang];
  const WS_URL = serverUrl(script);
  // The site's logged-in user, vouched for by the site's signature (checked by the server only).
  const EXTERNAL_ID = typeof data.externalId === "string" && data.externalId ? data.externalId : "";
  const SIGNATURE = typeof data.signature === "string" ? data.signature : "";

  // ---------------------------------------------------------------- storage
  // Storage may throw (privacy modes, sandboxed iframes, quota): keep a memory copy always.

  const memory = {};
  function storageGet(area, key) {
    if (Object.prototype.hasOwnProperty.call(memory, key)) return memory[key];
    try { return window[area].getItem(key); } catch (_) { return null; }
  }
  function storageSet(area, key, value) {
    memory[key] = value;
    try {
      if (value == null) window[area].removeItem(key);
      else window[area].setItem(key, value);
    } catch (_) { /* memory copy is enough */ }
  }

  function loadOutbox() {
    try {
      const list = JSON.parse(storageGet("sessionStorage", OUTBOX_KEY) || "[]");
      return Array.isArray(list)
        ? list.filter((o) => o && typeof o.id === "string" && typeof o.text === "string")
        : [];
    } catch (_) { return []; }
  }
  function saveOutbox() {
    storageSet("sessionStorage", OUTBOX_KEY, outbox.length ? JSON.stringify(outbox) : null);
  }

  function newId() {
    const c = window.crypto;
    if (c && typeof c.randomUUID === "function") return "c-" + c.randomUUID(); // secure contexts only
    if (c && typeof c.getRandomValues === "function") {
      const b = c.getRandomValues(new Uint8Array(16));
      return "c-" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    }
    return "c-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
  }

  // ---------------------------------------------------------------- state

  let ws = null;            // the current socket (older sockets are ignored)
  let ready = false;        // welcome received on the current socket: messages may be sent
  let started = false;      // a connection is wanted (lazy: first open, stored conversation, or send)
  let everOnline = false;
  let attempt = 0;
  let retryTimer = null;
  let pingTimer = null;
  let pongTimer = null;
  let noticeTimer = null;
  let token = storageGet("localStorage", TOKEN_KEY);
  let outbox = loadOutbox(); // [{id, text, ts, payload?}] sent or to be sent, not yet acknowledged
  // The stored conversation was a site user's, and the page now has another user or none (logged
  // out, a shared computer): it is not this person's to see or continue. Start a new one.
  const boundTo = storageGet("localStorage", IDENTITY_KEY);
  if (boundTo && boundTo !== EXTERNAL_ID) {
    token = null;
    outbox = [];
    storageSet("localStorage", TOKEN_KEY, null);
    storageSet("localStorage", IDENTITY_KEY, null);
    saveOutbox();
  }
  let channels = [];         // channels the server offers to continue in: {channel, label, icon} (welcome.continue_in)
  let labels = {};           // every channel's name as the server calls it in this language (welcome.labels)
  const pendingLinks = {};   // link frame id -> {channel, win}: asked for, not yet answered
  let linkTimer = null;
  let failed = [];           // [{id, text, ts, error}] rejected by the server; local only
  let messages = [];         // confirmed messages from the server, oldest first
  let olderCursor = null;    // where the next older page of history starts (welcome.before), or null
  let unread = 0;
  let isOpen = false;

  // ---------------------------------------------------------------- DOM helpers

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.keys(attrs || {}).forEach((k) => {
      const v = attrs[k];
      if (v == null || v === false) return;
      if (k === "text") node.textContent = String(v);
      else if (k === "class") node.className = v;
      else node.setAttribute(k, v === true ? "" : String(v));
    });
    (children || []).forEach((c) => c && node.appendChild(c));
    return node;
  }

  function icon(d, cls, stroke) {
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    if (cls) svg.setAttribute("class", cls);
    const path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", d);
    if (stroke) {
      path.setAttribute("fill", "none");
      path.setAttribute("stroke", "currentColor");
      path.setAttribute("stroke-width", "2.2");
      path.setAttribute("stroke-linecap", "round");
    } else path.setAttribute("fill", "currentColor");
    svg.appendChild(path);
    return svg;
  }
  const ICON_CHAT = "M6 3h12a3 3 0 0 1 3 3v8a3 3 0 0 1-3 3h-7.5L5 21v-4.2A3 3 0 0 1 3 14V6a3 3 0 0 1 3-3z";
  const ICON_CLOSE = "M6 6l12 12M18 6L6 18";
  const ICON_SEND = "M3 20.5l18.5-8.5L3 3.5 3.01 10 15 12 3.01 14z";

  const CSS = `
:host { all: initial; }
.sl-root, .sl-root * { box-sizing: border-box; }
.sl-root { --sl-accent: #4f46e5; --sl-ink: #1f2937; --sl-muted: #6b7280; --sl-line: #e5e7eb;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--sl-ink); -webkit-font-smoothing: antialiased; text-align: left; }
[hidden] { display: none !important; }
button { font: inherit; margin: 0; }
button:focus-visible { outline: 3px solid #93c5fd; outline-offset: 2px; }
.sl-launcher { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000; width: 60px; height: 60px;
  padding: 0; border: 0; border-radius: 50%; background: var(--sl-accent); color: #fff; cursor: pointer;
  display: grid; place-items: center; transition: transform .15s ease;
  box-shadow: 0 6px 20px rgba(15,23,42,.25), 0 2px 6px rgba(15,23,42,.12); }
.sl-launcher:hover { transform: scale(1.06); }
.sl-launcher svg { width: 28px; height: 28px; }
.sl-ico-close, .sl-open .sl-ico-chat { display: none; }
.sl-open .sl-ico-close { display: block; }
.sl-badge { position: absolute; top: -3px; right: -3px; min-width: 22px; height: 22px; padding: 0 6px;
  border: 2px solid #fff; border-radius: 11px; background: #ef4444; color: #fff;
  font-size: 12px; font-weight: 700; line-height: 18px; text-align: center; }
.sl-panel { position: fixed; right: 20px; bottom: 92px; z-index: 2147483000; width: 380px;
  height: min(620px, calc(100vh - 116px)); display: flex; flex-direction: column; overflow: hidden;
  background: #fff; border-radius: 16px; animation: sl-in .18s ease-out;
  box-shadow: 0 12px 48px rgba(15,23,42,.22), 0 2px 8px rgba(15,23,42,.08); }
@keyframes sl-in { from { opacity: 0; transform: translateY(12px) scale(.98); } to { opacity: 1; transform: none; } }
.sl-header { display: flex; align-items: center; gap: 12px; padding: 14px 12px 14px 16px;
  background: var(--sl-accent); color: #fff; }
.sl-avatar { flex: none; width: 38px; height: 38px; border-radius: 50%; display: grid; place-items: center;
  background: rgba(255,255,255,.18); }
.sl-avatar svg { width: 20px; height: 20px; }
.sl-head-text { flex: 1; min-width: 0; }
.sl-title { font-size: 16px; font-weight: 650; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.sl-status { display: flex; align-items: center; gap: 6px; font-size: 12.5px; opacity: .92; }
.sl-dot { width: 8px; height: 8px; border-radius: 50%; background: #fbbf24; }
.sl-status[data-state="online"] .sl-dot { background: #4ade80; }
.sl-status[data-state="offline"] .sl-dot { background: #f87171; }
.sl-close { flex: none; width: 36px; height: 36px; padding: 0; border: 0; border-radius: 50%; cursor: pointer;
  display: grid; place-items: center; background: transparent; color: inherit; }
.sl-close:hover { background: rgba(255,255,255,.16); }
.sl-close svg { width: 20px; height: 20px; }
.sl-messages { flex: 1; overflow-y: auto; overscroll-behavior: contain; padding: 16px 14px 8px;
  display: flex; flex-direction: column; gap: 10px; background: #f8fafc; }
.sl-older { display: block; margin: 0 auto 10px; padding: 4px 10px; border: 0; background: none; cursor: pointer;
  color: var(--sl-accent); font: inherit; font-size: 13px; }
.sl-msg { display: flex; flex-direction: column; align-items: flex-start; max-width: 82%; }
.sl-msg.sl-customer { align-self: flex-end; align-items: flex-end; }
.sl-text { padding: 9px 13px; border-radius: 16px; border-bottom-left-radius: 5px; background: #fff;
  border: 1px solid var(--sl-line); white-space: pre-wrap; overflow-wrap: anywhere; }
.sl-img { display: block; max-width: 100%; max-height: 240px; margin-bottom: 4px; border-radius: 12px;
  border: 1px solid var(--sl-line); background: #fff; object-fit: contain; }
.sl-agent .sl-text { background: #ecfdf5; border-color: #a7f3d0; }
.sl-customer .sl-text { background: var(--sl-accent); border-color: transparent; color: #fff;
  border-radius: 16px; border-bottom-right-radius: 5px; }
.sl-pending .sl-text { opacity: .6; }
.sl-failed .sl-text { background: #fee2e2; color: #7f1d1d; }
.sl-author { margin: 0 0 3px 4px; font-size: 12px; font-weight: 600; color: #047857; }
.sl-meta { display: flex; gap: 6px; margin: 3px 6px 0; font-size: 11.5px; color: var(--sl-muted); }
.sl-error { margin: 3px 6px 0; font-size: 12.5px; color: #b91c1c; text-align: right; }
.sl-notice { margin: 0 14px 8px; padding: 8px 12px; border-radius: 10px; font-size: 13px;
  background: #fff7ed; color: #9a3412; }
.sl-buttons { display: flex; flex-wrap: wrap; justify-content: flex-end; gap: 8px; padding: 8px 14px 10px;
  background: #f8fafc; }
.sl-qr { padding: 7px 14px; border: 1.5px solid var(--sl-accent); border-radius: 999px; cursor: pointer;
  background: #fff; color: var(--sl-accent); font-size: 14px; }
.sl-qr:hover { background: var(--sl-accent); color: #fff; }
.sl-composer { display: flex; align-items: flex-end; gap: 8px; padding: 10px 12px 12px;
  border-top: 1px solid var(--sl-line); background: #fff; }
.sl-input { flex: 1; min-height: 40px; max-height: 120px; resize: none; margin: 0; padding: 9px 14px;
  border: 1px solid var(--sl-line); border-radius: 20px; outline: none; background: #f8fafc;
  font: inherit; line-height: 1.4; color: inherit; }
.sl-input:focus { border-color: var(--sl-accent); background: #fff; box-shadow: 0 0 0 1px var(--sl-accent); }
.sl-send { flex: none; width: 40px; height: 40px; padding: 0; border: 0; border-radius: 50%; cursor: pointer;
  display: grid; place-items: center; background: var(--sl-accent); color: #fff; }
.sl-send:hover { filter: brightness(1.1); }
.sl-send svg { width: 20px; height: 20px; }
.sl-channels { display: flex; flex-wrap: wrap; justify-content: center; gap: 6px 14px; padding: 0 12px 10px;
  background: #fff; }
.sl-ch { padding: 2px 4px; border: 0; border-radius: 6px; cursor: pointer; background: transparent;
  color: var(--sl-accent); font-size: 13px; text-decoration: underline; text-underline-offset: 2px; }
.sl-ch:hover { background: #eef2ff; }
.sl-ch[data-icon]:not([data-icon=""])::before { content: attr(data-icon) " "; display: inline-block; margin-right: 2px; }
.sl-link { margin: 0 14px 8px; padding: 8px 12px; border-radius: 10px; font-size: 13px; background: #eef2ff; }
.sl-link a { color: var(--sl-accent); font-weight: 600; }
.sl-via { font-style: italic; }
.sl-sr { position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
@media (max-width: 480px) {
  .sl-panel { inset: 0; width: 100%; height: 100%; border-radius: 0; }
  .sl-open .sl-launcher { display: none; }
  .sl-input { font-size: 16px; } /* < 16px makes iOS zoom the page on focus */
}
@media (prefers-reduced-motion: reduce) { .sl-panel { animation: none; } .sl-launcher { transition: none; } }
`;

  // ---------------------------------------------------------------- build the UI

  const host = el("div", { id: "seamline-widget" });
  // Inline !important beats ordinary page rules aimed at the host (e.g. `div { display: none }`).
  host.setAttribute("style", "all: initial !important; display: block !important;");
  const shadow = host.attachShadow({ mode: "open" });

  const badge = el("span", { class: "sl-badge", "aria-hidden": "true", hidden: true });
  const launcher = el("button", {
    type: "button", class: "sl-launcher", "data-seamline": "launcher",
    "aria-label": T.openChat, "aria-expanded": "false", "aria-controls": "sl-panel",
  }, [icon(ICON_CHAT, "sl-ico-chat"), icon(ICON_CLOSE, "sl-ico-close", true), badge]);

  const title = data.title || T.title;
  const statusText = el("span", { text: T.connecting });
  const status = el("div", { class: "sl-status", "data-seamline": "status", "data-state": "connecting", role: "status" },
    [el("span", { class: "sl-dot", "aria-hidden": "true" }), statusText]);
  const closeBtn = el("button", { type: "button", class: "sl-close", "aria-label": T.closeChat }, [icon(ICON_CLOSE, "", true)]);
  const header = el("div", { class: "sl-header" }, [
    el("div", { class: "sl-avatar", "aria-hidden": "true" }, [icon(ICON_CHAT)]),
    el("div", { class: "sl-head-text" }, [el("div", { class: "sl-title", id: "sl-title", text: title }), status]),
    closeBtn,
  ]);
  const list = el("div", { class: "sl-messages", "data-seamline": "messages", role: "log", "aria-live": "polite", "aria-label": T.messages, tabindex: "0" });
  const notice = el("div", { class: "sl-notice", "data-seamline": "notice", role: "alert", hidden: true });
  const buttonsBox = el("div", { class: "sl-buttons", "data-seamline": "buttons", role: "group", "aria-label": T.quickReplies, hidden: true });
  const input = el("textarea", { id: "sl-input", class: "sl-input", "data-seamline": "input", rows: "1", placeholder: T.placeholder, autocomplete: "off" });
  const sendBtn = el("button", { type: "submit", class: "sl-send", "data-seamline": "send", "aria-label": T.send, title: T.send }, [icon(ICON_SEND)]);
  const form = el("form", { class: "sl-composer" }, [el("label", { class: "sl-sr", for: "sl-input", text: T.inputLabel }), input, sendBtn]);
  const linkBox = el("div", { class: "sl-link", "data-seamline": "link", hidden: true });
  const channelsBox = el("div", { class: "sl-channels", "data-seamline": "channels", role: "group", "aria-label": T.continueIn, hidden: true });
  const panel = el("div", { id: "sl-panel", class: "sl-panel", "data-seamline": "panel", role: "dialog", "aria-labelledby": "sl-title", hidden: true },
    [header, list, notice, linkBox, buttonsBox, form, channelsBox]);
  const root = el("div", { class: "sl-root", lang: lang }, [launcher, panel]);
  if (data.color && window.CSS && CSS.supports("color", data.color)) root.style.setProperty("--sl-accent", data.color);

  shadow.appendChild(el("style", { text: CSS }));
  shadow.appendChild(root);

  // ---------------------------------------------------------------- rendering

  const pad2 = (n) => String(n).padStart(2, "0");
  function hhmm(ts) {
    const d = new Date(ts);
    return isNaN(d.getTime()) ? "" : pad2(d.getHours()) + ":" + pad2(d.getMinutes());
  }

  // Server frames are untrusted: coerce every field we use to the expected type.
  function normalize(f) {
    if (!f || typeof f !== "object") return null;
    return {
      id: f.id == null ? "" : String(f.id),
      role: ROLES.indexOf(f.role) >= 0 ? f.role : "bot",
      text: typeof f.text === "string" ? f.text : String(f.text == null ? "" : f.text),
      ts: typeof f.ts === "string" ? f.ts : new Date().toISOString(),
      channel: typeof f.channel === "string" ? f.channel : "web",
      buttons: (Array.isArray(f.buttons) ? f.buttons : [])
        .filter((b) => b && typeof b === "object" && b.title != null)
        .map((b) => ({ title: String(b.title), payload: b.payload })),
      image: imageUrl(f.image),
      custom: f.custom && typeof f.custom === "object" && !Array.isArray(f.custom) ? f.custom : null,
    };
  }

  // Only an absolute http(s) URL is shown as an image: never javascript:, data: or a relative path
  // (the server drops those too; an untrusted frame is checked again here).
  function imageUrl(value) {
    if (typeof value !== "string" || value.length > 2048) return null;
    try {
      const u = new URL(value);
      return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
    } catch (e) {
      return null;
    }
  }

  // A reply's custom payload is for the page, not shown: each one is handed over once per page load
  // as a "seamline:custom" event on window (replay: true when it came with the history).
  const handedOver = new Set();
  function handOver(m, replay) {
    if (!m || !m.custom || !m.id || handedOver.has(m.id)) return;
    handedOver.add(m.id);
    window.dispatchEvent(new CustomEvent("seamline:custom", {
      detail: { id: m.id, role: m.role, text: m.text, custom: m.custom, replay: replay },
    }));
  }

  // state: "" (confirmed) | "pending" | "failed"
  function renderMessage(m, state, error) {
    const node = el("div", { class: "sl-msg sl-" + m.role + (state ? " sl-" + state : ""), "data-id": m.id });
    if (m.role === "agent") node.appendChild(el("div", { class: "sl-author", text: T.agent }));
    if (m.image) {
      node.appendChild(el("img", {
        class: "sl-img", "data-seamline": "image", src: m.image, alt: m.text || T.image,
        loading: "lazy", referrerpolicy: "no-referrer",
      }));
    }
    if (m.text || !m.image) node.appendChild(el("div", { class: "sl-text", text: m.text }));
    const meta = el("div", { class: "sl-meta" }, [el("time", { text: hhmm(m.ts) })]);
    // Said in a messenger before the chats were linked: say where.
    if (m.channel && m.channel !== "web") {
      node.setAttribute("data-channel", m.channel);
      meta.appendChild(el("span", { class: "sl-via", text: labelOf(m.channel) }));
    }
    if (state === "pending") meta.appendChild(el("span", { class: "sl-state", text: T.sending }));
    node.appendChild(meta);
    if (state === "failed") node.appendChild(el("div", { class: "sl-error", text: error || T.failed }));
    return node;
  }
  const localMsg = (o) => ({ id: o.id, role: "customer", text: o.text, ts: o.ts });

  function findNode(id) {
    for (const n of list.children) if (n.getAttribute("data-id") === id) return n;
    return null;
  }
  const nearBottom = () => list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  function scrollDown(force) { if (force || nearBottom()) list.scrollTop = list.scrollHeight; }

  // Confirmed messages always go before pending ones, so a bot reply to message A
  // shows under A even when the customer already typed B that is not yet acknowledged.
  function placeConfirmed(node, id) {
    const old = findNode(id);
    if (old && !old.classList.contains("sl-pending")) { old.replaceWith(node); return; }
    if (old) old.remove();
    list.insertBefore(node, list.querySelector(".sl-pending"));
  }

  function renderAll(keepScroll) {
    const fromBottom = list.scrollHeight - list.scrollTop;
    const frag = document.createDocumentFragment();
    if (olderCursor) {
      const more = el("button", { type: "button", class: "sl-older", "data-seamline": "older", text: T.older });
      more.addEventListener("click", () => { if (ready && olderCursor) frame({ type: "older", id: newId(), before: olderCursor }); });
      frag.appendChild(more);
    }
    messages.forEach((m) => frag.appendChild(renderMessage(m)));
    failed.forEach((f) => frag.appendChild(renderMessage(localMsg(f), "failed", f.error)));
    outbox.forEach((o) => frag.appendChild(renderMessage(localMsg(o), "pending")));
    list.textContent = "";
    list.appendChild(frag);
    renderButtons();
    if (keepScroll) list.scrollTop = list.scrollHeight - fromBottom; // an older page: stay where the reader is
    else scrollDown(true);
  }

  // Quick replies belong to the last message only, and only while nothing is pending.
  function renderButtons() {
    buttonsBox.textContent = "";
    const last = messages[messages.length - 1];
    const show = !outbox.length && last && last.role !== "customer" && last.buttons.length > 0;
    buttonsBox.hidden = !show;
    if (!show) return;
    last.buttons.forEach((b) => {
      const btn = el("button", { type: "button", class: "sl-qr", "aria-label": b.title, text: b.title });
      btn.addEventListener("click", () => { buttonsBox.hidden = true; send(b.title, b.payload); });
      buttonsBox.appendChild(btn);
    });
  }

  // "Continue in …": the channels the server offers, with their labels and icons (welcome.continue_in);
  // the widget knows no channel by name.
  function labelOf(channel) {
    return typeof labels[channel] === "string" && labels[channel] ? labels[channel] : channel;
  }

  function renderChannels() {
    channelsBox.textContent = "";
    channelsBox.hidden = channels.length === 0;
    channels.forEach((c) => {
      const btn = el("button", { type: "button", class: "sl-ch", "data-channel": c.channel,
        "data-icon": c.icon, text: T.continueLabel.replace("{channel}", c.label) });
      btn.addEventListener("click", () => askLink(c.channel));
      channelsBox.appendChild(btn);
    });
  }

  function setStatus(state) {
    status.setAttribute("data-state", state);
    statusText.textContent = state === "online" ? T.online : state === "connecting" ? T.connecting : T.reconnecting;
  }

  function showNotice(text) {
    notice.textContent = text;
    notice.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { notice.hidden = true; }, 6000);
  }

  function updateBadge() {
    badge.hidden = unread === 0;
    badge.textContent = unread > 9 ? "9+" : String(unread);
    launcher.setAttribute("aria-label", isOpen ? T.closeChat : unread ? T.openChat + " (" + unread + " " + T.unread + ")" : T.openChat);
  }

  // ---------------------------------------------------------------- protocol

  function frame(obj) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    try { ws.send(JSON.stringify(obj)); return true; } catch (_) { return false; }
  }

  function transmit(item) {
    if (!ready) return; // flushed after the next welcome
    const f = { type: "message", id: item.id, text: item.text };
    if (item.payload != null) f.payload = item.payload;
    frame(f);
  }

  function takeFromOutbox(id) {
    const i = outbox.findIndex((o) => o.id === id);
    if (i < 0) return null;
    const item = outbox.splice(i, 1)[0];
    saveOutbox();
    return item;
  }

  // The newest page of history comes with welcome and history frames; older pages on request.
  const cursorOf = (f) => (f.more === true && typeof f.before === "string" ? f.before : null);

  function onOlder(f) {
    const known = new Set(messages.map((m) => m.id));
    const page = (Array.isArray(f.history) ? f.history : []).map(normalize).filter((m) => m && !known.has(m.id));
    messages = page.concat(messages);
    page.forEach((m) => handOver(m, true));
    olderCursor = cursorOf(f);
    renderAll(true);
  }

  // Replace what is shown with the server's history (welcome, or a history frame after a link).
  function applyHistory(history) {
    const before = new Set(messages.map((m) => m.id));
    messages = (Array.isArray(history) ? history : []).map(normalize).filter(Boolean);
    messages.forEach((m) => handOver(m, true));
    const known = new Set(messages.map((m) => m.id));
    // A message whose echo was lost with the old connection is already in the history: done.
    outbox = outbox.filter((o) => !known.has(o.id));
    saveOutbox();
    // Replies that arrived while we were disconnected count as unread.
    if (everOnline && !isOpen) {
      unread += messages.filter((m) => m.role !== "customer" && !before.has(m.id)).length;
      updateBadge();
    }
  }

  function onWelcome(f) {
    if (typeof f.token === "string" && f.token) {
      token = f.token;
      storageSet("localStorage", TOKEN_KEY, token);
    }
    if (f.identified === true && EXTERNAL_ID) storageSet("localStorage", IDENTITY_KEY, EXTERNAL_ID);
    applyHistory(f.history);
    olderCursor = cursorOf(f);
    labels = f.labels && typeof f.labels === "object" ? f.labels : {};
    channels = (Array.isArray(f.continue_in) ? f.continue_in : []).filter((c) =>
      c && typeof c.channel === "string" && typeof c.label === "string").map((c) =>
      ({ channel: c.channel, label: c.label, icon: typeof c.icon === "string" ? c.icon : "" }));
    renderChannels();
    ready = true;
    everOnline = true;
    attempt = 0;
    clearInterval(pingTimer);
    pingTimer = setInterval(probe, PING_EVERY);
    setStatus("online");
    renderAll();
    outbox.forEach(transmit); // same ids as before: the server dedupes
  }

  function onHistory(f) {
    applyHistory(f.history);
    olderCursor = cursorOf(f);
    renderAll();
  }

  // ---------------------------------------------------------------- continuing in a messenger
  // A blank tab is opened on the click itself (a tab opened later, when the link arrives, would be
  // taken for a pop-up and blocked), and sent to the link once it comes; without a tab, the link is shown.

  function askLink(channel) {
    const id = newId();
    let win = null;
    try { win = window.open("", "_blank"); } catch (_) { win = null; }
    if (win) { try { win.opener = null; } catch (_) { /* cannot reach back to this page anyway */ } }
    pendingLinks[id] = { channel: channel, win: win };
    start();
    if (!ready || !frame({ type: "link", id: id, channel: channel })) failLink(id, T.linkOffline);
  }

  function failLink(id, text) {
    const pending = pendingLinks[id];
    if (!pending) return;
    delete pendingLinks[id];
    if (pending.win) { try { pending.win.close(); } catch (_) { /* already gone */ } }
    showNotice(text.replace("{channel}", labelOf(pending.channel)));
  }

  function onLink(f) {
    const id = f.id == null ? "" : String(f.id);
    const pending = pendingLinks[id];
    if (!pending) return;
    delete pendingLinks[id];
    let url = null;
    try { url = new URL(String(f.url)); } catch (_) { url = null; }
    if (!url || url.protocol !== "https:") { // never a javascript: or other scheme from the wire
      if (pending.win) { try { pending.win.close(); } catch (_) { /* gone */ } }
      showNotice(T.linkUnavailable.replace("{channel}", labelOf(pending.channel)));
      return;
    }
    if (pending.win && !pending.win.closed) {
      try { pending.win.location.href = url.href; return; } catch (_) { /* fall back to the link */ }
    }
    showLink(pending.channel, url.href, Number(f.expires_in) > 0 ? Number(f.expires_in) : 600);
  }

  function showLink(channel, href, seconds) {
    linkBox.textContent = "";
    const a = el("a", { href: href, target: "_blank", rel: "noopener noreferrer",
      "data-channel": channel, text: T.openLink.replace("{channel}", labelOf(channel)) });
    a.addEventListener("click", () => { linkBox.hidden = true; });
    linkBox.appendChild(a);
    linkBox.hidden = false;
    clearTimeout(linkTimer);
    linkTimer = setTimeout(() => { linkBox.hidden = true; }, seconds * 1000); // the token expires
  }

  function onMessage(m) {
    if (!m) return;
    if (m.role === "customer") takeFromOutbox(m.id); // the echo is the acknowledgement
    // A reply shown already (the outbox resent it after a crash, or two workers relayed it): once on screen.
    else if (messages.some((x) => x.id === m.id)) return;
    const stick = nearBottom() || m.role === "customer";
    const i = messages.findIndex((x) => x.id === m.id);
    if (i >= 0) messages[i] = m; else messages.push(m);
    placeConfirmed(renderMessage(m), m.id);
    handOver(m, false);
    if (m.role !== "customer" && !isOpen) { unread++; updateBadge(); }
    renderButtons();
    scrollDown(stick);
  }

  function onAck(f) {
    const item = takeFromOutbox(String(f.id));
    if (item) confirmLocal(item);
  }

  // Acknowledged without an echo (duplicate): keep our own copy as the confirmed message.
  function confirmLocal(item) {
    const m = localMsg(item);
    m.buttons = [];
    if (!messages.some((x) => x.id === m.id)) messages.push(m);
    placeConfirmed(renderMessage(m), m.id);
    renderButtons();
  }

  function onError(f) {
    const text = typeof f.message === "string" && f.message ? f.message : String(f.code || "error");
    if (f.code === "bad_token") {
      // The server follows with a fresh welcome; forget the rejected token right away
      // so a reconnect in between does not present it again.
      token = null;
      storageSet("localStorage", TOKEN_KEY, null);
      return;
    }
    if (f.code === "unavailable") {
      // The server cannot store messages now (its database or Redis is down): the message stays in
      // the outbox, the widget shows "reconnecting…" and resends it once a new connection is welcomed.
      if (ws) lost(ws);
      return;
    }
    if (f.id != null && pendingLinks[String(f.id)]) {
      failLink(String(f.id), f.code === "rate_limited" ? T.linkRateLimited : T.linkUnavailable);
      return;
    }
    const item = f.id != null ? outbox.find((o) => o.id === String(f.id)) : null;
    if (!item) { showNotice(text); return; }
    if (f.code === "internal" && (item.retries = (item.retries || 0) + 1) <= INTERNAL_RETRIES) {
      // Whether or not the server managed to store it, resending the same id is safe:
      // a stored message is answered with an ack (duplicate), a lost one gets processed.
      setTimeout(() => { if (outbox.indexOf(item) >= 0) transmit(item); }, 1000 * Math.pow(2, item.retries));
      return;
    }
    takeFromOutbox(item.id);
    failed.push(Object.assign({}, item, { error: text }));
    if (failed.length > 20) failed.shift();
    const old = findNode(item.id);
    const node = renderMessage(localMsg(item), "failed", text);
    if (old) old.replaceWith(node); else list.appendChild(node);
    renderButtons();
  }

  function handleFrame(raw) {
    let f;
    try { f = JSON.parse(raw); } catch (_) { return; }
    if (!f || typeof f !== "object") return;
    if (f.type === "welcome") onWelcome(f);
    else if (f.type === "message") onMessage(normalize(f));
    else if (f.type === "ack") onAck(f);
    else if (f.type === "error") onError(f);
    else if (f.type === "history") onHistory(f);
    else if (f.type === "link") onLink(f);
    else if (f.type === "older") onOlder(f);
    // Unknown frame types are ignored so the server can add new ones.
  }

  // ---------------------------------------------------------------- connection

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    if (ws && (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN)) return;
    ready = false;
    setStatus(everOnline || attempt > 0 ? "offline" : "connecting");
    let sock;
    try { sock = new WebSocket(WS_URL); } catch (_) { scheduleReconnect(); return; }
    ws = sock;
    sock.onopen = () => {
      if (sock !== ws) return;
      const hello = { type: "hello", token: token || null, lang: lang };
      if (EXTERNAL_ID && SIGNATURE) { hello.external_id = EXTERNAL_ID; hello.signature = SIGNATURE; }
      frame(hello);
    };
    sock.onmessage = (ev) => {
      if (sock !== ws) return;
      clearTimeout(pongTimer); // any frame proves the connection is alive
      pongTimer = null;
      handleFrame(ev.data);
    };
    sock.onclose = () => lost(sock);
    // onerror is always followed by onclose; nothing to do there.
  }

  // Forget a socket and schedule a reconnect. Also used for sockets that stopped answering:
  // close() on a dead TCP connection may take minutes to fire onclose, so do not wait for it.
  function lost(sock) {
    if (sock !== ws) return;
    ws = null;
    ready = false;
    clearInterval(pingTimer);
    clearTimeout(pongTimer);
    pingTimer = pongTimer = null;
    try { sock.close(); } catch (_) { /* already closed */ }
    Object.keys(pendingLinks).forEach((id) => failLink(id, T.linkOffline)); // their answers went with it
    setStatus("offline");
    scheduleReconnect();
  }

  function probe() {
    const sock = ws;
    if (!ready || pongTimer || !frame({ type: "ping" })) return;
    pongTimer = setTimeout(() => lost(sock), PONG_TIMEOUT);
  }

  function scheduleReconnect() {
    if (retryTimer) return;
    const base = Math.min(BACKOFF_MAX, BACKOFF_START * Math.pow(BACKOFF_FACTOR, Math.min(attempt, 20)));
    const delay = Math.min(BACKOFF_MAX, base * (0.8 + Math.random() * 0.4)); // ±20% jitter
    attempt++;
    retryTimer = setTimeout(connect, delay);
  }

  // Back online / tab visible again: do not wait for the backoff timer, and check
  // that a socket which looks open still works.
  function reconnectNow() {
    if (!started || document.visibilityState === "hidden") return;
    if (!ws) connect();
    else probe();
  }

  function start() {
    if (started) return;
    started = true;
    connect();
  }

  // ---------------------------------------------------------------- user actions

  function send(text, payload) {
    text = String(text == null ? "" : text).trim();
    if (!text) return false;
    const n = Array.from(text).length; // code points, like the server counts
    if (n > MAX_TEXT) { showNotice(T.tooLong.replace("{n}", String(n))); return false; }
    const item = { id: newId(), text: text, ts: new Date().toISOString() };
    if (payload != null) item.payload = payload;
    outbox.push(item);
    saveOutbox();
    list.appendChild(renderMessage(localMsg(item), "pending"));
    renderButtons();
    scrollDown(true);
    start();
    transmit(item);
    return true;
  }

  function open() {
    if (isOpen) return;
    isOpen = true;
    panel.hidden = false;
    root.classList.add("sl-open");
    launcher.setAttribute("aria-expanded", "true");
    unread = 0;
    updateBadge();
    start();
    scrollDown(true);
    // On touch screens focusing would pop up the keyboard over a full-screen panel.
    if (!window.matchMedia || !matchMedia("(pointer: coarse)").matches) input.focus({ preventScroll: true });
  }

  function close() {
    if (!isOpen) return;
    const hadFocus = shadow.activeElement && panel.contains(shadow.activeElement);
    isOpen = false;
    panel.hidden = true;
    root.classList.remove("sl-open");
    launcher.setAttribute("aria-expanded", "false");
    updateBadge();
    if (hadFocus) launcher.focus();
  }

  function autosize() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight + 2, 120) + "px";
  }

  function submit() {
    const text = input.value;
    if (!text.trim()) return;
    if (send(text)) { input.value = ""; autosize(); }
  }

  launcher.addEventListener("click", () => (isOpen ? close() : open()));
  closeBtn.addEventListener("click", close);
  form.addEventListener("submit", (e) => { e.preventDefault(); submit(); input.focus(); });
  input.addEventListener("keydown", (e) => {
    // Enter sends, Shift+Enter inserts a newline; never send in the middle of IME composition.
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      submit();
    }
  });
  input.addEventListener("input", autosize);
  panel.addEventListener("keydown", (e) => { if (e.key === "Escape") close(); });
  window.addEventListener("online", reconnectNow);
  document.addEventListener("visibilitychange", reconnectNow);

  // ---------------------------------------------------------------- start

  window.Seamline = { open: open, close: close, send: (text) => send(text) };

  function mount() {
    document.body.appendChild(host);
    renderAll(); // shows a pending outbox restored from sessionStorage right away
    // Connect lazily: a visitor who never opens the chat costs the server nothing,
    // unless there is a conversation (token) or unsent messages to resume.
    if (token || outbox.length) start();
    if (data.open === "true") open();
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
