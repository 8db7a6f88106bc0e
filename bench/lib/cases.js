// The scenarios and their sizes: the full benchmark (issue 5) and `--quick`, a smoke run of the
// same code paths small enough for CI (< 30 s; CI must never assert on its timings).

export const VARIANTS = ['raw', 'raw-joined', 'fastify-raw', 'fastify-sse', 'fastify-sse-v2', 'better-sse', 'ours']
/**
 * Scenarios where `raw-joined` does the same work the fastest way we know, so its figure is the
 * ceiling (S1-S3); in S4 it is just another server without queues.
 */
export const PROBED = ['s1', 's2', 's3']
/** Not competitors: the baselines, the ceiling probe and ourselves (the summary's "best peer" skips them). */
export const NOT_PEERS = ['raw', 'raw-joined', 'fastify-raw', 'ours', 'ours-metrics']
/** Run only when asked for (`--variants` or `--metrics`): ours with metrics collected. */
export const EXTRA_VARIANTS = ['ours-metrics']

/** Display names. */
export const LABEL = {
  raw: 'raw node:http',
  'fastify-raw': 'fastify-raw (hijacked)',
  'fastify-sse': '@fastify/sse',
  'fastify-sse-v2': 'fastify-sse-v2',
  'better-sse': 'better-sse',
  ours: 'fastify-sse-stream',
  'ours-metrics': 'fastify-sse-stream + metrics',
  'raw-joined': 'ceiling probe (raw node:http, joined)'
}

export function cases (quick) {
  const s1 = quick ? 2_000 : 200_000
  const fan = quick ? [50] : [1_000, 5_000]
  const events = quick ? 20 : 100
  return [
    { id: 'S1-tokens', scenario: 's1', title: `S1 throughput: ${s1} events of 8-byte tokens, one connection`, params: { kind: 'tokens', n: s1 } },
    { id: 'S1-json', scenario: 's1', title: `S1 throughput: ${s1} events of 1 KiB JSON, one connection`, params: { kind: 'json', n: s1 } },
    ...fan.flatMap((conns) => [
      { id: `S2-${conns}-b2b`, scenario: 's2', fanOut: true, title: `S2 fan-out: ${conns} connections, ${events} events back to back`, params: { conns, events, paceMs: 0 } },
      // As events from an upstream arrive: one per turn of the event loop (`await setImmediate()` between publishes).
      { id: `S2-${conns}-interleaved`, scenario: 's2', fanOut: true, title: `S2 fan-out: ${conns} connections, ${events} events one per event-loop turn`, params: { conns, events, paceMs: 0, batch: 1 } },
      { id: `S2-${conns}-paced`, scenario: 's2', fanOut: true, title: `S2 fan-out: ${conns} connections, ${events} events one every 5 ms`, params: { conns, events, paceMs: 5 } }
    ]),
    { id: 'S3-idle', scenario: 's3', fanOut: true, title: `S3 idle memory: ${quick ? 100 : 5_000} connections`, params: { conns: quick ? 100 : 5_000 } },
    { id: 'S4-generator', scenario: 's4', title: `S4a slow client: reads nothing for ${quick ? 0.5 : 10} s while a generator offers ${quick ? 2 : 50} MB`, params: { mode: 'generator', mb: quick ? 2 : 50, pauseMs: quick ? 500 : 10_000 } },
    { id: 'S4-broadcast', scenario: 's4', fanOut: true, title: `S4b slow client: reads nothing for ${quick ? 0.5 : 10} s while a broadcast offers ${quick ? 2 : 50} MB`, params: { mode: 'broadcast', mb: quick ? 2 : 50, pauseMs: quick ? 500 : 10_000 } }
  ]
}

