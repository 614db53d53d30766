// meshgo default core (API 1.x, see scripts/README.md).
// Answers the MeshCentral control-channel JSON messages (control.md 6) and
// the agent console (sessions.md 6) with native modules doing the work.
'use strict';
var mesh = require('mesh');
var sysinfo = require('sysinfo');
var proc = require('process');

var CORE_VERSION = 'meshgo ' + (mesh.info.agentVersion || 'dev');
var CAPS = mesh.info.caps || 14; // terminal, files, console (+1 when desktop works), at start
// STATE_POLL: how often the logged-in and locked users and the capabilities (a
// desktop that appeared after the agent started) are checked; coreinfo
// goes out only when they changed.
var STATE_POLL = 10 * 1000;
var FULL_ADMIN = 0xFFFFFFFF;
var RIGHT_UNINSTALL = 0x8000; // MESHRIGHT_UNINSTALL
var TYPE_DEFAULT = 4096, TYPE_MAX = 65536; // console `type` byte limits
var LOG_MAX = 4095; // MeshCentral drops event log messages of 4096 characters or more
var serverInfo = null;
var lastCoreInfo = '', lastNetInfo = '';
var runBusy = false;
var ipLocCache = null; // {net, value}: the last iplocation answer and the netinfo it was for

function send(o) { return mesh.send(o); }
function errText(e) { return (e && e.message) ? e.message : String(e); }

// ---- periodic state reports -------------------------------------------

function currentCaps() { return mesh.caps ? mesh.caps() : CAPS; }

function sendCoreInfo(force) {
    return sysinfo.coreInfo().then(function (ci) {
        var o = { action: 'coreinfo', value: CORE_VERSION, caps: currentCaps(), osdesc: ci.osdesc, root: ci.root, users: ci.users, lusers: ci.lusers };
        if (ci.lastbootuptime) { o.lastbootuptime = ci.lastbootuptime; }
        var s = JSON.stringify(o);
        if (force || s !== lastCoreInfo) { lastCoreInfo = s; send(o); }
    }, function (e) { console.error('coreinfo: ' + errText(e)); });
}

function sendNetInfo(force) {
    return sysinfo.netInfo().then(function (n) {
        var o = { action: 'netinfo', netif2: n };
        var s = JSON.stringify(o);
        if (force || s !== lastNetInfo) { lastNetInfo = s; send(o); }
    }, function (e) { console.error('netinfo: ' + errText(e)); });
}

// sysinfo.watch polls natively and calls back after its first reading and
// then only when the state changed, so an idle agent runs no JS between
// changes (the interpreter's code stays out of memory).
sysinfo.watch('coreinfo', STATE_POLL, function () { sendCoreInfo(false); });
sysinfo.watch('netinfo', 60 * 1000, function () { sendNetInfo(false); });
sendCoreInfo(true);
sendNetInfo(true);

// ---- helpers -----------------------------------------------------------

// reply sends a msg of the given type back to the requesting session.
function reply(m, type, fields) {
    var o = { action: 'msg', type: type };
    for (var k in fields) { o[k] = fields[k]; }
    if (m.sessionid) { o.sessionid = m.sessionid; }
    return send(o);
}

// serverLog records a user action in the device's event log; false when
// not connected.
function serverLog(m, text) {
    var o = { action: 'log', msg: text };
    if (m.userid) { o.userid = m.userid; }
    if (m.username) { o.username = m.username; }
    if (m.sessionid) { o.sessionid = m.sessionid; }
    if (m.remoteaddr) { o.remoteaddr = m.remoteaddr; }
    return send(o);
}

function consoleOut(sessionid, text) {
    var o = { action: 'msg', type: 'console', value: text };
    if (sessionid) { o.sessionid = sessionid; }
    send(o);
}

// ---- server messages ----------------------------------------------------

