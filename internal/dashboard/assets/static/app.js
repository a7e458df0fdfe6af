// The dashboard's only script. Every page works without it; with it, copy
// buttons copy and "Verify now" updates the page in place. It never inserts
// text as HTML except the server's own escaped fragment, parsed inert.
"use strict";

document.documentElement.classList.add("js");

// Copy buttons: the Clipboard API when the browser allows it; otherwise the
// text is selected and the customer is told to copy it.
document.addEventListener("click", function (ev) {
  var button = ev.target.closest("button[data-copy]");
  if (!button) {
    return;
  }
  var source = document.getElementById(button.dataset.copy);
  if (!source) {
    return;
  }
  var status = button.nextElementSibling;
  function say(text) {
    if (status && status.classList.contains("copy-status")) {
      status.textContent = text;
    }
  }
  function selectInstead() {
    var range = document.createRange();
    range.selectNodeContents(source);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    say("Selected: press Ctrl+C (⌘C on a Mac) to copy.");
  }
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(source.textContent).then(function () {
      say("Copied.");
    }, selectInstead);
  } else {
    selectInstead();
  }
});

// "Verify now": post with the CSRF token in a header, then swap in the new
// records part. The button stays focusable while a check runs, so keyboard
// focus is not lost; a second press waits for the first.
(function () {
  var form = document.getElementById("verify-form");
  var live = document.getElementById("live");
  var status = document.getElementById("verify-status");
  if (!form || !live || !status) {
    return;
  }
  var button = form.querySelector("button[type=submit]");
  var running = false;
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (running) {
      return;
    }
    running = true;
    button.setAttribute("aria-disabled", "true");
    live.setAttribute("aria-busy", "true");
    status.textContent = "Checking DNS…";
    fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Accept": "application/json",
        "X-CSRF-Token": form.elements.csrf.value,
        "X-Requested-With": "fetch"
      }
    }).then(function (resp) {
      var type = resp.headers.get("Content-Type") || "";
      if (type.indexOf("application/json") !== 0) {
        throw new Error("unexpected answer " + resp.status);
      }
      return resp.json().then(function (answer) {
        if (resp.status === 401) {
          window.location.assign("/signin?msg=expired");
          return;
        }
        status.textContent = answer.message || "";
        // A confirmation from before the check ("Domain added") is stale now.
        var old = document.querySelector("main > .notice");
        if (old) {
          old.remove();
        }
        if (answer.html) {
          var doc = new DOMParser().parseFromString(answer.html, "text/html");
          live.replaceChildren.apply(live, Array.from(doc.body.childNodes));
        }
      });
    }).catch(function () {
      status.textContent = "The check could not be run. Reload the page and try again.";
    }).finally(function () {
      running = false;
      button.removeAttribute("aria-disabled");
      live.removeAttribute("aria-busy");
    });
  });
})();
