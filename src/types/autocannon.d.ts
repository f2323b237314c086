// The part of autocannon's programmatic API that src/lab/cannon.ts uses (autocannon ships no types).
declare module 'autocannon' {
  interface Result {
    errors: number
    timeouts: number
    throughput: { total: number }
  }
  interface Instance {
    on(event: 'response', listener: (client: unknown, statusCode: number, resBytes: number, responseTime: number) => void): void
  }
  function autocannon(options: Record<string, unknown>, done: (err: Error | null, result: Result) => void): Instance
  export default autocannon
}
