// Drives server-lite's account features through its web page in headless
// Chromium (playwright-core), for TestWebPageAccounts:
//
//   node accounts.js CONFIG.json
//
// Two browser contexts (the administrator and bob) and a third for the
// OpenID Connect sign-in. Progress goes to stderr; the last stdout line is
// the JSON result.
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const { chromium } = require(cfg.playwright);
const t0 = Date.now();
function log(...a) { process.stderr.write('[' + ((Date.now() - t0) / 1000).toFixed(1) + 's] ' + a.join(' ') + '\n'); }
function step(s) { log('STEP ' + s); }
const result = { ok: false, pageErrors: [] };
async function text(page, sel) { return page.$eval(sel, (e) => e.textContent); }

// RFC 6238 code, as the user's authenticator app computes it.
function totp(secret, unix) {
  const alpha = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of secret.replace(/[\s=]/g, '').toUpperCase()) bits += alpha.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(Math.floor(unix / 30)));
  const h = crypto.createHmac('sha1', key).update(msg).digest();
  const off = h[h.length - 1] & 15;
  return String((h.readUInt32BE(off) & 0x7fffffff) % 1000000).padStart(6, '0');
}

async function login(page, user, pass) {
  await page.goto(cfg.base + '/', { waitUntil: 'domcontentloaded' });
  await page.waitForSelector('#username', { state: 'visible', timeout: 20000 });
  await page.fill('#username', user);
  await page.fill('#password', pass);
  await page.click('#loginbtn');
}

function watch(page, who) {
  page.on('console', (m) => {
    log(who + ' console.' + m.type() + ':', m.text());
    if (/Content Security Policy|Refused to/.test(m.text())) result.pageErrors.push(who + ' CSP: ' + m.text());
  });
  page.on('pageerror', (e) => { log(who + ' pageerror:', e.message); result.pageErrors.push(who + ': ' + e.message); });
}

async function adminTOTP(admin) {
  await login(admin, cfg.user, cfg.pass);
  await admin.waitForSelector('#devicesview:not([hidden])', { timeout: 20000 });
  await admin.click('.navbtn[data-view="account"]');
  await admin.waitForSelector('#otpstart:not([hidden])', { timeout: 10000 });
  await admin.click('#otpstart');
  await admin.waitForSelector('#otpsetup:not([hidden])', { timeout: 10000 });
  const secret = (await text(admin, '#otpsecret')).replace(/\s/g, '');
  result.otpURL = await admin.$eval('#otpurl', (e) => e.getAttribute('href'));
  const now = Date.now() / 1000;
  await admin.fill('#otpcode', totp(secret, now));
  await admin.click('#otpconfirm');
  await admin.waitForSelector('#otpclear:not([hidden])', { timeout: 10000 });
  result.otpState = await text(admin, '#otpstate');
  step('totp-on');

  // Log out and in again: the code is asked for, a wrong one refused.
  await admin.click('#logout');
  await admin.waitForSelector('#loginview:not([hidden])', { timeout: 10000 });
  await admin.fill('#username', cfg.user);
  await admin.fill('#password', cfg.pass);
  await admin.click('#loginbtn');
  await admin.waitForSelector('#codelabel:not([hidden])', { timeout: 20000 });
  result.codeAsked = true;
  await admin.fill('#logincode', '000000');
  await admin.click('#loginbtn');
  await admin.waitForFunction(() => /code/i.test(document.getElementById('loginerr').textContent), null, { timeout: 20000 });
  result.badCodeMsg = await text(admin, '#loginerr');
  // The setup code's step is used; a code a step ahead is within the skew.
  await admin.fill('#logincode', totp(secret, now + 30));
  await admin.click('#loginbtn');
  await admin.waitForSelector('#devicesview:not([hidden])', { timeout: 20000 });
  result.totpLogin = await text(admin, '#whoami');
  step('totp-login');
}

async function adminPassword(admin) {
  await admin.click('.navbtn[data-view="account"]');
  await admin.waitForSelector('#passform', { state: 'visible', timeout: 10000 });
  await admin.fill('#oldpass', cfg.pass);
  await admin.fill('#newpass', 'short');
  await admin.fill('#newpass2', 'short');
  await admin.click('#passbtn');
  await admin.waitForFunction(() => document.getElementById('passstate').textContent.length > 0, null, { timeout: 10000 });
  result.shortPassMsg = await text(admin, '#passstate');
  await admin.fill('#oldpass', cfg.pass);
  await admin.fill('#newpass', cfg.newPass);
  await admin.fill('#newpass2', cfg.newPass);
  await admin.click('#passbtn');
  await admin.waitForFunction(() => document.getElementById('passstate').textContent === 'Password changed.', null, { timeout: 10000 });
  result.passChanged = true;
  step('password-changed');
}

