// Asking before a form is sent, without an inline handler (the Content-Security-Policy runs none):
// a form with data-confirm asks on submit; a button with data-confirm asks when it is clicked.
(function () {
  document.addEventListener('submit', function (e) {
    var f = e.target;
    if (f.dataset && f.dataset.confirm && !window.confirm(f.dataset.confirm)) { e.preventDefault(); }
  }, true);
  document.addEventListener('click', function (e) {
    var b = e.target.closest ? e.target.closest('button[data-confirm], a[data-confirm]') : null;
    if (b && !window.confirm(b.dataset.confirm)) { e.preventDefault(); e.stopPropagation(); }
  }, true);
})();