var handlers = {
    sysinfo: function (m) {
        sysinfo.sysInfo().then(function (d) {
            if (d.hash !== m.hash) { send({ action: 'sysinfo', data: d }); }
        }, function (e) { console.error('sysinfo: ' + errText(e)); });
    },
    ping: function () { send({ action: 'pong' }); },
    pong: function () { },
    // The server sends serverInfo on every (re)connection once the core is
    // current: announce ourselves in full, the server may have forgotten.
    serverInfo: function (m) { serverInfo = m; sendCoreInfo(true); sendNetInfo(true); },
    runcommands: function (m) { runCommands(m); },
    poweraction: function (m) { powerAction(m); },
    wakeonlan: function (m) {
        if (!Array.isArray(m.macs)) { return; }
        require('net').wakeOnLan(m.macs).then(function (n) { console.log('wake-on-lan: ' + n + ' packets'); },
            function (e) { console.error('wake-on-lan: ' + errText(e)); });
    },
    // The server asks (its domain has iplocation on) when it has no
    // location for this device; the answer is cached while the network
    // interfaces stay the same, as meshcore.js does.
    iplocation: function () {
        if (ipLocCache && ipLocCache.net === lastNetInfo) { send({ action: 'iplocation', type: 'publicip', value: ipLocCache.value }); return; }
        sysinfo.ipLocation(mesh.settings.ipLocationUrl || '').then(function (loc) {
            ipLocCache = { net: lastNetInfo, value: loc };
            send({ action: 'iplocation', type: 'publicip', value: loc });
        }, function (e) { console.log('iplocation: ' + errText(e)); });
    },
    toast: function (m) { showToast(m, m.title, m.msg); },
    // The web UI's "uninstall agent" (meshuser.js checks MESHRIGHT_UNINSTALL
    // before sending it).
    uninstallagent: function (m) {
        uninstallAgent(m).then(null, function (e) { console.error('uninstallagent: ' + errText(e)); });
    },
    openUrl: function (m) { openUrl(m, false); },
    msg: function (m) {
        var h = msgHandlers[m.type];
        if (h) { h(m); } else { console.log('unhandled msg type ' + m.type); }
    }
};

var msgHandlers = {
    console: function (m) {
        // The agent, not the server, enforces console rights (sessions.md 6).
        if (!m.sessionid || typeof m.rights !== 'number' || !(m.rights & 8) || !(m.rights & 16)) { return; }
        runConsole(m);
    },
    ps: function (m) {
        proc.list().then(function (list) {
            var o = {};
            for (var i = 0; i < list.length; i++) { o[list[i].pid] = list[i]; }
            reply(m, 'ps', { value: JSON.stringify(o) });
        }, function (e) { console.error('ps: ' + errText(e)); });
    },
    // Process Details dialog: meshcore.js answers {} when it knows
    // nothing (the dialog says "No information provided"); so do we, with
    // the reason beside it.
    psinfo: function (m) {
        var pid = parseInt(String(m.pid), 10);
        if (!(pid > 0)) { return; }
        proc.info(pid).then(function (v) { reply(m, 'psinfo', { pid: m.pid, value: v }); },
            function (e) { reply(m, 'psinfo', { pid: m.pid, value: {}, error: errText(e) }); });
    },
    pskill: function (m) {
        var pid = parseInt(String(m.value), 10);
        if (!(pid > 0)) { return; }
        serverLog(m, 'Killing process ' + pid);
        proc.kill(pid).then(null, function (e) { console.error('pskill: ' + errText(e)); });
    },
    // The device page shows its Services tab only once this is answered:
    // without a service manager the answer is an empty list, as the C
    // agent's, with the reason.
    services: function (m) {
        require('services').list().then(function (l) { reply(m, 'services', { value: JSON.stringify(l) }); },
            function (e) { console.error('services: ' + errText(e)); reply(m, 'services', { value: '[]', error: errText(e) }); });
    },
    service: function (m) {
        if (typeof m.serviceName !== 'string') { return; }
        require('services').details(m.serviceName).then(function (d) { reply(m, 'service', { value: JSON.stringify(d) }); },
            function (e) { reply(m, 'service', { error: errText(e) }); });
    },
    serviceStart: function (m) { serviceControl(m, 'start'); },
    serviceStop: function (m) { serviceControl(m, 'stop'); },
    serviceRestart: function (m) { serviceControl(m, 'restart'); },
    // Clipboard: always a reply, with the error when there is no
    // clipboard to reach (meshcore.js stays silent, and the dialog waits).
    getclip: function (m) {
        require('clipboard').get().then(function (t) {
            serverLog(m, 'Getting clipboard content, ' + t.length + ' byte(s)');
            reply(m, 'getclip', { data: t, tag: m.tag });
        }, function (e) {
            console.log('getclip: ' + errText(e));
            reply(m, 'getclip', { data: '', tag: m.tag, error: errText(e) });
        });
    },
    setclip: function (m) {
        if (typeof m.data !== 'string') { reply(m, 'setclip', { success: false, error: 'no clipboard data' }); return; }
        require('clipboard').set(m.data).then(function () {
            serverLog(m, 'Setting clipboard content, ' + m.data.length + ' byte(s)');
            reply(m, 'setclip', { success: true });
        }, function (e) { console.log('setclip: ' + errText(e)); reply(m, 'setclip', { success: false, error: errText(e) }); });
    },
    // The web UI asks before opening a Windows desktop and waits for this
    // answer; on failure it still gets one (no sessions: a plain connect).
    userSessions: function (m) {
        require('sessions').list().then(function (d) { reply(m, 'userSessions', { data: d, tag: m.tag }); },
            function (e) { console.log('userSessions: ' + errText(e)); reply(m, 'userSessions', { data: {}, tag: m.tag }); });
    },
    cpuinfo: function (m) {
        sysinfo.cpuInfo().then(function (c) {
            reply(m, 'cpuinfo', { cpu: c.cpu, memory: c.memory, thermals: c.thermals, tag: m.tag });
        }, function () { });
    },
    openUrl: function (m) { openUrl(m, true); },
    // Toolbar "toggle background": data "" once removed, the picture once
    // restored; on failure no reply (the button keeps its state), as the
    // C agent.
    deskBackground: function (m) {
        require('ui').toggleBackground().then(function (d) { reply(m, 'deskBackground', { data: d }); },
            function (e) { console.log('deskBackground: ' + errText(e)); });
    },
    messagebox: function (m) { showToast(m, m.title, m.msg); },
    alertbox: function (m) { showToast(m, m.title, m.msg); }
};

