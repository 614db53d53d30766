package script

// Workload is one of the performance workloads from the "Script runtime"
// issue. Each Run is plain ES5 that can be pasted into the C agent's
// console `eval`, so both runtimes execute the same text; Run evaluates
// to a checksum so the work cannot be skipped.
type Workload struct {
	Name  string
	Setup string // run once, not timed
	Run   string // timed
}

// Workloads: fib(25); a ~2.4 KB object through JSON.stringify and
// JSON.parse 2000 times; a 100k-item string build in the push/join form.
// The `s += x` form is deliberately absent: goja copies the whole string
// on every +=, so 100k appends to a ~1 MB string take tens of seconds
// (measured 79 s, 49 GB allocated); scripts/README.md tells authors to
// use push/join.
var Workloads = []Workload{
	{Name: "fib25",
		Setup: `function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }`,
		Run:   `fib(25)`},
	{Name: "json2k_x2000",
		Setup: `var benchObj = (function () {
  var o = { action: 'sysinfo', hash: 'e967df72fc952fe36c2a943c8c2dec29a80ae7c25269f022d58e3e6ed2360b4e465200036298a82b634c0a25b5dc4d4a', data: { hardware: { identifiers: { cpu_name: 'AMD EPYC 7763 64-Core Processor', bios_mode: 'UEFI', product_uuid: '3d1219c7-c4c5-404a-aa1f-6d2a48adfda4' }, volumes: [] } } };
  for (var i = 0; i < 12; i++) { o.data.hardware.volumes.push({ mount_point: '/mnt/volume' + i, type: 'ext4', size: 264212084 + i, used: 13194332, available: 82306932.5, removable: (i % 2) == 0, label: 'Volume "' + i + '"\t' }); }
  return o; })();`,
		Run: `(function () { var n = 0, x; for (var i = 0; i < 2000; i++) { x = JSON.parse(JSON.stringify(benchObj)); n += x.data.hardware.volumes.length; } return n; })()`},
	{Name: "strjoin100k",
		Run: `(function () { var a = []; for (var i = 0; i < 100000; i++) { a.push('item' + i); } return a.join(',').length; })()`},
}
