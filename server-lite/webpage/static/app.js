// server-lite's web page. It speaks MeshCentral's control.ashx JSON
// protocol (the one meshctrl uses) and the meshrelay.ashx session
// protocols: 1 terminal, 2 desktop (KVM), 5 files. No framework.
'use strict';

const $ = (s) => document.querySelector(s);
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
}
function randomHex(n) {
  const b = new Uint8Array(n);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
function fmtTime(ms) { return ms ? new Date(ms).toLocaleString() : ''; }
function fmtSize(n) {
  if (n == null) return '';
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + ' ' + u[i];
}
const wsBase = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host;

// ---- URL parameters (MeshCentral's embed URL) -------------------------------
const params = new URLSearchParams(location.search);
const embed = {
  node: params.get('gotonode') || '',
  viewmode: parseInt(params.get('viewmode') || '0', 10),
  hide: parseInt(params.get('hide') || '0', 10),
};
// viewmode numbers as MeshCentral's page uses them.
const viewTabs = { 10: 'general', 11: 'desktop', 12: 'terminal', 13: 'files', 16: 'events' };

// ---- state ---------------------------------------------------------------------
const st = {
  ctl: null, user: null, meshes: {}, nodes: {}, // nodes by id, each with meshid
  current: null, tab: 'general', view: 'devices',
};

// ---- control.ashx ---------------------------------------------------------------
class Control {
  constructor(onEvent, onClose) {
    this.pending = new Map();
    this.next = 1;
    this.onEvent = onEvent;
    this.onClose = onClose;
    this.ws = new WebSocket(wsBase + '/control.ashx');
    this.ready = new Promise((res) => { this.readyRes = res; });
    this.ws.onmessage = (m) => this.message(JSON.parse(m.data));
    this.ws.onclose = () => {
      for (const p of this.pending.values()) p.reject(new Error('connection closed'));
      this.pending.clear();
      this.onClose(this.closeCause || 'closed');
    };
  }
  message(m) {
    if (m.action === 'close') { this.closeCause = m.cause || 'closed'; return; }
    if (m.action === 'userinfo' && !this.userinfo) { this.userinfo = m.userinfo; this.readyRes(m.userinfo); }
    if (m.responseid != null && this.pending.has(m.responseid)) {
      const p = this.pending.get(m.responseid);
      this.pending.delete(m.responseid);
      p.resolve(m);
      return;
    }
    this.onEvent(m);
  }
  call(req) {
    const id = 'w' + this.next++;
    req.responseid = id;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify(req));
    });
  }
  close() { this.ws.close(); }
}

// ---- login ---------------------------------------------------------------------
// formLogin answers 'ok', 'token' (the password was right, a second
// factor's code is needed) or 'bad'.
async function formLogin(user, pass, code) {
  const body = new URLSearchParams({ action: 'login', username: user, password: pass });
  if (code) body.set('token', code);
  const r = await fetch('/login', { method: 'POST', credentials: 'same-origin', body });
  if (r.ok) return 'ok';
  if (r.status === 401 && (r.headers.get('Content-Type') || '').startsWith('application/json')) {
    const j = await r.json().catch(() => ({}));
    if (j.error === 'tokenrequired') return 'token';
  }
  if (r.status === 429) return 'throttled';
  return 'bad';
}

function show(id) {
  for (const v of ['loginview', 'devicesview', 'deviceview', 'eventsview', 'groupsview', 'usersview', 'accountview']) $('#' + v).hidden = v !== id;
  for (const b of document.querySelectorAll('.navbtn')) b.classList.toggle('active', b.dataset.view + 'view' === id);
}

function showLogin(msg) {
  show('loginview');
  $('#loginerr').textContent = msg || '';
  $('#codelabel').hidden = true;
  $('#logincode').value = '';
  $('#password').disabled = false;
  $('#username').disabled = false;
  fetch('/oidc/config', { credentials: 'same-origin' }).then((r) => (r.ok ? r.json() : null)).then((c) => {
    if (!c || !c.enabled) return;
    $('#oidclogin').textContent = 'Sign in with ' + (c.label || 'single sign-on');
    $('#oidcbox').hidden = false;
  }).catch(() => {});
  $('#logout').hidden = true;
  $('#whoami').textContent = '';
  $('#username').focus();
}

$('#loginform').addEventListener('submit', async (e) => {
  e.preventDefault();
  $('#loginbtn').disabled = true;
  $('#loginerr').textContent = '';
  let keep = false;
  try {
    const res = await formLogin($('#username').value, $('#password').value, $('#codelabel').hidden ? '' : $('#logincode').value.trim());
    if (res === 'ok') connect();
    else if (res === 'token') {
      // Keep the password for the second request; ask for the code.
      keep = true;
      const asked = !$('#codelabel').hidden;
      $('#codelabel').hidden = false;
      $('#logincode').value = '';
      $('#logincode').focus();
      $('#loginerr').textContent = asked ? 'Enter the code from your authenticator app.' : '';
    } else if (res === 'throttled') $('#loginerr').textContent = 'Too many failed logins; try again later.';
    else $('#loginerr').textContent = $('#codelabel').hidden ? 'Wrong user name or password.' : 'Wrong code, or the code was already used.';
    if (res === 'bad' && !$('#codelabel').hidden) keep = true;
  } catch (err) {
    $('#loginerr').textContent = 'Cannot reach the server: ' + err.message;
  } finally {
    $('#loginbtn').disabled = false;
    if (!keep) $('#password').value = '';
  }
});

// Single sign-on: the server sends the browser on to the provider.
$('#oidclogin').addEventListener('click', () => { location.assign('/oidc/login'); });

$('#logout').addEventListener('click', async () => {
  closeSessions();
  if (st.ctl) st.ctl.close();
  await fetch('/logout', { credentials: 'same-origin' });
  showLogin('Logged out.');
});

function connect() {
  const ctl = new Control(onEvent, (cause) => {
    if (st.ctl !== ctl) return;
    st.ctl = null;
    closeSessions();
    showLogin(cause === 'noauth' ? '' : 'Disconnected from the server (' + cause + ').');
  });
  st.ctl = ctl;
  ctl.ready.then(async (u) => {
    st.user = u;
    $('#whoami').textContent = u.name;
    // Site right 2 is "manage users" (0xFFFFFFFF: full administrator).
    $('.navbtn[data-view="users"]').hidden = !((u.siteadmin >>> 0) === 0xFFFFFFFF || (u.siteadmin & 2));
    $('#logout').hidden = false;
    await refresh();
    if (embed.node) {
      const id = embed.node.startsWith('node/') ? 'node//' + embed.node.split('/').pop() : 'node//' + embed.node;
      if (st.nodes[id]) openDevice(id, viewTabs[embed.viewmode] || 'general');
      else { show('devicesview'); renderDevices(); }
      embed.node = '';
    } else if (st.view === 'events') showEvents();
    else { show('devicesview'); renderDevices(); }
  });
}

