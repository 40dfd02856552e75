// stream.js: ONE EventSource for all rooms (GET /api/v1/events, cookie
// auth). We reconnect ourselves, not EventSource: after any error the
// connection is closed and reopened after an exponential backoff with
// jitter, from the last event id we saw (?last_event_id=), so nothing is
// missed and nothing is replayed from an old position. `event: resync`
// means the server cannot resume us: the app reloads its state over REST
// and starts again from GET /rooms's event_cursor.
import { get } from './api.js';

const TYPES = ['message.created', 'message.updated', 'message.deleted', 'reaction.updated', 'pin.changed',
  'member.joined', 'member.left', 'room.created', 'room.updated', 'room.archived', 'room.deleted',
  'read.updated', 'user.updated', 'session.displaced', 'session.ended', 'messages.purged', 'typing', 'presence'];

const BASE_MS = 500;
const MAX_MS = 15000;

export function createStream({ onEvent, onResync, onState }) {
  let es = null;
  let cursor = null;
  let attempt = 0;
  let timer = null;
  let running = false;

  function close() {
    if (es) {
      es.close();
      es = null;
    }
  }

  function handle(e) {
    if (e.lastEventId) cursor = e.lastEventId;
    attempt = 0;
    let doc;
    try { doc = JSON.parse(e.data); } catch { return; }
    try { onEvent(doc); } catch (err) { console.error('event handler failed', doc.type, err); }
  }

  function connect() {
    clearTimeout(timer);
    timer = null;
    if (!running) return;
    close();
    const url = '/api/v1/events' + (cursor ? '?last_event_id=' + encodeURIComponent(cursor) : '');
    const src = (es = new EventSource(url));
    onState('connecting');
    src.onopen = () => { if (es === src) onState('open'); };
    for (const t of TYPES) src.addEventListener(t, handle);
    src.onmessage = handle;
    src.addEventListener('resync', () => {
      if (es !== src) return;
      close();
      cursor = null;
      onState('resync');
      onResync();
    });
    src.onerror = () => {
      if (es !== src) return;
      close();
      onState('down');
      schedule();
    };
  }

  function schedule() {
    if (!running || timer) return;
    const cap = Math.min(MAX_MS, BASE_MS * 2 ** attempt);
    const delay = cap / 2 + Math.random() * (cap / 2);
    attempt++;
    timer = setTimeout(async () => {
      timer = null;
      // After repeated failures, ask whether we are still signed in: a 401
      // goes to the app's unauthorized handler, which stops the stream.
      if (attempt >= 3) {
        try { await get('/me'); } catch (e) { if (e.status === 401) return; }
      }
      connect();
    }, delay);
  }

  return {
    start(from) {
      running = true;
      cursor = from || null;
      attempt = 0;
      connect();
    },
    stop() {
      running = false;
      clearTimeout(timer);
      timer = null;
      close();
      onState('idle');
    },
    // reopen now from where we are: the new connection loads my rooms
    // afresh (a safety net: room.created's member_ids already add a new
    // room to open streams; see main.js)
    restart() {
      if (!running) return;
      attempt = 0;
      connect();
    },
    // the network came back: try at once
    kick() {
      if (!running || (es && es.readyState !== EventSource.CLOSED)) return;
      attempt = 0;
      connect();
    },
    get cursor() { return cursor; },
  };
}
