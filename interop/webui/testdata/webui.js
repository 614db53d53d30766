// Drives MeshCentral's own web UI in headless Chromium through
// playwright-core, for the Go tests of interop/webui.
//
//   node webui.js CONFIG.json
//
// CONFIG (written by the Go test):
//   playwright   path of node_modules/playwright-core
//   chromium     browser executable (/usr/bin/chromium)
//   flags        every Chromium flag (Playwright adds none of its own)
//   userDataDir  fresh profile directory
//   outDir       where screenshots, canvas dumps and downloads go
//   base         https://127.0.0.1:PORT
//   user, pass   MeshCentral login
//   node         device id without "node//"
//   urlArgs      extra query arguments for the device page ("&webrtc=1")
//   desktop      {expectW, expectH, probes: [{x, y, rgb: [r, g, b]}], tol, webrtc,
//                wantWebP, click, typeText, typedFile}: once the probes match
//                (and, with wantWebP, a WebP tile was drawn), click
//                ({x, y} on the device's screen) is clicked, typeText typed,
//                then typedFile is read until it holds typeText
//   files        {dir, text: {name, content}, binary: [{name, size}], webrtc}
//   tools        {pid}: the desktop tab's Tools panel: processes, the
//                details dialog of process pid, the Services tab and the
//                first service's details dialog
//   toolbar      {}: the desktop toolbar on a connected desktop: send
//                Ctrl+Alt+Del from the keys menu, lock and unlock remote
//                input with its button (and the confirmation dialog), then
//                "Disconnect and lock" from the Disconnect menu
//   consent      {kind: "desktop"|"terminal", expect: "accept"|"deny",
//                waitMs}: connect the tab of a device whose group asks
//                for user consent, record the console messages the viewer
//                shows, and wait for the outcome (Connected with a
//                picture or a prompt, or Denied and disconnected); with
//                holdMs, stay connected until the agent ends the session
//   webrelay     {port, postPath, postBody, noSetPort, force, linkWaitMs}:
//                set the device's HTTP port to port (what the HTTP link's
//                alternate-port dialog sends; not with noSetPort), click
//                the device page's "HTTP/port" link (with force, when the
//                link is hidden, call its onclick p10WebRouter directly),
//                read the page it opens (MeshCentral's web relay server)
//                and POST postBody to postPath from that page
//   webvnc       {port, w, h, rgb}: set the device's VNC port to port, click
//                the device page's Web-VNC link, press noVNC's Connect and
//                wait until its canvas is w x h with colour rgb at the centre
//   webssh       [{mode, port, auth, user, keyFile, password, command, expect,
//                sftp}]: sessions of MeshCentral's own SSH client, one after
//                the other, each with the device's SSH port set to port (what
//                the SSH port dialog sends) and logged in from MeshCentral's
//                authentication dialog as user, with keyFile ("Username and
//                Key", auth "key") or password ("Username & Password", auth
//                "password"). mode "terminal": the Terminal tab's "SSH
//                Connect" (sshterminalrelay.ashx, over a port-forwarding
//                tunnel of the agent): type command, wait until the terminal
//                shows expect, press Disconnect. mode "sftp": the Files tab's
//                "SFTP Connect" (sshfilesrelay.ashx, the same tunnel), with
//                sftp {dir, text: {name, content}, upload: {path, name, size},
//                download: {name, size}}: go to dir, see it listed, open text
//                in the editor (Edit), upload the file at upload.path with the
//                Upload dialog until the listing shows it with its size,
//                download download.name through the tab's tunnel (saved to
//                outDir), press Disconnect
//
// Progress goes to stderr; the last stdout line is the JSON result:
//   {ok, error, desktop: {...}, files: {...}}
'use strict';
const fs = require('fs');
const path = require('path');

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const { chromium } = require(cfg.playwright);
const t0 = Date.now();
function log(...a) { process.stderr.write('[' + ((Date.now() - t0) / 1000).toFixed(1) + 's] ' + a.join(' ') + '\n'); }

const result = { ok: false };

async function login(page) {
  await page.goto(cfg.base + '/', { waitUntil: 'domcontentloaded' });
  await page.waitForSelector('#username', { state: 'visible', timeout: 30000 });
  await page.fill('#username', cfg.user);
  await page.fill('#password', cfg.pass);
  await Promise.all([
    page.waitForURL((u) => true, { waitUntil: 'domcontentloaded', timeout: 30000 }).catch(() => {}),
    page.click('#loginButton'),
  ]);
  // The main page defines the device view's globals once logged in.
  await page.waitForFunction(() => typeof connectDesktop === 'function' && typeof connectFiles === 'function', null, { timeout: 30000 });
  log('logged in as', cfg.user);
}

async function openDevice(page, viewmode) {
  const url = cfg.base + '/?gotonode=' + cfg.node + '&viewmode=' + viewmode + (cfg.urlArgs || '');
  log('open', url);
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  await page.waitForFunction(() => typeof connectDesktop === 'function', null, { timeout: 30000 });
}

async function statusText(page, id) {
  return page.evaluate((id) => { const e = document.getElementById(id); return e ? e.textContent : null; }, id);
}

