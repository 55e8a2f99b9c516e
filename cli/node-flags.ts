/**
 * Node.js flags of Coxswain's long-running processes (masters, node agents, a hollow fleet),
 * for whatever starts them: `cox up`, the test clusters, the benchmarks; `cli/bin.mjs` carries
 * them in its `#!` line for an operator who runs `cox master` directly.
 *
 * `--max-semi-space-size=32`: V8's young generation may grow to 32 MiB per semi-space. A
 * master allocates short-lived objects for every write (a decoded request, its log record,
 * watch events, an actor message) and a smaller young generation promotes many of them to
 * the old one, whose collections are the expensive ones. Measured with `bench:scheduler`
 * (3,000 pods, six runs each way, interleaved): 5.6–5.8 ms of CPU per pod against 6.2–7.0.
 */
export const serverNodeFlags: readonly string[] = ['--max-semi-space-size=32'];
