import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { service as healthService } from 'grpc-health-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { ApiObject } from '../core/index.js';
import { createMemoryApi, type MemoryApiOptions } from '../test/fixtures/memory-api.js';
import {
  ApiError,
  type ApiErrorCode,
  apiLimits,
  type ClusterApi,
  type ControllersStatus,
  type ObjectApi,
  type WatchEvent,
  type WatchStream,
} from './api.js';
import { type ApiServer, createApiServer, errorMetadataKeys, grpcStatusOfApiCode } from './grpc-api.js';
import { loadApiProto } from './grpc-api-wire.js';
import { ApiClient, type ApiClientOptions } from './grpc-client.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function serve(
  objects: ObjectApi,
  cluster: ClusterApi,
  onInternalError: (err: unknown) => void = () => {},
): Promise<ApiServer> {
  const server = await createApiServer({
    objects,
    cluster,
    listen: '127.0.0.1:0',
    onInternalError,
    closeGraceMs: 50,
  });
  cleanups.push(() => server.close());
  return server;
}

function clientFor(addresses: string[], options: ApiClientOptions = {}): ApiClient {
  const client = new ApiClient(addresses, options);
  cleanups.push(() => client.close());
  return client;
}

async function setup(memory: MemoryApiOptions = {}, clientOptions: ApiClientOptions = {}) {
  const api = createMemoryApi(memory);
  const server = await serve(api.objects, api.cluster);
  const client = clientFor([server.address()], clientOptions);
  return { api, server, client };
}

function configMap(
  name: string,
  labels: Record<string, string> = {},
  data: Record<string, string> = { k: 'v' },
) {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default', labels }, data };
}

function pod(name: string) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default' },
    spec: { containers: [{ name: 'c', image: 'busybox' }] },
  };
}

async function rejection(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    return err as ApiError;
  }
  throw new Error('expected a rejection');
}

/** Reads `count` events (or until the stream ends). */
async function readEvents(stream: WatchStream, count: number): Promise<WatchEvent[]> {
  const events: WatchEvent[] = [];
  while (events.length < count) {
    const batch = await stream.next();
    if (batch === undefined) break;
    events.push(...batch);
  }
  return events;
}

/** A raw stub of the generated Objects client, to send what ApiClient never would. */
function rawObjects(address: string): grpc.Client & Record<string, (...args: unknown[]) => unknown> {
  const proto = loadApiProto();
  const client = new proto.ObjectsClient(address, grpc.credentials.createInsecure(), {
    'grpc.max_send_message_length': 8 * 1024 * 1024,
  });
  cleanups.push(() => client.close());
  return client as unknown as grpc.Client & Record<string, (...args: unknown[]) => unknown>;
}

function rawUnary(
  client: ReturnType<typeof rawObjects>,
  method: string,
  req: unknown,
): Promise<grpc.ServiceError> {
  return new Promise((resolve, reject) => {
    client[method](req, (err: grpc.ServiceError | null) =>
      err ? resolve(err) : reject(new Error(`${method} succeeded`)),
    );
  });
}