// ---- devices ---------------------------------------------------------------------
async function refresh() {
  const [m, n] = await Promise.all([st.ctl.call({ action: 'meshes' }), st.ctl.call({ action: 'nodes' })]);
  st.meshes = {};
  for (const g of m.meshes || []) st.meshes[g._id] = g;
  const old = st.nodes;
  st.nodes = {};
  for (const [mid, list] of Object.entries(n.nodes || {})) {
    for (const d of list) { d.meshid = mid; st.nodes[d._id] = d; }
  }
  // keep live state that arrived while the request was out
  for (const [id, d] of Object.entries(old)) if (st.nodes[id] && d.liveConn != null) st.nodes[id].conn = d.liveConn;
  const sel = $('#groupfilter');
  const keep = sel.value;
  sel.replaceChildren(el('option', { value: '' }, 'All groups'));
  for (const g of Object.values(st.meshes).sort((a, b) => a.name.localeCompare(b.name))) sel.append(el('option', { value: g._id }, g.name));
  sel.value = st.meshes[keep] ? keep : '';
}

function isOnline(d) { return (d.conn & 1) === 1; }

function renderDevices() {
  const q = $('#search').value.trim().toLowerCase();
  const gsel = $('#groupfilter').value;
  const list = $('#devicelist');
  list.replaceChildren();
  const groups = Object.values(st.meshes).sort((a, b) => a.name.localeCompare(b.name));
  let shown = 0;
  for (const g of groups) {
    if (gsel && g._id !== gsel) continue;
    const ds = Object.values(st.nodes).filter((d) => d.meshid === g._id && (!q ||
      [d.name, d.rname, d.osdesc, d.ip, ...(d.tags || [])].some((s) => s && String(s).toLowerCase().includes(q))))
      .sort((a, b) => (a.name || '').localeCompare(b.name || ''));
    const box = el('div', { class: 'group', 'data-mesh': g._id }, el('h2', {}, g.name + ' (' + ds.length + ')'));
    for (const d of ds) {
      shown++;
      box.append(el('div', { class: 'device', 'data-node': d._id, role: 'button', tabindex: '0', onclick: () => openDevice(d._id, 'general') },
        el('span', { class: 'name' }, d.name || d.rname || d._id),
        el('span', { class: 'os' }, d.osdesc || ''),
        el('span', { class: 'ver', title: 'agent version' }, agentVersion(d)),
        el('span', { class: 'state' + (isOnline(d) ? ' online' : '') }, isOnline(d) ? 'online' : 'offline')));
    }
    list.append(box);
  }
  if (!shown) list.append(el('p', { class: 'status', id: 'nodevices' }, groups.length ? 'No devices match.' : 'You have no device groups.'));
}
$('#search').addEventListener('input', renderDevices);

// agentVersion: our agent's version string (answered to server-lite's
// update query), else the C agent's build number from the handshake.
function agentVersion(d) {
  const a = d.agent || {};
  return a.version || (a.ver ? String(a.ver) : '');
}
$('#groupfilter').addEventListener('change', renderDevices);

for (const b of document.querySelectorAll('.navbtn')) {
  b.addEventListener('click', () => {
    closeSessions();
    st.current = null;
    if (b.dataset.view === 'events') showEvents();
    else if (b.dataset.view === 'groups') showGroups();
    else if (b.dataset.view === 'users') showUsers();
    else if (b.dataset.view === 'account') showAccount();
    else { st.view = 'devices'; show('devicesview'); renderDevices(); }
  });
}
$('#back').addEventListener('click', () => { closeSessions(); st.current = null; show('devicesview'); renderDevices(); });

let refreshTimer = null;
function onEvent(m) {
  if (m.action !== 'event' || !m.event) return;
  const ev = m.event;
  if (ev.action === 'nodeconnect') {
    const d = st.nodes[ev.nodeid];
    if (!d) { // a device we have not listed yet
      clearTimeout(refreshTimer);
      refreshTimer = setTimeout(() => refresh().then(() => { if (st.view === 'devices' && !st.current) renderDevices(); }), 300);
      return;
    }
    d.conn = ev.conn; d.liveConn = ev.conn;
    if (!st.current && st.view === 'devices') renderDevices();
    if (st.current === d._id) renderDeviceHeader();
  } else if (st.view === 'events' && !st.current) {
    showEvents();
  }
}

// ---- one device ------------------------------------------------------------------
function renderDeviceHeader() {
  const d = st.nodes[st.current];
  if (!d) return;
  $('#devname').textContent = d.name || d.rname;
  const s = $('#devstate');
  s.textContent = isOnline(d) ? 'online' : 'offline';
  s.className = 'state' + (isOnline(d) ? ' online' : '');
}

function openDevice(id, tab) {
  closeSessions();
  st.current = id;
  show('deviceview');
  renderDeviceHeader();
  selectTab(tab);
}

for (const b of document.querySelectorAll('#devtabs button')) b.addEventListener('click', () => { selectTab(b.dataset.tab); });

function selectTab(tab) {
  if (st.tab === 'desktop' && tab !== 'desktop') desk.close();
  st.tab = tab;
  for (const b of document.querySelectorAll('#devtabs button')) b.classList.toggle('active', b.dataset.tab === tab);
  for (const t of document.querySelectorAll('.tab')) t.hidden = t.id !== 'tab-' + tab;
  if (tab === 'general') loadGeneral();
  if (tab === 'events') loadEvents($('#devevents'), st.current);
  if (tab === 'desktop' && (embed.viewmode === 11 || params.get('autoconnect') === '1')) desk.open();
  if (tab === 'files' && !files.ch) files.open();
}

function kv(rows) {
  const dl = el('dl', { class: 'kv' });
  for (const [k, v] of rows) if (v != null && v !== '') dl.append(el('dt', {}, k), el('dd', { 'data-k': k }, String(v)));
  return dl;
}

