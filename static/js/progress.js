// The progress box of a run in the background (#job-progress, its data-url answering the run's
// state as JSON: finished, phase, done, total, …): the bar and its words every second, the page
// reloaded when the run has finished.  describe(state) gives [percent, words] for the page's kind
// of run (templates/admin/batch_run.html, templates/admin/download_job.html).
(function () {
  function jobProgress(describe, first) {
    var box = document.getElementById('job-progress'), bar = document.getElementById('job-bar'), text = document.getElementById('job-text');
    function show(s) {
      var shown = describe(s), pct = Math.floor(shown[0]);
      bar.style.width = pct + '%';
      bar.textContent = pct + '%';
      text.textContent = shown[1];
    }
    function poll() {
      fetch(box.dataset.url, {credentials: 'same-origin', headers: {'Accept': 'application/json'}})
        .then(function (r) { return r.json(); })
        .then(function (s) { if (s.finished) { window.location.reload(); return; } show(s); setTimeout(poll, 1000); })
        .catch(function () { setTimeout(poll, 3000); });
    }
    show(first);
    setTimeout(poll, 1000);
  }
  jobProgress.number = function (x) { return Number(x).toLocaleString('zh-CN'); };
  window.jobProgress = jobProgress;
})();