describe('gRPC API round trip', () => {
  it('creates, gets, lists, updates, patches and deletes objects', async () => {
    const { client } = await setup();
    const created = await client.create(configMap('a', { app: 'web' }));
    expect(created.metadata).toMatchObject({
      name: 'a',
      namespace: 'default',
      resourceVersion: '1',
      uid: 'uid-1',
    });
    await client.create(configMap('b', { app: 'db' }));
    await client.create(configMap('c', { app: 'web' }));

    expect(await client.get({ kind: 'ConfigMap', namespace: 'default', name: 'a' })).toEqual(created);
    expect(await client.get({ kind: 'ConfigMap', name: 'a' }, { consistency: 'serializable' })).toEqual(
      created,
    );

    const web = await client.list('ConfigMap', { labelSelector: 'app=web' });
    expect(web.items.map((o) => o.metadata.name)).toEqual(['a', 'c']);
    expect(web.resourceVersion).toBe('3');
    expect(web.continue).toBeUndefined();
    const page1 = await client.list('ConfigMap', { limit: 2, namespace: 'default' });
    expect(page1.items.map((o) => o.metadata.name)).toEqual(['a', 'b']);
    expect(page1.remainingItemCount).toBe(1);
    const page2 = await client.list('ConfigMap', { limit: 2, continue: page1.continue });
    expect(page2.items.map((o) => o.metadata.name)).toEqual(['c']);
    const byField = await client.list('ConfigMap', { fieldSelector: 'metadata.name=b' });
    expect(byField.items.map((o) => o.metadata.name)).toEqual(['b']);

    const updated = await client.update({ ...created, data: { k: 'v2' } });
    expect(updated.metadata.resourceVersion).toBe('4');
    expect((updated as { data?: unknown }).data).toEqual({ k: 'v2' });

    const patched = await client.patch(
      { kind: 'ConfigMap', namespace: 'default', name: 'a' },
      { metadata: { labels: { tier: 'x' } }, data: { k: null, j: 'w' } },
    );
    expect(patched.metadata.labels).toEqual({ app: 'web', tier: 'x' });
    expect((patched as { data?: unknown }).data).toEqual({ j: 'w' });

    const dry = await client.create(configMap('d'), { dryRun: true });
    expect(dry.metadata.name).toBe('d');
    expect((await rejection(client.get({ kind: 'ConfigMap', name: 'd' }))).code).toBe('NotFound');

    const deleted = await client.delete(
      { kind: 'ConfigMap', namespace: 'default', name: 'a' },
      {
        preconditions: { uid: 'uid-1', resourceVersion: patched.metadata.resourceVersion },
        gracePeriodSeconds: 0,
      },
    );
    expect(deleted.metadata.name).toBe('a');
    expect((await rejection(client.get({ kind: 'ConfigMap', name: 'a' }))).code).toBe('NotFound');
  });

  it('updates and patches status, and marks objects with finalizers for deletion', async () => {
    const { client } = await setup();
    const p = await client.create({ ...pod('p'), metadata: { ...pod('p').metadata, finalizers: ['x/y'] } });
    const withStatus = await client.updateStatus({ ...p, status: { phase: 'Running' } });
    expect((withStatus as { status?: unknown }).status).toEqual({ phase: 'Running' });
    const patched = await client.patch(
      { kind: 'Pod', namespace: 'default', name: 'p' },
      { status: { podIP: '10.0.0.1' } },
      { subresource: 'status' },
    );
    expect((patched as { status?: unknown }).status).toEqual({ phase: 'Running', podIP: '10.0.0.1' });
    const marked = await client.delete(
      { kind: 'Pod', namespace: 'default', name: 'p' },
      { propagationPolicy: 'Foreground' },
    );
    expect(marked.metadata.deletionTimestamp).toBeDefined();
    expect(
      (await client.get({ kind: 'Pod', namespace: 'default', name: 'p' })).metadata.deletionTimestamp,
    ).toBeDefined();
  });

  it("serves the leader's controllers and their counters", async () => {
    const { api, client } = await setup();
    const status: ControllersStatus = {
      leader: 'm1',
      term: 3,
      running: true,
      controllers: [
        {
          name: 'replicaset',
          running: true,
          reconciles: 12,
          errors: 2,
          requeues: 3,
          lastError: 'replicaset/default/web: conflict',
          latencyP50Ms: 1.25,
          latencyP99Ms: 40.5,
          queueDepth: 4,
          inFlight: 1,
          delayed: 2,
          restarts: 0,
        },
        {
          name: 'scheduler',
          running: false,
          reconciles: 0,
          errors: 0,
          requeues: 0,
          latencyP50Ms: 0,
          latencyP99Ms: 0,
          queueDepth: 0,
          inFlight: 0,
          delayed: 0,
          restarts: 1,
          counters: { scheduled: 5, unschedulable: 1 },
        },
      ],
      events: { written: 7, dropped: 1, failed: 0 },
    };
    (api.cluster as unknown as { controllerStatus: ControllersStatus }).controllerStatus = status;
    expect(await client.controllers()).toEqual(status);
  });

  it('serves cluster status, membership, leadership transfer and snapshot', async () => {
    const { client } = await setup({ snapshotChunkBytes: 100 });
    const status = await client.status();
    expect(status).toMatchObject({ self: 'm1', leader: 'm1', term: 1 });
    expect(status.members.map((m) => [m.id, m.role])).toEqual([['m1', 'leader']]);
    const added = await client.addMember({
      id: 'm2',
      raftAddress: '127.0.0.1:7002',
      apiAddress: '127.0.0.1:7102',
      wsUrl: 'ws://127.0.0.1:7202',
    });
    expect(added.members.map((m) => m.id)).toEqual(['m1', 'm2']);
    expect(added.members[1]).toMatchObject({ raftAddress: '127.0.0.1:7002', wsUrl: 'ws://127.0.0.1:7202' });
    const moved = await client.transferLeadership('m2');
    expect(moved).toMatchObject({ leader: 'm2', term: 2 });
    expect((await rejection(client.removeMember('m2'))).code).toBe('Invalid');
    expect((await client.removeMember('m1')).members.map((m) => m.id)).toEqual(['m2']);
    expect((await rejection(client.removeMember('m9'))).code).toBe('NotFound');

    for (let i = 0; i < 20; i++) await client.create(configMap(`cm${i}`));
    const chunks: Uint8Array[] = [];
    for await (const chunk of client.snapshot()) chunks.push(chunk);
    expect(chunks.length).toBeGreaterThan(5);
    const snapshot = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    expect(snapshot.resourceVersion).toBe(20);
    expect(snapshot.objects).toHaveLength(20);
  });
});

