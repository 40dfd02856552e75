// main.js: start-up, the layout, routing (#/r/ID, #/r/ID/m/MSG, #/account,
// #/admin/users, #/admin/settings) and the event loop wiring.
import { h, replace, announce } from './dom.js';
import * as api from './api.js';
import { S, on, emit, reset, loadRooms, loadLatest, loadPresence, applyEvent, applySettings, roomTitle, sortedRooms } from './state.js';
import { createStream } from './stream.js';
import { loadOutbox, clearOutbox, pump, pendingCount } from './outbox.js';
import { loginView, forcedPasswordView } from './views/login.js';
import { mountSidebar } from './views/sidebar.js';
import { mountRoom } from './views/room.js';
import { toast, avatar } from './views/ui.js';
import { searchDialog, createRoomDialog, discoverDialog, joinCodeDialog, newDmDialog, roomInfoDialog, pinsDialog } from './views/dialogs.js';
import { mountAccount } from './views/account.js';
import { displayName } from './util.js';

const app = document.getElementById('app');
let layout = null;     // {root, nav, main, destroy}
let view = null;       // the mounted main view
let viewKey = '';
let resyncing = false;

// ---------------------------------------------------------------- theme

const THEMES = ['auto', 'light', 'dark'];
function applyTheme(t) {
  if (t === 'auto') document.documentElement.removeAttribute('data-theme');
  else document.documentElement.dataset.theme = t;
}
function theme() { return localStorage.getItem('roost.theme') || 'auto'; }
applyTheme(theme());

// ---------------------------------------------------------------- the stream

const stream = createStream({
  onEvent: (ev) => applyEvent(ev, hooks),
  onResync: () => resync(),
  onState: (st) => {
    S.conn = st;
    if (st === 'resync') document.body.dataset.resyncs = String(Number(document.body.dataset.resyncs || 0) + 1);
    emit('conn');
    if (st === 'open') {
      loadPresence();
      pump();
    }
  },
});

const ENDED_TEXT = {
  logout: 'You signed out in another tab.',
  revoked: 'This session was ended from another device.',
  password_changed: 'Your password was changed on another device. Sign in again.',
  password_reset: 'An admin reset your password. Sign in with the temporary one.',
  suspended: 'Your account is no longer active.',
  deleted: 'Your account is no longer active.',
  expired: 'Your session expired. Sign in again.',
  displaced: 'You signed in on another device of this kind.',
};

const hooks = {
  left(room, by, deleted) {
    if (!room) return;
    const name = roomTitle(room);
    if (deleted) toast(`${name} was deleted.`);
    else if (by && S.me && by !== S.me.id) toast(`You were removed from ${name}.`);
    if (S.openRoomId === room.id) location.hash = '#/';
  },
  displaced() {
    // another sign-in of this device class may have ended *this* session
    api.get('/me').catch(() => {});
  },
  gone() { signedOut('Your account is no longer active.'); },
  ended(reason) {
    if (!S.me) return; // signed out here already
    signedOut(ENDED_TEXT[reason] || 'Your session has ended. Sign in again.');
  },
};

async function resync() {
  if (resyncing) return;
  resyncing = true;
  let wait = 500;
  try {
    for (;;) {
      try {
        const cursor = await loadRooms();
        for (const id of [...S.msgs.keys()]) if (id !== S.openRoomId) S.msgs.delete(id);
        if (S.openRoomId && S.rooms.has(S.openRoomId)) await loadLatest(S.openRoomId);
        stream.start(cursor);
        return;
      } catch (e) {
        if (e.status === 401) return;
        await new Promise((r) => setTimeout(r, wait + Math.random() * wait));
        wait = Math.min(wait * 2, 15000);
      }
    }
  } finally {
    resyncing = false;
  }
}

addEventListener('online', () => { emit('conn'); stream.kick(); pump(); });

// room.created carries member_ids, so a new room or direct message reaches
// its first members' open streams at once. As a safety net the creator
// still reconnects (stream:restart), and every client looks for rooms it
// did not know about once a minute and reconnects when it finds one.
// Resuming from our cursor loses nothing.
on('stream:restart', () => stream.restart());
setInterval(async () => {
  if (!S.me || S.conn !== 'open' || document.visibilityState !== 'visible') return;
  const known = new Set(S.rooms.keys());
  try {
    await loadRooms();
  } catch {
    return;
  }
  if ([...S.rooms.keys()].some((id) => !known.has(id))) stream.restart();
}, 60000);
addEventListener('offline', () => emit('conn'));

// ---------------------------------------------------------------- sign in / out

