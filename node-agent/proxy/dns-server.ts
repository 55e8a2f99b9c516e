/**
 * The cluster DNS server of an agent: the pure zone (dns-zone.ts) behind a UDP socket and a TCP
 * listener (RFC 1035 4.2.2 framing: a two-byte length before each message, several queries per
 * connection). UDP answers are truncated to the client's payload size with TC set, so the
 * client retries over TCP. Malformed queries get FORMERR when their id is readable; nothing is
 * ever forwarded upstream.
 *
 * Where it listens is the proxy's choice: in kernel mode on ephemeral ports of the DNS service
 * IP (the service CIDR is local), with `<dns IP>:53` translated to them; in userspace mode on
 * `<dns IP>:53` itself, retried while another agent of the same machine holds it.
 */

import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import { DnsFormatError, decodeMessage, encodeMessage, Rcode } from './dns-message.js';
import { type DnsView, type DnsZone, emptyReply, type Transport } from './dns-zone.js';

export interface DnsServerOptions {
  zone: DnsZone;
  view: DnsView;
  host: string;
  /** 0: ephemeral ports (UDP first; TCP takes the same number when free). */
  port: number;
  /** Keep retrying a taken address every this many ms instead of failing. Default: fail. */
  bindRetryMs?: number;
  /** Open TCP connections; more are closed at once. Default 256. */
  tcpConnectionsMax?: number;
  /** A TCP connection idle this long is closed. Default 10,000. */
  tcpIdleMs?: number;
  log?: (line: string) => void;
}

export interface DnsServerStats {
  queries: number;
  /** Responses by rcode name. */
  rcodes: Record<string, number>;
  truncated: number;
  /** Messages that could not be answered at all (unreadable header). */
  dropped: number;
}

/** The largest message TCP framing can carry. */
const tcpMessageBytesMax = 65_535;
const rcodeNames = Object.fromEntries(Object.entries(Rcode).map(([k, v]) => [v, k])) as Record<
  number,
  string
>;

export class DnsServer {
  private udp: UdpSocket | undefined;
  private tcp: Server | undefined;
  private readonly conns = new Set<Socket>();
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;
  readonly stats: DnsServerStats = { queries: 0, rcodes: {}, truncated: 0, dropped: 0 };
  udpPort = 0;
  tcpPort = 0;

  constructor(private readonly opts: DnsServerOptions) {}

  /**
   * Binds both sockets; resolves with their ports. With `bindRetryMs`, a taken address is retried
   * in the background and this resolves at once with the wanted port (`listening` tells).
   */
  async start(): Promise<{ udpPort: number; tcpPort: number }> {
    try {
      await this.bind();
    } catch (err) {
      // Only a taken address is worth waiting for; anything else (EACCES: port 53 needs root) is final.
      if (this.opts.bindRetryMs === undefined || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE')
        throw err;
      this.opts.log?.(
        `dns: cannot listen on ${this.opts.host}:${this.opts.port} (${(err as NodeJS.ErrnoException).code ?? String(err)}); retrying every ${this.opts.bindRetryMs} ms`,
      );
      this.scheduleRetry();
    }
    return { udpPort: this.udpPort || this.opts.port, tcpPort: this.tcpPort || this.opts.port };
  }

  get listening(): boolean {
    return this.udp !== undefined && this.tcp !== undefined;
  }

  private scheduleRetry(): void {
    if (this.stopped) return;
    this.retry = setTimeout(() => {
      this.bind().then(
        () => this.opts.log?.(`dns: listening on ${this.opts.host}:${this.udpPort} now`),
        () => this.scheduleRetry(),
      );
    }, this.opts.bindRetryMs);
  }

  private async bind(): Promise<void> {
    const udp = createSocket({ type: 'udp4' });
    try {
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind({ address: this.opts.host, port: this.opts.port, exclusive: true }, () => {
          udp.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      udp.close();
      throw err;
    }
    const udpPort = udp.address().port;
    let tcp: Server;
    try {
      tcp = await this.listenTcp(udpPort).catch((err) => {
        if (this.opts.port !== 0) throw err;
        return this.listenTcp(0);
      });
    } catch (err) {
      udp.close();
      throw err;
    }
    if (this.stopped) {
      udp.close();
      tcp.close();
      return;
    }
    udp.on('message', (msg, rinfo) => this.onUdp(msg, rinfo.address, rinfo.port));
    udp.on('error', (err) => this.opts.log?.(`dns: udp: ${err.message}`));
    this.udp = udp;
    this.tcp = tcp;
    this.udpPort = udpPort;
    this.tcpPort = (tcp.address() as { port: number }).port;
  }

  private listenTcp(port: number): Promise<Server> {
    const server = createServer((s) => this.onTcp(s));
    server.maxConnections = this.opts.tcpConnectionsMax ?? 256;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.opts.host, port, exclusive: true }, () => {
        server.off('error', reject);
        server.on('error', (err) => this.opts.log?.(`dns: tcp: ${err.message}`));
        resolve(server);
      });
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retry !== undefined) clearTimeout(this.retry);
    this.udp?.close();
    this.udp = undefined;
    for (const c of this.conns) c.destroy();
    const tcp = this.tcp;
    this.tcp = undefined;
    if (tcp !== undefined) await new Promise<void>((r) => tcp.close(() => r()));
  }

