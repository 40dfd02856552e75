// state.js: everything the client knows, and the one place events change it.
// Views subscribe to topics; emit() coalesces into one call per animation
// frame, so a burst of events costs one render.
import { get, post, qs } from './api.js';
import { DEFAULT_REACTIONS, displayName } from './util.js';

export const S = {
  me: null,                 // my user object (own view)
  rooms: new Map(),         // id -> room (with unread_count, mention_count, last_message)
  msgs: new Map(),          // room id -> RoomMessages (below), for rooms opened
  users: new Map(),         // id -> {id, name, display_name, avatar_url, ...}
  members: new Map(),       // room id -> [{user, role}] (loaded on demand)
  online: new Set(),        // user ids online
  typing: new Map(),        // room id -> Map(user id -> {name, until})
  reactions: DEFAULT_REACTIONS.slice(),
  openRoomId: null,
  atBottom: true,           // the open room's view is scrolled to the newest
  conn: 'idle',             // idle | connecting | open | down
  sent: new Set(),          // ids of my messages sent from this page
  rev: 0,                   // bumped on every message change (render signatures)
  usersRev: 0,              // bumped when a user's name or picture changes
  appName: 'Roost',
};

const subs = new Map();
const pending = new Set();
let frame = 0;

export function on(topic, fn) {
  if (!subs.has(topic)) subs.set(topic, new Set());
  subs.get(topic).add(fn);
  return () => subs.get(topic).delete(fn);
}

export function emit(topic) {
  pending.add(topic);
  if (!frame) frame = requestAnimationFrame(flush);
}

function flush() {
  frame = 0;
  const topics = [...pending];
  pending.clear();
  for (const t of topics) {
    for (const fn of subs.get(t) || []) {
      try { fn(t); } catch (err) { console.error('subscriber failed', t, err); }
    }
  }
}

// Forget everything of the session, and stop its timers (typing lapses,
// pending POST /read, the GET /rooms refresh).
export function reset() {
  for (const m of S.typing.values()) for (const t of m.values()) clearTimeout(t.timer);
  for (const t of readTimers.values()) clearTimeout(t);
  readTimers.clear();
  clearTimeout(refreshTimer);
  refreshTimer = null;
  S.me = null;
  S.rooms.clear();
  S.msgs.clear();
  S.users.clear();
  S.members.clear();
  S.online.clear();
  S.typing.clear();
  S.sent.clear();
  S.openRoomId = null;
  S.reactions = DEFAULT_REACTIONS.slice();
}

export function rememberUser(u) {
  if (!u || !u.id) return;
  const old = S.users.get(u.id) || {};
  S.users.set(u.id, { ...old, ...u });
}

// The tenant's settings (GET /settings, or PATCH /admin/settings's answer):
// the reaction set and the app's name.
export function applySettings(st) {
  S.reactions = (st && st.reactions) || DEFAULT_REACTIONS.slice();
  S.appName = (st && st.app_name) || 'Roost';
  emit('me');
}

// ---------------------------------------------------------------- rooms

export function roomTitle(r) {
  if (!r) return '';
  if (r.kind === 'dm') return r.dm_user ? displayName(r.dm_user) : 'Direct message';
  return r.name;
}

export function activity(r) {
  return (r.last_message && r.last_message.created_at) || r.updated_at || r.created_at || '';
}

export function sortedRooms() {
  return [...S.rooms.values()].sort((a, b) => (activity(b) > activity(a) ? 1 : activity(b) < activity(a) ? -1 : b.id - a.id));
}

// GET /rooms: the whole list, and the event cursor taken before it was read.
export async function loadRooms() {
  const doc = await get('/rooms');
  const seen = new Set();
  for (const r of doc.rooms) {
    seen.add(r.id);
    S.rooms.set(r.id, r);
    if (r.dm_user) rememberUser(r.dm_user);
    if (r.last_message && r.last_message.author) rememberUser(r.last_message.author);
  }
  for (const id of [...S.rooms.keys()]) if (!seen.has(id)) S.rooms.delete(id);
  emit('rooms');
  return doc.event_cursor;
}

