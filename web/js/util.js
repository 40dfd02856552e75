// util.js: formatting and small pure helpers.

export const DEFAULT_REACTIONS = ['heart', 'laugh', 'fire', 'sad', 'thumbsup', 'thumbsdown', 'star', 'question'];

const GLYPHS = {
  heart: '❤️', laugh: '😂', fire: '🔥', sad: '😢', thumbsup: '👍', thumbsdown: '👎',
  star: '⭐', question: '❓', smile: '🙂', tada: '🎉', eyes: '👀', rocket: '🚀',
  check: '✅', clap: '👏', thinking: '🤔', wave: '👋', ok: '👌', pray: '🙏',
  hundred: '💯', party: '🥳', cry: '😭', angry: '😠', wow: '😮', cool: '😎',
};
export const glyph = (name) => GLYPHS[name] || `:${name}:`;
export const emojiLabel = (name) => name.replace(/_/g, ' ');

export function displayName(u) {
  if (!u) return 'Unknown';
  return u.display_name || u.name || 'Unknown';
}

// A stable hue per name: FNV-1a over the lower-cased name, mixed.
export function hueOf(name) {
  let x = 0x811c9dc5;
  const s = String(name || '?').toLowerCase();
  for (let i = 0; i < s.length; i++) {
    x ^= s.charCodeAt(i);
    x = Math.imul(x, 0x01000193) >>> 0;
  }
  // finish with murmur3's mixer so short names spread over the wheel, then
  // use one of 18 hues 20 degrees apart (neighbours stay distinguishable)
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x85ebca6b) >>> 0;
  x = (x ^ (x >>> 13)) >>> 0;
  x = Math.imul(x, 0xc2b2ae35) >>> 0;
  x = (x ^ (x >>> 16)) >>> 0;
  return (x % 18) * 20;
}

export function initials(name) {
  const words = String(name || '?').trim().split(/\s+/).filter(Boolean);
  const first = (w) => Array.from(w)[0] || '';
  if (!words.length) return '?';
  const s = words.length > 1 ? first(words[0]) + first(words[words.length - 1]) : Array.from(words[0]).slice(0, 2).join('');
  return s.toUpperCase();
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

export const fmtTime = (iso) => timeFmt.format(new Date(iso));
export const fmtFull = (iso) => (iso ? fullFmt.format(new Date(iso)) : '');

export function dayKey(iso) {
  const d = new Date(iso);
  return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
}

export function fmtDay(iso) {
  const d = new Date(iso);
  const today = new Date();
  const y = new Date(today);
  y.setDate(today.getDate() - 1);
  if (dayKey(d) === dayKey(today)) return 'Today';
  if (dayKey(d) === dayKey(y)) return 'Yesterday';
  return dayFmt.format(d);
}

// client_msg_id: 22 characters of [A-Za-z0-9_-] (crypto.getRandomValues
// works outside secure contexts too, unlike randomUUID).
export function newClientId() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return btoa(String.fromCharCode(...b)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

// Split text into strings and {url} parts; only http(s) URLs are links.
const URL_RE = /\bhttps?:\/\/[^\s<>"']+/gi;
export function splitLinks(text) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(URL_RE)) {
    let url = m[0].replace(/[.,;:!?)\]]+$/, '');
    if (m.index > last) out.push(text.slice(last, m.index));
    let ok = false;
    try { ok = ['http:', 'https:'].includes(new URL(url).protocol); } catch { ok = false; }
    out.push(ok ? { url } : url);
    last = m.index + url.length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

// Plain text of a message for previews and the sidebar.
export function messageText(m) {
  if (!m) return '';
  if (m.deleted) return 'Message deleted';
  if (m.type === 'text') return m.content || '';
  if (m.type === 'system') return (m.content && m.content.text) || '';
  if (m.type === 'visitor') return (m.content && m.content.text) || '';
  if (m.type === 'drawing') return 'Drawing';
  if (m.type === 'image') return (m.content && m.content.alt) || 'Image';
  return '';
}

export function debounce(fn, ms) {
  let t = null;
  return (...a) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...a), ms);
  };
}

export function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}
