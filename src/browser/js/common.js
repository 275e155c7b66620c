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
// The first pattern that matches, with the matched words and a little of what surrounds them.
function matchText(text, patterns) {
  for (var i = 0; i < (patterns || []).length; i++) {
    try {
      var m = new RegExp(patterns[i], 'i').exec(text);
      if (m) return text.slice(Math.max(0, m.index - 30), m.index + m[0].length + 30).trim();
    } catch (e) { }
  }
  return null;
}
function matchesAny(text, patterns) {
  for (var i = 0; i < (patterns || []).length; i++) {
    try { if (new RegExp(patterns[i], 'i').test(text)) return patterns[i]; } catch (e) { }
  }
  return null;
}
// Shown to a user: rendered (no display:none, visibility:hidden, opacity 0, aria-hidden), not
// clipped away (screen-reader-only text, collapsed overflow:hidden boxes) and not moved off the
// page. Results per element are cached for the run of one script.
var SHOWN = new Map();
function boxShown(el) {
  var r = el.getBoundingClientRect();
  if (r.width <= 1 || r.height <= 1) return false;
  var x = r.left + window.scrollX, y = r.top + window.scrollY, de = document.documentElement;
  if (x + r.width <= 0 || y + r.height <= 0) return false;
  return x < Math.max(de.scrollWidth, de.clientWidth) && y < Math.max(de.scrollHeight, de.clientHeight);
}
function chainShown(el) {
  if (!el || el.nodeType !== 1) return true;
  if (SHOWN.has(el)) return SHOWN.get(el);
  var st = window.getComputedStyle(el), ok = true;
  if (st.display === 'none' || st.visibility === 'hidden' || st.visibility === 'collapse') ok = false;
  else if (parseFloat(st.opacity) === 0 || el.getAttribute('aria-hidden') === 'true') ok = false;
  else if (/^rect\(\s*0(px)?[\s,]+0(px)?[\s,]+0(px)?[\s,]+0(px)?\s*\)$/.test(st.clip || '')) ok = false;
  else if (/inset\(\s*(50|100)%/.test(st.clipPath || '')) ok = false;
  else if (/hidden|clip/.test(st.overflow + ' ' + st.overflowX + ' ' + st.overflowY) && el !== document.body
    && el !== document.documentElement) {
    var r = el.getBoundingClientRect();
    if (r.width <= 1 || r.height <= 1) ok = false;
  }
  if (ok) ok = chainShown(el.parentElement);
  SHOWN.set(el, ok);
  return ok;
}
function shown(el) { return !!el && el.isConnected && chainShown(el) && boxShown(el); }
// The text a user sees under `root`: text nodes of shown elements only (hidden templates, scripts,
// screen-reader-only and off-screen phrases do not count).
function visibleText(root) {
  root = root || document.body;
  if (!root) return '';
  var out = [], walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT), n, seen = 0;
  while ((n = walker.nextNode()) && seen < 30000) {
    seen++;
    var t = n.nodeValue;
    if (!t || !/\S/.test(t)) continue;
    var p = n.parentElement;
    if (!p || /^(SCRIPT|STYLE|NOSCRIPT|TEMPLATE|TITLE)$/.test(p.tagName)) continue;
    if (!shown(p)) continue;
    var st = window.getComputedStyle(p);
    if (parseFloat(st.fontSize) === 0 || st.color === 'transparent' || /rgba\([^)]*,\s*0\)$/.test(st.color)) continue;
    out.push(t);
  }
  return out.join(' ').replace(/\s+/g, ' ').trim();
}
// Counts DOM changes a click causes (ripples, focus classes and our own marks excluded), and the
// time of the last added or removed element.
function watchMutations() {
  if (window.__aisalesObs) return;
  window.__aisalesMuts = 0;
  window.__aisalesLastMut = performance.now();
  window.__aisalesObs = new MutationObserver(function (list) {
    list.forEach(function (m) {
      var t = m.target && m.target.nodeType === 1 ? m.target : m.target && m.target.parentElement;
      if (t && t.closest && t.closest('[class*="Ripple"], [class*="ripple"]')) return;
      if (m.type === 'attributes') {
        var a = m.attributeName || '';
        if (a.indexOf('data-aisales') === 0) return;
        if (a === 'class' && t && t.hasAttribute('data-aisales-clicked')) return;
        if (['class', 'style', 'hidden', 'open', 'href'].indexOf(a) < 0 && a.indexOf('aria-') !== 0) return;
      }
      if (m.type === 'childList') {
        var nodes = Array.from(m.addedNodes).concat(Array.from(m.removedNodes));
        if (nodes.length && nodes.every(function (x) { return x.nodeType === 1 && /ripple/i.test(String(x.className)); })) return;
        if (nodes.length) window.__aisalesLastMut = performance.now();
      }
      window.__aisalesMuts++;
    });
  });
  window.__aisalesObs.observe(document.documentElement, { subtree: true, childList: true, attributes: true, characterData: true });
}
