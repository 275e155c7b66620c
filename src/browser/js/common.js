// Helpers shared by every script. WebDriver runs the script as a function body, so the first
// argument is `arguments[0]`.
var A = arguments[0] || {};
function visible(el) {
  if (!el || !el.isConnected) return false;
  var st = window.getComputedStyle(el);
  if (st.display === 'none' || st.visibility === 'hidden') return false;
  var r = el.getBoundingClientRect();
  return r.width > 0 && r.height > 0;
}
function txt(el) {
  if (!el) return '';
  var t = el.innerText !== undefined ? el.innerText : el.textContent;
  return String(t || '').replace(/\s+/g, ' ').trim();
}
function low(s) { return String(s || '').toLowerCase().replace(/ё/g, 'е'); }
function all(root, sels) {
  var out = [];
  (sels || []).forEach(function (s) {
    try { root.querySelectorAll(s).forEach(function (e) { if (out.indexOf(e) < 0) out.push(e); }); } catch (e) { }
  });
  return out;
}
function firstOf(sels) {
  for (var i = 0; i < (sels || []).length; i++) {
    try { var e = document.querySelector(sels[i]); if (e) return e; } catch (x) { }
  }
  return null;
}
function byToken(t) { return t ? document.querySelector('[data-aisales-target="' + t + '"]') : null; }
function mark(el) {
  var t = el.getAttribute('data-aisales-target');
  if (!t) { t = 't' + Math.random().toString(36).slice(2, 10); el.setAttribute('data-aisales-target', t); }
  return t;
}
function describe(el) {
  return {
    token: mark(el), text: txt(el).slice(0, 200), tag: el.tagName.toLowerCase(),
    expanded: el.getAttribute('aria-expanded'), selected: el.getAttribute('aria-selected'),
    visible: visible(el)
  };
}
function rowsOf(table) {
  return Array.from(table.querySelectorAll('tr')).map(function (tr) {
    return Array.from(tr.querySelectorAll('th,td')).map(function (c) { return txt(c).slice(0, 500); });
  }).filter(function (r) { return r.length > 0; }).slice(0, 80);
}
function matchesAny(text, patterns) {
  for (var i = 0; i < (patterns || []).length; i++) {
    try { if (new RegExp(patterns[i], 'i').test(text)) return patterns[i]; } catch (e) { }
  }
  return null;
}