describe('gRPC API option mapping', () => {
  it('carries every option to the domain API, keeping presence (grace period 0 vs absent)', async () => {
    const api = createMemoryApi();
    const seen: unknown[] = [];
    const recording: ObjectApi = {
      ...api.objects,
      get: async (key, opts) => {
        seen.push(['get', key, opts]);
        throw new ApiError('NotFound', 'x');
      },
      list: async (kind, opts) => {
        seen.push(['list', kind, opts]);
        return { items: [], resourceVersion: '0' };
      },
      delete: async (key, opts) => {
        seen.push(['delete', key, opts]);
        throw new ApiError('NotFound', 'x');
      },
      patch: async (key, patch, opts) => {
        seen.push(['patch', key, patch, opts]);
        throw new ApiError('NotFound', 'x');
      },
      watch: async (kind, opts) => {
        seen.push(['watch', kind, opts]);
        throw new ApiError('Gone', 'x');
      },
    };
    const server = await serve(recording, api.cluster);
    const client = clientFor([server.address()]);
    const key = { kind: 'Pod', namespace: 'ns1', name: 'p' };
    await rejection(client.get(key, { consistency: 'serializable' }));
    await rejection(client.get({ kind: 'Namespace', name: 'n' }));
    await client.list('Pod', {
      namespace: 'ns1',
      labelSelector: 'a=b',
      fieldSelector: 'spec.nodeName=n1',
      limit: 5,
      continue: 'tok',
      consistency: 'linearizable',
    });
    await client.list('Pod', { limit: 1_000_000 });
    await rejection(
      client.delete(key, {
        gracePeriodSeconds: 0,
        propagationPolicy: 'Orphan',
        preconditions: { uid: 'u1', resourceVersion: '7' },
        dryRun: true,
      }),
    );
    await rejection(client.delete(key));
    await rejection(client.patch(key, { spec: { x: 1 } }, { subresource: 'status', dryRun: true }));
    await rejection(
      client.watch('Pod', {
        namespace: 'ns1',
        name: 'p',
        labelSelector: 'a=b',
        fieldSelector: 'spec.nodeName=n1',
        resourceVersion: '9',
        sendInitialEvents: false,
        allowBookmarks: true,
      }),
    );
    await rejection(client.watch('Pod'));
    expect(seen).toEqual([
      ['get', key, { consistency: 'serializable' }],
      ['get', { kind: 'Namespace', name: 'n' }, {}],
      [
        'list',
        'Pod',
        {
          namespace: 'ns1',
          labelSelector: 'a=b',
          fieldSelector: 'spec.nodeName=n1',
          limit: 5,
          continue: 'tok',
          consistency: 'linearizable',
        },
      ],
      ['list', 'Pod', { limit: apiLimits.listLimitMax }],
      [
        'delete',
        key,
        {
          gracePeriodSeconds: 0,
          propagationPolicy: 'Orphan',
          preconditions: { uid: 'u1', resourceVersion: '7' },
          dryRun: true,
        },
      ],
      ['delete', key, {}],
      ['patch', key, { spec: { x: 1 } }, { subresource: 'status', dryRun: true }],
      [
        'watch',
        'Pod',
        {
          namespace: 'ns1',
          name: 'p',
          labelSelector: 'a=b',
          fieldSelector: 'spec.nodeName=n1',
          resourceVersion: '9',
          sendInitialEvents: false,
          allowBookmarks: true,
        },
      ],
      ['watch', 'Pod', {}],
    ]);
  });

  it("streams a snapshot at the reader's pace, in order", async () => {
    const api = createMemoryApi();
    const chunkCount = 1_000;
    const chunkBytes = 32 * 1024;
    let pulled = 0;
    const cluster: ClusterApi = {
      ...api.cluster,
      snapshot: async function* () {
        for (let i = 0; i < chunkCount; i++) {
          pulled++;
          const chunk = new Uint8Array(chunkBytes);
          new DataView(chunk.buffer).setUint32(0, i);
          yield chunk;
        }
      },
    };
    const server = await serve(api.objects, cluster);
    const client = clientFor([server.address()]);
    const it = client.snapshot()[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.done).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(pulled).toBeLessThan(chunkCount / 2);
    const seen = [new DataView((first.value as Uint8Array).buffer).getUint32(0)];
    let total = (first.value as Uint8Array).byteLength;
    for (;;) {
      const r = await it.next();
      if (r.done) break;
      const chunk = r.value as Uint8Array;
      total += chunk.byteLength;
      seen.push(new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength).getUint32(0));
    }
    expect(total).toBe(chunkCount * chunkBytes);
    expect(seen).toEqual(Array.from({ length: chunkCount }, (_, i) => i));
  });
});

const allCodes: ApiErrorCode[] = [
  'NotFound',
  'AlreadyExists',
  'Conflict',
  'Invalid',
  'Gone',
  'Forbidden',
  'Unavailable',
  'ResourceExhausted',
  'Timeout',
  'Internal',
];

/** An ObjectApi whose every call fails with `error()`. */
function failingObjects(error: () => unknown): ObjectApi {
  const fail = async (): Promise<never> => {
    throw error();
  };
  return {
    create: fail,
    get: fail,
    list: fail,
    update: fail,
    updateStatus: fail,
    patch: fail,
    delete: fail,
    watch: fail,
  };
}

describe('gRPC API errors', () => {
  it.each(allCodes)('maps %s to its gRPC status and back, with field path and retry hint', async (code) => {
    const thrown = new ApiError(code, `ConfigMap default/a: spec.x: broken (${code})`, {
      fieldPath: 'spec.containers[0].image',
      retryAfterMs: 250,
    });
    const server = await serve(
      failingObjects(() => thrown),
      createMemoryApi().cluster,
    );

    const raw = await rawUnary(rawObjects(server.address()), 'Get', { kind: 'ConfigMap', name: 'a' });
    expect(raw.code).toBe(grpcStatusOfApiCode[code]);
    expect(raw.details).toBe(thrown.message);
    expect(raw.metadata.get(errorMetadataKeys.code)).toEqual([code]);
    expect(raw.metadata.get(errorMetadataKeys.fieldPath)).toEqual(['spec.containers[0].image']);
    expect(raw.metadata.get(errorMetadataKeys.retryAfterMs)).toEqual(['250']);

    const client = clientFor([server.address()]);
    for (const call of [
      () => client.get({ kind: 'ConfigMap', name: 'a' }),
      () => client.create(configMap('a')),
      () => client.watch('ConfigMap'),
    ]) {
      const err = await rejection(call());
      expect(err.code).toBe(code);
      expect(err.message).toBe(thrown.message);
      expect(err.details.fieldPath).toBe('spec.containers[0].image');
      expect(err.details.retryAfterMs).toBe(250);
    }
  });

  it('documents the gRPC codes: Gone is OUT_OF_RANGE, Conflict ABORTED, Forbidden PERMISSION_DENIED', () => {
    expect(grpcStatusOfApiCode.Gone).toBe(grpc.status.OUT_OF_RANGE);
    expect(grpcStatusOfApiCode.Conflict).toBe(grpc.status.ABORTED);
    expect(grpcStatusOfApiCode.Timeout).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(grpcStatusOfApiCode.Forbidden).toBe(grpc.status.PERMISSION_DENIED);
  });

  it('answers INTERNAL for an unexpected exception and reports it', async () => {
    const reported: unknown[] = [];
    const server = await serve(
      failingObjects(() => new TypeError('boom\nsecond line')),
      createMemoryApi().cluster,
      (err: unknown) => {
        reported.push(err);
      },
    );
    const raw = await rawUnary(rawObjects(server.address()), 'Get', { kind: 'ConfigMap', name: 'a' });
    expect(raw.code).toBe(grpc.status.INTERNAL);
    expect(raw.details).toBe('internal error: boom second line');
    expect(raw.metadata.get(errorMetadataKeys.code)).toEqual(['Internal']);
    expect(reported).toHaveLength(1);
  });

  it('maps the domain errors of the memory API: AlreadyExists, Conflict with field path, Invalid', async () => {
    const { client } = await setup();
    const a = await client.create(configMap('a'));
    expect((await rejection(client.create(configMap('a')))).code).toBe('AlreadyExists');
    await client.update({ ...a, data: { k: 'new' } });
    const conflict = await rejection(client.update({ ...a, data: { k: 'stale' } }));
    expect(conflict.code).toBe('Conflict');
    expect(conflict.details.fieldPath).toBe('metadata.resourceVersion');
    const invalid = await rejection(client.create(configMap('Bad_Name')));
    expect(invalid.code).toBe('Invalid');
    expect(invalid.details.fieldPath).toBe('metadata.name');
    const selector = await rejection(client.list('ConfigMap', { labelSelector: 'a in (' }));
    expect(selector.code).toBe('Invalid');
    expect(selector.details.fieldPath).toBe('labelSelector');
  });
});

