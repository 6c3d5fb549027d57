// Moderator invite link: posts the key as soon as the page loads, which opens the session and
// lands on the panel. The key is consumed only by this POST, never by loading the page, so a
// chat app's link preview (which fetches the page but runs no script) cannot use it up. Without
// script, the form's own button does the same.
(function () {
  "use strict";
  var form = document.getElementById("consume");
  if (!form) return;
  var sent = false;
  function open() {
    if (sent) return;
    sent = true;
    var button = form.querySelector("button");
    if (button) button.disabled = true;
    form.submit();
  }
  // A page restored from the back/forward cache must not post a key that is already spent.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) return;
    open();
  });
})();
