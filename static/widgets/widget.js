/* Tokenhub chat widget: self-contained, no framework, no third-party code.
 * Served by GET /widget/<public key>.js with its configuration filled in below. It draws a launcher and a
 * chat panel inside a shadow root (the host page's CSS cannot break it, ours cannot leak out), keeps the
 * conversation id and visitor token in localStorage (a reload continues the conversation) and reads the
 * bot's reply as it streams (fetch + server-sent events, with the visitor token in a header). */
(function (config) {
  "use strict";
  if (!config || window["tokenhubWidget:" + config.key]) return;
  window["tokenhubWidget:" + config.key] = true;

  var STRINGS = {
    en: {
      open: "Chat with us", close: "Close chat", placeholder: "Write a message…", send: "Send",
      human: "Talk to a person", typing: "Typing…", sources: "Sources:", helpful: "Helpful",
      unhelpful: "Not helpful", waiting: "A person will reply here soon. You can keep writing.",
      joined: "A person has joined the conversation.", offline: "The assistant is offline right now. You can ask for a person instead.",
      limit: "This conversation has reached its limit for the assistant. You can ask for a person.",
      slow: "You are sending messages too fast; try again in a few seconds.", error: "Something went wrong. Please try again.",
      unavailable: "Chat is not available right now.", closed: "This conversation is closed.", you: "You", bot: "Assistant", staff: "Staff",
      greeting: "Hi! How can we help you today?", new_chat: "Start a new chat"
    },
    zh: {
      open: "在线咨询", close: "关闭聊天", placeholder: "输入消息…", send: "发送",
      human: "转人工客服", typing: "正在输入…", sources: "参考资料：", helpful: "有帮助",
      unhelpful: "没有帮助", waiting: "客服人员会尽快在这里回复您，您可以继续留言。",
      joined: "人工客服已加入对话。", offline: "智能助手暂时离线，您可以转人工客服。",
      limit: "本次对话已达到智能助手的使用上限，您可以转人工客服。",
      slow: "您发送得太快了，请稍后再试。", error: "出了点问题，请重试。",
      unavailable: "聊天暂不可用。", closed: "此对话已结束。", you: "您", bot: "智能助手", staff: "客服",
      greeting: "您好！请问有什么可以帮您？", new_chat: "开始新对话"
    }
  };
  var t = STRINGS[(config.language || "en").split("-")[0]] || STRINGS.en;
  var api = config.api.replace(/\/$/, "") + "/widget/v1";
  var storeKey = "tokenhub-widget:" + config.key;
  var state = { id: null, token: null, after: 0, streaming: false, human: false, staffJoined: false, shown: {} };

  function load() {
    try {
      var saved = JSON.parse(window.localStorage.getItem(storeKey) || "null");
      if (saved && saved.id && saved.token) { state.id = saved.id; state.token = saved.token; }
    } catch (e) { /* storage blocked: the chat works for this page only */ }
  }
  function save() {
    try { window.localStorage.setItem(storeKey, JSON.stringify({ id: state.id, token: state.token })); } catch (e) { /* ignore */ }
  }
  function forget() {
    state.id = null; state.token = null; state.after = 0; state.human = false; state.staffJoined = false; state.shown = {};
    try { window.localStorage.removeItem(storeKey); } catch (e) { /* ignore */ }
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (text) node.textContent = text;
    return node;
  }

  var color = /^#[0-9a-fA-F]{6}$/.test(config.color) ? config.color : "#2563eb";
  var host = el("div", { id: "tokenhub-widget" });
  var root = host.attachShadow({ mode: "open" });
  var style = el("style");
  style.textContent = [
    ":host{all:initial}",
    "*{box-sizing:border-box;font-family:system-ui,-apple-system,'Segoe UI',Roboto,'PingFang SC','Microsoft YaHei',sans-serif}",
    ".launcher{position:fixed;right:20px;bottom:20px;z-index:2147483000;border:0;border-radius:28px;padding:14px 20px;background:" + color + ";color:#fff;font-size:15px;font-weight:600;cursor:pointer;box-shadow:0 4px 16px rgba(0,0,0,.25)}",
    ".panel{position:fixed;right:20px;bottom:84px;z-index:2147483001;width:370px;max-width:calc(100vw - 24px);height:560px;max-height:calc(100vh - 110px);display:flex;flex-direction:column;background:#fff;color:#111;border-radius:14px;box-shadow:0 8px 32px rgba(0,0,0,.28);overflow:hidden}",
    ".panel[hidden]{display:none}",
    ".head{background:" + color + ";color:#fff;padding:12px 14px;display:flex;align-items:center;justify-content:space-between;font-weight:600}",
    ".head button{background:transparent;border:0;color:#fff;font-size:22px;line-height:1;cursor:pointer}",
    ".log{flex:1;overflow-y:auto;padding:12px;background:#f6f7f9;display:flex;flex-direction:column;gap:8px}",
    ".msg{max-width:85%;padding:8px 11px;border-radius:12px;font-size:14px;line-height:1.4;white-space:pre-wrap;word-wrap:break-word}",
    ".customer{align-self:flex-end;background:" + color + ";color:#fff}",
    ".assistant,.staff,.live{align-self:flex-start;background:#fff;border:1px solid #e3e5e8}",
    ".staff{border-color:" + color + "}",
    ".who{display:block;font-size:11px;opacity:.7;margin-bottom:2px}",
    ".cite{display:block;font-size:12px;margin-top:6px;opacity:.85}.cite a{color:inherit}",
    ".rate{display:flex;gap:6px;margin-top:6px}.rate button{border:1px solid #d0d4da;background:#fff;border-radius:10px;font-size:12px;padding:2px 8px;cursor:pointer}",
    ".rate button[aria-pressed=true]{background:" + color + ";color:#fff;border-color:" + color + "}",
    ".notice{align-self:center;font-size:12px;color:#555;background:#eceef1;border-radius:8px;padding:6px 10px;text-align:center}",
    ".bar{display:flex;gap:6px;padding:8px;border-top:1px solid #e3e5e8;background:#fff}",
    ".bar textarea{flex:1;resize:none;border:1px solid #d0d4da;border-radius:8px;padding:8px;font-size:15px;height:42px}",
    ".bar button,.human{border:0;border-radius:8px;background:" + color + ";color:#fff;padding:0 14px;font-size:14px;cursor:pointer}",
    ".human{background:transparent;color:" + color + ";padding:6px;font-size:13px;text-decoration:underline}",
    "@media (max-width:480px){.panel{right:0;bottom:0;width:100vw;max-width:100vw;height:100%;max-height:100%;border-radius:0}.launcher{right:12px;bottom:12px}}"
  ].join("\n");
  var launcher = el("button", { class: "launcher", type: "button", "data-testid": "widget-launcher", "aria-expanded": "false" }, t.open);
  var panel = el("div", { class: "panel", role: "dialog", "aria-label": config.name || t.open, hidden: "" });
  var head = el("div", { class: "head" });
  head.appendChild(el("span", {}, config.title || t.open));
  var closeButton = el("button", { type: "button", "aria-label": t.close, "data-testid": "widget-close" }, "×");
  head.appendChild(closeButton);
  var log = el("div", { class: "log", "data-testid": "widget-log", "aria-live": "polite" });
  var humanButton = el("button", { class: "human", type: "button", "data-testid": "widget-human" }, t.human);
  var form = el("form", { class: "bar" });
  var input = el("textarea", { "aria-label": t.placeholder, placeholder: t.placeholder, maxlength: "2000", "data-testid": "widget-input" });
  var sendButton = el("button", { type: "submit", "data-testid": "widget-send" }, t.send);
  form.appendChild(input); form.appendChild(sendButton);
  panel.appendChild(head); panel.appendChild(log); panel.appendChild(humanButton); panel.appendChild(form);
  root.appendChild(style); root.appendChild(launcher); root.appendChild(panel);

  function scroll() { log.scrollTop = log.scrollHeight; }
  function notice(text, id) {
    if (id && root.querySelector('[data-notice="' + id + '"]')) return;
    var node = el("div", { class: "notice", "data-testid": "widget-notice", "data-notice": id || "" }, text);
    log.appendChild(node); scroll();
  }
  var live = null;
  function liveReply(text) {
    if (!live) { live = el("div", { class: "msg live", "data-testid": "widget-live" }); log.appendChild(live); }
    live.textContent = text; scroll();
  }
  function dropLive() { if (live) { live.remove(); live = null; } }

  function rate(message, helpful, buttons) {
    request("POST", "/messages/" + message.id + "/rating", { helpful: helpful }).then(function (res) {
      if (res.ok) { buttons[0].setAttribute("aria-pressed", String(helpful)); buttons[1].setAttribute("aria-pressed", String(!helpful)); }
    });
  }

  function show(message) {
    if (state.shown[message.id]) return;
    state.shown[message.id] = true;
    state.after = Math.max(state.after, message.id);
    if (message.role === "assistant") dropLive();
    if (message.role === "staff" && !state.staffJoined) { state.staffJoined = true; notice(t.joined, "joined"); }
    var node = el("div", { class: "msg " + message.role, "data-testid": "widget-message-" + message.role });
    if (message.role !== "customer") node.appendChild(el("span", { class: "who" }, message.role === "staff" ? t.staff : t.bot));
    node.appendChild(document.createTextNode(message.content));
    if (message.citations && message.citations.length) {
      var cite = el("span", { class: "cite", "data-testid": "widget-citations" }, t.sources + " ");
      message.citations.forEach(function (c, i) {
        if (i) cite.appendChild(document.createTextNode(", "));
        if (/^https?:\/\//.test(c.url || "")) {
          var link = el("a", { href: c.url, target: "_blank", rel: "noopener noreferrer" }, c.title);
          cite.appendChild(link);
        } else cite.appendChild(document.createTextNode(c.title));
      });
      node.appendChild(cite);
    }
    if (message.role === "assistant") {
      var bar = el("span", { class: "rate" });
      var up = el("button", { type: "button", "aria-pressed": String(message.rating === true), "data-testid": "widget-helpful" }, t.helpful);
      var down = el("button", { type: "button", "aria-pressed": String(message.rating === false) }, t.unhelpful);
      up.addEventListener("click", function () { rate(message, true, [up, down]); });
      down.addEventListener("click", function () { rate(message, false, [up, down]); });
      bar.appendChild(up); bar.appendChild(down); node.appendChild(bar);
    }
    log.appendChild(node); scroll();
  }

  function setStatus(status) {
    if (status === "needs_human" && !state.human) { state.human = true; notice(t.waiting, "waiting"); }
    if (status === "open") state.human = false;
    if (status === "closed") notice(t.closed, "closed");
    humanButton.hidden = status !== "open";
  }

  function request(method, path, body) {
    var headers = { "X-Widget-Key": config.key };
    if (state.token) headers.Authorization = "Bearer " + state.token;
    if (body) headers["Content-Type"] = "application/json";
    return fetch(api + path, { method: method, headers: headers, body: body ? JSON.stringify(body) : undefined, mode: "cors", credentials: "omit" });
  }

  function failure(res) {
    return res.json().catch(function () { return {}; }).then(function (body) {
      var code = body && body.error ? body.error.code : "";
      if (res.status === 429) notice(t.slow);
      else if (code === "widget_offline" || code === "insufficient_tokens" || res.status === 402) notice(t.offline, "offline");
      else if (code === "conversation_limit_reached") notice(t.limit, "limit");
      else if (code === "conversation_closed") notice(t.closed, "closed");
      else notice(t.error);
      return null;
    });
  }

  function start() {
    if (state.id) return Promise.resolve(true);
    return request("POST", "/conversations").then(function (res) {
      if (!res.ok) return failure(res).then(function () { return false; });
      return res.json().then(function (body) { state.id = body.id; state.token = body.visitor_token; save(); return true; });
    }, function () { notice(t.unavailable); return false; });
  }

  function stream() {
    if (!state.id || state.streaming) return;
    state.streaming = true;
    request("GET", "/conversations/" + state.id + "/events?after=" + state.after).then(function (res) {
      if (!res.ok || !res.body) { state.streaming = false; return; }
      var reader = res.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) {
            state.streaming = false;
            // Reconnect only while something is awaited: a reply being written or a person.
            if (state.human || live) window.setTimeout(stream, 300);
            return;
          }
          buffer += decoder.decode(chunk.value, { stream: true });
          var parts = buffer.split("\n\n");
          buffer = parts.pop();
          parts.forEach(function (part) {
            var name = "message", data = "";
            part.split("\n").forEach(function (line) {
              if (line.indexOf("event: ") === 0) name = line.slice(7);
              else if (line.indexOf("data: ") === 0) data += line.slice(6);
            });
            var payload = data ? JSON.parse(data) : {};
            if (name === "message") show(payload);
            else if (name === "reply") liveReply(payload.reply);
            else if (name === "status") setStatus(payload.status);
          });
          return pump();
        });
      }
      return pump();
    }).catch(function () { state.streaming = false; window.setTimeout(stream, 3000); });
  }

  function resume() {
    if (!state.id) { notice(config.greeting || t.greeting, "greeting"); return; }
    request("GET", "/conversations/" + state.id).then(function (res) {
      if (res.status === 404 || res.status === 401) { forget(); notice(config.greeting || t.greeting, "greeting"); return; }
      if (!res.ok) return;
      return res.json().then(function (body) {
        notice(config.greeting || t.greeting, "greeting");
        body.messages.forEach(show);
        setStatus(body.status);
        stream();
      });
    });
  }

  function send(text) {
    start().then(function (ok) {
      if (!ok) return;
      sendButton.disabled = true;
      return request("POST", "/conversations/" + state.id + "/messages", { message: text }).then(function (res) {
        sendButton.disabled = false;
        if (!res.ok) {
          if (res.status === 404) forget();
          input.value = text;
          return failure(res);
        }
        return res.json().then(function (body) {
          show(body.message);
          if (body.run) liveReply(t.typing);
          stream();
        });
      });
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    input.value = "";
    send(text.slice(0, 2000));
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
  });
  humanButton.addEventListener("click", function () {
    start().then(function (ok) {
      if (!ok) return;
      request("POST", "/conversations/" + state.id + "/human").then(function (res) {
        if (!res.ok) return failure(res);
        return res.json().then(function (body) { setStatus(body.status); stream(); });
      });
    });
  });
  var opened = false;
  function toggle(open) {
    if (open) panel.removeAttribute("hidden"); else panel.setAttribute("hidden", "");
    launcher.setAttribute("aria-expanded", String(open));
    if (open && !opened) { opened = true; resume(); }
    if (open) input.focus();
  }
  launcher.addEventListener("click", function () { toggle(panel.hasAttribute("hidden")); });
  closeButton.addEventListener("click", function () { toggle(false); });

  load();
  function mount() { document.body.appendChild(host); if (state.id) toggle(true); }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})(/*TOKENHUB_WIDGET_CONFIG*/null);
