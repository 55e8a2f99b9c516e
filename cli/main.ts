/**
 * The `cox` command line: commander wiring of the verbs over injected effects (output, files,
 * environment, clock, the connection to the masters), so the whole CLI runs in tests.
 * Every failure prints one line `error: ...` to stderr and exits 1.
 */

import { Command, CommanderError, Option } from 'commander';
import type { AddMemberRequest, ClusterStatus, ControllersStatus, ObjectApi } from '../actors/api.js';
import { registerAgentCommand } from './agent-command.js';
import { applyObject, withNamespace } from './apply.js';
import { CoxClient } from './client.js';
import { printClusterStatus, printControllers } from './cluster-status.js';
import { keysFromManifests, keysFromTargets, runDelete } from './delete.js';
import { runDescribe, runEvents } from './describe.js';
import { describeError, ManifestError, UsageError } from './errors.js';
import { runExpose } from './expose.js';
import { type Output, runGet } from './get.js';
import { registerImageCommands } from './image-command.js';
import { registerLocalClusterCommands } from './local-cluster.js';
import { type ManifestFiles, readManifests } from './manifests.js';
import { registerMasterCommands } from './master-command.js';
import { registerNodeVerbs } from './node-verbs.js';
import {
  parseCascade,
  parseConsistency,
  parseGracePeriod,
  parseOutputFormat,
  parseResourceArgs,
} from './options.js';
import { runExec, runLogs, runTopNodes, runTopPods, type StreamApi, type Terminal } from './pod-verbs.js';
import { parseAddresses, runPortForward } from './port-forward.js';
import { objectRef } from './printers.js';
import { RolloutError, registerRolloutCommands } from './rollout.js';
import { resolveServers } from './servers.js';
import { parseWhyTarget, runWhy } from './why.js';

/** What the verbs need from the masters: the object API plus cluster status. */
export interface CliApi extends ObjectApi {
  clusterStatus(): Promise<ClusterStatus>;
  /** The leader's controllers and their counters; absent in clients that cannot ask. */
  controllerStatus?(): Promise<ControllersStatus>;
  addMember(member: AddMemberRequest): Promise<ClusterStatus>;
  removeMember(memberId: string): Promise<ClusterStatus>;
  transferLeadership(to?: string): Promise<ClusterStatus>;
  /** Stream ops (logs, exec, stats); absent in clients that have none. */
  stream?: StreamApi['stream'];
  close(): void;
}

export interface CliDeps extends Output {
  env: Readonly<Record<string, string | undefined>>;
  homeDir: string;
  nowMs(): number;
  files: ManifestFiles & {
    /** The text, or undefined when the file does not exist. */
    readIfExists(path: string): string | undefined;
  };
  /** Raw output and stdin for logs and exec; default: text through stdout/stderr, no stdin. */
  terminal?: Terminal;
  /** Calls `cb` on SIGINT/SIGTERM (port-forward's clean stop); returns the unsubscribe. */
  onInterrupt?(cb: () => void): () => void;
  /** Opens the client; default: a failover {@link CoxClient}. */
  connect?(servers: string[], log: (line: string) => void): CliApi;
}

interface GlobalOpts {
  server?: string;
  verbose?: boolean;
  requestTimeout?: string;
}

const collect = (value: string, previous: string[]) => [...previous, value];