async function usersFlow(admin, bob) {
  await admin.click('.navbtn[data-view="users"]');
  await admin.waitForSelector('#newusername', { state: 'visible', timeout: 10000 });
  await admin.fill('#newusername', 'bob');
  await admin.fill('#newuserpass', 'Bob-pass-1');
  await admin.click('#newuser button[type=submit]');
  await admin.waitForSelector('tr.user[data-user="user//bob"]', { timeout: 10000 });
  // The administrator's own row offers nothing that removes them.
  result.selfButtons = await admin.$$eval('tr.user[data-user="user//' + cfg.user + '"] button', (bs) => bs.map((b) => b.textContent));
  admin.once('dialog', (d) => d.accept());
  await admin.click('tr.user[data-user="user//bob"] button.resetpass');
  await admin.waitForSelector('#resetbox:not([hidden])', { timeout: 10000 });
  const bobPass = await text(admin, '#resetpass');
  result.resetPassLen = bobPass.length;
  step('bob-reset');

  await login(bob, 'bob', 'Bob-pass-1');
  await bob.waitForFunction(() => document.getElementById('loginerr').textContent.length > 0, null, { timeout: 20000 });
  result.bobOldPassRefused = true;
  await login(bob, 'bob', bobPass);
  await bob.waitForSelector('#devicesview:not([hidden])', { timeout: 20000 });
  result.bobWhoami = await text(bob, '#whoami');
  step('bob-in');

  // Deactivate bob while his page is open: it loses access at once.
  await admin.click('tr.user[data-user="user//bob"] button.deactivate');
  await admin.waitForFunction(() => /deactivated/.test(document.getElementById('userstate').textContent), null, { timeout: 10000 });
  result.deactivateMsg = await text(admin, '#userstate');
  await bob.waitForSelector('#loginview:not([hidden])', { timeout: 15000 });
  result.bobLostAccess = true;
  // Nothing of the old session works: a reload shows the login form, and
  // the password is refused.
  await bob.reload({ waitUntil: 'domcontentloaded' });
  await bob.waitForSelector('#loginview:not([hidden])', { timeout: 15000 });
  result.bobReloadLoggedOut = await bob.$eval('#devicesview', (e) => e.hidden);
  await login(bob, 'bob', bobPass);
  await bob.waitForFunction(() => document.getElementById('loginerr').textContent.length > 0, null, { timeout: 20000 });
  result.bobReloginMsg = await text(bob, '#loginerr');
  step('bob-out');
}

async function oidcFlow(page) {
  await page.goto(cfg.base + '/', { waitUntil: 'domcontentloaded' });
  await page.waitForSelector('#oidcbox:not([hidden])', { timeout: 20000 });
  result.oidcButton = await text(page, '#oidclogin');
  await page.click('#oidclogin');
  await page.waitForSelector('#login', { timeout: 20000 }); // the provider's page
  await page.fill('#login', 'carol');
  await page.click('#approve');
  await page.waitForSelector('#devicesview:not([hidden])', { timeout: 20000 });
  result.oidcWhoami = await text(page, '#whoami');
  step('oidc-in');
}

(async () => {
  let browser;
  let phase = 'launch';
  const pages = [];
  try {
    browser = await chromium.launch({
      executablePath: cfg.chromium, headless: true, args: cfg.flags, timeout: 60000,
      env: { ...process.env, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: '1' },
    });
    const ctx = async (who) => {
      const c = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1200, height: 900 } });
      const p = await c.newPage();
      watch(p, who);
      pages.push([who, p]);
      return p;
    };
    const admin = await ctx('admin');
    const bob = await ctx('bob');
    phase = 'totp';
    await adminTOTP(admin);
    phase = 'password';
    await adminPassword(admin);
    phase = 'users';
    await usersFlow(admin, bob);
    phase = 'oidc';
    await oidcFlow(await ctx('carol'));
    result.ok = true;
  } catch (e) {
    result.error = phase + ': ' + (e && e.stack || e);
    for (const [who, p] of pages) {
      const shot = path.join(cfg.outDir, 'fail-' + who + '.png');
      await p.screenshot({ path: shot }).catch(() => {});
      result.failShot = (result.failShot ? result.failShot + ' ' : '') + shot;
    }
  } finally {
    if (browser) await browser.close().catch(() => {});
  }
  process.stdout.write('\n' + JSON.stringify(result) + '\n');
})();
