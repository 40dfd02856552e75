// login.js: sign-in, and the forced password change (must_change_password).
import { h, add, replace } from '../dom.js';
import { post, get, setCsrf } from '../api.js';
import { field, errorBox, showError, busy } from './ui.js';

export function loginView(root, { onSignedIn, notice }) {
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true, autofocus: true });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const err = errorBox();
  const form = h('form', { class: 'card auth-card', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title', class: 'brand' }, h('span', { class: 'logo', 'aria-hidden': 'true' }), 'Roost'),
    notice ? h('p', { class: 'notice', role: 'status', text: notice }) : null,
    field('Email', email),
    field('Password', password),
    err,
    h('button', { type: 'submit', class: 'btn btn-primary wide' }, 'Sign in'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError(err, null);
    await busy(form, async () => {
      try {
        // a phone signs in as "mobile", so it does not end the desktop session
        const device = matchMedia('(pointer: coarse) and (max-width: 760px)').matches ? 'mobile' : 'desktop';
        const doc = await post('/auth/login', { email: email.value.trim(), password: password.value, device },
          { noAuthHandler: true });
        setCsrf(doc.csrf_token);
        onSignedIn(doc.user);
      } catch (e) {
        if (e.status === 401) showError(err, 'Wrong email or password.');
        else if (e.status === 403) showError(err, 'This account is suspended.');
        else showError(err, e);
        password.select();
      }
    });
    if (!err.hidden) password.focus();
  });
  replace(root, h('main', { id: 'main', class: 'auth-page' }, form));
  email.focus();
}

export function passwordForm({ requireCurrent = true, onDone, submitLabel = 'Change password' }) {
  const cur = h('input', { type: 'password', autocomplete: 'current-password', required: true });
  const next = h('input', { type: 'password', autocomplete: 'new-password', required: true, minlength: 8 });
  const again = h('input', { type: 'password', autocomplete: 'new-password', required: true });
  const err = errorBox();
  const form = h('form', { class: 'stack' },
    requireCurrent ? field('Current password', cur) : null,
    field('New password', next, 'At least 12 characters unless your administrator chose otherwise.'),
    field('New password again', again),
    err,
    h('button', { type: 'submit', class: 'btn btn-primary' }, submitLabel));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (next.value !== again.value) return showError(err, 'The two new passwords differ.');
    showError(err, null);
    await busy(form, async () => {
      try {
        await post('/me/password', { current_password: cur.value, new_password: next.value });
        form.reset();
        onDone();
      } catch (e) {
        showError(err, e.field === 'current_password' ? 'The current password is wrong.' : e);
      }
    });
  });
  return form;
}

export function forcedPasswordView(root, { onDone, onLogout }) {
  const form = passwordForm({
    submitLabel: 'Set new password',
    onDone: async () => onDone(await get('/me')),
  });
  replace(root, h('main', { id: 'main', class: 'auth-page' },
    add(h('section', { class: 'card auth-card', 'aria-labelledby': 'pw-title' }), [
      h('h1', { id: 'pw-title', text: 'Choose a new password' }),
      h('p', { text: 'Your administrator set a temporary password. Pick your own to continue.' }),
      form,
      h('button', { type: 'button', class: 'btn btn-link', onclick: onLogout }, 'Sign out'),
    ])));
  form.querySelector('input').focus();
}
