/* What every page of the back office shares (loaded by templates/admin/app_base.html):
 * Chinese date pickers, the cursor in the first field, Enter moving to the next field, and the
 * search panel putting only the filled fields into the address. */
(function ($) {
  'use strict';

  // ---- Chinese date pickers (Flask-Admin's daterangepicker 1.3, on moment 2.9) --------------------
  var MONTHS = ['1月', '2月', '3月', '4月', '5月', '6月', '7月', '8月', '9月', '10月', '11月', '12月'];
  var ZH = {
    applyLabel: '确定',
    cancelLabel: '取消',
    fromLabel: '从',
    toLabel: '至',
    weekLabel: '周',
    customRangeLabel: '自定义',
    daysOfWeek: ['日', '一', '二', '三', '四', '五', '六'],
    monthNames: MONTHS,
    firstDay: 1
  };
  if (window.moment) {
    moment.locale('zh-cn', {
      months: '一月_二月_三月_四月_五月_六月_七月_八月_九月_十月_十一月_十二月'.split('_'),
      monthsShort: MONTHS,
      weekdays: '星期日_星期一_星期二_星期三_星期四_星期五_星期六'.split('_'),
      weekdaysShort: '周日_周一_周二_周三_周四_周五_周六'.split('_'),
      weekdaysMin: ZH.daysOfWeek,
      week: {dow: 1, doy: 4}
    });
  }

  // Flask-Admin loads daterangepicker.js again on form and list pages (replacing the plugin), so
  // the Chinese labels are put back each time it is (re)defined.
  function patchPicker() {
    var orig = $.fn.daterangepicker;
    if (!orig || orig.zh) return;
    var zh = function (options, cb) {
      var opts = $.extend({format: 'YYYY-MM-DD'}, options || {});
      opts.locale = $.extend({}, ZH, (options || {}).locale || {});
      opts.separator = opts.separator === ' to ' ? ' 至 ' : opts.separator;
      var out = orig.call(this, opts, cb);
      this.each(function () { withButtons($(this)); });
      return out;
    };
    zh.zh = true;
    $.fn.daterangepicker = zh;
  }

  function datePicker(el) {
    var $el = $(el);
    if ($el.data('daterangepicker') || !$.fn.daterangepicker) return;
    if (el.type === 'date') {  // the browser's own picker speaks the browser's language: use ours
      el.type = 'text';
      el.setAttribute('placeholder', el.getAttribute('placeholder') || '年-月-日');
    }
    el.setAttribute('autocomplete', 'off');
    $el.daterangepicker({singleDatePicker: true, showDropdowns: true, format: 'YYYY-MM-DD'});
  }

  // A one-date picker of daterangepicker 1.3 takes the clicked day at once and shows no buttons;
  // ours marks the day and waits for 【确定】 (or 【取消】), as the clerks' old system did.
  function withButtons($el) {
    var p = $el.data('daterangepicker');
    if (!p || !p.singleDatePicker || p.timePicker || p.zhButtons) return;
    p.zhButtons = true;
    var ranges = p.container.find('.ranges');
    ranges.find('.daterangepicker_start_input, .daterangepicker_end_input').hide();
    ranges.find('ul').hide();
    ranges.css({float: 'none', clear: 'both', width: 'auto', margin: '4px', textAlign: 'right'}).show();
    p.clickApply = function (e) {  // from a day's click (no event): mark it, apply only on 【确定】
      if (e) return Object.getPrototypeOf(p).clickApply.call(p, e);
      p.updateView();
    };
  }

  // a whole date typed (or pasted) into the field: the picker shows it and gets out of the way
  $(document).on('input', 'input', function () {
    var p = $(this).data('daterangepicker');
    if (p && /^\d{4}-\d{2}-\d{2}$/.test(this.value) && moment(this.value, 'YYYY-MM-DD', true).isValid()) {
      p.updateFromControl();
      p.hide();
    }
  });

  // the cursor leaving a date field (Tab, Enter, a click elsewhere) closes its picker
  $(document).on('focusin', function (e) {
    $('input').each(function () {
      var p = $(this).data('daterangepicker');
      if (p && p.isShowing && this !== e.target && !p.container[0].contains(e.target)) p.hide();
    });
  });

  $(document).on('adminFormReady', patchPicker);
  patchPicker();

  // ---- forms: cursor in the first field, Enter moves on --------------------------------------------
  function fields(form) {
    return Array.prototype.filter.call(form.elements, function (el) {
      return !el.disabled && el.type !== 'hidden' && el.tagName !== 'FIELDSET' && el.offsetParent !== null;
    });
  }

  function keyboard(form) {
    var list = fields(form);
    var wrong = form.querySelector('.is-invalid, .has-error input, .has-error select');
    var first = wrong || form.querySelector('[autofocus]') || list.filter(function (el) { return el.type !== 'submit' && el.type !== 'button'; })[0];
    if (first && (document.activeElement === document.body || !document.activeElement)) {
      first.focus();
      if (first.select && first.type === 'text' && wrong) first.select();
    }
    form.addEventListener('keydown', function (e) {
      if (e.key !== 'Enter' || e.isComposing || e.keyCode === 229) return;  // 229: a Chinese IME picking
      var el = e.target;
      if (el.tagName === 'TEXTAREA' || el.type === 'submit' || el.type === 'button' || el.tagName === 'A') return;
      var now = fields(form);
      var i = now.indexOf(el);
      if (i < 0) return;
      e.preventDefault();
      var next = now[i + 1];
      // after the last field: 【保存并创建下一个】 where the page has it (entering one after another),
      // else the first button; Enter on a button presses it
      if (next && (next.type === 'submit' || next.type === 'button')) {
        next = form.querySelector('[name=_add_another]') || next;
      }
      if (next) {
        next.focus();
        if (next.select && next.type === 'text') next.select();
      }
    });
  }

  // ---- the search panel: only the filled fields go into the address ---------------------------------
  function searchPanel(form) {
    form.addEventListener('submit', function () {
      Array.prototype.forEach.call(form.elements, function (el) {
        if (el.name && !el.value) el.disabled = true;
      });
    });
    window.addEventListener('pageshow', function () {  // back to this page: every field usable again
      Array.prototype.forEach.call(form.elements, function (el) { el.disabled = false; });
    });
  }

  $(function () {
    $('.navbar-toggler').attr('aria-label', '展开菜单');  // Flask-Admin writes it in English
    patchPicker();
    $('input[type=date]').each(function () { datePicker(this); });
    setTimeout(function () {  // after Flask-Admin's own form.js: whatever it left without a picker
      patchPicker();
      $('[data-role=datepicker]').each(function () { datePicker(this); });
    }, 0);
    $('form.admin-form, form.keyboard-form').each(function () { keyboard(this); });
    $('#search-panel').each(function () { searchPanel(this); });
  });
})(window.jQuery);
