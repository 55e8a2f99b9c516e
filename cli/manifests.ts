/**
 * Manifests → API objects. `parseManifests` is pure (text in, objects out); `readManifests`
 * reads files, directories (their `.yaml`, `.yml` and `.json` files, sorted) and stdin (`-`)
 * through the given file access.
 *
 * A file holds one or more YAML documents (JSON is YAML too); a `kind: List` document
 * contributes its `items`. Empty documents are skipped. Every problem is a ManifestError naming
 * the file, the document (1-based) and the field: `app.yaml: document 2: metadata.name: required`.
 */

import { parseAllDocuments } from 'yaml';
import { resolveKindName } from '../core/kind-names.js';
import { ManifestError } from './errors.js';

/** One object of a manifest, with where it came from. */
export interface ManifestObject {
  object: Record<string, unknown>;
  /** `file.yaml: document 2` */
  source: string;
}

export const manifestLimits = {
  /** Documents in one file. */
  documentsPerFileMax: 10_000,
  /** Bytes of one file. */
  fileBytesMax: 32 * 1024 * 1024,
};

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks one object and returns it with its Kind normalized (`deployment` → `Deployment`). */
function checkObject(value: unknown, where: string): Record<string, unknown> {
  if (!isRecord(value))
    throw new ManifestError(`${where}: expected a mapping with apiVersion, kind and metadata`);
  if (typeof value.kind !== 'string' || value.kind === '')
    throw new ManifestError(`${where}: kind: required`);
  const kind = resolveKindName(value.kind);
  if (kind === undefined) throw new ManifestError(`${where}: kind: unknown kind "${value.kind}"`);
  const meta = value.metadata;
  if (!isRecord(meta)) throw new ManifestError(`${where}: metadata: required`);
  const named = typeof meta.name === 'string' && meta.name !== '';
  const generated = typeof meta.generateName === 'string' && meta.generateName !== '';
  if (!named && !generated) throw new ManifestError(`${where}: metadata.name: required`);
  if (meta.namespace !== undefined && typeof meta.namespace !== 'string') {
    throw new ManifestError(`${where}: metadata.namespace: must be a string`);
  }
  return { ...value, kind };
}

/** The objects in one file's text, in order. */
export function parseManifests(text: string, file: string): ManifestObject[] {
  if (text.length > manifestLimits.fileBytesMax) {
    throw new ManifestError(`${file}: larger than fileBytesMax (${manifestLimits.fileBytesMax} bytes)`);
  }
  const docs = parseAllDocuments(text, { prettyErrors: false });
  const list = Array.isArray(docs) ? docs : [docs];
  if (list.length > manifestLimits.documentsPerFileMax) {
    throw new ManifestError(
      `${file}: more than documentsPerFileMax (${manifestLimits.documentsPerFileMax}) documents`,
    );
  }
  const out: ManifestObject[] = [];
  list.forEach((doc, i) => {
    const where = `${file}: document ${i + 1}`;
    if (doc.errors.length > 0) {
      const e = doc.errors[0];
      const line = e.linePos?.[0] ? ` (line ${e.linePos[0].line})` : '';
      throw new ManifestError(`${where}${line}: ${e.message.split('\n')[0]}`);
    }
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) return;
    if (isRecord(value) && typeof value.kind === 'string' && /^[A-Za-z]*List$/.test(value.kind)) {
      if (!Array.isArray(value.items))
        throw new ManifestError(`${where}: items: required in a ${value.kind}`);
      value.items.forEach((item, j) => {
        const itemWhere = `${where}: items[${j}]`;
        out.push({ object: checkObject(item, itemWhere), source: itemWhere });
      });
      return;
    }
    out.push({ object: checkObject(value, where), source: where });
  });
  return out;
}

/** File access for {@link readManifests}. */
export interface ManifestFiles {
  /** undefined when the path is not a directory; else its entry names. */
  listDir(path: string): string[] | undefined;
  readFile(path: string): string;
  readStdin(): Promise<string>;
  join(dir: string, name: string): string;
}

const manifestFile = /\.(ya?ml|json)$/i;

/** The objects of every `-f` path, in order: files as given, directory entries sorted, `-` is stdin. */
export async function readManifests(
  paths: readonly string[],
  files: ManifestFiles,
): Promise<ManifestObject[]> {
  const out: ManifestObject[] = [];
  for (const path of paths) {
    if (path === '-') {
      out.push(...parseManifests(await files.readStdin(), 'stdin'));
      continue;
    }
    const entries = files.listDir(path);
    const filePaths =
      entries === undefined
        ? [path]
        : entries
            .filter((e) => manifestFile.test(e))
            .sort()
            .map((e) => files.join(path, e));
    for (const f of filePaths) {
      let text: string;
      try {
        text = files.readFile(f);
      } catch (err) {
        throw new ManifestError(
          `${f}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        );
      }
      out.push(...parseManifests(text, f));
    }
  }
  return out;
}
