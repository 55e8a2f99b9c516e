/** Public surface of `actors/`: the master runtime and its API adapters. */

export * from './api.js';
export { addApiServices, apiServerGrpcOptions, createApiServer } from './grpc-api.js';
export { ApiClient } from './grpc-client.js';
export { MasterApi, toApiError } from './master.js';
export { MasterNode, type MasterNodeOptions } from './master-node.js';
export { type MasterProcessOptions, parsePeers, restoreDataDir, runMaster } from './master-process.js';
export { GrpcPeerLink, MemoryPeerNetwork, type PeerLink } from './peers.js';
export * from './runtime.js';
export { type LogRecord, type MemberRecord, ObjectStore } from './store.js';
export { WatchHub } from './watch-hub.js';
export { startWsGateway, type WsGateway } from './ws-gateway.js';