  /** The encoded answer to one message, or undefined when it gets none. */
  answer(bytes: Uint8Array, transport: Transport): Uint8Array | undefined {
    let query: ReturnType<typeof decodeMessage>;
    try {
      query = decodeMessage(bytes);
    } catch (err) {
      if (
        err instanceof DnsFormatError &&
        err.id !== undefined &&
        bytes.length >= 3 &&
        (bytes[2] & 0x80) === 0
      ) {
        this.count(Rcode.FormErr);
        return encodeMessage({
          id: err.id,
          qr: true,
          opcode: (bytes[2] >>> 3) & 0xf,
          aa: false,
          tc: false,
          rd: (bytes[2] & 1) !== 0,
          ra: false,
          rcode: Rcode.FormErr,
          questions: [],
          answers: [],
          authority: [],
          additional: [],
        });
      }
      this.stats.dropped += 1;
      return undefined;
    }
    let encoded: Uint8Array;
    try {
      const out = this.opts.zone.respond(query, this.opts.view, transport);
      if (out === undefined) {
        this.stats.dropped += 1;
        return undefined;
      }
      this.stats.queries += 1;
      this.count(out.response.rcode);
      encoded = encodeMessage(out.response, out.bytesMax ?? tcpMessageBytesMax);
    } catch {
      // A query this server cannot answer (a name it cannot write back, say) must never take
      // the agent down: SERVFAIL, counted.
      this.count(Rcode.ServFail);
      return encodeMessage(emptyReply(query, Rcode.ServFail));
    }
    if ((encoded[2] & 0x02) !== 0) this.stats.truncated += 1;
    return encoded;
  }

  private count(rcode: number): void {
    const name = rcodeNames[rcode] ?? String(rcode);
    this.stats.rcodes[name] = (this.stats.rcodes[name] ?? 0) + 1;
  }

  private onUdp(msg: Buffer, address: string, port: number): void {
    const reply = this.answer(msg, 'udp');
    if (reply !== undefined) this.udp?.send(reply, port, address);
  }

  private onTcp(socket: Socket): void {
    this.conns.add(socket);
    socket.setTimeout(this.opts.tcpIdleMs ?? 10_000, () => socket.destroy());
    socket.on('close', () => this.conns.delete(socket));
    socket.on('error', () => socket.destroy());
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= 2) {
        const len = pending.readUInt16BE(0);
        if (pending.length < 2 + len) break;
        const msg = pending.subarray(2, 2 + len);
        pending = pending.subarray(2 + len);
        const reply = this.answer(msg, 'tcp');
        if (reply === undefined) {
          socket.destroy();
          return;
        }
        const frame = Buffer.alloc(2 + reply.length);
        frame.writeUInt16BE(reply.length, 0);
        frame.set(reply, 2);
        // A client that does not read its answers stops being read (backpressure).
        if (!socket.write(frame)) {
          socket.pause();
          socket.once('drain', () => socket.resume());
        }
      }
    });
  }
}
