#!/usr/bin/env node
// The web client in a real browser: Debian's chromium driven by
// playwright-core (never a downloaded browser).
//
//   node tests/browser/run.mjs <base-url> <config.json>
//
// config.json (written by tests/integration/test_browser.py): the users,
// the rooms it made, the artifacts folder, an optional list of scenarios.
// Protocol on stdout, one line each:
//   @@ready                           the browser runs
//   @@result {"name", "ok", "error", "ms", "data"}   one per scenario
//   @@cmd {"id", "cmd", ...}          ask the Python side to act on the
//                                     stack (relay_kill, relay_start); it
//                                     answers {"id", "ok", "error"} on stdin
// anything else is a comment. Exit status 0 when every scenario passed.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';

const [base, cfgPath] = process.argv.slice(2);
if (!base || !cfgPath) {
  console.error('usage: run.mjs <base-url> <config.json>');
  process.exit(2);
}
const cfg = JSON.parse(fs.readFileSync(cfgPath, 'utf8'));
const BASE = base.replace(/\/$/, '');
const ART = cfg.artifacts;
fs.mkdirSync(ART, { recursive: true });
for (const f of fs.readdirSync(ART)) if (/^failed-.*\.png$/.test(f)) fs.rmSync(path.join(ART, f));
const T = 10000; // default wait

const say = (s) => process.stdout.write(s + '\n');
const log = (...a) => say('# ' + a.join(' '));

// ---------------------------------------------------------------- commands to the stack
let cmdSeq = 0;
const waiting = new Map();
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  let doc;
  try { doc = JSON.parse(line); } catch { return; }
  const w = waiting.get(doc.id);
  if (!w) return;
  waiting.delete(doc.id);
  if (doc.ok) w.resolve(doc.result);
  else w.reject(new Error(`stack command failed: ${doc.error}`));
});
function stackCmd(cmd, extra = {}) {
  const id = ++cmdSeq;
  return new Promise((resolve, reject) => {
    waiting.set(id, { resolve, reject });
    say('@@cmd ' + JSON.stringify({ id, cmd, ...extra }));
  });
}

// ---------------------------------------------------------------- helpers
function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

// Messages of the open room whose text is exactly `text`.
async function countText(page, text) {
  return page.evaluate((t) => [...document.querySelectorAll('.msgs .msg-text')].filter((e) => e.textContent === t).length, text);
}

async function waitText(page, text, { timeout = T, count = 1 } = {}) {
  try {
    await page.waitForFunction(([t, n]) => [...document.querySelectorAll('.msgs .msg-text')].filter((e) => e.textContent === t).length >= n,
      [text, count], { timeout });
  } catch {
    throw new Error(`"${text}" did not appear within ${timeout} ms on ${page.__who}'s page`);
  }
}

// The <li> of the (last) message whose text is exactly `text`.
function msgItem(page, text) {
  return page.locator('.msgs > li').filter({ has: page.locator('.msg-text', { hasText: text }) }).last();
}

async function send(page, text) {
  const box = page.locator('.composer-input');
  await box.click();
  await box.fill(text);
  await box.press('Enter');
}

async function openRoom(page, name) {
  await page.locator('.room-link', { has: page.locator('.room-name', { hasText: name }) }).first().click();
  await page.waitForFunction((n) => {
    const t = document.querySelector('#room-title');
    return t && t.textContent === '#' + n && document.querySelector('.msgs');
  }, name, { timeout: T });
}

const dialogs = [];
async function newUserPage(browser, who, viewport = { width: 1280, height: 800 }) {
  const ctx = await browser.newContext({ viewport, locale: 'en-GB', timezoneId: 'UTC' });
  const page = await ctx.newPage();
  page.__who = who;
  page.__errors = [];
  page.on('dialog', (d) => { dialogs.push(`${who}: ${d.type()} ${d.message()}`); d.dismiss().catch(() => {}); });
  page.on('pageerror', (e) => page.__errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Uncaught/i.test(m.text())) page.__errors.push(m.text());
  });
  return { ctx, page };
}

