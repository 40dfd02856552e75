// outbox.js: messages on their way to the server. Each gets a
// client_msg_id when typed; every attempt (automatic after a network
// failure, or the Retry button) sends the same id, so the server stores it
// once (a repeat answers 200 with the original). Items are kept in
// localStorage until the server has them, so a reload does not lose them.
import { post } from './api.js';
import { S, emit, putMessage } from './state.js';
import { newClientId } from './util.js';

let items = [];       // {cid, roomId, content, replyTo, status: queued|sending|failed, error}
let pumping = false;
let timer = null;

const key = () => (S.me ? `roost.outbox.${S.me.id}` : null);

function save() {
  const k = key();
  if (!k) return;
  try {
    const keep = items.map(({ cid, roomId, content, replyTo, status, error, at }) =>
      ({ cid, roomId, content, replyTo, status: status === 'sending' ? 'queued' : status, error, at }));
    if (keep.length) localStorage.setItem(k, JSON.stringify(keep));
    else localStorage.removeItem(k);
  } catch { /* storage full or disabled: memory only */ }
}

function changed(roomId) {
  save();
  emit('room:' + roomId);
  emit('outbox');
}

export function loadOutbox() {
  items = [];
  const k = key();
  if (!k) return;
  try { items = JSON.parse(localStorage.getItem(k) || '[]'); } catch { items = []; }
  if (items.length) pump();
}

export function clearOutbox(forget) {
  if (forget && key()) localStorage.removeItem(key());
  items = [];
  clearTimeout(timer);
  timer = null;
}

export const pendingFor = (roomId) => items.filter((i) => i.roomId === roomId);
export const pendingCount = () => items.length;

export function send(roomId, content, replyTo) {
  const it = { cid: newClientId(), roomId, content, replyTo: replyTo || null, status: 'queued', at: Date.now() };
  items.push(it);
  changed(roomId);
  pump();
  return it;
}

export function retry(cid) {
  const it = items.find((i) => i.cid === cid);
  if (!it || it.status === 'sending') return;
  it.status = 'queued';
  it.error = null;
  changed(it.roomId);
  pump();
}

export function discard(cid) {
  const it = items.find((i) => i.cid === cid);
  items = items.filter((i) => i.cid !== cid);
  if (it) changed(it.roomId);
}

// Send queued items one at a time, oldest first (keeps their order).
export async function pump() {
  if (pumping) return;
  pumping = true;
  clearTimeout(timer);
  try {
    for (;;) {
      if (!navigator.onLine) return;
      const it = items.find((i) => i.status === 'queued');
      if (!it) return;
      it.status = 'sending';
      changed(it.roomId);
      const body = { type: 'text', content: it.content, client_msg_id: it.cid };
      if (it.replyTo) body.reply_to = it.replyTo;
      try {
        const msg = await post(`/rooms/${it.roomId}/messages`, body);
        items = items.filter((i) => i !== it);
        S.sent.add(msg.id);
        const store = S.msgs.get(msg.room_id);
        if (store && store.loaded && !store.hasAfter) putMessage(msg);
        const room = S.rooms.get(msg.room_id);
        if (room && (!room.last_message || room.last_message.id <= msg.id)) {
          room.last_message = msg;
          emit('rooms');
        }
        changed(it.roomId);
      } catch (e) {
        if (e.network) {
          // no answer: keep it and try again when the network is back
          it.status = 'queued';
          changed(it.roomId);
          timer = setTimeout(pump, 5000);
          return;
        }
        if (e.status === 429) {
          it.status = 'queued';
          changed(it.roomId);
          timer = setTimeout(pump, Math.max(1, e.retryAfter || 2) * 1000);
          return;
        }
        it.status = 'failed';
        it.error = e.message;
        changed(it.roomId);
      }
    }
  } finally {
    pumping = false;
  }
}
