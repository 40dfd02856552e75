// dom.js: the only way the client builds the page. Elements come from
// createElement, text from text nodes: nothing a user wrote is ever parsed
// as HTML. There is deliberately no helper that takes markup.

// http(s):, #fragment, or a same-origin path: a "/" not followed by a
// second "/" or a backslash (browsers read "//x" and "/\x" as another host)
const SAFE_URL = /^(https?:|#|\/(?![\/\\]))/i;

// h('button', {class: 'x', onclick: fn, 'aria-label': 'Close'}, 'text', child)
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const k of Object.keys(props)) {
      const v = props[k];
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'vars') for (const [n, x] of Object.entries(v)) el.style.setProperty(n, x);
      else if (k === 'value' || k === 'checked' || k === 'indeterminate') el[k] = v;
      else if (k.startsWith('on')) {
        if (typeof v !== 'function') throw new TypeError(`${k} must be a function`);
        el.addEventListener(k.slice(2), v);
      } else if (k === 'href' || k === 'src' || k === 'action') {
        const s = String(v);
        if (SAFE_URL.test(s)) el.setAttribute(k, s);
      } else if (k === 'style' || k === 'srcdoc' || k === 'innerHTML') {
        throw new TypeError(`h(): ${k} is not allowed`);
      } else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  add(el, children);
  return el;
}

export function add(el, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) add(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  clear(el);
  return add(el, children);
}

// Keyed list update: items are {key, sig, render()}. An element whose key
// and sig are unchanged is kept (with its focus and state); a changed one is
// rendered again; order follows items. Returns the kept/new element by key.
export function reconcile(parent, items) {
  const old = new Map();
  for (const el of parent.children) if (el._key !== undefined) old.set(el._key, el);
  const focused = document.activeElement;
  let focusKey = null;
  for (const [k, el] of old) if (el === focused || el.contains(focused)) focusKey = k;
  const byKey = new Map();
  let cursor = parent.firstChild;
  for (const it of items) {
    let el = old.get(it.key);
    if (el && el._sig === it.sig) old.delete(it.key);
    else {
      el = it.render();
      el._key = it.key;
      el._sig = it.sig;
    }
    byKey.set(it.key, el);
    if (el === cursor) cursor = cursor.nextSibling;
    else parent.insertBefore(el, cursor);
  }
  for (const el of old.values()) el.remove();
  if (focusKey !== null && !parent.contains(document.activeElement)) {
    const el = byKey.get(focusKey);
    if (el) el.focus({ preventScroll: true });
  }
  return byKey;
}

// Announce text to screen readers through the polite live region.
export function announce(text) {
  const r = document.getElementById('sr-announce');
  if (!r) return;
  r.textContent = '';
  setTimeout(() => { r.textContent = text; }, 30);
}

// Small line icons, drawn with the SVG DOM (no markup, no icon font, and no
// dependency on an emoji font being installed).
const ICONS = {
  react: ['M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18', 'M8 14c1 1.5 2.3 2.2 4 2.2s3-.7 4-2.2', 'M9 9.5v.5', 'M15 9.5v.5'],
  reply: ['M10 7L4 12l6 5', 'M4 12h10a6 6 0 0 1 6 6v1'],
  edit: ['M4 20l1-4L16 5l3 3L8 19z', 'M14 7l3 3'],
  pin: ['M9 3h6l-1 6 4 4H6l4-4z', 'M12 13v8'],
  lock: ['M6 11h12v9H6z', 'M8.5 11V8a3.5 3.5 0 0 1 7 0v3'],
  trash: ['M4 7h16', 'M9 7V4h6v3', 'M6 7l1 13h10l1-13', 'M10 11v6', 'M14 11v6'],
};
const SVG = 'http://www.w3.org/2000/svg';
export function icon(name) {
  const svg = document.createElementNS(SVG, 'svg');
  for (const [k, v] of Object.entries({ viewBox: '0 0 24 24', width: '18', height: '18', fill: 'none', stroke: 'currentColor',
    'stroke-width': '2', 'stroke-linecap': 'round', 'stroke-linejoin': 'round', 'aria-hidden': 'true', focusable: 'false' })) {
    svg.setAttribute(k, v);
  }
  for (const d of ICONS[name] || []) {
    const p = document.createElementNS(SVG, 'path');
    p.setAttribute('d', d);
    svg.appendChild(p);
  }
  return svg;
}
