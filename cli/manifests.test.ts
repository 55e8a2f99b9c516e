import { describe, expect, it } from 'vitest';
import { ManifestError } from './errors.js';
import { type ManifestFiles, parseManifests, readManifests } from './manifests.js';

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
`;

describe('parseManifests', () => {
  it('reads every document in order, skipping empty ones', () => {
    const text = `${deployment}---\n---\n# only a comment\n---\napiVersion: v1\nkind: configmap\nmetadata: {name: cfg}\ndata: {a: "1"}\n`;
    const objs = parseManifests(text, 'app.yaml');
    expect(objs.map((o) => [o.object.kind, (o.object.metadata as { name: string }).name, o.source])).toEqual([
      ['Deployment', 'web', 'app.yaml: document 1'],
      ['ConfigMap', 'cfg', 'app.yaml: document 4'],
    ]);
    expect(objs[0].object.spec).toEqual({ replicas: 2 });
  });
  it('reads JSON and flattens a List', () => {
    const text = JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [
        { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'a' } },
        { apiVersion: 'v1', kind: 'Pod', metadata: { generateName: 'b-' } },
      ],
    });
    const objs = parseManifests(text, 'l.json');
    expect(objs.map((o) => o.source)).toEqual([
      'l.json: document 1: items[0]',
      'l.json: document 1: items[1]',
    ]);
  });
  it('names the file, document and field of a problem', () => {
    expect(() => parseManifests(`${deployment}---\nkind: Pod\nmetadata: {}\n`, 'a.yaml')).toThrow(
      'a.yaml: document 2: metadata.name: required',
    );
    expect(() => parseManifests('metadata: {name: x}\n', 'a.yaml')).toThrow(
      'a.yaml: document 1: kind: required',
    );
    expect(() => parseManifests('kind: Widget\nmetadata: {name: x}\n', 'a.yaml')).toThrow(
      'a.yaml: document 1: kind: unknown kind "Widget"',
    );
    expect(() => parseManifests('- 1\n- 2\n', 'a.yaml')).toThrow(/document 1: expected a mapping/);
    expect(() => parseManifests('a: [\n', 'a.yaml')).toThrow(ManifestError);
  });
});

describe('readManifests', () => {
  const tree: Record<string, string | string[]> = {
    dir: ['b.yaml', 'a.json', 'notes.txt'],
    'dir/a.json': '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}',
    'dir/b.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n',
    'one.yaml': 'apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n',
  };
  const files: ManifestFiles = {
    listDir: (p) => (Array.isArray(tree[p]) ? (tree[p] as string[]) : undefined),
    readFile: (p) => {
      const t = tree[p];
      if (typeof t !== 'string') throw Object.assign(new Error('missing'), { code: 'ENOENT' });
      return t;
    },
    readStdin: async () => 'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n',
    join: (d, n) => `${d}/${n}`,
  };
  it('reads files, sorted manifest files of directories, and stdin', async () => {
    const objs = await readManifests(['one.yaml', 'dir', '-'], files);
    expect(objs.map((o) => (o.object.metadata as { name: string }).name)).toEqual(['s', 'a', 'b', 'p']);
    expect(objs[3].source).toBe('stdin: document 1');
  });
  it('names a file it cannot read', async () => {
    await expect(readManifests(['nope.yaml'], files)).rejects.toThrow('nope.yaml: cannot read: ENOENT');
  });
});
