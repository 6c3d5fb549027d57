// Home page live parts: uptime ticks, and the engine's events arrive over /ws/events
// (the same WebSocket machinery the overlays use). Reconnects with backoff.
(function () {
  "use strict";
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

  var delay = 500;
  function connect() {
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(proto + location.host + "/ws/events");
    ws.onopen = function () { delay = 500; setLive("connected", "ok"); };
    ws.onmessage = function (msg) {
      var ev;
      try { ev = JSON.parse(msg.data); } catch (e) { return; }
      if (ev.type !== "hello") addActivity(ev);
    };
    ws.onclose = function () {
      setLive("reconnecting…", "bad");
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 5000);
    };
  }
  connect();
})();
