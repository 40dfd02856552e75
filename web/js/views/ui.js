// ui.js: toasts, dialogs, avatars, form helpers shared by the views.
import { h, add } from '../dom.js';
import { hueOf, initials, displayName } from '../util.js';
import { S } from '../state.js';

export function toast(text, kind = 'info') {
  const box = document.getElementById('toasts');
  if (!box) return;
  const t = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : null }, text);
  box.appendChild(t);
  setTimeout(() => t.remove(), kind === 'error' ? 8000 : 5000);
}

// A modal <dialog>: focus stays inside, Escape closes, focus returns to
// what had it before. build(body, close) fills it.
export function openDialog(title, build, { wide = false, onClose } = {}) {
  const opener = document.activeElement;
  const id = 'dlg-' + Math.random().toString(36).slice(2);
  const body = h('div', { class: 'dlg-body' });
  const dlg = h('dialog', { class: 'dlg' + (wide ? ' dlg-wide' : ''), 'aria-labelledby': id },
    h('header', { class: 'dlg-head' },
      h('h2', { id, text: title }),
      h('button', { class: 'icon-btn', type: 'button', 'aria-label': 'Close', onclick: () => dlg.close() }, '✕')),
    body);
  const close = () => dlg.open && dlg.close();
  // Escape closes even from a search field (which would only clear itself)
  dlg.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') {
      ev.preventDefault();
      close();
    }
  });
  dlg.addEventListener('close', () => {
    dlg.remove();
    if (onClose) onClose();
    if (opener && opener.isConnected && opener.focus) opener.focus();
  });
  document.body.appendChild(dlg);
  build(body, close);
  dlg.showModal();
  const first = body.querySelector('[autofocus], input, select, textarea, button');
  if (first) first.focus();
  return { dlg, close, body };
}

export function confirmDialog(text, okLabel = 'OK', danger = false) {
  return new Promise((resolve) => {
    let answer = false;
    openDialog('Please confirm', (body, close) => {
      add(body, [
        h('p', { text }),
        h('div', { class: 'row end' },
          h('button', { type: 'button', class: 'btn', onclick: close }, 'Cancel'),
          h('button', { type: 'button', class: 'btn ' + (danger ? 'btn-danger' : 'btn-primary'),
            onclick: () => { answer = true; close(); } }, okLabel)),
      ]);
    }, { onClose: () => resolve(answer) });
  });
}

export function avatar(user, size = '') {
  const name = displayName(user);
  const el = h('span', { class: `avatar ${size}`, 'aria-hidden': 'true', vars: { '--hue': String(hueOf(user && user.name ? user.name : name)) } },
    initials(name));
  if (user && user.avatar_url && /^https:\/\//i.test(user.avatar_url)) {
    const img = h('img', { src: user.avatar_url, alt: '', loading: 'lazy', referrerpolicy: 'no-referrer' });
    img.addEventListener('error', () => img.remove());
    el.appendChild(img);
  }
  if (user && user.id) {
    el.dataset.presence = String(user.id);
    if (S.online.has(user.id)) el.classList.add('online');
  }
  return el;
}

// Presence dots follow S.online without re-rendering anything.
export function refreshPresence(root = document) {
  for (const el of root.querySelectorAll('[data-presence]')) {
    el.classList.toggle('online', S.online.has(Number(el.dataset.presence)));
  }
}

export function field(label, input, hint) {
  const id = input.id || (input.id = 'f-' + Math.random().toString(36).slice(2));
  const hintEl = hint ? h('small', { class: 'hint', id: id + '-hint', text: hint }) : null;
  if (hintEl) input.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: id, text: label }), input, hintEl);
}

export function errorBox() {
  return h('p', { class: 'form-error', role: 'alert', hidden: true });
}

export function showError(box, e) {
  box.hidden = !e;
  box.textContent = e ? (typeof e === 'string' ? e : errorText(e)) : '';
}

export function errorText(e) {
  if (!e) return '';
  if (e.network) return 'No connection to the server. Try again.';
  if (e.status === 429) return `Too many requests. Try again in ${e.retryAfter || 'a few'} seconds.`;
  const f = e.field ? ` (${e.field.replace(/_/g, ' ')})` : '';
  return (e.message || 'Something went wrong') + f;
}

// Disable a form's controls while an async action runs.
export async function busy(form, fn) {
  const ctrls = [...form.querySelectorAll('button, input, select, textarea')];
  const was = ctrls.map((c) => c.disabled);
  ctrls.forEach((c) => { c.disabled = true; });
  form.setAttribute('aria-busy', 'true');
  try {
    return await fn();
  } finally {
    ctrls.forEach((c, i) => { c.disabled = was[i]; });
    form.removeAttribute('aria-busy');
  }
}
