/* csbot's website widget loader: one script tag on the shop's page.
 *   <script src="https://help.example.com/widget.js" defer></script>
 * Optional data- attributes override the shop's settings: data-label, data-title, data-position
 * (right or left), data-colour (#rrggbb). data-identity carries a logged-in customer's token,
 * signed by the shop's server; a page that logs in or out later calls csbotWidget.identify(token)
 * (null to forget). Each customer keeps a conversation of their own in this browser. When csbot
 * refuses the token (expired, say), the page gets a "csbot:identity-refused" event on window, with
 * the reason in event.detail.error, and may answer with identify(freshToken).
 * It adds a launcher button in a corner and opens csbot's chat window (/widget) in an iframe.
 * The conversation's handle is kept here, in the shop's own localStorage, and handed to the frame
 * by postMessage: never in a URL, and no third-party cookie is needed. Messages between page and
 * frame name their target origin and check event.origin and event.source. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.csbotWidget) return;
  var base = new URL(script.src).origin;
  var data = script.dataset;
  var identity = data.identity || null;
  var defaults = __CSBOT_DEFAULTS__;  /* the shop's settings, filled in by csbot when it serves this file */
  var side = (data.position || defaults.position) === "left" ? "left" : "right";
  var colour = /^#[0-9a-fA-F]{3,8}$/.test(data.colour || "") ? data.colour : defaults.colour;
  var label = data.label || defaults.label;

  var style = document.createElement("style");
  style.textContent =
    ".csbot-launcher{position:fixed;bottom:16px;" + side + ":16px;z-index:2147483000;width:56px;height:56px;" +
    "border-radius:50%;border:0;background:" + colour + ";color:#fff;font:24px/56px sans-serif;cursor:pointer;" +
    "box-shadow:0 2px 8px rgba(0,0,0,.3)}" +
    ".csbot-launcher:focus-visible{outline:3px solid #111;outline-offset:2px}" +
    ".csbot-badge{position:absolute;top:-4px;right:-4px;min-width:20px;height:20px;border-radius:10px;" +
    "background:#b00020;color:#fff;font:bold 12px/20px sans-serif;text-align:center}" +
    ".csbot-frame{position:fixed;bottom:84px;" + side + ":16px;z-index:2147483000;width:370px;height:560px;" +
    "max-height:calc(100vh - 100px);border:1px solid #ccc;border-radius:12px;background:#fff;" +
    "box-shadow:0 4px 16px rgba(0,0,0,.25)}" +
    ".csbot-frame[hidden]{display:none}" +
    "@media (max-width:480px){.csbot-frame{inset:0;width:100%;height:100%;max-height:none;border-radius:0}}";
  document.head.appendChild(style);

  var frame = document.createElement("iframe");
  frame.className = "csbot-frame";
  frame.id = "csbot-frame";
  frame.title = data.title || label;
  frame.hidden = true;
  frame.src = base + "/widget";

  var button = document.createElement("button");
  button.type = "button";
  button.className = "csbot-launcher";
  button.setAttribute("aria-label", label);
  button.setAttribute("aria-expanded", "false");
  button.setAttribute("aria-controls", frame.id);
  button.textContent = "\uD83D\uDCAC";
  var badge = document.createElement("span");
  badge.className = "csbot-badge";
  badge.hidden = true;
  button.appendChild(badge);

  /* The handle's key: one per customer, so someone who logs in on a shared computer is never shown
   * the last one's conversation. The token's sub is only read here, never trusted: csbot checks it. */
  function key(token) {
    var who = "";
    try { who = token ? String(JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).sub) : ""; }
    catch (e) { who = "?"; }
    return "csbot-conversation:" + base + (who ? ":" + who : "");
  }
  function stored() {
    try { return localStorage.getItem(key(identity)); } catch (e) { return null; }
  }
  function post(message) {
    if (frame.contentWindow) frame.contentWindow.postMessage(message, base);
  }
  function toggle(open) {
    frame.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    post({type: "csbot:open", open: open});
    if (open) frame.focus(); else button.focus();
  }
  frame.addEventListener("load", function () {
    post({type: "csbot:hello", conversation: stored(), identity: identity, open: !frame.hidden});
  });
  window.addEventListener("message", function (event) {
    if (event.origin !== base || event.source !== frame.contentWindow) return;
    var message = event.data || {};
    if (message.type === "csbot:conversation") {
      try {
        var mine = key(typeof message.identity === "string" ? message.identity : null);  /* whose it is */
        if (typeof message.id === "string") localStorage.setItem(mine, message.id);
        else localStorage.removeItem(mine);
      } catch (e) { /* storage blocked: the conversation lasts as long as the page */ }
    } else if (message.type === "csbot:unread") {
      var count = Number(message.count) || 0;
      badge.hidden = count === 0;
      badge.textContent = count > 9 ? "9+" : String(count);
      button.setAttribute("aria-label", count ? label + " (" + count + ")" : label);
    } else if (message.type === "csbot:identity-refused") {  /* expired, say: the page may call identify() */
      window.dispatchEvent(new CustomEvent("csbot:identity-refused", {detail: {error: String(message.error || "")}}));
    } else if (message.type === "csbot:close") {
      toggle(false);
    }
  });
  button.addEventListener("click", function () { toggle(frame.hidden); });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && !frame.hidden) toggle(false);
  });
  document.body.appendChild(frame);
  document.body.appendChild(button);
  window.csbotWidget = {
    open: function () { toggle(true); },
    close: function () { toggle(false); },
    identify: function (token) {
      var before = key(identity);
      identity = typeof token === "string" && token ? token : null;
      post({type: "csbot:identity", identity: identity, conversation: stored(), switched: key(identity) !== before});
    }
  };
})();
