// The exports page: follow the exports still waiting or running (GET /api/v1/exports/{id}), update
// their progress and show the download link when they are done. Without this script the page
// shows the state it was loaded with, and a link to refresh it.
(function () {
  "use strict";
  var list = document.querySelector("ul.jobs[data-poll]");
  if (!list || !window.fetch) { return; }
  var EVERY_MS = 2000;

  function role(item, name) { return item.querySelector('[data-role="' + name + '"]'); }

  function show(item, job) {
    var status = role(item, "status");
    var count = role(item, "count");
    var bar = role(item, "progress");
    item.dataset.status = job.status;
    if (job.rows_total !== null) {
      count.textContent = list.dataset.rows.replace("{done}", job.rows_done).replace("{total}", job.rows_total);
      if (bar) { bar.max = Math.max(job.rows_total, 1); bar.value = job.rows_done; }
    }
    if (job.status === "running") { status.textContent = list.dataset.running; }
    if (job.status === "done" || job.status === "failed") {
      status.textContent = job.status === "done" ? list.dataset.ready : list.dataset.failed;
      status.classList.add(job.status === "done" ? "ok" : "bad");
      if (bar) { bar.remove(); }
      var file = role(item, "file");
      file.textContent = "";
      if (job.status === "done") {
        var link = document.createElement("a");
        link.className = "button";
        link.href = job.file_url;
        link.setAttribute("download", "");
        link.textContent = list.dataset.download;
        var size = document.createElement("span");
        size.className = "muted";
        size.textContent = ((job.size || 0) / 1e6).toFixed(1) + " MB";
        file.appendChild(link);
        file.appendChild(document.createTextNode(" "));
        file.appendChild(size);
      } else {
        var error = document.createElement("span");
        error.className = "error";
        error.textContent = job.error || "";
        file.appendChild(error);
      }
    }
  }

  function poll() {
    var waiting = list.querySelectorAll('li[data-status="queued"], li[data-status="running"]');
    if (!waiting.length) { return; }
    var requests = Array.prototype.map.call(waiting, function (item) {
      return fetch(list.dataset.poll + item.dataset.job, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (job) { if (job) { show(item, job); } })
        .catch(function () { /* offline for a moment: try again at the next tick */ });
    });
    Promise.all(requests).then(function () { window.setTimeout(poll, EVERY_MS); });
  }

  window.setTimeout(poll, 500);
}());
