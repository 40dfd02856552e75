// message.js: one message of the timeline as elements (never HTML).
import { h, icon } from '../dom.js';
import { S } from '../state.js';
import { displayName, fmtTime, fmtFull, glyph, emojiLabel, splitLinks, plural } from '../util.js';
import { avatar } from './ui.js';

const STATUS_TEXT = { queued: 'Waiting for connection', sending: 'Sending…', sent: 'Sent', failed: 'Not sent' };

function textNodes(text) {
  return splitLinks(text).map((p) => (typeof p === 'string' ? p
    : h('a', { href: p.url, target: '_blank', rel: 'noopener noreferrer nofollow' }, p.url)));
}

function drawing(content) {
  const w = content.width, hgt = content.height;
  const scale = Math.min(1, 320 / w, 240 / hgt);
  const c = h('canvas', { width: Math.max(1, Math.round(w * scale)), height: Math.max(1, Math.round(hgt * scale)),
    class: 'drawing', role: 'img', 'aria-label': 'Drawing' });
  const ctx = c.getContext('2d');
  if (!ctx) return c;
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, c.width, c.height);
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  for (const op of content.operations || []) {
    ctx.strokeStyle = op.tool === 'eraser' ? '#fff' : /^#[0-9a-f]{6}$/i.test(op.color) ? op.color : '#000';
    ctx.lineWidth = Math.max(1, op.size * scale);
    ctx.beginPath();
    (op.points || []).forEach(([x, y], i) => (i ? ctx.lineTo(x * scale, y * scale) : ctx.moveTo(x * scale, y * scale)));
    if ((op.points || []).length === 1) ctx.lineTo(op.points[0][0] * scale + 0.1, op.points[0][1] * scale);
    ctx.stroke();
  }
  return c;
}

function body(m, edited) {
  if (m.deleted) return h('p', { class: 'msg-text deleted-text' }, 'This message was deleted');
  switch (m.type) {
    case 'text': return h('div', { class: 'msg-body' }, h('p', { class: 'msg-text' }, textNodes(m.content || '')), edited);
    case 'visitor': {
      const c = m.content || {};
      return h('div', { class: 'msg-text' },
        h('span', { class: 'visitor-from' }, `Visitor ${c.name || ''} <${c.email || ''}>: `),
        textNodes(c.text || ''));
    }
    case 'drawing': return m.content ? drawing(m.content) : h('p', { class: 'msg-text' }, 'Drawing');
    case 'image': return h('p', { class: 'msg-text muted' }, `Image${m.content && m.content.alt ? ': ' + m.content.alt : ''}`);
    default: return h('p', { class: 'msg-text muted' }, 'Unsupported message');
  }
}

export function renderDivider(label) {
  return h('li', { class: 'day-divider', role: 'separator', 'aria-label': label }, h('span', { text: label }));
}