export function upsertRoom(r) {
  const old = S.rooms.get(r.id);
  const keep = old ? { unread_count: old.unread_count, mention_count: old.mention_count,
    last_message: old.last_message, last_read_message_id: old.last_read_message_id } : {};
  // room events carry no invite_code (it is shown to members only): keep ours
  if (old && r.invite_code == null && old.invite_code) keep.invite_code = old.invite_code;
  // a DM's room event shows dm_user as its sender sees it (maybe me)
  if (r.kind === 'dm' && r.dm_user && S.me && r.dm_user.id === S.me.id) {
    if (old && old.dm_user) keep.dm_user = old.dm_user;
    else refreshSoon();
  }
  S.rooms.set(r.id, { unread_count: 0, mention_count: 0, last_message: null, last_read_message_id: 0, ...r, ...keep,
    ...(r.unread_count !== undefined ? { unread_count: r.unread_count, mention_count: r.mention_count } : {}) });
  if (r.dm_user) rememberUser(r.dm_user);
  emit('rooms');
  emit('room:' + r.id);
}

export function dropRoom(id) {
  S.rooms.delete(id);
  S.msgs.delete(id);
  S.members.delete(id);
  emit('rooms');
  emit('room:' + id);
}

let refreshTimer = null;
function refreshSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => {
    refreshTimer = null;
    loadRooms().catch(() => {});
  }, 250);
}

// ---------------------------------------------------------------- messages

export function roomMsgs(id) {
  let r = S.msgs.get(id);
  if (!r) {
    r = { byId: new Map(), ids: [], hasBefore: true, hasAfter: false, loaded: false, busy: null };
    S.msgs.set(id, r);
  }
  return r;
}

function insertId(ids, id) {
  let lo = 0, hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ids[mid] < id) lo = mid + 1;
    else hi = mid;
  }
  if (ids[lo] !== id) ids.splice(lo, 0, id);
}

export function putMessage(m) {
  if (m.author) rememberUser(m.author);
  const store = roomMsgs(m.room_id);
  m._rev = ++S.rev;
  store.byId.set(m.id, m);
  insertId(store.ids, m.id);
  emit('room:' + m.room_id);
}

function reset_(store, doc) {
  store.byId.clear();
  store.ids.length = 0;
  for (const m of doc.messages) {
    if (m.author) rememberUser(m.author);
    m._rev = ++S.rev;
    store.byId.set(m.id, m);
    store.ids.push(m.id);
  }
  store.loaded = true;
}

export async function loadLatest(roomId) {
  const store = roomMsgs(roomId);
  const doc = await get(`/rooms/${roomId}/messages?limit=50`);
  reset_(store, doc);
  store.hasBefore = doc.has_more;
  store.hasAfter = false;
  emit('room:' + roomId);
}

export async function loadAround(roomId, msgId) {
  const store = roomMsgs(roomId);
  const doc = await get(`/rooms/${roomId}/messages${qs({ around: msgId, limit: 50 })}`);
  reset_(store, doc);
  store.hasBefore = doc.has_more;
  store.hasAfter = !!doc.has_more_after;
  emit('room:' + roomId);
}

// One page older (dir < 0) or newer (dir > 0) than what is loaded.
export async function loadMore(roomId, dir) {
  const store = roomMsgs(roomId);
  if (store.busy || !store.ids.length) return false;
  if (dir < 0 ? !store.hasBefore : !store.hasAfter) return false;
  const cursor = dir < 0 ? { before: store.ids[0] } : { after: store.ids[store.ids.length - 1] };
  store.busy = dir < 0 ? 'older' : 'newer';
  emit('room:' + roomId);
  try {
    const doc = await get(`/rooms/${roomId}/messages${qs({ ...cursor, limit: 50 })}`);
    for (const m of doc.messages) {
      if (m.author) rememberUser(m.author);
      m._rev = ++S.rev;
      store.byId.set(m.id, m);
      insertId(store.ids, m.id);
    }
    if (dir < 0) store.hasBefore = doc.has_more;
    else store.hasAfter = doc.has_more;
    return true;
  } finally {
    store.busy = null;
    emit('room:' + roomId);
  }
}

// Changes a message in place, in the loaded timeline and as the room's last
// message (the sidebar's preview); bumps its revision so both re-render.
export function patchMessage(roomId, id, fn) {
  const store = S.msgs.get(roomId);
  const m = store && store.byId.get(id);
  if (m) {
    fn(m);
    m._rev = ++S.rev;
    emit('room:' + roomId);
  }
  const r = S.rooms.get(roomId);
  const last = r && r.last_message;
  if (last && last.id === id) {
    if (last !== m) {
      fn(last);
      last._rev = ++S.rev;
    }
    emit('rooms');
  }
}

