// Waiting on an event instead of sleeping for it: poll until the condition holds, fail when the time is up.

/** Polls until fn returns a truthy value or the time is up. */
export async function eventually<T>(fn: () => T | undefined | false, timeoutMs = 5000): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = fn()
    if (v) return v
    if (Date.now() > end) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 50))
  }
}
