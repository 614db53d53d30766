// Drives server-lite's web page in headless Chromium (playwright-core),
// for the Go test of interop/webpage.
//
//   node page.js CONFIG.json
//
// Progress goes to stderr ("STEP name" lines the Go test waits on); the
// last stdout line is the JSON result.
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const { chromium } = require(cfg.playwright);
const t0 = Date.now();
function log(...a) { process.stderr.write('[' + ((Date.now() - t0) / 1000).toFixed(1) + 's] ' + a.join(' ') + '\n'); }
function step(s) { log('STEP ' + s); }
const result = { ok: false };

async function text(page, sel) { return page.$eval(sel, (e) => e.textContent); }

// waitCanvas waits until the desktop canvas has the screen's size, some
// tiles and the probes' colours, and returns what it found.
async function waitCanvas(page) {
  const d = cfg.desktop;
  try {
    await page.waitForFunction((d) => {
      const c = document.getElementById('desk');
      if (!c || c.width !== d.w || c.height !== d.h || !(+c.dataset.tiles > 0)) return false;
      const g = c.getContext('2d');
      return d.probes.every((p) => {
        const px = g.getImageData(p.x, p.y, 1, 1).data;
        return [0, 1, 2].every((i) => Math.abs(px[i] - p.rgb[i]) <= d.tol);
      });
    }, d, { timeout: 30000, polling: 200 });
  } catch (e) { /* reported below */ }
  return page.evaluate((d) => {
    const c = document.getElementById('desk');
    const g = c.getContext('2d');
    return { w: c.width, h: c.height, tiles: +c.dataset.tiles || 0, status: document.getElementById('deskstatus').textContent,
      probes: d.probes.map((p) => Array.from(g.getImageData(p.x, p.y, 1, 1).data.slice(0, 3))) };
  }, d);
}

