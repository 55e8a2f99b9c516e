/**
 * `cox image build-base` and `cox image build DIR -t NAME`: images on this machine's Docker
 * engine, which the docker runtime of `cox agent` runs. No registry is reachable here, so
 * images are built locally: the base image `coxswain/busybox` (FROM scratch with Debian's
 * static busybox; agents also build it on first use) and images from Dockerfile directories.
 * Loads dockerode and node-agent/ lazily, as `cox agent` does.
 */

import type { Command } from 'commander';

/** Where the verbs print their one result line. */
export interface ImageOutput {
  stdout(text: string): void;
}

/** Failures talking to the engine, as one line naming what was being done. */
async function withEngine<T>(what: string, run: () => Promise<T>): Promise<T> {
  const { ImageBuildError } = await import('../node-agent/images.js');
  try {
    return await run();
  } catch (err) {
    if (err instanceof ImageBuildError) throw err;
    const text = (err instanceof Error ? err.message : String(err)).trim().replace(/\s*\n\s*/g, '; ');
    throw new ImageBuildError(`${what}: the Docker engine: ${text}`);
  }
}

export function registerImageCommands(program: Command, out: ImageOutput): void {
  const image = program
    .command('image')
    .description("images on this machine's Docker engine (built here: no registry is reachable)");
  image
    .command('build-base')
    .description("build the base image coxswain/busybox FROM scratch with Debian's static busybox")
    .option('--busybox <path>', 'a statically linked busybox (default: /bin/busybox of busybox-static)')
    .action(async (o: { busybox?: string }) => {
      const { baseImage, ensureBaseImage } = await import('../node-agent/images.js');
      const { default: Docker } = await import('dockerode');
      const id = await withEngine(`building ${baseImage}`, () =>
        ensureBaseImage(new Docker(), {
          force: true,
          ...(o.busybox !== undefined ? { busyboxPath: o.busybox } : {}),
        }),
      );
      out.stdout(`image ${baseImage} built (${id})\n`);
    });
  image
    .command('build')
    .description('build an image from a directory holding a Dockerfile (its .dockerignore applies)')
    .argument('<dir>')
    .requiredOption('-t, --tag <name>', 'the name of the image, name[:tag]')
    .action(async (dir: string, o: { tag: string }) => {
      const { buildImage } = await import('../node-agent/images.js');
      const { default: Docker } = await import('dockerode');
      const id = await withEngine(`building ${o.tag} from ${dir}`, () =>
        buildImage(new Docker(), dir, o.tag),
      );
      out.stdout(`image ${o.tag} built (${id})\n`);
    });
}
