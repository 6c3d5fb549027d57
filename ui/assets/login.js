// Sign-in page. The desktop shell injects a one-time code (window.__STAGEHAND_LOGIN_CODE)
// into its own window; trade it for a session cookie so the streamer token never appears in a
// URL. Browsers without a code use the form, which posts the token in the body.
(function () {
  "use strict";
  var code = window.__STAGEHAND_LOGIN_CODE;
  if (!code) return;
  window.__STAGEHAND_LOGIN_CODE = undefined;
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
    } else if (auto) {
      auto.textContent = "Automatic sign-in failed; paste the streamer token instead.";
    }
  });
})();