async function desktopFlow(page) {
  const d = cfg.desktop;
  const r = (result.desktop = {});
  await openDevice(page, 11);
  // The page shows Connect only when the device's agent.caps has bit 1
  // (desktop), which comes from the agent core's coreinfo message.
  r.connectButtonShown = await page.waitForSelector('#connectbutton1:not([disabled])', { state: 'visible', timeout: 20000 })
    .then(() => true, () => false);
  r.agentCaps = await page.evaluate(() => (currentNode && currentNode.agent) ? currentNode.agent.caps : null);
  if (!r.connectButtonShown) {
    log('desktop: Connect button hidden (agent.caps = ' + r.agentCaps + '); showing it to go on');
    await page.evaluate(() => { QV('connectbutton1span', true); QE('connectbutton1', true); });
  }
  // Count the tiles by what their bytes are (the viewer puts every tile in
  // a data:image/jpeg URL and the browser sniffs the real format): the
  // wrapper goes round the viewer object the page creates on Connect.
  await page.evaluate(() => {
    window.meshgoTileKinds = { jpeg: 0, webp: 0, png: 0, other: 0 };
    const make = window.CreateAgentRemoteDesktop;
    window.CreateAgentRemoteDesktop = function () {
      const m = make.apply(this, arguments);
      const draw = m.ProcessPictureMsg;
      m.ProcessPictureMsg = function (data) {
        const b = data.slice(4, 16), k = window.meshgoTileKinds;
        if (b[0] === 0xff && b[1] === 0xd8) k.jpeg++;
        else if (String.fromCharCode(b[0], b[1], b[2], b[3]) === 'RIFF' && String.fromCharCode(b[8], b[9], b[10], b[11]) === 'WEBP') k.webp++;
        else if (b[0] === 0x89 && b[1] === 0x50) k.png++;
        else k.other++;
        return draw.apply(this, arguments);
      };
      return m;
    };
  });
  log('desktop: connect');
  await page.click('#connectbutton1');
  await page.waitForFunction(() => { const e = document.getElementById('deskstatus'); return e && e.textContent.startsWith('Connected'); }, null, { timeout: 60000 });
  r.status = await statusText(page, 'deskstatus');
  log('desktop status:', r.status);
  if (d.webrtc) {
    await page.waitForFunction(() => desktop != null && desktop.webRtcActive === true, null, { timeout: 30000 })
      .catch(() => log('desktop: no WebRTC switch within 30 s'));
  }
  // Wait until the canvas has the screen's size and the probes' colours.
  const poll = await page.waitForFunction((d) => {
    const c = document.getElementById('Desk');
    if (!c || c.width !== d.expectW || c.height !== d.expectH) return false;
    const ctx = c.getContext('2d');
    for (const p of d.probes) {
      const px = ctx.getImageData(p.x, p.y, 1, 1).data;
      for (let i = 0; i < 3; i++) if (Math.abs(px[i] - p.rgb[i]) > d.tol) return false;
    }
    return true;
  }, d, { timeout: 45000, polling: 250 }).then(() => true, () => false);
  r.probesMatched = poll;
  if (d.wantWebP) {
    // The first frame may leave before the page's COMPRESSION reaches the
    // agent (JPEG); the agent re-sends the screen in the asked-for format.
    await page.waitForFunction(() => window.meshgoTileKinds.webp > 0, null, { timeout: 45000, polling: 250 })
      .catch(() => log('desktop: no WebP tile within 45 s'));
  }
  Object.assign(r, await page.evaluate(() => {
    const c = document.getElementById('Desk');
    return {
      width: c ? c.width : 0, height: c ? c.height : 0,
      webRtcActive: desktop != null && desktop.webRtcActive === true,
      status: document.getElementById('deskstatus').textContent,
      tileKinds: window.meshgoTileKinds,
      png: c ? c.toDataURL('image/png') : '',
    };
  }));
  r.canvasPNG = path.join(cfg.outDir, 'desk-canvas' + (d.webrtc ? '-webrtc' : '') + '.png');
  fs.writeFileSync(r.canvasPNG, Buffer.from(r.png.replace(/^data:image\/png;base64,/, ''), 'base64'));
  delete r.png;
  r.screenshot = path.join(cfg.outDir, 'viewer' + (d.webrtc ? '-webrtc' : '') + '.png');
  await page.screenshot({ path: r.screenshot });
  log('desktop:', r.width + 'x' + r.height, 'probes matched:', poll, 'status:', r.status, 'tiles:', JSON.stringify(r.tileKinds));
  if (d.typeText) {
    // Keys typed in the viewer, as a user types them: the page sends them
    // to the device while its Input box is checked and no control of the
    // page has the focus. typedFile is where the device's test program
    // writes what reached its focused window.
    await page.evaluate(() => {
      const c = Q('DeskControl');
      if (!c.checked) { c.checked = true; toggleKvmControl(); }
      if (document.activeElement) document.activeElement.blur();
      desktop.m.debugmode = 1; // the page logs each key it sends
    });
    r.inputChecked = await page.evaluate(() => Q('DeskControl').checked);
    if (d.click) {
      // Click the device's screen at (x, y) first, as a user clicks into
      // the field before typing: the page scales the canvas to its box.
      const at = await page.evaluate((p) => {
        const c = document.getElementById('Desk'), b = c.getBoundingClientRect();
        return { x: b.left + p.x * b.width / c.width, y: b.top + p.y * b.height / c.height };
      }, d.click);
      log('desktop: click at', d.click.x + ',' + d.click.y, 'page', Math.round(at.x) + ',' + Math.round(at.y));
      await page.mouse.move(at.x, at.y);
      await page.mouse.down();
      await page.waitForTimeout(100);
      await page.mouse.up();
      await page.waitForTimeout(500);
    }
    log('desktop: typing', JSON.stringify(d.typeText), 'input enabled:', r.inputChecked);
    await page.keyboard.type(d.typeText, { delay: 150 });
    const until = Date.now() + 30000;
    r.typedResult = null;
    while (Date.now() < until) {
      try { r.typedResult = fs.readFileSync(d.typedFile, 'utf8'); } catch (_) { }
      if (r.typedResult === d.typeText) break;
      await page.waitForTimeout(250);
    }
    log('desktop: the device has', JSON.stringify(r.typedResult));
    r.typedShot = path.join(cfg.outDir, 'viewer-typed.png');
    await page.screenshot({ path: r.typedShot });
  }
  await page.evaluate(() => { if (desktop) connectDesktop(); }); // disconnect
}