describe('gRPC API bad requests', () => {
  it('answers typed statuses for malformed requests', async () => {
    const { server, api } = await setup();
    const raw = rawObjects(server.address());
    const expectStatus = async (method: string, req: unknown, code: grpc.status, fieldPath?: string) => {
      const err = await rawUnary(raw, method, req);
      expect(err.code, `${method} ${err.details}`).toBe(code);
      if (fieldPath !== undefined) expect(err.metadata.get(errorMetadataKeys.fieldPath)).toEqual([fieldPath]);
      return err;
    };
    await expectStatus(
      'Create',
      { object_json: Buffer.from('{"kind":') },
      grpc.status.INVALID_ARGUMENT,
      'object_json',
    );
    await expectStatus(
      'Create',
      { object_json: Buffer.from([0xff, 0xfe]) },
      grpc.status.INVALID_ARGUMENT,
      'object_json',
    );
    await expectStatus('Create', {}, grpc.status.INVALID_ARGUMENT, 'object_json');
    await expectStatus(
      'Create',
      { object_json: Buffer.from('[1,2]') },
      grpc.status.INVALID_ARGUMENT,
      'object_json',
    );
    await expectStatus(
      'Update',
      { object_json: Buffer.from('{"metadata":{}}') },
      grpc.status.INVALID_ARGUMENT,
      'kind',
    );
    await expectStatus('Get', { name: 'a' }, grpc.status.INVALID_ARGUMENT, 'kind');
    await expectStatus('Get', { kind: 'ConfigMap' }, grpc.status.INVALID_ARGUMENT, 'name');
    await expectStatus('List', {}, grpc.status.INVALID_ARGUMENT, 'kind');
    await expectStatus(
      'Patch',
      { kind: 'ConfigMap', name: 'a', patch_json: Buffer.from('nope') },
      grpc.status.INVALID_ARGUMENT,
      'patch_json',
    );
    await expectStatus(
      'Patch',
      { kind: 'ConfigMap', name: 'a', patch_json: Buffer.from('{}'), subresource: 'scale' },
      grpc.status.INVALID_ARGUMENT,
      'subresource',
    );
    await expectStatus(
      'Delete',
      { kind: 'ConfigMap', name: 'a', propagation_policy: 9 },
      grpc.status.INVALID_ARGUMENT,
      'propagation_policy',
    );
    await expectStatus(
      'Delete',
      { kind: 'ConfigMap', name: 'a', grace_period_seconds: -1 },
      grpc.status.INVALID_ARGUMENT,
      'grace_period_seconds',
    );

    // Over objectBytesMax but within the request limit: the adapter's own typed answer.
    const big = configMap('big', {}, { k: 'x'.repeat(apiLimits.objectBytesMax) });
    const tooBig = await expectStatus(
      'Create',
      { object_json: Buffer.from(JSON.stringify(big)) },
      grpc.status.RESOURCE_EXHAUSTED,
      'object_json',
    );
    expect(tooBig.metadata.get(errorMetadataKeys.code)).toEqual(['ResourceExhausted']);
    // Over the request message limit: grpc-js refuses it before the handler.
    const huge = configMap('huge', {}, { k: 'x'.repeat(apiLimits.objectBytesMax * 2) });
    await expectStatus(
      'Create',
      { object_json: Buffer.from(JSON.stringify(huge)) },
      grpc.status.RESOURCE_EXHAUSTED,
    );
    expect((await api.objects.list('ConfigMap')).items).toEqual([]);

    // The server is still fine.
    const client = clientFor([server.address()]);
    expect((await rejection(client.create(big))).code).toBe('ResourceExhausted');
    expect((await client.create(configMap('ok'))).metadata.name).toBe('ok');
  });
});

