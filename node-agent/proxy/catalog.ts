/**
 * The agent's view of Services and Endpoints: list+watch of both kinds (all namespaces), kept in
 * maps by `namespace/name`. A watch that ends is resumed from the last version seen; a resume
 * refused with Gone relists (and replaces the kind's objects whole); other errors back off and
 * resume. `onChange` is called after every change once both kinds were listed (the first call
 * covers everything listed).
 *
 * It is the proxy's and the DNS zone's input, and the source of service environment variables.
 * Objects are kept as received: never mutate them.
 */

import type { ObjectApi, WatchEvent } from '../../actors/api.js';
import { ApiErrorCode, isApiError } from '../../actors/api.js';
import type { Endpoints, Service } from '../../core/objects.js';
import type { DnsView } from './dns-zone.js';

export interface CatalogOptions {
  api: ObjectApi;
  log: (line: string) => void;
  /** First and largest wait after a failed list or watch. */
  retryBackoffMsMin?: number;
  retryBackoffMsMax?: number;
}

export type CatalogKind = 'Service' | 'Endpoints';
type Kind = CatalogKind;

function keyOf(ns: string | undefined, name: string | undefined): string {
  return `${ns ?? 'default'}/${name ?? ''}`;
}

export class ServiceCatalog implements DnsView {
  private readonly servicesByKey = new Map<string, Service>();
  private readonly endpointsByKey = new Map<string, Endpoints>();
  /** Services per namespace (count), for NODATA vs NXDOMAIN. */
  private readonly namespaces = new Map<string, number>();
  private readonly listed = new Set<Kind>();
  private readonly closers = new Set<() => void>();
  private readonly loops: Promise<void>[] = [];
  private stopped = false;
  private listener: (() => void) | undefined;
  version = 0;
  /** Per kind, the resourceVersion (a Raft index) its objects here are current at. */
  readonly resourceVersions: Record<Kind, number> = { Service: 0, Endpoints: 0 };

  constructor(private readonly opts: CatalogOptions) {}

  start(onChange: () => void): void {
    this.listener = onChange;
    for (const kind of ['Service', 'Endpoints'] as const) this.loops.push(this.follow(kind));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const close of this.closers) close();
    await Promise.all(this.loops);
  }

  /** Both kinds have been listed at least once. */
  get ready(): boolean {
    return this.listed.size === 2;
  }

  service(namespace: string, name: string): Service | undefined {
    return this.servicesByKey.get(`${namespace}/${name}`);
  }

  endpoints(namespace: string, name: string): Endpoints | undefined {
    return this.endpointsByKey.get(`${namespace}/${name}`);
  }

  hasNamespace(namespace: string): boolean {
    return (this.namespaces.get(namespace) ?? 0) > 0;
  }

  services(): Iterable<Service> {
    return this.servicesByKey.values();
  }

  /** The services of one namespace, sorted by name. */
  servicesIn(namespace: string): Service[] {
    return [...this.servicesByKey.values()]
      .filter((s) => (s.metadata.namespace ?? 'default') === namespace)
      .sort((a, b) => ((a.metadata.name ?? '') < (b.metadata.name ?? '') ? -1 : 1));
  }

  get size(): { services: number; endpoints: number } {
    return { services: this.servicesByKey.size, endpoints: this.endpointsByKey.size };
  }

  private noteVersion(kind: Kind, rv: string | undefined): void {
    const n = Number(rv);
    if (Number.isFinite(n) && n > this.resourceVersions[kind]) this.resourceVersions[kind] = n;
  }

  private changed(): void {
    this.version += 1;
    if (this.ready) this.listener?.();
  }

  private put(kind: Kind, obj: Service | Endpoints): void {
    const key = keyOf(obj.metadata.namespace, obj.metadata.name);
    if (kind === 'Service') {
      if (!this.servicesByKey.has(key)) this.countNamespace(obj.metadata.namespace, 1);
      this.servicesByKey.set(key, obj as Service);
    } else this.endpointsByKey.set(key, obj as Endpoints);
  }

  private remove(kind: Kind, obj: { metadata: { namespace?: string; name?: string } }): void {
    const key = keyOf(obj.metadata.namespace, obj.metadata.name);
    if (kind === 'Service') {
      if (this.servicesByKey.delete(key)) this.countNamespace(obj.metadata.namespace, -1);
    } else this.endpointsByKey.delete(key);
  }

  private countNamespace(ns: string | undefined, by: number): void {
    const k = ns ?? 'default';
    const n = (this.namespaces.get(k) ?? 0) + by;
    if (n <= 0) this.namespaces.delete(k);
    else this.namespaces.set(k, n);
  }

  private replaceAll(kind: Kind, items: readonly (Service | Endpoints)[], rv: string): void {
    // A relist may go back in time only if the server lost history; the list is the truth.
    this.resourceVersions[kind] = Number(rv) || 0;
    const map = kind === 'Service' ? this.servicesByKey : this.endpointsByKey;
    for (const obj of [...map.values()]) this.remove(kind, obj);
    for (const obj of items) this.put(kind, obj);
    this.listed.add(kind);
    this.changed();
  }

  private onEvent(kind: Kind, e: WatchEvent): void {
    this.noteVersion(kind, e.object.metadata?.resourceVersion);
    if (e.type === 'BOOKMARK') return;
    if (e.type === 'DELETED') this.remove(kind, e.object as Service | Endpoints);
    else this.put(kind, e.object as Service | Endpoints);
    this.changed();
  }

  private async follow(kind: Kind): Promise<void> {
    const min = this.opts.retryBackoffMsMin ?? 200;
    const max = this.opts.retryBackoffMsMax ?? 5_000;
    let backoff = min;
    let rv: string | undefined;
    while (!this.stopped) {
      try {
        if (rv === undefined) {
          const list = await this.opts.api.list(kind);
          if (this.stopped) return;
          this.replaceAll(kind, list.items as unknown as (Service | Endpoints)[], list.resourceVersion);
          rv = list.resourceVersion;
        }
        const w = await this.opts.api.watch(kind, { resourceVersion: rv, allowBookmarks: true });
        const close = () => w.close();
        this.closers.add(close);
        if (this.stopped) w.close();
        let delivered = 0;
        try {
          for (;;) {
            const events = await w.next();
            if (events === undefined) break;
            delivered += events.length;
            for (const e of events) {
              this.onEvent(kind, e);
              rv = e.object.metadata?.resourceVersion ?? rv;
            }
            backoff = min;
          }
        } finally {
          this.closers.delete(close);
        }
        // A watch the server ends at once, again and again, must not spin.
        if (delivered === 0 && !this.stopped) await new Promise((r) => setTimeout(r, min));
      } catch (err) {
        if (this.stopped) return;
        if (isApiError(err) && err.code === ApiErrorCode.Gone) {
          this.opts.log(`proxy: ${kind} watch from version ${rv} is too old; relisting`);
          rv = undefined;
          continue;
        }
        this.opts.log(
          `proxy: ${kind} watch: ${err instanceof Error ? err.message : String(err)}; retrying in ${backoff} ms`,
        );
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(max, backoff * 2);
      }
    }
  }
}