var SERVICE_DONE = { start: 'Started', stop: 'Stopped', restart: 'Restarted' };

// serviceControl starts, stops or restarts a service and logs what
// happened once the service manager has answered.
function serviceControl(m, action) {
    if (typeof m.serviceName !== 'string') { return; }
    require('services').control(m.serviceName, action).then(function () {
        serverLog(m, SERVICE_DONE[action] + ' service ' + m.serviceName);
    }, function (e) {
        serverLog(m, 'Service ' + action + ' of ' + m.serviceName + ' not done: ' + errText(e));
        console.error(errText(e));
    });
}

// ownServiceName is the agent's own service: the one it runs as, else
// the name the installer gives it.
function ownServiceName() {
    return mesh.info.serviceName || mesh.settings.meshServiceName || (proc.platform === 'windows' ? 'Mesh Agent' : 'meshagent');
}

// uninstallAgent starts the removal of the agent's own service, which
// stops this agent on the way; only the service instance may (meshcore.js
// refuses otherwise too). The event log gets it once started.
function uninstallAgent(m) {
    if (!mesh.info.serviceName) { return Promise.reject(new Error('this instance is not the service instance')); }
    return require('services').uninstallSelf().then(function () {
        serverLog(m, 'Uninstalling the agent service ' + mesh.info.serviceName);
    });
}

// openUrl opens m.url in the logged-in user's session and answers as
// meshcore.js does ({action:'openUrl', success} or msg/openUrl), with the
// reason when it could not; only an opened URL goes to the event log.
function openUrl(m, asMsg) {
    if (typeof m.url !== 'string') { return; }
    var answer = function (ok, why) {
        var o = { url: m.url, success: ok };
        if (why) { o.error = why; }
        if (asMsg) { reply(m, 'openUrl', o); return; }
        o.action = 'openUrl';
        if (m.sessionid) { o.sessionid = m.sessionid; }
        send(o);
    };
    require('ui').openUrl(m.url).then(function () { serverLog(m, 'Opening: ' + m.url); answer(true); },
        function (e) { console.log('openUrl: ' + errText(e)); answer(false, errText(e)); });
}

