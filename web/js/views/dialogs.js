// dialogs.js: search, new room, browse rooms, join by code, new direct
// message, room info (members, invite code, leave) and pins.
import { h, add, replace } from '../dom.js';
import { get, post, patch, qs } from '../api.js';
import { S, upsertRoom, loadMembers, roomTitle, dropRoom, on, emit } from '../state.js';
import { displayName, fmtFull, messageText, debounce, plural } from '../util.js';
import { openDialog, field, errorBox, showError, busy, avatar, toast, errorText, confirmDialog } from './ui.js';

const go = (hash) => { location.hash = hash; };

// Snippet with its highlights ([offset, length] in characters) as <mark>s.
function marked(snippet, highlights) {
  const chars = Array.from(snippet);
  const out = [];
  let pos = 0;
  for (const [off, len] of [...(highlights || [])].sort((a, b) => a[0] - b[0])) {
    if (off < pos || off >= chars.length) continue;
    if (off > pos) out.push(chars.slice(pos, off).join(''));
    out.push(h('mark', null, chars.slice(off, off + len).join('')));
    pos = off + len;
  }
  if (pos < chars.length) out.push(chars.slice(pos).join(''));
  return out;
}

export function searchDialog(roomId) {
  openDialog('Search messages', (body, close) => {
    const q = h('input', { type: 'search', 'aria-label': 'Search words', placeholder: 'Words or "a phrase"', autofocus: true });
    const only = h('input', { type: 'checkbox' });
    const status = h('p', { class: 'muted', role: 'status' });
    const results = h('ul', { class: 'results', 'aria-label': 'Results' });
    const form = h('form', { class: 'row', role: 'search' }, q,
      roomId ? h('label', { class: 'check' }, only, ' This room only') : null,
      h('button', { type: 'submit', class: 'btn btn-primary' }, 'Search'));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const text = q.value.trim();
      if (!text) return;
      status.textContent = 'Searching…';
      try {
        const doc = await get('/search' + qs({ q: text, room_id: only.checked ? roomId : null, limit: 30 }));
        status.textContent = doc.results.length ? plural(doc.results.length, 'result', 'results') : 'Nothing found.';
        replace(results, doc.results.map((r) => {
          const m = r.message;
          const room = S.rooms.get(m.room_id);
          return h('li', null, h('button', { type: 'button', class: 'result', onclick: () => { close(); go(`#/r/${m.room_id}/m/${m.id}`); } },
            h('span', { class: 'result-meta' }, `${room ? roomTitle(room) : 'Room'} · ${displayName(m.author)} · ${fmtFull(m.created_at)}`),
            h('span', { class: 'result-snippet' }, marked(r.snippet || messageText(m), r.highlights))));
        }));
      } catch (e) {
        status.textContent = errorText(e);
      }
    });
    add(body, [form, status, results]);
  }, { wide: true });
}

export function createRoomDialog() {
  openDialog('New room', (body, close) => {
    const name = h('input', { required: true, maxlength: 50, autofocus: true });
    const topic = h('textarea', { maxlength: 250, rows: 2 });
    const pub = h('input', { type: 'radio', name: 'kind', value: 'public', checked: true });
    const priv = h('input', { type: 'radio', name: 'kind', value: 'private' });
    const password = h('input', { type: 'password', autocomplete: 'new-password' });
    const err = errorBox();
    const form = h('form', { class: 'stack' },
      field('Name', name), field('Topic (optional)', topic),
      h('fieldset', null, h('legend', null, 'Who can find it'),
        h('label', { class: 'check' }, pub, ' Public: anyone here can find and join it'),
        h('label', { class: 'check' }, priv, ' Private: by invitation or invite code only')),
      field('Password (optional)', password, 'Needed to join with the invite code or from the room browser.'),
      err, h('div', { class: 'row end' }, h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create room')));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const b = { name: name.value.trim(), kind: priv.checked ? 'private' : 'public' };
      if (topic.value.trim()) b.topic = topic.value.trim();
      if (password.value) b.password = password.value;
      await busy(form, async () => {
        try {
          const room = await post('/rooms', b);
          upsertRoom(room);
          emit('stream:restart');
          close();
          go(`#/r/${room.id}`);
        } catch (e) { showError(err, e); }
      });
    });
    body.append(form);
  });
}

function passwordPrompt(room, onJoined) {
  openDialog(`Join ${room.name}`, (body, close) => {
    const pw = h('input', { type: 'password', required: true, autofocus: true, autocomplete: 'off' });
    const err = errorBox();
    const form = h('form', { class: 'stack' }, h('p', null, 'This room has a password.'), field('Room password', pw), err,
      h('div', { class: 'row end' }, h('button', { type: 'submit', class: 'btn btn-primary' }, 'Join')));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      await busy(form, async () => {
        try {
          const r = await post(`/rooms/${room.id}/join`, { password: pw.value });
          close();
          onJoined(r);
        } catch (e) { showError(err, e.field === 'password' ? 'Wrong password.' : e); }
      });
    });
    body.append(form);
  });
}

