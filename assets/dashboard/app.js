// The dashboard's behaviour, as one ES module (no inline script anywhere: the CSP forbids it).
// Pages work without it; with it the inbox and the conversation update live over the
// server-sent event stream, the inbox has keyboard navigation and the audit slider replays.

const body = document.body;

function say(text, state) {
  const el = document.getElementById('live-status');
  if (!el) return;
  el.textContent = text || '';
  el.dataset.state = state || '';
}

async function fetchDoc(url) {
  const resp = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'text/html' } });
  if (resp.status === 401) {
    say(body.dataset.liveGone, 'gone');
    throw new Error('signed out');
  }
  if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
  return new DOMParser().parseFromString(await resp.text(), 'text/html');
}

function busy(region) {
  const active = document.activeElement;
  if (active && active !== body && region.contains(active)) return true;
  return region.querySelector('[data-dirty]') !== null;
}

// Replaces every region of `root` whose key changed, except one the user is working in.
function swapRegions(root, doc) {
  let swapped = 0;
  for (const fresh of doc.querySelectorAll('[data-region]')) {
    const current = root.querySelector(`[data-region="${fresh.dataset.region}"]`);
    if (!current || current.dataset.key === fresh.dataset.key || busy(current)) continue;
    current.replaceWith(document.adoptNode(fresh));
    swapped += 1;
  }
  return swapped;
}

// Calls `run` once after a burst of calls, never two at a time.
function coalesce(run, delay = 40) {
  let timer = null;
  let running = false;
  let again = false;
  const go = async () => {
    if (running) { again = true; return; }
    running = true;
    try { await run(); } finally {
      running = false;
      if (again) { again = false; schedule(); }
    }
  };
  const schedule = () => { clearTimeout(timer); timer = setTimeout(go, delay); };
  return schedule;
}

// The live stream; EventSource resumes after a reconnect with Last-Event-ID by itself.
function live(onChange) {
  const source = new EventSource('/api/events/stream');
  let lost = false;
  source.onopen = () => {
    if (lost) { lost = false; onChange(null); }
    say('', 'on');
  };
  source.onerror = () => {
    lost = true;
    if (source.readyState === EventSource.CLOSED) say(body.dataset.liveGone, 'gone');
    else say(body.dataset.liveOff, 'off');
  };
  const handle = (e) => {
    let data = null;
    try { data = JSON.parse(e.data); } catch { data = null; }
    onChange(data);
  };
  for (const kind of ['conversation', 'message', 'suggestion', 'vehicle_lookup', 'price_lookup', 'lead']) {
    source.addEventListener(kind, handle);
  }
  source.addEventListener('reset', () => onChange(null));
  window.addEventListener('pagehide', () => source.close());
}

function liveRegions(container, relevant) {
  const refresh = coalesce(async () => {
    try {
      const doc = await fetchDoc(container.dataset.fragment);
      swapRegions(container, doc);
      container.dispatchEvent(new CustomEvent('regions-updated'));
    } catch (err) {
      if (err.message !== 'signed out') say(body.dataset.refreshFailed, 'off');
    }
  });
  live((change) => { if (!change || relevant(change)) refresh(); });
}

// ----- inbox -----

function inbox() {
  const container = document.getElementById('inbox');
  if (!container) return;
  let selected = null;
  const items = () => Array.from(container.querySelectorAll('li.conv'));
  const select = (li) => {
    for (const el of items()) el.classList.toggle('selected', el === li);
    if (li) {
      selected = li.dataset.id;
      li.scrollIntoView({ block: 'nearest' });
      li.querySelector('a')?.focus({ preventScroll: true });
    }
  };
  container.addEventListener('regions-updated', () => {
    const li = items().find((el) => el.dataset.id === selected);
    if (li) li.classList.add('selected');
  });
  document.addEventListener('keydown', (e) => {
    const tag = (e.target.tagName || '').toLowerCase();
    if (tag === 'input' || tag === 'textarea' || tag === 'select' || e.ctrlKey || e.metaKey || e.altKey) return;
    const list = items();
    if (!list.length && e.key !== '/') return;
    const index = list.findIndex((el) => el.dataset.id === selected);
    if (e.key === 'j' || e.key === 'ArrowDown') {
      e.preventDefault();
      select(list[Math.min(index + 1, list.length - 1)]);
    } else if (e.key === 'k' || e.key === 'ArrowUp') {
      e.preventDefault();
      select(list[Math.max(index - 1, 0)]);
    } else if (e.key === 'Enter' && index >= 0) {
      e.preventDefault();
      window.location.href = list[index].querySelector('a').href;
    } else if (e.key === '/') {
      e.preventDefault();
      document.getElementById('search')?.focus();
    }
  });
  liveRegions(container, (c) => c.entity === 'conversation');
}

