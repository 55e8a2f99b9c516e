/**
 * Images built on this machine (no registry is reachable): the base image
 * `coxswain/busybox` is `FROM scratch` plus Debian's statically linked busybox, with busybox's
 * applets linked into /bin. Built on first use, or by `cox image build-base`. Other images are
 * built from a Dockerfile directory (`buildImage`).
 */

import { copyFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import type Docker from 'dockerode';

export const baseImage = 'coxswain/busybox:latest';

/** Where Debian's busybox-static puts its binary, then other usual places. */
export const busyboxCandidates = ['/bin/busybox', '/usr/bin/busybox'] as const;

export class ImageBuildError extends Error {
  override readonly name = 'ImageBuildError';
}

/** Whether an ELF file has no program interpreter (is statically linked). */
export function isStaticElf(bytes: Uint8Array): boolean {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46) return false;
  const is64 = b[4] === 2;
  const little = b[5] === 1;
  const u16 = (o: number) => (little ? b.readUInt16LE(o) : b.readUInt16BE(o));
  const u32 = (o: number) => (little ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const phoff = is64 ? Number(little ? b.readBigUInt64LE(0x20) : b.readBigUInt64BE(0x20)) : u32(0x1c);
  const phentsize = u16(is64 ? 0x36 : 0x2a);
  const phnum = u16(is64 ? 0x38 : 0x2c);
  for (let i = 0; i < phnum; i += 1) {
    const at = phoff + i * phentsize;
    if (at + 4 > b.length) return false;
    if (u32(at) === 3) return false; // PT_INTERP: dynamically linked
  }
  return true;
}

/** The first statically linked busybox found, or an error saying how to get one. */
export async function findStaticBusybox(candidates: readonly string[] = busyboxCandidates): Promise<string> {
  for (const path of candidates) {
    const bytes = await readFile(path).catch(() => undefined);
    if (bytes !== undefined && isStaticElf(bytes)) return path;
  }
  throw new ImageBuildError(
    `no statically linked busybox in ${candidates.join(', ')}: install Debian's busybox-static (apt-get install -y busybox-static)`,
  );
}

const dockerfile = `FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/busybox", "mkdir", "-p", "/tmp", "/etc", "/var/www"]
RUN ["/bin/sh", "-c", "echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd && echo 'root:x:0:' > /etc/group"]
`;

/** The id of `image` in the engine, or undefined when it has none of that name. */
export async function imageId(docker: Docker, image: string): Promise<string | undefined> {
  try {
    return (await docker.getImage(image).inspect()).Id;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return undefined;
    throw err;
  }
}

/** Whether `image` exists in the engine. */
export async function hasImage(docker: Docker, image: string): Promise<boolean> {
  return (await imageId(docker, image)) !== undefined;
}

/** Builds the base image unless it exists (or always, with `force`); resolves with its id. */
export async function ensureBaseImage(
  docker: Docker,
  opts: { force?: boolean; busyboxPath?: string } = {},
): Promise<string> {
  if (!opts.force) {
    const id = await imageId(docker, baseImage);
    if (id !== undefined) return id;
  }
  const busybox = opts.busyboxPath ?? (await findStaticBusybox());
  const dir = await mkdtemp(join(tmpdir(), 'cox-base-image-'));
  try {
    await copyFile(busybox, join(dir, 'busybox'));
    await writeFile(join(dir, 'Dockerfile'), dockerfile);
    const stream = await docker.buildImage(
      { context: dir, src: ['Dockerfile', 'busybox'] },
      { t: baseImage },
    );
    const output = await new Promise<unknown[]>((resolve, reject) =>
      docker.modem.followProgress(stream, (err: Error | null, res: unknown[]) =>
        err ? reject(err) : resolve(res),
      ),
    );
    const failure = output.find((o) => typeof o === 'object' && o !== null && 'error' in o) as
      | { error: string }
      | undefined;
    if (failure) throw new ImageBuildError(`building ${baseImage}: ${failure.error}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return (await docker.getImage(baseImage).inspect()).Id;
}

/** Files of a build context are listed up to this many; a bigger directory is a mistake. */
const buildContextEntriesMax = 10_000;

/**
 * The build context of `dir`, as paths relative to it ('/'-separated): every file and symlink,
 * and empty directories. Not directories with content: the tar packer would add their files twice.
 */
export async function listBuildContext(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const parents = new Set(entries.map((e) => e.parentPath ?? e.path));
  const paths = entries
    .filter((e) => !e.isDirectory() || !parents.has(join(e.parentPath ?? e.path, e.name)))
    .map((e) =>
      relative(dir, join(e.parentPath ?? e.path, e.name))
        .split(sep)
        .join('/'),
    )
    .sort();
  if (paths.length > buildContextEntriesMax) {
    throw new ImageBuildError(
      `build context ${dir}: ${paths.length} entries, more than ${buildContextEntriesMax}`,
    );
  }
  return paths;
}

/** One line of the classic builder's JSON progress stream. */
interface BuildProgress {
  stream?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: { ID?: string };
}

/**
 * Builds `tag` from the Dockerfile directory `dir` (its `.dockerignore` applies) and resolves
 * with the image id. A failed step is an ImageBuildError of one line naming the step, e.g.
 * `building demo:1 from ./web: step 2/3 "RUN false" failed: ... returned a non-zero code: 1`.
 */
export async function buildImage(docker: Docker, dir: string, tag: string): Promise<string> {
  const what = `building ${tag} from ${dir}`;
  const files = await listBuildContext(dir).catch((err: unknown) => {
    throw err instanceof ImageBuildError ? err : new ImageBuildError(`${what}: ${(err as Error).message}`);
  });
  if (!files.includes('Dockerfile')) throw new ImageBuildError(`${what}: no Dockerfile in the directory`);
  let output: BuildProgress[];
  try {
    const stream = await docker.buildImage({ context: dir, src: files }, { t: tag, rm: true, forcerm: true });
    output = await new Promise<BuildProgress[]>((resolve, reject) =>
      docker.modem.followProgress(stream, (err: Error | null, res: BuildProgress[]) =>
        err ? reject(err) : resolve(res),
      ),
    );
  } catch (err) {
    throw new ImageBuildError(`${what}: ${oneLine((err as Error).message)}`);
  }
  let step: string | undefined;
  for (const line of output) {
    const started = /^Step (\d+\/\d+) : (.*)$/m.exec(line.stream ?? '');
    if (started) step = `step ${started[1]} "${started[2].trim()}"`;
    const error = line.error ?? line.errorDetail?.message;
    if (error !== undefined) {
      throw new ImageBuildError(`${what}: ${step === undefined ? '' : `${step} failed: `}${oneLine(error)}`);
    }
  }
  return (await docker.getImage(tag).inspect()).Id;
}

function oneLine(text: string): string {
  return text.trim().replace(/\s*\n\s*/g, '; ');
}