function showToast(m, title, text) {
    require('ui').toast(String(title || 'MeshCentral'), String(text || '')).then(function (shown) {
        if (!shown) { console.log('notification (no UI available): ' + title + ': ' + text); }
    });
}

// POWER_ACTIONS names the poweraction actiontypes an agent carries out.
var POWER_ACTIONS = { 2: 'power off', 3: 'reset', 4: 'sleep' };

// doPower performs power action n and resolves with the event-log text
// of what was done; it rejects, having done nothing, with the reason.
function doPower(n) {
    var name = POWER_ACTIONS[n];
    if (!name) { return Promise.reject(new Error('power action ' + n + ' is not supported by this agent')); }
    var power = require('power');
    if (!power.enabled) { return Promise.reject(new Error('power actions are disabled in this agent')); }
    return power.action(n).then(function () { return 'Performing power action ' + n + ' (' + name + ')'; });
}

// powerAction logs to the device's event log only what happened: the
// action once the operating system accepted it, or why nothing was done.
function powerAction(m) {
    var n = parseInt(m.actiontype, 10);
    doPower(n).then(function (text) { serverLog(m, text); }, function (e) {
        serverLog(m, 'Power action ' + n + ' not done: ' + errText(e));
        console.error('power action ' + n + ': ' + errText(e));
    });
}

// runCommands runs m.cmds through the shell of m.type. runAsUser 0 runs as
// the agent; 1 as the logged-in console user when there is one, else as
// the agent; 2 only as that user.
function runCommands(m) {
    var out = function (text) {
        if (m.reply) { send({ action: 'msg', type: 'runcommands', result: text, sessionid: m.sessionid, responseid: m.responseid }); }
        else { consoleOut(m.sessionid, text); }
    };
    if (typeof m.cmds !== 'string') { return; }
    if (runBusy) { out('Run commands can\'t execute, already busy.'); return; }
    var type = (m.type === 1 || m.type === 2) ? m.type : 3;
    var shell = (type === 3) ? 'sh' : (type === 2 ? 'powershell' : 'cmd');
    var asUser = (m.runAsUser === 1 || m.runAsUser === 2) ? m.runAsUser : 0;
    runBusy = true;
    var start = function (user) {
        var opts = { type: shell, timeout: 10 * 60 * 1000 };
        if (user) { opts.user = user; }
        var p;
        try { p = proc.shell(m.cmds, opts); }
        catch (e) {
            if (user && asUser === 1) {
                console.log('runcommands: cannot run as ' + user + ' (' + errText(e) + '), running as the agent');
                start(null);
                return;
            }
            runBusy = false; out((user ? 'Run commands can\'t execute: ' : 'Run commands failed: ') + errText(e)); return;
        }
        serverLog(m, user ? ('Running commands as user ' + user) : 'Running commands as the agent');
        p.then(function (r) {
            runBusy = false;
            out(r.stdout + r.stderr + (r.timedOut ? '\n(timed out)' : ''));
        }, function (e) { runBusy = false; out('Run commands failed: ' + errText(e)); });
    };
    if (asUser === 0) { start(null); return; }
    proc.consoleUser().then(function (u) { return { user: u ? u.name : null }; },
        function (e) { return { user: null, why: errText(e) }; }).then(function (r) {
        if (r.user) { start(r.user); return; }
        if (asUser === 1) { start(null); return; }
        runBusy = false;
        out('Run commands can\'t execute: ' + (r.why || 'no user is logged in') + '.');
    });
}

// ---- console ------------------------------------------------------------

// splitArgs splits a command line on whitespace; double quotes group words.
function splitArgs(s) {
    var out = [], cur = '', inq = false, has = false;
    for (var i = 0; i < s.length; i++) {
        var c = s[i];
        if (c === '"') { inq = !inq; has = true; continue; }
        if (!inq && (c === ' ' || c === '\t' || c === '\r' || c === '\n')) {
            if (has) { out.push(cur); cur = ''; has = false; }
            continue;
        }
        cur += c; has = true;
    }
    if (has) { out.push(cur); }
    return out;
}

