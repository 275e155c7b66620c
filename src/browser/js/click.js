// `js`: plain element.click(). `dispatch`: mousedown, mouseup, click as a user would produce
// (the catalogue's MUI tabs and accordions ignore a bare click()). The DOM-change counter restarts,
// so the caller can tell a click that did nothing from one whose effect is still coming.
var el = byToken(A.token);
if (!el) return false;
watchMutations();
try { el.scrollIntoView({ block: 'center', inline: 'nearest' }); } catch (e) { }
el.setAttribute('data-aisales-clicked', '1');
window.__aisalesMuts = 0;
if (A.strategy === 'js') { el.click(); return true; }
if (A.strategy === 'reset') return true;
var r = el.getBoundingClientRect();
var base = { bubbles: true, cancelable: true, composed: true, view: window, button: 0, detail: 1,
  clientX: r.left + r.width / 2, clientY: r.top + r.height / 2 };
el.dispatchEvent(new MouseEvent('mousedown', Object.assign({ buttons: 1 }, base)));
el.dispatchEvent(new MouseEvent('mouseup', base));
el.dispatchEvent(new MouseEvent('click', base));
return true;