// o: {grouped, status, error, cid, active, picker, canEdit, canDelete, readOnly, act(name, m, arg)}
export function renderMessage(m, o) {
  const meId = S.me && S.me.id;
  if (m.type === 'system') {
    return h('li', { class: 'msg msg-system', dataset: { id: m.id }, tabindex: o.active ? 0 : -1 },
      h('span', { text: (m.content && m.content.text) || '' }),
      h('time', { datetime: m.created_at, title: fmtFull(m.created_at) }, fmtTime(m.created_at)));
  }
  const author = m.author || (m.type === 'visitor' ? { name: 'Visitor' } : { name: 'Unknown' });
  const name = displayName(author);
  const mine = author.id === meId;
  const mentionsMe = (m.mentions || []).includes(meId);
  const cls = ['msg'];
  if (o.grouped) cls.push('grouped');
  if (mine) cls.push('mine');
  if (mentionsMe) cls.push('mentions-me');
  if (m.deleted) cls.push('deleted');
  if (m.pinned) cls.push('pinned');
  const tab = o.active ? 0 : -1;
  const act = (name_, arg) => (ev) => { ev.stopPropagation(); o.act(name_, m, arg); };

  const head = h('div', { class: 'msg-head' },
    h('span', { class: 'author', text: name }),
    h('time', { datetime: m.created_at, title: fmtFull(m.created_at) }, fmtTime(m.created_at)),
    m.pinned ? h('span', { class: 'tag pin-tag' }, 'Pinned') : null);

  let reply = null;
  if (m.reply_to) {
    const r = m.reply_to;
    reply = h('button', { type: 'button', class: 'reply-preview', tabindex: tab, onclick: act('jump', r.id),
      'aria-label': `In reply to ${r.author_name || 'a message'}: ${r.deleted ? 'deleted message' : r.excerpt}` },
    h('span', { class: 'reply-author', text: r.author_name || '' }),
    h('span', { class: 'reply-excerpt', text: r.deleted ? 'Message deleted' : r.excerpt }));
  }

  const chips = (m.reactions || []).filter((r) => r.count > 0).map((r) => {
    const minePressed = (r.user_ids || []).includes(meId);
    return h('button', { type: 'button', class: 'chip', tabindex: tab, 'aria-pressed': minePressed ? 'true' : 'false',
      'aria-label': `${emojiLabel(r.emoji)}: ${plural(r.count, 'person', 'people')}${minePressed ? ', including you' : ''}`,
      title: (r.user_ids || []).map((id) => displayName(S.users.get(id)) || 'someone').join(', '),
      dataset: { emoji: r.emoji }, disabled: o.readOnly || !m.id, onclick: act('react', r.emoji) },
    h('span', { 'aria-hidden': 'true' }, glyph(r.emoji)), h('span', { class: 'count', 'aria-hidden': 'true' }, String(r.count)));
  });

  let picker = null;
  if (o.picker && m.id && !m.deleted) {
    picker = h('div', { class: 'picker', role: 'group', 'aria-label': 'Add a reaction' },
      S.reactions.map((e) => h('button', { type: 'button', class: 'chip', 'aria-label': emojiLabel(e), title: emojiLabel(e),
        dataset: { emoji: e }, onclick: act('react', e) }, glyph(e))));
  }

  let status = null;
  if (o.status) {
    status = h('div', { class: 'msg-status', dataset: { status: o.status } },
      h('span', { class: 'status-text', text: STATUS_TEXT[o.status] + (o.status === 'failed' && o.error ? `: ${o.error}` : '') }),
      o.status === 'failed' ? h('button', { type: 'button', class: 'btn btn-small', onclick: act('retry', o.cid) }, 'Retry') : null,
      o.status === 'failed' || o.status === 'queued'
        ? h('button', { type: 'button', class: 'btn btn-small btn-link', onclick: act('discard', o.cid) }, 'Discard') : null);
  }

  let tools = null;
  if (m.id && !m.deleted) {
    const b = (label, ic, name_, extra = {}) => h('button', { type: 'button', class: 'icon-btn', tabindex: tab,
      'aria-label': label, title: label, onclick: act(name_), ...extra }, icon(ic));
    tools = h('div', { class: 'msg-tools', role: 'toolbar', 'aria-label': 'Message actions' },
      o.readOnly ? null : b('Add reaction', 'react', 'picker', { 'aria-expanded': o.picker ? 'true' : 'false' }),
      o.readOnly ? null : b('Reply', 'reply', 'reply'),
      o.canEdit ? b('Edit', 'edit', 'edit') : null,
      o.readOnly ? null : b(m.pinned ? 'Unpin' : 'Pin', 'pin', 'pin'),
      o.canDelete ? b('Delete', 'trash', 'delete') : null);
  }

  const li = h('li', { class: cls.join(' '), dataset: { id: m.id || '', cid: o.cid || '' }, tabindex: tab },
  o.grouped ? h('span', { class: 'avatar-gap', 'aria-hidden': 'true' }) : avatar(author),
  h('div', { class: 'msg-main' },
    o.grouped ? h('div', { class: 'msg-head sr-only' }, h('span', { class: 'author', text: name }), ' ', fmtTime(m.created_at)) : head,
    reply,
    body(m, m.edited_at && !m.deleted ? h('span', { class: 'edited', title: 'Edited ' + fmtFull(m.edited_at) }, '(edited)') : null),
    chips.length ? h('div', { class: 'reactions', role: 'group', 'aria-label': 'Reactions' }, chips) : null,
    picker,
    status),
  tools);
  if (o.status) li.dataset.status = o.status;
  return li;
}