function signedOut(notice) {
  stream.stop();
  for (const d of document.querySelectorAll('dialog[open]')) d.close();
  // reset() first: it stops the session's timers and clears S.me, so
  // nothing torn down below sends requests for the ended session
  reset();
  clearOutbox(false);
  if (view && view.destroy) view.destroy();
  view = null;
  viewKey = '';
  if (layout) layout.destroy();
  layout = null;
  document.title = 'Roost';
  loginView(app, { onSignedIn: signedIn, notice });
}

api.setUnauthorizedHandler((e) => {
  if (!S.me) return;
  signedOut(e.code === 'SESSION_DISPLACED' ? 'You signed in on another computer, so this session ended.'
    : 'Your session ended. Please sign in again.');
});

async function logout() {
  try { await api.post('/auth/logout'); } catch { /* the cookie is cleared anyway below */ }
  clearOutbox(true);
  if (location.hash) history.replaceState(null, '', location.pathname);
  signedOut('You are signed out.');
}

function signedIn(user) {
  S.me = user;
  if (user.must_change_password) {
    forcedPasswordView(app, { onDone: signedIn, onLogout: logout });
    return;
  }
  start();
}

async function start() {
  if (layout) layout.destroy();
  buildLayout();
  let cursor = null;
  try {
    cursor = await loadRooms();
  } catch (e) {
    if (e.status === 401) return;
    toast('Could not load your rooms: ' + e.message, 'error');
  }
  // the tenant's reaction set and limits, for every member (unless this
  // session ended meanwhile)
  const me = S.me;
  api.get('/settings').then((st) => { if (S.me && S.me === me) applySettings(st); }).catch(() => {});
  loadOutbox();
  stream.start(cursor);
  route();
}

// ---------------------------------------------------------------- layout

function buildLayout() {
  const nav = h('nav', { class: 'sidebar', 'aria-label': 'Rooms and conversations' });
  const main = h('main', { id: 'main', class: 'main', tabindex: -1 });
  const banner = h('div', { class: 'conn-banner', role: 'status', hidden: true });
  const meBtn = h('a', { href: '#/account', class: 'me-link' });
  const themeBtn = h('button', { type: 'button', class: 'icon-btn', onclick: () => {
    const t = THEMES[(THEMES.indexOf(theme()) + 1) % THEMES.length];
    localStorage.setItem('roost.theme', t);
    applyTheme(t);
    renderTop();
    announce(`Theme: ${t}`);
  } });
  const adminLink = h('a', { href: '#/admin/users', class: 'btn btn-small', hidden: true }, 'Admin');
  const appName = h('span', { class: 'app-name' });
  nav.append(h('div', { class: 'side-top' }, h('span', { class: 'logo', 'aria-hidden': 'true' }), appName, themeBtn),
    h('div', { class: 'side-me' }, meBtn, adminLink));
  const root = h('div', { class: 'layout' }, nav, main);
  replace(app, h('a', { href: '#main', class: 'skip-link', onclick: (ev) => { ev.preventDefault(); focusMain(); } }, 'Skip to content'),
    banner, root);

  function renderTop() {
    appName.textContent = S.appName || 'Roost';
    const t = theme();
    themeBtn.textContent = t === 'dark' ? '☾' : t === 'light' ? '☀' : '◐';
    themeBtn.setAttribute('aria-label', `Theme: ${t}. Change theme`);
    themeBtn.title = `Theme: ${t}`;
    replace(meBtn, avatar(S.me, 'small'), h('span', { class: 'me-name', text: displayName(S.me) }));
    meBtn.setAttribute('aria-label', `Your account: ${displayName(S.me)}`);
    adminLink.hidden = S.me.role !== 'admin';
  }
  function renderConn() {
    const offline = !navigator.onLine;
    const down = S.conn === 'down' || S.conn === 'resync';
    const n = pendingCount();
    banner.hidden = !offline && !down;
    banner.dataset.state = offline ? 'offline' : S.conn;
    banner.textContent = offline ? `You are offline.${n ? ` ${n} message${n > 1 ? 's' : ''} will be sent when you reconnect.` : ''}`
      : S.conn === 'resync' ? 'Catching up…' : 'Reconnecting…';
    document.body.dataset.conn = offline ? 'offline' : S.conn;
  }
  const sidebar = mountSidebar(nav, {
    search: () => searchDialog(S.openRoomId),
    create: createRoomDialog,
    discover: discoverDialog,
    joinCode: joinCodeDialog,
    newDm: newDmDialog,
  });
  const offs = [on('me', renderTop), on('conn', renderConn), on('outbox', renderConn)];
  renderTop();
  renderConn();
  layout = {
    root, nav, main,
    destroy() {
      offs.forEach((f) => f());
      sidebar.destroy();
    },
  };
}

