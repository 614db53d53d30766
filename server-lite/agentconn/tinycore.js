// server-lite built-in core: what server-lite pushes to agents that ask for a
// core when no --core file is given. It is deliberately tiny: it proves the
// push path end to end (the C agent runs it in Duktape with MeshCentral's
// module system) and answers a few JSON commands so tests and admins can see
// a round trip. Replace it with a full core through server-lite --core.
var mesh = require('MeshAgent');
function send(o) { try { mesh.SendCommand(o); } catch (e) { } }
function coreinfo() {
    var o = { action: 'coreinfo', value: 'server-lite tiny core v1', caps: 0 };
    try { o.osdesc = process.platform + ' ' + process.arch; } catch (e) { }
    send(o);
}
mesh.AddCommandHandler(function (data) {
    if (typeof data != 'object' || data == null) { return; }
    switch (data.action) {
        case 'ping': send({ action: 'pong' }); break;
        case 'coreinfo': coreinfo(); break;
        case 'echo': send({ action: 'echo', value: data.value, sessionid: data.sessionid }); break;
        case 'msg':
            if (data.type == 'console') {
                send({ action: 'msg', type: 'console', value: 'server-lite tiny core: ' + data.value, sessionid: data.sessionid });
            }
            break;
    }
});
mesh.AddConnectHandler(function (state) { if (state == 1) { coreinfo(); } });
coreinfo();