// parseArgs: {_: [positional], name: value|true} for --name value.
function parseArgs(words) {
    var r = { _: [] };
    for (var i = 0; i < words.length; i++) {
        var w = words[i], v;
        if (w.length > 2 && w.substring(0, 2) === '--') {
            var name = w.substring(2);
            if (i + 1 < words.length && words[i + 1].substring(0, 2) !== '--') { v = words[++i]; } else { v = true; }
            r[name] = num(v);
        } else { r._.push(num(w)); }
    }
    return r;
}

// commandText is the console line after the command word, as typed; one
// pair of quotes around all of it is removed.
function commandText(m) {
    var t = String(m.value || '').replace(/^\s*\S+\s*/, '').replace(/\s+$/, '');
    if (t.length > 1 && t[0] === '"' && t.indexOf('"', 1) === t.length - 1) { t = t.substring(1, t.length - 1); }
    return t;
}

// fmtAge renders milliseconds as "1d 2h 3m 4s", leaving out leading zeros.
function fmtAge(ms) {
    var s = Math.floor(ms / 1000), d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), mi = Math.floor((s % 3600) / 60);
    var out = [];
    if (d) { out.push(d + 'd'); }
    if (d || h) { out.push(h + 'h'); }
    if (d || h || mi) { out.push(mi + 'm'); }
    out.push((s % 60) + 's');
    return out.join(' ');
}

function num(v) { return (typeof v === 'string' && v !== '' && !isNaN(v) && String(Number(v)) === v) ? Number(v) : v; }

