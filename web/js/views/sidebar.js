// sidebar.js: my rooms and direct messages with unread and mention badges
// and the last message; the actions that add rooms.
import { h, reconcile, icon } from '../dom.js';
import { S, on, sortedRooms, roomTitle } from '../state.js';
import { messageText, displayName, plural } from '../util.js';
import { avatar, refreshPresence } from './ui.js';

function preview(r) {
  const m = r.last_message;
  if (!m) return r.topic || '';
  const who = m.type === 'system' || !m.author ? '' : (S.me && m.author.id === S.me.id ? 'You' : displayName(m.author)) + ': ';
  return who + messageText(m).replace(/\s+/g, ' ').slice(0, 80);
}

function item(r) {
  const unread = r.unread_count || 0;
  const mentions = r.mention_count || 0;
  const title = roomTitle(r);
  const label = [r.kind === 'dm' ? `Direct message with ${title}` : `Room ${title}`,
    unread ? plural(unread, 'unread message', 'unread messages') : null,
    mentions ? plural(mentions, 'mention', 'mentions') : null].filter(Boolean).join(', ');
  const a = h('a', { href: `#/r/${r.id}`, class: 'room-link' + (unread ? ' has-unread' : ''), 'aria-label': label,
    'aria-current': S.openRoomId === r.id ? 'page' : null, dataset: { roomId: r.id } },
  r.kind === 'dm' ? avatar(r.dm_user || { name: title }, 'small') : h('span', { class: 'room-hash', 'aria-hidden': 'true' }, r.kind === 'private' ? icon('lock') : '#'),
  h('span', { class: 'room-text' },
    h('span', { class: 'room-name', text: title }),
    h('span', { class: 'room-last', text: preview(r) })),
  mentions ? h('span', { class: 'badge badge-mention', 'aria-hidden': 'true', title: 'Mentions' }, '@' + mentions) : null,
  unread ? h('span', { class: 'badge', 'aria-hidden': 'true', dataset: { unread } }, String(unread > 99 ? '99+' : unread)) : null);
  return h('li', null, a);
}

export function mountSidebar(nav, actions) {
  const roomsList = h('ul', { class: 'room-list', 'aria-labelledby': 'rooms-h' });
  const dmList = h('ul', { class: 'room-list', 'aria-labelledby': 'dms-h' });
  const b = (label, fn, cls = '') => h('button', { type: 'button', class: 'btn btn-small ' + cls, onclick: fn }, label);
  nav.append(
    h('div', { class: 'side-actions', role: 'group', 'aria-label': 'Rooms' },
      b('Search', actions.search), b('New room', actions.create), b('Browse rooms', actions.discover),
      b('Join by code', actions.joinCode), b('New message', actions.newDm)),
    h('h2', { id: 'rooms-h', class: 'side-h' }, 'Rooms'), roomsList,
    h('h2', { id: 'dms-h', class: 'side-h' }, 'Direct messages'), dmList);

  function render() {
    const all = sortedRooms();
    const sig = (r) => [r.unread_count, r.mention_count, r.last_message && r.last_message.id,
      r.last_message && r.last_message._rev, r.name, r.topic, r.dm_user && displayName(r.dm_user), S.openRoomId === r.id, S.usersRev].join('|');
    const mk = (r) => ({ key: r.id, sig: sig(r), render: () => item(r) });
    reconcile(roomsList, all.filter((r) => r.kind !== 'dm').map(mk));
    reconcile(dmList, all.filter((r) => r.kind === 'dm').map(mk));
    if (!roomsList.children.length) roomsList.append(Object.assign(h('li', { class: 'muted empty' }, 'No rooms yet'), { _key: 'empty' }));
    if (!dmList.children.length) dmList.append(Object.assign(h('li', { class: 'muted empty' }, 'No conversations yet'), { _key: 'empty' }));
    const total = all.reduce((n, r) => n + (r.unread_count || 0), 0);
    document.title = (total ? `(${total}) ` : '') + (S.appName || 'Roost');
  }
  const offs = [on('rooms', render), on('presence', () => refreshPresence(nav))];
  render();
  return { render, destroy: () => offs.forEach((f) => f()) };
}
