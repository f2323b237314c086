// Ambient mode's ZDS ("ztunnel discovery service"): how istio-cni's node agent hands each pod's network namespace
// to the node's ztunnel over a SOCK_SEQPACKET Unix socket, the netns as an fd (SCM_RIGHTS), each request
// acked. Both sides are here: ZdsServer (the node agent's) and ZdsClient (ztunnel's). Messages are JSON with
// the proto's field names, not protobuf (zds-messages.ts).
export { ZdsServer, type ZdsPod, type ZdsServerOptions, type ZdsNack } from './zds-server.js'
export { ZdsClient, type ZdsWorkload, type ZdsHandler, type ZdsClientOptions } from './zds-client.js'
export type { WorkloadInfo, WorkloadRequest, WorkloadResponse, ZdsHello } from './zds-messages.js'