async function adminFlow(page) {
  await page.goto(cfg.base + '/', { waitUntil: 'domcontentloaded' });
  await page.waitForSelector('#username', { state: 'visible', timeout: 20000 });
  // A wrong password first: the form must say so and stay.
  await page.fill('#username', cfg.user);
  await page.fill('#password', 'wrong-' + cfg.pass);
  await page.click('#loginbtn');
  await page.waitForFunction(() => document.getElementById('loginerr').textContent.length > 0, null, { timeout: 20000 });
  result.badLogin = await text(page, '#loginerr');
  await page.fill('#password', cfg.pass);
  await page.click('#loginbtn');
  await page.waitForSelector('#devicesview:not([hidden])', { timeout: 20000 });
  result.whoami = await text(page, '#whoami');
  step('logged-in');

  // The Go test starts the agent now: the list must show it come online.
  await page.waitForSelector('.device .state.online', { timeout: 90000 });
  cfg.node = result.node = await page.$eval('.device:has(.state.online)', (e) => e.dataset.node);
  const row = '.device[data-node="' + cfg.node + '"]';
  result.onlineSeen = true;
  step('online');
  result.listText = await text(page, '#devicelist');
  // Search: a miss hides the device, a hit shows it.
  await page.fill('#search', 'no-such-device-xyz');
  result.searchMissHides = (await page.$(row)) === null;
  await page.fill('#search', cfg.hostname.slice(0, 6));
  result.searchHitShows = (await page.$(row)) !== null;

  await page.click(row);
  await page.waitForSelector('#sysinfo', { timeout: 20000 });
  result.general = await page.$$eval('#tab-general dt', (dts) => Object.fromEntries(dts.map((dt) => [dt.textContent, dt.nextElementSibling.textContent])));
  // Notes and tags, saved and read back after a reload.
  await page.fill('#desc', 'web page note');
  await page.fill('#tags', 'alpha, beta');
  await page.click('#savedev');
  await page.waitForFunction(() => document.getElementById('savestate').textContent.length > 0, null, { timeout: 10000 });
  result.saveState = await text(page, '#savestate');
  step('details');
  // Run commands, with the output shown.
  await page.fill('#cmds', 'echo run-$((2+3))-cmd');
  await page.click('#runcmd');
  result.runOK = await page.waitForFunction(() => document.getElementById('cmdout').textContent.includes('run-5-cmd'), null, { timeout: 60000 })
    .then(() => true, () => false);
  result.runOut = (await text(page, '#runstate')) + ': ' + (await text(page, '#cmdout'));
  step('run');

  // Events of this device.
  await page.click('#devtabs button[data-tab="events"]');
  await page.waitForSelector('#devevents tr.event', { timeout: 10000 }).catch(() => {});
  result.deviceEvents = await page.$$eval('#devevents tr.event', (r) => r.map((x) => x.textContent));

  // Desktop.
  await page.click('#devtabs button[data-tab="desktop"]');
  await page.selectOption('#deskquality', '60');
  await page.click('#deskconnect');
  result.desktop = await waitCanvas(page);
  step('desktop');
  // Click into the key window (the agent moves the X pointer there, and
  // X gives the key to the window under the pointer), then type.
  const k = cfg.keyWindow;
  const box = await page.$eval('#desk', (c) => { const r = c.getBoundingClientRect(); return { x: r.left, y: r.top, sx: r.width / c.width, sy: r.height / c.height }; });
  await page.mouse.click(box.x + (k.x + 20) * box.sx, box.y + (k.y + 20) * box.sy);
  await page.waitForTimeout(300);
  await page.keyboard.press(cfg.key);
  await page.waitForTimeout(500);
  step('typed');
  await page.click('#deskdisconnect');

  // Terminal.
  await page.click('#devtabs button[data-tab="terminal"]');
  await page.click('#termconnect');
  await page.waitForFunction(() => document.getElementById('termstatus').textContent === 'Connected', null, { timeout: 30000 });
  await page.waitForFunction(() => (document.getElementById('term').dataset.text || '').trim().length > 0, null, { timeout: 15000 }).catch(() => {});
  await page.focus('#term');
  await page.keyboard.type('echo web-$((6*7))-page');
  await page.keyboard.press('Enter');
  // A shell whose profile does slow work (seen here: pyenv's rehash from
  // root's .bashrc, over a minute under load, before agentbin.Env gave
  // test agents an empty HOME) starts late; what was typed waits in the pty.
  result.termOK = await page.waitForFunction(() => (document.getElementById('term').dataset.text || '').includes('web-42-page'), null, { timeout: 150000 })
    .then(() => true, () => false);
  result.termText = await page.$eval('#term', (e) => e.dataset.text || '');
  result.termRaw = await page.$eval('#term', (e) => e.dataset.raw || '');
  await page.click('#termdisconnect');
  step('terminal');

  // Files: list the folder, upload with progress, download, rename, new folder, delete.
  await page.click('#devtabs button[data-tab="files"]');
  await page.waitForFunction(() => document.getElementById('filesstatus').textContent.startsWith('Connected'), null, { timeout: 30000 });
  await page.fill('#filepath', cfg.files.dir);
  await page.click('#filesgo');
  await page.waitForFunction((d) => document.getElementById('filepath').value === d && document.getElementById('filesstatus').textContent.includes(d), cfg.files.dir, { timeout: 15000 });
  await page.evaluate(() => {
    window.__prog = [];
    const p = document.getElementById('upprog');
    window.__progTimer = setInterval(() => { const v = +p.value; if (!window.__prog.length || window.__prog[window.__prog.length - 1] !== v) window.__prog.push(v); }, 20);
  });
  const buf = crypto.randomBytes(cfg.files.size);
  result.uploadSHA = crypto.createHash('sha256').update(buf).digest('hex');
  const src = path.join(cfg.outDir, cfg.files.name);
  fs.writeFileSync(src, buf);
  await page.setInputFiles('#upload', src, { timeout: 60000 });
  log('upload: file chosen');
  await page.waitForFunction((n) => document.getElementById('upprog').dataset.done === n, cfg.files.name, { timeout: 120000 });
  result.progress = await page.evaluate(() => { clearInterval(window.__progTimer); return window.__prog; });
  const frow = '#filelist tr[data-name="' + cfg.files.name + '"]';
  await page.waitForSelector(frow, { timeout: 15000 });
  step('uploaded');
  const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 120000 }), page.click(frow + ' button.dl')]);
  const out = path.join(cfg.outDir, 'download.bin');
  await dl.saveAs(out);
  result.downloadSHA = crypto.createHash('sha256').update(fs.readFileSync(out)).digest('hex');
  result.downloadSize = fs.statSync(out).size;
  step('downloaded');
  page.on('dialog', (d) => d.accept(d.type() === 'prompt' ? cfg.files.dialogAnswer : undefined));
  cfg.files.dialogAnswer = 'renamed.bin';
  await page.click(frow + ' button.ren');
  await page.waitForSelector('#filelist tr[data-name="renamed.bin"]', { timeout: 15000 });
  cfg.files.dialogAnswer = 'newdir';
  await page.click('#mkdir');
  await page.waitForSelector('#filelist tr[data-name="newdir"]', { timeout: 15000 });
  await page.click('#filelist tr[data-name="renamed.bin"] button.del');
  await page.waitForSelector('#filelist tr[data-name="renamed.bin"]', { state: 'detached', timeout: 15000 });
  result.filesOps = true;
  step('files');

  // The whole event log.
  await page.click('.navbtn[data-view="events"]');
  await page.waitForSelector('#allevents tr.event', { timeout: 10000 }).catch(() => {});
  result.allEvents = await page.$$eval('#allevents tr.event', (r) => r.map((x) => x.textContent));
  step('events');

  // Groups: a new group, the .msh link, the install command line.
  await page.click('.navbtn[data-view="groups"]');
  await page.waitForSelector('#grouplist .groupbox', { timeout: 10000 });
  await page.fill('#newgroupname', 'Other');
  await page.click('#newgroup button[type="submit"]');
  const other = '#grouplist .groupbox:has(h3:text-is("Other"))';
  await page.waitForSelector(other, { timeout: 10000 });
  const def = '#grouplist .groupbox:has(h3:text-is("Default"))';
  result.msh = await page.$eval(def + ' a.mshlink', async (a) => (await fetch(a.href)).text());
  result.install = await page.$eval(def + ' pre.install', (e) => e.textContent);
  // Users: a new user, given full rights on Other only.
  await page.click('.navbtn[data-view="users"]');
  await page.fill('#newusername', cfg.bob.user);
  await page.fill('#newuserpass', cfg.bob.pass);
  await page.click('#newuser button[type="submit"]');
  await page.waitForSelector('#userlist tr.user[data-user="user//' + cfg.bob.user + '"]', { timeout: 10000 });
  await page.click('.navbtn[data-view="groups"]');
  await page.waitForSelector(other, { timeout: 10000 });
  await page.fill(other + ' input.adduser', cfg.bob.user);
  await page.selectOption(other + ' select.addrights', String(0xFFFFFFFF));
  await page.click(other + ' form.addmember button[type="submit"]');
  await page.waitForSelector(other + ' li[data-user="user//' + cfg.bob.user + '"]', { timeout: 10000 });
  result.bobMember = await page.$eval(other + ' li[data-user="user//' + cfg.bob.user + '"]', (e) => e.textContent);
  step('groups-users');
}

