// The draft editor's autosave: a change is saved to the server (debounced), and the list of what
// submitting would refuse is replaced by the server's answer. Without this script the page's
// Save button does the same. A save based on a version someone else has replaced is refused by
// the server (409); then saving stops and the page says what changed. Deciding on a proposed
// (collected) timeline entry saves at once through the Save button.
(function () {
  "use strict";
  var form = document.getElementById("draft-form");
  if (!form) return;
  var list = document.getElementById("refusals");
  var summary = document.getElementById("refusal-summary");
  var saved = document.getElementById("save-status");
  var timer = null, busy = false, again = false, stale = false, submitter = null;

  function show(problems) {
    while (list.firstChild) list.removeChild(list.firstChild);
    problems.forEach(function (text) {
      var li = document.createElement("li");
      li.textContent = text;
      list.appendChild(li);
    });
    summary.textContent = problems.length
      ? "Submitting now would be refused: " + problems.length + " problem(s)."
      : "Nothing: submitting now would be accepted (the SLO review still runs on submit).";
  }

  function save() {
    if (stale) return;
    if (busy) { again = true; return; }
    busy = true;
    var body = new URLSearchParams(new FormData(form));
    body.set("intent", "save");
    saved.textContent = "Saving…";
    fetch(form.getAttribute("action"), {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "Accept": "application/json" }
    }).then(function (response) {
      if ((response.headers.get("content-type") || "").indexOf("application/json") < 0) {
        // Signed out (the session ended): the answer is the sign-in page.
        saved.textContent = "Not saved: you are signed out. Sign in again in another tab; " +
          "your text is still here and the next change saves it.";
        return;
      }
      return response.json().then(function (answer) {
        if (response.ok) {
          form.elements["version"].value = answer.version;
          saved.textContent = "Saved version " + answer.version + ".";
          show(answer.problems);
        } else {
          if (response.status === 409) stale = true;
          saved.textContent = answer.detail;
          if (answer.problems) show(answer.problems);
        }
      });
    }).catch(function (err) {
      saved.textContent = "Not saved (" + err + "); your text is still here.";
    }).then(function () {
      busy = false;
      if (submitter) {  // a button was pressed while saving: now the version is the latest
        var button = submitter;
        submitter = null;
        stale = true;
        form.requestSubmit(button);
      } else if (again) {
        again = false;
        save();
      }
    });
  }

  function soon(ms) {
    clearTimeout(timer);
    timer = setTimeout(save, ms);
  }
  // Save or Submit by the buttons: no autosave races the post (it would make it stale).
  form.addEventListener("submit", function (event) {
    clearTimeout(timer);
    if (busy) {
      event.preventDefault();
      submitter = event.submitter || null;
      again = false;
      return;
    }
    stale = true;
  });
  form.addEventListener("input", function () { soon(800); });
  form.addEventListener("change", function (event) {
    // Keeping or dropping a proposed entry reloads the page through the Save button, so a kept
    // one shows among the timeline's rows (to edit) and a dropped one goes.
    if (event.target.classList && event.target.classList.contains("decision")) {
      clearTimeout(timer);
      form.requestSubmit(form.querySelector('button[name="intent"][value="save"]'));
      return;
    }
    soon(150);
  });
})();
