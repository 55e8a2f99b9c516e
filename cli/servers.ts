/**
 * Where the masters are, first match wins: `--server ws://a,ws://b`, then `COX_SERVERS`, then
 * the config file (`$COX_CONFIG`, else `$COX_HOME/config.json`, else `~/.cox/config.json`, holding `{ "servers": [...] }`;
 * `cox up` writes it).
 */

import { join } from 'node:path';
import { UsageError } from './errors.js';

export interface ServerSources {
  flag?: string;
  env: Readonly<Record<string, string | undefined>>;
  homeDir: string;
  /** The file's text, or undefined when it does not exist. */
  readFile(path: string): string | undefined;
}

export interface ResolvedServers {
  servers: string[];
  /** Where they came from, for messages: `--server`, `COX_SERVERS`, or the config path. */
  source: string;
}

/** The default config file for a home directory. */
export function defaultConfigPath(homeDir: string): string {
  return join(homeDir, '.cox', 'config.json');
}

/** The config file in use: `$COX_CONFIG`, else `$COX_HOME/config.json`, else `~/.cox/config.json`. */
export function configPath(env: Readonly<Record<string, string | undefined>>, homeDir: string): string {
  if (env.COX_CONFIG) return env.COX_CONFIG;
  if (env.COX_HOME) return join(env.COX_HOME, 'config.json');
  return defaultConfigPath(homeDir);
}

/** Splits `a,b , c` into URLs, checking each is `ws://` or `wss://`. */
export function parseServerList(text: string, source: string): string[] {
  const servers = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const s of servers) checkUrl(s, source);
  return servers;
}

function checkUrl(url: string, source: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`${source}: "${url}" is not a URL (expected ws://host:port)`);
  }
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') {
    throw new UsageError(`${source}: "${url}": expected a ws:// or wss:// URL`);
  }
}

export function resolveServers(src: ServerSources): ResolvedServers {
  if (src.flag !== undefined && src.flag.trim() !== '') {
    return { servers: parseServerList(src.flag, '--server'), source: '--server' };
  }
  const env = src.env.COX_SERVERS;
  if (env !== undefined && env.trim() !== '') {
    return { servers: parseServerList(env, 'COX_SERVERS'), source: 'COX_SERVERS' };
  }
  const path = configPath(src.env, src.homeDir);
  const text = src.readFile(path);
  if (text === undefined) {
    throw new UsageError(
      `no masters known: pass --server ws://host:port, set COX_SERVERS, or run \`cox up\` (writes ${path})`,
    );
  }
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${path}: not valid JSON: ${(err as Error).message}`);
  }
  const servers = (config as { servers?: unknown })?.servers;
  if (!Array.isArray(servers) || servers.length === 0 || !servers.every((s) => typeof s === 'string')) {
    throw new UsageError(`${path}: servers: expected a non-empty list of ws:// URLs`);
  }
  for (const s of servers) checkUrl(s, `${path}: servers`);
  return { servers: servers as string[], source: path };
}
