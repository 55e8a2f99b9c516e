/**
 * Node.js flags of Coxswain's long-running processes (masters, node agents, a hollow fleet),
 * for whatever starts them: `cox up`, the test clusters, the benchmarks; `cli/bin.mjs` carries
 * `serverNodeFlags` in its `#!` line for an operator who runs `cox master` directly.
 *
 * `--max-semi-space-size=32`: V8's young generation may grow to 32 MiB per semi-space. A
 * master allocates short-lived objects for every write (a decoded request, its log record,
 * watch events, an actor message) and a smaller young generation promotes many of them to
 * the old one, whose collections are the expensive ones. Measured with `bench:scheduler`
 * (3,000 pods, six runs each way, interleaved): 5.6–5.8 ms of CPU per pod against 6.2–7.0.
 */
export const serverNodeFlags: readonly string[] = ['--max-semi-space-size=32'];

/**
 * The flags of a process that shares the machine with the rest of its cluster: `cox up` (three
 * masters and the agents on one machine), the test clusters and the benchmarks.
 *
 * `--single-threaded-gc`: V8 collects on the process's own thread only. By default each process
 * also runs collector threads (parallel scavenges and marking, concurrent marking and sweeping),
 * which pay off on a machine with cores to spare; with four busy processes on two cores they
 * only compete with the other processes' main threads and add their own synchronisation. Measured
 * with `bench:scheduler`, interleaved with the default: at 10,000 pods 427 / 417 / 461 against
 * 302 / 393 / 425 pods/s and 4.18–4.79 against 4.61–5.16 ms of CPU per pod; at 30,000 pods
 * 447 / 405 against 401 / 353 pods/s and 4.42 / 4.73 against 4.68 / 5.33 ms. A collection
 * pauses its process for longer (Raft terms at 30,000 pods 3 / 5 against 2 / 3). A master started
 * by hand on a machine of its own (`cli/bin.mjs`) keeps the default.
 */
export const colocatedNodeFlags: readonly string[] = [...serverNodeFlags, '--single-threaded-gc'];