async function loadGeneral() {
  const id = st.current;
  const d = st.nodes[id];
  const box = $('#general');
  const basics = () => kv([['Name', d.name], ['Group', (st.meshes[d.meshid] || {}).name], ['Operating system', d.osdesc], ['IP address', d.ip],
    ['Agent version', agentVersion(d)], ['State', isOnline(d) ? 'online' : 'offline']]);
  box.replaceChildren(basics());
  $('#desc').value = d.desc || '';
  $('#tags').value = (d.tags || []).join(', ');
  const [si, ni] = await Promise.all([
    st.ctl.call({ action: 'getsysinfo', nodeid: id, nodeinfo: true }),
    st.ctl.call({ action: 'getnetworkinfo', nodeid: id }),
  ]);
  if (st.current !== id) return;
  if (si.node) {
    const mid = d.meshid;
    Object.assign(d, si.node);
    d.meshid = si.node.meshid || mid;
    $('#desc').value = d.desc || '';
    $('#tags').value = (d.tags || []).join(', ');
    box.replaceChildren(basics());
  }
  const rows = [];
  const hw = (si.hardware) || {};
  const ident = hw.identifiers || {};
  const linux = hw.linux || {};
  const win = hw.windows || {};
  const osinfo = win.osinfo || {};
  rows.push(['OS name', osinfo.Caption || linux.os_name || (si.osdesc)]);
  rows.push(['CPU', ident.cpu_name || (win.cpu && win.cpu[0] && win.cpu[0].Name)]);
  rows.push(['Board', [ident.board_vendor, ident.board_name].filter(Boolean).join(' ')]);
  rows.push(['BIOS', [ident.bios_vendor, ident.bios_version].filter(Boolean).join(' ')]);
  // memory: an array of banks, or {Memory_Device: [...]} (Linux), per platform
  const banks = [];
  for (const plat of [hw.linux, hw.windows, hw.mac, hw]) {
    if (!plat || !plat.memory) continue;
    const m = plat.memory;
    const list = Array.isArray(m) ? m : (Array.isArray(m.Memory_Device) ? m.Memory_Device : []);
    for (const b of list) {
      const size = b.Capacity != null ? fmtSize(Number(b.Capacity)) : b.Size;
      if (size && size !== 'No Module Installed') banks.push([b.BankLabel || b.Locator || b.DeviceLocator, size].filter(Boolean).join(': '));
    }
    if (banks.length) break;
  }
  if (banks.length) rows.push(['Memory', banks.join('; ')]);
  const storage = ident.storage_devices || hw.storage || linux.LogicalDisks || (win.drives) || [];
  const disks = [];
  for (const s of Array.isArray(storage) ? storage : []) disks.push([s.Model || s.Caption || s.name || s.Name, s.Size ? fmtSize(Number(s.Size)) : ''].filter(Boolean).join(' '));
  if (si.volumes) for (const [k, v] of Object.entries(si.volumes)) disks.push(k + ' ' + [v.type, v.size ? fmtSize(Number(v.size)) : ''].filter(Boolean).join(' '));
  if (disks.length) rows.push(['Disks', disks.join('; ')]);
  const nets = [];
  for (const [name, addrs] of Object.entries(ni.netif2 || {})) {
    for (const a of addrs || []) if (a.address) nets.push(name + ': ' + a.address + (a.mac && a.mac !== '00:00:00:00:00:00' ? ' (' + a.mac + ')' : ''));
  }
  if (nets.length) rows.push(['Network', nets.join('; ')]);
  const sys = el('div', { id: 'sysinfo' }, el('h3', {}, 'System'), kv(rows));
  if (si.result) sys.append(el('p', { class: 'status' }, 'No system information: ' + si.result));
  box.append(sys);
}

$('#savedev').addEventListener('click', async () => {
  const tags = $('#tags').value.split(',').map((s) => s.trim()).filter(Boolean);
  const r = await st.ctl.call({ action: 'changedevice', nodeid: st.current, desc: $('#desc').value, tags });
  $('#savestate').textContent = r.result && r.result !== 'ok' ? r.result : 'Saved';
  const d = st.nodes[st.current];
  if (d && (!r.result || r.result === 'ok')) { d.tags = tags; d.desc = $('#desc').value; }
});

$('#runcmd').addEventListener('click', async () => {
  $('#runstate').textContent = 'Running...';
  $('#cmdout').textContent = '';
  // type 0: the server picks the device's shell (cmd on Windows, sh elsewhere).
  const r = await st.ctl.call({ action: 'runcommands', nodeids: [st.current], type: 0, cmds: $('#cmds').value, runAsUser: 0, reply: true });
  if (r.action === 'msg') { // the agent's reply: the output
    $('#runstate').textContent = 'Done';
    $('#cmdout').textContent = typeof r.result === 'string' ? r.result : JSON.stringify(r.result);
  } else $('#runstate').textContent = r.result || 'Done';
});

// ---- events ----------------------------------------------------------------------
async function loadEvents(table, nodeid) {
  const req = { action: 'events', limit: 200 };
  if (nodeid) req.nodeid = nodeid;
  const r = await st.ctl.call(req);
  const body = table.tBodies[0];
  body.replaceChildren();
  for (const e of r.events || []) {
    const t = e.time ? new Date(e.time).getTime() : 0;
    body.append(el('tr', { class: 'event' }, el('td', { class: 'time' }, fmtTime(t)), el('td', {}, e.username || e.userid || ''),
      el('td', {}, e.msg || e.action || '')));
  }
  if (!body.rows.length) body.append(el('tr', {}, el('td', {}, 'No events.')));
}
function showEvents() { st.view = 'events'; show('eventsview'); loadEvents($('#allevents'), ''); }