async function filesFlow(page) {
  const f = cfg.files;
  const r = (result.files = {});
  await openDevice(page, 13);
  await page.waitForSelector('#p13Connect', { state: 'visible', timeout: 60000 });
  log('files: connect');
  await page.click('#p13Connect');
  await page.waitForFunction(() => { const e = document.getElementById('p13Status'); return e && e.textContent.startsWith('Connected'); }, null, { timeout: 60000 });
  if (f.webrtc) {
    r.switched = await page.waitForFunction(() => files != null && files.webRtcActive === true && files.webSwitchOk === true, null, { timeout: 30000 })
      .then(() => true, () => false);
    // Count what arrives on the data channel from here on.
    await page.evaluate(() => {
      window.__dc = { msgs: 0, bytes: 0 };
      const ch = files.webchannel, next = ch.onmessage;
      ch.onmessage = (e) => {
        window.__dc.msgs++; window.__dc.bytes += (typeof e.data === 'string') ? e.data.length : e.data.byteLength;
        if (window.__dc.rec && typeof e.data !== 'string') window.__dc.rec.push(e.data.slice(0));
        return next(e);
      };
    }).catch((e) => log('files: cannot hook the data channel:', e.message));
  }
  r.status = await statusText(page, 'p13Status');
  log('files status:', r.status);

  // Go to the test's folder with the tab's own "GoTo" dialog.
  await page.waitForSelector('#p13GoToFolderButton:not([disabled])', { timeout: 30000 });
  await page.click('#p13GoToFolderButton');
  await page.fill('#p13folderinput', f.dir);
  await page.click('#idx_dlgOkButton');
  const listed = (name) => page.waitForFunction((n) => p13filetree != null && p13filetree.dir != null && p13filetree.dir.some((x) => x.n === n), name, { timeout: 30000 });
  await listed(f.text.name);
  for (const b of f.binary) await listed(b.name);
  r.listed = true;
  log('files: folder listed');

  // 1. The editor ("Edit" button) reads the file through the tab's tunnel.
  await page.evaluate((name) => {
    for (const cb of document.getElementsByName('fd')) cb.checked = (p13filetree.dir[cb.value].n === name);
    p13setActions();
  }, f.text.name);
  await page.click('#p13ViewFileButton:not([disabled])');
  await page.waitForFunction((c) => { const e = document.getElementById('d4editorarea'); return e && e.value === c; }, f.text.content, { timeout: 30000 })
    .then(() => { r.editorMatched = true; }, async () => { r.editorMatched = false; r.editorValue = await page.evaluate(() => (document.getElementById('d4editorarea') || {}).value); });
  await page.evaluate(() => setDialogMode(0));
  log('files: editor matched:', r.editorMatched);

  // 2. The tab's in-tunnel download (p13downloadfile: its local-device links
  //    and the editor use it) ends in saveAs: a browser download. The hook
  //    also keeps the raw data-channel messages, to tell the transport's
  //    bytes from what the page made of them.
  r.tunnel = [];
  for (const b of f.binary) {
    const one = { name: b.name, size: b.size };
    r.tunnel.push(one);
    await page.evaluate(() => { if (window.__dc) { window.__dc.rec = []; window.__dc.bytes0 = window.__dc.bytes; } });
    const tunnelDl = page.waitForEvent('download', { timeout: 60000 });
    await page.evaluate((b) => p13downloadfile(encodeURIComponentEx(b.dir + '/' + b.name), encodeURIComponentEx(b.name), b.size), { dir: f.dir, name: b.name, size: b.size });
    try {
      const dl = await tunnelDl;
      one.path = path.join(cfg.outDir, 'tunnel-' + b.name);
      await dl.saveAs(one.path);
    } catch (e) { one.error = String(e); }
    Object.assign(one, await page.evaluate(async () => {
      if (!window.__dc) return {};
      const rec = window.__dc.rec; window.__dc.rec = null;
      // Binary messages of the download: 4-byte header, then data.
      let n = 0; for (const m of rec) n += m.byteLength - 4;
      const all = new Uint8Array(n); let p = 0;
      for (const m of rec) { all.set(new Uint8Array(m, 4), p); p += m.byteLength - 4; }
      const h = new Uint8Array(await crypto.subtle.digest('SHA-256', all));
      return { dcBytes: window.__dc.bytes - window.__dc.bytes0, dcBlocks: rec.length, dcDataLen: n,
               dcDataSHA256: Array.from(h, (x) => x.toString(16).padStart(2, '0')).join('') };
    }));
    one.stillWebRTC = await page.evaluate(() => files != null && files.webRtcActive === true);
    log('files: tunnel download of', b.name, one.error || 'saved', '-', one.dcBlocks, 'blocks,', one.dcBytes, 'bytes on the data channel');
    await page.evaluate(() => setDialogMode(0));
  }

  // 3. The file list's link: devicefile.ashx (the server fetches the file
  //    through its own relay tunnel to the agent).
  const big = f.binary[f.binary.length - 1];
  r.link = { name: big.name };
  r.link.href = await page.evaluate((n) => {
    for (const a of document.querySelectorAll('#p13files a')) if (a.textContent === n) { const m = /downloadFile\("([^"]*)"/.exec(a.getAttribute('onclick') || ''); return m ? m[1] : null; }
    return null;
  }, big.name);
  const linkDl = page.waitForEvent('download', { timeout: 60000 });
  await page.click('#p13files a:text-is("' + big.name + '")');
  try {
    const dl = await linkDl;
    r.link.path = path.join(cfg.outDir, 'link-' + big.name);
    await dl.saveAs(r.link.path);
    log('files: link download saved');
  } catch (e) {
    r.link.error = String(e);
    log('files: link download failed:', r.link.error, 'href', r.link.href);
  }
  r.status = await statusText(page, 'p13Status');
  r.screenshot = path.join(cfg.outDir, 'files' + (f.webrtc ? '-webrtc' : '') + '.png');
  await page.screenshot({ path: r.screenshot });
  await page.evaluate(() => { if (files) connectFiles(); });
}

