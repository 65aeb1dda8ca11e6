// 【获取验证码】 for a change of someone's phone or password: the code goes to the acting user's own
// phone (POST to the button's data-url with the page's CSRF token); the message appears beside it.
(function () {
  document.querySelectorAll('.stepup-send').forEach(function (btn) {
    var form = btn.closest('form');
    var msg = form ? form.querySelector('.stepup-msg') : null;
    btn.addEventListener('click', function () {
      var token = form.querySelector('input[name="csrf_token"]').value;
      btn.disabled = true;
      fetch(btn.dataset.url, {method: 'POST', body: new URLSearchParams({csrf_token: token}),
                              headers: {'X-CSRFToken': token}, credentials: 'same-origin'})
        .then(function (r) { return r.json(); })
        .then(function (d) {
          if (msg) { msg.textContent = d.message; msg.className = 'form-text stepup-msg ' + (d.ok ? 'text-success' : 'text-danger'); }
          if (!d.ok) { btn.disabled = false; return; }
          var left = 60;
          var t = setInterval(function () {
            left -= 1; btn.textContent = left + '秒后重新获取';
            if (left <= 0) { clearInterval(t); btn.disabled = false; btn.textContent = '获取验证码'; }
          }, 1000);
        })
        .catch(function () { btn.disabled = false; if (msg) { msg.textContent = '网络异常，请稍后重试。'; } });
    });
  });
})();
