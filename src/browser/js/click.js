// `js`: plain element.click(). `dispatch`: mousedown, mouseup, click as a user would produce
// (the catalogue's MUI tabs and accordions ignore a bare click()).
var el = byToken(A.token);
if (!el) return false;
try { el.scrollIntoView({ block: 'center', inline: 'nearest' }); } catch (e) { }
if (A.strategy === 'js') { el.click(); return true; }
var r = el.getBoundingClientRect();
var base = { bubbles: true, cancelable: true, composed: true, view: window, button: 0, detail: 1,
  clientX: r.left + r.width / 2, clientY: r.top + r.height / 2 };
el.dispatchEvent(new MouseEvent('mousedown', Object.assign({ buttons: 1 }, base)));
el.dispatchEvent(new MouseEvent('mouseup', base));
el.dispatchEvent(new MouseEvent('click', base));
return true;