// dialogText waits for the page's dialog (setDialogMode) to leave its
// "Requesting ..." placeholder and returns its text, or null.
async function dialogText(page, placeholder, timeout) {
  return page.waitForFunction((ph) => {
    const e = document.getElementById('id_dialogOptions');
    return (xxdialogMode && e && e.textContent && e.textContent.indexOf(ph) < 0) ? e.textContent : false;
  }, placeholder, { timeout }).then((h) => h.jsonValue(), () => null);
}

async function toolsFlow(page) {
  const tc = cfg.tools;
  const r = (result.tools = {});
  await openDevice(page, 11);
  await page.waitForSelector('#DeskToolsButton', { state: 'visible', timeout: 30000 });
  const t0 = Date.now();
  await page.click('#DeskToolsButton');
  // The Services tab appears only once the agent answered msg/services.
  r.servicesTabShown = await page.waitForSelector('#deskToolsTopTabService', { state: 'visible', timeout: 20000 }).then(() => true, () => false);
  r.servicesMs = Date.now() - t0;
  r.processes = await page.waitForFunction(() => document.querySelectorAll('#DeskToolsProcesses .deskToolsBar').length, null, { timeout: 20000 })
    .then((h) => h.jsonValue(), () => 0);
  log('tools: services tab shown:', r.servicesTabShown, 'after', r.servicesMs, 'ms;', r.processes, 'processes');
  if (tc.pid) {
    await page.evaluate((pid) => showProcessDetails(pid), tc.pid);
    r.psinfo = await dialogText(page, 'Requesting Process Details', 15000);
    log('tools: process details:', r.psinfo);
    await page.evaluate(() => setDialogMode(0));
  }
  if (r.servicesTabShown) {
    await page.click('#deskToolsTopTabService');
    r.services = await page.evaluate(() => (deskTools.services || []).length);
    log('tools:', r.services, 'services listed');
    if (r.services > 0) {
      await page.click('#DeskToolsServices .deskToolsBar');
      r.serviceDetails = await dialogText(page, 'Requesting Service Details', 15000);
      log('tools: service details:', r.serviceDetails);
      await page.evaluate(() => setDialogMode(0));
    }
  }
  r.screenshot = path.join(cfg.outDir, 'tools.png');
  await page.screenshot({ path: r.screenshot });
}

