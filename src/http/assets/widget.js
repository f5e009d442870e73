/* cskh web chat widget: one <script src=".../widget.js"> tag, no framework.
 * Keeps the visitor's conversation across reloads (visitor id in localStorage),
 * sends with retries (idempotent message ids), receives live messages by SSE. */
(function () {
  "use strict";
  if (window.__cskhWidget) return;
  window.__cskhWidget = true;

  var script = document.currentScript;
  var base = script && script.src ? new URL(script.src).origin : location.origin;
  var title = (script && script.getAttribute("data-title")) || "Chăm sóc khách hàng";
  // Longest message the server takes, in characters.
  var MAX_CHARS = 2000;

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "v-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2);
  }
  var visitor = localStorage.getItem("cskh_visitor_id");
  if (!visitor) {
    visitor = uuid();
    localStorage.setItem("cskh_visitor_id", visitor);
  }

  var css = [
    ":host{all:initial}",
    "*{box-sizing:border-box;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}",
    ".bubble{position:fixed;right:20px;bottom:20px;width:60px;height:60px;border-radius:50%;border:0;background:#0f766e;color:#fff;display:flex;align-items:center;justify-content:center;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:2147483646}",
    ".panel{position:fixed;right:20px;bottom:92px;width:360px;height:520px;max-height:calc(100vh - 110px);background:#fff;border-radius:14px;box-shadow:0 8px 30px rgba(0,0,0,.25);display:none;flex-direction:column;overflow:hidden;z-index:2147483647}",
    ".panel.open{display:flex}",
    ".head{background:#0f766e;color:#fff;padding:12px 14px;display:flex;align-items:center;justify-content:space-between}",
    ".head b{font-size:15px}.head small{display:block;opacity:.85;font-size:12px}",
    ".close{background:none;border:0;color:#fff;font-size:22px;cursor:pointer}",
    ".log{flex:1;overflow-y:auto;padding:12px;background:#f1f5f9;display:flex;flex-direction:column;gap:8px}",
    ".msg{max-width:82%;padding:8px 12px;border-radius:14px;font-size:14px;line-height:1.45;white-space:pre-wrap;word-wrap:break-word}",
    ".msg.in{align-self:flex-end;background:#0f766e;color:#fff;border-bottom-right-radius:4px}",
    ".msg.out{align-self:flex-start;background:#fff;color:#1f2937;border-bottom-left-radius:4px;box-shadow:0 1px 2px rgba(0,0,0,.06)}",
    ".msg.agent{border-left:3px solid #f59e0b}",
    ".msg a{color:#0f766e;text-decoration:underline;word-break:break-all}",
    ".quick{display:flex;flex-wrap:wrap;gap:6px;align-self:flex-start;max-width:92%}",
    ".quick button{border:1px solid #0f766e;background:#fff;color:#0f766e;border-radius:16px;padding:6px 10px;font-size:13px;cursor:pointer;text-align:left}",
    ".typing{align-self:flex-start;color:#64748b;font-size:13px;padding:4px 8px}",
    ".typing span{animation:blink 1.2s infinite}.typing span:nth-child(2){animation-delay:.2s}.typing span:nth-child(3){animation-delay:.4s}",
    "@keyframes blink{0%,80%,100%{opacity:.2}40%{opacity:1}}",
    ".status{font-size:12px;color:#b45309;background:#fffbeb;padding:4px 12px;display:none}",
    ".status.show{display:block}",
    "form{display:flex;gap:8px;padding:10px;border-top:1px solid #e2e8f0;background:#fff}",
    "input{flex:1;border:1px solid #cbd5e1;border-radius:20px;padding:9px 14px;font-size:14px;outline:none}",
    "input:focus{border-color:#0f766e}",
    "form button{border:0;background:#0f766e;color:#fff;border-radius:20px;padding:0 16px;font-size:14px;cursor:pointer}",
    "button{-webkit-tap-highlight-color:transparent}",
    // On a phone the open panel fills the screen, so the launcher hides while it is open.
    "@media (max-width:480px){.panel{right:0;bottom:0;width:100vw;height:100vh;max-height:100vh;border-radius:0}.bubble{right:14px;bottom:14px}.bubble.open{display:none}}"
  ].join("\n");

  var host = document.createElement("div");
  host.id = "cskh-widget";
  document.body.appendChild(host);
  var root = host.attachShadow({ mode: "open" });
  root.innerHTML =
    "<style>" + css + "</style>" +
    '<button class="bubble" aria-label="Mở khung chat" title="Chat với chúng tôi">' +
    '<svg width="28" height="28" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" ' +
    'stroke-linecap="round" stroke-linejoin="round" aria-hidden="true">' +
    '<path d="M21 12a8 8 0 0 1-11.6 7.1L4 20l1-4.6A8 8 0 1 1 21 12z"/></svg></button>' +
    '<div class="panel" role="dialog" aria-label="Khung chat">' +
    '<div class="head"><div><b></b><small>Thường trả lời ngay</small></div>' +
    '<button class="close" aria-label="Đóng khung chat">×</button></div>' +
    '<div class="status" role="status"></div>' +
    '<div class="log" aria-live="polite"></div>' +
    '<form><input type="text" placeholder="Nhập tin nhắn…" aria-label="Tin nhắn">' +
    '<button type="submit">Gửi</button></form></div>';

  var bubble = root.querySelector(".bubble");
  var panel = root.querySelector(".panel");
  var log = root.querySelector(".log");
  var form = root.querySelector("form");
  var input = root.querySelector("input");
  var status = root.querySelector(".status");
  root.querySelector(".head b").textContent = title;

  var shown = {};
  var typing = null;
  var pending = 0;

  function scroll() { log.scrollTop = log.scrollHeight; }

  function clearQuick() {
    var q = log.querySelectorAll(".quick");
    for (var i = 0; i < q.length; i++) q[i].remove();
  }

  // Web addresses, e-mails and phone numbers in the shop's answers become links (as
  // Messenger and Zalo show them); everything else stays text, never HTML.
  var LINKS = new RegExp([
    "([\\w.+-]+@[\\w-]+(?:\\.[\\w-]+)+)",
    "((?:https?:\\/\\/|www\\.)[^\\s<>\"']+|[a-z0-9][a-z0-9-]*(?:\\.[a-z0-9-]+)*\\.(?:vn|com|net|org|io|me|info|shop|store)(?:\\/[^\\s<>\"']*)?)",
    "((?:\\+84|0)(?:[ .]?\\d){9,10}|1[89]00(?:[ .]?\\d){4,6})"
  ].join("|"), "gi");
  function linkify(el, text) {
    var at = 0, m;
    LINKS.lastIndex = 0;
    while ((m = LINKS.exec(text))) {
      var found = m[0], start = m.index;
      var before = start > 0 ? text[start - 1] : "";
      // Part of a longer word or number (an amount like 1.900.000đ): not a link.
      if (/[\w@\/.]/.test(before)) continue;
      while (/[.,;:!?)]$/.test(found) && !(found.slice(-1) === ")" && found.indexOf("(") >= 0)) found = found.slice(0, -1);
      var after = text.slice(start + found.length, start + found.length + 4);
      var href;
      if (m[1]) href = "mailto:" + found;
      else if (m[2]) href = (/^https?:/i.test(found) ? "" : "https://") + found;
      else if (/^[.,]?\d|^\s?(?:đ|vn[dđ]|k\b)/i.test(after)) continue;
      else href = "tel:" + found.replace(/[ .]/g, "");
      if (start > at) el.appendChild(document.createTextNode(text.slice(at, start)));
      var a = document.createElement("a");
      a.href = href;
      a.textContent = found;
      if (!m[3]) { a.target = "_blank"; a.rel = "noopener noreferrer"; }
      el.appendChild(a);
      at = start + found.length;
      LINKS.lastIndex = at;
    }
    if (at < text.length) el.appendChild(document.createTextNode(text.slice(at)));
  }

  function addMessage(m) {
    if (m.id && shown[m.id]) return;
    if (m.id) shown[m.id] = true;
    var incoming = m.direction === "in";
    var el = document.createElement("div");
    el.className = "msg " + (incoming ? "in" : "out") + (m.author === "agent" ? " agent" : "");
    if (incoming) el.textContent = m.text; else linkify(el, m.text);
    if (typing && !incoming) log.insertBefore(el, typing); else log.appendChild(el);
    if (!incoming) {
      clearQuick();
      if (m.quick_replies && m.quick_replies.length) {
        var q = document.createElement("div");
        q.className = "quick";
        m.quick_replies.forEach(function (label) {
          var b = document.createElement("button");
          b.type = "button";
          b.textContent = label;
          b.addEventListener("click", function () { clearQuick(); send(label); });
          q.appendChild(b);
        });
        if (typing) log.insertBefore(q, typing); else log.appendChild(q);
      }
    }
    scroll();
  }

  function setTyping(on) {
    if (on && !typing) {
      typing = document.createElement("div");
      typing.className = "typing";
      typing.innerHTML = "Em đang trả lời<span>.</span><span>.</span><span>.</span>";
      log.appendChild(typing);
      scroll();
    } else if (!on && typing) {
      typing.remove();
      typing = null;
    }
  }

  function setStatus(text) {
    status.textContent = text || "";
    status.className = "status" + (text ? " show" : "");
  }

  function welcome() {
    if (log.querySelector(".msg")) return;
    addMessage({ direction: "out", text: "Dạ, em chào anh/chị! Em có thể giúp gì cho anh/chị ạ?" });
  }

  function post(body, attempt) {
    return fetch(base + "/api/v1/messages", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body)
    }).then(function (r) {
      if (r.status >= 500 || r.status === 429) throw new Error("server " + r.status);
      return r.json().then(function (j) { return { ok: r.ok, body: j }; });
    }).catch(function (err) {
      // Network or server trouble: retry with the same message id (idempotent).
      var wait = Math.min(8000, 500 * Math.pow(2, attempt));
      setStatus("Đang kết nối lại…");
      return new Promise(function (res) { setTimeout(res, wait); })
        .then(function () { return post(body, attempt + 1); });
    });
  }

  function send(text) {
    text = (text || "").trim();
    if (!text) return;
    var mid = uuid();
    addMessage({ direction: "in", text: text });
    pending++;
    setTyping(true);
    post({ channel: "web", user_id: visitor, text: text, message_id: mid }, 0).then(function (r) {
      setStatus("");
      pending--;
      if (!pending) setTyping(false);
      if (!r.ok) {
        // The server's reason is for developers; the customer gets their words back
        // in the box, to send again.
        addMessage({ direction: "out", text: "Dạ, tin nhắn vừa rồi em chưa nhận được ạ. Em đã để lại nội dung trong ô nhập, anh/chị bấm Gửi lại giúp em nhé." });
        if (!input.value) input.value = text;
        return;
      }
      (r.body.replies || []).forEach(function (m) {
        addMessage({ id: m.id, direction: "out", author: "bot", text: m.text, quick_replies: m.quick_replies });
      });
    });
  }

  function loadHistory() {
    return fetch(base + "/api/v1/web/history?visitor_id=" + encodeURIComponent(visitor))
      .then(function (r) { return r.ok ? r.json() : { messages: [] }; })
      .then(function (h) {
        var msgs = h.messages || [];
        msgs.forEach(function (m, i) {
          // Only the last message keeps its quick replies.
          var copy = { id: m.id, direction: m.direction, author: m.author, text: m.text,
            quick_replies: i === msgs.length - 1 ? m.quick_replies : [] };
          addMessage(copy);
        });
        welcome();
      })
      .catch(function () { welcome(); });
  }

  function listen() {
    if (!window.EventSource) return;
    var es = new EventSource(base + "/api/v1/web/events?visitor_id=" + encodeURIComponent(visitor));
    es.addEventListener("message", function (e) {
      try { addMessage(JSON.parse(e.data)); } catch (_) { /* ignore malformed events */ }
    });
    es.onerror = function () { setStatus("Đang kết nối lại…"); };
    es.onopen = function () { setStatus(""); loadHistory(); };
  }

  function open(on) {
    panel.classList.toggle("open", on);
    bubble.classList.toggle("open", on);
    sessionStorage.setItem("cskh_open", on ? "1" : "0");
    if (on) setTimeout(function () { input.focus(); }, 0);
  }

  bubble.addEventListener("click", function () { open(!panel.classList.contains("open")); });
  root.querySelector(".close").addEventListener("click", function () { open(false); });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var t = input.value;
    // The server takes up to 2,000 characters (code points, as counted here); a
    // longer message stays in the box instead of being cut or lost.
    if (Array.from(t.trim()).length > MAX_CHARS) {
      addMessage({ direction: "out", text: "Dạ, tin nhắn dài hơn 2.000 ký tự nên em chưa gửi được ạ. Anh/chị rút gọn hoặc chia thành vài tin giúp em nhé." });
      return;
    }
    input.value = "";
    send(t);
  });

  loadHistory().then(listen);
  if (sessionStorage.getItem("cskh_open") === "1") open(true);
})();
