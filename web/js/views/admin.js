// admin.js (loaded on demand): users and tenant settings, for admins.
import { h, add, replace } from '../dom.js';
import { get, post, patch, del, qs } from '../api.js';
import { S, applySettings } from '../state.js';
import { displayName, debounce } from '../util.js';
import { field, errorBox, showError, busy, toast, errorText, confirmDialog, openDialog, avatar } from './ui.js';

function frame(main, title, tab, onBack, ...content) {
  const section = h('section', { class: 'page', 'aria-labelledby': 'admin-h' },
    h('header', { class: 'room-head' },
      h('button', { type: 'button', class: 'icon-btn back-btn', 'aria-label': 'Back to rooms', onclick: onBack }, '←'),
      h('h1', { id: 'admin-h', class: 'room-title', tabindex: -1, text: title }),
      h('nav', { class: 'tabs', 'aria-label': 'Administration' },
        h('a', { href: '#/admin/users', 'aria-current': tab === 'users' ? 'page' : null }, 'Users'),
        h('a', { href: '#/admin/settings', 'aria-current': tab === 'settings' ? 'page' : null }, 'Settings'))),
    h('div', { class: 'page-body' }, content));
  replace(main, section);
  section.querySelector('h1').focus();
}

export function mountAdminUsers(main, { onBack }) {
  const q = h('input', { type: 'search', 'aria-label': 'Find users', placeholder: 'Name or email' });
  const tbody = h('tbody');
  const more = h('button', { type: 'button', class: 'btn btn-small', hidden: true }, 'More');
  const status = h('p', { class: 'muted', role: 'status' });
  let next = null;

  const rowFor = (u) => {
    const b = (label, fn, cls = '') => h('button', { type: 'button', class: 'btn btn-small ' + cls,
      'aria-label': `${label} ${displayName(u)}`, onclick: fn }, label);
    const self = S.me && u.id === S.me.id;
    const update = async (body, msg) => {
      try {
        const doc = await patch(`/admin/users/${u.id}`, body);
        tr.replaceWith(rowFor(doc));
        toast(msg);
      } catch (e) { toast(errorText(e), 'error'); }
    };
    const tr = h('tr', { dataset: { userId: u.id } },
      h('td', null, h('span', { class: 'row' }, avatar(u, 'small'), h('span', { text: displayName(u) }))),
      h('td', { text: u.email || '' }),
      h('td', { text: u.role }),
      h('td', { text: u.deleted ? 'deleted' : u.suspended ? 'suspended' : u.must_change_password ? 'must change password' : 'active' }),
      h('td', { class: 'actions' }, self ? h('span', { class: 'muted' }, 'you') : [
        u.suspended ? b('Restore', () => update({ suspended: false }, `${displayName(u)} restored`))
          : b('Suspend', async () => {
            if (await confirmDialog(`Suspend ${displayName(u)}? Their sessions end now.`, 'Suspend', true)) update({ suspended: true }, `${displayName(u)} suspended`);
          }),
        u.role === 'admin' ? b('Make member', () => update({ role: 'member' }, 'Role changed'))
          : b('Make admin', () => update({ role: 'admin' }, 'Role changed')),
        b('Reset password', async () => {
          if (!(await confirmDialog(`Reset ${displayName(u)}'s password? Their sessions end and they must choose a new one.`, 'Reset'))) return;
          try {
            const doc = await post(`/admin/users/${u.id}/reset-password`);
            openDialog('Temporary password', (body) => add(body, [
              h('p', null, `Give this to ${displayName(u)}; it is shown only once.`),
              h('code', { class: 'invite', text: doc.temporary_password })]));
          } catch (e) { toast(errorText(e), 'error'); }
        }),
        b('Delete', async () => {
          if (!(await confirmDialog(`Delete ${displayName(u)}? Their personal data is erased; their messages stay as "Deleted User".`, 'Delete', true))) return;
          try { await del(`/admin/users/${u.id}`); tr.remove(); toast('User deleted'); } catch (e) { toast(errorText(e), 'error'); }
        }, 'btn-danger'),
      ]));
    return tr;
  };

  async function load(reset) {
    try {
      const doc = await get('/users' + qs({ q: q.value.trim(), after: reset ? null : next, limit: 50 }));
      if (reset) replace(tbody);
      add(tbody, doc.users.map(rowFor));
      next = doc.next_after;
      more.hidden = !doc.has_more;
      status.textContent = tbody.children.length ? '' : 'No users found.';
    } catch (e) { status.textContent = errorText(e); }
  }
  q.addEventListener('input', debounce(() => load(true), 250));
  more.addEventListener('click', () => load(false));

  const email = h('input', { type: 'email', required: true, autocomplete: 'off' });
  const name = h('input', { required: true, maxlength: 64, autocomplete: 'off' });
  const pw = h('input', { type: 'text', required: true, autocomplete: 'off', minlength: 8 });
  const role = h('select', null, h('option', { value: 'member' }, 'Member'), h('option', { value: 'admin' }, 'Admin'));
  const must = h('input', { type: 'checkbox', checked: true });
  const err = errorBox();
  const create = h('form', { class: 'stack', 'aria-labelledby': 'create-h' },
    h('h2', { id: 'create-h' }, 'Create a user'),
    h('div', { class: 'grid2' }, field('Email', email), field('Name', name), field('Password', pw), field('Role', role)),
    h('label', { class: 'check' }, must, ' Must choose a new password at first sign-in'),
    err, h('div', { class: 'row' }, h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create user')));
  create.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(err, null);
    await busy(create, async () => {
      try {
        const u = await post('/admin/users', { email: email.value.trim(), name: name.value.trim(), password: pw.value,
          role: role.value, must_change_password: must.checked });
        tbody.prepend(rowFor(u));
        create.reset();
        must.checked = true;
        toast(`${displayName(u)} created`);
      } catch (e) { showError(err, e); }
    });
  });

  frame(main, 'Administration', 'users', onBack,
    add(h('div', { class: 'card' }), [create]),
    add(h('div', { class: 'card' }), [h('h2', null, 'Users'), q, status,
      h('div', { class: 'table-wrap' }, h('table', { class: 'table' },
        h('thead', null, h('tr', null, ['Name', 'Email', 'Role', 'Status', 'Actions'].map((t) => h('th', { scope: 'col', text: t })))),
        tbody)), more]));
  load(true);
  return { destroy() {} };
}