async function webRelayFlow(page) {
  const w = cfg.webrelay;
  const r = (result.webrelay = {});
  await openDevice(page, 10);
  await page.waitForFunction(() => currentNode != null, null, { timeout: 30000 });
  // The alternate-port dialog of the HTTP link sends this changedevice.
  if (!w.noSetPort) await page.evaluate((port) => meshserver.send({ action: 'changedevice', nodeid: currentNode._id, httpport: port }), w.port);
  const name = 'HTTP/' + w.port;
  const link = page.locator('a', { hasText: new RegExp('^' + name + '$') }).first();
  r.linkShown = await link.waitFor({ state: 'visible', timeout: w.linkWaitMs || 30000 }).then(() => true, () => false);
  log('webrelay: link', name, 'shown:', r.linkShown);
  r.links = await page.evaluate(() => Array.from(document.querySelectorAll('a')).map((a) => a.textContent).filter((t) => t.startsWith('HTTP')));
  if (!r.linkShown && !w.force) return;
  // force: what the link's onclick runs, called directly when the page
  // hides the link (a user without the rights).
  const open = r.linkShown ? () => link.click() : () => page.evaluate((port) => p10WebRouter(currentNode._id, 1, port), w.port);
  const [popup] = await Promise.all([page.context().waitForEvent('page', { timeout: 30000 }), open()]);
  await popup.waitForLoadState('domcontentloaded', { timeout: 30000 }).catch(() => {});
  r.popupURL = popup.url();
  r.body = await popup.waitForFunction(() => document.body && document.body.innerText.length > 0 ? document.body.innerText : false, null, { timeout: 30000, polling: 200 })
    .then((h) => h.jsonValue(), () => null);
  log('webrelay: popup', r.popupURL, 'body:', JSON.stringify(r.body));
  if (w.postPath) {
    r.postReply = await popup.evaluate(async ({ p, b }) => {
      try { const res = await fetch(p, { method: 'POST', body: b, headers: { 'Content-Type': 'text/plain' } }); return res.status + ' ' + await res.text(); } catch (e) { return 'error: ' + e; }
    }, { p: w.postPath, b: w.postBody });
    log('webrelay: POST reply:', JSON.stringify(r.postReply));
  }
  r.screenshot = path.join(cfg.outDir, 'webrelay.png');
  await popup.screenshot({ path: r.screenshot });
  await popup.close();
}

async function webVNCFlow(page) {
  const v = cfg.webvnc;
  const r = (result.webvnc = {});
  await openDevice(page, 10);
  await page.waitForFunction(() => currentNode != null, null, { timeout: 30000 });
  // The Web-VNC link's alternate-port dialog sends this changedevice.
  await page.evaluate((port) => meshserver.send({ action: 'changedevice', nodeid: currentNode._id, rfbport: port }), v.port);
  r.portSet = await page.waitForFunction((port) => currentNode.rfbport == port, v.port, { timeout: 30000 }).then(() => true, () => false);
  r.linkShown = await page.waitForSelector('#rfbLink', { state: 'visible', timeout: 30000 }).then(() => true, () => false);
  log('webvnc: port set', r.portSet, 'link shown', r.linkShown);
  if (!r.linkShown) return;
  const [popup] = await Promise.all([page.context().waitForEvent('page', { timeout: 30000 }), page.click('#rfbLink')]);
  await popup.waitForLoadState('domcontentloaded', { timeout: 30000 }).catch(() => {});
  r.popupURL = popup.url();
  popup.on('console', (m) => log('novnc console.' + m.type() + ':', m.text()));
  await popup.waitForSelector('#noVNC_connect_button', { state: 'visible', timeout: 30000 });
  await popup.click('#noVNC_connect_button');
  // The canvas gets the remote screen's size, then its pixels.
  r.pixel = await popup.waitForFunction(({ w, h, rgb, tol }) => {
    const c = document.querySelector('#noVNC_container canvas');
    if (!c || c.width != w || c.height != h) return false;
    const d = c.getContext('2d').getImageData(Math.floor(w / 2), Math.floor(h / 2), 1, 1).data;
    const ok = [0, 1, 2].every((i) => Math.abs(d[i] - rgb[i]) <= tol);
    return ok ? [d[0], d[1], d[2]] : false;
  }, { w: v.w, h: v.h, rgb: v.rgb, tol: 8 }, { timeout: 45000, polling: 250 }).then((h) => h.jsonValue(), () => null);
  r.canvas = await popup.evaluate(() => { const c = document.querySelector('#noVNC_container canvas'); if (!c) return null; const d = c.getContext('2d').getImageData(Math.floor(c.width / 2), Math.floor(c.height / 2), 1, 1).data; return { w: c.width, h: c.height, centre: [d[0], d[1], d[2]] }; });
  r.status = await popup.evaluate(() => { const e = document.getElementById('noVNC_status'); return e ? e.textContent : null; });
  log('webvnc:', JSON.stringify(r));
  r.screenshot = path.join(cfg.outDir, 'webvnc.png');
  await popup.screenshot({ path: r.screenshot });
  await popup.close();
}

// termText is what the terminal shows, a row a line (xterm's DOM
// renderer; its buffer API is a "proposed API" this xterm build refuses).
async function termText(page) {
  return page.evaluate(() => Array.from(document.querySelectorAll('#termarea3xdiv .xterm-rows > div')).map((d) => d.textContent.replace(/\s+$/, '')).join('\n'));
}

// sshLogin answers MeshCentral's SSH authentication dialog (the same for
// the Terminal tab and the Files tab) for session w; false when it never
// appeared.
async function sshLogin(page, w, r) {
  r.authAsked = await page.waitForSelector('#dp2authmethod', { state: 'visible', timeout: 30000 }).then(() => true, () => false);
  log('webssh: authentication dialog shown', r.authAsked);
  if (!r.authAsked) return false;
  if (w.auth === 'password') {
    await page.selectOption('#dp2authmethod', '1');
    await page.evaluate(() => sshAuthUpdate());
    await page.fill('#dp2user', w.user);
    await page.fill('#dp2pass', w.password);
  } else {
    await page.selectOption('#dp2authmethod', '2');
    await page.fill('#dp2user', w.user);
    await page.setInputFiles('#dp2key', w.keyFile);
  }
  await page.evaluate(() => sshAuthUpdate());
  await page.waitForSelector('#idx_dlgOkButton:not([disabled])', { timeout: 15000 });
  await page.click('#idx_dlgOkButton');
  return true;
}

