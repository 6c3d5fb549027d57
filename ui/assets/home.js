// Home page live parts: uptime ticks; engine events arrive over /ws/events (activity, and
// changes to OBS and its stream health, the relay, accounts, overlay pages and webhook
// deliveries, each of which brings its card up to date). When the socket (re)opens the cards
// are fetched again, since events sent while it was closed are gone; a slow poll covers
// events dropped while the page lagged behind.
(function () {
  "use strict";
  var S = window.Stagehand;
  var uptime = document.getElementById("uptime");
  var live = document.getElementById("live");
  var activity = document.getElementById("activity");
  var started = Date.now() - Number(uptime ? uptime.dataset.seconds : 0) * 1000;

  function fmt(s) {
    var h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, sec = s % 60;
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    if (h > 0) return h + " h " + pad(m) + " min " + pad(sec) + " s";
    if (m > 0) return m + " min " + pad(sec) + " s";
    return sec + " s";
  }
  setInterval(function () {
    if (uptime) uptime.textContent = fmt(Math.floor((Date.now() - started) / 1000));
  }, 1000);

  function setLive(text, cls) {
    if (!live) return;
    live.textContent = text;
    live.className = "badge " + cls;
  }

  function addActivity(ev) {
    if (!activity) return;
    var li = document.createElement("li");
    var what = ev.data && ev.data.action ? ev.data.action + " (" + ev.data.outcome + ")" : ev.type;
    li.textContent = new Date(ev.ts).toLocaleTimeString() + " · " + what;
    activity.insertBefore(li, activity.firstChild);
    while (activity.children.length > 50) activity.removeChild(activity.lastChild);
  }

  // What happened before this page opened (the socket only brings what happens next).
  fetch("/api/audit?limit=20", { credentials: "same-origin" })
    .then(function (res) { return res.ok ? res.json() : { entries: [] }; })
    .then(function (body) {
      body.entries.slice().reverse().forEach(function (e) {
        addActivity({ type: "audit.recorded", ts: e.ts, data: e });
      });
    })
    .catch(function () {});

  var parts = { "obs.status": "obs", "obs.health": "obs", "obs.scene.changed": "obs",
                "obs.stream.state": "obs", "relay.status": "relay", "relay.evicted": "relay",
                "account.status": "accounts", "account.link": "accounts",
                "overlay.pages": "overlays", "webhook.deliveries": "alerts" };
  // Engine events that are not worth a line in the activity list.
  var quiet = { "obs.health": true, "overlay.pages": true, "webhook.deliveries": true };
  S.events(function (ev) {
    if (!quiet[ev.type]) addActivity(ev);
    if (parts[ev.type]) S.refresh([parts[ev.type]]);
  }, function (open) {
    setLive(open ? "connected" : "reconnecting…", open ? "ok" : "bad");
    if (open) S.refresh(["overlays", "obs", "alerts", "relay", "accounts"]);
  });
  setInterval(function () { S.refresh(["overlays", "obs", "alerts"]); }, 60000);
})();