// ---------------------------------------------------------------- read markers

const readTimers = new Map();
export function markRead(roomId) {
  const r = S.rooms.get(roomId);
  const store = S.msgs.get(roomId);
  if (!r || !store || !store.ids.length || store.hasAfter) return;
  const newest = store.ids[store.ids.length - 1];
  if (newest <= (r.last_read_message_id || 0) && !r.unread_count && !r.mention_count) return;
  r.unread_count = 0;
  r.mention_count = 0;
  emit('rooms');
  clearTimeout(readTimers.get(roomId));
  readTimers.set(roomId, setTimeout(async () => {
    try {
      const doc = await post(`/rooms/${roomId}/read`, { message_id: newest });
      const rr = S.rooms.get(roomId);
      if (rr) {
        rr.last_read_message_id = doc.last_read_message_id;
        rr.unread_count = doc.unread_count;
        rr.mention_count = doc.mention_count;
        emit('rooms');
      }
    } catch { /* the next read moves it */ }
  }, 300));
}

// ---------------------------------------------------------------- typing

export function setTyping(roomId, userId, name, on_, secs) {
  let m = S.typing.get(roomId);
  if (!m) S.typing.set(roomId, (m = new Map()));
  const old = m.get(userId);
  if (old) clearTimeout(old.timer);
  if (on_) {
    const timer = setTimeout(() => { m.delete(userId); emit('typing'); }, (secs || 6) * 1000);
    m.set(userId, { name, timer });
  } else m.delete(userId);
  emit('typing');
}

// A typing event lists everyone typing in the room now: it replaces what
// we had for that room (each entry lapses after expires_in seconds).
export function setTypingList(roomId, list, secs) {
  const m = S.typing.get(roomId);
  if (m) for (const t of m.values()) clearTimeout(t.timer);
  S.typing.delete(roomId);
  for (const t of list || []) {
    if (S.me && t.user_id === S.me.id) continue;
    setTyping(roomId, t.user_id, t.display_name, true, secs);
  }
  emit('typing');
}

export async function loadPresence() {
  try {
    const doc = await get('/presence');
    S.online = new Set(doc.users.map((u) => u.user_id));
    emit('presence');
  } catch { /* shown as offline */ }
}

// ---------------------------------------------------------------- events