// setSSHPort sends what the SSH port dialog (cmsshportaction) sends.
async function setSSHPort(page, port) {
  await page.waitForFunction(() => currentNode != null, null, { timeout: 30000 });
  await page.evaluate((port) => meshserver.send({ action: 'changedevice', nodeid: currentNode._id, sshport: port }), port);
  return page.waitForFunction((port) => currentNode.sshport == port, port, { timeout: 30000 }).then(() => true, () => false);
}

async function webSSHTerminal(page, w, r) {
  // A session after another on the Terminal tab stays on the page, as a
  // user who connects again does.
  const onTab = await page.evaluate((port) => typeof currentNode !== 'undefined' && currentNode != null && currentNode.sshport == port &&
    document.getElementById('connectbutton2s') != null && document.getElementById('connectbutton2s').offsetParent != null, w.port).catch(() => false);
  if (onTab) r.portSet = true; else { await openDevice(page, 12); r.portSet = await setSSHPort(page, w.port); }
  r.buttonShown = await page.waitForSelector('#connectbutton2s:not([disabled])', { state: 'visible', timeout: 30000 }).then(() => true, () => false);
  log('webssh: port set', r.portSet, 'SSH Connect shown', r.buttonShown);
  if (!r.buttonShown) return;
  const before = await termText(page); // a previous session's, if any
  await page.click('#connectbutton2s');
  // MeshCentral asks for the credentials (no stored ones).
  if (!await sshLogin(page, w, r)) return;
  // The shell's prompt comes back through ssh2, the relay and our agent.
  r.prompt = await page.waitForFunction((before) => {
    const rows = Array.from(document.querySelectorAll('#termarea3xdiv .xterm-rows > div')).map((d) => d.textContent.replace(/\s+$/, ''));
    return rows.some((t) => t.trim() !== '') && rows.join('\n') !== before;
  }, before, { timeout: 45000, polling: 200 }).then(() => true, () => false);
  r.status = await statusText(page, 'termstatus');
  log('webssh: status', r.status, 'prompt seen', r.prompt, JSON.stringify(await termText(page)));
  if (!r.prompt) return;
  // Typed as a user types: the terminal has the focus.
  await page.click('#termarea3xdiv');
  await page.keyboard.type(w.command + '\n', { delay: 5 });
  r.output = await page.waitForFunction((e) => Array.from(document.querySelectorAll('#termarea3xdiv .xterm-rows > div')).some((d) => d.textContent.trim() === e),
    w.expect, { timeout: 30000, polling: 200 }).then(() => true, () => false);
  r.text = await termText(page);
  log('webssh: output seen', r.output);
  if (!r.output) return;
  r.screenshot = path.join(cfg.outDir, 'webssh-' + w.name + '.png');
  await page.screenshot({ path: r.screenshot });
  await page.click('#disconnectbutton2');
  r.disconnected = await page.waitForFunction(() => terminal == null && document.getElementById('connectbutton2sspan').style.display !== 'none', null, { timeout: 15000 })
    .then(() => true, () => false);
  r.statusAfter = await statusText(page, 'termstatus');
  log('webssh: disconnected', r.disconnected, 'status', r.statusAfter);
}

