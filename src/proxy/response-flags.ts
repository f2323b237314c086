// Envoy's response flags, as the access log and Istio's response_flags label spell them. One definition, so
// producers (the connection, the listener, the router, later the native relay) name a flag by constant and
// consumers never compare strings.
export const ResponseFlag = {
  /** the upstream connection failed */
  UpstreamConnectionFailure: 'UF',
  /** the retry limit was reached (Envoy's TCP proxy sets it with UF once its one attempt failed) */
  UpstreamRetryLimitExceeded: 'URX',
  /** no route: no filter chain matched (the connection was not redirected) */
  NoRouteFound: 'NR',
  /** no healthy upstream: the destination is a dead end (the listener itself, REGISTRY_ONLY) */
  NoHealthyUpstream: 'UH',
} as const

export type ResponseFlag = (typeof ResponseFlag)[keyof typeof ResponseFlag]

/** A failed upstream connect, as Envoy's TCP proxy reports it. */
export const upstreamConnectFailed: readonly ResponseFlag[] = [
  ResponseFlag.UpstreamConnectionFailure,
  ResponseFlag.UpstreamRetryLimitExceeded,
]

/** Comma-joined in Envoy's order of appearance; '' when none (the access log prints '-'). */
export function formatResponseFlags(flags: readonly ResponseFlag[]): string {
  return flags.join(',')
}
