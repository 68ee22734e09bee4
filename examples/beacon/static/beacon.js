/*
 * beacon.js: one beacon per page view, sent when the page is hidden or left.
 *
 *   <script src="beacon.js" data-endpoint="https://REGION-PROJECT.cloudfunctions.net/beacon"
 *           defer></script>
 *
 * It sends the page's URL, its referrer, the deepest the visitor scrolled (percent),
 * the screen's size and the time, as JSON in a text/plain body: a CORS-safelisted
 * type, so the browser sends it cross-origin without a preflight. The function takes
 * the user agent from the request's header. Each page view gets a random id, so the
 * same beacon sent twice is stored once.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var endpoint = script && script.getAttribute("data-endpoint");
  if (!endpoint || !navigator.sendBeacon) return;

  var id, sent, maxDepth;

  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID(); // secure contexts (https, localhost)
    var b = crypto.getRandomValues(new Uint8Array(16)); // elsewhere: the same, by hand
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    var h = Array.prototype.map.call(b, function (x) {
      return (x + 0x100).toString(16).slice(1);
    }).join("");
    return [h.slice(0, 8), h.slice(8, 12), h.slice(12, 16), h.slice(16, 20), h.slice(20)]
      .join("-");
  }

  function startView() {
    id = uuid();
    sent = false;
    maxDepth = 0;
    track();
  }

  // How far down the page the bottom of the viewport has been, in percent.
  function track() {
    var doc = document.documentElement;
    var height = Math.max(doc.scrollHeight, document.body ? document.body.scrollHeight : 0);
    var seen = window.scrollY + window.innerHeight;
    var depth = height > 0 ? Math.min(100, Math.round((seen / height) * 100)) : 100;
    if (depth > maxDepth) maxDepth = depth;
  }

  function send() {
    if (sent) return; // once per page view
    sent = true;
    track();
    var event = {
      id: id,
      page: location.href.slice(0, 2048),
      referrer: document.referrer.slice(0, 2048),
      scroll_depth: maxDepth,
      screen: { width: screen.width, height: screen.height },
      time: Date.now(),
    };
    // A string body is sent as text/plain;charset=UTF-8.
    navigator.sendBeacon(endpoint, JSON.stringify(event));
  }

  startView();
  addEventListener("scroll", track, { passive: true });
  // "hidden" is the last moment a page is sure to see on mobile (tab switched,
  // app closed); pagehide covers browsers that leave without it.
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") send();
  });
  addEventListener("pagehide", send);
  // A page restored from the back/forward cache is a new view.
  addEventListener("pageshow", function (e) {
    if (e.persisted) startView();
  });
})();