async function webSSHFiles(page, w, r) {
  const f = w.sftp;
  await openDevice(page, 13);
  r.portSet = await setSSHPort(page, w.port);
  r.buttonShown = await page.waitForSelector('#p13Connects:not([disabled])', { state: 'visible', timeout: 30000 }).then(() => true, () => false);
  log('sftp: port set', r.portSet, 'SFTP Connect shown', r.buttonShown);
  if (!r.buttonShown) return;
  await page.click('#p13Connects');
  if (!await sshLogin(page, w, r)) return;
  r.connected = await page.waitForFunction(() => { const e = document.getElementById('p13Status'); return e && e.textContent === 'Connected, SFTP'; }, null, { timeout: 45000, polling: 200 })
    .then(() => true, () => false);
  r.status = await statusText(page, 'p13Status');
  log('sftp: status', r.status);
  if (!r.connected) return;
  const listed = (name, size) => page.waitForFunction(({ n, s }) => p13filetree != null && p13filetree.dir != null && p13filetree.dir.some((x) => x.n === n && (s == null || x.s === s)),
    { n: name, s: size }, { timeout: 30000, polling: 200 }).then(() => true, () => false);
  // The tab's own "GoTo" dialog.
  await page.waitForSelector('#p13GoToFolderButton:not([disabled])', { timeout: 30000 });
  await page.click('#p13GoToFolderButton');
  await page.fill('#p13folderinput', f.dir);
  await page.click('#idx_dlgOkButton');
  r.listed = await listed(f.text.name, f.text.content.length) && await listed(f.download.name, f.download.size);
  r.names = await page.evaluate(() => (p13filetree && p13filetree.dir) ? p13filetree.dir.map((x) => x.n) : null);
  log('sftp: listed', r.listed, JSON.stringify(r.names));
  if (!r.listed) return;

  // The editor ("Edit") reads the file through the SFTP session.
  await page.evaluate((name) => {
    for (const cb of document.getElementsByName('fd')) cb.checked = (p13filetree.dir[cb.value].n === name);
    p13setActions();
  }, f.text.name);
  await page.click('#p13ViewFileButton:not([disabled])');
  r.editorMatched = await page.waitForFunction((c) => { const e = document.getElementById('d4editorarea'); return e && e.value === c; }, f.text.content, { timeout: 30000 })
    .then(() => true, () => false);
  if (!r.editorMatched) r.editorValue = await page.evaluate(() => (document.getElementById('d4editorarea') || {}).value);
  await page.evaluate(() => setDialogMode(0));
  log('sftp: editor matched', r.editorMatched);

  // Upload with the Upload button's dialog.
  await page.evaluate(() => { for (const cb of document.getElementsByName('fd')) cb.checked = false; p13setActions(); });
  await page.click('#p13UploadButton:not([disabled])');
  await page.setInputFiles('#p13uploadinput', f.upload.path);
  await page.waitForSelector('#idx_dlgOkButton:not([disabled])', { timeout: 15000 });
  await page.click('#idx_dlgOkButton');
  r.uploaded = await listed(f.upload.name, f.upload.size);
  log('sftp: upload listed with its size', r.uploaded);

  // Download through the tab's tunnel (p13downloadfile: what the editor
  // and local-device links use; it ends in saveAs, a browser download).
  const dl = page.waitForEvent('download', { timeout: 60000 });
  await page.evaluate((b) => p13downloadfile(encodeURIComponentEx(b.dir + '/' + b.name), encodeURIComponentEx(b.name), b.size), { dir: f.dir, name: f.download.name, size: f.download.size });
  try {
    r.downloadPath = path.join(cfg.outDir, 'sftp-' + f.download.name);
    await (await dl).saveAs(r.downloadPath);
  } catch (e) { r.downloadError = String(e); delete r.downloadPath; }
  log('sftp: download', r.downloadError || 'saved');
  await page.evaluate(() => setDialogMode(0));
  r.screenshot = path.join(cfg.outDir, 'webssh-' + w.name + '.png');
  await page.screenshot({ path: r.screenshot });
  await page.click('#p13Disconnect');
  r.disconnected = await page.waitForFunction(() => files == null && document.getElementById('p13Status').textContent === 'Disconnected', null, { timeout: 15000 })
    .then(() => true, () => false);
  r.statusAfter = await statusText(page, 'p13Status');
  log('sftp: disconnected', r.disconnected, 'status', r.statusAfter);
}

async function webSSHFlow(page) {
  result.webssh = [];
  for (const w of cfg.webssh) {
    const r = { name: w.name };
    result.webssh.push(r);
    log('webssh: session', w.name, '(' + w.mode + ', ' + w.auth + ')');
    try {
      if (w.mode === 'sftp') await webSSHFiles(page, w, r); else await webSSHTerminal(page, w, r);
    } catch (e) {
      r.error = String(e && e.stack || e);
      log('webssh:', w.name, 'error:', r.error);
    }
  }
}

async function toolbarFlow(page) {
  const r = (result.toolbar = {});
  await openDevice(page, 11);
  await page.waitForSelector('#connectbutton1:not([disabled])', { state: 'visible', timeout: 30000 });
  await page.click('#connectbutton1');
  await page.waitForFunction(() => { const e = document.getElementById('deskstatus'); return e && e.textContent.startsWith('Connected'); }, null, { timeout: 60000 });
  await page.waitForFunction(() => { const d = document.getElementById('Desk'); return d && d.width > 100; }, null, { timeout: 30000 });
  log('toolbar: connected');
  // Ctrl+Alt+Del from the keys menu and its Send button.
  await page.selectOption('#deskkeys', String(0x0A002E));
  await page.click('#DeskWD');
  r.cadSent = true;
  log('toolbar: sent Ctrl+Alt+Del');
  // The agent answered the viewer's input-lock query: the button shows.
  const visible = (id) => page.waitForFunction((id) => { const e = document.getElementById(id); return e && e.style.display !== 'none'; }, id, { timeout: 15000 }).then(() => true, () => false);
  r.unlockedShown = await visible('DeskInputUnLockedButton');
  if (r.unlockedShown) {
    await page.click('#DeskInputUnLockedButtonImage');
    await page.click('#idx_dlgOkButton');
    r.lockedShown = await visible('DeskInputLockedButton');
    log('toolbar: input locked shown:', r.lockedShown);
    if (r.lockedShown) {
      await page.click('#DeskInputLockedButtonImage');
      await page.click('#idx_dlgOkButton');
      r.unlockedAgain = await visible('DeskInputUnLockedButton');
    }
  }
  r.screenshot = path.join(cfg.outDir, 'toolbar.png');
  await page.screenshot({ path: r.screenshot });
  // The Disconnect menu's "Disconnect and lock".
  await page.evaluate(() => cmdeskaction(10));
  r.disconnected = await page.waitForFunction(() => !document.getElementById('deskstatus').textContent.startsWith('Connected'), null, { timeout: 15000 }).then(() => true, () => false);
  log('toolbar:', JSON.stringify(r));
}

