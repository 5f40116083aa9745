/* csbot's chat window inside the shop's page (/widget): the same conversation and the same bot
 * words as the chat page, through the public API (POST /api/chat, GET .../messages, POST /api/handoff).
 * It talks only to the page that framed it, when that page's origin is one of widget_origins. */
(function () {
  "use strict";
  var body = document.body;
  var origins = JSON.parse(body.dataset.origins || "[]");
  var words = JSON.parse(body.dataset.words || "{}");
  var log = document.getElementById("log");
  var form = document.getElementById("ask");
  var input = document.getElementById("text");
  var person = document.getElementById("person");
  var parentOrigin = null, conversation = null, identity = null, after = 0, unread = 0, open = false;
  var epoch = 0, poll = null;  /* which customer's view this is; the long poll in flight */

  function tell(message) {
    if (parentOrigin) window.parent.postMessage(message, parentOrigin);
  }
  function line(role, text) {
    var item = document.createElement("li");
    item.className = role;
    var said = document.createElement("span");
    said.textContent = text;  /* text, never HTML */
    item.appendChild(said);
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
    return item;
  }
  function thumbs(item, id) {  /* like and dislike a bot reply, as on the chat page */
    [[1, "\uD83D\uDC4D", words.like], [-1, "\uD83D\uDC4E", words.dislike]].forEach(function (choice) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "thumb";
      button.textContent = choice[1];
      button.setAttribute("aria-label", choice[2]);
      button.setAttribute("aria-pressed", "false");
      button.addEventListener("click", function () {
        var rating = button.getAttribute("aria-pressed") === "true" ? 0 : choice[0];
        fetch("/api/messages/" + id + "/rating", {method: "POST", headers: {"content-type": "application/json"},
              body: JSON.stringify({conversation_id: conversation, rating: rating})})
          .then(function (response) {
            if (!response.ok) return;
            item.querySelectorAll(".thumb").forEach(function (b) { b.setAttribute("aria-pressed", "false"); });
            if (rating) button.setAttribute("aria-pressed", "true");
          });
      });
      item.appendChild(button);
    });
  }
  function show(m) {
    if (m.id <= after) return;
    after = m.id;
    if (m.role === "staff") line("staff", (m.author || words.our_team) + ": " + m.text);
    else if (m.role === "system") line("system", m.text);
    else if (m.role === "bot") thumbs(line("bot", m.text), m.id);
    else line(m.role, m.text);
    if (!open && m.role !== "customer") unread += 1;
  }
  /* The messages after the last one shown; with `wait`, held open by the server until one comes
   * (long polling). Both may run at once: show() skips what is already on screen. What comes back
   * after the customer changed (epoch: a login or logout on the page) is dropped. */
  function load(wait, signal) {
    var mine = epoch;
    if (!conversation) return Promise.resolve(false);
    var url = "/api/conversations/" + encodeURIComponent(conversation) + "/messages?after=" + after +
      (wait ? "&wait=" + wait : "");
    return fetch(url, {signal: signal})
      .then(function (response) {
        if (mine !== epoch) return null;
        if (response.status === 404) { conversation = null; remember(null); return null; }
        return response.ok ? response.json() : null;
      })
      .then(function (found) {
        if (found && mine === epoch) found.messages.forEach(show);
        tell({type: "csbot:unread", count: unread});
        return !!found;
      })
      .catch(function () { return false; });
  }
  function listen() {  /* one long poll at a time, again at once after each; 3 s after a failure */
    if (poll || !conversation) return;
    var mine = poll = new AbortController();
    load(25, mine.signal).then(function (ok) {
      if (poll !== mine) return;  /* follow() cut it off and listens anew */
      poll = null;
      setTimeout(listen, ok ? 0 : 3000);
    });
  }
  function remember(id) {  /* the loader keeps the handle under this customer's key */
    tell({type: "csbot:conversation", id: id, identity: identity});
  }
  function started(id) {
    if (id && id !== conversation) {
      conversation = id;
      remember(id);
      listen();
    }
  }
  function follow(id) {  /* show this conversation (or none) from its start */
    epoch += 1;
    if (poll) poll.abort();
    poll = null;
    conversation = typeof id === "string" ? id : null;
    after = 0;
    log.textContent = "";
    load().then(listen);
  }
  function call(url, body) {
    var mine = epoch;
    if (identity) body.identity = identity;
    return fetch(url, {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify(body)})
      .then(function (response) {
        return response.json().then(function (data) {
          if (mine !== epoch) return;  /* sent for the customer before a login or logout: not shown */
          if (!response.ok) line("error", data.error || words.failed);
          else started(data.conversation_id);
          if (response.status === 401 && body.identity) tell({type: "csbot:identity-refused", error: data.error});
          return load();
        });
      })
      .catch(function () { line("error", words.failed); });
  }
  window.addEventListener("message", function (event) {
    if (event.source !== window.parent || origins.indexOf(event.origin) < 0) return;
    var message = event.data || {};
    if (message.type === "csbot:hello") {
      parentOrigin = event.origin;
      open = !!message.open;
      identity = typeof message.identity === "string" ? message.identity : null;
      follow(message.conversation);
    } else if (message.type === "csbot:identity" && parentOrigin) {  /* logged in or out on the page */
      identity = typeof message.identity === "string" ? message.identity : null;
      if (message.switched || message.conversation !== conversation) follow(message.conversation);
    } else if (message.type === "csbot:open") {
      open = !!message.open;
      if (open) { unread = 0; tell({type: "csbot:unread", count: 0}); input.focus(); }
    }
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    input.value = "";
    call("/api/chat", {conversation_id: conversation, message: text});
  });
  person.addEventListener("click", function () {
    call("/api/handoff", {conversation_id: conversation});
  });
  document.getElementById("close").addEventListener("click", function () { tell({type: "csbot:close"}); });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") tell({type: "csbot:close"});
  });
})();