function focusMain() {
  const t = layout && layout.main.querySelector('textarea:not([disabled]), h1, h2');
  (t || (layout && layout.main)).focus();
}

// ---------------------------------------------------------------- routing

function welcome(main) {
  const rooms = sortedRooms();
  replace(main, h('section', { class: 'welcome' },
    h('h1', { tabindex: -1 }, `Welcome, ${displayName(S.me)}`),
    h('p', null, rooms.length ? 'Pick a room on the left, or start something new.' : 'You are in no room yet. Browse the public rooms or create one.'),
    h('div', { class: 'row' },
      h('button', { type: 'button', class: 'btn', onclick: discoverDialog }, 'Browse rooms'),
      h('button', { type: 'button', class: 'btn', onclick: createRoomDialog }, 'New room'),
      h('button', { type: 'button', class: 'btn', onclick: newDmDialog }, 'New message'))));
  return { destroy() {} };
}

async function route() {
  if (!layout) return;
  const hash = location.hash.replace(/^#\/?/, '');
  const parts = hash.split('/');
  const main = layout.main;
  const onBack = () => { location.hash = '#/'; };
  let key = parts[0] || 'home';
  if (parts[0] === 'r' && Number(parts[1]) > 0) key = 'r' + Number(parts[1]);
  else if (parts[0] === 'admin') key = 'admin/' + (parts[1] || 'users');
  const jumpTo = parts[0] === 'r' && parts[2] === 'm' ? Number(parts[3]) : null;

  layout.root.classList.toggle('show-main', key !== 'home');
  if (key === viewKey && view) {
    if (jumpTo && view.jump) view.jump(jumpTo);
    return;
  }
  if (view && view.destroy) view.destroy();
  view = null;
  viewKey = key;
  if (key[0] === 'r' && key !== 'home') {
    const id = Number(parts[1]);
    if (!S.rooms.has(id)) {
      try {
        const r = await api.get(`/rooms/${id}`);
        if (!S.rooms.has(id)) S.rooms.set(id, { unread_count: 0, mention_count: 0, last_message: null, ...r });
      } catch {
        toast('That room is not available.', 'error');
        location.hash = '#/';
        return;
      }
      if (viewKey !== key) return;
    }
    view = mountRoom(main, id, { jumpTo, onBack, onInfo: roomInfoDialog, onPins: pinsDialog });
    emit('rooms');
    if (matchMedia('(max-width: 760px)').matches) view.focusTitle();
  } else if (key === 'account') {
    view = mountAccount(main, { onLogout: logout, onBack });
  } else if (key.startsWith('admin/') && S.me.role === 'admin') {
    const mod = await import('./views/admin.js');
    if (viewKey !== key) return;
    view = key === 'admin/settings'
      ? mod.mountAdminSettings(main, { onBack })
      : mod.mountAdminUsers(main, { onBack });
  } else {
    view = welcome(main);
    emit('rooms');
  }
}

addEventListener('hashchange', route);

// Keyboard: Ctrl/Cmd+K searches; Alt+ArrowUp/Down moves between rooms.
addEventListener('keydown', (ev) => {
  if (!layout) return;
  if ((ev.ctrlKey || ev.metaKey) && ev.key.toLowerCase() === 'k') {
    ev.preventDefault();
    searchDialog(S.openRoomId);
  } else if (ev.altKey && (ev.key === 'ArrowUp' || ev.key === 'ArrowDown')) {
    const links = [...layout.nav.querySelectorAll('.room-link')];
    const i = links.findIndex((a) => a.getAttribute('aria-current') === 'page');
    const next = links[i + (ev.key === 'ArrowDown' ? 1 : -1)] || links[ev.key === 'ArrowDown' ? 0 : links.length - 1];
    if (next) {
      ev.preventDefault();
      location.hash = next.getAttribute('href');
    }
  }
});

// ---------------------------------------------------------------- boot

async function boot() {
  try {
    const me = await api.get('/me', { noAuthHandler: true });
    signedIn(me);
  } catch (e) {
    if (e.status === 401) loginView(app, { onSignedIn: signedIn });
    else {
      replace(app, h('main', { id: 'main', class: 'auth-page' }, h('div', { class: 'card auth-card' },
        h('h1', null, 'Roost'), h('p', { role: 'alert' }, 'The server cannot be reached right now.'),
        h('button', { type: 'button', class: 'btn btn-primary', onclick: boot }, 'Try again'))));
    }
  }
}

boot();