export function discoverDialog() {
  openDialog('Browse public rooms', (body, close) => {
    const q = h('input', { type: 'search', 'aria-label': 'Filter rooms by name', placeholder: 'Filter by name', autofocus: true });
    const list = h('ul', { class: 'results' });
    const more = h('button', { type: 'button', class: 'btn btn-small', hidden: true }, 'More');
    const status = h('p', { class: 'muted', role: 'status' });
    let next = null;
    const joined = (r) => { upsertRoom(r); close(); go(`#/r/${r.id}`); };
    const row = (r) => {
      const mine = S.rooms.has(r.id);
      return h('li', { class: 'row between' },
        h('span', { class: 'grow' }, h('strong', { text: r.name }), r.has_password ? h('span', { class: 'tag' }, 'password') : '',
          h('span', { class: 'muted block', text: `${plural(r.member_count, 'member', 'members')}${r.topic ? ' · ' + r.topic : ''}` })),
        h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `${mine ? 'Open' : 'Join'} ${r.name}`,
          onclick: async () => {
            if (mine) { close(); return go(`#/r/${r.id}`); }
            if (r.has_password) return passwordPrompt(r, joined);
            try { joined(await post(`/rooms/${r.id}/join`, {})); } catch (e) { toast('Could not join: ' + errorText(e), 'error'); }
          } }, mine ? 'Open' : 'Join'));
    };
    async function load(reset) {
      try {
        const doc = await get('/rooms/discover' + qs({ q: q.value.trim(), after: reset ? null : next, limit: 30 }));
        if (reset) replace(list);
        add(list, doc.rooms.map(row));
        next = doc.next_after;
        more.hidden = !doc.has_more;
        status.textContent = list.children.length ? '' : 'No public rooms found.';
      } catch (e) { status.textContent = errorText(e); }
    }
    q.addEventListener('input', debounce(() => load(true), 250));
    more.addEventListener('click', () => load(false));
    add(body, [q, status, list, more]);
    load(true);
  }, { wide: true });
}

export function joinCodeDialog() {
  openDialog('Join with an invite code', (body, close) => {
    const code = h('input', { required: true, autofocus: true, autocomplete: 'off', spellcheck: 'false' });
    const pw = h('input', { type: 'password', autocomplete: 'off' });
    const err = errorBox();
    const form = h('form', { class: 'stack' }, field('Invite code', code), field('Room password (if it has one)', pw), err,
      h('div', { class: 'row end' }, h('button', { type: 'submit', class: 'btn btn-primary' }, 'Join')));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const b = { invite_code: code.value.trim() };
      if (pw.value) b.password = pw.value;
      await busy(form, async () => {
        try {
          const r = await post('/rooms/join-by-code', b);
          upsertRoom(r);
          close();
          go(`#/r/${r.id}`);
        } catch (e) {
          showError(err, e.field === 'password' ? 'This room needs its password (or the one given is wrong).'
            : e.status === 404 ? 'No room has this invite code.' : e);
        }
      });
    });
    body.append(form);
  });
}

// People search (GET /users), shared by the DM dialog and "Add people".
function userPicker(body, { label, onPick, exclude = () => false }) {
  const q = h('input', { type: 'search', 'aria-label': label, placeholder: 'Name or email', autofocus: true });
  const list = h('ul', { class: 'results people' });
  const status = h('p', { class: 'muted', role: 'status' });
  async function load() {
    try {
      const doc = await get('/users' + qs({ q: q.value.trim(), limit: 50 }));
      const users = doc.users.filter((u) => !u.deleted && !u.suspended && !exclude(u));
      replace(list, users.map((u) => h('li', null, h('button', { type: 'button', class: 'person', onclick: () => onPick(u) },
        avatar(u), h('span', { class: 'grow' }, h('span', { text: displayName(u) }), u.display_name ? h('span', { class: 'muted', text: ' ' + u.name }) : null),
        S.online.has(u.id) ? h('span', { class: 'muted' }, 'online') : null))));
      status.textContent = users.length ? '' : 'Nobody found.';
    } catch (e) { status.textContent = errorText(e); }
  }
  q.addEventListener('input', debounce(load, 250));
  add(body, [q, status, list]);
  load();
}

export function newDmDialog() {
  openDialog('New direct message', (body, close) => {
    userPicker(body, {
      label: 'Find a person',
      exclude: (u) => S.me && u.id === S.me.id,
      onPick: async (u) => {
        try {
          const r = await post('/dms', { user_id: u.id });
          upsertRoom(r);
          emit('stream:restart');
          close();
          go(`#/r/${r.id}`);
        } catch (e) { toast('Could not start the conversation: ' + errorText(e), 'error'); }
      },
    });
  });
}

