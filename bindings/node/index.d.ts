// Type declarations for the `microloop` Node package (index.js).

/** A policy: a preset name, a policy document as JSON text, or a policy object. */
export type Policy = 'strict' | 'balanced' | 'permissive' | string | Record<string, unknown>;

/** Tool arguments: JSON text, raw JSON bytes, or any value serialized with JSON.stringify. */
export type Args = string | Uint8Array | unknown;

export type Action = 'allow' | 'warn' | 'block' | 'halt';

export interface Verdict {
  /** allow / warn: run the tool (show `message` with a warn); block / halt: don't. */
  action: Action;
  /** The deciding rule's id ('loop.no_progress', a policy rule's id); '' for allow. */
  rule: string;
  /** Written for the model; '' for allow. */
  message: string;
  /** The id to pass to record(); 0 when the call must not run. */
  callId: number;
  /** For allow: how many times this exact call already ran; else the count the rule reached. */
  count: number;
  /** action is allow or warn. */
  mayRun: boolean;
  /** Under a policy with an [approval] section, the token of a call that may run (check it on
   * the tool's side with approval.mjs's verify); null otherwise. */
  approval: string | null;
  /** Why a call that may run under [approval] has no token (arguments JCS cannot represent). */
  approvalError: string | null;
  /** Under a policy with `mode = "observe"` (shadow mode): the action an enforcing guard would
   * have taken on this call, which is let run (`action` is 'allow', `rule`, `message` and `count`
   * the would-be verdict's); '' otherwise. */
  observed: '' | 'warn' | 'block' | 'halt';
}

export interface Stats {
  calls: number;
  blocked: number;
  errors: number;
  historyLen: number;
  historyHash: bigint;
  /** Results recorded, late ones included. */
  results: number;
  /** Results recorded after their call had left the history window. */
  late: number;
  /** Shadow mode: calls let run although an enforcing guard would have warned, blocked or halted
   * them (the blocked and halted ones also counted in `blocked`). */
  observed: number;
}

/** A compiled policy shared by any number of sessions (compiled once); sessions keep their own
 *  reference, so closing the engine does not affect them. */
export class Engine {
  /** @throws PolicyError when the policy is refused (its `path` names the bad entry). */
  constructor(policy?: Policy);
  /** A new session under this engine's policy, with an empty history. */
  newSession(): Session;
  /** A session from `session.save()`'s bytes under this engine's policy (another policy's bytes
   *  throw PolicyMismatchError unless `anyPolicy`; bad bytes InvalidSnapshotError). */
  loadSession(snapshot: Uint8Array, options?: { anyPolicy?: boolean }): Session;
  /** The fingerprint a session under this engine keeps (the policy's `ignore_fields` left out). */
  fingerprint(tool: string | Uint8Array, args?: Args): bigint;
  /** Releases the engine; its sessions keep working. Idempotent. */
  close(): void;
  readonly closed: boolean;
}

export class Session {
  /** `policy` may be an Engine to share.
   *  @throws PolicyError when the policy is refused (its `path` names the bad entry). */
  constructor(policy?: Policy | Engine);
  /** Decides on a tool call before it runs. `tool` may be raw bytes. */
  check(tool: string | Uint8Array, args?: Args): Verdict;
  /** Records what an allowed call returned: text, bytes, or a value serialized as JSON. A result
   *  for a call that has left the history window is accepted as late (`stats().late`). */
  record(callId: number | bigint, output?: string | Uint8Array | unknown, isError?: boolean): void;
  /** Registers the agent's tool names (or a JSON array as text); [] forgets them. */
  setTools(names: Iterable<string> | string): void;
  /** Forgets the history, counters and any halt; keeps the policy and the tool names. */
  reset(): void;
  stats(): Stats;
  /** The session as bytes for `engine.loadSession`: history, counters, tool names, any halt. */
  save(): Buffer;
  /** Frees the session; further calls throw SessionClosedError. Idempotent. */
  close(): void;
  readonly closed: boolean;
}

/** The canonical fingerprint of a call, as every binding computes it; every field counts. */
export function fingerprint(tool: string | Uint8Array, args?: Args): bigint;

/** The loaded library's version, "MAJOR.MINOR.PATCH". */
export const version: string;
/** The file the library was loaded from (MICROLOOP_LIB, the package's prebuilds/, or a checkout's build). */
export const libraryPath: string;
export const ABI_VERSION: number;

export class MicroLoopError extends Error {
  /** The ml_status code, -1 when not from the library. */
  readonly status: number;
  /** 'invalid_json', 'invalid_policy', ... as in the shared vectors; 'closed' for SessionClosedError. */
  readonly statusName: string;
  /** For a PolicyError, the bad entry ('budget.max_calls'); else ''. */
  readonly path: string;
}
export class PolicyError extends MicroLoopError {}
export class NullArgumentError extends MicroLoopError {}
export class InvalidUTF8Error extends MicroLoopError {}
export class InvalidJSONError extends MicroLoopError {}
export class UnknownCallError extends MicroLoopError {}
export class AlreadyRecordedError extends MicroLoopError {}
export class InvalidArgumentError extends MicroLoopError {}
export class InvalidSnapshotError extends MicroLoopError {}
export class SnapshotVersionError extends MicroLoopError {}
export class PolicyMismatchError extends MicroLoopError {}
export class InternalError extends MicroLoopError {}
export class SessionClosedError extends MicroLoopError {}
