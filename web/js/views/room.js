// room.js: one open room: header, timeline, typing line and composer.
import { h, replace, reconcile, announce } from '../dom.js';
import { put, del, patch } from '../api.js';
import {
  S, on, roomMsgs, loadLatest, loadAround, loadMore, markRead, roomTitle, loadMembers, patchMessage,
} from '../state.js';
import { dayKey, fmtDay, displayName, plural } from '../util.js';
import { pendingFor, send, retry, discard } from '../outbox.js';
import { renderMessage, renderDivider } from './message.js';
import { createComposer } from './composer.js';
import { toast, confirmDialog, errorText, refreshPresence } from './ui.js';

const GROUP_MS = 5 * 60 * 1000;

export function mountRoom(main, roomId, { jumpTo, onInfo, onPins, onBack } = {}) {
  const room0 = S.rooms.get(roomId);
  const title = room0 ? (room0.kind === 'dm' ? roomTitle(room0) : '#' + roomTitle(room0)) : 'Room';
  const v = { active: null, picker: null, stick: true, destroyed: false };

  const h2 = h('h2', { id: 'room-title', class: 'room-title', tabindex: -1 });
  const topic = h('p', { class: 'room-topic' });
  const meta = h('span', { class: 'room-meta muted' });
  const head = h('header', { class: 'room-head' },
    h('button', { type: 'button', class: 'icon-btn back-btn', 'aria-label': 'Back to rooms', onclick: onBack }, '←'),
    h('div', { class: 'room-head-text' }, h2, topic),
    meta,
    h('button', { type: 'button', class: 'btn btn-small', onclick: () => onPins(roomId) }, 'Pins'),
    h('button', { type: 'button', class: 'btn btn-small', onclick: () => onInfo(roomId) }, 'Room info'));

  const edgeTop = h('p', { class: 'timeline-edge', role: 'status' });
  const list = h('ol', { class: 'msgs', role: 'log', 'aria-live': 'polite', 'aria-relevant': 'additions',
    'aria-labelledby': 'room-title' });
  const edgeBottom = h('p', { class: 'timeline-edge', hidden: true });
  const timeline = h('div', { class: 'timeline' }, edgeTop, list, edgeBottom);
  const jumpBtn = h('button', { type: 'button', class: 'jump-new btn btn-small', hidden: true,
    onclick: () => jumpLatest() }, 'Jump to newest ↓');
  const typingLine = h('div', { class: 'typing-line', 'aria-live': 'polite' });
  const composer = createComposer({
    roomTitle: title,
    members: async () => (await loadMembers(roomId)).map((m) => m.user).filter((u) => !S.me || u.id !== S.me.id),
    onSend: (text, replyTo) => {
      v.stick = true;
      send(roomId, text, replyTo);
    },
    onEdit: async (m, text) => {
      try {
        const doc = await patch(`/messages/${m.id}`, { content: text });
        patchMessage(roomId, m.id, (x) => Object.assign(x, doc));
        return true;
      } catch (e) {
        toast('Could not edit: ' + errorText(e), 'error');
        return false;
      }
    },
    onEditLast: () => {
      const store = roomMsgs(roomId);
      for (let i = store.ids.length - 1; i >= 0 && i >= store.ids.length - 50; i--) {
        const m = store.byId.get(store.ids[i]);
        if (m.author && S.me && m.author.id === S.me.id && m.type === 'text' && !m.deleted) {
          composer.edit(m);
          return true;
        }
      }
      return false;
    },
    onSizeChange: () => { if (v.stick) timeline.scrollTop = timeline.scrollHeight; },
  });
  composer.setRoom(roomId);
  const readOnlyNote = h('p', { class: 'read-only-note', hidden: true });
  const section = h('section', { class: 'room', 'aria-labelledby': 'room-title' },
    head, timeline, jumpBtn, typingLine, readOnlyNote, composer.el);
  replace(main, section);

  // ---------------------------------------------------------------- render

  function isAtBottom() {
    return timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 40;
  }

  function canDelete(m, room) {
    return !!S.me && ((m.author && m.author.id === S.me.id) || S.me.role === 'admin' || room.owner_id === S.me.id);
  }

  // Own messages that arrived as events before the POST answered are shown
  // in the place of their pending entry (same text), not twice.
  function claims(store, pend) {
    const claimed = new Map();
    const sending = pend.filter((p) => p.status === 'sending');
    if (!sending.length) return claimed;
    const recent = store.ids.slice(-30).map((id) => store.byId.get(id));
    for (const p of sending) {
      const m = recent.find((x) => x.author && S.me && x.author.id === S.me.id && !S.sent.has(x.id) &&
        x.content === p.content && !claimed.has(x.id));
      if (m) claimed.set(m.id, p);
    }
    return claimed;
  }

  function items(room) {
    const store = roomMsgs(roomId);
    const pend = pendingFor(roomId);
    const claimed = claims(store, pend);
    const out = [];
    let prev = null;
    let lastDay = null;
    const readOnly = room.read_only || room.archived;
    const push = (m, status, p) => {
      const day = dayKey(m.created_at);
      if (day !== lastDay) {
        const label = fmtDay(m.created_at);
        out.push({ key: 'd' + day, sig: label, render: () => renderDivider(label) });
        lastDay = day;
        prev = null;
      }
      const grouped = !!(prev && prev.author && m.author && prev.author.id === m.author.id && prev.type !== 'system' &&
        m.type !== 'system' && !m.reply_to && Date.parse(m.created_at) - Date.parse(prev.created_at) < GROUP_MS);
      const key = m.id ? 'm' + m.id : 'p' + p.cid;
      const o = {
        grouped, status, error: p && p.error, cid: p && p.cid, active: false, picker: v.picker === m.id && !!m.id,
        canEdit: !readOnly && !!m.id && m.type === 'text' && !m.deleted && !!m.author && !!S.me && m.author.id === S.me.id,
        canDelete: !!m.id && !m.deleted && canDelete(m, room), readOnly, act,
      };
      const sig = [m._rev || 0, grouped, status, o.error, o.picker, o.canEdit, o.canDelete, readOnly].join('|');
      out.push({ key, sig, render: () => renderMessage(m, o) });
      prev = m;
    };
    // "Sent" shows on my newest message sent from this page only
    let lastSent = 0;
    for (const id of store.ids) if (S.sent.has(id)) lastSent = id;
    for (const id of store.ids) {
      const m = store.byId.get(id);
      const p = claimed.get(id);
      push(m, p ? p.status : id === lastSent ? 'sent' : null, p);
    }
    if (!store.hasAfter) {
      const taken = new Set(claimed.values());
      for (const p of pend) {
        if (taken.has(p)) continue;
        const reply = p.replyTo ? store.byId.get(p.replyTo) : null;
        const m = { id: null, room_id: roomId, type: 'text', content: p.content, author: S.me, created_at: new Date(p.at).toISOString(),
          reply_to: reply ? { id: reply.id, author_name: displayName(reply.author), excerpt: String(reply.content || '').slice(0, 100), deleted: reply.deleted } : null,
          reactions: [], mentions: [], pinned: false, deleted: false, _rev: 0 };
        push(m, p.status, p);
      }
    }
    return out;
  }

  function render() {
    if (v.destroyed) return;
    const room = S.rooms.get(roomId);
    if (!room) return;
    const store = roomMsgs(roomId);
    h2.textContent = room.kind === 'dm' ? roomTitle(room) : '#' + roomTitle(room);
    topic.textContent = room.topic || '';
    topic.hidden = !room.topic;
    meta.textContent = room.kind === 'dm' ? '' : plural(room.member_count || 0, 'member', 'members');
    const ro = room.read_only || room.archived;
    readOnlyNote.hidden = !ro;
    readOnlyNote.textContent = room.archived ? 'This room is archived: read only.' : 'This conversation is read only.';
    composer.el.hidden = ro;

    const stick = v.stick || isAtBottom();
    // keep the first visible message where it is on screen (by key: its
    // element may be rebuilt, e.g. grouped once its predecessor loads)
    let anchor = null;
    if (!stick) {
      for (const el of list.children) {
        if (el._key && el._key[0] !== 'd' && el.offsetTop + el.offsetHeight > timeline.scrollTop) {
          anchor = { key: el._key, off: el.offsetTop - timeline.scrollTop };
          break;
        }
      }
    }
    if (!store.loaded) {
      edgeTop.textContent = 'Loading messages…';
    } else if (store.busy === 'older') edgeTop.textContent = 'Loading older messages…';
    else if (store.hasBefore) edgeTop.textContent = '';
    else edgeTop.textContent = `This is the beginning of ${room.kind === 'dm' ? 'your conversation' : '#' + room.name}.`;
    edgeBottom.hidden = !store.hasAfter;
    edgeBottom.textContent = store.busy === 'newer' ? 'Loading newer messages…' : '';
    list.setAttribute('aria-busy', store.busy ? 'true' : 'false');
    if (!store.loaded) return;
    const els = reconcile(list, items(room));
    if (v.active === null || !els.has(v.active)) {
      const last = [...list.children].reverse().find((x) => x._key && x._key[0] !== 'd');
      v.active = last ? last._key : null;
    }
    applyActive();
    if (stick && !store.hasAfter) timeline.scrollTop = timeline.scrollHeight;
    else if (anchor && els.has(anchor.key)) timeline.scrollTop = els.get(anchor.key).offsetTop - anchor.off;
    v.stick = false;
    afterScroll();
    // not enough to scroll yet: fetch older ones
    if (store.hasBefore && !store.busy && timeline.scrollHeight <= timeline.clientHeight + 50) older();
  }

  function renderTyping() {
    const m = S.typing.get(roomId);
    const names = m ? [...m.values()].map((t) => t.name || 'Someone') : [];
    typingLine.textContent = !names.length ? '' : names.length === 1 ? `${names[0]} is typing…`
      : names.length === 2 ? `${names[0]} and ${names[1]} are typing…` : 'Several people are typing…';
  }

  // ---------------------------------------------------------------- scrolling

  async function older() {
    try { await loadMore(roomId, -1); } catch (e) { toast('Could not load older messages: ' + errorText(e), 'error'); }
  }

  function afterScroll() {
    const store = roomMsgs(roomId);
    const bottom = isAtBottom();
    S.atBottom = bottom && !store.hasAfter;
    jumpBtn.hidden = S.atBottom;
    if (S.atBottom && document.visibilityState === 'visible') markRead(roomId);
  }

  timeline.addEventListener('scroll', () => {
    const store = roomMsgs(roomId);
    if (timeline.scrollTop < 300 && store.hasBefore && !store.busy && store.loaded) older();
    if (store.hasAfter && !store.busy && isAtBottom()) loadMore(roomId, 1).catch(() => {});
    afterScroll();
  }, { passive: true });

  async function jumpLatest() {
    const store = roomMsgs(roomId);
    if (store.hasAfter) await loadLatest(roomId);
    v.stick = true;
    render();
    composer.focus();
  }

  async function jump(msgId) {
    const store = roomMsgs(roomId);
    if (!store.byId.has(msgId)) {
      try { await loadAround(roomId, msgId); } catch (e) { return toast('Could not find that message: ' + errorText(e), 'error'); }
      render();
    }
    const el = list.querySelector(`[data-id="${Number(msgId)}"]`);
    if (!el) return;
    setActive('m' + msgId, true);
    el.scrollIntoView({ block: 'center' });
    el.classList.add('flash');
    setTimeout(() => el.classList.remove('flash'), 2000);
  }

  // ---------------------------------------------------------------- keyboard: roving focus

  // One tab stop in the list: the active message and its buttons; the
  // others are reached with the arrow keys. Set in place (never by
  // re-rendering, which would swap a button out from under a click).
  function applyActive() {
    for (const li of list.children) {
      const on_ = li._key === v.active;
      if (li.tabIndex !== (on_ ? 0 : -1)) li.tabIndex = on_ ? 0 : -1;
      for (const b of li.querySelectorAll('button, a')) if (b.tabIndex !== (on_ ? 0 : -1)) b.tabIndex = on_ ? 0 : -1;
    }
  }

  function setActive(key, focus) {
    v.active = key;
    applyActive();
    const el = [...list.children].find((x) => x._key === key);
    if (el && focus) el.focus();
  }

  list.addEventListener('focusin', (ev) => {
    const li = ev.target.closest('.msgs > li');
    if (li && li._key && li._key !== v.active && li._key[0] !== 'd') setActive(li._key, false);
  });

  list.addEventListener('keydown', (ev) => {
    const li = ev.target.closest('.msgs > li');
    if (!li) return;
    const msgs = [...list.children].filter((x) => x._key && x._key[0] !== 'd');
    const i = msgs.indexOf(li);
    let next = null;
    if (ev.target === li) {
      if (ev.key === 'ArrowDown') next = msgs[i + 1];
      else if (ev.key === 'ArrowUp') {
        next = msgs[i - 1];
        if (i === 0) older();
      } else if (ev.key === 'Home') next = msgs[0];
      else if (ev.key === 'End') next = msgs[msgs.length - 1];
      else if (ev.key === 'Enter' || ev.key === 'ArrowRight') {
        const b = li.querySelector('button');
        if (b) { ev.preventDefault(); b.focus(); }
        return;
      } else if (ev.key === 'Escape') { ev.preventDefault(); composer.focus(); return; }
    } else if (ev.key === 'Escape') {
      ev.preventDefault();
      if (v.picker) { v.picker = null; render(); }
      li.focus();
      return;
    }
    if (next) {
      ev.preventDefault();
      setActive(next._key, true);
    }
  });

  // ---------------------------------------------------------------- actions

  async function act(name, m, arg) {
    try {
      switch (name) {
        case 'picker':
          v.picker = v.picker === m.id ? null : m.id;
          render();
          focusIn(m.id, v.picker ? '.picker button' : null);
          break;
        case 'react': {
          const mine = (m.reactions || []).find((r) => r.emoji === arg && (r.user_ids || []).includes(S.me.id));
          const path = `/messages/${m.id}/reactions/${encodeURIComponent(arg)}`;
          const doc = mine ? await del(path) : await put(path);
          if (doc && doc.reactions) patchMessage(roomId, m.id, (x) => { x.reactions = doc.reactions; });
          v.picker = null;
          render();
          focusIn(m.id, `.chip[data-emoji="${CSS.escape(arg)}"]`);
          break;
        }
        case 'reply':
          composer.reply(m);
          break;
        case 'edit':
          composer.edit(m);
          break;
        case 'delete':
          if (await confirmDialog('Delete this message? Everyone will see that it was deleted.', 'Delete', true)) {
            await del(`/messages/${m.id}`);
            announce('Message deleted');
          }
          break;
        case 'pin': {
          const pinned = !m.pinned;
          if (pinned) await put(`/messages/${m.id}/pin`);
          else await del(`/messages/${m.id}/pin`);
          patchMessage(roomId, m.id, (x) => { x.pinned = pinned; });
          render();
          announce(pinned ? 'Pinned' : 'Unpinned');
          break;
        }
        case 'jump':
          jump(arg);
          break;
        case 'retry':
          retry(arg);
          break;
        case 'discard':
          discard(arg);
          break;
        default:
      }
    } catch (e) {
      toast(`Could not ${name}: ${errorText(e)}`, 'error');
    }
  }

  function focusIn(id, sel) {
    const li = list.querySelector(`[data-id="${Number(id)}"]`);
    if (!li) return;
    const t = sel ? li.querySelector(sel) : li.querySelector('.msg-tools button');
    (t || li).focus();
  }

  // ---------------------------------------------------------------- life cycle

  const offs = [
    on('room:' + roomId, render),
    on('outbox', render),
    on('typing', renderTyping),
    on('presence', () => refreshPresence(list)),
  ];
  const onVisible = () => { if (document.visibilityState === 'visible') afterScroll(); };
  document.addEventListener('visibilitychange', onVisible);

  S.openRoomId = roomId;
  S.atBottom = true;
  (async () => {
    const store = roomMsgs(roomId);
    try {
      if (jumpTo) await jump(jumpTo);
      else if (!store.loaded || store.hasAfter) await loadLatest(roomId);
    } catch (e) {
      edgeTop.textContent = 'Could not load messages: ' + errorText(e);
      return;
    }
    v.stick = !jumpTo;
    render();
  })();
  render();
  renderTyping();

  return {
    jump,
    focusTitle: () => h2.focus(),
    destroy() {
      v.destroyed = true;
      // leaving the room while typing: tell the others (not after sign-out)
      if (S.me) composer.stopTyping();
      offs.forEach((f) => f());
      document.removeEventListener('visibilitychange', onVisible);
      if (S.openRoomId === roomId) S.openRoomId = null;
    },
  };
}