/** Columns per case: [metric, heading, decimals, show the ratio to raw]. */
export function columns (c) {
  if (c.scenario === 's1') {
    return [
      ['eventsPerSec', 'events/s', 0, true],
      ['dataMBps', 'data MB/s', 1, true],
      ['serverCpuUsPerEvent', 'server CPU µs/event', 2, false],
      ['wireBytesPerEvent', 'wire B/event', 1, false],
      ['ttfbMs', 'first event ms', 1, false],
      ['peakRssMB', 'peak RSS MB', 1, false]
    ]
  }
  if (c.scenario === 's2') {
    return [
      ['totalMs', 'all delivered ms', 0, true],
      ['completionP50Ms', 'client done p50 ms', 0, false],
      ['completionP99Ms', 'client done p99 ms', 0, false],
      ['firstEventP99Ms', '1st event p99 ms', 0, false],
      ['latencyP99Ms', 'delivery p99 ms', 1, false],
      ['deliveriesPerSec', 'deliveries/s', 0, false],
      ['serverCpuMs', 'server CPU ms', 0, false],
      ['peakRssMB', 'peak RSS MB', 1, false]
    ]
  }
  if (c.scenario === 's3') {
    return [
      ['heapKBPerConn', 'heap KB/conn', 2, true],
      ['jsKBPerConn', 'heap+external KB/conn', 2, false],
      ['rssKBPerConn', 'RSS KB/conn', 2, true]
    ]
  }
  if (c.params.mode === 'generator') {
    return [
      ['pulledWhileStalledMB', 'source pulled while stalled MB', 2, false],
      ['heldMB', 'held after GC MB', 2, false],
      ['peakJsMB', 'peak heap+external over base MB', 2, false],
      ['peakRssMB', 'peak RSS over base MB', 2, false],
      ['receivedMB', 'slow client received MB', 1, false],
      ['drainMs', 'drain after resume ms', 0, false]
    ]
  }
  return [
    ['heldMB', 'held after GC MB', 2, false],
    ['peakJsMB', 'peak heap+external over base MB', 2, false],
    ['peakRssMB', 'peak RSS over base MB', 2, false],
    ['normalReceivedMB', 'normal client received MB', 1, false],
    ['normalReconnects', 'normal client reconnects', 0, false],
    ['slowReceivedMB', 'slow client received MB', 2, false],
    ['slowDisconnected', 'dropped by server', 0, false],
    ['replayedMB', 'replayed on reconnect MB', 2, false],
    ['lostFromHistory', 'lost that history held', 0, false],
    ['publishMs', 'publish ms', 0, false]
  ]
}

/**
 * Ceilings as a ratio of raw's figure, for runs without the `raw-joined` probe (which measures the
 * ceiling in the run itself, and is then what the summary and the charts show): the fastest way we
 * measured to do the same work on a raw node:http server (docs/benchmarks.md, "Ceilings"). S1: frames joined per
 * tick into one write; S2: broadcasts joined for 1 ms, one write per subscriber per batch; S3: raw
 * itself (nothing per connection but the response).
 */
export const CEILINGS = {
  'S1-tokens': { ratio: 4.09, label: 'frames joined per tick' },
  'S1-json': { ratio: 1.12, label: 'frames joined per tick' },
  'S2-5000-b2b': { ratio: 0.06, label: 'joined for 1 ms, 1 write/subscriber/batch' },
  'S2-5000-interleaved': { ratio: 0.06, label: 'joined for 1 ms, 1 write/subscriber/batch' },
  'S3-idle': { ratio: 1, label: 'raw: the response alone' }
}

/** The targets of issues 5 and 15 as [metric, ratio to raw, 'max' | 'min'], for the summary. */
export const TARGETS = {
  'S1-tokens': ['eventsPerSec', 4, 'min'],
  'S1-json': ['eventsPerSec', 1.2, 'min'],
  'S2-5000-b2b': ['totalMs', 0.5, 'max'],
  'S2-5000-interleaved': ['totalMs', 0.1, 'max'],
  'S2-5000-paced': ['totalMs', 1, 'max'],
  'S3-idle': ['heapKBPerConn', 1.1, 'max']
}