async function restrictedFlow(page) {
  await page.goto(cfg.base + '/', { waitUntil: 'domcontentloaded' });
  await page.waitForSelector('#username', { state: 'visible', timeout: 20000 });
  await page.fill('#username', cfg.bob.user);
  await page.fill('#password', cfg.bob.pass);
  await page.click('#loginbtn');
  await page.waitForSelector('#devicesview:not([hidden])', { timeout: 20000 });
  await page.waitForTimeout(500);
  result.bob = await page.evaluate(() => ({
    groups: Array.from(document.querySelectorAll('#devicelist .group h2'), (e) => e.textContent),
    devices: Array.from(document.querySelectorAll('#devicelist .device'), (e) => e.dataset.node),
    options: Array.from(document.querySelectorAll('#groupfilter option'), (e) => e.textContent),
  }));
  // Even with the device's embed URL, nothing of it is shown.
  await page.goto(cfg.base + '/?gotonode=' + cfg.node.slice(6) + '&viewmode=11', { waitUntil: 'domcontentloaded' });
  await page.waitForSelector('#devicesview:not([hidden])', { timeout: 20000 });
  result.bobEmbedDeviceShown = await page.$eval('#deviceview', (e) => !e.hidden);
  step('restricted');
}

async function embedFlow(page) {
  const url = cfg.base + '/?user=' + encodeURIComponent(cfg.token.user) + '&pass=' + encodeURIComponent(cfg.token.pass) +
    '&gotonode=' + cfg.node.slice(6) + '&viewmode=11&hide=31';
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  await page.waitForSelector('#deviceview:not([hidden])', { timeout: 30000 });
  result.embedDesktop = await waitCanvas(page);
  result.embed = await page.evaluate(() => {
    const vis = (id) => { const e = document.getElementById(id); return !!e && e.offsetParent !== null; };
    return { url: location.href, visible: ['top', 'devtabs', 'foot', 'devtitle', 'desktoolbar', 'devicesview', 'loginview', 'eventsview', 'tab-general', 'tab-terminal', 'tab-files', 'tab-events', 'desk']
      .filter(vis) };
  });
  await page.screenshot({ path: path.join(cfg.outDir, 'embed.png') });
  step('embed');
}

