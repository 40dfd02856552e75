// composer.js: the message box. Enter sends, Shift+Enter is a newline,
// @ completes member names, Escape cancels a reply or an edit, ArrowUp in
// an empty box edits my last message.
import { h, replace } from '../dom.js';
import { post } from '../api.js';
import { displayName } from '../util.js';

let seq = 0;

export function createComposer({ roomTitle, members, onSend, onEdit, onEditLast, onSizeChange }) {
  const n = ++seq;
  const listId = `mention-list-${n}`;
  const ta = h('textarea', { class: 'composer-input', rows: 1, 'aria-label': `Message ${roomTitle}`,
    placeholder: `Message ${roomTitle}`, 'aria-autocomplete': 'list', 'aria-controls': listId,
    enterkeyhint: 'send' });
  const ctxBar = h('div', { class: 'composer-context', hidden: true });
  const list = h('ul', { class: 'mentions', id: listId, role: 'listbox', 'aria-label': 'Members', hidden: true });
  const sendBtn = h('button', { type: 'submit', class: 'btn btn-primary send-btn' }, 'Send');
  const form = h('form', { class: 'composer', 'aria-label': 'Write a message' }, ctxBar, list,
    h('div', { class: 'composer-row' }, ta, sendBtn));

  let mode = null;        // null | {kind: 'reply'|'edit', m}
  let lastPing = 0;
  let matches = [];
  let sel = 0;
  let mentionStart = -1;
  let draftBeforeEdit = '';

  function grow() {
    ta.style.height = 'auto';
    ta.style.height = Math.min(ta.scrollHeight, 200) + 'px';
    if (onSizeChange) onSizeChange();
  }

  function setMode(next) {
    mode = next;
    if (!mode) {
      ctxBar.hidden = true;
      replace(ctxBar);
      sendBtn.textContent = 'Send';
      return;
    }
    const who = displayName(mode.m.author);
    const label = mode.kind === 'reply' ? `Replying to ${who}` : 'Editing your message';
    replace(ctxBar, h('span', { class: 'ctx-label' }, label,
      mode.kind === 'reply' ? h('span', { class: 'ctx-excerpt', text: ': ' + String(mode.m.content || '').slice(0, 80) }) : null),
    h('button', { type: 'button', class: 'icon-btn', 'aria-label': mode.kind === 'reply' ? 'Cancel reply' : 'Cancel edit',
      onclick: cancel }, '✕'));
    ctxBar.hidden = false;
    sendBtn.textContent = mode.kind === 'edit' ? 'Save' : 'Send';
  }

  function cancel() {
    if (mode && mode.kind === 'edit') {
      ta.value = draftBeforeEdit;
      grow();
    }
    setMode(null);
    ta.focus();
  }

  // ---- @ completion
  function closeList() {
    list.hidden = true;
    ta.removeAttribute('aria-activedescendant');
    matches = [];
  }

  function mentionQuery() {
    const pos = ta.selectionStart;
    const before = ta.value.slice(0, pos);
    const m = before.match(/(^|\s)@([^\s@]{0,32})$/u);
    if (!m) return null;
    mentionStart = pos - m[2].length - 1;
    return m[2].toLowerCase();
  }

  function showList() {
    replace(list, matches.map((u, i) => h('li', { id: `${listId}-${i}`, role: 'option', class: 'mention-opt',
      'aria-selected': i === sel ? 'true' : 'false',
      onmousedown: (ev) => { ev.preventDefault(); pick(i); } },
    h('span', { class: 'mention-name', text: displayName(u) }),
    u.display_name ? h('span', { class: 'muted', text: ' ' + u.name }) : null)));
    list.hidden = false;
    ta.setAttribute('aria-activedescendant', `${listId}-${sel}`);
  }

  async function updateMentions() {
    const q = mentionQuery();
    if (q === null) return closeList();
    const all = await members();
    if (mentionQuery() !== q) return;
    matches = all.filter((u) => !u.deleted && [u.name, u.display_name].some((s) => s && s.toLowerCase().startsWith(q))).slice(0, 8);
    sel = 0;
    if (!matches.length) return closeList();
    showList();
  }

  function pick(i) {
    const u = matches[i];
    if (!u) return;
    const name = displayName(u);
    const pos = ta.selectionStart;
    ta.value = ta.value.slice(0, mentionStart) + '@' + name + ' ' + ta.value.slice(pos);
    const caret = mentionStart + name.length + 2;
    ta.setSelectionRange(caret, caret);
    closeList();
    ta.focus();
  }

  // ---- typing pings (POST /rooms/{id}/typing, at most one per 3 s)
  function ping(on) {
    const now = Date.now();
    if (on && now - lastPing < 3000) return;
    if (!on && !lastPing) return;
    lastPing = on ? now : 0;
    post(`/rooms/${form.dataset.room}/typing`, { state: on ? 'start' : 'stop' }).catch(() => {});
  }

  ta.addEventListener('input', () => {
    grow();
    updateMentions();
    if (mode && mode.kind === 'edit') return;
    if (ta.value.trim()) ping(true);
    else ping(false);
  });
  ta.addEventListener('blur', () => setTimeout(closeList, 150));
  ta.addEventListener('keydown', (ev) => {
    if (!list.hidden && matches.length) {
      if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
        ev.preventDefault();
        sel = (sel + (ev.key === 'ArrowDown' ? 1 : matches.length - 1)) % matches.length;
        return showList();
      }
      if (ev.key === 'Enter' || ev.key === 'Tab') {
        ev.preventDefault();
        return pick(sel);
      }
      if (ev.key === 'Escape') {
        ev.preventDefault();
        return closeList();
      }
    }
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      submit();
    } else if (ev.key === 'Escape' && mode) {
      ev.preventDefault();
      cancel();
    } else if (ev.key === 'ArrowUp' && !ta.value && !mode && onEditLast) {
      if (onEditLast()) ev.preventDefault();
    }
  });
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submit();
  });

  async function submit() {
    const text = ta.value.replace(/^\s*\n/, '').replace(/\s+$/, '');
    if (!text.trim()) return;
    if (mode && mode.kind === 'edit') {
      const m = mode.m;
      if (await onEdit(m, text)) {
        ta.value = draftBeforeEdit;
        setMode(null);
        grow();
      }
      return;
    }
    const replyTo = mode && mode.kind === 'reply' ? mode.m.id : null;
    ta.value = '';
    setMode(null);
    grow();
    onSend(text, replyTo);
    ping(false);
    ta.focus();
  }

  return {
    el: form,
    setRoom(id) { form.dataset.room = String(id); },
    focus() { ta.focus(); },
    reply(m) { setMode({ kind: 'reply', m }); ta.focus(); },
    edit(m) {
      if (!mode || mode.kind !== 'edit') draftBeforeEdit = ta.value;
      setMode({ kind: 'edit', m });
      ta.value = m.content || '';
      grow();
      ta.focus();
      ta.setSelectionRange(ta.value.length, ta.value.length);
    },
    // typing stop, if a start was announced (best effort)
    stopTyping() { ping(false); },
  };
}
