// Escape attempts run INSIDE `gatehouse run` by tests/e2e/test_run_escape.py (Node side).
//
// Usage: node /app/attack.js ATTACK ARG...  Prints one JSON object (the outcome of every
// attempt) as its last line. An outcome is "OK" or "OK:<detail>" when the attempt succeeded,
// else the error code (ENOENT, EPERM...). System calls Node has no API for (raw sockets,
// ptrace, mount, unshare) go through /app/sys.node, a native addon such as a malicious npm
// package could ship.
'use strict';
const fs = require('fs');
const net = require('net');
const dgram = require('dgram');
const http = require('http');
const dns = require('dns');
const os = require('os');
const path = require('path');
const cp = require('child_process');

const ERRNO = {};
for (const [k, v] of Object.entries(os.constants.errno)) ERRNO[v] = k;

function t(f) {
  try {
    const r = f();
    if (r === undefined || r === null) return 'OK';
    if (Buffer.isBuffer(r)) return 'OK:' + r.toString('hex');
    return 'OK:' + (typeof r === 'string' ? r : JSON.stringify(r));
  } catch (e) {
    return e.code || (e.name + ':' + String(e.message).slice(0, 120));
  }
}

async function ta(f) {
  try {
    const r = await f();
    if (r === undefined || r === null) return 'OK';
    return 'OK:' + (typeof r === 'string' ? r : JSON.stringify(r));
  } catch (e) {
    return e.code || (e.cause && e.cause.code) || (e.name + ':' + String(e.message).slice(0, 120));
  }
}

let addon = null;
function sys(name, ...args) {
  if (!addon) addon = require('/app/sys.node');
  const r = addon.sys(name, ...args);
  return r >= 0 ? 'OK:' + r : (ERRNO[-r] || String(-r));
}

function tcp(host, port) {
  return new Promise((resolve, reject) => {
    const s = net.connect({host, port, timeout: 5000});
    s.on('connect', () => { s.end('escaped\n'); resolve(); });
    s.on('timeout', () => { s.destroy(); reject(Object.assign(new Error('timeout'), {code: 'ETIMEDOUT'})); });
    s.on('error', reject);
  });
}

function udp(host, port) {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    s.send('escaped', port, host, (err) => { s.close(); err ? reject(err) : resolve(); });
  });
}

function abstractUnix(name) {
  return new Promise((resolve, reject) => {
    const s = net.connect({path: '\0' + name});
    s.on('connect', () => { s.end('escaped\n'); resolve(); });
    s.on('error', reject);
  });
}

const PROXY = new URL(process.env.HTTP_PROXY);

// One request through the egress proxy: absolute-form (GET url) or CONNECT authority.
function viaProxy(method, target, hostHeader) {
  return new Promise((resolve) => {
    const req = http.request({host: PROXY.hostname, port: Number(PROXY.port), method, path: target,
                              headers: {Host: hostHeader || target}, agent: false, timeout: 10000});
    req.on('connect', (res, sock) => {  // any answer to CONNECT lands here, the refusals too
      sock.destroy();
      resolve('HTTP ' + res.statusCode + (res.statusCode === 200 ? ' tunnel' : ''));
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (d) => { if (body.length < 200) body += d; });
      res.on('end', () => resolve('HTTP ' + res.statusCode + ' ' + body.slice(0, 60)));
      res.on('error', (e) => resolve(e.code || e.message));
    });
    req.on('timeout', () => { req.destroy(); resolve('ETIMEDOUT'); });
    req.on('error', (e) => resolve(e.code || e.message));
    req.end();
  });
}

