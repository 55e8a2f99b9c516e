/**
 * `cox master` (run one master), `cox master restore` (a data directory from a backup),
 * `cox up` / `cox down` (a local HA cluster of 3 masters as background processes).
 * These verbs start servers, so they load `actors/` lazily: the client verbs stay light.
 */

import type { Command } from 'commander';
import { parseCidr, parsePortRange } from '../core/admission/service-allocation.js';

export function registerMasterCommands(program: Command): void {
  const master = program
    .command('master')
    .description('run one master of the Raft group (API on gRPC and WebSocket)')
    // Not `requiredOption`: commander would demand them of `master restore` too (it checks a
    // parent's mandatory options first); the action checks them.
    .option('--id <id>', "this master's id (a DNS label, e.g. m1); required")
    .option('--data-dir <dir>', 'where the WAL, snapshots and master.json live; required')
    .option(
      '--raft <host:port>',
      "Raft transport and peer service address (default: this id's entry in --peers)",
    )
    .option('--api <host:port>', 'gRPC API address', '127.0.0.1:0')
    .option('--ws <host:port>', 'WebSocket gateway address', '127.0.0.1:0')
    .option('--peers <list>', 'founding members: id=host:port,... (Raft addresses, this one included)', '')
    .option('--join', 'join a running cluster (then run `cox cluster add` against it)')
    .option('--tick-ms <ms>', 'Raft tick length', (v) => positiveInt(v, '--tick-ms'))
    .option('--election-ticks <n>', 'election timeout base in ticks', (v) =>
      positiveInt(v, '--election-ticks'),
    )
    .option(
      '--node-monitor-grace-period <duration>',
      'a node whose Lease is not renewed this long goes Ready=Unknown (default 40s)',
      (v) => durationMs(v, '--node-monitor-grace-period'),
    )
    .option('--event-ttl <duration>', 'events not written this long are deleted (default 1h)', (v) =>
      durationMs(v, '--event-ttl'),
    )
    .option(
      '--events-max <n>',
      'events kept in the cluster at most, oldest deleted first (default 10000)',
      (v) => positiveInt(v, '--events-max'),
    )
    .option(
      '--terminated-pod-gc-threshold <n>',
      'finished pods kept at most, oldest deleted first (default 12500)',
      (v) => positiveInt(v, '--terminated-pod-gc-threshold'),
    )
    .option('--service-cidr <cidr>', 'ClusterIPs are allocated from this range (default 10.96.0.0/16)', (v) =>
      checked(v, '--service-cidr', parseCidr),
    )
    .option(
      '--service-node-port-range <min-max>',
      'NodePorts are allocated from this range (default 30000-32767)',
      (v) => checked(v, '--service-node-port-range', parsePortRange),
    )
    .action(async (flags: Partial<MasterFlags>) => {
      const o = required(flags, ['id', 'dataDir'], 'master');
      const { parsePeers, runMaster } = await import('../actors/master-process.js');
      const peers = parsePeers(o.peers ?? '');
      const raft = o.raft ?? peers[o.id];
      if (!raft) throw new Error(`--raft is required when --peers has no entry for ${o.id}`);
      const running = await runMaster({
        id: o.id,
        dataDir: o.dataDir,
        raftListen: raft,
        apiListen: o.api,
        wsListen: o.ws,
        peers,
        join: o.join ?? false,
        ...(o.tickMs !== undefined ? { tickMs: o.tickMs } : {}),
        ...(o.electionTicks !== undefined ? { electionTicks: o.electionTicks } : {}),
        ...(o.serviceCidr !== undefined ? { serviceCidr: o.serviceCidr } : {}),
        ...(o.serviceNodePortRange !== undefined ? { nodePortRange: o.serviceNodePortRange } : {}),
        controllers: {
          ...(o.nodeMonitorGracePeriod !== undefined
            ? { nodeMonitorGracePeriodMs: o.nodeMonitorGracePeriod }
            : {}),
          ...(o.eventTtl !== undefined ? { eventTtlMs: o.eventTtl } : {}),
          ...(o.eventsMax !== undefined ? { eventsMax: o.eventsMax } : {}),
          ...(o.terminatedPodGcThreshold !== undefined
            ? { terminatedPodGcThreshold: o.terminatedPodGcThreshold }
            : {}),
        },
      });
      // One line on stdout that scripts wait for; everything else goes to stderr.
      process.stdout.write(
        `${JSON.stringify({ ready: true, id: o.id, pid: process.pid, ...running.addresses })}\n`,
      );
      // The verb lasts as long as the master: it resolves once a signal has stopped it.
      await new Promise<void>((resolve, reject) => {
        const shutdown = (signal: string) => {
          console.error(`master ${o.id}: ${signal}, stopping`);
          running.stop().then(resolve, reject);
        };
        process.once('SIGTERM', () => shutdown('SIGTERM'));
        process.once('SIGINT', () => shutdown('SIGINT'));
      });
    });

  master
    .command('restore')
    .description('prepare a fresh data directory from a backup (run once per member, then start them)')
    .option('--backup <file>', 'a file written by `cox cluster snapshot`; required')
    .option('--data-dir <dir>', 'an empty data directory for this member; required')
    .option('--peers <list>', "the new cluster's members: id=host:port,...; required")
    .action(async (_flags: unknown, cmd: Command) => {
      // `master` parses the options it shares with `restore` (--data-dir, --peers) itself.
      const merged = { ...definedOnly(cmd.parent?.opts() ?? {}), ...definedOnly(cmd.opts()) };
      const o = required(
        merged as Partial<{ backup: string; dataDir: string; peers: string }>,
        ['backup', 'dataDir', 'peers'],
        'master restore',
      );
      const { parsePeers, restoreDataDir } = await import('../actors/master-process.js');
      const r = await restoreDataDir({
        backupPath: o.backup,
        dataDir: o.dataDir,
        peers: parsePeers(o.peers),
      });
      console.log(`restored ${r.objects} objects at index ${r.applied} into ${o.dataDir}`);
    });
}

function definedOnly(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== ''));
}

function required<T, K extends keyof T>(o: Partial<T>, keys: K[], verb: string): T {
  for (const k of keys) {
    if (o[k] === undefined || o[k] === '') {
      const flag = `--${String(k).replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
      throw new Error(`${verb}: ${flag} is required`);
    }
  }
  return o as T;
}

interface MasterFlags {
  id: string;
  dataDir: string;
  raft?: string;
  api: string;
  ws: string;
  peers?: string;
  join?: boolean;
  tickMs?: number;
  electionTicks?: number;
  /** ms */
  nodeMonitorGracePeriod?: number;
  /** ms */
  eventTtl?: number;
  eventsMax?: number;
  terminatedPodGcThreshold?: number;
  serviceCidr?: string;
  serviceNodePortRange?: string;
}

/** `v` when `parse` accepts it; else the flag and the parser's reason in one line. */
function checked(v: string, flag: string, parse: (text: string) => unknown): string {
  try {
    parse(v);
    return v;
  } catch (err) {
    throw new Error(`${flag}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** `40s`, `5m`, `1h30m` → ms (> 0). */
export function durationMs(v: string, flag: string): number {
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(v.trim());
  const ms = m === null ? 0 : (Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0)) * 1000;
  if (ms <= 0) throw new Error(`${flag}: must be a duration like 40s, 5m or 1h, got "${v}"`);
  return ms;
}

function positiveInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${flag}: must be a positive integer, got "${v}"`);
  return n;
}