async function consentFlow(page) {
  const c = cfg.consent;
  const r = (result.consent = { messages: [] });
  const term = c.kind === 'terminal';
  await openDevice(page, term ? 12 : 11);
  const btn = term ? '#connectbutton2' : '#connectbutton1';
  const statusId = term ? 'termstatus' : 'deskstatus';
  const msgId = term ? 'p12TermConsoleMsg' : 'p11DeskConsoleMsg';
  await page.waitForSelector(btn + ':not([disabled])', { state: 'visible', timeout: 30000 });
  // Record every text the console message element gets, however briefly.
  await page.evaluate((id) => {
    window.__consentMsgs = [];
    const m = document.getElementById(id);
    const note = () => { const t = m.textContent; if (t && window.__consentMsgs[window.__consentMsgs.length - 1] !== t) window.__consentMsgs.push(t); };
    new MutationObserver(note).observe(m, { childList: true, characterData: true, subtree: true });
  }, msgId);
  log('consent: connect', c.kind);
  await page.click(btn);
  // Record every console message the viewer shows and the status.
  const t1 = Date.now();
  let last = '';
  for (;;) {
    const s = await page.evaluate(([a, b]) => {
      const m = document.getElementById(a), st = document.getElementById(b);
      return { msg: m ? m.textContent : '', shown: m ? m.style.display !== 'none' : false, status: st ? st.textContent : '' };
    }, [msgId, statusId]);
    if (s.shown && s.msg && s.msg !== last) { r.messages.push(s.msg); last = s.msg; log('consent: viewer shows', JSON.stringify(s.msg), 'status', s.status); }
    r.status = s.status;
    // MeshCentral says "Connected" once the relay pairs, a moment before the
    // agent's waiting message arrives; an outcome counts only after it.
    const waited = (await page.evaluate(() => window.__consentMsgs)).some((m) => m.indexOf('Waiting for user') >= 0);
    if (c.expect === 'accept' && waited && s.status.startsWith('Connected') && (!s.shown || !s.msg)) {
      if (term) {
        r.accepted = await page.waitForFunction(() => { const x = document.querySelector('#termarea3x .xterm-rows, #termarea3x'); return x && x.textContent.trim().length > 0; }, null, { timeout: 30000 }).then(() => true, () => false);
      } else {
        r.accepted = await page.waitForFunction(() => { const d = document.getElementById('Desk'); return d && d.width > 100 && d.height > 100; }, null, { timeout: 30000 }).then(() => true, () => false);
      }
      if (r.accepted && c.holdMs) {
        // Stay connected until the agent ends the session (the privacy
        // bar's Disconnect) or holdMs passes.
        r.endedByAgent = await page.waitForFunction((id) => !document.getElementById(id).textContent.startsWith('Connected'), statusId, { timeout: c.holdMs, polling: 200 })
          .then(() => true, () => false);
        log('consent: session ended by the agent:', r.endedByAgent);
      }
      break;
    }
    const seen = await page.evaluate(() => window.__consentMsgs);
    if (c.expect === 'deny' && seen.some((m) => m.indexOf('Denied') >= 0) && !s.status.startsWith('Connected')) { r.denied = true; break; }
    if (Date.now() - t1 > c.waitMs) { log('consent: no outcome within', c.waitMs, 'ms'); break; }
    await page.waitForTimeout(100);
  }
  r.messages = await page.evaluate(() => window.__consentMsgs);
  r.statusAfter = await statusText(page, statusId);
  r.screenshot = path.join(cfg.outDir, 'consent-' + c.kind + '-' + c.expect + '.png');
  await page.screenshot({ path: r.screenshot });
  log('consent:', JSON.stringify(r));
}

(async () => {
  let ctx;
  try {
    ctx = await chromium.launchPersistentContext(cfg.userDataDir, {
      executablePath: cfg.chromium,
      headless: true,
      ignoreDefaultArgs: true, // every flag is ours: cfg.flags
      args: [...cfg.flags, '--user-data-dir=' + cfg.userDataDir, '--remote-debugging-pipe', 'about:blank'],
      ignoreHTTPSErrors: true, // MeshCentral's self-signed certificate on 127.0.0.1
      acceptDownloads: true,
      viewport: { width: 1600, height: 1000 },
      env: { ...process.env, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: '1' },
      timeout: 60000,
    });
    const page = ctx.pages()[0] || await ctx.newPage();
    page.on('console', (m) => { if (m.type() !== 'verbose') log('console.' + m.type() + ':', m.text()); });
    page.on('pageerror', (e) => log('pageerror:', e.message));
    result.userAgent = await page.evaluate(() => navigator.userAgent);
    await login(page);
    if (cfg.desktop) await desktopFlow(page);
    if (cfg.files) await filesFlow(page);
    if (cfg.tools) await toolsFlow(page);
    if (cfg.consent) await consentFlow(page);
    if (cfg.toolbar) await toolbarFlow(page);
    if (cfg.webrelay) await webRelayFlow(page);
    if (cfg.webvnc) await webVNCFlow(page);
    if (cfg.webssh) await webSSHFlow(page);
    result.ok = true;
  } catch (e) {
    result.error = String(e && e.stack || e);
    log('error:', result.error);
    try {
      const p = ctx && ctx.pages()[0];
      if (p) { result.failShot = path.join(cfg.outDir, 'failure.png'); await p.screenshot({ path: result.failShot }); }
    } catch (_) { }
  } finally {
    if (ctx) await ctx.close().catch(() => {});
  }
  process.stdout.write('\n' + JSON.stringify(result) + '\n');
})();