describe('gRPC API watch', () => {
  it('splits events into messages of about watchMessageBytesMax, never inside one resourceVersion', async () => {
    const api = createMemoryApi();
    const big = (name: string, rv: number): WatchEvent => ({
      type: 'DELETED',
      object: {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name, namespace: 'default', resourceVersion: String(rv) },
        data: { pad: 'x'.repeat(600) },
      } as ApiObject,
    });
    const batches = [[big('a', 1), big('b', 2), big('c', 2), big('d', 2), big('e', 3)]];
    const objects: ObjectApi = Object.create(api.objects, {
      watch: {
        value: async (): Promise<WatchStream> => ({ next: async () => batches.shift(), close: () => {} }),
      },
    });
    const server = await createApiServer({
      objects,
      cluster: api.cluster,
      listen: '127.0.0.1:0',
      watchMessageBytesMax: 1024,
      closeGraceMs: 50,
    });
    cleanups.push(() => server.close());
    const call = (rawObjects(server.address()).Watch as (req: unknown) => grpc.ClientReadableStream<unknown>)(
      {
        kind: 'ConfigMap',
      },
    );
    const messages: string[][] = [];
    await new Promise<void>((resolve, reject) => {
      call.on('data', (m: { events?: { object_json: Buffer }[] }) =>
        messages.push(
          (m.events ?? []).map((e) => {
            const o = JSON.parse(e.object_json.toString()) as ApiObject;
            return `${o.metadata.name}@${o.metadata.resourceVersion}`;
          }),
        ),
      );
      call.on('end', resolve);
      call.on('error', reject);
    });
    expect(messages).toEqual([['a@1'], ['b@2', 'c@2', 'd@2'], ['e@3']]);
  });

  it('sends the current state, then changes in order, and resumes from a version', async () => {
    const { client } = await setup();
    await client.create(configMap('a'));
    await client.create(pod('p'));
    const stream = await client.watch('ConfigMap');
    const a = await client.get({ kind: 'ConfigMap', namespace: 'default', name: 'a' });
    await client.update({ ...a, data: { k: '2' } });
    await client.create(configMap('b'));
    await client.delete({ kind: 'ConfigMap', namespace: 'default', name: 'a' });
    const events = await readEvents(stream, 4);
    expect(events.map((e) => [e.type, e.object.metadata.name, e.object.metadata.resourceVersion])).toEqual([
      ['ADDED', 'a', '1'],
      ['MODIFIED', 'a', '3'],
      ['ADDED', 'b', '4'],
      ['DELETED', 'a', '5'],
    ]);
    stream.close();
    expect(await stream.next()).toBeUndefined();

    const resumed = await client.watch('ConfigMap', { resourceVersion: '3' });
    const later = await readEvents(resumed, 2);
    expect(later.map((e) => [e.type, e.object.metadata.resourceVersion])).toEqual([
      ['ADDED', '4'],
      ['DELETED', '5'],
    ]);
    resumed.close();

    const selected = await client.watch('ConfigMap', { labelSelector: 'app=x', sendInitialEvents: false });
    await client.create(configMap('c', { app: 'y' }));
    await client.create(configMap('d', { app: 'x' }));
    expect((await readEvents(selected, 1)).map((e) => e.object.metadata.name)).toEqual(['d']);
    selected.close();
  });

  it('rejects a watch older than the kept history with Gone', async () => {
    const { client } = await setup({ historyEventsMax: 3 });
    for (let i = 0; i < 10; i++) await client.create(configMap(`cm${i}`));
    const gone = await rejection(client.watch('ConfigMap', { resourceVersion: '2' }));
    expect(gone.code).toBe('Gone');
    const ok = await client.watch('ConfigMap', { resourceVersion: '8' });
    expect((await readEvents(ok, 2)).map((e) => e.object.metadata.name)).toEqual(['cm8', 'cm9']);
    ok.close();
  });

  it('delivers the events before a server-side error, then the error', async () => {
    const api = createMemoryApi();
    const objs = [configMap('a'), configMap('b'), configMap('c')] as unknown as ApiObject[];
    const script: (WatchEvent[] | ApiError)[] = [
      [{ type: 'ADDED', object: objs[0] }],
      [
        { type: 'MODIFIED', object: objs[1] },
        { type: 'DELETED', object: objs[2] },
      ],
      new ApiError('ResourceExhausted', 'watch fell behind', { retryAfterMs: 5 }),
    ];
    const scripted: ObjectApi = {
      ...api.objects,
      watch: async () => ({
        next: async () => {
          const step = script.shift();
          if (step instanceof ApiError) throw step;
          return step;
        },
        close: () => {},
      }),
    };
    const server = await serve(scripted, api.cluster);
    const client = clientFor([server.address()]);
    const stream = await client.watch('ConfigMap');
    // Let everything arrive before reading, so the error is already in when the events are taken.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const events: WatchEvent[] = [];
    let err: ApiError | undefined;
    try {
      for (;;) {
        const batch = await stream.next();
        if (batch === undefined) break;
        events.push(...batch);
      }
    } catch (e) {
      err = e as ApiError;
    }
    expect(events.map((e) => [e.type, e.object.metadata.name])).toEqual([
      ['ADDED', 'a'],
      ['MODIFIED', 'b'],
      ['DELETED', 'c'],
    ]);
    expect(err?.code).toBe('ResourceExhausted');
    expect(err?.details.retryAfterMs).toBe(5);
  });

  it('ends the client stream with the error the domain watch ended with', async () => {
    const { api, client } = await setup();
    const stream = await client.watch('ConfigMap');
    await client.create(configMap('a'));
    expect((await readEvents(stream, 1))[0].object.metadata.name).toBe('a');
    api.objects.failWatches(new ApiError('Unavailable', 'master stepping down', { retryAfterMs: 7 }));
    const err = await rejection(stream.next());
    expect(err.code).toBe('Unavailable');
    expect(err.details.retryAfterMs).toBe(7);
  });

  it('closes the domain WatchStream when the client cancels', async () => {
    const api = createMemoryApi();
    let closed = 0;
    const spying: ObjectApi = {
      ...api.objects,
      create: (o, opts) => api.objects.create(o, opts),
      watch: async (kind, opts) => {
        const inner = await api.objects.watch(kind, opts);
        return {
          next: () => inner.next(),
          close: () => {
            closed++;
            inner.close();
          },
        };
      },
    };
    const server = await serve(spying, api.cluster);
    const client = clientFor([server.address()]);
    const stream = await client.watch('ConfigMap');
    await client.create(configMap('a'));
    expect((await readEvents(stream, 1))[0].object.metadata.name).toBe('a');
    expect(closed).toBe(0);
    stream.close();
    await expect.poll(() => closed).toBeGreaterThanOrEqual(1);
  });

  it('holds the source back for a slow reader and loses or reorders nothing (5,000 events)', async () => {
    const eventCount = 5_000;
    const api = createMemoryApi({ watchBatchEventsMax: 10 });
    let pulled = 0;
    const counting: ObjectApi = {
      ...api.objects,
      watch: async (kind, opts) => {
        const inner = await api.objects.watch(kind, opts);
        return {
          next: async () => {
            const events = await inner.next();
            pulled += events?.length ?? 0;
            return events;
          },
          close: () => inner.close(),
        };
      },
    };
    const server = await serve(counting, api.cluster);
    const client = clientFor([server.address()], { watchBufferMessagesMax: 4 });
    const stream = await client.watch('ConfigMap', { sendInitialEvents: false });
    const payload = 'x'.repeat(2048);
    for (let i = 0; i < eventCount; i++) await api.objects.create(configMap(`cm${i}`, {}, { k: payload }));

    // Nobody reads yet: the server must stop pulling once gRPC stops being writable.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const pulledWhileStalled = pulled;
    expect(pulledWhileStalled).toBeGreaterThan(0);
    expect(pulledWhileStalled).toBeLessThan(eventCount / 2);

    const events: WatchEvent[] = [];
    while (events.length < eventCount) {
      const batch = await stream.next();
      if (batch === undefined) break;
      events.push(...batch);
      if (events.length % 500 < batch.length) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(events).toHaveLength(eventCount);
    events.forEach((e, i) => {
      expect(e.type).toBe('ADDED');
      expect(e.object.metadata.name).toBe(`cm${i}`);
      expect(e.object.metadata.resourceVersion).toBe(String(i + 1));
    });
    expect(pulled).toBe(eventCount);
    stream.close();
  });
});