// ----- conversation -----

function markRead(id) {
  const form = new FormData();
  form.set('csrf', body.dataset.csrf || '');
  fetch(`/c/${id}/read`, { method: 'POST', body: new URLSearchParams(form), credentials: 'same-origin' }).catch(() => {});
}

function conversation() {
  const container = document.querySelector('[data-live="conversation"]');
  if (!container) return;
  const id = container.dataset.conversation;
  // Typing in a form keeps its region from being replaced under the cursor.
  container.addEventListener('input', (e) => {
    const region = e.target.closest('[data-region]');
    if (region) e.target.dataset.dirty = '1';
  });
  const scrollDown = () => {
    const t = container.querySelector('.timeline');
    if (t) t.scrollTop = t.scrollHeight;
  };
  scrollDown();
  container.addEventListener('regions-updated', scrollDown);
  if (Number(container.dataset.unread || '0') > 0) markRead(id);
  liveRegions(container, (c) => c.conversation_id === id || c.id === id);
  // One submission per click: a second click while the first is on its way sends nothing.
  container.addEventListener('submit', (e) => {
    const form = e.target;
    if (form.dataset.sent) { e.preventDefault(); return; }
    form.dataset.sent = '1';
    for (const b of form.querySelectorAll('button')) b.setAttribute('aria-busy', 'true');
  });
}

// ----- audit -----

function audit() {
  const root = document.querySelector('[data-audit]');
  if (!root) return;
  const slider = document.getElementById('seq');
  const out = document.getElementById('seq-out');
  const target = document.getElementById('audit-state');
  const show = coalesce(async () => {
    const seq = slider.value;
    try {
      const doc = await fetchDoc(`${root.dataset.stateUrl}?seq=${encodeURIComponent(seq)}`);
      const fresh = doc.querySelector('[data-region="state"]');
      if (fresh) target.replaceChildren(document.adoptNode(fresh));
      for (const row of root.querySelectorAll('tr[data-seq]')) {
        row.classList.toggle('future', Number(row.dataset.seq) > Number(seq));
      }
      const url = new URL(window.location.href);
      url.searchParams.set('seq', seq);
      history.replaceState(null, '', url);
      say('', '');
    } catch {
      say(body.dataset.refreshFailed, 'off');
    }
  }, 60);
  slider.addEventListener('input', () => { out.textContent = `#${slider.value}`; show(); });
  slider.addEventListener('change', show);
}

// ----- leads board -----

function leads() {
  const board = document.getElementById('board');
  if (!board) return;
  // The board is a whole page of columns: a lead change reloads it (cheap, server-rendered) unless
  // the operator is in the filter form.
  const refresh = coalesce(async () => {
    try {
      const doc = await fetchDoc(window.location.href);
      const fresh = doc.getElementById('board');
      if (fresh && fresh.dataset.key !== board.dataset.key) {
        board.replaceWith(document.adoptNode(fresh));
      }
    } catch (err) {
      if (err.message !== 'signed out') say(body.dataset.refreshFailed, 'off');
    }
  }, 200);
  live((change) => { if (!change || change.entity === 'lead') refresh(); });
}

// ----- settings: live template preview through /api/price-templates/preview -----

function settings() {
  const form = document.getElementById('price-form');
  if (!form) return;
  for (const area of form.querySelectorAll('textarea[data-kind]')) {
    const out = document.getElementById(`preview-${area.dataset.kind}`);
    const show = coalesce(async () => {
      try {
        const resp = await fetch('/api/price-templates/preview', {
          method: 'POST',
          credentials: 'same-origin',
          headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': body.dataset.csrf || '' },
          body: JSON.stringify({ kind: area.dataset.kind, content: area.value }),
        });
        const data = await resp.json().catch(() => ({}));
        if (resp.ok) {
          out.textContent = data.rendered || '';
          out.classList.remove('fail');
        } else {
          out.textContent = `${form.dataset.refused} ${(data.error && data.error.message) || resp.status}`;
          out.classList.add('fail');
        }
        say('', '');
      } catch {
        say(body.dataset.refreshFailed, 'off');
      }
    }, 250);
    area.addEventListener('input', show);
  }
}

switch (body.dataset.page) {
  case 'inbox': inbox(); break;
  case 'conversation': conversation(); break;
  case 'audit': audit(); break;
  case 'leads': leads(); break;
  case 'settings': settings(); break;
  default: break;
}
