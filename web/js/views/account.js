// account.js: my profile, password, sessions.
import { h, add, replace } from '../dom.js';
import { get, patch, del } from '../api.js';
import { S, emit } from '../state.js';
import { fmtFull } from '../util.js';
import { field, errorBox, showError, busy, toast, errorText, avatar, confirmDialog } from './ui.js';
import { passwordForm } from './login.js';

export function mountAccount(main, { onLogout, onBack }) {
  const me = S.me;
  const name = h('input', { value: me.name, required: true, maxlength: 64, autocomplete: 'nickname' });
  const dname = h('input', { value: me.display_name || '', maxlength: 64, autocomplete: 'name' });
  const about = h('textarea', { value: me.about || '', maxlength: 500, rows: 3 });
  const url = h('input', { type: 'url', value: me.avatar_url || '', maxlength: 2048, placeholder: 'https://…' });
  const err = errorBox();
  const pic = h('div', { class: 'profile-pic' }, avatar(me, 'large'));
  const profile = h('form', { class: 'stack', 'aria-labelledby': 'profile-h' },
    h('h2', { id: 'profile-h' }, 'Profile'), pic,
    field('Name', name, 'How people mention you (@name).'), field('Display name (optional)', dname),
    field('About (optional)', about), field('Picture URL (optional, https)', url),
    err, h('div', { class: 'row' }, h('button', { type: 'submit', class: 'btn btn-primary' }, 'Save profile')));
  profile.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(err, null);
    await busy(profile, async () => {
      try {
        const doc = await patch('/me', { name: name.value.trim(), display_name: dname.value.trim() || null,
          about: about.value.trim() || null, avatar_url: url.value.trim() || null });
        Object.assign(S.me, doc);
        replace(pic, avatar(S.me, 'large'));
        emit('me');
        toast('Profile saved');
      } catch (e) { showError(err, e); }
    });
  });

  const pw = passwordForm({ onDone: () => { toast('Password changed. Your other sessions were signed out.'); loadSessions(); } });

  const sessions = h('ul', { class: 'results', 'aria-label': 'Sessions' });
  async function loadSessions() {
    try {
      const doc = await get('/me/sessions');
      replace(sessions, doc.sessions.map((s) => h('li', { class: 'row between' },
        h('span', { class: 'grow' },
          h('strong', null, `${s.device === 'mobile' ? 'Mobile' : 'Desktop'}${s.current ? ' (this one)' : ''}`),
          h('span', { class: 'muted block', text: `${s.user_agent || 'unknown browser'} · ${s.ip || ''}` }),
          h('span', { class: 'muted block', text: `Signed in ${fmtFull(s.created_at)} · last used ${fmtFull(s.last_used_at)}` })),
        s.current ? null : h('button', { type: 'button', class: 'btn btn-small btn-danger', 'aria-label': `End ${s.device} session from ${fmtFull(s.created_at)}`,
          onclick: async () => {
            if (!(await confirmDialog('End this session? That device will be signed out.', 'End session', true))) return;
            try { await del(`/me/sessions/${s.id}`); loadSessions(); } catch (e) { toast(errorText(e), 'error'); }
          } }, 'End'))));
    } catch (e) { replace(sessions, h('li', { class: 'muted' }, errorText(e))); }
  }
  loadSessions();

  const section = h('section', { class: 'page', 'aria-labelledby': 'account-h' },
    h('header', { class: 'room-head' },
      h('button', { type: 'button', class: 'icon-btn back-btn', 'aria-label': 'Back to rooms', onclick: onBack }, '←'),
      h('h1', { id: 'account-h', class: 'room-title', tabindex: -1 }, 'Your account')),
    h('div', { class: 'page-body' },
      add(h('div', { class: 'card' }), [profile]),
      add(h('div', { class: 'card' }), [h('h2', null, 'Password'), pw]),
      add(h('div', { class: 'card' }), [h('h2', null, 'Sessions'),
        h('p', { class: 'muted' }, 'Where you are signed in. Signing in on another desktop (or mobile) ends the previous session of that kind.'),
        sessions]),
      add(h('div', { class: 'card' }), [h('h2', null, 'Sign out'),
        h('p', { class: 'muted', text: `Signed in as ${me.email || me.name}.` }),
        h('button', { type: 'button', class: 'btn btn-danger', onclick: onLogout }, 'Sign out')])));
  replace(main, section);
  section.querySelector('h1').focus();
  return { destroy() {} };
}