function gateway(method, p, token, body) {
  return new Promise((resolve) => {
    const u = new URL(process.env.GATEHOUSE_URL + p);
    const data = body === undefined ? null : JSON.stringify(body);
    const req = http.request({host: u.hostname, port: Number(u.port), method, path: u.pathname, agent: false,
                              headers: {Authorization: 'Bearer ' + token, 'Content-Type': 'application/json'}});
    req.on('response', (res) => {
      let b = '';
      res.on('data', (d) => { b += d; });
      res.on('end', () => {
        let code = '';
        try { code = (JSON.parse(b).error || {}).code || ''; } catch (e) { code = ''; }
        resolve(res.statusCode + ' ' + (res.statusCode < 300 ? b.slice(0, 200) : code));
      });
    });
    req.on('error', (e) => resolve(e.code || e.message));
    req.end(data);
  });
}

const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');

const attacks = {
  async secrets(datadir, home) {
    const r = {};
    for (const f of ['master.key', 'gatehouse.db', 'gatehouse.db-wal', 'audit/audit.log'])
      r[f] = t(() => fs.readFileSync(path.join(datadir, f)));
    r.datadir = t(() => fs.readdirSync(datadir));
    r['link-abs'] = t(() => fs.readFileSync('/app/key-abs'));
    r['link-rel'] = t(() => fs.readFileSync('/app/key-rel'));
    r['link-store'] = t(() => fs.readFileSync('/app/store-abs'));
    r['proc1-root'] = t(() => fs.readFileSync('/proc/1/root' + datadir + '/master.key'));
    r['proc1-cwd'] = t(() => fs.readdirSync('/proc/1/cwd'));
    r['proc1-fd'] = t(() => fs.readdirSync('/proc/1/fd'));
    r['proc1-fd6'] = t(() => fs.readFileSync('/proc/1/fd/6'));
    const fds = {};
    for (const fd of fs.readdirSync('/proc/self/fd')) fds[fd] = t(() => fs.readlinkSync('/proc/self/fd/' + fd));
    r.fds = fds;
    const found = [];
    const skip = new Set(['/proc', '/sys', '/usr', '/lib', '/lib32', '/lib64', '/libx32', '/bin', '/sbin']);
    const walk = (d) => {
      let ents = [];
      try { ents = fs.readdirSync(d, {withFileTypes: true}); } catch (e) { return; }
      for (const e of ents) {
        const p = path.join(d, e.name);
        if (e.isDirectory() && !skip.has(p)) walk(p);
        else if (e.name === 'master.key' || e.name.startsWith('gatehouse.db')) found.push(p);
      }
    };
    walk('/');  // everything but /proc and the read-only system binds
    r.found = found;
    r.environ = Object.assign({}, process.env);
    r['environ-self'] = t(() => fs.readFileSync('/proc/self/environ', 'utf8'));
    r['environ-1'] = t(() => fs.readFileSync('/proc/1/environ'));
    r.home = t(() => fs.readdirSync(home));
    return r;
  },

  async shadow(home) {
    const r = {};
    for (const p of ['/etc/shadow', '/etc/gshadow', '/etc/sudoers', '/root/.bash_history', home + '/.bashrc'])
      r[p] = t(() => fs.readFileSync(p));
    for (const d of ['/root', home, '/home', '/var', '/run', '/work', '/sys'])
      r['ls ' + d] = t(() => fs.readdirSync(d));
    r.passwd = t(() => fs.readFileSync('/etc/passwd', 'utf8'));
    r['os.userInfo'] = t(() => os.userInfo().homedir);
    return r;
  },

  async write(nonce, datadir) {
    const r = {};
    for (const d of ['/', '/etc', '/usr', '/usr/lib', '/app', '/dev', '/proc', datadir, '/root', '/tmp'])
      r['write ' + d] = t(() => fs.writeFileSync(path.join(d, nonce), 'escaped'));
    r['chmod /app'] = t(() => fs.chmodSync('/app/attack.js', 0o777));
    // opened for writing, nothing written (the targets are dangerous)
    for (const p of ['/proc/sysrq-trigger', '/proc/sys/kernel/core_pattern'])
      r['open-w ' + p] = t(() => fs.closeSync(fs.openSync(p, fs.constants.O_WRONLY)));
    // a second user-namespace map (root inside) must be refused
    r['write /proc/self/uid_map'] = t(() => fs.writeFileSync('/proc/self/uid_map', '0 0 1\n'));
    r['read back /tmp'] = t(() => fs.readFileSync('/tmp/' + nonce, 'utf8'));
    return r;
  },

  async procs(nonce, victim, gwpid) {
    victim = Number(victim);
    gwpid = Number(gwpid);
    const r = {};
    const pids = {};
    for (const p of fs.readdirSync('/proc'))
      if (/^\d+$/.test(p)) pids[p] = t(() => fs.readFileSync('/proc/' + p + '/cmdline', 'utf8').replace(/\0/g, ' '));
    r.pids = pids;
    r['stat victim'] = t(() => { fs.statSync('/proc/' + victim); });
    r['kill victim'] = t(() => { process.kill(victim, 'SIGKILL'); });
    r['kill gateway'] = t(() => { process.kill(gwpid, 'SIGKILL'); });
    r['kill -1'] = t(() => { process.kill(-1, 'SIGKILL'); });
    r['kill init'] = t(() => { process.kill(1, 'SIGKILL'); });
    r['sys kill victim'] = sys('kill', victim, 9);
    r['alive after'] = true;
    return r;
  },

  async mem() {
    const a = [];
    for (;;) a.push(Buffer.alloc(1 << 20, 1));
  },

  async cpu() {
    for (;;) { /* spin */ }
  },

  async wall(nonce) {
    // a detached daemon (own session) that ignores the polite signals: it must die with the run
    const c = cp.spawn(process.execPath, ['-e', "for (const s of ['SIGTERM', 'SIGHUP', 'SIGINT']) " +
                                          "process.on(s, () => {}); setInterval(() => {}, 1000)", nonce],
                       {detached: true, stdio: 'ignore'});
    c.unref();
    console.log(JSON.stringify({daemon: c.pid, nonce}));
    setInterval(() => {}, 1000);
    return new Promise(() => {});
  },

  async raw() {
    const r = {};
    r['AF_INET SOCK_RAW ICMP'] = sys('socket', 2, 3, 1);
    r['AF_INET SOCK_RAW IPPROTO_RAW'] = sys('socket', 2, 3, 255);
    r['AF_INET6 SOCK_RAW'] = sys('socket', 10, 3, 58);
    r['AF_PACKET SOCK_RAW'] = sys('socket', 17, 3, 0x0003);
    r['AF_PACKET SOCK_DGRAM'] = sys('socket', 17, 2, 0x0003);
    r['AF_INET SOCK_PACKET'] = sys('socket', 2, 10, 0x0003);
    r['AF_NETLINK ROUTE'] = sys('socket', 16, 3, 0);
    r['AF_INET SOCK_RAW|CLOEXEC'] = sys('socket', 2, 3 | 0o2000000, 1);
    return r;
  },

  async hostport(port, uport, abstractName, hostIp, gwport) {
    port = Number(port);
    const r = {};
    r['tcp 127.0.0.1'] = await ta(() => tcp('127.0.0.1', port));
    r['tcp localhost'] = await ta(() => tcp('localhost', port));
    r['tcp host ip'] = await ta(() => tcp(hostIp, port));
    r['tcp ::1'] = await ta(() => tcp('::1', port));
    r['tcp gateway port'] = await ta(() => tcp('127.0.0.1', Number(gwport)));
    r['udp 127.0.0.1'] = await ta(() => udp('127.0.0.1', Number(uport)));
    r['udp host ip'] = await ta(() => udp(hostIp, Number(uport)));
    r['unix abstract'] = await ta(() => abstractUnix(abstractName));
    r['proxy GET 127.0.0.1'] = await viaProxy('GET', `http://127.0.0.1:${port}/`);
    r['proxy GET localhost'] = await viaProxy('GET', `http://localhost:${port}/`);
    r['proxy GET [::1]'] = await viaProxy('GET', `http://[::1]:${port}/`);
    r['proxy GET host ip'] = await viaProxy('GET', `http://${hostIp}:${port}/`);
    r['proxy CONNECT 127.0.0.1'] = await viaProxy('CONNECT', `127.0.0.1:${port}`);
    r['proxy CONNECT [::ffff:7f00:1]'] = await viaProxy('CONNECT', `[::ffff:7f00:1]:${port}`);
    r['proxy CONNECT host ip'] = await viaProxy('CONNECT', `${hostIp}:${port}`);
    return r;
  },

  async origins(allowed, denied) {
    const r = {};
    const d = new URL(denied);
    r['lookup example.com'] = await ta(() => dns.promises.lookup('example.com').then((x) => x.address));
    r['resolve4 example.com'] = await ta(() => dns.promises.resolve4('example.com'));
    r['udp dns 8.8.8.8'] = await ta(() => udp('8.8.8.8', 53));
    r['tcp 1.1.1.1:443'] = await ta(() => tcp('1.1.1.1', 443));
    r['tcp denied direct'] = await ta(() => tcp(d.hostname, Number(d.port)));
    r['fetch denied direct'] = await ta(() => fetch(denied + '/x').then((x) => String(x.status)));
    r['proxy GET denied'] = await viaProxy('GET', denied + '/secret');
    r['proxy CONNECT denied'] = await viaProxy('CONNECT', d.host);
    r['proxy GET example.com'] = await viaProxy('GET', 'http://example.com/', 'example.com');
    r['proxy CONNECT example.com:443'] = await viaProxy('CONNECT', 'example.com:443');
    r['proxy GET allowed'] = await viaProxy('GET', allowed + '/from-node');
    r['proxy GET allowed, Host: denied'] = await viaProxy('GET', allowed + '/hi', d.host);
    return r;
  },

  async syscalls() {
    const r = {};
    r['ptrace TRACEME'] = sys('ptrace', 0, 0, 0, 0);
    r['ptrace ATTACH init'] = sys('ptrace', 16, 1, 0, 0);
    const child = cp.spawn('/bin/sleep', ['10'], {stdio: 'ignore'});
    await new Promise((res) => setTimeout(res, 50));
    r['ptrace ATTACH sibling'] = sys('ptrace', 16, child.pid, 0, 0);
    r['ptrace SEIZE sibling'] = sys('ptrace', 0x4206, child.pid, 0, 0);
    r['process_vm_readv sibling'] = sys('process_vm_readv', child.pid, 0, 0, 0, 0, 0);
    r['open /proc/1/mem'] = t(() => fs.readFileSync('/proc/1/mem'));
    child.kill('SIGKILL');
    r['mount tmpfs'] = sys('mount', 'none', '/tmp', 'tmpfs', 0, 0);
    r['mount bind /app'] = sys('mount', '/app', '/tmp', 0, 0x1000, 0);
    r['mount remount / rw'] = sys('mount', 0, '/', 0, 0x20 | 0x1000, 0);
    r['umount2 /app'] = sys('umount2', '/app', 2);
    r['chroot /tmp'] = sys('chroot', '/tmp');
    r['pivot_root'] = sys('pivot_root', '/tmp', '/tmp');
    r['fsopen tmpfs'] = sys('fsopen', 'tmpfs', 0);
    r['open_tree /app'] = sys('open_tree', -100, '/app', 1);
    r['/app still read-only'] = t(() => fs.writeFileSync('/app/after-mount', 'x'));
    for (const [flag, v] of [['NEWUSER', 0x10000000], ['NEWNS', 0x00020000], ['NEWNET', 0x40000000],
                             ['NEWPID', 0x20000000], ['NEWCGROUP', 0x02000000]]) {
      r['unshare ' + flag] = sys('unshare', v);
      r['clone ' + flag] = sys('clone', v);
    }
    r['clone3'] = sys('clone3', 0, 0);
    r['setns'] = sys('setns', fs.openSync('/proc/self/ns/net', 'r'), 0);
    const u = cp.spawnSync('/usr/bin/unshare', ['-Ur', '/usr/bin/id', '-u'], {encoding: 'utf8'});
    r['/usr/bin/unshare -Ur'] = 'exit ' + u.status + ' ' + (u.stdout || '').trim() + ' ' + (u.stderr || '').trim().slice(0, 100);
    r['bpf'] = sys('bpf', 0, 0, 0);
    r['keyctl'] = sys('keyctl', 0, 0, 0);
    r['perf_event_open'] = sys('perf_event_open', 0, 0, -1, -1, 0);
    r['init_module'] = sys('init_module', 0, 0, '');
    r['uid after'] = process.getuid();
    return r;
  },

  async setuid() {
    const r = {};
    r['setuid 0'] = t(() => process.setuid(0));
    r['setgid 0'] = t(() => process.setgid(0));
    r['seteuid 0'] = t(() => process.seteuid(0));
    r['sys setresuid 0'] = sys('setresuid', 0, 0, 0);
    for (const cmd of [['/usr/bin/su', '-c', 'id -u', 'root'], ['/usr/bin/passwd', '-S', 'root'],
                       ['/app/suid-helper', 'probe'], ['/app/caps-helper', 'probe'], ['/app/suid-id', '-u']]) {
      if (!fs.existsSync(cmd[0])) { r[cmd[0]] = 'absent'; continue; }
      const p = cp.spawnSync(cmd[0], cmd.slice(1), {encoding: 'utf8', timeout: 10000, stdio: ['ignore', 'pipe', 'pipe']});
      r[cmd[0]] = p.error ? p.error.code : 'exit ' + p.status + ' out=' + p.stdout.trim().slice(0, 300) +
                                           ' err=' + p.stderr.trim().slice(0, 120);
    }
    r['uid after'] = [process.getuid(), process.geteuid(), process.getgid(), process.getegid()];
    return r;
  },

  async token(ledger) {
    const r = {};
    const tok = process.env.GATEHOUSE_TOKEN;
    const [h, p, s] = tok.split('.');
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    r.claims = claims;
    const q = (env, res, sql) => ({resource: res || 'crm', environment: env,
                                  sql: sql || 'SELECT name FROM customers WHERE id = 1'});
    r['own staging'] = await gateway('POST', '/v1/query', tok, q('staging'));
    r.production = await gateway('POST', '/v1/query', tok, q('production'));
    r['other resource'] = await gateway('POST', '/v1/query', tok, q('staging', ledger, 'SELECT 1'));
    r['forged app'] = await gateway('POST', '/v1/query', `${h}.${b64(Object.assign({}, claims, {app: 'billing'}))}.${s}`,
                                    q('staging'));
    r['forged env'] = await gateway('POST', '/v1/query', `${h}.${b64(Object.assign({}, claims, {env: 'production'}))}.${s}`,
                                    q('production'));
    r['alg none'] = await gateway('POST', '/v1/query',
                                  `${b64({alg: 'none', typ: 'JWT'})}.${b64(Object.assign({}, claims, {app: 'billing'}))}.`,
                                  q('staging'));
    r['read audit'] = await gateway('GET', '/v1/audit', tok);
    return r;
  },
};

(async () => {
  // the last argument is the run's nonce (every process of the run carries it in its command
  // line, for the test's look for survivors); attacks that need it get it first
  const argv = process.argv.slice(2);
  const what = argv[0], nonce = argv[argv.length - 1];
  let args = argv.slice(1, -1);
  if (['write', 'procs', 'wall'].includes(what)) args = [nonce, ...args];
  const out = await attacks[what](...args);
  console.log(JSON.stringify(out));
})();