/** Runs one `cox` invocation (`args` without node and script); resolves with the exit code. */
export async function runCox(args: readonly string[], deps: CliDeps): Promise<number> {
  let code = 0;
  let client: CliApi | undefined;

  const connect = (cmd: Command): CliApi => {
    const g = cmd.optsWithGlobals<GlobalOpts>();
    const { servers } = resolveServers({
      flag: g.server,
      env: deps.env,
      homeDir: deps.homeDir,
      readFile: (p) => deps.files.readIfExists(p),
    });
    const log = g.verbose ? (line: string) => deps.stderr(`${line}\n`) : () => {};
    let timeoutMs: number | undefined;
    if (g.requestTimeout !== undefined) {
      timeoutMs = Number(g.requestTimeout);
      if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
        throw new UsageError(`--request-timeout: "${g.requestTimeout}": must be a positive number of ms`);
      }
    }
    client =
      deps.connect?.(servers, log) ??
      new CoxClient({ servers, log, limits: timeoutMs === undefined ? {} : { requestTimeoutMs: timeoutMs } });
    return client;
  };

  const program = new Command('cox')
    .description('Coxswain: talk to the masters of a cluster')
    .option('-s, --server <urls>', 'master gateways, comma-separated (ws://host:port,...)')
    .option('--request-timeout <ms>', 'fail over when a master does not answer in this time')
    .option('-v, --verbose', 'report failover on stderr')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: deps.stdout, writeErr: deps.stderr });

  program
    .command('apply')
    .description('create or update objects from manifests (YAML documents or JSON)')
    .requiredOption('-f, --filename <path>', 'a file, a directory, or - for stdin (repeatable)', collect, [])
    .option('-n, --namespace <ns>', 'namespace of objects that name none')
    .option('--dry-run', 'validate and default on the server without writing')
    .action(async (opts: { filename: string[]; namespace?: string; dryRun?: boolean }, cmd: Command) => {
      const manifests = await readManifests(opts.filename, deps.files);
      if (manifests.length === 0) throw new UsageError(`no objects in ${opts.filename.join(', ')}`);
      const objects = manifests.map((m) => ({ ...m, object: withNamespace(m.object, opts.namespace) }));
      const api = connect(cmd);
      for (const { object } of objects) {
        const ref = objectRef(object);
        try {
          const r = await applyObject(api, object, { dryRun: opts.dryRun });
          deps.stdout(`${objectRef(r.object)} ${r.outcome}${opts.dryRun ? ' (server dry run)' : ''}\n`);
        } catch (err) {
          code = 1;
          deps.stderr(`error: ${describeError(err, ref)}\n`);
        }
      }
    });

  program
    .command('get')
    .description('print objects: KIND[,KIND...] [NAME...] or KIND/NAME...')
    .argument('<resources...>')
    .option('-o, --output <format>', 'wide | yaml | json | name')
    .option('-n, --namespace <ns>', 'namespace (default: default)')
    .option('-A, --all-namespaces', 'every namespace, with a NAMESPACE column')
    .option('-l, --selector <selector>', 'label selector (a=b,c!=d,e in (x,y),!f)')
    .option('--field-selector <selector>', 'field selector (spec.nodeName=n1)')
    .option('-w, --watch', 'after printing, keep printing changes')
    .option('--consistency <level>', 'linearizable (default) or serializable')
    .action(async (resources: string[], opts: Record<string, string | boolean | undefined>, cmd: Command) => {
      const targets = parseResourceArgs(resources);
      const getOpts = {
        output: parseOutputFormat(opts.output as string | undefined),
        namespace: opts.namespace as string | undefined,
        allNamespaces: opts.allNamespaces === true,
        labelSelector: opts.selector as string | undefined,
        fieldSelector: opts.fieldSelector as string | undefined,
        consistency: parseConsistency(opts.consistency as string | undefined),
        watch: opts.watch === true,
      };
      code = await runGet(connect(cmd), targets, getOpts, deps, deps.nowMs);
    });

  program
    .command('delete')
    .description('delete objects: KIND NAME..., KIND/NAME..., or -f FILE')
    .argument('[resources...]')
    .option('-f, --filename <path>', 'delete the objects of these manifests (repeatable)', collect, [])
    .option('-n, --namespace <ns>', 'namespace (default: default)')
    .option('-l, --selector <selector>', 'delete every object of the kind matching this label selector')
    .option('--all', 'delete every object of the kind in the namespace')
    .option('--grace-period <seconds>', 'seconds pods get to stop; 0 at once; -1 the pod’s own')
    .addOption(
      new Option('--cascade <policy>', 'dependents: background, foreground or orphan').default(undefined),
    )
    .action(async (resources: string[], opts: Record<string, unknown>, cmd: Command) => {
      const files = opts.filename as string[];
      const delOpts = {
        namespace: opts.namespace as string | undefined,
        labelSelector: opts.selector as string | undefined,
        all: opts.all === true,
        propagationPolicy: parseCascade(opts.cascade as string | undefined),
        gracePeriodSeconds: parseGracePeriod(opts.gracePeriod as string | undefined),
      };
      if (files.length > 0 && resources.length > 0)
        throw new UsageError('delete: give -f or KIND NAME, not both');
      if (files.length === 0 && resources.length === 0) {
        throw new UsageError('delete: KIND NAME..., KIND/NAME... or -f FILE is required');
      }
      const manifests = files.length > 0 ? await readManifests(files, deps.files) : [];
      const api = connect(cmd);
      const keys =
        files.length > 0
          ? keysFromManifests(manifests, delOpts.namespace)
          : await keysFromTargets(api, parseResourceArgs(resources), delOpts);
      code = await runDelete(api, keys, delOpts, deps);
    });

  program
    .command('describe')
    .description('an object in words, with related objects and its events: KIND [NAME...] or KIND/NAME...')
    .argument('<resources...>')
    .option('-n, --namespace <ns>', 'namespace (default: default)')
    .option('-l, --selector <selector>', 'describe every object of the kind matching this label selector')
    .action(async (resources: string[], opts: { namespace?: string; selector?: string }, cmd: Command) => {
      code = await runDescribe(
        connect(cmd),
        parseResourceArgs(resources),
        {
          ...(opts.namespace ? { namespace: opts.namespace } : {}),
          ...(opts.selector ? { labelSelector: opts.selector } : {}),
        },
        deps,
        deps.nowMs,
      );
    });

  program
    .command('events')
    .description('events, oldest first: what controllers, the scheduler and agents did')
    .option('-n, --namespace <ns>', 'namespace (default: default)')
    .option('-A, --all-namespaces', 'every namespace')
    .option('--for <kind/name>', 'only events about this object')
    .option('--types <types>', 'only these types, comma-separated (Normal, Warning)')
    .option('-w, --watch', 'after printing, keep printing new events')
    .action(
      async (
        opts: { namespace?: string; allNamespaces?: boolean; for?: string; types?: string; watch?: boolean },
        cmd: Command,
      ) => {
        code = await runEvents(
          connect(cmd),
          {
            ...(opts.namespace ? { namespace: opts.namespace } : {}),
            allNamespaces: opts.allNamespaces === true,
            ...(opts.for ? { for: opts.for } : {}),
            ...(opts.types ? { types: opts.types.split(',').filter(Boolean) } : {}),
            watch: opts.watch === true,
          },
          deps,
          deps.nowMs,
        );
      },
    );

  program
    .command('expose')
    .description(
      'a Service in front of a deployment, replica set, stateful set, daemon set or pod: expose KIND/NAME --port N',
    )
    .argument('<target>', 'KIND/NAME')
    .option('-n, --namespace <ns>', 'namespace (default: default)')
    .option('--port <port>', "the service's port (default: the pods' only container port)")
    .option('--target-port <port>', 'the container port (number or name) traffic goes to (default: --port)')
    .option('--name <name>', "the service's name (default: the exposed object's)")
    .option('--type <type>', 'ClusterIP (default) or NodePort')
    .option('--protocol <p>', 'TCP (default), UDP or SCTP')
    .option('--port-name <name>', "the port's name")
    .option('--session-affinity <a>', 'None (default) or ClientIP')
    .option('--cluster-ip <ip>', 'ask for this ClusterIP (or None for a headless service)')
    .option('--dry-run', 'validate and allocate on the server without writing')
    .action(async (target: string, o: Record<string, string | boolean | undefined>, cmd: Command) => {
      code = await runExpose(
        connect(cmd),
        target,
        {
          ...(o.namespace ? { namespace: o.namespace as string } : {}),
          ...(o.port ? { port: o.port as string } : {}),
          ...(o.targetPort ? { targetPort: o.targetPort as string } : {}),
          ...(o.name ? { name: o.name as string } : {}),
          ...(o.type ? { type: o.type as string } : {}),
          ...(o.protocol ? { protocol: o.protocol as string } : {}),
          ...(o.portName ? { portName: o.portName as string } : {}),
          ...(o.sessionAffinity ? { sessionAffinity: o.sessionAffinity as string } : {}),
          ...(o.clusterIp ? { clusterIp: o.clusterIp as string } : {}),
          dryRun: o.dryRun === true,
        },
        deps,
      );
    });

  registerNodeVerbs(program, connect, deps, (c) => {
    code = c;
  });

  program
    .command('why')
    .description('why a pod is where it is, or why it is not scheduled: why pod/NAME')
    .argument('<pod...>', 'pod/NAME, pod NAME or NAME')
    .option('-n, --namespace <ns>', 'namespace (default: default)')
    .action(async (args: string[], opts: { namespace?: string }, cmd: Command) => {
      code = await runWhy(connect(cmd), parseWhyTarget(args), opts.namespace, deps, deps.nowMs());
    });

  const cluster = program.command('cluster').description('the masters themselves');
  cluster
    .command('status')
    .description('members, roles, terms and log positions (the leader marked *)')
    .action(async (_opts: unknown, cmd: Command) => {
      deps.stdout(printClusterStatus(await connect(cmd).clusterStatus()));
    });

  cluster
    .command('controllers')
    .description(
      "the leader's controllers: reconciles, errors, requeues, queue, latency, restarts, last error",
    )
    .option('-o, --output <format>', 'json for the raw counters (the scheduler’s included)')
    .action(async (o: { output?: string }, cmd: Command) => {
      if (o.output !== undefined && o.output !== 'json') {
        throw new UsageError(`--output: "${o.output}": cluster controllers prints a table or json`);
      }
      const client = connect(cmd);
      if (client.controllerStatus === undefined) {
        throw new UsageError('cluster controllers: this client cannot ask the masters for them');
      }
      const status = await client.controllerStatus();
      deps.stdout(o.output === 'json' ? `${JSON.stringify(status, null, 2)}\n` : printControllers(status));
    });

  cluster
    .command('add')
    .description('add a master (started with --join) as a learner; it becomes a voter once caught up')
    .argument('<id>', "the new member's id")
    .requiredOption('--raft <host:port>', 'its Raft address')
    .option('--api <host:port>', 'its gRPC API address (informational)', '')
    .option('--ws <url>', 'its WebSocket URL (informational)', '')
    .action(async (id: string, o: { raft: string; api: string; ws: string }, cmd: Command) => {
      const st = await connect(cmd).addMember({ id, raftAddress: o.raft, apiAddress: o.api, wsUrl: o.ws });
      deps.stdout(printClusterStatus(st));
    });
  cluster
    .command('remove')
    .description('remove a master from the Raft group')
    .argument('<id>')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      deps.stdout(printClusterStatus(await connect(cmd).removeMember(id)));
    });
  cluster
    .command('transfer')
    .description('hand leadership to a voter (default: the most caught-up one)')
    .argument('[id]')
    .action(async (id: string | undefined, _o: unknown, cmd: Command) => {
      deps.stdout(printClusterStatus(await connect(cmd).transferLeadership(id)));
    });
  cluster
    .command('snapshot')
    .description('write a consistent backup of the cluster state to FILE (restore with `cox master restore`)')
    .argument('<file>')
    .action(async (file: string, _o: unknown, cmd: Command) => {
      const st = await connect(cmd).clusterStatus();
      const apis = st.members.map((m) => m.apiAddress).filter((a) => a !== '');
      if (apis.length === 0) throw new UsageError('cluster snapshot: no master reports a gRPC API address');
      const { ApiClient } = await import('../actors/grpc-client.js');
      const { createWriteStream } = await import('node:fs');
      const api = new ApiClient(apis);
      const out = createWriteStream(file, { mode: 0o600 });
      let bytes = 0;
      try {
        for await (const chunk of api.snapshot()) {
          bytes += chunk.byteLength;
          if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
        }
      } finally {
        api.close();
        await new Promise<void>((resolve, reject) =>
          out.end((err?: Error | null) => (err ? reject(err) : resolve())),
        );
      }
      deps.stdout(`snapshot written to ${file} (${bytes} bytes)\n`);
    });

  const streams = (cmd: Command): StreamApi => {
    const api = connect(cmd);
    const stream = api.stream?.bind(api);
    if (stream === undefined) throw new UsageError(`${cmd.name()}: this client cannot open streams`);
    return { stream };
  };
  const terminal: Terminal = deps.terminal ?? {
    writeOut: async (b) => deps.stdout(Buffer.from(b).toString('utf8')),
    writeErr: async (b) => deps.stderr(Buffer.from(b).toString('utf8')),
  };

  program
    .command('logs')
    .description("print a pod's container output (through the pod's node agent)")
    .argument('<pod>')
    .option('-n, --namespace <ns>', 'namespace (default: default)')
    .option('-c, --container <name>', "container (default: the pod's first)")
    .option('-f, --follow', 'keep streaming new output')
    .option('--tail <lines>', 'only the last N lines (-1: all)')
    .option('--since <duration>', 'only output newer than this (30s, 5m, 2h)')
    .option('--timestamps', 'prefix each line with its RFC 3339 time')
    .option('-p, --previous', 'the previous (terminated) start of the container')
    .action(async (pod: string, o: Record<string, string | boolean | undefined>, cmd: Command) => {
      code = await runLogs(
        streams(cmd),
        pod,
        {
          namespace: o.namespace as string | undefined,
          container: o.container as string | undefined,
          follow: o.follow === true,
          tail: o.tail as string | undefined,
          since: o.since as string | undefined,
          timestamps: o.timestamps === true,
          previous: o.previous === true,
        },
        terminal,
      );
    });

  program
    .command('exec')
    .description("run a command in a pod's container: exec [-i] [-t] POD [-c C] -- CMD...")
    .argument('<pod>')
    .argument('<command...>')
    .option('-n, --namespace <ns>', 'namespace (default: default)')
    .option('-c, --container <name>', "container (default: the pod's first)")
    .option('-i, --stdin', "pass cox's stdin to the command")
    .option('-t, --tty', 'allocate a terminal (raw mode when stdin is one)')
    .action(
      async (
        pod: string,
        command: string[],
        o: Record<string, string | boolean | undefined>,
        cmd: Command,
      ) => {
        code = await runExec(
          streams(cmd),
          pod,
          command,
          {
            namespace: o.namespace as string | undefined,
            container: o.container as string | undefined,
            stdin: o.stdin === true,
            tty: o.tty === true,
          },
          terminal,
        );
      },
    );

  program
    .command('port-forward')
    .description(
      'forward local ports to a pod: port-forward TYPE/NAME [LOCAL:]REMOTE... (pod, svc, deploy, rs, sts)',
    )
    .argument('<target>', 'pod/NAME (or NAME), svc/NAME, deploy/NAME, rs/NAME or sts/NAME')
    .argument('<ports...>', 'LOCAL:REMOTE, :REMOTE (a free local port) or PORT')
    .option('-n, --namespace <ns>', 'namespace (default: default)')
    .option(
      '--address <addresses>',
      'local addresses to listen on, comma-separated (IPs or localhost)',
      '127.0.0.1',
    )
    .option('--pod-running-timeout <seconds>', 'how long to wait for a running pod of a selector', '60')
    .action(
      async (
        target: string,
        ports: string[],
        o: { namespace?: string; address: string; podRunningTimeout: string },
        cmd: Command,
      ) => {
        const seconds = Number(o.podRunningTimeout);
        if (!Number.isFinite(seconds) || seconds <= 0)
          throw new UsageError(
            `--pod-running-timeout: "${o.podRunningTimeout}": must be a positive number of seconds`,
          );
        const addresses = parseAddresses(o.address);
        const api = connect(cmd);
        if (api.stream === undefined) throw new UsageError('port-forward: this client cannot open streams');
        code = await runPortForward(
          api as CliApi & StreamApi,
          target,
          ports,
          {
            ...(o.namespace ? { namespace: o.namespace } : {}),
            addresses,
            podRunningTimeoutMs: seconds * 1000,
          },
          {
            stdout: deps.stdout,
            stderr: deps.stderr,
            nowMs: deps.nowMs,
            ...(deps.onInterrupt ? { onInterrupt: deps.onInterrupt } : {}),
          },
        );
      },
    );

  const top = program.command('top').description('CPU and memory in use (from the node agents)');
  top
    .command('pods')
    .description('per pod: CPU (millicores) and memory')
    .argument('[pod]')
    .option('-n, --namespace <ns>', 'namespace (default: default)')
    .option('-A, --all-namespaces', 'every namespace')
    .action(
      async (pod: string | undefined, o: { namespace?: string; allNamespaces?: boolean }, cmd: Command) => {
        code = await runTopPods(streams(cmd), { ...o, ...(pod !== undefined ? { pod } : {}) }, deps);
      },
    );
  top
    .command('nodes')
    .description('per node: CPU and memory of its running containers, against its capacity')
    .action(async (_o: unknown, cmd: Command) => {
      code = await runTopNodes(streams(cmd), deps);
    });

  registerRolloutCommands(program, {
    connect,
    out: deps,
    nowMs: deps.nowMs,
    setCode: (c) => {
      code = c;
    },
  });
  registerMasterCommands(program);
  registerAgentCommand(program);
  registerImageCommands(program, deps);
  registerLocalClusterCommands(program);

  try {
    await program.parseAsync([...args], { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 1;
    if (err instanceof UsageError || err instanceof ManifestError || err instanceof RolloutError) {
      deps.stderr(`error: ${err.message}\n`);
      return 1;
    }
    deps.stderr(`error: ${describeError(err)}\n`);
    return 1;
  } finally {
    client?.close();
  }
}
