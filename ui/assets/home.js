// Home page live parts: uptime ticks; engine events arrive over /ws/events (activity, OBS,
// relay and account changes, which bring their card up to date); overlay pages, stream health
// and alerts, which have no event of their own, are fetched again every few seconds.
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

  var parts = { "obs.status": "obs", "relay.status": "relay", "relay.evicted": "relay",
                "account.status": "accounts", "account.link": "accounts" };
  S.events(function (ev) {
    addActivity(ev);
    if (parts[ev.type]) S.refresh([parts[ev.type]]);
  }, function (open) {
    setLive(open ? "connected" : "reconnecting…", open ? "ok" : "bad");
  });
  setInterval(function () { S.refresh(["overlays", "obs", "alerts"]); }, 5000);
})();
