/**
 * `cox cluster status`: the members as the answering master sees them.
 * `cox cluster controllers`: the leader's controllers and their counters.
 */

import type { ClusterStatus, ControllersStatus } from '../actors/api.js';
import { formatTable } from './printers.js';

const dash = (v: number | undefined) => (v === undefined ? '-' : String(v));

/** ID ROLE TERM COMMIT APPLIED API WS; the leader's ID is marked with `*`. */
export function printClusterStatus(status: ClusterStatus): string {
  const rows = [['ID', 'ROLE', 'TERM', 'COMMIT', 'APPLIED', 'API', 'WS']];
  for (const m of status.members) {
    rows.push([
      m.id === status.leader ? `${m.id}*` : m.id,
      m.role,
      dash(m.term),
      dash(m.commit),
      dash(m.applied),
      m.apiAddress || '-',
      m.wsUrl || '-',
    ]);
  }
  return formatTable(rows);
}

/** LAST ERROR is cut to this many characters in the table (`-o json` has all of it). */
export const lastErrorCharsMax = 60;

function ms(v: number): string {
  return v >= 100 ? `${Math.round(v)}ms` : `${Number(v.toFixed(1))}ms`;
}

function cut(text: string | undefined, max: number): string {
  if (text === undefined || text === '') return '-';
  const line = text.replace(/\s+/g, ' ');
  return line.length > max ? `${line.slice(0, max - 3)}...` : line;
}

/**
 * NAME RUNNING RECONCILES ERRORS REQUEUES QUEUE P50 P99 RESTARTS LAST ERROR, one row per
 * controller (sorted by name), then whose controllers they are and their events' counters.
 * QUEUE is the keys waiting (not counting the ones being reconciled).
 */
export function printControllers(status: ControllersStatus): string {
  const rows = [
    ['NAME', 'RUNNING', 'RECONCILES', 'ERRORS', 'REQUEUES', 'QUEUE', 'P50', 'P99', 'RESTARTS', 'LAST ERROR'],
  ];
  for (const c of [...status.controllers].sort((a, b) => a.name.localeCompare(b.name))) {
    rows.push([
      c.name,
      c.running ? 'true' : 'false',
      String(c.reconciles),
      String(c.errors),
      String(c.requeues),
      String(c.queueDepth),
      ms(c.latencyP50Ms),
      ms(c.latencyP99Ms),
      String(c.restarts),
      cut(c.lastError, lastErrorCharsMax),
    ]);
  }
  const whose = status.running
    ? `controllers of leader ${status.leader}${status.term !== undefined ? ` (term ${status.term})` : ''}`
    : `controllers are not running on leader ${status.leader} (starting, or stepping down)`;
  const { written, dropped, failed } = status.events;
  const table = status.controllers.length > 0 ? formatTable(rows) : '';
  return `${table}${whose}; events: ${written} written, ${dropped} dropped, ${failed} failed\n`;
}