// phoneFlow logs in again on a phone-sized screen (390x844 CSS pixels)
// and opens the device: nothing may be wider than the screen, and the
// list, the device's tabs and its details must be on it.
async function phoneFlow(page) {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(cfg.base + '/', { waitUntil: 'domcontentloaded' });
  await page.waitForSelector('#username', { state: 'visible', timeout: 20000 });
  await page.fill('#username', cfg.user);
  await page.fill('#password', cfg.pass);
  await page.click('#loginbtn');
  const row = '.device[data-node="' + cfg.node + '"]';
  await page.waitForSelector(row + ' .state.online', { timeout: 30000 });
  const fits = () => page.evaluate((sel) => {
    const w = window.innerWidth;
    const over = Array.from(document.querySelectorAll(sel)).filter((e) => e.offsetParent !== null)
      .map((e) => [e.id || e.className || e.tagName, e.getBoundingClientRect()])
      .filter(([, r]) => r.width > 0 && (r.left < -1 || r.right > w + 1)).map(([n, r]) => n + ' ' + Math.round(r.left) + '..' + Math.round(r.right));
    return { width: w, scrollWidth: document.documentElement.scrollWidth, over };
  }, '#devicelist .device, #devtabs button, #tab-general dt, #tab-general dd, #search, #loginbtn');
  result.phoneList = await fits();
  await page.click(row);
  await page.waitForSelector('#sysinfo', { timeout: 20000 });
  result.phoneDevice = await fits();
  await page.screenshot({ path: path.join(cfg.outDir, 'phone.png') });
  step('phone');
}

(async () => {
  let ctx;
  try {
    ctx = await chromium.launchPersistentContext(cfg.userDataDir, {
      executablePath: cfg.chromium,
      headless: true,
      ignoreDefaultArgs: true,
      args: [...cfg.flags, '--user-data-dir=' + cfg.userDataDir, '--remote-debugging-pipe', 'about:blank'],
      ignoreHTTPSErrors: true, // server-lite's self-signed certificate on 127.0.0.1
      acceptDownloads: true,
      viewport: { width: cfg.viewport.w, height: cfg.viewport.h },
      env: { ...process.env, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: '1' },
      timeout: 60000,
    });
    const page = ctx.pages()[0] || await ctx.newPage();
    page.on('console', (m) => {
      log('console.' + m.type() + ':', m.text());
      // A blocked resource or script means the page breaks its own CSP.
      if (/Content Security Policy|Refused to/.test(m.text())) (result.pageErrors = result.pageErrors || []).push('CSP: ' + m.text());
    });
    page.on('pageerror', (e) => { log('pageerror:', e.message); (result.pageErrors = result.pageErrors || []).push(e.message); });
    let phase = 'admin';
    try {
      await adminFlow(page);
      await page.screenshot({ path: path.join(cfg.outDir, 'admin.png') });
      await ctx.clearCookies();
      phase = 'restricted';
      await restrictedFlow(page);
      await ctx.clearCookies();
      phase = 'embed';
      await embedFlow(page);
      await ctx.clearCookies();
      phase = 'phone';
      await phoneFlow(page);
      result.ok = true;
    } catch (e) {
      result.error = phase + ': ' + (e && e.stack || e);
      const shot = path.join(cfg.outDir, 'fail.png');
      await page.screenshot({ path: shot }).catch(() => {});
      result.failShot = shot;
    }
  } catch (e) {
    result.error = 'launch: ' + (e && e.stack || e);
  } finally {
    if (ctx) await ctx.close().catch(() => {});
  }
  process.stdout.write('\n' + JSON.stringify(result) + '\n');
})();
