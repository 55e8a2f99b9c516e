/** `cox cluster status`: the members as the answering master sees them. */

import type { ClusterStatus } from '../actors/api.js';
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