const LABELS = {
  open_registration: 'Anyone may register', password_min_length: 'Minimum password length',
  session_lifetime_hours: 'Session lifetime (hours)', app_name: 'Name of this chat', login_attempts_per_15min: 'Failed sign-ins per account per 15 minutes',
  login_failures_per_ip_per_15min: 'Failed sign-ins per address per 15 minutes',
  single_session_per_device: 'One session per device class (a new sign-in ends the older one)',
  registrations_per_hour: 'Registrations per hour (per address)', requests_per_minute: 'API requests per minute (per user)',
  default_room_name: 'Default room', default_max_members: 'Default room size limit (0 = none)', rooms_per_user: 'Rooms per user',
  message_max_chars: 'Longest message (characters)', edit_window_minutes: 'Edit window (minutes, 0 = always)',
  messages_per_10s: 'Messages per 10 seconds (per user)', reactions: 'Reactions (names, comma separated)',
  visitor_room_id: 'Visitor room id (empty = off)', visitor_messages_per_hour: 'Visitor messages per hour',
};

export function mountAdminSettings(main, { onBack }) {
  const form = h('form', { class: 'stack', 'aria-label': 'Tenant settings' });
  const err = errorBox();
  let current = null;
  const inputs = {};
  (async () => {
    try { current = await get('/admin/settings'); } catch (e) { return showError(err, e); }
    const rows = Object.keys(current).map((k) => {
      const v = current[k];
      let input;
      if (typeof v === 'boolean') input = h('input', { type: 'checkbox', checked: v });
      else if (k === 'reactions') input = h('input', { value: v.join(', ') });
      else if (typeof v === 'number' || k === 'visitor_room_id') input = h('input', { type: 'number', value: v == null ? '' : String(v), inputmode: 'numeric' });
      else input = h('input', { value: v == null ? '' : String(v) });
      inputs[k] = input;
      return typeof v === 'boolean' ? h('label', { class: 'check' }, input, ' ' + (LABELS[k] || k)) : field(LABELS[k] || k, input);
    });
    add(form, [h('div', { class: 'grid2' }, rows), err,
      h('div', { class: 'row' }, h('button', { type: 'submit', class: 'btn btn-primary' }, 'Save settings'))]);
  })();
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(err, null);
    const body = {};
    for (const [k, input] of Object.entries(inputs)) {
      const old = current[k];
      let v;
      if (typeof old === 'boolean') v = input.checked;
      else if (k === 'reactions') v = input.value.split(',').map((s) => s.trim()).filter(Boolean);
      else if (typeof old === 'number' || k === 'visitor_room_id') v = input.value === '' ? null : Number(input.value);
      else v = input.value;
      if (JSON.stringify(v) !== JSON.stringify(old)) body[k] = v;
    }
    if (!Object.keys(body).length) return toast('Nothing changed');
    await busy(form, async () => {
      try {
        current = await patch('/admin/settings', body);
        applySettings(current);
        toast('Settings saved');
      } catch (e) { showError(err, e); }
    });
  });
  frame(main, 'Administration', 'settings', onBack, add(h('div', { class: 'card' }), [h('h2', null, 'Settings'), form]));
  return { destroy() {} };
}