export async function roomInfoDialog(roomId) {
  if (!S.rooms.get(roomId)) return;
  try { upsertRoom(await get(`/rooms/${roomId}`)); } catch { /* show what we have */ }
  const room = S.rooms.get(roomId);
  if (!room) return;
  const manage = S.me && (S.me.role === 'admin' || room.owner_id === S.me.id);
  openDialog(room.kind === 'dm' ? roomTitle(room) : '#' + room.name, (body, close) => {
    const members = h('ul', { class: 'results people', 'aria-label': 'Members' });
    const parts = [];
    parts.push(h('p', { class: 'muted' }, room.kind === 'dm' ? 'Direct message' : `${room.kind === 'private' ? 'Private' : 'Public'} room · ${plural(room.member_count, 'member', 'members')}${room.has_password ? ' · password protected' : ''}`));
    if (room.topic) parts.push(h('p', { text: room.topic }));
    if (room.invite_code) {
      const code = h('code', { class: 'invite', text: room.invite_code });
      parts.push(h('div', { class: 'row' }, h('span', null, 'Invite code: '), code,
        navigator.clipboard ? h('button', { type: 'button', class: 'btn btn-small', onclick: () => navigator.clipboard.writeText(code.textContent).then(() => toast('Copied')) }, 'Copy') : null,
        manage ? h('button', { type: 'button', class: 'btn btn-small', onclick: async () => {
          try { code.textContent = (await post(`/rooms/${roomId}/invite-code`)).invite_code; toast('New invite code made; the old one no longer works.'); } catch (e) { toast(errorText(e), 'error'); }
        } }, 'New code') : null));
    }
    if (manage && room.kind !== 'dm') {
      const name = h('input', { value: room.name, maxlength: 50, required: true });
      const topic = h('textarea', { value: room.topic || '', maxlength: 250, rows: 2 });
      const err = errorBox();
      const f = h('form', { class: 'stack' }, h('h3', null, 'Settings'), field('Name', name), field('Topic', topic), err,
        h('div', { class: 'row end' }, h('button', { type: 'submit', class: 'btn' }, 'Save')));
      f.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        await busy(f, async () => {
          try {
            upsertRoom(await patch(`/rooms/${roomId}`, { name: name.value.trim(), topic: topic.value.trim() || null }));
            toast('Room saved');
          } catch (e) { showError(err, e); }
        });
      });
      parts.push(f);
    }
    parts.push(h('h3', null, 'Members'), members);
    if (room.kind !== 'dm' && !room.read_only && (!room.managed || (S.me && S.me.role === 'admin'))) {
      parts.push(h('button', { type: 'button', class: 'btn btn-small', onclick: () => addPeopleDialog(roomId) }, 'Add people'));
    }
    if (room.kind !== 'dm' && !room.managed) {
      parts.push(h('div', { class: 'row end' }, h('button', { type: 'button', class: 'btn btn-danger', onclick: async () => {
        if (!(await confirmDialog(`Leave ${room.name}?`, 'Leave', true))) return;
        try {
          await post(`/rooms/${roomId}/leave`);
          dropRoom(roomId);
          close();
          go('#/');
        } catch (e) { toast('Could not leave: ' + errorText(e), 'error'); }
      } }, 'Leave room')));
    }
    add(body, parts);
    const fill = async () => {
      try {
        const list = await loadMembers(roomId);
        replace(members, list.map((m) => h('li', { class: 'person' }, avatar(m.user),
          h('span', { class: 'grow', text: displayName(m.user) }),
          m.role === 'owner' ? h('span', { class: 'tag' }, 'owner') : null)));
      } catch (e) { replace(members, h('li', { class: 'muted' }, errorText(e))); }
    };
    const off = on('members:' + roomId, fill);
    body.parentElement.addEventListener('close', off);
    fill();
  }, { wide: true });
}

function addPeopleDialog(roomId) {
  openDialog('Add people', (body, close) => {
    userPicker(body, {
      label: 'Find people to add',
      exclude: (u) => (S.members.get(roomId) || []).some((m) => m.user.id === u.id),
      onPick: async (u) => {
        try {
          await post(`/rooms/${roomId}/members`, { user_ids: [u.id] });
          toast(`${displayName(u)} added`);
          close();
        } catch (e) { toast('Could not add: ' + errorText(e), 'error'); }
      },
    });
  });
}

export function pinsDialog(roomId) {
  openDialog('Pinned messages', (body, close) => {
    const list = h('ul', { class: 'results' });
    const status = h('p', { class: 'muted', role: 'status' }, 'Loading…');
    add(body, [status, list]);
    get(`/rooms/${roomId}/pins`).then((doc) => {
      status.textContent = doc.pins.length ? '' : 'Nothing is pinned here.';
      replace(list, doc.pins.map((p) => h('li', null, h('button', { type: 'button', class: 'result',
        onclick: () => { close(); go(`#/r/${roomId}/m/${p.message.id}`); } },
      h('span', { class: 'result-meta' }, `${displayName(p.message.author)} · pinned by ${S.users.has(p.pinned_by) ? displayName(S.users.get(p.pinned_by)) : 'someone'} · ${fmtFull(p.pinned_at)}`),
      h('span', { class: 'result-snippet', text: messageText(p.message) })))));
    }).catch((e) => { status.textContent = errorText(e); });
  }, { wide: true });
}