// Applies one event of GET /api/v1/events (docs/events.md). Every handler
// is idempotent: a resumed stream may repeat events.
export function applyEvent(ev, hooks) {
  const d = ev.data || {};
  const rid = ev.room_id;
  switch (ev.type) {
    case 'message.created': {
      const room = S.rooms.get(d.room_id);
      const store = S.msgs.get(d.room_id);
      const known = (store && store.byId.has(d.id)) || !!(room && room.last_message && room.last_message.id >= d.id);
      if (store && store.loaded && !store.hasAfter) putMessage(d);
      else if (d.author) rememberUser(d.author);
      if (d.author) setTyping(d.room_id, d.author.id, '', false);
      if (!room) { refreshSoon(); break; }
      if (!room.last_message || room.last_message.id <= d.id) room.last_message = d;
      const mine = d.author && S.me && d.author.id === S.me.id;
      const seeing = S.openRoomId === d.room_id && S.atBottom && document.visibilityState === 'visible';
      if (!known && !mine && d.type !== 'system' && d.id > (room.last_read_message_id || 0)) {
        if (seeing) markRead(d.room_id);
        else {
          room.unread_count = (room.unread_count || 0) + 1;
          if (S.me && (d.mentions || []).includes(S.me.id)) room.mention_count = (room.mention_count || 0) + 1;
        }
      }
      emit('rooms');
      break;
    }
    case 'message.updated': {
      patchMessage(d.room_id, d.id, (m) => Object.assign(m, d));
      break;
    }
    case 'message.deleted':
      patchMessage(d.room_id || rid, d.id, (m) => {
        m.deleted = true;
        m.content = null;
        m.reactions = [];
        m.mentions = [];
        m.pinned = false;
      });
      refreshSoon();
      break;
    case 'reaction.updated':
      patchMessage(rid, d.message_id, (m) => { m.reactions = d.reactions; });
      break;
    case 'pin.changed':
      patchMessage(rid, d.message_id, (m) => { m.pinned = d.pinned; });
      emit('pins:' + rid);
      break;
    case 'member.joined':
    case 'member.left': {
      const ids = d.user_ids || [];
      S.members.delete(d.room_id);
      emit('members:' + d.room_id);
      if (S.me && ids.includes(S.me.id)) {
        if (ev.type === 'member.left') {
          const room = S.rooms.get(d.room_id);
          dropRoom(d.room_id);
          if (hooks && hooks.left) hooks.left(room, d.by);
        } else refreshSoon();
      } else {
        const room = S.rooms.get(d.room_id);
        if (room) {
          room.member_count = Math.max(0, (room.member_count || 0) + (ev.type === 'member.joined' ? ids.length : -ids.length));
          emit('room:' + d.room_id);
        }
      }
      break;
    }
    case 'room.created':
    case 'room.updated':
      if (S.rooms.has(d.id)) upsertRoom(d);
      else refreshSoon();
      break;
    case 'room.archived': {
      const room = S.rooms.get(d.room_id);
      if (room) {
        room.archived = true;
        room.read_only = true;
        emit('rooms');
        emit('room:' + d.room_id);
      }
      break;
    }
    case 'room.deleted': {
      const room = S.rooms.get(d.room_id);
      dropRoom(d.room_id);
      if (room && hooks && hooks.left) hooks.left(room, null, true);
      break;
    }
    case 'read.updated': {
      const room = S.rooms.get(d.room_id);
      if (room && d.last_read_message_id > (room.last_read_message_id || 0)) {
        room.last_read_message_id = d.last_read_message_id;
        refreshSoon();
      }
      break;
    }
    case 'user.updated':
      rememberUser(d);
      S.usersRev++;
      for (const store of S.msgs.values()) {
        for (const m of store.byId.values()) {
          if (m.author && m.author.id === d.id) {
            m.author = { ...m.author, name: d.name, display_name: d.display_name, avatar_url: d.avatar_url };
            m._rev = ++S.rev;
          }
        }
      }
      for (const r of S.rooms.values()) if (r.dm_user && r.dm_user.id === d.id) r.dm_user = { ...r.dm_user, ...d };
      if (S.me && d.id === S.me.id) {
        Object.assign(S.me, d);
        emit('me');
        if (d.suspended || d.deleted) hooks && hooks.gone && hooks.gone();
      }
      emit('rooms');
      if (S.openRoomId) emit('room:' + S.openRoomId);
      break;
    case 'messages.purged': {
      const store = S.msgs.get(d.room_id);
      if (store) {
        for (const id of store.ids) if (id <= d.up_to_id) store.byId.delete(id);
        store.ids = store.ids.filter((id) => id > d.up_to_id);
        emit('room:' + d.room_id);
      }
      refreshSoon();
      break;
    }
    case 'typing':
      if (Array.isArray(d.typing)) setTypingList(d.room_id || rid, d.typing, d.expires_in);
      else if (!S.me || d.user_id !== S.me.id) setTyping(d.room_id || rid, d.user_id, d.display_name, d.state !== 'stop', d.expires_in);
      break;
    case 'presence':
      if (d.status === 'online') S.online.add(d.user_id);
      else S.online.delete(d.user_id);
      emit('presence');
      break;
    case 'session.displaced':
      if (hooks && hooks.displaced) hooks.displaced(d);
      break;
    case 'session.ended':
      // the server closes this stream after it: this session is over
      if (hooks && hooks.ended) hooks.ended(d.reason);
      break;
    default:
      break;
  }
}

// Members of a room (up to 1,000), cached until a membership event.
export async function loadMembers(roomId) {
  const cached = S.members.get(roomId);
  if (cached) return cached;
  const out = [];
  let after = null;
  for (let page = 0; page < 10; page++) {
    const doc = await get(`/rooms/${roomId}/members${qs({ after, limit: 100 })}`);
    for (const m of doc.members) {
      rememberUser(m.user);
      out.push(m);
    }
    if (!doc.has_more) break;
    after = doc.next_after;
  }
  S.members.set(roomId, out);
  return out;
}
