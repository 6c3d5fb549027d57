// Sign-in page. The desktop shell calls window.__stagehandSignIn(code) with a fresh one-time
// code each time its window lands here; the code is traded for a session cookie, so the
// streamer token never appears in a URL. Browsers without the shell use the form, which posts
// the token in the body.
(function () {
  "use strict";
  var busy = false;
  window.__stagehandSignIn = function (code) {
    if (busy || typeof code !== "string" || code === "") return;
    busy = true;
    var auto = document.getElementById("auto");
    if (auto) auto.hidden = false;
    fetch("/session", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ code: code }),
      credentials: "same-origin",
    }).then(function (res) {
      if (res.ok) {
        window.location.replace("/");
        return;
      }
      busy = false;
      if (auto) auto.textContent = "Automatic sign-in failed; paste the streamer token instead.";
    }, function () {
      busy = false;
      if (auto) auto.textContent = "Stagehand did not answer; paste the streamer token instead.";
    });
  };
})();
