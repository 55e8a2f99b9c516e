/**
 * Service environment variables, as kubelet makes them (`pkg/kubelet/envvars`): for every
 * service of the pod's namespace with a ClusterIP (not headless), when `enableServiceLinks` is
 * not false:
 *
 *   FOO_SERVICE_HOST=10.96.0.20            FOO_SERVICE_PORT=80 (the first port)
 *   FOO_SERVICE_PORT_HTTP=80               (each named port)
 *   FOO_PORT=tcp://10.96.0.20:80           (docker links, the first port)
 *   FOO_PORT_80_TCP=tcp://10.96.0.20:80    FOO_PORT_80_TCP_PROTO=tcp
 *   FOO_PORT_80_TCP_PORT=80                FOO_PORT_80_TCP_ADDR=10.96.0.20
 *
 * where FOO is the service name upper-cased with `-` as `_`. Pure: the services come in as data
 * (those that exist when the container starts).
 */

import type { Service } from '../../core/objects.js';

export interface EnvEntry {
  name: string;
  value: string;
}

/** `my-svc` → `MY_SVC`. */
export function envVarName(text: string): string {
  return text.replace(/-/g, '_').toUpperCase();
}

function hasClusterIP(svc: Service): boolean {
  const ip = svc.spec?.clusterIP;
  return ip !== undefined && ip !== '' && ip !== 'None';
}

/** The variables of one service, in kubelet's order. */
export function serviceEnvOf(svc: Service): EnvEntry[] {
  const ports = svc.spec.ports ?? [];
  if (!hasClusterIP(svc) || ports.length === 0) return [];
  const ip = svc.spec.clusterIP as string;
  const prefix = envVarName(svc.metadata.name ?? '');
  const out: EnvEntry[] = [
    { name: `${prefix}_SERVICE_HOST`, value: ip },
    { name: `${prefix}_SERVICE_PORT`, value: String(ports[0].port) },
  ];
  for (const p of ports)
    if (p.name) out.push({ name: `${prefix}_SERVICE_PORT_${envVarName(p.name)}`, value: String(p.port) });
  ports.forEach((p, i) => {
    const protocol = (p.protocol ?? 'TCP').toLowerCase();
    const url = `${protocol}://${ip}:${p.port}`;
    if (i === 0) out.push({ name: `${prefix}_PORT`, value: url });
    const at = `${prefix}_PORT_${p.port}_${protocol.toUpperCase()}`;
    out.push(
      { name: at, value: url },
      { name: `${at}_PROTO`, value: protocol },
      { name: `${at}_PORT`, value: String(p.port) },
      { name: `${at}_ADDR`, value: ip },
    );
  });
  return out;
}

/**
 * The service variables for a pod of `namespace`: its namespace's services sorted by name, or
 * none when `enableServiceLinks` is false.
 */
export function serviceEnv(
  services: readonly Service[],
  namespace: string,
  enableServiceLinks: boolean | undefined,
): EnvEntry[] {
  if (enableServiceLinks === false) return [];
  return services
    .filter((s) => (s.metadata.namespace ?? 'default') === namespace)
    .sort((a, b) => ((a.metadata.name ?? '') < (b.metadata.name ?? '') ? -1 : 1))
    .flatMap(serviceEnvOf);
}