// ---- groups, users and rights ---------------------------------------------------------
// Group rights bits (MeshCentral's): the presets the page offers.
const rightPresets = [
  ['Full rights', 0xFFFFFFFF],
  ['Remote control, terminal and files', 0x8 | 0x80 | 0x40],
  ['View only (desktop)', 0x100 | 0x200 | 0x400],
];
// describeRights names the bits of proto/session's rights.
function describeRights(r) {
  r = r >>> 0;
  if (r === 0xFFFFFFFF) return 'full rights';
  const names = [[0x1, 'edit group'], [0x2, 'manage users'], [0x4, 'manage devices'], [0x8, 'remote control'], [0x10, 'agent console'],
    [0x20, 'server files'], [0x40, 'wake'], [0x80, 'notes'], [0x100, 'view only'], [0x200, 'no terminal'], [0x400, 'no files'],
    [0x1000, 'limited input'], [0x2000, 'limited events'], [0x4000, 'chat and notify'], [0x8000, 'uninstall'], [0x10000, 'no desktop'],
    [0x20000, 'run commands'], [0x40000, 'power']];
  const out = names.filter(([b]) => r & b).map(([, n]) => n);
  return out.join(', ') || 'none';
}
function shortGroupID(id) { return id.replace(/^mesh\/\//, ''); }

async function showGroups() {
  st.view = 'groups';
  show('groupsview');
  await refresh();
  const list = $('#grouplist');
  list.replaceChildren();
  const base = location.origin;
  for (const g of Object.values(st.meshes).sort((a, b) => a.name.localeCompare(b.name))) {
    const sid = shortGroupID(g._id);
    const msh = '/meshsettings?id=' + encodeURIComponent(sid);
    const members = el('ul', { class: 'members' });
    for (const [uid, m] of Object.entries(g.links || {})) {
      const li = el('li', { 'data-user': uid }, (m.name || uid) + ': ' + describeRights(m.rights));
      if (uid !== st.user._id) {
        li.append(' ', el('button', { type: 'button', class: 'removemember', onclick: async () => {
          await st.ctl.call({ action: 'addmeshuser', meshid: g._id, userids: [uid], remove: true });
          showGroups();
        } }, 'Remove'));
      }
      members.append(li);
    }
    const who = el('input', { 'aria-label': 'User name', placeholder: 'User name', class: 'adduser' });
    const rights = el('select', { 'aria-label': 'Rights', class: 'addrights' });
    for (const [n, v] of rightPresets) rights.append(el('option', { value: String(v) }, n));
    const state = el('span', { class: 'status addstate' });
    const add = el('form', { class: 'toolbar addmember' }, who, rights, el('button', { type: 'submit' }, 'Add user to group'), state);
    add.addEventListener('submit', async (e) => {
      e.preventDefault();
      const r = await st.ctl.call({ action: 'addmeshuser', meshid: g._id, usernames: [who.value.trim()], meshadmin: Number(rights.value) });
      state.textContent = r.result || 'ok';
      if (!r.result || /^(ok|added)/i.test(r.result)) showGroups();
    });
    const install = [
      '# our agent, with this group\'s settings:',
      'curl -ks "' + base + msh + '" > meshagent.msh && ./meshagent run',
      '# MeshCentral\'s Linux install script (served by /meshagents):',
      '(wget "' + base + '/meshagents?script=1" --no-check-certificate -O ./meshinstall.sh || curl -k -o ./meshinstall.sh "' + base + '/meshagents?script=1") && chmod 755 ./meshinstall.sh && sudo -E ./meshinstall.sh ' + base + " '" + sid + "'",
    ].join('\n');
    list.append(el('div', { class: 'groupbox', 'data-mesh': g._id },
      el('h3', {}, g.name), g.desc ? el('p', {}, g.desc) : null,
      el('p', {}, el('a', { href: msh, class: 'mshlink', download: 'meshagent.msh' }, 'Download meshagent.msh')),
      el('pre', { class: 'install' }, install),
      el('h4', {}, 'Users'), members, add));
  }
  if (!list.children.length) list.append(el('p', { class: 'status' }, 'You have no device groups.'));
}
$('#newgroup').addEventListener('submit', async (e) => {
  e.preventDefault();
  const r = await st.ctl.call({ action: 'createmesh', meshname: $('#newgroupname').value.trim(), meshtype: 2 });
  $('#newgroupstate').textContent = r.result || 'ok';
  $('#newgroupname').value = '';
  showGroups();
});

async function showUsers() {
  st.view = 'users';
  show('usersview');
  const r = await st.ctl.call({ action: 'users' });
  const body = $('#userlist').tBodies[0];
  body.replaceChildren();
  for (const u of r.users || []) {
    const groups = Object.keys(u.links || {}).map((id) => (st.meshes[id] || {}).name || id).join(', ');
    const tr = el('tr', { class: 'user', 'data-user': u._id }, el('td', {}, u.name), el('td', {}, (u.siteadmin >>> 0) === 0xFFFFFFFF ? 'administrator' : ''), el('td', {}, groups));
    const acts = el('td', {});
    const full = (u.siteadmin >>> 0) === 0xFFFFFFFF;
    const locked = !full && (u.siteadmin & 32) !== 0;
    if (locked) tr.children[1].textContent = 'deactivated';
    if (u.otpsecret) tr.children[1].append(el('span', { class: 'badge' }, ' 2FA'));
    // Nobody deletes, deactivates or resets themselves here (the server
    // refuses it too): one's own password is changed under Account.
    if (u._id !== st.user._id) {
      acts.append(el('button', { type: 'button', class: 'resetpass', onclick: async () => {
        if (!confirm('Give ' + u.name + ' a new random password? Their sessions end.')) return;
        const r = await st.ctl.call({ action: 'changeuserpass', userid: u._id, generate: true, removeMultiFactor: false });
        if (r.result === 'ok' && r.pass) {
          $('#resetuser').textContent = u.name;
          $('#resetpass').textContent = r.pass;
          $('#resetbox').hidden = false;
          $('#userstate').textContent = '';
        } else $('#userstate').textContent = r.result || 'failed';
      } }, 'Reset password'));
      if (!full) {
        acts.append(el('button', { type: 'button', class: locked ? 'activate' : 'deactivate', onclick: async () => {
          const r = await st.ctl.call({ action: 'edituser', userid: u._id, siteadmin: locked ? (u.siteadmin & ~32) : (u.siteadmin | 32) });
          $('#userstate').textContent = r.result === 'ok' ? (locked ? u.name + ' activated.' : u.name + ' deactivated.') : (r.result || 'failed');
          showUsers();
        } }, locked ? 'Activate' : 'Deactivate'));
      }
      if (u.otpsecret) {
        acts.append(el('button', { type: 'button', class: 'rm2fa', onclick: async () => {
          const r = await st.ctl.call({ action: 'changeuserpass', userid: u._id, pass: '', removeMultiFactor: true });
          $('#userstate').textContent = r.result === 'ok' ? 'Authenticator app of ' + u.name + ' removed.' : (r.result || 'failed');
          showUsers();
        } }, 'Remove 2FA'));
      }
      acts.append(el('button', { type: 'button', class: 'deluser', onclick: async () => {
        if (!confirm('Delete user ' + u.name + '?')) return;
        await st.ctl.call({ action: 'deleteuser', userid: u._id });
        showUsers();
      } }, 'Delete'));
    }
    tr.append(acts);
    body.append(tr);
  }
}
$('#newuser').addEventListener('submit', async (e) => {
  e.preventDefault();
  const r = await st.ctl.call({ action: 'adduser', username: $('#newusername').value.trim(), pass: $('#newuserpass').value });
  $('#newuserstate').textContent = r.result || 'ok';
  $('#newuserpass').value = '';
  if (!r.result || r.result === 'ok') { $('#newusername').value = ''; showUsers(); }
});

// ---- own account: password and authenticator app -----------------------------------
async function showAccount() {
  st.view = 'account';
  show('accountview');
  $('#passstate').textContent = '';
  $('#otpsetup').hidden = true;
  const r = await st.ctl.call({ action: 'userinfo' });
  const u = r.userinfo || st.user;
  st.user = u;
  $('#passform').hidden = !!u.external;
  $('#otpstate').textContent = u.otpsecret ? 'On: signing in needs a code from your app.' : 'Off.';
  $('#otpstart').hidden = !!u.otpsecret;
  $('#otpclear').hidden = !u.otpsecret;
}
$('#passform').addEventListener('submit', async (e) => {
  e.preventDefault();
  if ($('#newpass').value !== $('#newpass2').value) { $('#passstate').textContent = 'The new passwords differ.'; return; }
  const r = await st.ctl.call({ action: 'changepassword', oldpass: $('#oldpass').value, newpass: $('#newpass').value });
  $('#passstate').textContent = r.result === 'ok' ? 'Password changed.' : r.result;
  for (const id of ['#oldpass', '#newpass', '#newpass2']) $(id).value = '';
});
let otpSecret = '';
$('#otpstart').addEventListener('click', async () => {
  const r = await st.ctl.call({ action: 'otpauth-request' });
  if (!r.secret) { $('#otpstate').textContent = 'Not available (' + (r.err || r.result) + ').'; return; }
  otpSecret = r.secret;
  $('#otpsecret').textContent = r.secret.replace(/(.{4})/g, '$1 ').trim();
  $('#otpurl').href = r.url;
  $('#otpsetup').hidden = false;
  $('#otpcode').value = '';
  $('#otpcode').focus();
});
$('#otpconfirm').addEventListener('click', async () => {
  const r = await st.ctl.call({ action: 'otpauth-setup', secret: otpSecret, token: $('#otpcode').value.trim() });
  if (r.success) { otpSecret = ''; await showAccount(); $('#otpstate').textContent = 'On: signing in needs a code from your app.'; }
  else $('#otpstate').textContent = 'That code is not right: ' + (r.result || 'try again') + '.';
});
$('#otpclear').addEventListener('click', async () => {
  if (!confirm('Remove the authenticator app? Signing in will need only the password.')) return;
  await st.ctl.call({ action: 'otpauth-clear' });
  showAccount();
});

// ---- relay sessions ----------------------------------------------------------------
// openRelay does what MeshCentral's page does for a session: a relay
// cookie from control.ashx, the user end of meshrelay.ashx, the tunnel
// request that brings the agent's end, then (on "c") options and the
// protocol number.
async function openRelay(nodeid, proto, options, onStatus) {
  const ck = await st.ctl.call({ action: 'authcookie' });
  if (!ck.cookie) throw new Error('no relay cookie');
  const id = randomHex(8);
  const q = new URLSearchParams({ browser: '1', p: String(proto), nodeid, id, auth: ck.cookie });
  const ws = new WebSocket(wsBase + '/meshrelay.ashx?' + q);
  ws.binaryType = 'arraybuffer';
  await new Promise((res, rej) => { ws.onopen = res; ws.onerror = () => rej(new Error('relay connection failed')); });
  onStatus('Waiting for the device...');
  const paired = new Promise((res, rej) => {
    ws.onmessage = (m) => { if (typeof m.data === 'string' && (m.data === 'c' || m.data === 'cr')) res(); };
    ws.onclose = () => rej(new Error('the device did not join the session'));
  });
  const rep = await st.ctl.call({ action: 'msg', type: 'tunnel', nodeid, usage: proto,
    value: '*/meshrelay.ashx?p=' + proto + '&nodeid=' + nodeid + '&id=' + id + '&rauth=' + ck.rcookie });
  if (rep.result && rep.result.toLowerCase() !== 'ok') { ws.close(); throw new Error(rep.result); }
  await paired;
  if (options) ws.send(JSON.stringify(Object.assign({ ctrlChannel: '102938', type: 'options' }, options)));
  ws.send(String(proto));
  return ws;
}

function consoleMsg(text) {
  try {
    const j = JSON.parse(text);
    if (j.ctrlChannel === '102938' && j.type === 'console') return j.msg || '';
  } catch (e) { /* not JSON */ }
  return null;
}

function closeSessions() { desk.close(); term.close(); files.close(); }

// ---- desktop (relay protocol 2, KVM) --------------------------------------------------
const K = { KEY: 1, MOUSE: 2, PICTURE: 3, COMPRESSION: 5, REFRESH: 6, SCREEN: 7, CAD: 10, GETDISPLAYS: 11, SETDISPLAY: 12, JUMBO: 27, ERROR: 65, UNICODE: 85 };
function kvmCmd(cmd, ...words) {
  const b = new Uint8Array(4 + 2 * words.length);
  const v = new DataView(b.buffer);
  v.setUint16(0, cmd); v.setUint16(2, b.length);
  words.forEach((w, i) => v.setUint16(4 + 2 * i, w));
  return b;
}
const desk = {
  ws: null, canvas: $('#desk'), ctx: $('#desk').getContext('2d'), chain: Promise.resolve(), tiles: 0, screen: null,
  status(s) { $('#deskstatus').textContent = s; },
  async open() {
    if (this.ws) return;
    const node = st.current;
    this.status('Connecting...');
    try {
      const ws = await openRelay(node, 2, null, (s) => this.status(s));
      if (st.current !== node || st.tab !== 'desktop') { ws.close(); return; }
      this.ws = ws;
      this.tiles = 0;
      ws.onmessage = (m) => { if (typeof m.data === 'string') { const c = consoleMsg(m.data); if (c) this.status(c); } else this.recv(new Uint8Array(m.data)); };
      ws.onclose = () => { if (this.ws === ws) { this.ws = null; this.status('Disconnected'); } };
      this.status('Connected');
      this.settings();
      this.send(kvmCmd(K.REFRESH));
      this.canvas.focus();
    } catch (e) {
      this.status('Failed: ' + e.message);
    }
  },
  close() { if (this.ws) { const w = this.ws; this.ws = null; w.close(); this.status('Disconnected'); } },
  send(b) { if (this.ws && this.ws.readyState === 1) this.ws.send(b); },
  settings() {
    const b = kvmCmd(K.COMPRESSION, 0, 1024, parseInt($('#deskrate').value, 10));
    b[4] = 1; b[5] = parseInt($('#deskquality').value, 10);
    this.send(b);
  },
  recv(b) {
    if (b.length < 4) return;
    let v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    let cmd = v.getUint16(0);
    if (cmd === K.JUMBO) {
      if (b.length < 16) return;
      b = b.subarray(8);
      v = new DataView(b.buffer, b.byteOffset, b.byteLength);
      cmd = v.getUint16(0);
    }
    switch (cmd) {
      case K.SCREEN: {
        const w = v.getUint16(4), h = v.getUint16(6);
        this.chain = this.chain.then(() => { this.canvas.width = w; this.canvas.height = h; this.screen = [w, h]; this.canvas.dataset.size = w + 'x' + h; });
        break;
      }
      case K.PICTURE: {
        const x = v.getUint16(4), y = v.getUint16(6);
        const blob = new Blob([b.subarray(8)], { type: 'image/jpeg' });
        const img = createImageBitmap(blob);
        // Tiles are drawn in arrival order: decoding is asynchronous.
        this.chain = this.chain.then(() => img).then((bm) => {
          this.ctx.drawImage(bm, x, y); bm.close();
          this.tiles++; this.canvas.dataset.tiles = String(this.tiles);
        }, () => {});
        break;
      }
      case K.GETDISPLAYS: {
        const n = v.getUint16(4);
        const sel = $('#deskdisplay');
        sel.replaceChildren();
        for (let i = 0; i < n && 6 + 2 * i + 1 < b.length; i++) {
          const id = v.getUint16(6 + 2 * i);
          sel.append(el('option', { value: String(id) }, id === 0xFFFF ? 'All displays' : 'Display ' + id));
        }
        sel.hidden = n < 2;
        break;
      }
      case K.SETDISPLAY: if (b.length >= 6) $('#deskdisplay').value = String(v.getUint16(4)); break;
      case K.ERROR: this.status('Error: ' + new TextDecoder().decode(b.subarray(4))); break;
    }
  },
  pos(e) {
    const r = this.canvas.getBoundingClientRect();
    return [Math.max(0, Math.round((e.clientX - r.left) * this.canvas.width / r.width)),
      Math.max(0, Math.round((e.clientY - r.top) * this.canvas.height / r.height))];
  },
  mouse(e, button) {
    if (!this.ws) return;
    const [x, y] = this.pos(e);
    const b = kvmCmd(K.MOUSE, 0, x, y);
    b[5] = button;
    this.send(b);
  },
  key(e, down) {
    if (!this.ws) return;
    e.preventDefault();
    if (e.key && e.key.length === 1 && !e.ctrlKey && !e.altKey && !e.metaKey) {
      const c = e.key.charCodeAt(0);
      this.send(new Uint8Array([0, K.UNICODE, 0, 7, down ? 0 : 1, c >> 8, c & 255]));
    } else if (e.keyCode) {
      this.send(new Uint8Array([0, K.KEY, 0, 6, down ? 0 : 1, e.keyCode & 255]));
    }
  },
};
{
  const c = desk.canvas;
  const btn = (e, down) => [[0x02, 0x04], [0x20, 0x40], [0x08, 0x10]][e.button] ? [[0x02, 0x04], [0x20, 0x40], [0x08, 0x10]][e.button][down ? 0 : 1] : 0;
  c.addEventListener('mousemove', (e) => desk.mouse(e, 0));
  c.addEventListener('mousedown', (e) => { c.focus(); desk.mouse(e, btn(e, true)); e.preventDefault(); });
  c.addEventListener('mouseup', (e) => desk.mouse(e, btn(e, false)));
  c.addEventListener('contextmenu', (e) => e.preventDefault());
  c.addEventListener('keydown', (e) => desk.key(e, true));
  c.addEventListener('keyup', (e) => desk.key(e, false));
  $('#deskconnect').addEventListener('click', () => desk.open());
  $('#deskdisconnect').addEventListener('click', () => desk.close());
  $('#deskquality').addEventListener('change', () => desk.settings());
  $('#deskrate').addEventListener('change', () => desk.settings());
  $('#deskdisplay').addEventListener('change', () => { desk.send(kvmCmd(K.SETDISPLAY, parseInt($('#deskdisplay').value, 10))); });
  $('#deskcad').addEventListener('click', () => desk.send(kvmCmd(K.CAD)));
}

// ---- terminal (relay protocol 1) -----------------------------------------------------
// A small VT100/ANSI screen: enough for a shell prompt and line editing
// (cursor moves, erase, scroll region of the whole screen); SGR colours
// are parsed and ignored.
class Screen {
  constructor(cols, rows) { this.cols = cols; this.rows = rows; this.reset(); }
  reset() { this.lines = []; for (let i = 0; i < this.rows; i++) this.lines.push(this.blank()); this.x = 0; this.y = 0; this.state = 0; this.arg = ''; this.saved = [0, 0]; }
  blank() { return new Array(this.cols).fill(' '); }
  scroll() { this.lines.shift(); this.lines.push(this.blank()); }
  lf() { if (this.y === this.rows - 1) this.scroll(); else this.y++; }
  put(ch) {
    if (this.x >= this.cols) { this.x = 0; this.lf(); }
    this.lines[this.y][this.x++] = ch;
  }
  write(s) {
    for (const ch of s) {
      const c = ch.codePointAt(0);
      if (this.state === 0) {
        if (c === 27) this.state = 1;
        else if (c === 13) this.x = 0;
        else if (c === 10 || c === 11 || c === 12) this.lf();
        else if (c === 8) { if (this.x > 0) this.x--; }
        else if (c === 9) this.x = Math.min(this.cols - 1, (this.x + 8) & ~7);
        else if (c === 7) { /* bell */ }
        else if (c >= 32) this.put(ch);
      } else if (this.state === 1) {
        if (ch === '[') { this.state = 2; this.arg = ''; }
        else if (ch === ']') { this.state = 3; }
        else if (ch === '(' || ch === ')') this.state = 4;
        else { if (ch === '7') this.saved = [this.x, this.y]; if (ch === '8') [this.x, this.y] = this.saved; if (ch === 'M') { if (this.y > 0) this.y--; } if (ch === 'c') this.reset(); this.state = 0; }
      } else if (this.state === 2) {
        if (c >= 0x40 && c <= 0x7e) { this.csi(ch, this.arg); this.state = 0; } else this.arg += ch;
      } else if (this.state === 3) { // OSC: up to BEL or ESC \
        if (c === 7) this.state = 0; else if (c === 27) this.state = 5;
      } else if (this.state === 4) this.state = 0;
      else if (this.state === 5) this.state = 0;
    }
  }
  csi(f, arg) {
    const priv = arg.startsWith('?');
    const ps = (priv ? arg.slice(1) : arg).split(';').map((p) => parseInt(p, 10));
    const n = (i, d) => (Number.isFinite(ps[i]) && ps[i] > 0 ? ps[i] : d);
    const clampY = (y) => Math.max(0, Math.min(this.rows - 1, y));
    const clampX = (x) => Math.max(0, Math.min(this.cols - 1, x));
    switch (f) {
      case 'A': this.y = clampY(this.y - n(0, 1)); break;
      case 'B': this.y = clampY(this.y + n(0, 1)); break;
      case 'C': this.x = clampX(this.x + n(0, 1)); break;
      case 'D': this.x = clampX(this.x - n(0, 1)); break;
      case 'G': this.x = clampX(n(0, 1) - 1); break;
      case 'd': this.y = clampY(n(0, 1) - 1); break;
      case 'H': case 'f': this.y = clampY(n(0, 1) - 1); this.x = clampX(n(1, 1) - 1); break;
      case 'J': {
        const m = ps[0] || 0;
        if (m === 2 || m === 3) { for (let i = 0; i < this.rows; i++) this.lines[i] = this.blank(); }
        else if (m === 0) { this.lines[this.y].fill(' ', this.x); for (let i = this.y + 1; i < this.rows; i++) this.lines[i] = this.blank(); }
        else { this.lines[this.y].fill(' ', 0, this.x + 1); for (let i = 0; i < this.y; i++) this.lines[i] = this.blank(); }
        break;
      }
      case 'K': {
        const m = ps[0] || 0;
        if (m === 0) this.lines[this.y].fill(' ', this.x); else if (m === 1) this.lines[this.y].fill(' ', 0, this.x + 1); else this.lines[this.y].fill(' ');
        break;
      }
      case 'P': { const l = this.lines[this.y]; l.splice(this.x, n(0, 1)); while (l.length < this.cols) l.push(' '); break; }
      case '@': { const l = this.lines[this.y]; l.splice(this.x, 0, ...new Array(n(0, 1)).fill(' ')); l.length = this.cols; break; }
      case 'X': this.lines[this.y].fill(' ', this.x, Math.min(this.cols, this.x + n(0, 1))); break;
      case 'L': for (let i = 0; i < n(0, 1); i++) { this.lines.splice(this.y, 0, this.blank()); this.lines.length = this.rows; } break;
      case 'M': for (let i = 0; i < n(0, 1); i++) { this.lines.splice(this.y, 1); this.lines.push(this.blank()); } break;
      case 's': this.saved = [this.x, this.y]; break;
      case 'u': [this.x, this.y] = this.saved; break;
      default: break; // m (colours), h/l (modes), r (region): ignored
    }
  }
  text() { return this.lines.map((l) => l.join('').replace(/\s+$/, '')).join('\n'); }
}

const term = {
  ws: null, screen: new Screen(100, 30), dec: null, pre: $('#term'), received: '',
  status(s) { $('#termstatus').textContent = s; },
  render() {
    const s = this.screen;
    const frag = document.createDocumentFragment();
    s.lines.forEach((l, y) => {
      if (y === s.y) {
        const x = Math.min(s.x, s.cols - 1);
        frag.append(l.slice(0, x).join(''), el('span', { class: 'cur' }, l[x]), l.slice(x + 1).join('').replace(/\s+$/, ''));
      } else frag.append(l.join('').replace(/\s+$/, ''));
      if (y < s.rows - 1) frag.append('\n');
    });
    this.pre.replaceChildren(frag);
    this.pre.dataset.text = s.text();
    this.pre.dataset.raw = JSON.stringify(this.received);
  },
  async open() {
    if (this.ws) return;
    const node = st.current;
    this.screen.reset();
    this.render();
    this.dec = new TextDecoder();
    this.status('Connecting...');
    try {
      const ws = await openRelay(node, 1, { cols: this.screen.cols, rows: this.screen.rows }, (s) => this.status(s));
      if (st.current !== node) { ws.close(); return; }
      this.ws = ws;
      ws.onmessage = (m) => {
        if (typeof m.data === 'string') { const c = consoleMsg(m.data); if (c) this.status(c); return; }
        const chunk = this.dec.decode(new Uint8Array(m.data), { stream: true });
        this.received = (this.received + chunk).slice(-4096); // the test reads it
        this.screen.write(chunk);
        this.render();
      };
      ws.onclose = () => { if (this.ws === ws) { this.ws = null; this.status('Disconnected'); } };
      this.status('Connected');
      this.pre.focus();
    } catch (e) { this.status('Failed: ' + e.message); }
  },
  close() { if (this.ws) { const w = this.ws; this.ws = null; w.close(); this.status('Disconnected'); } },
  key(e) {
    if (!this.ws) return;
    const seq = { Enter: '\r', Backspace: '\x7f', Tab: '\t', Escape: '\x1b', ArrowUp: '\x1b[A', ArrowDown: '\x1b[B', ArrowRight: '\x1b[C', ArrowLeft: '\x1b[D',
      Home: '\x1b[H', End: '\x1b[F', Delete: '\x1b[3~', PageUp: '\x1b[5~', PageDown: '\x1b[6~' }[e.key];
    let s = seq;
    if (!s && e.ctrlKey && e.key.length === 1) {
      const c = e.key.toUpperCase().charCodeAt(0);
      if (c >= 64 && c < 96) s = String.fromCharCode(c - 64);
    } else if (!s && e.key.length === 1 && !e.metaKey) s = e.key;
    if (!s) return;
    e.preventDefault();
    this.ws.send(new TextEncoder().encode(s));
  },
};
term.pre.addEventListener('keydown', (e) => term.key(e));
term.pre.addEventListener('paste', (e) => { if (term.ws) { e.preventDefault(); term.ws.send(new TextEncoder().encode(e.clipboardData.getData('text'))); } });
$('#termconnect').addEventListener('click', () => term.open());
$('#termdisconnect').addEventListener('click', () => term.close());

// ---- files (relay protocol 5) ----------------------------------------------------------
const files = {
  ws: null, path: '', reqid: 0, handlers: new Map(), download: null,
  status(s) { $('#filesstatus').textContent = s; },
  async open() {
    if (this.ws) return;
    const node = st.current;
    this.status('Connecting...');
    try {
      const ws = await openRelay(node, 5, null, (s) => this.status(s));
      if (st.current !== node) { ws.close(); return; }
      this.ws = ws;
      this.ch = ws;
      ws.onmessage = (m) => this.recv(m.data);
      ws.onclose = () => { if (this.ws === ws) { this.ws = null; this.ch = null; this.status('Disconnected'); } };
      this.status('Connected');
      this.ls($('#filepath').value || '');
    } catch (e) { this.status('Failed: ' + e.message); }
  },
  close() { if (this.ws) { const w = this.ws; this.ws = null; this.ch = null; w.close(); this.status('Disconnected'); } },
  send(o) { this.ws.send(JSON.stringify(o)); },
  recv(data) {
    let j = null;
    if (typeof data === 'string') { try { j = JSON.parse(data); } catch (e) { return; } }
    else {
      const b = new Uint8Array(data);
      if (b.length && b[0] === 123) { try { j = JSON.parse(new TextDecoder().decode(b)); } catch (e) { j = null; } }
      if (!j) { this.block(b); return; }
    }
    if (j.ctrlChannel) { const c = consoleMsg(JSON.stringify(j)); if (c) this.status(c); return; }
    if (j.action === 'download') { this.dlctl(j); return; }
    const key = j.reqid != null ? String(j.reqid) : (j.action === 'uploadack' || j.action === 'uploadstart' || j.action === 'uploaddone' || j.action === 'uploaderror' ? 'up' : '');
    const h = this.handlers.get(key) || (j.path !== undefined && j.dir !== undefined ? this.handlers.get('ls') : null) || this.handlers.get('up');
    if (h) h(j);
  },
  ls(path) {
    const id = ++this.reqid;
    this.handlers.set(String(id), (j) => { this.handlers.delete(String(id)); this.show(j); });
    this.send({ action: 'ls', reqid: id, path });
  },
  show(j) {
    this.path = j.path || '';
    $('#filepath').value = this.path;
    const body = $('#filelist').tBodies[0];
    body.replaceChildren();
    const items = (j.dir || []).slice().sort((a, b) => ((a.t === 3) - (b.t === 3)) || String(a.n).localeCompare(String(b.n)));
    for (const f of items) {
      const isDir = f.t !== 3;
      const name = el('td', { class: isDir ? 'dir name' : 'name' }, f.n);
      if (isDir) name.addEventListener('click', () => this.ls(this.join(f.n)));
      const acts = el('td', {});
      if (!isDir) acts.append(el('button', { type: 'button', class: 'dl', onclick: () => this.get(f.n, f.s) }, 'Download'), ' ');
      if (f.t === 2 || f.t === 3) {
        acts.append(el('button', { type: 'button', class: 'ren', onclick: () => { const nn = prompt('New name', f.n); if (nn && nn !== f.n) this.op({ action: 'rename', path: this.path, oldname: f.n, newname: nn }); } }, 'Rename'), ' ',
          el('button', { type: 'button', class: 'del', onclick: () => { if (confirm('Delete ' + f.n + '?')) this.op({ action: 'rm', path: this.path, delfiles: [f.n], rec: isDir }); } }, 'Delete'));
      }
      body.append(el('tr', { 'data-name': f.n }, name, el('td', { class: 'size' }, isDir ? '' : fmtSize(f.s)), el('td', {}, f.d ? String(f.d) : ''), acts));
    }
    this.status('Connected: ' + (this.path || '/'));
  },
  join(n) {
    if (!this.path) return n;
    const sep = this.path.includes('\\') || /^[A-Za-z]:$/.test(this.path) ? '\\' : '/';
    return this.path.endsWith(sep) ? this.path + n : this.path + sep + n;
  },
  op(o) { o.reqid = ++this.reqid; this.send(o); setTimeout(() => this.ls(this.path), 300); },
  async upload(list) {
    for (const file of list) {
      const prog = $('#upprog');
      prog.hidden = false; prog.max = file.size || 1; prog.value = 0;
      this.status('Uploading ' + file.name);
      const reqid = 'up' + (++this.reqid);
      const chunk = 16384, window = 8;
      let sent = 0, acked = 0, inflight = 0;
      await new Promise((resolve, reject) => {
        // One pump at a time: acks arriving while a chunk is being read
        // only lower inflight, and the running loop sends the next ones
        // in order.
        let pumping = false;
        const pump = async () => {
          if (pumping) return;
          pumping = true;
          try {
            while (inflight < window && sent < file.size) {
              const n = Math.min(chunk, file.size - sent);
              const data = new Uint8Array(await file.slice(sent, sent + n).arrayBuffer());
              let out = data;
              // A chunk starting with 0 or '{' gets a 0 escape byte.
              if (data[0] === 0 || data[0] === 123) { out = new Uint8Array(n + 1); out.set(data, 1); }
              sent += n; inflight++;
              this.ws.send(out);
            }
          } finally { pumping = false; }
        };
        this.handlers.set('up', (j) => {
          if (j.action === 'uploadstart') pump().catch(reject);
          else if (j.action === 'uploadack') {
            inflight--; acked = Math.min(sent, acked + chunk); prog.value = acked; prog.dataset.value = String(acked);
            if (acked >= file.size && inflight <= 0) this.send({ action: 'uploaddone', reqid });
            else pump().catch(reject);
          } else if (j.action === 'uploaddone') resolve();
          else if (j.action === 'uploaderror') reject(new Error('the device refused the upload'));
        });
        this.send({ action: 'upload', reqid, path: this.path, name: file.name, size: file.size });
        if (file.size === 0) { /* uploadstart then uploaddone */ }
      }).then(() => { this.status('Uploaded ' + file.name); prog.dataset.done = file.name; }, (e) => this.status('Upload failed: ' + e.message));
      this.handlers.delete('up');
    }
    this.ls(this.path);
  },
  get(name) {
    const id = this.join(name);
    this.download = { id, name, parts: [], size: 0 };
    this.status('Downloading ' + name);
    this.send({ action: 'download', sub: 'start', id, path: id });
  },
  dlctl(j) {
    const d = this.download;
    if (!d || j.id !== d.id) return;
    if (j.sub === 'start') this.send({ action: 'download', sub: 'startack', id: d.id, ack: 1 });
    else if (j.sub === 'cancel') { this.download = null; this.status('Cannot download ' + d.name); }
  },
  block(b) {
    const d = this.download;
    if (!d || b.length < 4) return;
    d.parts.push(b.slice(4));
    d.size += b.length - 4;
    this.status('Downloading ' + d.name + ': ' + fmtSize(d.size));
    const last = new DataView(b.buffer, b.byteOffset, 4).getUint32(0) & 1;
    if (!last) { this.send({ action: 'download', sub: 'ack', id: d.id }); return; }
    this.download = null;
    const url = URL.createObjectURL(new Blob(d.parts));
    const a = el('a', { href: url, download: d.name });
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    this.status('Downloaded ' + d.name);
  },
};
$('#filesconnect').addEventListener('click', () => files.open());
$('#filesgo').addEventListener('click', () => files.ls($('#filepath').value));
$('#filesup').addEventListener('click', () => {
  const p = files.path.replace(/[\\/]+$/, '');
  const i = Math.max(p.lastIndexOf('/'), p.lastIndexOf('\\'));
  files.ls(i > 0 ? p.slice(0, i) : (p.startsWith('/') ? '/' : ''));
});
$('#mkdir').addEventListener('click', () => { const n = prompt('Folder name'); if (n) files.op({ action: 'mkdir', path: files.join(n) }); });
$('#upload').addEventListener('change', (e) => { const l = Array.from(e.target.files); e.target.value = ''; files.upload(l); });

// ---- start -----------------------------------------------------------------------
function applyHide() {
  // MeshCentral's hide bits (views/default.handlebars): 1 the masthead
  // (our header), 2 the top bar (main menu and the device's tabs), 4 the
  // footer, 8 the page titles (device name and back button), 16 the main
  // menu (left bar and menu), 32 the back buttons. The desktop's own
  // toolbar stays, as on MeshCentral.
  if (!embed.hide) return;
  document.body.classList.add('embed');
  if (embed.hide & 1) $('#top').hidden = true;
  if (embed.hide & 2) { $('#nav').hidden = true; $('#devtabs').hidden = true; }
  if (embed.hide & 4) $('#foot').hidden = true;
  if (embed.hide & 8) $('#devtitle').hidden = true;
  if (embed.hide & 16) $('#nav').hidden = true;
  if (embed.hide & 32) $('#back').hidden = true;
}

async function start() {
  applyHide();
  const u = params.get('user'), p = params.get('pass');
  if (u && p) {
    // Login-token URL: sign in, then take the credentials out of the
    // address bar and the history.
    params.delete('user'); params.delete('pass');
    history.replaceState(null, '', location.pathname + (params.toString() ? '?' + params : ''));
    let ok = false;
    try { ok = (await formLogin(u, p)) === 'ok'; } catch (e) { ok = false; }
    if (!ok) { showLogin('This login link is not valid.'); return; }
  }
  connect();
}
start();