describe('gRPC API client failover and deadlines', () => {
  async function deadAddress(): Promise<string> {
    const s = new grpc.Server();
    const port = await new Promise<number>((resolve, reject) =>
      s.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    s.forceShutdown();
    return `127.0.0.1:${port}`;
  }

  it('skips an unreachable master for reads and writes', async () => {
    const { server } = await setup();
    const client = clientFor([await deadAddress(), server.address()]);
    await client.create(configMap('a'));
    expect((await client.get({ kind: 'ConfigMap', name: 'a' })).metadata.name).toBe('a');
    expect(client.currentAddress).toBe(server.address());
  });

  it('fails over a write when the master answered Unavailable, and says which masters it tried', async () => {
    const unavailable = new ApiError('Unavailable', 'no leader', { retryAfterMs: 100 });
    const noLeader = await serve(
      failingObjects(() => unavailable),
      createMemoryApi().cluster,
    );
    const { server, api } = await setup();
    const client = clientFor([noLeader.address(), server.address()]);
    await client.create(configMap('a'));
    expect((await api.objects.list('ConfigMap')).items).toHaveLength(1);

    const only = clientFor([noLeader.address(), await deadAddress()]);
    const err = await rejection(only.get({ kind: 'ConfigMap', name: 'a' }));
    expect(err.code).toBe('Unavailable');
    expect(err.details.retryAfterMs).toBe(100);
  });

  it('does not repeat a write on another master when the connection broke mid-call', async () => {
    const api = createMemoryApi();
    let dropping: grpc.Server | undefined;
    const breaking: ObjectApi = {
      ...api.objects,
      create: async (obj) => {
        await api.objects.create(obj);
        dropping?.forceShutdown();
        return new Promise<never>(() => {});
      },
    };
    dropping = new grpc.Server();
    const { addApiServices } = await import('./grpc-api.js');
    addApiServices(dropping, { objects: breaking, cluster: api.cluster });
    const port = await new Promise<number>((resolve, reject) =>
      dropping?.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    const other = await setup();
    const client = clientFor([`127.0.0.1:${port}`, other.server.address()]);
    const err = await rejection(client.create(configMap('a')));
    expect(err.code).toBe('Timeout');
    expect(err.message).toContain('outcome unknown');
    expect((await other.api.objects.list('ConfigMap')).items).toHaveLength(0);
    // Reads move on.
    await other.api.objects.create(configMap('b'));
    expect((await client.get({ kind: 'ConfigMap', name: 'b' })).metadata.name).toBe('b');
  });

  it('resumes a watch on the next master from the last delivered version', async () => {
    const api = createMemoryApi();
    const first = await serve(api.objects, api.cluster);
    const second = await serve(api.objects, api.cluster);
    const client = clientFor([first.address(), second.address()]);
    await api.objects.create(configMap('a'));
    const stream = await client.watch('ConfigMap', { resourceVersion: '1' });
    const initialOnly = await client.watch('ConfigMap');
    await api.objects.create(configMap('b'));
    await api.objects.create(configMap('c'));
    expect((await readEvents(stream, 2)).map((e) => e.object.metadata.name)).toEqual(['b', 'c']);
    expect((await readEvents(initialOnly, 3)).map((e) => e.object.metadata.name)).toEqual(['a', 'b', 'c']);

    await first.close();
    await api.objects.create(configMap('d'));
    await api.objects.create(configMap('e'));
    const after = await readEvents(stream, 2);
    expect(after.map((e) => [e.object.metadata.name, e.object.metadata.resourceVersion])).toEqual([
      ['d', '4'],
      ['e', '5'],
    ]);
    // A watch that began with the initial state cannot resume gap-free: the caller relists.
    expect((await rejection(initialOnly.next())).code).toBe('Unavailable');
    stream.close();
  });

  it('ends a call at its deadline with Timeout', async () => {
    const api = createMemoryApi();
    const slow: ObjectApi = { ...api.objects, get: () => new Promise<ApiObject>(() => {}) };
    const server = await serve(slow, api.cluster);
    const client = clientFor([server.address()], { deadlineMs: 200 });
    const started = Date.now();
    expect((await rejection(client.get({ kind: 'ConfigMap', name: 'a' }))).code).toBe('Timeout');
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});

describe('gRPC API health and reflection', () => {
  it('reports SERVING for the server and both services', async () => {
    const { server } = await setup();
    const Health = grpc.makeGenericClientConstructor(healthService, 'Health');
    const health = new Health(server.address(), grpc.credentials.createInsecure());
    cleanups.push(() => health.close());
    for (const service of ['', 'coxswain.api.v1.Objects', 'coxswain.api.v1.Cluster']) {
      const res = await new Promise<{ status: unknown }>((resolve, reject) =>
        (health as unknown as Record<string, (...a: unknown[]) => void>).check(
          { service },
          (err: Error | null, r: { status: unknown }) => (err ? reject(err) : resolve(r)),
        ),
      );
      expect(['SERVING', 1]).toContain(res.status);
    }
  });

  it('lists the API services through server reflection', async () => {
    const { server } = await setup();
    const reflectionProto = fileURLToPath(
      new URL(
        '../node_modules/@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto',
        import.meta.url,
      ),
    );
    const def = protoLoader.loadSync(reflectionProto, { keepCase: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } };
    };
    const client = new pkg.grpc.reflection.v1.ServerReflection(
      server.address(),
      grpc.credentials.createInsecure(),
    );
    cleanups.push(() => client.close());
    const call = (
      client as unknown as Record<string, () => grpc.ClientDuplexStream<unknown, unknown>>
    ).ServerReflectionInfo();
    const names = await new Promise<string[]>((resolve, reject) => {
      call.on('data', (res: { list_services_response?: { service: { name: string }[] } }) => {
        resolve((res.list_services_response?.service ?? []).map((s) => s.name));
        call.end();
      });
      call.on('error', reject);
      call.write({ list_services: '' });
    });
    expect(names).toEqual(expect.arrayContaining(['coxswain.api.v1.Objects', 'coxswain.api.v1.Cluster']));
  });
});

describe('gRPC API Calls stream', () => {
  function rawCalls(address: string) {
    const call = (rawObjects(address).Calls as () => grpc.ClientDuplexStream<unknown, unknown>).call(
      rawObjects(address),
    );
    const results: { id: number; ok?: { object_json: Buffer }; error?: Record<string, unknown> }[] = [];
    const messages: number[] = [];
    call.on('data', (batch: { results?: typeof results }) => {
      messages.push(batch.results?.length ?? 0);
      results.push(...(batch.results ?? []));
    });
    call.on('error', () => {});
    cleanups.push(() => call.cancel());
    return { call, results, messages };
  }

  it('answers every call of a batch by its id, with the statuses unary calls end with', async () => {
    const { server } = await setup();
    const { call, results } = rawCalls(server.address());
    const json = (o: unknown) => Buffer.from(JSON.stringify(o));
    call.write({
      calls: [
        { id: 7, create: { object_json: json(configMap('a')) } },
        { id: 8, get: { kind: 'ConfigMap', namespace: 'default', name: 'missing' } },
        { id: 9 },
      ],
    });
    await waitUntil(() => results.length === 3);
    call.write({ calls: [{ id: 10, create: { object_json: json(configMap('a')) } }] });
    await waitUntil(() => results.length === 4);
    const byId = new Map(results.map((r) => [Number(r.id), r]));
    expect(JSON.parse(byId.get(7)?.ok?.object_json.toString() ?? '{}').metadata.name).toBe('a');
    expect(byId.get(8)?.error).toMatchObject({ code: grpc.status.NOT_FOUND, error_code: 'NotFound' });
    expect(byId.get(9)?.error).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      error_code: 'Invalid',
      field_path: 'request',
    });
    expect(byId.get(10)?.error).toMatchObject({
      code: grpc.status.ALREADY_EXISTS,
      error_code: 'AlreadyExists',
    });
  });

  it('splits results into messages of about watchMessageBytesMax', async () => {
    const api = createMemoryApi();
    const server = await createApiServer({
      objects: api.objects,
      cluster: api.cluster,
      listen: '127.0.0.1:0',
      watchMessageBytesMax: 1024,
      closeGraceMs: 50,
    });
    cleanups.push(() => server.close());
    const { call, results, messages } = rawCalls(server.address());
    const json = (o: unknown) => Buffer.from(JSON.stringify(o));
    call.write({
      calls: Array.from({ length: 6 }, (_, i) => ({
        id: i + 1,
        create: { object_json: json(configMap(`big-${i}`, {}, { k: 'x'.repeat(400) })) },
      })),
    });
    await waitUntil(() => results.length === 6);
    expect(results.every((r) => r.ok !== undefined)).toBe(true);
    // Each answer is a ~600-byte object: at most one more fits under 1 KiB.
    expect(Math.max(...messages)).toBeLessThanOrEqual(2);
    expect(messages.length).toBeGreaterThanOrEqual(3);
  });

  it('refuses calls over callsInFlightMax with ResourceExhausted and a retry hint, running none of them', async () => {
    const api = createMemoryApi();
    let started = 0;
    const stuck: ObjectApi = {
      ...api.objects,
      create: () => {
        started += 1;
        return new Promise<never>(() => {});
      },
    };
    const server = await createApiServer({
      objects: stuck,
      cluster: api.cluster,
      listen: '127.0.0.1:0',
      callsInFlightMax: 2,
      closeGraceMs: 50,
    });
    cleanups.push(() => server.close());
    const client = clientFor([server.address()], { deadlineMs: 5_000 });
    // Which call arrives third is up to the connection's readiness; the first refused settles.
    const refused = await Promise.race(['a', 'b', 'c'].map((n) => rejection(client.create(configMap(n)))));
    expect(refused.code).toBe('ResourceExhausted');
    expect(refused.details.retryAfterMs).toBe(100);
    expect(started).toBe(2);
  });

  it('holds calls beyond its own callsInFlightMax in the client and sends them as results come back', async () => {
    const api = createMemoryApi();
    let running = 0;
    let runningMax = 0;
    const releases: (() => void)[] = [];
    const gated: ObjectApi = {
      ...api.objects,
      create: async (input, opts) => {
        running += 1;
        runningMax = Math.max(runningMax, running);
        await new Promise<void>((resolve) => releases.push(resolve));
        running -= 1;
        return api.objects.create(input, opts);
      },
    };
    const server = await serve(gated, api.cluster);
    const client = clientFor([server.address()], { callsInFlightMax: 2, deadlineMs: 10_000 });
    const names = ['a', 'b', 'c', 'd', 'e'];
    const created = Promise.all(names.map((n) => client.create(configMap(n))));
    for (let released = 0; released < names.length; released += 1) {
      await waitUntil(() => releases.length > released);
      // The client never has more than 2 calls at the server: the rest wait in the client.
      expect(running).toBeLessThanOrEqual(2);
      releases[released]();
    }
    expect((await created).map((o) => o.metadata.name)).toEqual(names);
    expect(runningMax).toBe(2);
  });

  it('refuses a call beyond callsWaitingMax at once, and a waiting call past its deadline is never sent', async () => {
    const api = createMemoryApi();
    const started: string[] = [];
    const stuck: ObjectApi = {
      ...api.objects,
      create: (input) => {
        started.push((input as ApiObject).metadata.name ?? '');
        return new Promise<never>(() => {});
      },
    };
    const server = await serve(stuck, api.cluster);
    const client = clientFor([server.address()], {
      callsInFlightMax: 1,
      callsWaitingMax: 1,
      deadlineMs: 300,
    });
    const first = rejection(client.create(configMap('first')));
    await waitUntil(() => started.length === 1);
    const waiting = rejection(client.create(configMap('waiting')));
    const refused = await rejection(client.create(configMap('refused')));
    expect(refused.code).toBe('ResourceExhausted');
    expect(refused.message).toMatch(/1 waiting/);
    expect((await first).code).toBe('Timeout');
    expect((await waiting).code).toBe('Timeout');
    // The first call still counts at the server (it never answered): the waiting one stays unsent.
    await new Promise((r) => setTimeout(r, 100));
    expect(started).toEqual(['first']);
  });

  it('many concurrent writes from one client all land, each answered with its own object', async () => {
    const { client, api } = await setup();
    const names = Array.from({ length: 300 }, (_, i) => `cm-${i}`);
    const created = await Promise.all(names.map((n) => client.create(configMap(n))));
    expect(created.map((o) => o.metadata.name)).toEqual(names);
    expect((await api.objects.list('ConfigMap')).items).toHaveLength(300);
  });

  it('falls back to unary calls on a master without Calls', async () => {
    const api = createMemoryApi();
    const proto = loadApiProto();
    const old = new grpc.Server();
    const { addApiServices } = await import('./grpc-api.js');
    // A server of the same API whose Objects service lacks Calls (an older master).
    const probe = new grpc.Server();
    addApiServices(probe, { objects: api.objects, cluster: api.cluster });
    const impl = (probe as unknown as { handlers: Map<string, { func: unknown }> }).handlers;
    const objectsImpl: grpc.UntypedServiceImplementation = {};
    for (const name of Object.keys(proto.objects)) {
      if (name === 'Calls') continue;
      const h = impl.get(proto.objects[name].path);
      if (h !== undefined) objectsImpl[name] = h.func as grpc.UntypedHandleCall;
    }
    old.addService(proto.objects, objectsImpl);
    const port = await new Promise<number>((resolve, reject) =>
      old.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    cleanups.push(() => old.forceShutdown());
    const client = clientFor([`127.0.0.1:${port}`]);
    expect((await client.create(configMap('a'))).metadata.name).toBe('a');
    expect((await client.get({ kind: 'ConfigMap', namespace: 'default', name: 'a' })).metadata.name).toBe(
      'a',
    );
  });

  it('unary calls still work when callStreams is off', async () => {
    const { client } = await setup({}, { callStreams: false });
    await client.create(configMap('a'));
    const err = await rejection(client.create(configMap('a')));
    expect(err.code).toBe('AlreadyExists');
  });
});

async function waitUntil(cond: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('gRPC API Calls stream at shutdown', () => {
  it('answers the calls running when the server closes, refuses new ones as not carried out, and ends the stream', async () => {
    const api = createMemoryApi();
    let release: (() => void) | undefined;
    const slow: ObjectApi = {
      ...api.objects,
      create: async (obj, opts) => {
        await new Promise<void>((r) => {
          release = r;
        });
        return api.objects.create(obj, opts);
      },
    };
    const server = await createApiServer({
      objects: slow,
      cluster: api.cluster,
      listen: '127.0.0.1:0',
      closeGraceMs: 5_000,
    });
    cleanups.push(() => server.close());
    const client = clientFor([server.address()]);
    const running = client.create(configMap('running'));
    await waitUntil(() => release !== undefined);
    const closing = server.close();
    // While draining, a new call is refused with a domain Unavailable: the client may move on.
    const err = await rejection(client.create(configMap('late')));
    expect(err.code).toBe('Unavailable');
    expect(err.message).toContain('this master is shutting down: call not carried out');
    release?.();
    expect((await running).metadata.name).toBe('running');
    const started = Date.now();
    await closing;
    // Ended when its calls were answered, not cut at the 5 s grace.
    expect(Date.now() - started).toBeLessThan(4_000);
  });
});
