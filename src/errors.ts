// Every error sidecar-lab raises on purpose, each with a stable code so callers and tests match on the
// code rather than on the wording of the message.

import { cliCommand, runnable } from './invocation.js'

export class SidecarError extends Error {
  readonly code: string
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

/** A flag or configuration value is wrong; the message names the flag and the value. */
export class InvalidFlagError extends SidecarError {
  constructor(message: string) {
    super('SIDECAR_ERR_INVALID_FLAG', message)
  }
}

/** A flag that the command does not know. */
export class UnknownFlagError extends SidecarError {
  constructor(flag: string, command: string) {
    super('SIDECAR_ERR_UNKNOWN_FLAG', `unknown flag ${flag} for '${command}' (see '${runnable(command)} --help')`)
  }
}

/** The native addon is missing or cannot load on this system. */
export class AddonLoadError extends SidecarError {
  constructor(message: string, cause?: unknown) {
    super('SIDECAR_ERR_ADDON', message, { cause })
  }
}

/** A listener could not bind its port (in use, or no permission). */
export class ListenError extends SidecarError {
  constructor(message: string, cause?: unknown) {
    super('SIDECAR_ERR_LISTEN', message, { cause })
  }
}

/** The operation needs root or CAP_NET_ADMIN. */
export class PermissionError extends SidecarError {
  constructor(message: string) {
    super('SIDECAR_ERR_PERMISSION', message)
  }
}

/** A program the command runs (iptables-restore, nft, ip) is not installed. */
export class MissingBinaryError extends SidecarError {
  constructor(binary: string, hint: string) {
    super('SIDECAR_ERR_MISSING_BINARY', `${binary} not found on PATH: ${hint}`)
  }
}

/** A named network namespace does not exist. */
export class NetnsNotFoundError extends SidecarError {
  constructor(name: string) {
    super('SIDECAR_ERR_NETNS_NOT_FOUND', `network namespace '${name}' does not exist (see 'ip netns list')`)
  }
}

/** Rules are already present and differ from the plan (without --reconcile). */
export class RulesDifferError extends SidecarError {
  constructor(message: string) {
    super('SIDECAR_ERR_RULES_DIFFER', message)
  }
}

/** An external command failed; the message carries its stderr. */
export class CommandFailedError extends SidecarError {
  constructor(message: string) {
    super('SIDECAR_ERR_COMMAND_FAILED', message)
  }
}

/** `trace` could not trace: the lab is not up, a pod is missing, or the request was never sent. */
export class TraceError extends SidecarError {
  constructor(message: string) {
    super('SIDECAR_ERR_TRACE', message)
  }
}

/** `lab up --docker` cannot run: no engine, no image, or a pod's container is missing. */
export class DockerError extends SidecarError {
  constructor(message: string) {
    super('SIDECAR_ERR_DOCKER', message)
  }
}

/** A lab command needs the lab up, and it is not (or its `up` never finished). */
export class LabNotUpError extends SidecarError {
  constructor(lab: string) {
    super('SIDECAR_ERR_LAB_NOT_UP', `lab ${lab} is not up: run '${cliCommand('lab up', lab)}' first`)
  }
}

/** A lab process (a sidecar, an app) could not start or did not become ready; the message carries its log. */
export class LabProcessError extends SidecarError {
  constructor(message: string) {
    super('SIDECAR_ERR_LAB_PROCESS', message)
  }
}

/** A stats ?filter= pattern that RE2 cannot compile, or one too long or too large to accept (answered 400). */
export class InvalidStatsFilterError extends SidecarError {
  constructor(message: string, cause?: unknown) {
    super('SIDECAR_ERR_INVALID_FILTER', message, { cause })
  }
}

/** The access log cannot be opened for writing; the message names the path, the errno and the uid. */
export class AccessLogError extends SidecarError {
  constructor(message: string, cause?: unknown) {
    super('SIDECAR_ERR_ACCESS_LOG', message, { cause })
  }
}

/** The process lacks a Linux capability a feature needs (TPROXY: CAP_NET_ADMIN or CAP_NET_RAW). */
export class CapabilityError extends SidecarError {
  constructor(message: string, cause?: unknown) {
    super('SIDECAR_ERR_CAPABILITY', message, { cause })
  }
}

/** The native relay engine's thread met what it cannot go on from; the sidecar reset its connections and exits. */
export class RelayEngineDownError extends SidecarError {
  constructor(reason: string, code: string | undefined) {
    const why: Record<string, string> = {
      event_alloc: 'an event could not be allocated',
      tsfn_call: 'a batch of events could not be handed to JavaScript',
      epoll_wait: 'epoll_wait failed',
    }
    super(
      'SIDECAR_ERR_RELAY_DOWN',
      `the native relay engine went down (${reason}${code ? `, ${code}` : ''}: ${why[reason] ?? 'unknown reason'}): every connection it relayed was reset`,
    )
  }
}

/** A string that should be an address and port (`198.18.0.10:9080`, `[2001:2::10]:9080`) is not one. */
export class InvalidAddressError extends SidecarError {
  constructor(text: string, reason: string) {
    super('SIDECAR_ERR_INVALID_ADDRESS', `'${text}' is not an address:port: ${reason}`)
  }
}

/** The start-up error for a port that cannot be bound, naming what wanted it (also used by the admin servers). */
export function listenFailure(name: string, host: string, port: number, err: NodeJS.ErrnoException): ListenError {
  const why = err.code === 'EADDRINUSE' ? 'is already in use' : err.code === 'EACCES' ? 'needs privileges' : err.message
  return new ListenError(`${name}: cannot listen on ${host} port ${port}: it ${why}`, err)
}

/** A ZDS peer broke the protocol (src/ambient/zds.ts): bad hello, an answer that is not an ack, no ack in time. */
export class ZdsProtocolError extends SidecarError {
  constructor(message: string) {
    super('SIDECAR_ERR_ZDS_PROTOCOL', message)
  }
}

/** ztunnel's side answered a ZDS request with an ack carrying an error (a nack); ackError is its text. */
export class ZdsNackError extends SidecarError {
  readonly ackError: string
  constructor(request: string, ackError: string) {
    super('SIDECAR_ERR_ZDS_NACK', `ztunnel refused ${request}: ${ackError}`)
    this.ackError = ackError
  }
}

/** ztunnel: a pod's network namespace could not be entered (not a namespace, or no CAP_SYS_ADMIN). */
export class PodNetnsError extends SidecarError {
  constructor(pod: string, err: NodeJS.ErrnoException) {
    const why: Record<string, string> = {
      EINVAL: 'the descriptor it was given is no network namespace',
      EPERM: 'this process lacks CAP_SYS_ADMIN',
      EBADF: 'the descriptor is closed',
    }
    super(
      'SIDECAR_ERR_POD_NETNS',
      `pod ${pod}: cannot enter its network namespace (${err.syscall ?? 'setns'} ${err.code}: ${why[err.code ?? ''] ?? err.message})`,
      { cause: err },
    )
  }
}

/** A certificate or key could not be made or read (src/ambient/certs.ts): bad name, no CA, unwritable folder. */
export class CertificateError extends SidecarError {
  constructor(message: string) {
    super('SIDECAR_ERR_CERTIFICATE', message)
  }
}