async function signIn(page, user) {
  await page.goto(BASE + '/');
  await page.getByLabel('Email').fill(user.email);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForSelector('.room-link', { timeout: T });
}

// ---------------------------------------------------------------- scenarios
const S = {};
let browser;
let A; // Ana
let B; // Ben
const room = cfg.rooms.team;
const users = cfg.users;

const scenarios = [
  ['first_screen_budget', async () => {
    const { ctx, page } = await newUserPage(browser, 'guest');
    const seen = [], sizing = [];
    page.on('requestfinished', (req) => {
      // sizes() answers later: the total waits for all of them
      sizing.push(req.sizes().catch(() => null).then((s) =>
        seen.push({ url: req.url(), bytes: s ? s.responseBodySize + s.responseHeadersSize : 0 })));
    });
    page.on('requestfailed', (req) => seen.push({ url: req.url(), bytes: 0, failed: true }));
    const resp = await page.goto(BASE + '/');
    const csp = resp.headers()['content-security-policy'] || '';
    assert(/script-src 'self'/.test(csp) && /frame-ancestors 'none'/.test(csp), `no strict CSP on /: "${csp}"`);
    await page.getByRole('button', { name: 'Sign in' }).waitFor({ timeout: T });
    await page.waitForLoadState('networkidle');
    await Promise.all(sizing);
    const external = seen.filter((r) => !r.url.startsWith(BASE + '/'));
    assert(!external.length, `external requests: ${external.map((r) => r.url).join(', ')}`);
    const total = seen.reduce((n, r) => n + r.bytes, 0);
    const assets = seen.filter((r) => !r.url.includes('/api/'));
    log(`first screen: ${seen.length} requests, ${total} bytes transferred (${assets.length} static files)`);
    assert(total < 200 * 1024, `first screen transferred ${total} bytes (budget 204800)`);
    assert(!page.__errors.length, `page errors: ${page.__errors.join(' | ')}`);
    // labelled form controls (screen readers)
    assert(await page.getByLabel('Email').count() === 1, 'the email field has no label');
    await ctx.close();
    return { bytes: total, requests: seen.length };
  }],

  ['sign_in_and_room_list', async () => {
    A = await newUserPage(browser, 'Ana');
    B = await newUserPage(browser, 'Ben');
    await signIn(A.page, users.ana);
    await signIn(B.page, users.ben);
    // Ben has one unread message in the team room (seeded by the test)
    const link = B.page.locator('.room-link', { has: B.page.locator('.room-name', { hasText: room.name }) });
    await link.locator('.badge').waitFor({ timeout: T });
    assert((await link.locator('.badge').textContent()) === '1', 'unread badge is not 1');
    assert((await link.locator('.room-last').textContent()).includes(room.seed), 'last message not shown in the room list');
    await openRoom(A.page, room.name);
    await openRoom(B.page, room.name);
    await waitText(B.page, room.seed);
    await B.page.waitForFunction((n) => {
      const l = [...document.querySelectorAll('.room-link')].find((a) => a.querySelector('.room-name').textContent === n);
      return l && !l.querySelector('.badge');
    }, room.name, { timeout: T });
    // the composer and the log are labelled
    assert(await A.page.getByRole('textbox', { name: `Message #${room.name}` }).count() === 1, 'composer has no accessible name');
    assert(await A.page.getByRole('log').count() === 1, 'no role=log message list');
  }],

  ['live_messages', async () => {
    const t1 = `Hello Ben ${Date.now()}`;
    await send(A.page, t1);
    const mine = msgItem(A.page, t1);
    await mine.waitFor({ timeout: T });
    await A.page.waitForFunction((t) => [...document.querySelectorAll('.msgs > li')].some((li) =>
      li.querySelector('.msg-text')?.textContent === t && li.dataset.status === 'sent'), t1, { timeout: T });
    await waitText(B.page, t1);
    // Shift+Enter is a newline, Enter sends
    const box = B.page.locator('.composer-input');
    await box.click();
    await box.type('first line');
    await box.press('Shift+Enter');
    await box.type('second line');
    await box.press('Enter');
    await waitText(A.page, 'first line\nsecond line');
    assert(await countText(A.page, t1) === 1, 'own message shown twice');
    S.benMsg = 'first line\nsecond line';
    S.anaMsg = t1;
  }],

  ['typing_and_presence', async () => {
    const box = B.page.locator('.composer-input');
    await box.click();
    await box.type('I am thinking');
    await A.page.waitForFunction(() => /Ben is typing/.test(document.querySelector('.typing-line')?.textContent || ''), null, { timeout: T });
    await box.fill('');
    // Ben's stream is open: Ana sees him online (presence dot on his avatar)
    await A.page.waitForSelector(`.avatar.online[data-presence="${users.ben.id}"]`, { timeout: T });
  }],

  ['reactions_live', async () => {
    const item = msgItem(A.page, 'second line');
    await item.hover();
    await item.getByRole('button', { name: 'Add reaction' }).click();
    await item.getByRole('button', { name: 'heart' }).click();
    const bItem = msgItem(B.page, 'second line');
    await bItem.locator('.chip[data-emoji="heart"]').waitFor({ timeout: T });
    assert((await bItem.locator('.chip[data-emoji="heart"] .count').textContent()) === '1', 'heart count is not 1 for Ben');
    await bItem.locator('.chip[data-emoji="heart"]').click();
    await A.page.waitForFunction(() => [...document.querySelectorAll('.chip[data-emoji="heart"] .count')].some((c) => c.textContent === '2'),
      null, { timeout: T });
    assert((await item.locator('.chip[data-emoji="heart"]').getAttribute('aria-pressed')) === 'true', 'my reaction is not marked pressed');
  }],

  ['edit_and_delete_live', async () => {
    // Ben edits his message: ArrowUp in the empty composer edits the last one
    const box = B.page.locator('.composer-input');
    await box.click();
    await box.fill('');
    await box.press('ArrowUp');
    await B.page.waitForFunction(() => document.querySelector('.composer-input').value === 'first line\nsecond line', null, { timeout: T });
    await box.fill('edited by Ben');
    await box.press('Enter');
    await waitText(A.page, 'edited by Ben');
    await msgItem(A.page, 'edited by Ben').locator('.edited').waitFor({ timeout: T });
    // Ana deletes hers
    const item = msgItem(A.page, S.anaMsg);
    await item.hover();
    await item.getByRole('button', { name: 'Delete' }).click();
    await A.page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
    await B.page.waitForFunction((t) => ![...document.querySelectorAll('.msg-text')].some((e) => e.textContent === t) &&
      [...document.querySelectorAll('.msg-text')].some((e) => e.textContent === 'This message was deleted'), S.anaMsg, { timeout: T });
  }],

  ['failed_send_offers_retry', async () => {
    // the server refuses it (over message_max_chars): "failed", with Retry
    // (same client_msg_id) and Discard
    const long = 'x'.repeat(4001);
    const isSend = (r) => r.method() === 'POST' && /\/rooms\/\d+\/messages$/.test(r.url()) &&
      (r.postDataJSON() || {}).content === long;
    const first = A.page.waitForRequest(isSend, { timeout: T });
    await send(A.page, long);
    const cid = (await first).postDataJSON().client_msg_id;
    const li = A.page.locator('.msgs > li[data-status="failed"]');
    await li.waitFor({ timeout: T });
    // Retry sends it again, with the same client_msg_id, and it fails again
    const again = A.page.waitForRequest(isSend, { timeout: T });
    await li.getByRole('button', { name: 'Retry' }).click();
    const cid2 = (await again).postDataJSON().client_msg_id;
    assert(cid && cid2 === cid, `Retry used client_msg_id ${cid2}, the first send ${cid}`);
    await A.page.locator('.msgs > li[data-status="failed"]').waitFor({ timeout: T });
    await li.getByRole('button', { name: 'Discard' }).click();
    await li.waitFor({ state: 'detached', timeout: T });
    assert(await countText(B.page, long) === 0, 'a refused message reached Ben');
  }],

  ['offline_message_sent_once', async () => {
    const text = `Written offline ${Date.now()}`;
    await A.ctx.setOffline(true);
    await A.page.waitForFunction(() => !navigator.onLine, null, { timeout: T });
    await send(A.page, text);
    await A.page.waitForFunction((t) => [...document.querySelectorAll('.msgs > li')].some((li) =>
      li.querySelector('.msg-text')?.textContent === t && li.dataset.status === 'queued'), text, { timeout: T });
    await A.page.locator('.conn-banner', { hasText: 'offline' }).waitFor({ timeout: T });
    await A.page.waitForTimeout(1500);
    assert(await countText(B.page, text) === 0, 'the message arrived while its sender was offline');
    await A.ctx.setOffline(false);
    await A.page.waitForFunction((t) => [...document.querySelectorAll('.msgs > li')].some((li) =>
      li.querySelector('.msg-text')?.textContent === t && li.dataset.status === 'sent'), text, { timeout: 15000 });
    await waitText(B.page, text);
    await B.page.waitForTimeout(1500); // a duplicate would show up by now
    assert(await countText(B.page, text) === 1, 'Ben sees it more than once');
    assert(await countText(A.page, text) === 1, 'Ana sees it more than once');
    return { text, room_id: room.id };
  }],

  ['relay_restart_mid_session', async () => {
    await stackCmd('relay_kill');
    const during = `While the relay was down ${Date.now()}`;
    await send(B.page, during);
    await B.page.waitForFunction((t) => [...document.querySelectorAll('.msgs > li')].some((li) =>
      li.querySelector('.msg-text')?.textContent === t && li.dataset.status === 'sent'), during, { timeout: T });
    await stackCmd('relay_start');
    await waitText(A.page, during, { timeout: 25000 });
    const after = `After the restart ${Date.now()}`;
    await send(A.page, after);
    await waitText(B.page, after, { timeout: 20000 });
    assert(await countText(A.page, during) === 1, 'the message from the outage is shown twice');
  }],

  ['redis_restart_goes_on', async () => {
    // Redis keeps its data across a restart (append-only file), the
    // stream's epoch with it: the client goes on from its cursor, with no
    // resync, and messages flow both ways.
    const before = Number(await A.page.evaluate(() => document.body.dataset.resyncs || 0));
    await stackCmd('redis_restart');
    const t1 = `After Redis came back ${Date.now()}`;
    await send(B.page, t1);
    await waitText(A.page, t1, { timeout: 20000 });
    const t2 = `Still talking ${Date.now()}`;
    await send(A.page, t2);
    await waitText(B.page, t2, { timeout: 20000 });
    const after = Number(await A.page.evaluate(() => document.body.dataset.resyncs || 0));
    assert(after === before, `a resync after a Redis restart that kept its data (${before} -> ${after})`);
    assert(await countText(A.page, t1) === 1, 'a message is shown twice after the restart');
  }],

  ['redis_flush_resyncs', async () => {
    // Redis emptied (FLUSHALL, or a Redis without persistence restarted):
    // the client gets `event: resync`, reloads its state over REST and
    // goes on from the new event_cursor.
    const before = Number(await A.page.evaluate(() => document.body.dataset.resyncs || 0));
    await stackCmd('redis_flush');
    // the next event shows the new epoch to the relay
    await send(B.page, `After the flush ${Date.now()}`);
    await A.page.waitForFunction((n) => Number(document.body.dataset.resyncs || 0) > n, before, { timeout: 25000 });
    const t1 = `After Redis was emptied ${Date.now()}`;
    await send(B.page, t1);
    await waitText(A.page, t1, { timeout: 20000 });
    const t2 = `Still talking ${Date.now()}`;
    await send(A.page, t2);
    await waitText(B.page, t2, { timeout: 20000 });
    assert(await countText(A.page, t1) === 1, 'a message is shown twice after the resync');
  }],

  ['xss_stays_text', async () => {
    const payload = '<img src=x onerror=alert(1)> <script>alert(2)</script> javascript:alert(3) [x](javascript:alert(4)) <a href="javascript:alert(5)">y</a>';
    await send(A.page, payload);
    await waitText(B.page, payload);
    await waitText(A.page, payload);
    for (const p of [A.page, B.page]) {
      const bad = await p.evaluate(() => ({
        img: document.querySelectorAll('img[src="x"], .msgs img').length,
        script: document.querySelectorAll('.msgs script, #app script').length,
        js: [...document.querySelectorAll('a')].filter((a) => /^\s*javascript:/i.test(a.getAttribute('href') || '')).length,
        anchors: document.querySelectorAll('.msgs .msg-text a').length,
      }));
      assert(!bad.img && !bad.script && !bad.js && !bad.anchors, `${p.__who}: payload made elements ${JSON.stringify(bad)}`);
    }
    // a hostile room name is text in the room list too
    const xr = cfg.rooms.xss;
    await B.page.waitForFunction((n) => [...document.querySelectorAll('.room-name')].some((e) => e.textContent === n), xr.name, { timeout: T });
    await B.page.waitForTimeout(500);
    assert(!dialogs.length, `a dialog fired: ${dialogs.join('; ')}`);
    const errs = [...A.page.__errors, ...B.page.__errors];
    assert(!errs.length, `page errors: ${errs.join(' | ')}`);
  }],

  ['history_scrolls_back_keeping_position', async () => {
    const hr = cfg.rooms.history;
    await openRoom(B.page, hr.name);
    await waitText(B.page, `history ${hr.count - 1}`);
    const before = await B.page.locator('.msgs > li.msg').count();
    // scroll to the top: an older page loads and the message that was on
    // top stays where it was on screen
    const probe = await B.page.evaluate(() => {
      const first = document.querySelector('.msgs > li.msg');
      document.querySelector('.timeline').scrollTop = 0;
      return { id: first.dataset.id, top: first.getBoundingClientRect().top };
    });
    await B.page.waitForFunction((n) => document.querySelectorAll('.msgs > li.msg').length > n, before, { timeout: T });
    await B.page.waitForTimeout(300);
    const after = await B.page.evaluate((id) => {
      const el = document.querySelector(`.msgs > li[data-id="${id}"]`);
      return el ? el.getBoundingClientRect().top : null;
    }, probe.id);
    assert(after !== null, 'the message that was on top disappeared');
    assert(Math.abs(after - probe.top) < 60, `scroll position jumped: ${probe.top} -> ${after}`);
    // keep going to the very beginning
    for (let i = 0; i < 6; i++) {
      if (await countText(B.page, 'history 0')) break;
      await B.page.evaluate(() => { document.querySelector('.timeline').scrollTop = 0; });
      await B.page.waitForTimeout(400);
    }
    await waitText(B.page, 'history 0');
    await B.page.getByText(`This is the beginning of #${hr.name}`).waitFor({ timeout: T });
    const ids = await B.page.$$eval('.msgs > li.msg[data-id]', (els) => els.map((e) => Number(e.dataset.id)).filter(Boolean));
    assert(ids.every((v, i) => !i || v > ids[i - 1]), 'messages are out of order or repeated');
    return { loaded: ids.length };
  }],

  ['keyboard_only', async () => {
    // Ana, keyboard alone: from the composer, Shift+Tab into the message
    // list, arrows to move, Enter into a message's actions.
    const p = A.page;
    await p.locator('.composer-input').focus();
    await p.keyboard.press('Escape');
    await p.evaluate(() => document.querySelector('.msgs > li[tabindex="0"]').focus());
    await p.keyboard.press('End');
    const last = await p.evaluate(() => document.activeElement === document.querySelector('.msgs > li.msg:last-child'));
    assert(last, 'End did not move focus to the newest message');
    await p.keyboard.press('ArrowUp');
    const focused = await p.evaluate(() => document.activeElement.matches('.msgs > li'));
    assert(focused, 'ArrowUp did not move focus to a message');
    await p.keyboard.press('Enter');
    const inTools = await p.evaluate(() => !!document.activeElement.closest('.msgs > li') && document.activeElement.tagName === 'BUTTON');
    assert(inTools, 'Enter did not move into the message actions');
    await p.keyboard.press('Escape');
    // Ctrl+K opens search, Escape closes it and focus comes back
    await p.keyboard.press('Control+k');
    await p.getByRole('dialog', { name: 'Search messages' }).waitFor({ timeout: T });
    await p.keyboard.type('edited');
    await p.keyboard.press('Enter');
    await p.getByRole('dialog').locator('.result').first().waitFor({ timeout: T });
    await p.keyboard.press('Escape');
    await p.getByRole('dialog').waitFor({ state: 'detached', timeout: T });
  }],

  ['screenshots_phone_and_desktop', async () => {
    const p = B.page;
    await openRoom(p, room.name);
    await p.screenshot({ path: path.join(ART, 'desktop.png') });
    await p.emulateMedia({ colorScheme: 'dark' });
    await p.screenshot({ path: path.join(ART, 'desktop-dark.png') });
    await p.emulateMedia({ colorScheme: 'light' });
    await p.setViewportSize({ width: 390, height: 844 });
    await p.waitForTimeout(200);
    // on a phone one pane shows at a time: the room, with a back button
    assert(await p.locator('.sidebar').isHidden(), 'phone: the room list is shown beside the room');
    const width = await p.evaluate(() => document.documentElement.scrollWidth);
    assert(width <= 390, `phone: the page scrolls sideways (${width}px)`);
    await p.screenshot({ path: path.join(ART, 'phone.png') });
    await p.getByRole('button', { name: 'Back to rooms' }).click();
    await p.locator('.sidebar').waitFor({ state: 'visible', timeout: T });
    await p.screenshot({ path: path.join(ART, 'phone-rooms.png') });
    await p.setViewportSize({ width: 1280, height: 800 });
    return { files: ['desktop.png', 'desktop-dark.png', 'phone.png', 'phone-rooms.png'] };
  }],

  ['admin_creates_user_then_dm_live', async () => {
    // issue #7: the admin, through the UI only, creates a user; the new
    // user signs in (forced password change), the admin starts a DM and
    // each sees the other's message live.
    const adm = cfg.users.admin;
    const tag = String(Date.now()).slice(-7);
    const nu = { name: `Nia${tag}`, email: `nia-${tag}@example.com`, temp: `Temp-pass-${tag}-x`, password: `Nia-own-pass-${tag}` };
    const X = await newUserPage(browser, 'Admin');
    const N = await newUserPage(browser, nu.name);
    try {
      const p = X.page;
      await p.goto(BASE + '/');
      await p.getByLabel('Email').fill(adm.email);
      await p.getByLabel('Password').fill(adm.password);
      await p.getByRole('button', { name: 'Sign in' }).click();
      await p.getByRole('link', { name: 'Admin', exact: true }).click();
      const adminNav = p.getByRole('navigation', { name: 'Administration' });
      await adminNav.getByRole('link', { name: 'Users' }).click();
      await p.getByRole('heading', { name: 'Administration' }).waitFor({ timeout: T });
      const form = p.getByRole('form', { name: 'Create a user' });
      await form.getByLabel('Email', { exact: true }).fill(nu.email);
      await form.getByLabel('Name', { exact: true }).fill(nu.name);
      await form.getByLabel('Password', { exact: true }).fill(nu.temp);
      const must = form.getByLabel('Must choose a new password at first sign-in');
      assert(await must.isChecked(), '"must choose a new password" is not ticked by default');
      await form.getByRole('button', { name: 'Create user' }).click();
      // the list, reloaded from the server through its search box, shows the user
      await p.getByLabel('Find users').fill(nu.email);
      const row = p.getByRole('row').filter({ hasText: nu.email });
      await p.waitForFunction((e) => {
        const rows = [...document.querySelectorAll('.table tbody tr')];
        return rows.length === 1 && rows[0].textContent.includes(e);
      }, nu.email, { timeout: T });
      const cells = await row.getByRole('cell').allTextContents();
      assert(cells[0].includes(nu.name) && cells[1] === nu.email && cells[2] === 'member' && cells[3] === 'must change password',
        `admin list row: ${JSON.stringify(cells)}`);

      // the new user: the sign-in page, then the forced password change
      const q = N.page;
      await q.goto(BASE + '/');
      await q.getByLabel('Email').fill(nu.email);
      await q.getByLabel('Password').fill(nu.temp);
      await q.getByRole('button', { name: 'Sign in' }).click();
      await q.getByRole('heading', { name: 'Choose a new password' }).waitFor({ timeout: T });
      await q.getByLabel('Current password').fill(nu.temp);
      await q.getByLabel('New password', { exact: true }).fill(nu.password);
      await q.getByLabel('New password again').fill(nu.password);
      await q.getByRole('button', { name: 'Set new password' }).click();
      await q.getByRole('navigation', { name: 'Rooms and conversations' }).waitFor({ timeout: T });
      await q.getByRole('link', { name: `Your account: ${nu.name}` }).waitFor({ timeout: T });

      // the admin starts the DM from the people search
      await p.getByRole('button', { name: 'New message' }).click();
      const dlg = p.getByRole('dialog', { name: 'New direct message' });
      await dlg.getByLabel('Find a person').fill(nu.name);
      await dlg.getByRole('button', { name: nu.name }).click();
      const pBox = p.getByRole('textbox', { name: `Message ${nu.name}` });
      await pBox.waitFor({ timeout: T });
      // the new user's open session gets the DM without a reload
      const dmLink = q.getByRole('link', { name: new RegExp(`^Direct message with ${adm.name}\\b`) });
      await dmLink.waitFor({ timeout: 5000 }).catch(() => { throw new Error(`the DM did not reach ${nu.name}'s room list within 5 s`); });
      await dmLink.click();
      const qBox = q.getByRole('textbox', { name: `Message ${adm.name}` });
      await qBox.waitFor({ timeout: T });

      const t1 = `Welcome aboard ${nu.name}`;
      await pBox.fill(t1);
      await pBox.press('Enter');
      await waitText(q, t1, { timeout: 5000 });
      const t2 = `Thanks, ${adm.name}! ${tag}`;
      await qBox.fill(t2);
      await qBox.press('Enter');
      await waitText(p, t2, { timeout: 5000 });
      await p.waitForTimeout(500); // a duplicate would show up by now
      for (const [pg, t] of [[p, t1], [p, t2], [q, t1], [q, t2]]) assert(await countText(pg, t) === 1, `${pg.__who} sees "${t}" ${await countText(pg, t)} times`);
      const errs = [...p.__errors, ...q.__errors];
      assert(!errs.length, `page errors: ${errs.join(' | ')}`);
      const roomId = Number(await p.evaluate(() => (location.hash.match(/^#\/r\/(\d+)/) || [])[1]));
      return { email: nu.email, name: nu.name, room_id: roomId, texts: [t1, t2] };
    } catch (e) {
      for (const u of [X, N]) await u.page.screenshot({ path: path.join(ART, `failed-admin_creates_user_then_dm_live-${u.page.__who}.png`) }).catch(() => {});
      throw e;
    } finally {
      await X.ctx.close().catch(() => {});
      await N.ctx.close().catch(() => {});
    }
  }],

  ['session_ended_elsewhere_signs_the_tab_out', async () => {
    // Cy signs in here; a script signed in as Cy ends this browser's
    // session; the tab is told on its event stream and shows the sign-in
    // screen with the reason, without a reload or another request.
    const call = async (method, p, body, token) => {
      const r = await fetch(BASE + '/api/v1' + p, {
        method,
        headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: 'Bearer ' + token } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      const text = await r.text();
      return { status: r.status, body: text ? JSON.parse(text) : null };
    };
    const tag = Date.now().toString(36);
    const cy = { email: `cy-${tag}@example.com`, password: `Cy-pass-${tag}-long` };
    const adm = await call('POST', '/auth/login', { email: users.admin.email, password: users.admin.password, device: 'mobile' });
    assert(adm.status === 200, `admin sign-in: ${adm.status}`);
    const made = await call('POST', '/admin/users', { email: cy.email, name: `Cy${tag}`, password: cy.password, must_change_password: false }, adm.body.token);
    assert(made.status === 201, `create Cy: ${made.status} ${JSON.stringify(made.body)}`);
    const U = await newUserPage(browser, 'Cy');
    try {
      await signIn(U.page, cy);
      const script = await call('POST', '/auth/login', { email: cy.email, password: cy.password, device: 'mobile' });
      assert(script.status === 200, `script sign-in: ${script.status}`);
      const list = await call('GET', '/me/sessions', null, script.body.token);
      const theirs = list.body.sessions.filter((x) => !x.current);
      assert(theirs.length === 1, `sessions: ${JSON.stringify(list.body)}`);
      const requests = [];
      U.page.on('request', (r) => { if (r.url().includes('/api/') && !r.url().includes('/events')) requests.push(r.url()); });
      const t0 = Date.now();
      const del = await call('DELETE', `/me/sessions/${theirs[0].id}`, null, script.body.token);
      assert(del.status === 204, `DELETE /me/sessions: ${del.status}`);
      await U.page.getByText('This session was ended from another device.').waitFor({ timeout: 5000 });
      await U.page.getByRole('button', { name: 'Sign in' }).waitFor({ timeout: T });
      const ms = Date.now() - t0;
      assert(!requests.length, `the tab needed requests to notice: ${requests.join(', ')}`);
      assert(!U.page.__errors.length, `page errors: ${U.page.__errors.join(' | ')}`);
      log(`signed out ${ms} ms after the session was ended elsewhere`);
      return { ms };
    } catch (e) {
      await U.page.screenshot({ path: path.join(ART, 'failed-session_ended_elsewhere_signs_the_tab_out-cy.png') }).catch(() => {});
      throw e;
    } finally {
      await U.ctx.close().catch(() => {});
    }
  }],
];

// ---------------------------------------------------------------- main
const only = cfg.scenarios && cfg.scenarios.length ? new Set(cfg.scenarios) : null;
let failed = 0;
try {
  browser = await chromium.launch({
    executablePath: cfg.chromium || '/usr/bin/chromium',
    // root in a container: chromium's sandbox needs user namespaces
    args: process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : [],
    timeout: 30000,
  });
  say('@@ready ' + JSON.stringify({ version: browser.version() }));
  for (const [name, fn] of scenarios) {
    if (only && !only.has(name) && name !== 'sign_in_and_room_list') continue;
    const t0 = Date.now();
    let res;
    try {
      const data = await fn();
      res = { name, ok: true, ms: Date.now() - t0, data: data || null };
    } catch (e) {
      failed++;
      res = { name, ok: false, ms: Date.now() - t0, error: String(e && e.stack ? e.stack : e) };
      for (const [who, u] of [['ana', A], ['ben', B]]) {
        if (u && u.page && !u.page.isClosed()) await u.page.screenshot({ path: path.join(ART, `failed-${name}-${who}.png`) }).catch(() => {});
      }
    }
    say('@@result ' + JSON.stringify(res));
  }
} catch (e) {
  failed++;
  say('@@fatal ' + JSON.stringify({ error: String(e && e.stack ? e.stack : e) }));
} finally {
  if (browser) await browser.close().catch(() => {});
}
process.exit(failed ? 1 : 0);