var consoleCommands = {
    help: { help: 'help [command]: list the commands, or describe one', run: function (args) {
        if (args._.length > 0) {
            var name = String(args._[0]).toLowerCase();
            if (!consoleCommands.hasOwnProperty(name)) { return 'Unknown command "' + name + '".'; }
            return name + ': ' + consoleCommands[name].help;
        }
        return 'Available commands: \r\n' + Object.keys(consoleCommands).sort().join(', ') + '.';
    } },
    info: { help: 'Core and agent information', run: function (args, m) {
        var i = mesh.info;
        return 'Current Core: ' + CORE_VERSION + '\r\nAgent Time: ' + new Date().toString() +
            '\r\nUser Rights: 0x' + (m.rights >>> 0).toString(16) + '\r\nPlatform: ' + proc.platform + ' ' + proc.arch +
            '\r\nCapabilities: ' + currentCaps() + '\r\nServer URL: ' + i.serverUrl + '\r\nNode ID: ' + i.nodeid +
            '\r\nAgent ID: ' + i.agentId + '\r\nScript API: ' + mesh.version;
    } },
    versions: { help: 'Version numbers', run: function () {
        return JSON.stringify({ core: CORE_VERSION, agent: mesh.info.agentVersion, api: mesh.version }, null, 2);
    } },
    osinfo: { help: 'Operating system description', run: function () {
        return sysinfo.coreInfo().then(function (c) { return c.osdesc; });
    } },
    coreinfo: { help: 'The last coreinfo sent to the server', run: function () { return lastCoreInfo; } },
    sysinfo: { help: 'System information (JSON)', run: function () {
        return sysinfo.sysInfo().then(function (d) { return JSON.stringify(d, null, 1); });
    } },
    netinfo: { help: 'Network interfaces (JSON)', run: function () {
        return sysinfo.netInfo().then(function (n) { return JSON.stringify(n, null, 1); });
    } },
    cpuinfo: { help: 'CPU and memory use (JSON)', run: function () {
        return sysinfo.cpuInfo().then(function (c) { return JSON.stringify(c, null, 1); });
    } },
    users: { help: 'Logged-in users', run: function () {
        return sysinfo.coreInfo().then(function (c) { return c.users.length ? c.users.join(', ') : 'No users logged in.'; });
    } },
    ps: { help: 'List processes', run: function () {
        return proc.list().then(function (l) {
            var lines = [];
            for (var i = 0; i < l.length; i++) { lines.push(l[i].pid + ', ' + l[i].cmd + (l[i].user ? ' (' + l[i].user + ')' : '')); }
            return lines.join('\r\n');
        });
    } },
    kill: { help: 'kill <pid>', run: function (args, m) {
        var pid = args._[0];
        if (typeof pid !== 'number') { return 'Proper usage: kill [pid]'; }
        serverLog(m, 'Killing process ' + pid);
        return proc.kill(pid).then(function () { return 'Killed process ' + pid + '.'; });
    } },
    ls: { help: 'ls [path]: list a folder', run: function (args) {
        var p = (args._.length > 0) ? String(args._[0]) : (mesh.info.dataDir || '.');
        return require('fs').readdir(p).then(function (l) {
            var lines = [];
            for (var i = 0; i < l.length; i++) { lines.push(l[i].name + (l[i].dir ? ' (Folder)' : ' (File, ' + l[i].size + ' bytes)')); }
            return lines.length ? lines.join('\r\n') : 'Empty folder.';
        });
    } },
    msh: { help: 'msh [get <key>|set <key> "<value>"|delete <key>]: show or change the .msh settings (changes: full administrators only; read at the next start)', run: function (args, m) {
        var usage = 'Proper usage: msh [get|set|delete]\r\nmsh get MeshServer\r\nmsh set abc "xyz"\r\nmsh delete abc';
        var a = args._;
        if (a.length === 0) { return JSON.stringify(mesh.settings, null, 2); }
        if (a.length > 3) { return usage; }
        var op = String(a[0]).toLowerCase(), key = (a.length > 1) ? String(a[1]) : '';
        if (op === 'get') {
            if (a.length !== 2) { return 'Proper usage: msh get MeshServer'; }
            return mesh.settings.hasOwnProperty(key) ? String(mesh.settings[key]) : 'Unknown Value: ' + key;
        }
        if (op !== 'set' && op !== 'delete') { return usage; }
        if (op === 'set' && a.length !== 3) { return 'Proper usage: msh set abc "xyz"'; }
        if (op === 'delete' && a.length !== 2) { return 'Proper usage: msh delete abc'; }
        if ((m.rights >>> 0) !== FULL_ADMIN) { return 'Access denied: msh ' + op + ' requires full administrator rights.'; }
        var value = (op === 'set') ? String(a[2]) : '';
        var p = (op === 'set') ? mesh.setSetting(key, value) : mesh.deleteSetting(key);
        return p.then(function () {
            if (op === 'set') { mesh.settings[key] = value; } else { delete mesh.settings[key]; }
            serverLog(m, 'Agent setting ' + key + (op === 'set' ? ' set' : ' deleted') + ' in the .msh file');
            return 'msh ' + op + ' ' + key + ' successful';
        }, function (e) { return 'msh ' + op + ' ' + key + ' unsuccessful: ' + errText(e); });
    } },
    uninstallagent: { help: 'Uninstall this agent\'s service (the settings and identity stay; needs the uninstall right)', run: function (args, m) {
        if ((m.rights >>> 0) !== FULL_ADMIN && !(m.rights & RIGHT_UNINSTALL)) { return 'Access denied: uninstallagent requires the uninstall right.'; }
        return uninstallAgent(m).then(function () { return 'Uninstalling the agent service ' + ownServiceName() + '.'; },
            function (e) { return 'Uninstall failed: ' + errText(e); });
    } },
    args: { help: 'Show how the arguments are parsed', run: function (args) { return JSON.stringify(args); } },
    eval: { help: 'eval "<js>": evaluate JavaScript (full administrators only)', run: function (args, m) {
        if ((m.rights >>> 0) !== FULL_ADMIN) { return 'Access denied: eval requires full administrator rights.'; }
        var code = m.value.replace(/^\s*\S+\s*/, '');
        if (code.length > 1 && code[0] === '"' && code[code.length - 1] === '"') { code = code.substring(1, code.length - 1); }
        serverLog(m, 'Console eval');
        var r = (0, eval)(code); // indirect eval: global scope
        if (r && typeof r.then === 'function') { return r.then(function (x) { return JSON.stringify(x); }); }
        return JSON.stringify(r);
    } },
    notify: { help: 'notify "<msg>": send a notification to the server', run: function (args) {
        send({ action: 'msg', type: 'notify', value: args._.join(' '), tag: 'console' });
        return 'ok';
    } },
    toast: { help: 'toast "<msg>": show a notification on this device', run: function (args, m) {
        return require('ui').toast('MeshCentral', args._.join(' ')).then(function (s) { return s ? 'ok' : 'No user interface available.'; });
    } },
    getclip: { help: 'Show the clipboard', run: function () { return require('clipboard').get(); } },
    setclip: { help: 'setclip "<text>"', run: function (args) {
        return require('clipboard').set(args._.join(' ')).then(function () { return 'ok'; });
    } },
    wakeonlan: { help: 'wakeonlan <mac>', run: function (args) {
        if (args._.length < 1) { return 'Proper usage: wakeonlan [mac]'; }
        return require('net').wakeOnLan([String(args._[0])]).then(function (n) { return 'Sent ' + n + ' magic packets.'; });
    } },
    power: { help: 'power <action>: 2 off, 3 reset, 4 sleep', run: function (args, m) {
        var n = args._[0];
        if (typeof n !== 'number') { return 'Proper usage: power [action]'; }
        return doPower(n).then(function (text) { serverLog(m, text); return text + '.'; }, function (e) {
            serverLog(m, 'Power action ' + n + ' not done: ' + errText(e));
            return 'Power action ' + n + ' not done: ' + errText(e) + '.';
        });
    } },
    service: { help: 'service status|restart: the agent\'s own service; service list; service status|start|stop|restart <name>', run: function (args, m) {
        var svc = require('services'), op = String(args._[0] || 'list').toLowerCase();
        var usage = 'Proper usage: service status|restart, or service [list|status|start|stop|restart] [name]';
        if (op === 'list') {
            return svc.list().then(function (l) {
                var lines = [];
                for (var i = 0; i < l.length; i++) { lines.push(l[i].name + ': ' + l[i].status.state); }
                return lines.join('\r\n');
            });
        }
        if (args._.length === 1) {
            var own = ownServiceName();
            if (op === 'status') {
                if (mesh.info.serviceName) { return 'Service [SELF]'; }
                return svc.details(own).then(function (d) {
                    return 'Service ' + (d.status && d.status.state === 'RUNNING' ? '[RUNNING]' : '[NOT RUNNING]');
                }, function (e) { return 'Service [NOT RUNNING]: ' + errText(e); });
            }
            if (op === 'restart') {
                if (!mesh.info.serviceName) { return 'Restarting another agent instance is not allowed'; }
                return svc.restartSelf(own).then(function () {
                    serverLog(m, 'Restarting the agent service ' + own);
                    return 'Restarting service ' + own + '.';
                });
            }
            return usage;
        }
        if (args._.length !== 2) { return usage; }
        var name = String(args._[1]);
        if (op === 'status') {
            return svc.details(name).then(function (d) { return JSON.stringify(d, null, 1); });
        }
        if (!SERVICE_DONE[op]) { return usage; }
        return svc.control(name, op).then(function () {
            serverLog(m, SERVICE_DONE[op] + ' service ' + name);
            return SERVICE_DONE[op] + ' service ' + name + '.';
        });
    } },
    memory: { help: 'Agent memory use', run: function () { return JSON.stringify(mesh.memoryUsage()); } },
    type: { help: 'type <file> [maxlength]: show a text file, the first 4096 bytes or maxlength (at most 65536)', run: function (args) {
        var usage = 'Proper usage: type [filepath] [maxlength]';
        if (args._.length < 1) { return usage; }
        var max = TYPE_DEFAULT;
        if (args._.length > 1) {
            if (typeof args._[1] !== 'number' || !(args._[1] >= 1)) { return usage; }
            max = Math.min(Math.floor(args._[1]), TYPE_MAX);
        }
        return require('fs').readText(String(args._[0]), max).then(function (r) {
            var t = r.text;
            if (/(^|[^\r])\n/.test(t)) { t = t.replace(/\r?\n/g, '\r\n'); } // console lines end in \r\n
            if (r.truncated) { t += '\r\n... (first ' + max + ' bytes' + (r.size > 0 ? ' of ' + r.size : '') + ')'; }
            return t.length ? t : '(empty file)';
        });
    } },
    tunnels: { help: 'List the open relay sessions (terminal, desktop, files)', run: function () {
        var l = require('tunnel').list();
        if (l.length === 0) { return 'No relay sessions.'; }
        var lines = [l.length + ' relay session' + (l.length === 1 ? '' : 's') + ':'];
        for (var i = 0; i < l.length; i++) {
            var t = l[i];
            lines.push('Tunnel #' + t.id + ', ' + t.kind + ' (protocol ' + t.protocol + '), ' + (t.userid || 'unknown user') +
                (t.remoteaddr ? ' from ' + t.remoteaddr : '') + ', open ' + fmtAge(t.age));
        }
        return lines.join('\r\n');
    } },
    timerinfo: { help: 'List the core\'s pending timers (setTimeout, setInterval)', run: function () {
        var l = mesh.timers();
        if (l.length === 0) { return 'No timers.'; }
        var lines = [l.length + ' timer' + (l.length === 1 ? '' : 's') + ':'];
        for (var i = 0; i < l.length; i++) {
            var t = l[i];
            lines.push('#' + t.id + ' ' + (t.repeat ? 'setInterval every ' : 'setTimeout ') + t.interval + ' ms, next in ' +
                t.remaining + ' ms' + (t.name ? ', ' + t.name : ''));
        }
        return lines.join('\r\n');
    } },
    fdcount: { help: 'Number of open file descriptors of the agent (Linux only)', run: function () {
        var n;
        try { n = proc.fdCount(); } catch (e) { return 'fdcount: ' + errText(e) + '.'; }
        return 'Descriptor Count: ' + n;
    } },
    agentsize: { help: 'Size of the agent executable', run: function () {
        if (!proc.execPath) { return 'Agent size unknown: the executable\'s path is not known.'; }
        return require('fs').stat(proc.execPath).then(function (s) {
            return 'Agent Size: ' + s.size + ' bytes (' + Math.floor(s.size / 1024) + ' kb), ' + proc.execPath;
        });
    } },
    dnsinfo: { help: 'The DNS servers this system uses', run: function () {
        return sysinfo.sysInfo().then(function (d) {
            var dns = (d.hardware && d.hardware.network && d.hardware.network.dns) || [];
            if (dns.length > 0) { return 'DNS Servers: ' + dns.join(', '); }
            if (proc.platform === 'windows') { return 'DNS servers: not available on windows (this agent reads /etc/resolv.conf).'; }
            return 'DNS servers: none found in /etc/resolv.conf.';
        });
    } },
    log: { help: 'log "<text>": add an entry to this device\'s event log on the server', run: function (args, m) {
        var t = commandText(m);
        if (t === '') { return 'Proper usage: log "sample text"'; }
        return serverLog(m, t.substring(0, LOG_MAX)) ? 'ok' : 'Not sent: not connected to the server.';
    } },
    print: { help: 'print "<text>": write text to the agent log and echo it here', run: function (args, m) {
        var t = commandText(m);
        if (t === '') { return 'Proper usage: print "sample text"'; }
        mesh.log(t);
        return t;
    } }
};

function runConsole(m) {
    var words = splitArgs(String(m.value || ''));
    if (words.length === 0) { return; }
    var cmd = words.shift().toLowerCase();
    var c = consoleCommands.hasOwnProperty(cmd) ? consoleCommands[cmd] : null;
    if (!c) { consoleOut(m.sessionid, 'Unknown command "' + cmd + '", type "help" for list of available commands.'); return; }
    var fail = function (e) { consoleOut(m.sessionid, 'Command returned an exception error: ' + errText(e)); };
    var r;
    try { r = c.run(parseArgs(words), m); } catch (e) { fail(e); return; }
    if (r && typeof r.then === 'function') {
        r.then(function (x) { if (x !== undefined) { consoleOut(m.sessionid, String(x)); } }, fail);
    } else if (r !== undefined) {
        consoleOut(m.sessionid, String(r));
    }
}

mesh.on('message', function (m) {
    if (m === null || typeof m !== 'object' || typeof m.action !== 'string') { return; }
    var h = handlers.hasOwnProperty(m.action) ? handlers[m.action] : null;
    if (h) { h(m); }
});
