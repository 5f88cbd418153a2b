// Browser tests of the pages for people (pkg/pages), in headless Chromium
// driven by playwright-core. pkg/pages' TestPagesInABrowser starts the
// stack (the template's routes, DynamoDB Local, the local SES) and runs
// this file with `node --test`, passing:
//   BASE_URL     the stack, e.g. http://127.0.0.1:3000
//   INBOX_URL    the local SES (its mails as JSON at /store)
//   CHROMIUM     the browser binary (Debian's /usr/bin/chromium)
//   SCREENSHOTS  the folder the screenshots are written to (docs/pages)
// One person goes through every flow from their mailbox, in order; each
// test is a step and needs the ones before it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.BASE_URL;
const INBOX = process.env.INBOX_URL;
const SHOTS = process.env.SCREENSHOTS;
assert.ok(BASE && INBOX && process.env.CHROMIUM, 'BASE_URL, INBOX_URL and CHROMIUM must be set');

// Fixed addresses (the stack is fresh for each run) keep the screenshots
// the same from run to run.
const email = 'ada.lovelace@example.com';
const newEmail = 'ada@analytical-engine.example';
const password = 'violet-Tractor-93-lantern';
const newPassword = 'amber-Kettle-57-orchard';

const DESKTOP = { width: 1280, height: 860 };
const PHONE = { width: 390, height: 844 };

let browser, ctx, page, problems;

// watch records console errors and uncaught exceptions of a page. A page
// answered 4xx on purpose (a form with an error) is not a problem: the
// browser reports it as a failed resource, which is listed apart.
function watch(p) {
  p.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())) {
      problems.push(`console error on ${p.url()}: ${m.text()}`);
    }
  });
  p.on('pageerror', (e) => problems.push(`page error on ${p.url()}: ${e.message}`));
  p.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  return p;
}

before(async () => {
  problems = [];
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  ctx = await browser.newContext({ viewport: DESKTOP, locale: 'en-GB' });
  page = watch(await ctx.newPage());
  if (SHOTS) mkdirSync(SHOTS, { recursive: true });
});

after(async () => {
  await browser?.close();
});

// shoot writes the page at desktop and phone width, and checks that it
// fits both without scrolling sideways (as it must at 200% zoom, where a
// desktop window is as narrow as a tablet).
async function shoot(p, name) {
  for (const [size, vp] of [['desktop', DESKTOP], ['phone', PHONE], ['zoomed', { width: DESKTOP.width / 2, height: DESKTOP.height / 2 }]]) {
    await p.setViewportSize(vp);
    const overflow = await p.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `${name} scrolls sideways by ${overflow}px at ${vp.width}px`);
    if (SHOTS && size !== 'zoomed') await p.screenshot({ path: join(SHOTS, `${name}-${size}.png`), fullPage: true });
  }
  await p.setViewportSize(DESKTOP);
}

