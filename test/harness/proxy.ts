// A forwarding proxy of ours on 127.0.0.1, as a self-hosted agent's corporate proxy: CONNECT for
// https and absolute-URI forwarding for http, Proxy-Authorization Basic required (407 otherwise), a
// host map for names only the proxy resolves (Go never proxies localhost or loopback addresses, so
// a registry the tasks reach through the proxy needs such a name), and a log of every request.
import * as http from 'http';
import * as net from 'net';

export interface ProxyLogEntry {
  method: string;
  /** host:port for CONNECT, the absolute URL otherwise. */
  target: string;
  /** The client's User-Agent ('' when it sent none: Node's CONNECT; Go sends Go-http-client/1.1). */
  userAgent: string;
  /** 'forwarded', 'refused' (407: no or wrong credentials), or 'unreachable'. */
  outcome: 'forwarded' | 'refused' | 'unreachable';
}

export interface ForwardingProxy {
  url: string;
  port: number;
  log: ProxyLogEntry[];
  close(): Promise<void>;
}

export interface ProxyOptions {
  user: string;
  password: string;
  /**
   * Names the proxy resolves itself (name -> address), e.g. { 'registry.test': '127.0.0.1' }; an
   * address with a port (`127.0.0.1:8443`) also replaces the port a CONNECT asks for.
   */
  hosts?: Record<string, string>;
}

/** Starts the proxy; `close` ends it and every tunnel it holds. */
export async function startForwardingProxy(options: ProxyOptions): Promise<ForwardingProxy> {
  const want = 'Basic ' + Buffer.from(`${options.user}:${options.password}`).toString('base64');
  const resolve = (host: string) => options.hosts?.[host.toLowerCase()] ?? host;
  const log: ProxyLogEntry[] = [];
  const sockets = new Set<net.Socket>();
  const entry = (req: http.IncomingMessage, outcome: ProxyLogEntry['outcome']) =>
    log.push({ method: req.method ?? '', target: req.url ?? '', userAgent: String(req.headers['user-agent'] ?? ''), outcome });
  const server = http.createServer((req, res) => {
    if (req.headers['proxy-authorization'] !== want) {
      entry(req, 'refused');
      res.writeHead(407, { 'Proxy-Authenticate': 'Basic realm="test"', 'Content-Length': 0 });
      return void res.end();
    }
    const target = new URL(req.url ?? '/');
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    const up = http.request(
      { host: resolve(target.hostname), port: target.port || 80, path: target.pathname + target.search, method: req.method, headers },
      (upRes) => {
        entry(req, 'forwarded');
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on('error', () => {
      entry(req, 'unreachable');
      res.destroy();
    });
    req.pipe(up);
  });
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('connect', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    socket.on('error', () => undefined);
    if (req.headers['proxy-authorization'] !== want) {
      entry(req, 'refused');
      return void socket.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n');
    }
    const i = (req.url ?? '').lastIndexOf(':');
    const host = (req.url ?? '').slice(0, i);
    const port = Number((req.url ?? '').slice(i + 1));
    const [address, mappedPort] = resolve(host).split(/:(?=\d+$)/);
    let connected = false;
    const up = net.connect(Number(mappedPort ?? port), address, () => {
      connected = true;
      entry(req, 'forwarded');
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    sockets.add(up);
    up.on('close', () => sockets.delete(up));
    up.on('error', () => {
      // A tunnel that was up and then reset (a client closing early) was forwarded, not unreachable.
      if (!connected) entry(req, 'unreachable');
      socket.destroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    log,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
