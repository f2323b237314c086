// The part of autocannon's programmatic API that bench/apps/cannon.mjs uses (autocannon ships no types).
declare module 'autocannon' {
  interface Result {
    errors: number
    timeouts: number
  }
  interface Instance {
    on(event: 'response', listener: (client: unknown, statusCode: number, resBytes: number, responseTime: number) => void): void
  }
  function autocannon(options: Record<string, unknown>, done: (err: Error | null, result: Result) => void): Instance
  export default autocannon
}
