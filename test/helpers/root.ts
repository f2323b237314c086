// Tests that need root (namespaces, iptables) skip with a reason when run unprivileged by hand, and
// fail loudly under CI=true, where they must run.
export function rootOnly(): { skip?: string } {
  if (process.getuid?.() === 0) return {}
  if (process.env.CI === 'true') {
    throw new Error('CI=true but not running as root: the namespace tests must run in CI, not skip')
  }
  return { skip: 'needs root for network namespaces and iptables (run the tests as root)' }
}
