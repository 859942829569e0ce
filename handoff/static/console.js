/* Seamline agent console. Vanilla JS, no build step; talks to /api/v1 and the /api/v1/inbox WebSocket.
 * Safety: everything that comes from customers or the API reaches the DOM through textContent and
 * createElement only (never innerHTML), and the page's CSP allows scripts from 'self' only. */
(function () {
  "use strict";

  var CSRF_KEY = "seamline.console.csrf";
  var LANG_KEY = "seamline.console.lang";

  // Every text of the console's own, per language; t(key, {name: value}) fills in {name}.
  // What customers, the API and config/canned.yml say is shown as it comes.
  var TEXTS = {
    en: {
      console: "Seamline console", language: "Language", email: "E-mail", password: "Password", log_in: "Log in",
      log_out: "Log out", could_not_log_in: "Could not log in", session_ended: "Your session has ended: log in again.",
      unread_title: "New customer messages in your conversations", notify_on: "Turn on notifications",
      notify_title: "Tell me about new conversations and messages while I look elsewhere",
      live: "live", offline: "offline", your_status: "Your status",
      status_online: "Online", status_away: "Away", status_offline: "Offline",
      agent_online: "online", agent_away: "away", agent_offline: "offline",
      queues: "Queues", queue: "Queue", th_waiting: "Waiting", th_online: "Online",
      waiting_title: "waiting + transferred", online_title: "agents online",
      open: "open", closed: "closed", opens: "opens {at}",
      waiting: "Waiting", mine: "Mine", nobody_waiting: "Nobody is waiting.", no_conversations: "No conversations.",
      seconds: "{s} s", minutes: "{m} min", hours: "{h} h {m} min",
      pick: "Pick a conversation on the left.", claim: "Claim", release: "Return to bot", resolve: "Resolve",
      state_bot: "bot", state_queued: "queued", state_with_agent: "with agent", state_transferred: "transferred",
      state_resolved: "resolved", state_abandoned: "abandoned",
      canned: "Canned responses", canned_pick: "Canned responses…", send: "Send",
      reply_placeholder: "Reply to the customer (Enter sends, Shift+Enter: new line)",
      claim_to_reply: "Claim the conversation to reply", bot_answers: "The bot answers this conversation",
      customer: "Customer", bot: "Bot", agent: "Agent", note_by: "agent", understood: "Understood: ", nothing: "nothing",
      customer_heading: "Customer", channels: "Channels", slots: "Slots", escalation: "Escalation",
      unreachable: " (unreachable)",
      action_failed: "Action failed: {problem}", image: "Image",
      Name: "Name", Language: "Language", "Last channel": "Last channel", Reason: "Reason", Queue: "Queue",
      "Routed by": "Routed by", "default queue": "default queue", rule: "rule {n}", Intent: "Intent", Channel: "Channel",
      "After hours": "After hours", yes: "yes", no: "no", At: "At",
      transfer_heading: "Transfer", transfer_to: "Transfer to", transfer_pick: "Transfer to…", agents: "Agents",
      transfer_note: "Note for the next person (optional)", transfer: "Transfer",
      choose_target: "Choose a queue or an agent to transfer to.",
      notes: "Private notes", no_notes: "No notes.", note_placeholder: "Only agents see notes", note_add: "Add note",
      notify_message: "New message on {channel}", notify_yours: "A conversation is yours now",
      notify_waiting: "A customer is waiting in {queue}", notify_waiting_any: "A customer is waiting in a queue",
      team: "Team", set_offline: "Set offline", load_title: "conversations held / capacity",
      reason_asked_for_human: "the customer asked for a person", reason_vip: "VIP customer ({attribute})",
      reason_always_to_people: "intent {intent} always goes to people", reason_keyword: "keyword “{keyword}”",
      reason_fallbacks: "the bot did not understand {count} messages in a row",
    },
    ru: {
      console: "Консоль Seamline", language: "Язык", email: "Эл. почта", password: "Пароль", log_in: "Войти",
      log_out: "Выйти", could_not_log_in: "Не удалось войти", session_ended: "Сеанс завершён: войдите снова.",
      unread_title: "Новые сообщения клиентов в ваших диалогах", notify_on: "Включить уведомления",
      notify_title: "Сообщать о новых диалогах и сообщениях, пока я в другом окне",
      live: "на связи", offline: "нет связи", your_status: "Ваш статус",
      status_online: "В сети", status_away: "Нет на месте", status_offline: "Не в сети",
      agent_online: "в сети", agent_away: "нет на месте", agent_offline: "не в сети",
      queues: "Очереди", queue: "Очередь", th_waiting: "Ждут", th_online: "В сети",
      waiting_title: "ожидают + переданы", online_title: "операторов в сети",
      open: "открыта", closed: "закрыта", opens: "откроется {at}",
      waiting: "Ожидают", mine: "Мои", nobody_waiting: "Никто не ждёт.", no_conversations: "Диалогов нет.",
      seconds: "{s} с", minutes: "{m} мин", hours: "{h} ч {m} мин",
      pick: "Выберите диалог слева.", claim: "Взять", release: "Вернуть боту", resolve: "Решено",
      state_bot: "у бота", state_queued: "в очереди", state_with_agent: "у оператора", state_transferred: "передан",
      state_resolved: "решён", state_abandoned: "клиент ушёл",
      canned: "Шаблоны ответов", canned_pick: "Шаблоны ответов…", send: "Отправить",
      reply_placeholder: "Ответ клиенту (Enter — отправить, Shift+Enter — новая строка)",
      claim_to_reply: "Возьмите диалог, чтобы ответить", bot_answers: "В этом диалоге отвечает бот",
      customer: "Клиент", bot: "Бот", agent: "Оператор", note_by: "оператор", understood: "Распознано: ",
      nothing: "ничего",
      customer_heading: "Клиент", channels: "Каналы", slots: "Собранные данные", escalation: "Передача оператору",
      unreachable: " (недоступен)",
      action_failed: "Не выполнено действие: {problem}", image: "Изображение",
      Name: "Имя", Language: "Язык", "Last channel": "Последний канал", Reason: "Причина", Queue: "Очередь",
      "Routed by": "Маршрутизация", "default queue": "очередь по умолчанию", rule: "правило {n}", Intent: "Намерение", Channel: "Канал",
      "After hours": "В нерабочее время", yes: "да", no: "нет", At: "Когда",
      transfer_heading: "Передать", transfer_to: "Кому передать", transfer_pick: "Кому передать…", agents: "Операторы",
      transfer_note: "Комментарий для коллеги (необязательно)", transfer: "Передать",
      choose_target: "Выберите очередь или оператора, которому передать диалог.",
      notes: "Заметки", no_notes: "Заметок нет.", note_placeholder: "Заметки видят только операторы",
      note_add: "Добавить заметку",
      notify_message: "Новое сообщение ({channel})", notify_yours: "Вам передан диалог",
      notify_waiting: "Клиент ждёт в очереди {queue}", notify_waiting_any: "Клиент ждёт в очереди",
      team: "Команда", set_offline: "Перевести в «не в сети»", load_title: "диалогов сейчас / максимум",
      reason_asked_for_human: "клиент попросил оператора", reason_vip: "VIP-клиент ({attribute})",
      reason_always_to_people: "намерение {intent} всегда передаётся операторам",
      reason_keyword: "ключевое слово «{keyword}»",
      reason_fallbacks: "бот не понял сообщений подряд: {count}",
    },
  };

  function speaks(language) { return language === "en" || language === "ru"; }

  // ?lang=ru|en, else the agent's choice saved here, else the browser's language.
  function pickLanguage() {
    var asked = new URLSearchParams(location.search).get("lang");
    if (speaks(asked)) return asked;
    try { asked = localStorage.getItem(LANG_KEY); } catch (e) { asked = null; }
    if (speaks(asked)) return asked;
    return /^ru/i.test(navigator.language || "") ? "ru" : "en";
  }

  var lang = pickLanguage();

  function t(key, values) {
    var text = TEXTS[lang][key];
    if (text === undefined) text = TEXTS.en[key] !== undefined ? TEXTS.en[key] : key;
    return text.replace(/\{(\w+)\}/g, function (all, name) {
      return values && values[name] !== undefined && values[name] !== null ? String(values[name]) : all;
    });
  }

  // A channel, a state or an agent's status by its name ("channel_" + "web"), or the name if none.
  function named(prefix, name) { return TEXTS.en[prefix + name] !== undefined ? t(prefix + name) : name; }

  // Channels are plug-ins: their labels come from the server (GET /api/v1/channels), per language.
  var channelLabels = {};

  function channelName(channel) {
    var labels = channelLabels[channel];
    return labels ? (labels[lang] || labels.en || channel) : channel;
  }

  // Why a conversation went to people: in the console's language when the server gave a known code
  // (config/routing.yml triggers), else the server's text (e.g. a custom action's reason).
  function reasonText(e) {
    var key = "reason_" + (e && e.reason_code);
    return e && e.reason_code && TEXTS.en[key] !== undefined ? t(key, e.reason_params || {}) : (e && e.reason);
  }

  var state = {
    csrf: null, me: null, ws: null, wsRetry: 0, wsTimer: null, refreshTimer: null,
    openId: null, open: null, shownIds: {}, live: [], loads: 0, rendered: 0, mineIds: {}, owners: [], ownerSeq: 0, listSeq: 0, listShown: 0, toldMine: {}, reasons: {}, unread: {}, agents: [], queues: [], canned: [],
  };

  function q(testid, root) { return (root || document).querySelector('[data-testid="' + testid + '"]'); }

  /* el("div", {className: "x", testid: "y", text: "z"}, child, ...) */
  function el(tag, props) {
    var node = document.createElement(tag);
    props = props || {};
    Object.keys(props).forEach(function (key) {
      var value = props[key];
      if (value === undefined || value === null) return;
      if (key === "text") node.textContent = String(value);
      else if (key === "className") node.className = value;
      else if (key === "testid") node.setAttribute("data-testid", value);
      else if (key.indexOf("data-") === 0 || key === "title" || key === "value" || key === "type") node.setAttribute(key, value);
      else node[key] = value;
    });
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  // The page's static texts are marked data-i18n (the text), data-i18n-placeholder, -title, -aria-label.
  function applyTexts() {
    document.documentElement.lang = lang;
    [["data-i18n", null], ["data-i18n-placeholder", "placeholder"], ["data-i18n-title", "title"],
     ["data-i18n-aria-label", "aria-label"]].forEach(function (kind) {
      Array.prototype.forEach.call(document.querySelectorAll("[" + kind[0] + "]"), function (node) {
        var text = t(node.getAttribute(kind[0]));
        if (kind[1]) node.setAttribute(kind[1], text); else node.textContent = text;
      });
    });
    q("language").value = lang;
    q("login-language").value = lang;
  }

  function setLanguage(chosen) {
    if (!speaks(chosen) || chosen === lang) return;
    lang = chosen;
    try { localStorage.setItem(LANG_KEY, lang); } catch (e) { /* this page only */ }
    var params = new URLSearchParams(location.search);
    if (params.has("lang")) {  // a ?lang= left in the address would undo the choice on a reload
      params.set("lang", lang);
      history.replaceState(null, "", location.pathname + "?" + params.toString() + location.hash);
    }
    applyTexts();
    setLive(q("live").getAttribute("data-state") === "online");
    renderUnread();
    refreshLists();
    if (state.me && state.openId) loadConversation(state.openId);
  }

  ["language", "login-language"].forEach(function (testid) {
    q(testid).addEventListener("change", function () { setLanguage(q(testid).value); });
  });

  function showError(message) {
    var box = q("error");
    box.textContent = message || "";
    box.hidden = !message;
  }

  // -- the API ----------------------------------------------------------------------------------

  function ApiError(status, message) { this.status = status; this.message = message; }

  function api(method, path, body) {
    var options = { method: method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET") {
      options.headers["Content-Type"] = "application/json";
      options.headers["X-CSRF-Token"] = state.csrf || "";
      options.body = JSON.stringify(body || {});
    }
    return fetch(path, options).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (data) {
        if (response.ok) return data;
        var message = (data && data.error) || ("HTTP " + response.status);
        if (response.status === 401 && path !== "/api/v1/auth/login") loggedOut(t("session_ended"));
        throw new ApiError(response.status, message);
      });
    });
  }

  function act(promise) {
    showError("");
    return promise.catch(function (error) {
      if (error && error.status !== 401) showError(error.message || String(error));
      throw error;
    });
  }

  // -- login / logout ---------------------------------------------------------------------------

  function loggedOut(message) {
    state.me = null;
    state.csrf = null;
    try { sessionStorage.removeItem(CSRF_KEY); } catch (e) { /* storage off */ }
    closeSocket();
    q("app").hidden = true;
    q("login").hidden = false;
    q("login-error").textContent = message || "";
  }

  function loggedIn(agent) {
    state.me = agent;
    q("login").hidden = true;
    q("app").hidden = false;
    q("me-name").textContent = agent.name + " (" + agent.email + ")";
    q("status").value = agent.status || "online";
    renderNotifyButton();
    openSocket();
    loadAgents();
    loadCanned();
    refreshLists();
  }

  q("login-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var email = q("login-email").value, password = q("login-password").value;
    q("login-error").textContent = "";
    q("login-submit").disabled = true;
    api("POST", "/api/v1/auth/login", { email: email, password: password }).then(function (data) {
      state.csrf = data.csrf;
      try { sessionStorage.setItem(CSRF_KEY, data.csrf); } catch (e) { /* kept in memory */ }
      q("login-password").value = "";
      return api("POST", "/api/v1/me/status", { status: "online" }).then(function () {
        loggedIn(Object.assign({}, data.agent, { status: "online" }));
      });
    }).catch(function (error) {
      q("login-error").textContent = (error && error.message) || t("could_not_log_in");
    }).then(function () { q("login-submit").disabled = false; });
  });

  q("logout").addEventListener("click", function () {
    act(api("POST", "/api/v1/auth/logout")).catch(function () {}).then(function () { loggedOut(""); });
  });

  q("status").addEventListener("change", function () {
    var status = q("status").value;
    act(api("POST", "/api/v1/me/status", { status: status })).then(function () {
      state.me.status = status;
      refreshLists();
    }).catch(function () {});
  });

  // -- the live inbox ---------------------------------------------------------------------------

  function setLive(on) {
    var live = q("live");
    live.setAttribute("data-state", on ? "online" : "offline");
    live.textContent = t(on ? "live" : "offline");
  }

  function closeSocket() {
    clearTimeout(state.wsTimer);
    if (state.ws) { state.ws.onclose = null; state.ws.close(); state.ws = null; }
    setLive(false);
  }

  function openSocket() {
    closeSocket();
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/v1/inbox";
    var ws = new WebSocket(url);
    state.ws = ws;
    ws.onmessage = function (event) {
      var data;
      try { data = JSON.parse(event.data); } catch (e) { return; }
      if (data.type === "hello") { setLive(true); state.wsRetry = 0; watch(); refreshLists(); if (state.openId) loadConversation(state.openId); return; }
      if (data.type === "error") { ws.onclose = null; loggedOut(t("session_ended")); return; }
      onEvent(data);
    };
    ws.onclose = function () {
      setLive(false);
      if (!state.me) return;
      var delay = Math.min(10000, 500 * Math.pow(2, state.wsRetry++));
      state.wsTimer = setTimeout(openSocket, delay);
    };
  }

  function eventConversation(data) {
    if (data.conversation_id) return data.conversation_id;
    if (data.conversation) return data.conversation.id;
    return null;
  }

  // -- desktop notifications (while the agent looks at another tab or conversation) ------------------

  function notificationsOn() { return "Notification" in window && Notification.permission === "granted"; }

  function renderNotifyButton() {
    q("notify").hidden = !("Notification" in window) || Notification.permission !== "default";
  }

  q("notify").addEventListener("click", function () {
    Notification.requestPermission().then(renderNotifyButton, renderNotifyButton);
  });

  function notify(title, body, id) {
    if (!notificationsOn() || (id === state.openId && !document.hidden)) return;
    try {  // the browser shows title and body as plain text
      var note = new Notification(title, { body: (body || "").slice(0, 200), tag: "seamline-" + id });
      note.onclick = function () { window.focus(); openConversation(id); note.close(); };
    } catch (e) { /* a browser that only notifies from a service worker: the badge and title still count */ }
  }

  function notifyAbout(data, id) {
    var c = data.conversation;
    if (c && c.escalation) state.reasons[id] = reasonText(c.escalation);  // the assignment event does not repeat it
    if (data.type === "message" && data.message && data.message.role === "customer" && state.mineIds[id]) {
      notify(t("notify_message", { channel: channelName(data.message.channel) }), data.message.text, id);
    } else if (data.type === "conversation" && c && c.state === "queued" && c.escalation && state.me
               && state.me.status !== "offline" && (!(state.me.queues || []).length || state.me.queues.indexOf(c.queue) >= 0)) {
      notify(c.queue ? t("notify_waiting", { queue: c.queue }) : t("notify_waiting_any"), reasonText(c.escalation), id);
    }
  }

  // Which conversations are mine: the lists say so when fetched, and the ordered event stream says so
  // since; a list fetched before an event is corrected by it (see refreshLists).
  function noteOwner(data, id) {
    var c = data.conversation;
    if (data.type !== "conversation" || !c || !state.me) return;
    var mine = (c.state === "with_agent" || c.state === "transferred") && c.agent_id === state.me.id;
    if (mine && !state.toldMine[id]) {  // once per hand-over, whatever the lists say meanwhile
      notify(t("notify_yours"), [c.queue, state.reasons[id]].filter(Boolean).join(": "), id);
    }
    state.toldMine[id] = mine;
    state.owners.push({ seq: ++state.ownerSeq, id: id, mine: mine });
    if (state.owners.length > 500) state.owners.splice(0, 250);
    if (mine) state.mineIds[id] = true; else delete state.mineIds[id];
  }

  function onEvent(data) {
    scheduleRefresh();
    if (data.type === "agent" && data.agent && state.me && data.agent.id === state.me.id) {
      state.me.status = data.agent.status;  // e.g. an admin set me offline
      q("status").value = data.agent.status;
    }
    var id = eventConversation(data);
    if (id) notifyAbout(data, id);
    if (id) noteOwner(data, id);
    if (data.type === "message" && data.message && data.message.role === "customer" && id && state.mineIds[id]
        && (id !== state.openId || document.hidden)) {
      state.unread[id] = (state.unread[id] || 0) + 1;
      renderUnread();
    }
    if (!id || id !== state.openId) return;
    if (data.type === "message" && data.message) {
      state.live.push(data.message);  // kept until a snapshot fetched after it has been rendered
      appendMessage(data.message);
      var known = ((state.open && state.open.customer && state.open.customer.identities) || [])
        .some(function (i) { return i.channel === data.message.channel; });
      if (!known) loadConversation(id);  // a newly linked channel: refresh the profile too
    } else {
      loadConversation(id);
    }
  }

  function scheduleRefresh() {
    clearTimeout(state.refreshTimer);
    state.refreshTimer = setTimeout(refreshLists, 150);
  }

  function renderUnread() {
    var total = 0;
    Object.keys(state.unread).forEach(function (id) { total += state.unread[id]; });
    var badge = q("unread");
    badge.textContent = String(total);
    badge.hidden = total === 0;
    document.title = (total ? "(" + total + ") " : "") + t("console");
  }

  // -- the lists --------------------------------------------------------------------------------

  function since(iso) {
    if (!iso) return "";
    var seconds = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
    if (seconds < 60) return t("seconds", { s: seconds });
    var minutes = Math.floor(seconds / 60);
    if (minutes < 60) return t("minutes", { m: minutes });
    return t("hours", { h: Math.floor(minutes / 60), m: minutes % 60 });
  }

  function refreshLists() {
    if (!state.me) return Promise.resolve();
    var since = state.ownerSeq, seq = ++state.listSeq;
    return Promise.all([
      api("GET", "/api/v1/queues"),
      api("GET", "/api/v1/conversations?state=queued"),
      api("GET", "/api/v1/conversations?state=transferred"),
      api("GET", "/api/v1/conversations?state=with_agent&mine=1"),
      api("GET", "/api/v1/agents"),
    ]).then(function (results) {
      if (seq < state.listShown) return;  // an older refresh answered late: a newer one is shown already
      state.listShown = seq;
      state.agents = results[4].agents;
      renderTeam();
      state.queues = results[0].queues;
      renderQueues(results[0].queues);
      var transferred = results[2].conversations.filter(function (c) { return !c.agent_id || c.agent_id === state.me.id; });
      renderList(q("waiting"), results[1].conversations.concat(transferred), true);
      q("waiting-count").textContent = String(results[1].conversations.length + transferred.length);
      var mine = results[3].conversations;
      state.mineIds = {};
      mine.forEach(function (c) { state.mineIds[c.id] = true; });
      state.owners.forEach(function (o) {  // events newer than this fetch win
        if (o.seq <= since) return;
        if (o.mine) state.mineIds[o.id] = true; else delete state.mineIds[o.id];
      });
      Object.keys(state.unread).forEach(function (id) { if (!state.mineIds[id]) delete state.unread[id]; });
      renderUnread();
      renderList(q("mine"), mine, false);
      q("mine-count").textContent = String(mine.length);
      renderTransferTargets();
    }).catch(function (error) { if (error && error.status !== 401) showError(error.message || String(error)); });
  }

  function renderQueues(queues) {
    var body = q("queues");
    clear(body);
    queues.forEach(function (queue) {
      body.appendChild(el("tr", { testid: "queue", "data-queue": queue.name },
        el("td", { text: queue.name }),
        el("td", { text: String(queue.waiting + (queue.transferred || 0)), title: t("waiting_title") }),
        el("td", { text: String(queue.agents_online), title: t("online_title") }),
        el("td", { className: queue.open ? "open" : "closed", text: t(queue.open ? "open" : "closed"),
                   title: queue.open || !queue.opens_at ? "" : t("opens", { at: new Date(queue.opens_at).toLocaleString() }) })));
    });
  }

  function renderList(list, conversations, waiting) {
    clear(list);
    if (!conversations.length) {
      list.appendChild(el("li", { className: "none", text: t(waiting ? "nobody_waiting" : "no_conversations") }));
      return;
    }
    conversations.forEach(function (c) {
      var customer = c.customer || {};
      var reason = c.escalation && (c.escalation.intent || c.escalation.reason);
      var unread = state.unread[c.id];
      var button = el("button", { type: "button", testid: "conversation-item", "data-id": c.id,
                                  className: c.id === state.openId ? "current" : "" },
        el("span", { className: "who", text: customer.name || t("customer") }),
        waiting ? el("span", { className: "wait", testid: "waiting-time", "data-since": c.queued_at || "",
                               text: since(c.queued_at) })
                : (unread ? el("span", { className: "badge", testid: "item-unread", text: String(unread) }) : null),
        el("span", { className: "sub", text: [c.queue, c.state === "transferred" ? t("state_transferred") : null,
                                              channelName(customer.last_channel), reason]
          .filter(Boolean).join(" · ") }));
      button.addEventListener("click", function () { openConversation(c.id); });
      list.appendChild(el("li", {}, button));
    });
  }

  setInterval(function () {
    Array.prototype.forEach.call(document.querySelectorAll('[data-testid="waiting-time"]'), function (span) {
      span.textContent = since(span.getAttribute("data-since"));
    });
  }, 10000);

  // Who is on the team now: status and load; an admin can set someone offline (what they held goes
  // back to the queue at once), e.g. a colleague who left without logging out.
  function renderTeam() {
    var list = q("team");
    clear(list);
    state.agents.forEach(function (a) {
      var item = el("li", { testid: "team-member", "data-status": a.status, "data-email": a.email },
        el("span", { className: "dot dot-" + a.status, title: named("agent_", a.status) }),
        el("span", { className: "who", text: a.name }),
        el("span", { className: "muted", testid: "team-status", text: named("agent_", a.status) }),
        el("span", { className: "load", testid: "team-load", title: t("load_title"), text: a.load + "/" + a.capacity }));
      if (state.me && state.me.role === "admin" && a.id !== state.me.id && a.status !== "offline") {
        var button = el("button", { type: "button", className: "small", testid: "set-offline", text: t("set_offline") });
        button.addEventListener("click", function () {
          act(api("POST", "/api/v1/agents/" + encodeURIComponent(a.id) + "/status", { status: "offline" }))
            .then(refreshLists).catch(function () {});
        });
        item.appendChild(button);
      }
      list.appendChild(item);
    });
  }

  function loadAgents() {
    return api("GET", "/api/v1/agents").then(function (data) {
      state.agents = data.agents;
      renderTransferTargets();
    }).catch(function () {});
  }

  function renderTransferTargets() {
    var select = q("transfer-target");
    var previous = select.value;
    clear(select);
    select.appendChild(el("option", { value: "", text: t("transfer_pick") }));
    var queues = el("optgroup", { label: t("queues") });
    state.queues.forEach(function (queue) { queues.appendChild(el("option", { value: "queue:" + queue.name, text: queue.name })); });
    var agents = el("optgroup", { label: t("agents") });
    state.agents.forEach(function (agent) {
      if (state.me && agent.id === state.me.id) return;
      agents.appendChild(el("option", { value: "agent:" + agent.id, text: agent.name + " (" + named("agent_", agent.status) + ")" }));
    });
    select.appendChild(queues);
    select.appendChild(agents);
    select.value = previous;
  }

  // -- one conversation -------------------------------------------------------------------------

  function watch() {  // events of the open conversation reach this console whoever holds it
    if (state.ws && state.ws.readyState === 1) {
      state.ws.send(JSON.stringify({ type: "watch", conversation_id: state.openId || null }));
    }
  }

  function openConversation(id) {
    if (state.openId !== id) state.live = [];
    state.openId = id;
    watch();
    delete state.unread[id];
    renderUnread();
    Array.prototype.forEach.call(document.querySelectorAll('[data-testid="conversation-item"]'), function (b) {
      b.classList.toggle("current", b.getAttribute("data-id") === id);
    });
    return loadConversation(id);
  }

  // A snapshot may be older than a message the socket has already shown (it was fetched before that
  // message was stored): the messages received since the fetch began are put back after rendering,
  // and a snapshot older than one already rendered is dropped.
  function loadConversation(id) {
    var seq = ++state.loads;
    var mark = state.live.length;
    return api("GET", "/api/v1/conversations/" + encodeURIComponent(id)).then(function (conversation) {
      if (state.openId !== id || seq < state.rendered) return;
      state.rendered = seq;
      state.open = conversation;
      renderConversation(conversation);
      var newer = state.live.slice(mark);
      newer.forEach(function (m) { appendMessage(m); });
      if (seq === state.loads) state.live = newer;
    }).catch(function (error) { if (error && error.status !== 401) showError(error.message || String(error)); });
  }

  function renderConversation(c) {
    q("conversation-empty").hidden = true;
    q("conversation-body").hidden = false;
    q("details").hidden = false;
    q("conversation-body").setAttribute("data-id", c.id);
    var customer = c.customer || {};
    q("conversation-title").textContent = customer.name || t("customer");
    var stateBadge = q("conversation-state");
    stateBadge.setAttribute("data-state", c.state);
    stateBadge.textContent = named("state_", c.state) + (c.queue ? " · " + c.queue : "");
    renderButtons(c);

    var list = q("messages");
    clear(list);
    state.shownIds = {};
    timeline(c).forEach(function (item) {
      if (item.kind === "action_failed") appendSystem(item);
      else appendMessage(item, true);
    });
    list.scrollTop = list.scrollHeight;

    renderPairs(q("profile"), [
      pair("Name", customer.name), pair("Language", customer.language),
      pair("Last channel", channelName(customer.last_channel)),
    ].concat(Object.keys(customer.attributes || {}).map(function (k) { return [k, customer.attributes[k]]; })));
    var identities = q("identities");
    clear(identities);
    (customer.identities || []).forEach(function (i) {
      identities.appendChild(el("li", { testid: "identity" }, channelLabel(i.channel), " " + i.external_id,
        i.reachable ? null : el("span", { className: "muted", text: t("unreachable") })));
    });
    renderPairs(q("slots"), Object.keys(c.slots || {}).map(function (k) { return [k, c.slots[k]]; }));
    var e = c.escalation || {};
    renderPairs(q("escalation"), c.escalation ? [
      pair("Reason", reasonText(e)), pair("Queue", e.queue), pair("Routed by", routedBy(e.routed_by)),
      pair("Intent", e.intent ? e.intent + (e.confidence != null ? " (" + Math.round(e.confidence * 100) + "%)" : "") : null),
      pair("Channel", channelName(e.channel)), pair("After hours", t(e.after_hours ? "yes" : "no")),
      pair("At", e.at ? new Date(e.at).toLocaleString() : null),
    ] : []);
    var notes = q("notes");
    clear(notes);
    (c.notes || []).forEach(function (n) {
      notes.appendChild(el("li", { testid: "note" },
        el("span", { className: "by", text: (n.name || n.agent || t("note_by")) + (n.at ? " · " + new Date(n.at).toLocaleString() : "") }),
        el("span", { text: n.text })));
    });
    if (!(c.notes || []).length) notes.appendChild(el("li", { className: "muted", text: t("no_notes") }));
  }

  // [key, value, label]: the console's own labels are translated, data-key stays the English key;
  // slots and customer attributes are shown under their own names.
  function pair(key, value) { return [key, value, t(key)]; }

  function routedBy(why) {  // the router's "rule 2" or "default queue"
    var rule = /^rule (\d+)$/.exec(why || "");
    return rule ? t("rule", { n: rule[1] }) : (!why || why === "default queue" ? t("default queue") : why);
  }

  function renderPairs(dl, pairs) {
    clear(dl);
    var shown = pairs.filter(function (p) { return p[1] !== null && p[1] !== undefined && p[1] !== ""; });
    shown.forEach(function (p) {
      var value = typeof p[1] === "object" ? JSON.stringify(p[1]) : String(p[1]);
      dl.appendChild(el("dt", { text: p[2] || p[0] }));
      dl.appendChild(el("dd", { text: value, "data-key": p[0] }));
    });
    if (!shown.length) { dl.appendChild(el("dt", { className: "muted", text: "—" })); dl.appendChild(el("dd")); }
  }

  function renderButtons(c) {
    var mine = state.me && c.agent_id === state.me.id;
    var held = c.state === "with_agent" || c.state === "transferred";
    var withPeople = c.state === "queued" || held;
    q("claim").disabled = !(c.state === "queued" || (c.state === "transferred" && (!c.agent_id || mine)));
    q("claim").hidden = c.state === "with_agent" && mine;
    var canWrite = held && mine;
    q("reply-input").disabled = !canWrite;
    q("reply-send").disabled = !canWrite;
    q("canned").disabled = !canWrite;
    q("reply-input").placeholder = t(canWrite ? "reply_placeholder" : (withPeople ? "claim_to_reply" : "bot_answers"));
    q("release").disabled = !withPeople;
    q("resolve").disabled = !withPeople;
    q("transfer").disabled = !(held && mine);
  }

  function channelLabel(channel) {
    return el("span", { className: "chan chan-" + channel, testid: "channel", text: channelName(channel) || "?" });
  }

  // The messages with the bot's failed actions between them, in time order (both carry ISO UTC times).
  function timeline(c) {
    var failures = (c.events || []).filter(function (e) { return e && e.kind === "action_failed"; });
    var items = (c.messages || []).map(function (m) { return { at: m.ts || "", message: m }; })
      .concat(failures.map(function (e) { return { at: e.at || "", failure: e }; }));
    items.sort(function (a, b) { return a.at < b.at ? -1 : a.at > b.at ? 1 : 0; });  // stable: ties keep their order
    return items.map(function (i) { return i.message || i.failure; });
  }

  // A line of the timeline that is not a message: here, why a custom action of the bot failed.
  function appendSystem(e) {
    var data = e.data || {};
    var time = e.at ? new Date(e.at) : null;
    q("messages").appendChild(el("li", { className: "system", testid: "action-failed", "data-action": data.action || "" },
      el("span", { text: t("action_failed", { action: String(data.action || "?"), problem: String(data.problem || "?") }) }),
      time ? el("time", { text: " · " + time.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }),
                          title: time.toLocaleString(), dateTime: e.at }) : null));
  }

  // Only an absolute http(s) URL is shown as an image (never javascript: or data:).
  function imageUrl(value) {
    if (typeof value !== "string") return null;
    try {
      var u = new URL(value);
      return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
    } catch (e) { return null; }
  }

  function appendMessage(m, bulk) {
    if (state.shownIds[m.id]) return;
    state.shownIds[m.id] = true;
    var customerName = state.open && state.open.customer && state.open.customer.name;
    var who = m.role === "customer" ? (customerName || t("customer")) : m.role === "agent" ? (m.agent || t("agent")) : t("bot");
    var time = m.ts ? new Date(m.ts) : null;
    var item = el("li", { className: "msg " + m.role, testid: "message", "data-id": m.id, "data-role": m.role,
                          "data-channel": m.channel },
      el("div", { className: "meta" }, channelLabel(m.channel), el("span", { text: who }),
         time ? el("time", { text: time.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }),
                             title: time.toLocaleString(), dateTime: m.ts }) : null),
      imageUrl(m.image) ? el("img", { className: "image", testid: "message-image", src: imageUrl(m.image),
                                      alt: m.text || t("image"), loading: "lazy", referrerPolicy: "no-referrer" }) : null,
      el("div", { className: "text", testid: "message-text", text: m.text || "" }));
    if (m.role === "customer") {
      var nlu = el("div", { className: "nlu", testid: "message-nlu" }, t("understood"));
      nlu.appendChild(el("span", { className: "intent", testid: "message-intent", text: m.intent || t("nothing") }));
      if (m.confidence !== null && m.confidence !== undefined) {
        nlu.appendChild(el("span", { testid: "message-confidence", text: " " + Math.round(m.confidence * 100) + "%" }));
      }
      (m.entities || []).forEach(function (e) {
        nlu.appendChild(document.createTextNode(" · "));
        nlu.appendChild(el("span", { testid: "message-entity", text: (e.type || e.entity || "entity") + "=" + (e.value != null ? e.value : e.text) }));
      });
      item.appendChild(nlu);
    }
    var list = q("messages");
    var atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.appendChild(item);
    if (!bulk && atBottom) list.scrollTop = list.scrollHeight;
  }

  // -- actions ----------------------------------------------------------------------------------

  function action(name, body) {
    var id = state.openId;
    if (!id) return Promise.resolve();
    return act(api("POST", "/api/v1/conversations/" + encodeURIComponent(id) + "/" + name, body)).then(function (result) {
      refreshLists();
      if (state.openId === id) loadConversation(id);
      return result;
    });
  }

  q("claim").addEventListener("click", function () { action("claim").catch(function () {}); });
  q("release").addEventListener("click", function () { action("release").catch(function () {}); });
  q("resolve").addEventListener("click", function () { action("resolve").catch(function () {}); });

  function sendReply() {
    var input = q("reply-input");
    var text = input.value.trim();
    if (!text || input.disabled) return;
    q("reply-send").disabled = true;
    action("messages", { text: text }).then(function (message) {
      input.value = "";
      if (message && message.id) appendMessage(message);
    }).catch(function () {}).then(function () { if (state.open) renderButtons(state.open); });
  }

  q("reply-form").addEventListener("submit", function (event) { event.preventDefault(); sendReply(); });
  q("reply-input").addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); sendReply(); }
  });

  function loadCanned() {  // config/canned.yml, one text per language
    return api("GET", "/api/v1/canned").then(function (data) {
      state.canned = data.canned || [];
      var select = q("canned");
      while (select.options.length > 1) select.remove(1);
      state.canned.forEach(function (c, i) { select.appendChild(el("option", { value: String(i), text: c.title })); });
    }).catch(function () {});
  }

  q("canned").addEventListener("change", function () {
    var chosen = state.canned[Number(q("canned").value)];
    q("canned").value = "";
    if (!chosen) return;
    var c = state.open || {};
    var language = c.language || (c.customer && c.customer.language) || "en";  // the conversation's, now
    var template = chosen.texts[language] || chosen.texts.en || chosen.texts[Object.keys(chosen.texts)[0]];
    var values = Object.assign({}, c.slots || {}, { name: (c.customer && c.customer.name) || "" });
    var text = template.replace(/\{(\w+)\}/g, function (all, key) {
      return values[key] !== undefined && values[key] !== null && values[key] !== "" ? String(values[key]) : "…";
    });
    var input = q("reply-input");
    input.value = text;
    input.focus();
  });

  q("note-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var input = q("note-input");
    var text = input.value.trim();
    if (!text) return;
    action("notes", { text: text }).then(function () { input.value = ""; }).catch(function () {});
  });

  q("transfer-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var target = q("transfer-target").value;
    if (!target) { showError(t("choose_target")); return; }
    var body = { note: q("transfer-note").value.trim() };
    if (target.indexOf("queue:") === 0) body.queue = target.slice(6); else body.agent = target.slice(6);
    action("transfer", body).then(function () { q("transfer-note").value = ""; q("transfer-target").value = ""; })
      .catch(function () {});
  });

  // -- start ------------------------------------------------------------------------------------

  applyTexts();
  renderUnread();
  var listed = fetch("/api/v1/channels").then(function (response) { return response.ok ? response.json() : {}; })
    .then(function (data) {
      (data.channels || []).forEach(function (c) { if (c && c.labels) channelLabels[c.name] = c.labels; });
    }).catch(function () { /* the channels' own names are shown */ });
  try { state.csrf = sessionStorage.getItem(CSRF_KEY); } catch (e) { state.csrf = null; }
  listed.then(function () {  // the labels first, so the first render names the channels
    if (state.csrf) {
      api("GET", "/api/v1/me").then(loggedIn).catch(function () { loggedOut(""); });
    } else {
      loggedOut("");
    }
  });
})();
