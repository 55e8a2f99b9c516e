import { describe, expect, it } from 'vitest';
import { UsageError } from './errors.js';
import { resolveServers } from './servers.js';

const files = (map: Record<string, string>) => (p: string) => map[p];

describe('resolveServers', () => {
  it('prefers the flag, then COX_SERVERS, then the config file', () => {
    const readFile = files({ '/h/.cox/config.json': '{"servers":["ws://c:1"]}' });
    const env = { COX_SERVERS: 'ws://e:1, ws://e:2' };
    expect(resolveServers({ flag: 'ws://f:1,ws://f:2', env, homeDir: '/h', readFile }).servers).toEqual([
      'ws://f:1',
      'ws://f:2',
    ]);
    expect(resolveServers({ env, homeDir: '/h', readFile })).toEqual({
      servers: ['ws://e:1', 'ws://e:2'],
      source: 'COX_SERVERS',
    });
    expect(resolveServers({ env: {}, homeDir: '/h', readFile }).servers).toEqual(['ws://c:1']);
  });
  it('reads $COX_CONFIG instead of the default file', () => {
    const readFile = files({ '/x.json': '{"servers":["ws://x:1"]}' });
    expect(resolveServers({ env: { COX_CONFIG: '/x.json' }, homeDir: '/h', readFile }).source).toBe(
      '/x.json',
    );
  });
  it('explains what to do when no master is known', () => {
    expect(() => resolveServers({ env: {}, homeDir: '/h', readFile: files({}) })).toThrow(
      /no masters known: pass --server.*cox up.*\/h\/.cox\/config.json/,
    );
  });
  it('rejects bad URLs and bad config files', () => {
    expect(() => resolveServers({ flag: 'http://a:1', env: {}, homeDir: '/h', readFile: files({}) })).toThrow(
      UsageError,
    );
    const bad = files({ '/h/.cox/config.json': '{"servers":[]}' });
    expect(() => resolveServers({ env: {}, homeDir: '/h', readFile: bad })).toThrow(/servers: expected/);
    const broken = files({ '/h/.cox/config.json': '{' });
    expect(() => resolveServers({ env: {}, homeDir: '/h', readFile: broken })).toThrow(/not valid JSON/);
  });
});