// mailTo waits for the newest mail to `to` whose subject has `subject`
// and returns the link in it.
async function linkFromMail(to, subject) {
  for (let i = 0; i < 100; i++) {
    const store = await (await fetch(`${INBOX}/store`)).json();
    const mails = store.emails.filter((m) => m.destination.to.includes(to) && m.subject.includes(subject));
    if (mails.length > 0) {
      const m = mails[mails.length - 1];
      const link = m.body.text.match(/https?:\/\/\S+\?code=[A-Za-z0-9_-]+/);
      assert.ok(link, `no link in the mail "${m.subject}": ${m.body.text}`);
      return link[0];
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`no mail "${subject}" to ${to}`);
}

// prefetch GETs a link as a mail scanner or a link preview would: no
// cookies, no form.
async function prefetch(link) {
  for (let i = 0; i < 2; i++) {
    const r = await fetch(link, { redirect: 'manual' });
    assert.equal(r.status, 200, `prefetch of ${link}`);
    assert.equal(r.headers.get('cache-control'), 'no-store');
    assert.equal(r.headers.get('referrer-policy'), 'no-referrer');
  }
}

// api answers a JSON API call.
async function api(method, path, body, token) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Token ${token}`;
  const r = await fetch(BASE + path, { method, headers, body: body && JSON.stringify(body) });
  return { status: r.status, body: await r.json().catch(() => null) };
}

async function notice(p) {
  return (await p.locator('.notice').textContent())?.trim();
}

test('sign up through the page', async () => {
  await page.goto(`${BASE}/account/signup`);
  assert.equal(await page.getAttribute('html', 'lang'), 'en');
  await shoot(page, 'signup');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByLabel('First name').fill('Ada');
  await page.getByLabel('Last name').fill('Lovelace');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL(/\/account\/login\?m=signed_up/);
  assert.match(await notice(page), /we mailed you a link to activate/);
});

test('a prefetch of the activation link activates nothing; the page does, with the sign-up password', async () => {
  const link = await linkFromMail(email, 'Activate');
  assert.ok(link.startsWith(`${BASE}/account/activate?code=`), link);
  await prefetch(link);
  const r = await api('POST', '/api/auth/login', { login: email, password });
  assert.equal(r.status, 401, 'the account must still wait for activation after GETs');
  await page.goto(link);
  await page.getByText(email).waitFor();
  await shoot(page, 'activate');
  // A wrong password is refused beside its field; the link stays usable.
  await page.getByLabel('Password you chose at sign-up').fill('not-the-sign-up-password');
  await page.getByRole('button', { name: 'Activate' }).click();
  await page.locator('#f-password-error').getByText('This is not the password chosen at sign-up.').waitFor();
  await page.getByLabel('Password you chose at sign-up').fill(password);
  await page.getByRole('button', { name: 'Activate' }).click();
  await page.waitForURL(/\/account\/login\?m=activated/);
  assert.match(await notice(page), /Your account is active/);
  // The used link says so, and what to do.
  await page.goto(link);
  await page.getByText('This link is invalid, already used or expired.').waitFor();
  await page.getByRole('button', { name: 'Send the link' }).waitFor();
  await shoot(page, 'link-used');
});

test('log in with the keyboard alone', async () => {
  await page.goto(`${BASE}/account/login`);
  await shoot(page, 'login');
  // Tab from the top: the skip link, then the login field.
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'f-login');
  await page.keyboard.type(email);
  await page.keyboard.press('Tab');
  await page.keyboard.type(password);
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/account\/me$/);
  const cookies = await ctx.cookies();
  const session = cookies.find((c) => c.name.endsWith('session'));
  assert.ok(session, 'a session cookie');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Strict');
});

test('edit the profile', async () => {
  await page.getByLabel('First name').fill('Augusta Ada');
  await page.getByLabel('Job title').fill('Analyst');
  await page.getByLabel('Organization').fill('Analytical Engine Society');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.waitForURL(/\/account\/me\?m=saved/);
  assert.match(await notice(page), /Your profile is saved/);
  assert.equal(await page.getByLabel('Job title').inputValue(), 'Analyst');
  await shoot(page, 'me');
});

test('change the email and confirm it from the second mail', async () => {
  await page.getByLabel('New email address').fill(newEmail);
  await page.getByRole('button', { name: 'Send a confirmation link' }).click();
  await page.waitForURL(/\/account\/me\?m=email_requested/);
  await page.getByText(`Waiting for confirmation: a link was mailed to ${newEmail}`).waitFor();
  const link = await linkFromMail(newEmail, 'Confirm your new email');
  assert.ok(link.startsWith(`${BASE}/account/confirm-email?code=`), link);
  await prefetch(link);
  const still = await api('POST', '/api/auth/login', { login: email, password });
  assert.equal(still.status, 200, 'the old address still logs in after GETs of the link');
  assert.equal(still.body.user.email, email);
  // Opened in another browser, without being logged in: the code proves the
  // new mailbox, the account's password the account.
  const other = await browser.newContext({ viewport: DESKTOP, locale: 'en-GB' });
  const p = watch(await other.newPage());
  await p.goto(link);
  await p.getByText(newEmail).waitFor();
  await shoot(p, 'confirm-email');
  await p.getByLabel('Password', { exact: true }).fill(password);
  await p.getByRole('button', { name: 'Confirm the new address' }).click();
  await p.waitForURL(/\/account\/login\?m=email_changed/);
  assert.match(await notice(p), /Your email address has changed/);
  await other.close();
  // The change ended every session (the credential epoch moved on): this
  // browser logs in again, with the new address.
  await page.reload();
  await page.waitForURL(/\/account\/login\?m=login_first/);
  await page.getByLabel('Email or username').fill(newEmail);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByText(`Logged in as ${newEmail}`).waitFor();
});

test('log out', async () => {
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.waitForURL(/\/account\/login\?m=logged_out/);
  assert.match(await notice(page), /You are logged out/);
  await page.goto(`${BASE}/account/me`);
  await page.waitForURL(/\/account\/login\?m=login_first/);
});

test('forgot the password, reset it from the mail, log in with the new one', async () => {
  await page.goto(`${BASE}/account/forgot`);
  await shoot(page, 'forgot');
  await page.getByLabel('Email').fill(newEmail);
  await page.getByRole('button', { name: 'Send a reset link' }).click();
  await page.waitForURL(/\/account\/forgot\?m=sent/);
  assert.match(await notice(page), /If an account exists for that address, a mail is on its way/);
  const link = await linkFromMail(newEmail, 'Reset your password');
  assert.ok(link.startsWith(`${BASE}/account/reset?code=`), link);
  await prefetch(link);
  await page.goto(link);
  await page.getByText('At least 8 characters').first().waitFor();
  await page.getByLabel('New password', { exact: true }).fill('password');
  await page.getByLabel('New password, again').fill('password');
  await page.getByRole('button', { name: 'Save the new password' }).click();
  // The service's rule, beside the field, and announced.
  await page.locator('#f-new_password-error').getByText('This password is too common.').waitFor();
  assert.equal(await page.getAttribute('#f-new_password', 'aria-invalid'), 'true');
  assert.equal(await page.locator('[role=alert]').count(), 1);
  await shoot(page, 'reset');
  await page.getByLabel('New password', { exact: true }).fill(newPassword);
  await page.getByLabel('New password, again').fill(newPassword);
  await page.getByRole('button', { name: 'Save the new password' }).click();
  await page.waitForURL(/\/account\/login\?m=password_reset/);
  assert.match(await notice(page), /every old session has ended/);
  await page.getByLabel('Email or username').fill(newEmail);
  await page.getByLabel('Password').fill(newPassword);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(/\/account\/me$/);
});

test('a form posted without its CSRF token is refused', async () => {
  const r = await page.request.post(`${BASE}/account/logout`, { form: {}, maxRedirects: 0 });
  assert.equal(r.status(), 403);
  const forged = await page.request.post(`${BASE}/account/delete`, { form: { confirm: 'yes', csrf: 'forged' }, maxRedirects: 0 });
  assert.equal(forged.status(), 403);
  await page.goto(`${BASE}/account/me`);
  await page.getByText(`Logged in as ${newEmail}`).waitFor();
});

test('delete the account', async () => {
  await page.getByRole('link', { name: 'Delete my account…' }).click();
  await page.waitForURL(/\/account\/delete$/);
  await shoot(page, 'delete');
  await page.getByLabel('Yes, delete my account and everything in it').check();
  await page.getByRole('button', { name: 'Delete my account' }).click();
  await page.waitForURL(/\/account\/login\?m=deleted/);
  assert.match(await notice(page), /Your account is deleted/);
  const r = await api('POST', '/api/auth/login', { login: newEmail, password: newPassword });
  assert.equal(r.status, 401);
});

test('the pages speak German to a German browser', async () => {
  const de = await browser.newContext({ viewport: DESKTOP, locale: 'de-DE' });
  const p = watch(await de.newPage());
  await p.goto(`${BASE}/account/login`);
  assert.equal(await p.getAttribute('html', 'lang'), 'de');
  await p.getByRole('heading', { name: 'Anmelden' }).waitFor();
  await shoot(p, 'login-de');
  await de.close();
});

test('the pages had no console errors', () => {
  assert.deepEqual(problems, []);
});
