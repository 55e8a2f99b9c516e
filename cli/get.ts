/** `cox get`: list or read objects and print them; `-w` keeps printing changes. */

import { stringify as toYaml } from 'yaml';
import {
  ApiErrorCode,
  type Consistency,
  isApiError,
  type ObjectApi,
  type WatchStream,
} from '../actors/api.js';
import { isNamespaced } from './apply.js';
import { describeError, UsageError } from './errors.js';
import type { OutputFormat, ResourceTargets } from './options.js';
import {
  columnWidths,
  formatTable,
  noResourcesMessage,
  objectRef,
  printNames,
  printStructured,
  printTable,
  refOf,
  type TableOptions,
  tableHeader,
  tableRow,
} from './printers.js';

type Obj = Record<string, unknown>;

export interface GetOptions {
  output: OutputFormat;
  namespace?: string;
  allNamespaces: boolean;
  labelSelector?: string;
  fieldSelector?: string;
  consistency?: Consistency;
  watch: boolean;
}

export interface Output {
  stdout(text: string): void;
  stderr(text: string): void;
}

/** Objects found per kind, and whether any named object failed (exit code 1). */
interface Found {
  kind: string;
  items: Obj[];
  resourceVersion?: string;
}

function namespaceFor(kind: string, opts: GetOptions): string | undefined {
  if (!isNamespaced(kind) || opts.allNamespaces) return undefined;
  return opts.namespace ?? 'default';
}

async function fetchKind(api: ObjectApi, kind: string, names: string[], opts: GetOptions, out: Output) {
  const namespace = namespaceFor(kind, opts);
  if (names.length === 0) {
    const res = await api.list(kind, {
      namespace,
      labelSelector: opts.labelSelector,
      fieldSelector: opts.fieldSelector,
      consistency: opts.consistency,
    });
    return {
      found: { kind, items: res.items as unknown as Obj[], resourceVersion: res.resourceVersion },
      failed: false,
    };
  }
  const items: Obj[] = [];
  let failed = false;
  for (const name of names) {
    try {
      items.push(
        (await api.get({ kind, namespace, name }, { consistency: opts.consistency })) as unknown as Obj,
      );
    } catch (err) {
      if (!isApiError(err)) throw err;
      failed = true;
      out.stderr(`error: ${describeError(err, refOf(kind, name), true)}\n`);
    }
  }
  return { found: { kind, items }, failed };
}

function tableOptions(opts: GetOptions, withKind: boolean, nowMs: number): TableOptions {
  return { wide: opts.output === 'wide', withNamespace: opts.allNamespaces, withKind, nowMs };
}

/** Prints what `get` found; returns the exit code. */
export async function runGet(
  api: ObjectApi,
  targets: ResourceTargets,
  opts: GetOptions,
  out: Output,
  nowMs: () => number,
): Promise<number> {
  if (opts.watch) {
    if (targets.kinds.length !== 1) throw new UsageError('get -w: watch one kind at a time');
    const kind = targets.kinds[0];
    return watchKind(api, kind, targets.names.get(kind) ?? [], opts, out, nowMs);
  }
  const found: Found[] = [];
  let failed = false;
  for (const kind of targets.kinds) {
    const r = await fetchKind(api, kind, targets.names.get(kind) ?? [], opts, out);
    found.push(r.found);
    failed ||= r.failed;
  }
  const all = found.flatMap((f) => f.items);
  const named = targets.kinds.every((k) => (targets.names.get(k) ?? []).length > 0);
  switch (opts.output) {
    case 'json':
    case 'yaml':
      if (all.length > 0 || !named)
        out.stdout(printStructured(all, opts.output, !(named && all.length === 1)));
      break;
    case 'name':
      out.stdout(printNames(all));
      break;
    case 'table':
    case 'wide': {
      const withKind = targets.kinds.length > 1;
      const tables = found
        .filter((f) => f.items.length > 0)
        .map((f) => printTable(f.kind, f.items, tableOptions(opts, withKind, nowMs())));
      out.stdout(tables.join('\n'));
      if (all.length === 0 && !failed) {
        const ns =
          targets.kinds.every(isNamespaced) && !opts.allNamespaces
            ? (opts.namespace ?? 'default')
            : undefined;
        out.stderr(`${noResourcesMessage(ns)}\n`);
      }
      break;
    }
    default: {
      const never: never = opts.output;
      throw new UsageError(`unknown output ${String(never)}`);
    }
  }
  return failed ? 1 : 0;
}

/** Prints objects one by one as a watch delivers them (tables keep the first widths, growing as needed). */
class RowPrinter {
  private widths: number[] | undefined;
  constructor(
    private readonly kind: string,
    private readonly opts: GetOptions,
    private readonly out: Output,
    private readonly nowMs: () => number,
  ) {}

  print(objects: readonly Obj[]): void {
    if (objects.length === 0) return;
    switch (this.opts.output) {
      case 'json':
        for (const o of objects) this.out.stdout(`${JSON.stringify(o, null, 2)}\n`);
        return;
      case 'yaml':
        for (const o of objects) this.out.stdout(`---\n${toYaml(o)}`);
        return;
      case 'name':
        for (const o of objects) this.out.stdout(`${objectRef(o)}\n`);
        return;
      default: {
        const t = tableOptions(this.opts, false, this.nowMs());
        const rows = objects.map((o) => tableRow(this.kind, o, t));
        const head = this.widths === undefined ? [tableHeader(this.kind, t)] : [];
        const fresh = columnWidths([...head, ...rows]);
        this.widths = fresh.map((w, i) => Math.max(w, this.widths?.[i] ?? 0));
        this.out.stdout(formatTable([...head, ...rows], this.widths));
      }
    }
  }
}

/** List, print, then watch from the list's version; relist on Gone. Ends when the stream ends. */
async function watchKind(
  api: ObjectApi,
  kind: string,
  names: string[],
  opts: GetOptions,
  out: Output,
  nowMs: () => number,
): Promise<number> {
  const printer = new RowPrinter(kind, opts, out, nowMs);
  const namespace = namespaceFor(kind, opts);
  const wanted = (o: Obj) =>
    names.length === 0 || names.includes(String((o.metadata as Obj | undefined)?.name ?? ''));
  for (;;) {
    const listed = await api.list(kind, {
      namespace,
      labelSelector: opts.labelSelector,
      fieldSelector: opts.fieldSelector,
      consistency: opts.consistency,
    });
    printer.print((listed.items as unknown as Obj[]).filter(wanted));
    let stream: WatchStream | undefined;
    try {
      stream = await api.watch(kind, {
        namespace,
        labelSelector: opts.labelSelector,
        fieldSelector: opts.fieldSelector,
        name: names.length === 1 ? names[0] : undefined,
        resourceVersion: listed.resourceVersion,
        sendInitialEvents: false,
      });
      for (;;) {
        const events = await stream.next();
        if (events === undefined) return 0;
        printer.print(
          events
            .filter((e) => e.type !== 'BOOKMARK')
            .map((e) => e.object as unknown as Obj)
            .filter(wanted),
        );
      }
    } catch (err) {
      if (isApiError(err) && err.code === ApiErrorCode.Gone) continue; // too far behind: relist
      throw err;
    } finally {
      stream?.close();
    }
  }
}
